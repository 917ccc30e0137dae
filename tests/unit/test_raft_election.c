/* tests/unit/test_raft_election.c: elections, one vote per term, up-to-date rule, PreVote,
 * CheckQuorum, learners. */
#include <string.h>

#include "test_raft_harness.h"

static struct raft_message vote_req(uint32_t type, uint64_t from, uint64_t to, uint64_t term,
                                    uint64_t last_index, uint64_t last_term)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    m.last_index = last_index;
    m.last_term = last_term;
    return m;
}

/* Steps m into to and returns the answer it queued (caller frees nothing: copied to *out). */
static struct raft_message answer(struct th *t, const struct raft_message *m)
{
    size_t before = t->nq;
    CHECK_EQ(raft_step(th_r(t, m->to), m), 0);
    th_ready(t, m->to);
    CHECK(t->nq > before);
    struct raft_message a = t->q[t->nq - 1];
    return a;
}

static void test_basic_election(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    CHECK_EQ(raft_term(th_r(&t, 1)), 2);
    CHECK_EQ(raft_leader(th_r(&t, 2)), 1);
    CHECK_EQ(raft_leader(th_r(&t, 3)), 1);
    /* The no-op of term 2 commits on every member. */
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 2);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), 2);
    CHECK_EQ(t.nodes[2].applied[t.nodes[2].n_applied - 1].type, RAFT_ENTRY_NOOP);
    th_free(&t);
}

static void no_prevote(struct raft_config *cfg, uint64_t id)
{
    cfg->pre_vote = false;
}

static void test_one_vote_per_term(void)
{
    struct th t;
    th_init(&t, 3, 3, no_prevote);
    /* Member 2 (term 1, no leader yet) votes for 1 in term 2... */
    struct raft_message m = vote_req(RAFT_MSG_VOTE, 1, 2, 2, 1, 1);
    struct raft_message a = answer(&t, &m);
    CHECK(a.type == RAFT_MSG_VOTE_RESP && !a.reject && a.term == 2);
    CHECK_EQ(t.nodes[2].disk.hs.vote, 1);
    /* ...then refuses 3 in the same term, even with a longer log... */
    m = vote_req(RAFT_MSG_VOTE, 3, 2, 2, 9, 1);
    a = answer(&t, &m);
    CHECK(a.type == RAFT_MSG_VOTE_RESP && a.reject);
    CHECK_EQ(t.nodes[2].disk.hs.vote, 1);
    /* ...and answers a duplicate request of 1 the same way as before. */
    m = vote_req(RAFT_MSG_VOTE, 1, 2, 2, 1, 1);
    a = answer(&t, &m);
    CHECK(!a.reject);
    th_free(&t);
}

static void test_up_to_date_rule(void)
{
    struct th t;
    th_init(&t, 3, 3, no_prevote);
    th_elect(&t, 1);
    th_propose(&t, 1, 7);
    th_settle(&t); /* everyone has 1..3, last term 2 */
    /* §5.4.1: a longer log with an older last term loses... */
    struct raft_message m = vote_req(RAFT_MSG_VOTE, 3, 2, 9, 50, 1);
    th_tick(&t, 2, 30); /* out of lease */
    struct raft_message a = answer(&t, &m);
    CHECK(a.reject);
    /* ...and so does a shorter log of the same last term. */
    m = vote_req(RAFT_MSG_VOTE, 3, 2, 10, 2, 2);
    a = answer(&t, &m);
    CHECK(a.reject);
    m = vote_req(RAFT_MSG_VOTE, 3, 2, 11, 3, 2);
    a = answer(&t, &m);
    CHECK(!a.reject);
    th_free(&t);
}

static void test_prevote_does_not_disrupt(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    uint64_t term = raft_term(th_r(&t, 1));
    /* Member 3 is cut off and times out again and again: PreVote keeps its term. */
    for (int i = 0; i < 10; i++) {
        th_tick(&t, 3, 25);
        th_drop(&t, 0, 3, 0);
        th_drop(&t, 0, 0, 3);
    }
    CHECK_EQ(raft_term(th_r(&t, 3)), term);
    CHECK_EQ(raft_role(th_r(&t, 3)), RAFT_PRE_CANDIDATE);
    /* Back in touch: its pre-votes are ignored by members in lease with the leader. */
    th_tick(&t, 3, 25);
    th_settle(&t);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    CHECK_EQ(raft_term(th_r(&t, 1)), term);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_leader(th_r(&t, 3)), 1);
    th_free(&t);
}

static void test_prevote_reply_carries_request_term(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    /* Trap 10: no leader yet, so no lease; the grant carries the requested term and the
     * voter's own term does not move. */
    struct raft_message m = vote_req(RAFT_MSG_PREVOTE, 1, 2, 5, 1, 1);
    struct raft_message a = answer(&t, &m);
    CHECK(a.type == RAFT_MSG_PREVOTE_RESP && !a.reject);
    CHECK_EQ(a.term, 5);
    CHECK_EQ(raft_term(th_r(&t, 2)), 1);
    CHECK_EQ(t.nodes[2].disk.hs.vote, 0);
    /* A rejection carries the voter's term. */
    m = vote_req(RAFT_MSG_PREVOTE, 1, 2, 5, 0, 0);
    a = answer(&t, &m);
    CHECK(a.reject);
    CHECK_EQ(a.term, 1);
    th_free(&t);
}

static void test_check_quorum(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    /* Nothing from the followers for two election timeouts: the leader steps down. */
    for (int i = 0; i < 25; i++) {
        th_tick(&t, 1, 1);
        th_drop(&t, 0, 1, 0);
    }
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    th_free(&t);
}

static void test_learner_votes_and_never_campaigns(void)
{
    struct th t;
    th_init(&t, 3, 4, NULL);
    th_elect(&t, 1);
    struct raft_change ch = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &ch, 1, 0), 0);
    th_settle(&t);
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 4)), 4));
    /* A learner never starts an election... */
    uint64_t term = raft_term(th_r(&t, 4));
    th_tick(&t, 4, 200);
    CHECK_EQ(raft_role(th_r(&t, 4)), RAFT_FOLLOWER);
    CHECK_EQ(raft_term(th_r(&t, 4)), term);
    th_drop(&t, 0, 4, 0);
    /* ...but answers a vote request addressed to it (trap 9): its configuration may be
     * behind one that made it a voter. */
    struct raft_message m =
        vote_req(RAFT_MSG_VOTE, 2, 4, term + 1, raft_last_index(th_r(&t, 2)), term);
    struct raft_message a = answer(&t, &m);
    CHECK(a.type == RAFT_MSG_VOTE_RESP && !a.reject);
    th_free(&t);
}

static void test_split_vote_then_progress(void)
{
    struct th t;
    th_init(&t, 5, 5, no_prevote);
    /* Two candidates at once; the randomised timeouts sort it out. */
    th_tick(&t, 1, 19);
    th_tick(&t, 2, 19);
    for (int i = 0; i < 60; i++) {
        for (uint64_t id = 1; id <= 5; id++) {
            th_tick(&t, id, 1);
        }
        th_settle(&t);
    }
    int leaders = 0;
    for (uint64_t id = 1; id <= 5; id++) {
        leaders += raft_role(th_r(&t, id)) == RAFT_LEADER;
    }
    CHECK_EQ(leaders, 1);
    th_free(&t);
}

/* raft_advance_election: a follower without a leader moves its timer on (its next tick
 * campaigns when moved past the longest timeout, 2 * 10 - 1 ticks); a leader, and a follower
 * that knows one, are left alone. */
static void test_advance_election(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    CHECK(raft_advance_election(th_r(&t, 2), 19));
    th_tick(&t, 2, 1); /* unmoved, no timeout is under 10 ticks */
    CHECK_EQ(raft_role(th_r(&t, 2)), RAFT_PRE_CANDIDATE);
    th_settle(&t);
    CHECK_EQ(raft_role(th_r(&t, 2)), RAFT_LEADER);
    CHECK_EQ(raft_leader(th_r(&t, 1)), 2);
    CHECK(!raft_advance_election(th_r(&t, 2), 19));
    CHECK(!raft_advance_election(th_r(&t, 1), 19));
    th_tick(&t, 1, 1);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    th_free(&t);
}

int main(void)
{
    test_basic_election();
    test_one_vote_per_term();
    test_up_to_date_rule();
    test_prevote_does_not_disrupt();
    test_prevote_reply_carries_request_term();
    test_check_quorum();
    test_learner_votes_and_never_campaigns();
    test_split_vote_then_progress();
    test_advance_election();
    printf("test_raft_election: ok\n");
    return 0;
}
