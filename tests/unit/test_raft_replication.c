/* tests/unit/test_raft_replication.c: log replication rules and their traps (1, 3, 5, 6), batching,
 * windows. */
#include <string.h>

#include "test_raft_harness.h"

static uint64_t payload = 42;

static struct raft_entry ent(uint64_t index, uint64_t term)
{
    struct raft_entry e = {.term = term,
                           .index = index,
                           .type = RAFT_ENTRY_NORMAL,
                           .len = sizeof(payload),
                           .data = (uint8_t *)&payload};
    return e;
}

static void step(struct th *t, uint64_t id, const struct raft_message *m)
{
    CHECK_EQ(raft_step(th_r(t, id), m), 0);
    th_ready(t, id);
}

/* Highest accepted APPEND_RESP index queued by from (0 if none). */
static uint64_t acked(struct th *t, uint64_t from)
{
    uint64_t best = 0;
    for (size_t i = 0; i < t->nq; i++) {
        if (t->q[i].type == RAFT_MSG_APPEND_RESP && t->q[i].from == from && !t->q[i].reject &&
            t->q[i].index > best) {
            best = t->q[i].index;
        }
    }
    return best;
}

static void test_single_member_counts_itself_after_sync(void)
{
    /* Trap 5, single-member cluster: nothing commits before the leader's own fsync. */
    struct th t;
    th_init(&t, 1, 1, NULL);
    th_elect(&t, 1);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 2);
    t.nodes[1].hold_sync = true;
    uint64_t idx = th_propose(&t, 1, 5);
    th_ready(&t, 1);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 1 + 1);
    CHECK_EQ(t.nodes[1].n_props, 0);
    th_sync(&t, 1);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), idx);
    th_ready(&t, 1);
    CHECK_EQ(t.nodes[1].n_props, 1);
    CHECK_EQ(t.nodes[1].props[0].status, 0);
    CHECK_EQ(t.nodes[1].props[0].index, idx);
    th_free(&t);
}

static void test_leader_counts_itself_after_sync(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    t.nodes[1].hold_sync = true;
    uint64_t idx = th_propose(&t, 1, 5);
    /* Only member 2 hears about it: leader (not durable) + 2 is not yet a majority. */
    th_ready(&t, 1);
    th_drop(&t, 0, 1, 3);
    th_deliver(&t);
    th_ready_all(&t);
    th_deliver(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), idx - 1);
    th_sync(&t, 1);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), idx);
    th_free(&t);
}

static void test_stale_persist_notice_ignored(void)
{
    /* Trap 6: entries 2..4 of term 2 are being written when a leader of term 3 replaces them
     * with 2..5 of term 3. The notice "durable up to (4, 2)" must not count for (4, 3). */
    struct th t;
    th_init(&t, 3, 3, NULL);
    t.nodes[2].hold_sync = true;
    struct raft_entry a[] = {ent(2, 2), ent(3, 2), ent(4, 2)};
    struct raft_message m = th_append_msg(1, 2, 2, 1, 1, 1, a, 3);
    step(&t, 2, &m);
    struct raft_entry b[] = {ent(2, 3), ent(3, 3), ent(4, 3), ent(5, 3)};
    m = th_append_msg(3, 2, 3, 1, 1, 1, b, 4);
    step(&t, 2, &m);
    th_drop(&t, 0, 0, 0);
    uint64_t index = 0, term = 0;
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 4 && term == 2);
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    th_ready(&t, 2);
    /* Nothing of term 3 acknowledged; entry 1, written by the same write as 2..4 of term 2
     * and never replaced, is durable. */
    CHECK_EQ(acked(&t, 2), 1);
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 5 && term == 3);
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    th_ready(&t, 2);
    CHECK_EQ(acked(&t, 2), 5);
    th_free(&t);
}

static void test_stale_append_never_truncates(void)
{
    /* Trap 3: a duplicated or reordered old APPEND leaves a longer matching log alone, and
     * commit never exceeds what the message itself verified. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    struct raft_entry a[] = {ent(2, 2), ent(3, 2), ent(4, 2), ent(5, 2)};
    struct raft_message m = th_append_msg(1, 2, 2, 1, 1, 1, a, 4);
    step(&t, 2, &m);
    CHECK_EQ(raft_last_index(th_r(&t, 2)), 5);
    m = th_append_msg(1, 2, 2, 1, 1, 1, a, 1); /* the first message again */
    step(&t, 2, &m);
    CHECK_EQ(raft_last_index(th_r(&t, 2)), 5);
    CHECK_EQ(acked(&t, 2), 5);
    /* The leader says commit 5, but this message only verifies up to 3. */
    m = th_append_msg(1, 2, 2, 1, 1, 5, a, 2);
    step(&t, 2, &m);
    CHECK_EQ(raft_commit_index(th_r(&t, 2)), 3);
    /* A real conflict does truncate. */
    struct raft_entry c[] = {ent(4, 3)};
    m = th_append_msg(3, 2, 3, 3, 2, 3, c, 1);
    step(&t, 2, &m);
    CHECK_EQ(raft_last_index(th_r(&t, 2)), 4);
    uint64_t term = 0;
    CHECK_EQ(raft_log_term(th_r(&t, 2), 4, &term), 0);
    CHECK_EQ(term, 3);
    /* An APPEND contradicting a committed entry is ignored, never obeyed. */
    struct raft_entry d[] = {ent(2, 4)};
    m = th_append_msg(1, 2, 4, 1, 1, 4, d, 1);
    step(&t, 2, &m);
    CHECK_EQ(raft_log_term(th_r(&t, 2), 2, &term), 0);
    CHECK_EQ(term, 2);
    th_free(&t);
}

static void one_entry_per_message(struct raft_config *cfg, uint64_t id)
{
    cfg->max_msg_bytes = 8; /* one 8-byte entry per message (plus empty ones) */
}

static void bump_term(struct th *t, uint64_t to, uint64_t from, uint64_t term)
{
    /* A response carrying a higher term: the receiver adopts it with no known leader. */
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_HEARTBEAT_RESP;
    m.from = from;
    m.to = to;
    m.term = term;
    step(t, to, &m);
}

static void test_no_commit_of_previous_term_by_counting(void)
{
    /* Trap 1 (Figure 3.7): leader 1 of term 2 writes X at index 3 that only it has. It wins
     * term 4 and copies X alone to member 2: X is on a majority but of an older term, so it
     * must not be committed until the no-op of term 4 is. */
    struct th t;
    th_init(&t, 3, 3, one_entry_per_message);
    th_elect(&t, 1);
    uint64_t x = th_propose(&t, 1, 99);
    CHECK_EQ(x, 3);
    th_ready(&t, 1);
    th_drop(&t, 0, 0, 0);
    bump_term(&t, 1, 3, 3);
    bump_term(&t, 2, 1, 3);
    bump_term(&t, 3, 1, 3);
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_FOLLOWER);
    th_drop(&t, 0, 0, 0);
    /* Member 1 campaigns; member 3 is unreachable from now on. */
    for (int i = 0; i < 40 && raft_role(th_r(&t, 1)) != RAFT_LEADER; i++) {
        th_tick(&t, 1, 1);
        th_drop(&t, 0, 0, 3);
        th_drop(&t, 0, 3, 0);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK_EQ(raft_role(th_r(&t, 1)), RAFT_LEADER);
    CHECK_EQ(raft_term(th_r(&t, 1)), 4);
    bool x_alone = false;
    for (int i = 0; i < 20 && !x_alone; i++) {
        th_drop(&t, 0, 0, 3);
        long k = th_find(&t, RAFT_MSG_APPEND, 1, 2);
        if (k >= 0 && t.q[k].n_entries >= 1 && t.q[k].entries[0].index == 3) {
            /* Deliver X without the empty no-op that shares its message: as if the leader
             * had sent them apart (any size limit may split them). */
            for (size_t e = 1; e < t.q[k].n_entries; e++) {
                free(t.q[k].entries[e].data);
            }
            t.q[k].n_entries = 1;
            th_deliver_one(&t, (size_t)k);
            th_drop(&t, RAFT_MSG_APPEND, 1, 2); /* the no-op does not arrive */
            th_ready(&t, 2);
            th_deliver(&t);
            th_ready(&t, 1);
            x_alone = true;
        } else {
            th_deliver(&t);
            th_ready_all(&t);
        }
    }
    CHECK(x_alone);
    uint64_t match = 0;
    CHECK_EQ(raft_member_match(th_r(&t, 1), 2, &match), 0);
    CHECK_EQ(match, 3);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 2); /* X of term 2 is NOT committed */
    /* Once the no-op of term 4 reaches 2, both commit. */
    th_drop(&t, 0, 0, 3);
    th_tick(&t, 1, 3);
    for (int i = 0; i < 10; i++) {
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 4);
    th_free(&t);
}

static void test_batching_and_window(void)
{
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 1);
    /* Ten proposals in one turn travel as one APPEND per follower and one write. */
    for (int i = 0; i < 10; i++) {
        th_propose(&t, 1, 100 + (uint64_t)i);
    }
    th_ready(&t, 1);
    size_t appends = 0;
    for (size_t i = 0; i < t.nq; i++) {
        if (t.q[i].type == RAFT_MSG_APPEND) {
            appends++;
            CHECK_EQ(t.q[i].n_entries, 10);
        }
    }
    CHECK_EQ(appends, 2);
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 3)), 12);
    th_free(&t);
}

static void small_window(struct raft_config *cfg, uint64_t id)
{
    cfg->max_msg_bytes = 8;
    cfg->max_inflight_msgs = 2;
}

static void test_inflight_bound(void)
{
    struct th t;
    th_init(&t, 3, 3, small_window);
    th_elect(&t, 1);
    for (int i = 0; i < 10; i++) {
        th_propose(&t, 1, (uint64_t)i);
    }
    th_ready(&t, 1);
    CHECK_EQ(t.nq, 4); /* two one-entry messages per follower, then the window is full */
    th_settle(&t);
    CHECK_EQ(raft_commit_index(th_r(&t, 1)), 12);
    th_free(&t);
}

static void test_fast_backtracking(void)
{
    /* A follower with a long divergent tail is brought in line in a few round trips. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_elect(&t, 3);
    for (int i = 0; i < 50; i++) {
        th_propose(&t, 3, (uint64_t)i);
    }
    th_ready(&t, 3);
    th_drop(&t, 0, 3, 0); /* only 3 has them */
    th_crash(&t, 3);
    th_start(&t, 3);
    t.nodes[3].hold_sync = false;
    uint64_t lead = 0;
    for (int i = 0; i < 100 && lead == 0; i++) {
        th_tick(&t, 1, 1);
        th_tick(&t, 2, 1);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
        lead = raft_role(th_r(&t, 1)) == RAFT_LEADER   ? 1
               : raft_role(th_r(&t, 2)) == RAFT_LEADER ? 2
                                                       : 0;
    }
    CHECK(lead != 0);
    for (int i = 0; i < 5; i++) {
        th_propose(&t, lead, (uint64_t)i);
        th_ready(&t, lead);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
        th_drop(&t, 0, 0, 3);
    }
    /* A new election (forced by a higher term) makes the leader start probing 3 from the end
     * of its now longer log, far above where 3 diverges. */
    uint64_t other = lead == 1 ? 2 : 1;
    uint64_t term = raft_term(th_r(&t, lead)) + 1;
    bump_term(&t, lead, other, term);
    bump_term(&t, other, lead, term);
    th_drop(&t, 0, 0, 0);
    for (int i = 0; i < 100 && raft_role(th_r(&t, lead)) != RAFT_LEADER; i++) {
        th_tick(&t, lead, 1);
        th_drop(&t, 0, 0, 3);
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK_EQ(raft_role(th_r(&t, lead)), RAFT_LEADER);
    th_drop(&t, 0, 0, 3);
    size_t rejects = 0;
    for (int i = 0; i < 20; i++) {
        th_tick(&t, lead, 1); /* heartbeats un-pause the probe that was lost */
        for (size_t k = 0; k < t.nq; k++) {
            rejects += t.q[k].type == RAFT_MSG_APPEND_RESP && t.q[k].from == 3 && t.q[k].reject;
        }
        th_deliver(&t);
        th_ready_all(&t);
    }
    CHECK(rejects >= 1 && rejects <= 2);
    CHECK_EQ(raft_last_index(th_r(&t, 3)), raft_last_index(th_r(&t, lead)));
    th_free(&t);
}

static void test_notice_of_an_overwritten_write_ignored(void)
{
    /* Trap 6, with the same (index, term) written twice: write A holds 2..4 of term 2 (leader
     * of term 2); write B replaces them with 2..3 of term 3 (leader of term 3); write C puts
     * 2..4 of term 2 back (leader of term 4, whose log has them). A's notice "durable up to
     * (4, 2)" matches the log again, but B, later in write order, is not durable, nor C: a
     * crash now may leave B's entries on disk. Nothing may be acknowledged before C is. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    t.nodes[2].hold_sync = true;
    struct raft_entry a[] = {ent(2, 2), ent(3, 2), ent(4, 2)};
    struct raft_message m = th_append_msg(1, 2, 2, 1, 1, 1, a, 3);
    step(&t, 2, &m);
    struct raft_entry b[] = {ent(2, 3), ent(3, 3)};
    m = th_append_msg(3, 2, 3, 1, 1, 1, b, 2);
    step(&t, 2, &m);
    m = th_append_msg(1, 2, 4, 1, 1, 1, a, 3);
    step(&t, 2, &m);
    th_drop(&t, 0, 0, 0);
    uint64_t index = 0, term = 0;
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 4 && term == 2); /* A (and entry 1, never replaced) */
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    th_ready(&t, 2);
    CHECK_EQ(acked(&t, 2), 1);
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 3 && term == 3); /* B */
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    th_ready(&t, 2);
    CHECK_EQ(acked(&t, 2), 1);
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 4 && term == 2); /* C */
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    th_ready(&t, 2);
    CHECK_EQ(acked(&t, 2), 4);
    th_free(&t);
}

static void test_ack_taken_while_the_ready_is_held(void)
{
    /* node/ sends a follower's acknowledgement as soon as a ready's entries are durable,
     * before it applies that ready's committed entries: raft_persisted() while the ready is
     * held, then raft_take_messages(). The acknowledgement is handed out once. */
    struct th t;
    th_init(&t, 3, 3, NULL);
    th_ready(&t, 2); /* its own first entry, out of the way */
    th_drop(&t, 0, 0, 0);
    struct raft_entry a[] = {ent(2, 2), ent(3, 2)};
    struct raft_message m = th_append_msg(1, 2, 2, 1, 1, 1, a, 2);
    CHECK_EQ(raft_step(th_r(&t, 2), &m), 0);
    struct raft_ready rd;
    CHECK_EQ(raft_ready(th_r(&t, 2), &rd), 0);
    CHECK_EQ(rd.n_entries, 2);
    for (size_t i = 0; i < rd.n_messages; i++) {
        CHECK(rd.messages[i].type != RAFT_MSG_APPEND_RESP || rd.messages[i].index < 3);
    }
    disk_write(&t.nodes[2].disk, rd.entries, rd.n_entries, 0);
    uint64_t index = 0, term = 0;
    CHECK(disk_sync(&t.nodes[2].disk, UINT64_MAX, &index, &term));
    CHECK(index == 3 && term == 2);
    CHECK_EQ(raft_persisted(th_r(&t, 2), index, term), 0);
    struct raft_message *out;
    size_t n;
    raft_take_messages(th_r(&t, 2), &out, &n);
    CHECK_EQ(n, 1);
    CHECK(out[0].type == RAFT_MSG_APPEND_RESP && out[0].to == 1 && !out[0].reject);
    CHECK_EQ(out[0].index, 3);
    raft_messages_free(out, n);
    raft_take_messages(th_r(&t, 2), &out, &n); /* nothing more */
    CHECK_EQ(n, 0);
    CHECK(out == NULL);
    raft_advance(th_r(&t, 2), &rd);
    th_drop(&t, 0, 0, 0);
    th_ready(&t, 2);
    CHECK_EQ(acked(&t, 2), 0); /* not handed out a second time */
    th_free(&t);
}

int main(void)
{
    test_ack_taken_while_the_ready_is_held();
    test_single_member_counts_itself_after_sync();
    test_leader_counts_itself_after_sync();
    test_stale_persist_notice_ignored();
    test_notice_of_an_overwritten_write_ignored();
    test_stale_append_never_truncates();
    test_no_commit_of_previous_term_by_counting();
    test_batching_and_window();
    test_inflight_bound();
    test_fast_backtracking();
    printf("test_raft_replication: ok\n");
    return 0;
}
