/* tests/unit/test_raft_lincheck.c: the linearizability checker on histories with known verdicts. */
#include "lincheck.h"
#include "test_raft_harness.h"

static struct lin_op W(uint64_t v, uint64_t a, uint64_t b) {
    return (struct lin_op){.write = true, .value = v, .invoke = a, .complete = b};
}

static struct lin_op
R(uint64_t v, uint64_t a, uint64_t b) {
    return (struct lin_op){.write = false, .value = v, .invoke = a, .complete = b};
}

int main(void)
{
    /* Sequential and obviously fine. */
    struct lin_op h1[] = {W(1, 1, 2), R(1, 3, 4), W(2, 5, 6), R(2, 7, 8)};
    CHECK(lin_check(h1, 4, 0));
    /* A stale read after a completed write. */
    struct lin_op h2[] = {W(1, 1, 2), W(2, 3, 4), R(1, 5, 6)};
    CHECK(!lin_check(h2, 3, 0));
    /* Concurrent write: the read may see either. */
    struct lin_op h3[] = {W(1, 1, 10), R(0, 2, 3), R(1, 4, 5)};
    CHECK(lin_check(h3, 3, 0));
    /* ...but not go back once it saw the new value. */
    struct lin_op h4[] = {W(1, 1, 10), R(1, 2, 3), R(0, 4, 5)};
    CHECK(!lin_check(h4, 3, 0));
    /* Unknown outcome: may have happened... */
    struct lin_op h5[] = {W(1, 1, LIN_NEVER), R(1, 5, 6), R(1, 7, 8)};
    CHECK(lin_check(h5, 3, 0));
    /* ...or not. */
    struct lin_op h6[] = {W(1, 1, LIN_NEVER), R(0, 5, 6)};
    CHECK(lin_check(h6, 2, 0));
    /* But a value nobody wrote is never explained. */
    struct lin_op h7[] = {W(1, 1, 2), R(3, 5, 6)};
    CHECK(!lin_check(h7, 2, 0));
    /* Two concurrent writes and reads that order them inconsistently. */
    struct lin_op h8[] = {W(1, 1, 10), W(2, 1, 10), R(1, 11, 12), R(2, 13, 14), R(1, 15, 16)};
    CHECK(!lin_check(h8, 5, 0));
    /* A long history with four clients overlapping (as in the simulator) stays fast. */
    struct lin_op big[LIN_MAX_OPS];
    uint64_t last = 0;
    for (int i = 0; i < LIN_MAX_OPS; i++) {
        uint64_t a = (uint64_t)i * 10, b = a + 35; /* each overlaps the next three */
        if (i % 3 == 2) {
            big[i] = R(last, a, b);
        } else {
            big[i] = W((uint64_t)i + 100, a, b);
            last = (uint64_t)i + 100;
        }
    }
    CHECK(lin_check(big, LIN_MAX_OPS, 0));
    big[LIN_MAX_OPS - 1] = R(100, (LIN_MAX_OPS - 1) * 10, (LIN_MAX_OPS - 1) * 10 + 5);
    CHECK(!lin_check(big, LIN_MAX_OPS, 0));
    /* Many writes with unknown outcomes that nobody observed cost nothing... */
    struct lin_op many[LIN_MAX_OPS];
    for (int i = 0; i < LIN_MAX_OPS - 2; i++) {
        many[i] = W((uint64_t)i + 1000, (uint64_t)i, LIN_NEVER);
    }
    many[LIN_MAX_OPS - 2] = W(7, 1, 2);
    many[LIN_MAX_OPS - 1] = R(7, 3, 4);
    CHECK(lin_check(many, LIN_MAX_OPS, 0));
    /* ...and an observed one still explains a read. */
    many[LIN_MAX_OPS - 1] = R(1010, 100, 101);
    CHECK(lin_check(many, LIN_MAX_OPS, 0));
    many[LIN_MAX_OPS - 1] = R(1010, 0, 1); /* read before that write was invoked */
    CHECK(!lin_check(many, LIN_MAX_OPS, 0));
    printf("test_raft_lincheck: ok\n");
    return 0;
}
