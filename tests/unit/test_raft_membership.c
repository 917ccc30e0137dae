/* tests/unit/test_raft_membership.c: learners, promotion, joint consensus, one change at a time,
 * traps 1, 8, 9. */
#include <string.h>

#include "test_raft_harness.h"

static void change(struct th *t, uint64_t leader, const struct raft_change *ch, size_t n)
{
    CHECK_EQ(raft_conf_change(th_r(t, leader), ch, n, 0), 0);
    /* Trap 8: one change at a time. */
    struct raft_change again = {RAFT_CHANGE_ADD_LEARNER, 7};
    CHECK_EQ(raft_conf_change(th_r(t, leader), &again, 1, 0), RAFT_ECONFPENDING);
}

static void settle_ticking(struct th *t, uint64_t leader, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        th_tick(t, leader, 1);
        th_settle(t);
    }
}

static void test_learner_then_promote(void)
{
    struct th t;
    th_init(&t, 3, 5, NULL);
    th_elect(&t, 1);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    change(&t, 1, &add, 1);
    th_settle(&t);
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 1)), 4));
    CHECK(!raft_conf_is_joint(raft_conf(th_r(&t, 1))));
    settle_ticking(&t, 1, 3);
    /* The learner receives the log... */
    CHECK_EQ(raft_commit_index(th_r(&t, 4)), raft_commit_index(th_r(&t, 1)));
    /* ...and is promoted through C_old,new, left automatically. */
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 4};
    change(&t, 1, &promote, 1);
    CHECK(raft_conf_is_joint(raft_conf(th_r(&t, 1))));
    settle_ticking(&t, 1, 3);
    const struct raft_conf *c = raft_conf(th_r(&t, 1));
    CHECK(!raft_conf_is_joint(c) && c->n_voters == 4 && c->n_learners == 0);
    CHECK(raft_conf_is_voter(raft_conf(th_r(&t, 4)), 4));
    th_free(&t);
}

static void test_promotion_waits_for_catch_up(void)
{
    struct th t;
    th_init(&t, 3, 4, NULL);
    th_elect(&t, 1);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    change(&t, 1, &add, 1);
    th_settle(&t);
    settle_ticking(&t, 1, 2);
    for (int i = 0; i < 5; i++) {
        th_propose(&t, 1, (uint64_t)i);
        th_ready(&t, 1);
        th_drop(&t, 0, 0, 4);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 4);
        th_deliver(&t);
        th_ready_all(&t);
    }
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 4};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &promote, 1, 0), RAFT_ECATCHUP);
    settle_ticking(&t, 1, 3);
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &promote, 1, 0), 0);
    th_free(&t);
}

static void test_replace_several_needs_both_majorities(void)
{
    /* {1,2,3} -> {1,4,5} in one change: while joint, the old majority is needed too. */
    struct th t;
    th_init(&t, 3, 5, NULL);
    th_elect(&t, 1);
    struct raft_change ch[] = {{RAFT_CHANGE_REMOVE, 2},
                               {RAFT_CHANGE_REMOVE, 3},
                               {RAFT_CHANGE_ADD_VOTER, 4},
                               {RAFT_CHANGE_ADD_VOTER, 5}};
    change(&t, 1, ch, 4);
    uint64_t joint_index = raft_last_index(th_r(&t, 1));
    /* 2 and 3 are unreachable: 1, 4, 5 are a majority of C_new but not of C_old. */
    for (int i = 0; i < 5; i++) {
        th_tick(&t, 1, 1);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 2);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 2);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
    }
    CHECK(raft_commit_index(th_r(&t, 1)) < joint_index);
    settle_ticking(&t, 1, 4);
    const struct raft_conf *c = raft_conf(th_r(&t, 1));
    CHECK(!raft_conf_is_joint(c) && c->n_voters == 3);
    CHECK(raft_conf_is_voter(c, 4) && raft_conf_is_voter(c, 5) && !raft_conf_is_voter(c, 2));
    /* The new majority works without the removed members. */
    uint64_t idx = th_propose(&t, 1, 9);
    for (int i = 0; i < 5; i++) {
        th_tick(&t, 1, 1);
        th_drop(&t, 0, 0, 2);
        th_drop(&t, 0, 0, 3);
        th_settle(&t);
    }
    CHECK(raft_commit_index(th_r(&t, 1)) >= idx);
    th_free(&t);
}

static void test_uncommitted_conf_rolled_back(void)
{
    /* Trap 8: leader 1 appends a change that never leaves it; member 2 wins a later term and
     * overwrites it: 1 goes back to the previous configuration. */
    struct th t;
    th_init(&t, 3, 4, NULL);
    th_elect(&t, 1);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    change(&t, 1, &add, 1);
    th_ready(&t, 1);
    th_drop(&t, 0, 1, 0);
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 1)), 4));
    uint64_t lead = 0;
    for (int i = 0; i < 60 && lead == 0; i++) {
        th_tick(&t, 2, 1);
        th_tick(&t, 3, 1);
        th_drop(&t, 0, 1, 0);
        th_drop(&t, 0, 0, 1);
        th_deliver(&t);
        th_ready_all(&t);
        lead = raft_role(th_r(&t, 2)) == RAFT_LEADER   ? 2
               : raft_role(th_r(&t, 3)) == RAFT_LEADER ? 3
                                                       : 0;
    }
    CHECK(lead != 0);
    th_propose(&t, lead, 5);
    settle_ticking(&t, lead, 3);
    CHECK_EQ(raft_leader(th_r(&t, 1)), lead);
    CHECK(!raft_conf_is_learner(raft_conf(th_r(&t, 1)), 4));
    CHECK_EQ(raft_conf(th_r(&t, 1))->n_learners, 0);
    th_free(&t);
}

static void test_removed_leader_steps_down(void)
{
    /* Trap 9: remove the leader itself; it manages the change, then steps down and never
     * campaigns again; the others elect a leader. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    struct raft_change rm = {RAFT_CHANGE_REMOVE, 1};
    change(&t, 1, &rm, 1);
    settle_ticking(&t, 1, 4);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    CHECK(!raft_conf_is_voter(raft_conf(th_r(&t, 1)), 1));
    uint64_t term1 = raft_term(th_r(&t, 1));
    for (int i = 0; i < 60; i++) {
        th_tick(&t, 1, 1);
        th_tick(&t, 2, 1);
        th_tick(&t, 3, 1);
        th_settle(&t);
    }
    CHECK(raft_role(th_r(&t, 2)) == RAFT_LEADER || raft_role(th_r(&t, 3)) == RAFT_LEADER);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    CHECK(t.nodes[1].disk.hs.vote == 0 || raft_term(th_r(&t, 1)) >= term1);
    th_free(&t);
}

static void test_change_refused_before_first_commit(void)
{
    /* Trap 1: a new leader accepts no change before an entry of its term commits. */
    struct th t;
    th_init(&t, 3, 4, NULL);
    for (int i = 0; i < 40 && raft_role(th_r(&t, 1)) != RAFT_LEADER; i++) {
        th_tick(&t, 1, 1);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, RAFT_MSG_APPEND, 0, 0);
    }
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &add, 1, 0), RAFT_ENOTREADY);
    CHECK(raft_error_retryable(RAFT_ENOTREADY));
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &add, 1, 0), 0);
    /* Not the leader: refused with a hint. */
    CHECK_EQ(raft_conf_change(th_r(&t, 2), &add, 1, 0), RAFT_ENOTLEADER);
    th_free(&t);
}

static void test_leader_lost_after_leaving_joint(void)
{
    /* tests/chaos seed 101 (3 members) stopped with no leader after its harness destroyed a
     * leader that `member list` had shown with every member a voter. The list showed the
     * latest configuration, which can be joint or uncommitted; raft_conf_changing() now tells.
     * Voters {1,2}, learner 3 promoted through C_old,new and the automatic C_new: while the
     * change is under way, losing 1 would leave the old half {1,2} without a majority. Once
     * 1 has committed C_new (and says so), 1 may be lost: 2 and 3 elect a leader. */
    struct th t;
    th_init(&t, 2, 3, NULL);
    th_elect(&t, 1);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 3};
    change(&t, 1, &add, 1);
    settle_ticking(&t, 1, 5);
    CHECK(!raft_conf_changing(th_r(&t, 1)));
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 3};
    change(&t, 1, &promote, 1);
    CHECK(raft_conf_changing(th_r(&t, 1)));
    uint64_t joint_index = raft_last_index(th_r(&t, 1));
    uint64_t new_index = 0;
    for (int i = 0; i < 100 && raft_conf_changing(th_r(&t, 1)); i++) {
        th_ready(&t, 1);
        if (new_index == 0 && !raft_conf_is_joint(raft_conf(th_r(&t, 1)))) {
            new_index = raft_last_index(th_r(&t, 1));
            /* C_new is appended but not committed: still changing. */
            CHECK(raft_conf_changing(th_r(&t, 1)));
        }
        th_ready(&t, 2);
        th_ready(&t, 3);
        th_deliver(&t);
    }
    CHECK(new_index > joint_index);
    CHECK(!raft_conf_changing(th_r(&t, 1)));
    CHECK(raft_commit_index(th_r(&t, 1)) >= new_index);
    CHECK(!raft_conf_is_joint(raft_conf_committed(th_r(&t, 1))));
    CHECK_EQ(raft_conf_committed(th_r(&t, 1))->n_voters, 3);
    /* 1 is lost before its next message: the others have not heard that C_new committed. */
    th_drop(&t, 0, 1, 0);
    th_crash(&t, 1);
    CHECK(raft_conf_changing(th_r(&t, 2)) || raft_conf_changing(th_r(&t, 3)));
    uint64_t leader = 0;
    for (int i = 0; i < 200 && leader == 0; i++) {
        th_tick(&t, 2, 1);
        th_tick(&t, 3, 1);
        th_drop(&t, 0, 0, 1);
        th_settle(&t);
        for (uint64_t id = 2; id <= 3; id++) {
            if (raft_role(th_r(&t, id)) == RAFT_LEADER) {
                leader = id;
            }
        }
    }
    CHECK(leader == 2 || leader == 3);
    /* The new leader commits C_new with an entry of its term: settled again. */
    settle_ticking(&t, leader, 3);
    CHECK(!raft_conf_changing(th_r(&t, leader)));
    th_free(&t);
}

int main(void)
{
    test_learner_then_promote();
    test_promotion_waits_for_catch_up();
    test_replace_several_needs_both_majorities();
    test_uncommitted_conf_rolled_back();
    test_removed_leader_steps_down();
    test_change_refused_before_first_commit();
    test_leader_lost_after_leaving_joint();
    printf("test_raft_membership: ok\n");
    return 0;
}
