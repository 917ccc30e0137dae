/* tests/unit/test_raft_snapshot.c: compaction, chunked InstallSnapshot with offsets, traps 4, 7
 * and 8. */
#include <string.h>

#include "test_raft_harness.h"

static void small_chunks(struct raft_config *cfg, uint64_t id)
{
    cfg->max_snapshot_chunk = 16;
}

/* Leader 1 commits entries while 3 is cut off, then compacts its log. */
static void lagging_member(struct th *t)
{
    th_init(t, 3, 4, small_chunks);
    th_elect(t, 1);
    struct raft_change ch = {RAFT_CHANGE_ADD_LEARNER, 4};
    CHECK_EQ(raft_conf_change(th_r(t, 1), &ch, 1, 0), 0);
    th_settle(t);
    for (int i = 0; i < 10; i++) {
        th_propose(t, 1, (uint64_t)i);
        th_ready(t, 1);
        th_drop(t, 0, 0, 3);
        th_deliver(t);
        th_ready_all(t);
        th_drop(t, 0, 0, 3);
        th_deliver(t);
        th_ready_all(t);
        th_drop(t, 0, 0, 3);
    }
    CHECK_EQ(raft_commit_index(th_r(t, 1)), 13);
    th_compact(t, 1);
    CHECK_EQ(t->nodes[1].disk.snap.index, 13);
}

static void test_compacted_prev_sends_snapshot(void)
{
    struct th t;
    lagging_member(&t);
    /* Trap 4: 3's next entry is compacted on the leader: it gets a snapshot, in chunks. */
    size_t chunks = 0;
    for (int i = 0; i < 50 && t.nodes[3].installs == 0; i++) {
        th_tick(&t, 1, 1);
        for (size_t k = 0; k < t.nq; k++) {
            const struct raft_message *m = &t.q[k];
            CHECK(!(m->type == RAFT_MSG_APPEND && m->to == 3 && m->prev_index < 13 &&
                    m->prev_index > 0 && m->prev_term == 0));
            chunks += m->type == RAFT_MSG_SNAPSHOT && m->to == 3;
        }
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK_EQ(t.nodes[3].installs, 1);
    CHECK(chunks >= 3);
    CHECK_EQ(t.nodes[3].last_install.index, 13);
    th_settle(&t);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), raft_last_index(th_r(&t, 1)));
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), raft_commit_index(th_r(&t, 1)));
    /* Trap 8: the configuration came with the snapshot, and survives a restart. */
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 3)), 4));
    th_crash(&t, 3);
    th_start(&t, 3);
    CHECK(raft_conf_is_learner(raft_conf(th_r(&t, 3)), 4));
    CHECK_EQ(raft_conf(th_r(&t, 3))->n_voters, 3);
    /* The cluster goes on. */
    uint64_t idx = th_propose(&t, 1, 77);
    th_settle(&t);
    th_tick(&t, 1, 1);
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), idx);
    th_free(&t);
}

static void test_lost_chunk_resumes(void)
{
    /* The second chunk is lost: after a quiet while the leader resends from the last
     * acknowledged offset and the transfer completes. */
    struct th t;
    lagging_member(&t);
    bool dropped = false;
    size_t resent = 0;
    for (int i = 0; i < 80 && t.nodes[3].installs == 0; i++) {
        th_tick(&t, 1, 1);
        for (;;) {
            long k = th_find(&t, RAFT_MSG_SNAPSHOT, 1, 3);
            if (k < 0 || t.q[k].offset != 16) {
                break;
            }
            if (!dropped) {
                th_drop(&t, RAFT_MSG_SNAPSHOT, 1, 3);
                dropped = true;
            } else {
                resent++;
                break;
            }
        }
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK(dropped && resent >= 1);
    CHECK_EQ(t.nodes[3].installs, 1);
    th_free(&t);
}

static struct raft_message chunk(uint64_t term, uint64_t offset, size_t len, bool done)
{
    static uint8_t bytes[64];
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 3;
    m.term = term;
    m.snap.index = 20;
    m.snap.term = 2;
    m.snap.size = 40;
    m.snap.conf.n_voters = 3;
    m.snap.conf.voters[0] = 1;
    m.snap.conf.voters[1] = 2;
    m.snap.conf.voters[2] = 3;
    m.offset = offset;
    m.data = bytes;
    m.len = len;
    m.done = done;
    return m;
}

static struct raft_message step_answer(struct th *t, const struct raft_message *m)
{
    size_t before = t->nq;
    CHECK_EQ(raft_step(th_r(t, m->to), m), 0);
    th_ready(t, m->to);
    CHECK_EQ(t->nq, before + 1);
    return t->q[t->nq - 1];
}

static void test_wrong_offsets_answered(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    struct raft_message m = chunk(2, 16, 16, false);
    struct raft_message a = step_answer(&t, &m); /* nothing received yet: start at 0 */
    CHECK(a.type == RAFT_MSG_SNAPSHOT_RESP && a.reject && a.offset == 0 && !a.done);
    m = chunk(2, 0, 16, false);
    a = step_answer(&t, &m);
    CHECK(!a.reject && a.offset == 16);
    a = step_answer(&t, &m); /* duplicate: not written twice, resume at 16 */
    CHECK(!a.reject && a.offset == 16);
    m = chunk(2, 32, 8, true); /* gap: a chunk was lost */
    a = step_answer(&t, &m);
    CHECK(a.reject && a.offset == 16);
    m = chunk(2, 16, 30, false); /* beyond the announced size: malformed, ignored */
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    m = chunk(2, 16, 24, false); /* reaches the end without "done": malformed */
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    th_ready(&t, 3);
    m = chunk(2, 16, 16, false);
    a = step_answer(&t, &m);
    CHECK(!a.reject && a.offset == 32);
    m = chunk(2, 32, 8, true);
    a = step_answer(&t, &m);
    CHECK(a.done && a.index == 20);
    CHECK_EQ(t.nodes[3].installs, 1);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), 20);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 20);
    th_free(&t);

    /* A transfer is never continued from another leader (or term): two images of the same
     * index need not be byte-identical. */
    th_init(&t, 3, 3, NULL);
    m = chunk(2, 0, 16, false);
    a = step_answer(&t, &m);
    CHECK(!a.reject && a.offset == 16);
    m = chunk(3, 16, 16, false);
    m.from = 2;
    a = step_answer(&t, &m);
    CHECK(a.reject && a.offset == 0);
    th_free(&t);
}

static void test_install_keeps_suffix_only_on_match(void)
{
    /* Trap 7, matching: 3 holds entry 20 of term 2 and more after it; they stay. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    static uint64_t v = 5;
    struct raft_entry ents[22];
    th_fill_entries(ents, 22, 2, 2, &v);
    struct raft_message m;
    m = th_append_msg(1, 3, 2, 1, 1, 1, ents, 22); /* 2..23 */
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    th_ready(&t, 3);
    m = chunk(2, 0, 16, false);
    struct raft_message a = step_answer(&t, &m);
    CHECK(a.done && a.index == 20);
    CHECK_EQ(t.nodes[3].installs, 0);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 23);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), 20);
    th_free(&t);

    /* Trap 7, not matching: entry 20 has another term; the whole log goes. */
    th_init(&t, 3, 3, NULL);
    for (int i = 0; i < 22; i++) {
        ents[i].term = 1;
    }
    m = th_append_msg(1, 3, 2, 1, 1, 1, ents, 22);
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    th_ready(&t, 3);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 23);
    m = chunk(2, 0, 16, false);
    step_answer(&t, &m);
    m = chunk(2, 16, 16, false);
    step_answer(&t, &m);
    m = chunk(2, 32, 8, true);
    a = step_answer(&t, &m);
    CHECK(a.done && a.index == 20);
    CHECK_EQ(t.nodes[3].installs, 1);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 20);
    uint64_t term = 0;
    CHECK_EQ(raft_log_term(th_r(&t, 3), 20, &term), 0);
    CHECK_EQ(term, 2);
    CHECK_EQ(raft_log_term(th_r(&t, 3), 21, &term), RAFT_EUNAVAILABLE);
    th_free(&t);
}

static void test_install_never_drops_acknowledged_entries(void)
{
    /* A transfer of snapshot 20/2 from leader 1 has begun when a delayed APPEND of the same
     * leader and term brings entries 2..23: 3 now holds entry 20 of term 2, so its log up to
     * 23 is the leader's, and it acknowledges 23 (the leader counts it for commitment). The
     * last chunk of the transfer arrives afterwards: installing would throw away 21..23,
     * which the leader already counts on 3 (trap 7: the suffix stays when (index, term)
     * matches, whatever the offset of the chunk that finds it). */
    struct th t;
    th_init(&t, 3, 3, NULL);
    struct raft_message m = chunk(2, 0, 16, false);
    struct raft_message a = step_answer(&t, &m);
    CHECK(!a.reject && a.offset == 16);
    th_drop(&t, 0, 0, 0);
    static uint64_t v = 5;
    struct raft_entry ents[22];
    th_fill_entries(ents, 22, 2, 2, &v);
    m = th_append_msg(1, 3, 2, 1, 1, 1, ents, 22); /* 2..23 */
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    th_ready(&t, 3);
    bool acked = false;
    for (size_t q = 0; q < t.nq; q++) {
        acked =
            acked || (t.q[q].type == RAFT_MSG_APPEND_RESP && !t.q[q].reject && t.q[q].index == 23);
    }
    CHECK(acked);
    th_drop(&t, 0, 0, 0);
    m = chunk(2, 16, 16, false);
    step_answer(&t, &m);
    th_drop(&t, 0, 0, 0);
    m = chunk(2, 32, 8, true);
    CHECK_EQ(raft_step(th_r(&t, 3), &m), 0);
    th_ready(&t, 3);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 23);
    uint64_t term = 0;
    CHECK_EQ(raft_log_term(th_r(&t, 3), 23, &term), 0);
    CHECK_EQ(term, 2);
    CHECK_EQ(t.nodes[3].installs, 0);
    CHECK(raft_commit_index(th_r(&t, 3)) >= 20);
    /* The leader learns that the transfer is over. */
    long k = th_find(&t, RAFT_MSG_SNAPSHOT_RESP, 3, 1);
    CHECK(k >= 0 && t.q[k].done && t.q[k].index >= 20);
    /* And a restart finds the same log. */
    th_crash(&t, 3);
    th_start(&t, 3);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 23);
    th_free(&t);
}

static void test_install_and_entries_in_one_synchronous_ready(void)
{
    /* docs/raft.md's synchronous loop reports the write as durable before raft_advance():
     * here the same ready installs snapshot 20 and writes 21..22 that arrived right after
     * it. The follower acknowledges 22, keeps a consistent log and restarts into it. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    struct raft *r = th_r(&t, 3);
    struct raft_message m = chunk(2, 0, 40, true);
    CHECK_EQ(raft_step(r, &m), 0);
    static uint64_t v = 9;
    struct raft_entry ents[2];
    th_fill_entries(ents, 2, 21, 2, &v);
    m = th_append_msg(1, 3, 2, 20, 2, 21, ents, 2);
    CHECK_EQ(raft_step(r, &m), 0);
    struct raft_ready rd;
    CHECK_EQ(raft_ready(r, &rd), 0);
    CHECK(rd.has_snapshot_chunk && rd.has_snapshot && rd.n_entries == 2);
    struct th_node *n = &t.nodes[3];
    n->disk.hs = rd.hard_state;
    disk_install(&n->disk, &rd.snapshot, rd.snapshot_chunk.data, 0);
    disk_write(&n->disk, rd.entries, rd.n_entries, 0);
    uint64_t index = 0, term = 0;
    CHECK(disk_sync(&n->disk, UINT64_MAX, &index, &term));
    CHECK_EQ(raft_persisted(r, index, term), 0);
    char why[128];
    CHECK_EQ(raft_check(r, why, sizeof(why)), 0);
    raft_advance(r, &rd);
    CHECK_EQ(raft_check(r, why, sizeof(why)), 0);
    n->n_applied = 0;
    n->applied[n->n_applied++] = (struct th_applied){.index = 20, .term = 2};
    th_ready(&t, 3);
    bool acked = false;
    for (size_t q = 0; q < t.nq; q++) {
        acked =
            acked || (t.q[q].type == RAFT_MSG_APPEND_RESP && !t.q[q].reject && t.q[q].index == 22);
    }
    CHECK(acked);
    CHECK_EQ(n->applied[n->n_applied - 1].index, 21);
    uint64_t t22 = 0;
    CHECK_EQ(raft_log_term(r, 22, &t22), 0);
    CHECK_EQ(t22, 2);
    th_crash(&t, 3);
    th_start(&t, 3);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), 22);
    th_free(&t);
}

int main(void)
{
    test_compacted_prev_sends_snapshot();
    test_lost_chunk_resumes();
    test_wrong_offsets_answered();
    test_install_keeps_suffix_only_on_match();
    test_install_never_drops_acknowledged_entries();
    test_install_and_entries_in_one_synchronous_ready();
    printf("test_raft_snapshot: ok\n");
    return 0;
}
