/* tests/unit/test_raft_transfer.c: leadership transfer (TimeoutNow) and trap 10 (it bypasses
 * stickiness). */
#include <string.h>

#include "test_raft_harness.h"

static void test_transfer_to_up_to_date_member(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    th_tick(&t, 1, 1);
    th_settle(&t);
    uint64_t term = raft_term(th_r(&t, 1));
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 2), 0);
    th_ready(&t, 1);
    CHECK(th_find(&t, RAFT_MSG_TIMEOUT_NOW, 1, 2) >= 0);
    /* Member 3 heard from leader 1 a moment ago (in lease), yet votes for 2: the request
     * carries the transfer flag (trap 10). */
    th_settle(&t);
    CHECK_EQ(raft_role(th_r(&t, 2)), RAFT_LEADER);
    CHECK_EQ(raft_term(th_r(&t, 2)), term + 1);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    CHECK_EQ(t.nodes[3].disk.hs.vote, 2);
    th_free(&t);
}

static void test_transfer_catches_target_up_first(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    for (int i = 0; i < 5; i++) {
        th_propose(&t, 1, (uint64_t)i);
        th_ready(&t, 1);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 3);
    }
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 3), 0);
    th_ready(&t, 1);
    CHECK_EQ(th_find(&t, RAFT_MSG_TIMEOUT_NOW, 1, 3), -1); /* not yet: 3 lags */
    /* Proposals and changes are refused meanwhile, with a retryable error. */
    uint64_t v = 1;
    CHECK_EQ(raft_propose(th_r(&t, 1), &v, 8, 0, NULL, NULL), RAFT_ETRANSFER);
    CHECK(raft_error_retryable(RAFT_ETRANSFER));
    struct raft_change ch = {RAFT_CHANGE_REMOVE, 2};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &ch, 1, 0), RAFT_ETRANSFER);
    for (int i = 0; i < 10 && raft_role(th_r(&t, 3)) != RAFT_LEADER; i++) {
        th_tick(&t, 1, 1);
        th_settle(&t);
    }
    CHECK_EQ(raft_role(th_r(&t, 3)), RAFT_LEADER);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), raft_last_index(th_r(&t, 1)));
    th_free(&t);
}

static void test_transfer_times_out(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 3), 0);
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 2), RAFT_ETRANSFER);
    for (int i = 0; i < 25; i++) {
        th_tick(&t, 1, 1);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    uint64_t v = 1;
    CHECK_EQ(raft_propose(th_r(&t, 1), &v, 8, 0, NULL, NULL), 0); /* aborted: back to normal */
    th_free(&t);
}

static void test_transfer_refusals(void)
{
    struct th t;
    th_init(&t, 3, 4, NULL);
    th_elect(&t, 1);
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 1), RAFT_EINVAL);
    CHECK_EQ(raft_transfer_leader(th_r(&t, 1), 4), RAFT_EINVAL); /* not a voter */
    CHECK_EQ(raft_transfer_leader(th_r(&t, 2), 3), RAFT_ENOTLEADER);
    /* A TIMEOUT_NOW from someone other than the leader is ignored. */
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.from = 3;
    m.to = 2;
    m.term = raft_term(th_r(&t, 2));
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    CHECK_EQ(raft_role(th_r(&t, 2)), RAFT_FOLLOWER);
    th_free(&t);
}

int main(void)
{
    test_transfer_to_up_to_date_member();
    test_transfer_catches_target_up_first();
    test_transfer_times_out();
    test_transfer_refusals();
    printf("test_raft_transfer: ok\n");
    return 0;
}
