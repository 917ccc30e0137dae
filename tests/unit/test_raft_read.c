/* tests/unit/test_raft_read.c: ReadIndex: shared rounds, unique contexts, forwarding, traps 1, 2,
 * 11, 14. */
#include <string.h>

#include "test_raft_harness.h"

/* Three members, member 1 the leader, its no-op committed; tune (may be NULL) adjusts each
 * member's configuration. */
static struct th *cluster_with(struct th *t, void (*tune)(struct raft_config *, uint64_t))
{
    th_init(t, 3, 3, tune);
    th_elect(t, 1);
    th_tick(t, 1, 1);
    th_settle(t);
    return t;
}

static struct th *cluster(struct th *t)
{
    return cluster_with(t, NULL);
}

/* Three members, member 1 elected, its no-op appended but not yet committed (every append
 * dropped). */
static void elect_before_noop(struct th *t)
{
    th_init(t, 3, 3, NULL);
    for (int i = 0; i < 40 && raft_role(th_r(t, 1)) != RAFT_LEADER; i++) {
        th_tick(t, 1, 1);
        th_deliver(t);
        th_ready_all(t);
        th_drop(t, RAFT_MSG_APPEND, 0, 0);
    }
    CHECK_EQ(raft_role(th_r(t, 1)), RAFT_LEADER);
}

static void test_reads_share_one_round(void)
{
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 11), 0);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 12), 0);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 13), 0);
    th_ready(&t, 1);
    CHECK_EQ(t.nq, 1); /* one heartbeat, one context: a majority needs one follower */
    CHECK(t.q[0].type == RAFT_MSG_HEARTBEAT && t.q[0].context != 0 && t.q[0].to == 2);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(t.nodes[1].reads[i].status, 0);
        CHECK_EQ(t.nodes[1].reads[i].index, raft_commit_index(th_r(&t, 1)));
        CHECK_EQ(t.nodes[1].reads[i].cookie, 11 + i);
    }
    th_free(&t);
}

static void test_late_answer_never_releases_a_later_round(void)
{
    /* Trap 2: keep member 2's answer to round A and replay it during round B. */
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    th_ready(&t, 1);
    th_deliver(&t);
    th_ready_all(&t);
    long k = th_find(&t, RAFT_MSG_HEARTBEAT_RESP, 2, 1);
    CHECK(k >= 0);
    struct raft_message old = t.q[k];
    CHECK(old.context != 0);
    th_deliver(&t);
    CHECK_EQ(t.nodes[1].n_reads, 0);
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 2), 0);
    th_ready(&t, 1);
    long hb = th_find(&t, RAFT_MSG_HEARTBEAT, 1, 2);
    CHECK(hb >= 0 && t.q[hb].context != old.context);
    th_drop(&t, 0, 0, 0);
    CHECK_EQ(raft_step(th_r(&t, 1), &old), 0); /* the late duplicate */
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    /* The next heartbeat carries round B's context and completes it. */
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 2);
    CHECK_EQ(t.nodes[1].reads[1].cookie, 2);
    th_free(&t);
}

static void test_follower_forwards(void)
{
    struct th t;
    cluster(&t);
    uint64_t idx = th_propose(&t, 1, 5);
    th_settle(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 2), 77), 0);
    th_ready(&t, 2);
    CHECK(th_find(&t, RAFT_MSG_READ_INDEX, 2, 1) >= 0);
    th_settle(&t);
    CHECK_EQ(t.nodes[2].n_reads, 1);
    CHECK_EQ(t.nodes[2].reads[0].status, 0);
    CHECK_EQ(t.nodes[2].reads[0].cookie, 77);
    CHECK_EQ(t.nodes[2].reads[0].index, idx);
    /* No leader known: refused, retryable. */
    th_free(&t);
    th_init(&t, 3, 3, NULL);
    CHECK_EQ(raft_read_index(th_r(&t, 2), 1), RAFT_ENOTLEADER);
    th_free(&t);
}

static void test_new_leader_reads_after_noop(void)
{
    /* Trap 1: a new leader answers reads only once its no-op is committed. */
    struct th t;
    elect_before_noop(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 5), 0);
    th_ready(&t, 1);
    CHECK_EQ(th_find(&t, RAFT_MSG_HEARTBEAT, 1, 0), -1);
    th_drop(&t, 0, 0, 0);
    CHECK_EQ(t.nodes[1].n_reads, 0);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].index, 2);
    th_free(&t);
}

static void test_step_down_fails_everything_pending(void)
{
    /* Trap 14: a leader that loses its leadership fails every waiting proposal and read
     * (local and forwarded) with a retryable error. */
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    CHECK_EQ(raft_read_index(th_r(&t, 3), 3), 0);
    th_propose(&t, 1, 9);
    th_ready(&t, 3);
    th_deliver(&t); /* 3's forwarded read reaches 1 */
    th_ready(&t, 1);
    th_drop(&t, 0, 1, 0); /* nothing from the leader arrives */
    CHECK_EQ(raft_read_index(th_r(&t, 1), 2), 0);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_HEARTBEAT_RESP;
    m.from = 2;
    m.to = 1;
    m.term = raft_term(th_r(&t, 1)) + 1;
    CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_reads, 2);
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(t.nodes[1].reads[i].status, RAFT_ELEADERLOST);
    }
    CHECK_EQ(t.nodes[1].n_props, 1);
    CHECK_EQ(t.nodes[1].props[0].status, RAFT_ELEADERLOST);
    CHECK(raft_error_retryable(RAFT_ELEADERLOST));
    th_deliver(&t);
    th_ready(&t, 3);
    CHECK_EQ(t.nodes[3].n_reads, 1);
    CHECK(t.nodes[3].reads[0].status != 0 && raft_error_retryable(t.nodes[3].reads[0].status));
    th_free(&t);
}

static void test_no_lease_read_without_quorum(void)
{
    /* Trap 11: there is no lease read; a cut-off leader never answers, it fails the read
     * when CheckQuorum makes it step down. */
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    for (int i = 0; i < 30; i++) {
        th_tick(&t, 1, 1);
        th_drop(&t, 0, 1, 0);
        CHECK(t.nodes[1].n_reads == 0 || t.nodes[1].reads[0].status != 0);
    }
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].status, RAFT_ELEADERLOST);
    th_free(&t);
}

static void bounded(struct raft_config *cfg, uint64_t id)
{
    cfg->max_pending_reads = 2;
}

static void test_pending_reads_bounded(void)
{
    struct th t;
    th_init(&t, 3, 3, bounded);
    th_elect(&t, 1);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 2), 0);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 3), RAFT_EBUSY);
    th_settle(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 3), 0);
    th_free(&t);
}

static void test_round_completes_when_configuration_shrinks(void)
{
    /* Four voters; the round has acknowledgements from 1 and 2 only (2 of 4). Member 4 is
     * removed: once the configuration is {1,2,3}, those two are a quorum and the read must
     * complete without waiting for an acknowledgement that never comes. */
    struct th t;
    th_init(&t, 4, 4, NULL);
    th_elect(&t, 1);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 9), 0);
    struct raft_change rm = {RAFT_CHANGE_REMOVE, 4};
    bool changed = false;
    for (int i = 0; i < 40 && t.nodes[1].n_reads == 0; i++) {
        th_ready_all(&t);
        th_drop(&t, RAFT_MSG_HEARTBEAT, 1, 3);
        th_drop(&t, RAFT_MSG_HEARTBEAT, 1, 4);
        th_deliver(&t);
        if (!changed && i == 2) {
            CHECK_EQ(t.nodes[1].n_reads, 0); /* 2 of 4: not yet */
            CHECK_EQ(raft_conf_change(th_r(&t, 1), &rm, 1, 0), 0);
            changed = true;
        }
        if (i % 3 == 0) {
            th_tick(&t, 1, 1);
        }
    }
    CHECK(changed);
    CHECK_EQ(raft_conf(th_r(&t, 1))->n_voters, 3);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].status, 0);
    th_free(&t);
}

static void test_late_answer_to_a_read_forwarded_before_a_restart(void)
{
    /* Member 2 forwards a read; the leader's answer (index i) is delayed in the network while
     * 2 restarts. A write then commits at w > i, and a new read is forwarded by the restarted
     * 2. The late answer must not complete the new read: serving it at i would miss the
     * write that completed before the read began (a stale read). */
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 2), 1), 0);
    struct raft_message old;
    bool held = false;
    for (int i = 0; i < 10 && !held; i++) {
        th_ready_all(&t);
        long k = th_find(&t, RAFT_MSG_READ_INDEX_RESP, 1, 2);
        if (k >= 0) {
            old = t.q[k]; /* no entries or data: a shallow copy owns nothing */
            th_drop(&t, RAFT_MSG_READ_INDEX_RESP, 1, 2);
            held = true;
            break;
        }
        th_deliver(&t);
    }
    CHECK(held && !old.reject);
    th_settle(&t);
    th_crash(&t, 2);
    th_start(&t, 2);
    uint64_t w = th_propose(&t, 1, 99);
    th_settle(&t);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), w);
    CHECK(old.index < w);
    CHECK_EQ(raft_leader(th_r(&t, 2)), 1);
    CHECK_EQ(raft_read_index(th_r(&t, 2), 2), 0);
    th_ready(&t, 2);
    th_drop(&t, 0, 0, 0);
    CHECK_EQ(raft_step(th_r(&t, 2), &old), 0);
    th_ready(&t, 2);
    for (size_t i = 0; i < t.nodes[2].n_reads; i++) {
        const struct raft_read_state *rs = &t.nodes[2].reads[i];
        CHECK(rs->cookie != 2 || rs->status != 0 || rs->index >= w);
    }
    th_free(&t);
}

/* The heartbeats of member 1 to member to, with context ctx, in the queue. */
static size_t count_heartbeats(struct th *t, uint64_t to, uint64_t ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nq; i++) {
        n += t->q[i].type == RAFT_MSG_HEARTBEAT && t->q[i].from == 1 && t->q[i].to == to &&
             t->q[i].context == ctx;
    }
    return n;
}

/* Drops the heartbeats of member 1 to member to (0: any) with context ctx. */
static void drop_heartbeats(struct th *t, uint64_t to, uint64_t ctx)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->nq; i++) {
        const struct raft_message *m = &t->q[i];
        if (!(m->type == RAFT_MSG_HEARTBEAT && m->from == 1 && (to == 0 || m->to == to) &&
              m->context == ctx)) {
            t->q[keep++] = t->q[i]; /* heartbeats own nothing: nothing to free */
        }
    }
    t->nq = keep;
}

/* The heartbeats of member 1 with context ctx in the queue, and to whom (a bit per id). */
static size_t round_heartbeats(struct th *t, uint64_t ctx, uint32_t *to_bits)
{
    size_t n = 0;
    *to_bits = 0;
    for (size_t i = 0; i < t->nq; i++) {
        const struct raft_message *m = &t->q[i];
        if (m->type == RAFT_MSG_HEARTBEAT && m->from == 1 && m->context == ctx) {
            n++;
            *to_bits |= 1u << m->to;
        }
    }
    return n;
}

/* The context of the round member 1 starts for read cookie, after its ready. */
static uint64_t start_round(struct th *t, uint64_t cookie)
{
    CHECK_EQ(raft_read_index(th_r(t, 1), cookie), 0);
    th_ready(t, 1);
    uint64_t ctx = 0;
    for (size_t i = 0; i < t->nq; i++) {
        if (t->q[i].type == RAFT_MSG_HEARTBEAT && t->q[i].from == 1 && t->q[i].context > ctx) {
            ctx = t->q[i].context;
        }
    }
    CHECK(ctx != 0);
    return ctx;
}

static void all_peers(struct raft_config *cfg, uint64_t id)
{
    cfg->read_round_all = true;
}

static void test_round_asks_a_majority_only(void)
{
    /* A round asks only as many voters as a majority needs besides the leader: 1 of 2
     * followers, 2 of 4; never a learner; everyone while the configuration is joint or with
     * read_round_all. Each read still completes. */
    struct th t;
    uint32_t to;
    cluster(&t);
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), 1);
    CHECK_EQ(to, 1u << 2);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].status, 0);
    th_free(&t);

    cluster_with(&t, all_peers);
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), 2);
    CHECK_EQ(to, (1u << 2) | (1u << 3));
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    th_free(&t);

    th_init(&t, 5, 5, NULL);
    th_elect(&t, 1);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), 2);
    CHECK_EQ(to, (1u << 2) | (1u << 3));
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].status, 0);
    th_free(&t);

    /* Three voters and a learner (4), then 4 promoted: joint, everyone asked. */
    th_init(&t, 3, 4, NULL);
    th_elect(&t, 1);
    th_tick(&t, 1, 1);
    th_settle(&t);
    struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &add, 1, 0), 0);
    th_settle(&t);
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 1)), 4));
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), 1);
    CHECK_EQ(to, 1u << 2);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    for (int i = 0; i < 3; i++) { /* the learner catches up: promotion allowed */
        th_tick(&t, 1, 1);
        th_settle(&t);
    }
    struct raft_change promote = {RAFT_CHANGE_ADD_VOTER, 4};
    CHECK_EQ(raft_conf_change(th_r(&t, 1), &promote, 1, 0), 0);
    CHECK(raft_conf_is_joint(raft_conf(th_r(&t, 1))));
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 2), &to), 3);
    CHECK_EQ(to, (1u << 2) | (1u << 3) | (1u << 4));
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 2);
    CHECK_EQ(t.nodes[1].reads[1].status, 0);
    th_free(&t);
}

static void test_round_tells_the_forwarding_member_the_commit_index(void)
{
    /* Member 3 holds a write but has not heard it is committed (everything to it after its
     * append was lost); it forwards a read. The round asks member 2 only, but a heartbeat
     * goes to 3 as well: its commit index reaches the read index without waiting for a
     * tick, so it can serve the read at once. */
    struct th t;
    uint32_t to;
    cluster(&t);
    uint64_t idx = th_propose(&t, 1, 5);
    th_ready(&t, 1);
    th_deliver(&t); /* the appends reach 2 and 3 */
    th_ready_all(&t);
    th_deliver(&t); /* their answers reach 1: committed */
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), idx);
    for (int i = 0; i < 5; i++) {
        th_ready_all(&t);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
    }
    CHECK(raft_commit_index(th_r(&t, 3)) < idx);
    CHECK_EQ(raft_read_index(th_r(&t, 3), 9), 0);
    th_ready(&t, 3);
    th_deliver(&t); /* the READ_INDEX reaches 1 */
    th_ready(&t, 1);
    uint64_t ctx = 0;
    for (size_t i = 0; i < t.nq; i++) {
        if (t.q[i].type == RAFT_MSG_HEARTBEAT && t.q[i].context > ctx) {
            ctx = t.q[i].context;
        }
    }
    CHECK_EQ(round_heartbeats(&t, ctx, &to), 2);
    CHECK_EQ(to, (1u << 2) | (1u << 3));
    th_settle(&t); /* no tick */
    CHECK_EQ(t.nodes[3].n_reads, 1);
    CHECK_EQ(t.nodes[3].reads[0].status, 0);
    CHECK_EQ(t.nodes[3].reads[0].index, idx);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), idx);
    th_free(&t);
}

static void test_round_to_every_peer_of_a_large_configuration(void)
{
    /* 16 voters and 2 learners, every peer asked: 17 heartbeats (more than a configuration's
     * voters, which overran the list of whom to ask once: ASan catches it). Without
     * read_round_all, 8 of the 15 other voters (a majority is 9 with the leader). */
    struct th t;
    uint32_t to;
    for (int all = 0; all < 2; all++) {
        th_init(&t, 16, 18, all ? all_peers : NULL);
        th_elect(&t, 1);
        th_tick(&t, 1, 1);
        th_settle(&t);
        for (uint64_t id = 17; id <= 18; id++) {
            struct raft_change add = {RAFT_CHANGE_ADD_LEARNER, id};
            CHECK_EQ(raft_conf_change(th_r(&t, 1), &add, 1, 0), 0);
            th_settle(&t);
        }
        CHECK_EQ(raft_conf(th_r(&t, 1))->n_learners, 2);
        CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), all ? 17 : 8);
        th_settle(&t);
        CHECK_EQ(t.nodes[1].n_reads, 1);
        CHECK_EQ(t.nodes[1].reads[0].status, 0);
        th_free(&t);
    }
}

/* Delivers and processes messages for a while, every one to or from member id lost. */
static void run_without(struct th *t, uint64_t id)
{
    for (int i = 0; i < 5; i++) {
        th_drop(t, 0, 0, id);
        th_drop(t, 0, id, 0);
        th_deliver(t);
        th_ready_all(t);
    }
}

static void test_round_asks_those_that_answer(void)
{
    /* The follower a round asks is cut off: the next tick's heartbeats carry the context
     * to everyone, the other follower's answer ends the round, and later rounds ask it. */
    struct th t;
    uint32_t to;
    cluster(&t);
    CHECK_EQ(round_heartbeats(&t, start_round(&t, 1), &to), 1);
    CHECK_EQ(to, 1u << 2);
    run_without(&t, 2);
    CHECK_EQ(t.nodes[1].n_reads, 0); /* no answer without a tick */
    th_tick(&t, 1, 1);
    run_without(&t, 2);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    CHECK_EQ(t.nodes[1].reads[0].status, 0);
    for (uint64_t c = 2; c <= 4; c++) {
        CHECK_EQ(round_heartbeats(&t, start_round(&t, c), &to), 1);
        CHECK_EQ(to, 1u << 3);
        run_without(&t, 2);
        CHECK_EQ(t.nodes[1].n_reads, c);
        CHECK_EQ(t.nodes[1].reads[c - 1].status, 0);
    }
    th_free(&t);
}

static void four_rounds(struct raft_config *cfg, uint64_t id)
{
    cfg->max_read_rounds = 4;
    cfg->read_round_all = true; /* member 3 answers a round below */
}

static void test_read_starts_its_round_while_one_is_out(void)
{
    /* Pipelined rounds: read 2 arrives while read 1's round is out; its own round starts at
     * once (a heartbeat with a new context goes out before round 1 is answered). The answer
     * to round 2 alone ends both, oldest first, each at the commit index of its start. */
    struct th t;
    cluster_with(&t, four_rounds);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    th_ready(&t, 1);
    long k = th_find(&t, RAFT_MSG_HEARTBEAT, 1, 2);
    CHECK(k >= 0);
    uint64_t ctx1 = t.q[k].context;
    uint64_t index1 = raft_commit_index(th_r(&t, 1));
    th_propose(&t, 1, 77); /* the commit index moves between the two rounds */
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1); /* round 1 was answered meanwhile */
    CHECK_EQ(raft_read_index(th_r(&t, 1), 2), 0);
    th_ready(&t, 1);
    k = th_find(&t, RAFT_MSG_HEARTBEAT, 1, 2);
    CHECK(k >= 0);
    uint64_t ctx2 = t.q[k].context;
    CHECK(ctx2 > ctx1);
    /* Round 2 out; read 3 comes: round 3 starts without waiting for round 2. */
    CHECK_EQ(raft_read_index(th_r(&t, 1), 3), 0);
    th_ready(&t, 1);
    CHECK_EQ(count_heartbeats(&t, 2, ctx2), 1);
    CHECK_EQ(count_heartbeats(&t, 2, ctx2 + 1), 1);
    CHECK_EQ(count_heartbeats(&t, 3, ctx2 + 1), 1);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    /* Round 2's heartbeats are lost; member 3 answers round 3. */
    drop_heartbeats(&t, 0, ctx2);
    drop_heartbeats(&t, 2, ctx2 + 1);
    CHECK_EQ(t.nq, 1);
    th_deliver(&t);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    th_ready_all(&t);
    th_deliver(&t);
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_reads, 3);
    CHECK_EQ(t.nodes[1].reads[0].index, index1);
    for (size_t i = 1; i < 3; i++) {
        CHECK_EQ(t.nodes[1].reads[i].cookie, i + 1);
        CHECK_EQ(t.nodes[1].reads[i].status, 0);
        CHECK_EQ(t.nodes[1].reads[i].index, raft_commit_index(th_r(&t, 1)));
    }
    CHECK(t.nodes[1].reads[1].index > index1);
    th_free(&t);
}

static void two_rounds(struct raft_config *cfg, uint64_t id)
{
    cfg->max_read_rounds = 2;
}

static void test_rounds_in_flight_bounded(void)
{
    /* With two rounds out, a third read waits for the oldest to end, then goes out. */
    struct th t;
    cluster_with(&t, two_rounds);
    for (uint64_t c = 1; c <= 3; c++) {
        CHECK_EQ(raft_read_index(th_r(&t, 1), c), 0);
        th_ready(&t, 1);
    }
    CHECK_EQ(t.nq, 2); /* two rounds, one follower asked each: read 3 waits */
    CHECK(!raft_has_ready(th_r(&t, 1)));
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(t.nodes[1].reads[i].cookie, i + 1);
        CHECK_EQ(t.nodes[1].reads[i].status, 0);
    }
    th_free(&t);
}

static void test_answer_to_an_unknown_context_ignored(void)
{
    /* A heartbeat answer whose context this leader never gave out (corrupt, forged, or
     * from a later core's numbering) must not end any round, now or later. */
    struct th t;
    cluster(&t);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    th_ready(&t, 1);
    long k = th_find(&t, RAFT_MSG_HEARTBEAT, 1, 2);
    CHECK(k >= 0);
    uint64_t ctx = t.q[k].context;
    th_drop(&t, 0, 0, 0);
    for (uint64_t from = 2; from <= 3; from++) {
        struct raft_message m = {0};
        m.type = RAFT_MSG_HEARTBEAT_RESP;
        m.from = from;
        m.to = 1;
        m.term = raft_term(th_r(&t, 1));
        m.context = ctx + 1000;
        CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    }
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_reads, 0);
    /* Later rounds (contexts up to ctx + 1000) are not ended by it either. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(raft_read_index(th_r(&t, 1), 10 + i), 0);
        th_ready(&t, 1);
        th_drop(&t, 0, 0, 0);
    }
    CHECK_EQ(t.nodes[1].n_reads, 0);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(t.nodes[1].n_reads, 4);
    th_free(&t);
}

/* raft_leader_commit_point: false on a follower and on a new leader whose no-op is not committed
 * (trap 1); the commit index after. It is no read point by itself: a leader cut off while the
 * others elect a new one and commit still gives its old index; but no entry it proposes after
 * that can commit in its term, which is what a caller relying on it (fs/ write-only opens)
 * checks through its own write. */
static void test_leader_commit_point(void)
{
    struct th t;
    uint64_t point = 0;
    elect_before_noop(&t);
    CHECK(!raft_leader_commit_point(th_r(&t, 1), &point)); /* no-op not committed */
    th_drop(&t, 0, 0, 0);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK(raft_leader_commit_point(th_r(&t, 1), &point));
    CHECK_EQ(point, raft_commit_index(th_r(&t, 1)));
    CHECK(!raft_leader_commit_point(th_r(&t, 2), &point));
    th_propose(&t, 1, 7);
    th_settle(&t);
    CHECK(raft_leader_commit_point(th_r(&t, 1), &point));
    CHECK_EQ(point, 3);

    /* Member 1 cut off; 2 and 3 elect one of them, which commits a write. */
    uint64_t old_term = raft_term(th_r(&t, 1)), nl = 0;
    for (int i = 0; i < 200 && !nl; i++) {
        th_tick(&t, 2, 1);
        th_tick(&t, 3, 1);
        th_ready(&t, 2);
        th_ready(&t, 3);
        th_drop(&t, 0, 1, 0);
        th_drop(&t, 0, 0, 1);
        th_deliver(&t);
        nl = raft_role(th_r(&t, 2)) == RAFT_LEADER   ? 2
             : raft_role(th_r(&t, 3)) == RAFT_LEADER ? 3
                                                     : 0;
    }
    CHECK(nl != 0);
    th_propose(&t, nl, 8);
    for (int i = 0; i < 20; i++) {
        th_ready(&t, 2);
        th_ready(&t, 3);
        th_drop(&t, 0, 1, 0);
        th_drop(&t, 0, 0, 1);
        th_deliver(&t);
    }
    CHECK(raft_commit_index(th_r(&t, nl)) > 3);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    CHECK(raft_leader_commit_point(th_r(&t, 1), &point));
    CHECK_EQ(point, 3); /* behind: not a read point without a confirmation */

    /* What member 1 proposes now never commits in its term. */
    uint64_t mine = th_propose(&t, 1, 9);
    th_ready(&t, 1);
    th_settle(&t);
    CHECK(raft_role(th_r(&t, 1)) != RAFT_LEADER);
    for (uint64_t id = 1; id <= 3; id++) {
        uint64_t term = 0;
        if (raft_commit_index(th_r(&t, id)) >= mine &&
            raft_log_term(th_r(&t, id), mine, &term) == 0)
            CHECK(term != old_term);
    }
    th_free(&t);
}

int main(void)
{
    test_round_completes_when_configuration_shrinks();
    test_reads_share_one_round();
    test_late_answer_never_releases_a_later_round();
    test_follower_forwards();
    test_new_leader_reads_after_noop();
    test_step_down_fails_everything_pending();
    test_no_lease_read_without_quorum();
    test_pending_reads_bounded();
    test_late_answer_to_a_read_forwarded_before_a_restart();
    test_read_starts_its_round_while_one_is_out();
    test_rounds_in_flight_bounded();
    test_answer_to_an_unknown_context_ignored();
    test_leader_commit_point();
    test_round_asks_a_majority_only();
    test_round_asks_those_that_answer();
    test_round_to_every_peer_of_a_large_configuration();
    test_round_tells_the_forwarding_member_the_commit_index();
    printf("test_raft_read: ok\n");
    return 0;
}
