/* tests/unit/test_raft_robustness.c: untrusted peer input, restarts, released counters (traps 9,
 * 12, 13, 14). */
#include <string.h>

#include "test_raft_harness.h"

static uint64_t junk = 0x1234;

static struct raft_entry rand_entry(struct sim_rng *g, uint64_t near_index, uint64_t near_term)
{
    struct raft_entry e;
    e.index = near_index + rng_below(g, 4) - (near_index > 2 ? 2 : 0);
    e.term = rng_below(g, near_term + 3);
    e.type = (uint32_t)rng_below(g, 5);
    e.len = rng_chance(g, 200) ? 0 : 8;
    e.data = rng_chance(g, 100) ? NULL : (uint8_t *)&junk;
    return e;
}

static struct raft_message rand_msg(struct sim_rng *g, struct th *t, uint64_t to,
                                    struct raft_entry *ents)
{
    struct raft *r = th_r(t, to);
    uint64_t term = raft_term(r);
    uint64_t last = raft_last_index(r);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = (uint32_t)rng_below(g, RAFT_MSG_TYPE_MAX + 3);
    m.from = rng_below(g, 6);
    m.to = rng_chance(g, 900) ? to : rng_below(g, 6);
    /* Mostly stale or current terms: a forged higher term would be obeyed like any peer's. */
    m.term = rng_chance(g, 50) ? 0 : term - rng_below(g, term + 1) / 2;
    m.prev_index = rng_below(g, last + 5);
    m.prev_term = rng_below(g, term + 2);
    m.commit = rng_below(g, last + 10);
    m.index = rng_below(g, last + 10);
    m.hint_index = rng_below(g, last + 10);
    m.hint_term = rng_below(g, term + 2);
    m.last_index = rng_below(g, last + 10);
    m.last_term = rng_below(g, term + 2);
    m.context = rng_below(g, 10);
    m.offset = rng_below(g, 100);
    m.reject = rng_chance(g, 500);
    m.transfer = rng_chance(g, 100);
    m.done = rng_chance(g, 300);
    m.n_entries = (size_t)rng_below(g, 4);
    for (size_t i = 0; i < m.n_entries; i++) {
        ents[i] = rand_entry(g, m.prev_index + 1 + i, term);
    }
    m.entries = m.n_entries ? ents : NULL;
    m.snap.index = rng_below(g, last + 10);
    m.snap.term = rng_below(g, term + 2);
    m.snap.size = rng_below(g, 64);
    m.snap.conf.n_voters = (uint32_t)rng_below(g, 4);
    for (uint32_t i = 0; i < m.snap.conf.n_voters; i++) {
        m.snap.conf.voters[i] = 1 + rng_below(g, 4);
    }
    m.len = (size_t)rng_below(g, 16);
    m.data = (uint8_t *)&junk;
    if (m.len > 8) {
        m.len = 8;
    }
    return m;
}

static void test_fuzzed_peer_input(void)
{
    /* Trap 9 / issue point 9: stale terms, unknown senders, indexes beyond the log, bogus
     * chunks: the core never asserts (raft_check runs after every call) and never fails. */
    struct sim_rng g = {.s = 2024};
    for (int round = 0; round < 30; round++) {
        struct th t;
        th_init(&t, 3, 3, NULL);
        th_elect(&t, 1 + (uint64_t)(round % 3));
        for (int i = 0; i < 400; i++) {
            uint64_t to = 1 + rng_below(&g, 3);
            struct raft_entry ents[4];
            struct raft_message m = rand_msg(&g, &t, to, ents);
            CHECK_EQ(raft_step(th_r(&t, to), &m), 0);
            th_ready(&t, to);
            th_drop(&t, 0, 0, 0);
            if (i % 50 == 0) {
                th_tick(&t, to, 1);
                th_settle(&t);
            }
        }
        th_free(&t);
    }
}

static void test_foreign_messages_ignored(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    uint64_t term = raft_term(th_r(&t, 1));
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    /* Not for us, from nobody, from ourselves, of no term, of no known type: ignored even
     * with a huge term. */
    uint64_t bad[][4] = {{RAFT_MSG_APPEND, 2, 3, term + 9},
                         {RAFT_MSG_APPEND, 0, 1, term + 9},
                         {RAFT_MSG_VOTE, 1, 1, term + 9},
                         {RAFT_MSG_APPEND, 2, 1, 0},
                         {99, 2, 1, term + 9},
                         {0, 2, 1, term + 9}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m.type = (uint32_t)bad[i][0];
        m.from = bad[i][1];
        m.to = bad[i][2];
        m.term = bad[i][3];
        CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
        CHECK_EQ(raft_term(th_r(&t, 1)), term);
        CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    }
    /* Entries announced but absent (a decoder that lost the array): malformed, ignored. */
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    m.term = term;
    m.prev_index = 1;
    m.prev_term = 1;
    m.prev_index = raft_last_index(th_r(&t, 2));
    CHECK_EQ(raft_log_term(th_r(&t, 2), m.prev_index, &m.prev_term), 0);
    m.n_entries = 3;
    uint64_t last2 = raft_last_index(th_r(&t, 2));
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    CHECK_EQ(raft_last_index(th_r(&t, 2)), last2);
    /* Answers from a member the leader does not track are ignored... */
    memset(&m, 0, sizeof(m));
    m.from = 7;
    m.to = 1;
    m.term = term;
    uint32_t resp[] = {RAFT_MSG_APPEND_RESP, RAFT_MSG_HEARTBEAT_RESP, RAFT_MSG_SNAPSHOT_RESP,
                       RAFT_MSG_VOTE_RESP, RAFT_MSG_PREVOTE_RESP};
    for (size_t i = 0; i < sizeof(resp) / sizeof(resp[0]); i++) {
        m.type = resp[i];
        m.index = 1000;
        CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    }
    /* ...and its forwarded reads refused. */
    m.type = RAFT_MSG_READ_INDEX;
    m.context = 5;
    CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    th_ready(&t, 1);
    long k = th_find(&t, RAFT_MSG_READ_INDEX_RESP, 1, 7);
    CHECK(k >= 0 && t.q[k].reject);
    /* An accepted answer claiming more than the leader's log is ignored. */
    m.type = RAFT_MSG_APPEND_RESP;
    m.from = 2;
    m.index = 1000;
    m.reject = false;
    CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    uint64_t match = 0;
    CHECK_EQ(raft_member_match(th_r(&t, 1), 2, &match), 0);
    CHECK(match <= raft_last_index(th_r(&t, 1)));
    th_drop(&t, 0, 0, 0);
    /* Still a working cluster. */
    uint64_t idx = th_propose(&t, 1, 3);
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), idx);
    th_free(&t);
}

static void tiny_window(struct raft_config *cfg, uint64_t id)
{
    cfg->max_msg_bytes = 8;
    cfg->max_inflight_msgs = 2;
}

static void test_counters_released_on_step_down(void)
{
    /* Trap 13: full windows, then a higher term: every counter goes with the leadership
     * (raft_check, run after each call, verifies no leader state is left). */
    struct th t;
    th_init(&t, 3, 3, tiny_window);
    th_elect(&t, 1);
    for (int i = 1; i <= 6; i++) {
        th_propose(&t, 1, (uint64_t)i); /* the value is also the cookie */
    }
    th_ready(&t, 1);
    th_drop(&t, 0, 0, 0);
    CHECK_EQ(raft_read_index(th_r(&t, 1), 1), 0);
    th_ready(&t, 1);
    th_drop(&t, 0, 0, 0);
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = raft_term(th_r(&t, 1)) + 1;
    m.prev_index = 0;
    CHECK_EQ(raft_step(th_r(&t, 1), &m), 0);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    char why[128];
    CHECK_EQ(raft_check(th_r(&t, 1), why, sizeof(why)), 0);
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_props, 6);
    CHECK_EQ(t.nodes[1].n_reads, 1);
    th_free(&t);
}

static void test_restart_never_applies_twice(void)
{
    /* Trap 14: after a restart with the applied index, application resumes right after it
     * (the harness checks contiguity across the restart). */
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    for (int i = 0; i < 5; i++) {
        th_propose(&t, 1, (uint64_t)i);
    }
    th_settle(&t);
    th_tick(&t, 1, 1);
    th_settle(&t);
    size_t before = t.nodes[2].n_applied;
    CHECK_EQ(t.nodes[2].applied[before - 1].index, 7);
    th_crash(&t, 2);
    th_start(&t, 2);
    th_propose(&t, 1, 9);
    th_settle(&t);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(t.nodes[2].n_applied, before + 1);
    CHECK_EQ(t.nodes[2].applied[before].index, 8);
    th_free(&t);
}

static void test_restart_never_resurrects_truncated_entries(void)
{
    /* Trap 12: 2..5 of term 2 are durable; a leader of term 3 replaces them and says commit
     * 5, but the replacing write is lost in a crash. On restart the old entries are back and
     * must not count as committed. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    static uint64_t v = 1;
    struct raft_entry old[4], neu[4];
    for (int i = 0; i < 4; i++) {
        old[i] = (struct raft_entry){
            .term = 2, .index = (uint64_t)i + 2, .type = 1, .len = 8, .data = (uint8_t *)&v};
        neu[i] = old[i];
        neu[i].term = 3;
    }
    struct raft_message m;
    m = th_append_msg(1, 2, 2, 1, 1, 1, old, 4);
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    th_ready(&t, 2);
    t.nodes[2].hold_sync = true;
    m.from = 3;
    m.term = 3;
    m.entries = neu;
    m.commit = 5;
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    th_ready(&t, 2);
    CHECK_EQ(raft_commit_index(th_r(&t, 2)), 5);
    CHECK_EQ(t.nodes[2].n_applied, 1); /* nothing durable to apply yet */
    CHECK(t.nodes[2].disk.hs.commit <= 1);
    th_crash(&t, 2);
    t.nodes[2].hold_sync = false;
    th_start(&t, 2);
    CHECK_EQ(raft_commit_index(th_r(&t, 2)), 1);
    uint64_t term = 0;
    CHECK_EQ(raft_log_term(th_r(&t, 2), 5, &term), 0);
    CHECK_EQ(term, 2); /* the old entry is back, but uncommitted */
    th_ready(&t, 2);
    CHECK_EQ(t.nodes[2].n_applied, 1);
    th_free(&t);
}

static void bad_applied(struct raft_config *cfg, uint64_t id)
{
    cfg->applied = 50;
}

static void test_fail_closed_on_inconsistent_storage(void)
{
    /* Trap 12: storage that contradicts itself is refused at start, not trusted. */
    struct sim_disk d;
    disk_init(&d);
    struct raft_config cfg;
    raft_config_init(&cfg);
    cfg.id = 1;
    disk_storage(&d, &cfg.storage);
    bad_applied(&cfg, 1);
    struct raft *r = NULL;
    CHECK_EQ(raft_new(&cfg, &r), RAFT_ECORRUPT);
    CHECK(r == NULL);
    cfg.applied = 0;
    cfg.id = 0;
    CHECK_EQ(raft_new(&cfg, &r), RAFT_EINVAL);
    cfg.id = 1;
    cfg.election_ticks = 2;
    cfg.heartbeat_ticks = 2;
    CHECK_EQ(raft_new(&cfg, &r), RAFT_EINVAL);
    disk_free(&d);
}

static void test_extreme_indexes_and_terms(void)
{
    /* A peer's message with a current term but an index next to UINT64_MAX (a snapshot of
     * index 2^64-2), or a term next to UINT64_MAX: taking them would make index + 1 or
     * term + 1 wrap (an assertion when the member leads, or a term that can never be
     * campaigned in again). They are malformed and ignored; the cluster goes on. */
    static uint8_t image[8];
    uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1000, (uint64_t)1 << 63};
    for (size_t h = 0; h < sizeof(huge) / sizeof(huge[0]); h++) {
        struct th t;
        th_init(&t, 3, 3, NULL);
        th_elect(&t, 1);
        uint64_t term = raft_term(th_r(&t, 1));
        struct raft_message m;
        memset(&m, 0, sizeof(m));
        m.type = RAFT_MSG_SNAPSHOT;
        m.from = 1;
        m.to = 3;
        m.term = term;
        m.snap.index = huge[h];
        m.snap.term = term;
        m.snap.size = sizeof(image);
        m.snap.conf = t.bootstrap;
        m.data = image;
        m.len = sizeof(image);
        m.done = true;
        CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
        th_ready(&t, 3);
        CHECK(raft_last_index(th_r(&t, 3)) < 100);
        memset(&m, 0, sizeof(m));
        m.type = RAFT_MSG_HEARTBEAT_RESP;
        m.from = 3;
        m.to = 2;
        m.term = huge[h];
        CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
        CHECK_EQ(raft_term(th_r(&t, 2)), term);
        th_drop(&t, 0, 0, 0);
        /* Leader 1 crashes: 2 and 3 elect one of them, which commits. */
        th_crash(&t, 1);
        uint64_t lead = 0;
        for (int i = 0; i < 100 && lead == 0; i++) {
            th_tick(&t, 2, 1);
            th_tick(&t, 3, 1);
            th_settle(&t);
            lead = raft_role(th_r(&t, 2)) == RAFT_LEADER   ? 2
                   : raft_role(th_r(&t, 3)) == RAFT_LEADER ? 3
                                                           : 0;
        }
        CHECK(lead != 0);
        uint64_t idx = th_propose(&t, lead, 5);
        th_settle(&t);
        CHECK_EQ(raft_commit_index(th_r(&t, lead)), idx);
        th_free(&t);
    }
}

/* An APPEND without entries (what node_wire_raft_unpack makes of one: entries NULL) that
 * matches the follower's log and carries a commit: it commits, and it is answered. Found by
 * tests/fuzz (fuzz_raft): the follower computed m->entries + 0 from NULL, undefined behaviour
 * that the sanitizer build stops at. */
static void test_empty_append_without_array(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    th_settle(&t);
    uint64_t term = raft_term(th_r(&t, 1));
    uint64_t idx = th_propose(&t, 1, 7);
    th_ready(&t, 1);
    long i = th_find(&t, RAFT_MSG_APPEND, 1, 2);
    CHECK(i >= 0);
    th_deliver_one(&t, (size_t)i);
    th_ready(&t, 2);
    th_drop(&t, 0, 0, 0);
    CHECK_EQ(raft_last_index(th_r(&t, 2)), idx);
    CHECK(raft_commit_index(th_r(&t, 2)) < idx);
    struct raft_message m = th_append_msg(1, 2, term, idx, term, idx, NULL, 0);
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    CHECK_EQ(raft_commit_index(th_r(&t, 2)), idx);
    th_ready(&t, 2);
    CHECK(th_find(&t, RAFT_MSG_APPEND_RESP, 2, 1) >= 0);
    th_free(&t);
}

int main(void)
{
    test_fuzzed_peer_input();
    test_foreign_messages_ignored();
    test_counters_released_on_step_down();
    test_restart_never_applies_twice();
    test_restart_never_resurrects_truncated_entries();
    test_fail_closed_on_inconsistent_storage();
    test_extreme_indexes_and_terms();
    test_empty_append_without_array();
    printf("test_raft_robustness: ok\n");
    return 0;
}
