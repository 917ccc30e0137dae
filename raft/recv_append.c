/* raft/recv_append.c: follower side of APPEND and HEARTBEAT: log matching, truncation, commit
 * (§3.5). */
#include <string.h>

#include "impl.h"

int raft_follower_send_ack(struct raft *r, bool force)
{
    if (r->role != RAFT_FOLLOWER || r->leader == 0) {
        return 0;
    }
    /* Trap 5: acknowledge only what is durable here AND verified against this leader. */
    uint64_t idx = r->ack_index < r->log.stable ? r->ack_index : r->log.stable;
    if (idx <= r->acked_index && !force) {
        return 0;
    }
    if (idx > r->acked_index) {
        r->acked_index = idx;
    }
    struct raft_message m = {0};
    m.type = RAFT_MSG_APPEND_RESP;
    m.to = r->leader;
    m.index = idx;
    return raft_send_msg(r, &m);
}

static bool entries_well_formed(const struct raft_message *m)
{
    uint64_t prev_term = m->prev_term;
    if (m->prev_index > RAFT_PEER_MAX || m->n_entries > RAFT_PEER_MAX - m->prev_index ||
        m->prev_term > m->term || (m->n_entries > 0 && m->entries == NULL)) {
        return false;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->prev_index + 1 + i || e->term < prev_term || e->term > m->term ||
            e->term == 0 || e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONF ||
            (e->len > 0 && e->data == NULL)) {
            return false;
        }
        prev_term = e->term;
    }
    return true;
}

/* The hint for fast backtracking (§5.3): the largest index <= min(prev, last) whose term is
 * <= prev_term, and its term. The leader skips every index above it at once. */
static void reject_hint(struct raft *r, uint64_t prev_index, uint64_t prev_term,
                        uint64_t *hint_index, uint64_t *hint_term)
{
    uint64_t last = raft_log_last_index(&r->log);
    uint64_t i = prev_index < last ? prev_index : last;
    uint64_t t = 0;
    for (; i > r->log.committed; i--) {
        if (raft_log_entry_term(&r->log, i, &t) != 0 || t <= prev_term) {
            break;
        }
    }
    if (raft_log_entry_term(&r->log, i, &t) != 0) {
        t = 0;
    }
    *hint_index = i;
    *hint_term = t;
}

static int commit_to(struct raft *r, uint64_t index)
{
    if (index <= r->log.committed) {
        return 0;
    }
    r->log.committed = index;
    return raft_membership_on_commit(r);
}

int raft_recv_append(struct raft *r, const struct raft_message *m)
{
    if (!entries_well_formed(m)) {
        raft_trace_event(r, "ignore malformed append from=%llu", (unsigned long long)m->from);
        return 0;
    }
    uint64_t committed = r->log.committed;
    uint64_t last_new = m->prev_index + m->n_entries;
    if (last_new <= committed) {
        /* Everything in it is committed here already: a duplicate or late message. The
         * committed prefix matches every leader's log (§3.6.3 Leader Completeness). */
        if (committed > r->ack_index) {
            r->ack_index = committed;
        }
        return raft_follower_send_ack(r, true);
    }
    /* Entries at or below committed are known to match; check from there on. */
    size_t skip = 0;
    uint64_t prev_index = m->prev_index;
    uint64_t prev_term = m->prev_term;
    if (prev_index < committed) {
        skip = (size_t)(committed - prev_index);
        prev_index = committed;
        prev_term = m->entries[skip - 1].term;
        uint64_t mine = 0;
        if (raft_log_entry_term(&r->log, committed, &mine) == 0 && mine != prev_term) {
            raft_trace_event(r, "ignore append contradicting commit from=%llu",
                             (unsigned long long)m->from);
            return 0;
        }
    }
    if (!raft_log_match_term(&r->log, prev_index, prev_term)) {
        struct raft_message resp = {0};
        resp.type = RAFT_MSG_APPEND_RESP;
        resp.to = m->from;
        resp.reject = true;
        resp.index = m->prev_index;
        reject_hint(r, m->prev_index, m->prev_term, &resp.hint_index, &resp.hint_term);
        raft_trace_event(r, "reject append prev=%llu/%llu hint=%llu/%llu",
                         (unsigned long long)m->prev_index, (unsigned long long)m->prev_term,
                         (unsigned long long)resp.hint_index, (unsigned long long)resp.hint_term);
        return raft_send_msg(r, &resp);
    }
    size_t n = m->n_entries - skip;
    /* An APPEND without entries may come without an array (entries NULL, as the wire
     * decoder leaves it): NULL + 0 is undefined behaviour in C. */
    const struct raft_entry *ents = n > 0 ? m->entries + skip : NULL;
    /* Trap 3: truncate only on a real conflict. A stale or duplicated APPEND whose entries
     * are all present must leave any longer log alone. */
    uint64_t conflict = raft_log_find_conflict(&r->log, ents, n);
#ifdef RAFT_MUTATE_TRUNCATE_STALE
    if (conflict == 0 && n > 0) {
        conflict = ents[0].index;
    }
#endif
    if (conflict != 0) {
        if (conflict <= r->log.committed) {
            raft_trace_event(r, "ignore append conflicting at committed %llu",
                             (unsigned long long)conflict);
            return 0;
        }
        size_t from = (size_t)(conflict - ents[0].index);
        if (conflict <= raft_log_last_index(&r->log)) {
            raft_trace_event(r, "truncate from=%llu", (unsigned long long)conflict);
            raft_membership_on_truncate(r, conflict);
        }
        int rc = raft_log_append(&r->log, ents + from, n - from);
        if (rc != 0) {
            return rc;
        }
        for (size_t i = from; i < n; i++) {
            if (ents[i].type == RAFT_ENTRY_CONF) {
                rc = raft_membership_on_append(r, &ents[i]);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    if (last_new > r->ack_index) {
        r->ack_index = last_new;
    }
    /* Trap 3: commit no further than what this message verified. */
#ifdef RAFT_MUTATE_COMMIT_UNVERIFIED
    uint64_t limit = raft_log_last_index(&r->log);
#else
    uint64_t limit = last_new;
#endif
    int rc = commit_to(r, m->commit < limit ? m->commit : limit);
    if (rc != 0) {
        return rc;
    }
    return raft_follower_send_ack(r, n == 0 || conflict == 0);
}

int raft_recv_heartbeat(struct raft *r, const struct raft_message *m)
{
    /* The leader sends min(match, commit): entries we acknowledged in this term. */
    uint64_t c = m->commit;
    uint64_t last = raft_log_last_index(&r->log);
    if (c > last) {
        c = last;
    }
    int rc = commit_to(r, c);
    if (rc != 0) {
        return rc;
    }
    struct raft_message resp = {0};
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.context = m->context;
    return raft_send_msg(r, &resp);
}
