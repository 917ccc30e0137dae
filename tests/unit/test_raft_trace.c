/* tests/unit/test_raft_trace.c: the tracer's stable one-line-per-event output against a golden
 * story. */
#include <string.h>

#include "test_raft_harness.h"

/* An election, one proposal, a read and a leadership transfer in a three-member cluster. Any
 * change to this text is a change of the tracer's format or of the core's behaviour: update
 * it on purpose only (run with --print to see the new text). */
static const char *const golden =
#include "test_raft_trace.golden"
    ;

int main(int argc, char **argv)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_capture(&t);
    th_elect(&t, 1);
    th_propose(&t, 1, 42);
    th_settle(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 7), 0);
    th_settle(&t);
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 3), 0);
    th_settle(&t);
    CHECK_EQ(raft_role(th_r(&t, 3)), RAFT_LEADER);
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        fputs(t.trace, stdout);
        th_free(&t);
        return 0;
    }
    if (strcmp(t.trace, golden) != 0) {
        fprintf(stderr, "trace differs from the golden one; got:\n%s", t.trace);
        th_free(&t);
        return 1;
    }
    th_free(&t);
    printf("test_raft_trace: ok\n");
    return 0;
}
