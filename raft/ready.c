/* raft/ready.c: the ready/advance handshake, persistence notices, and leader appends. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "impl.h"

bool raft_leader_needs_flush(struct raft *r);

int raft_log_append_leader(struct raft *r, uint32_t type, const void *data, size_t len,
                           uint64_t *index)
{
    struct raft_entry e = {.term = r->term,
                           .index = raft_log_last_index(&r->log) + 1,
                           .type = type,
                           .len = (uint32_t)len,
                           .data = (uint8_t *)data};
    int rc = raft_log_append(&r->log, &e, 1);
    if (rc != 0) {
        return rc;
    }
    *index = e.index;
    if (type == RAFT_ENTRY_CONF) {
        rc = raft_membership_on_append(r, &e);
    }
    /* Entries go out in raft_ready(): proposals made in one turn share one APPEND per
     * follower and one fsync (batching). */
    return rc;
}

/* The commit index written to the hard state never exceeds the durable log. Otherwise a
 * crash that loses a not-yet-durable write which truncated a conflicting suffix would come
 * back with the old entries *and* a commit index covering them, and apply entries that were
 * never committed (trap 12: never resurrect truncated entries). */
static uint64_t durable_commit(const struct raft *r)
{
    return r->log.committed < r->log.stable ? r->log.committed : r->log.stable;
}

static bool hard_state_changed(const struct raft *r)
{
    return r->term != r->last_hs.term || r->vote != r->last_hs.vote ||
           durable_commit(r) != r->last_hs.commit;
}

static uint64_t apply_limit(const struct raft *r)
{
    /* Only durable entries are applied: a crash may lose the others. */
    return r->log.committed < r->log.stable ? r->log.committed : r->log.stable;
}

bool raft_has_ready(const struct raft *r)
{
    struct raft *rw = (struct raft *)r; /* leader_needs_flush only reads */
    return r->n_msgs > 0 || r->n_reads > 0 || r->n_results > 0 || r->chunk_pending ||
           r->install_pending || hard_state_changed(r) ||
           r->log.handed < raft_log_last_index(&r->log) || r->log.applied < apply_limit(r) ||
           raft_leader_needs_flush(rw) || raft_read_round_due(rw);
}

static void complete_proposals(struct raft *r, const struct raft_entry *ents, size_t n)
{
    if (n == 0) {
        return;
    }
    uint64_t lo = ents[0].index;
    uint64_t hi = ents[n - 1].index;
    size_t k = 0;
    while (k < r->n_props && r->props[k].index <= hi) {
        struct pending_prop *p = &r->props[k];
        int status = RAFT_ELEADERLOST;
        if (p->index >= lo && ents[p->index - lo].term == p->term) {
            status = 0;
        }
        raft_push_result(r, p->cookie, p->index, p->term, status);
        k++;
    }
    if (k > 0) {
        memmove(r->props, r->props + k, (r->n_props - k) * sizeof(*r->props));
        r->n_props -= k;
    }
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    assert(!r->ready_out);
    memset(rd, 0, sizeof(*rd));
    int rc = 0;
    if (r->role == RAFT_LEADER) {
        rc = raft_read_maybe_start_round(r);
        if (rc == 0) {
            rc = raft_leader_flush(r);
        }
        if (rc != 0) {
            return rc;
        }
    }
    uint64_t hi = apply_limit(r);
    if (r->log.applied < hi) {
        rc = raft_log_entries(&r->log, r->log.applied + 1, hi + 1, r->cfg.max_apply_bytes,
                              &rd->committed, &rd->n_committed);
        if (rc != 0) {
            return rc;
        }
    }
    uint64_t last = raft_log_last_index(&r->log);
    if (r->log.handed < last) {
        size_t n = (size_t)(last - r->log.handed);
        rd->entries = calloc(n, sizeof(*rd->entries));
        if (rd->entries == NULL) {
            rc = RAFT_ENOMEM;
            goto err_committed;
        }
        for (size_t i = 0; i < n; i++) {
            rc = raft_entry_copy(&rd->entries[i], &r->log.ents[r->log.handed - r->log.stable + i]);
            if (rc != 0) {
                raft_entries_free(rd->entries, i);
                rd->entries = NULL;
                goto err_committed;
            }
        }
        rc = raft_log_handed_write(&r->log, r->log.handed + 1, last, rd->entries[n - 1].term);
        if (rc != 0) {
            raft_entries_free(rd->entries, n);
            rd->entries = NULL;
            goto err_committed;
        }
        rd->n_entries = n;
        r->log.handed = last;
        rd->must_sync = true;
    }
    if (rd->n_committed > 0) {
        r->log.applied = rd->committed[rd->n_committed - 1].index;
        complete_proposals(r, rd->committed, rd->n_committed);
    }
    if (hard_state_changed(r)) {
        rd->hard_state_changed = true;
        rd->hard_state.term = r->term;
        rd->hard_state.vote = r->vote;
        rd->hard_state.commit = durable_commit(r);
        if (r->term != r->last_hs.term || r->vote != r->last_hs.vote) {
            rd->must_sync = true;
        }
        r->last_hs = rd->hard_state;
    }
    if (r->chunk_pending) {
        rd->has_snapshot_chunk = true;
        rd->snapshot_chunk = r->chunk;
        r->chunk.data = NULL;
        r->chunk_pending = false;
        rd->must_sync = true;
    }
    if (r->install_pending) {
        rd->has_snapshot = true;
        rd->snapshot = r->log.snap;
        r->install_pending = false;
        r->install_out = true;
        rd->must_sync = true;
    }
    rd->messages = r->msgs;
    rd->n_messages = r->n_msgs;
    r->msgs = NULL;
    r->n_msgs = 0;
    r->cap_msgs = 0;
    rd->reads = r->reads;
    rd->n_reads = r->n_reads;
    r->reads = NULL;
    r->n_reads = 0;
    r->cap_reads = 0;
    rd->proposals = r->results;
    rd->n_proposals = r->n_results;
    r->results = NULL;
    r->n_results = 0;
    r->cap_results = 0;
    r->ready_out = true;
    return 0;
err_committed:
    raft_entries_free(rd->committed, rd->n_committed);
    memset(rd, 0, sizeof(*rd));
    return rc;
}

void raft_messages_free(struct raft_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        raft_entries_free(m[i].entries, m[i].n_entries);
        free(m[i].data);
    }
    free(m);
}

void raft_take_messages(struct raft *r, struct raft_message **out, size_t *n)
{
    *out = r->msgs;
    *n = r->n_msgs;
    r->msgs = NULL;
    r->n_msgs = 0;
    r->cap_msgs = 0;
}

void raft_advance(struct raft *r, struct raft_ready *rd)
{
    assert(r->ready_out);
    raft_entries_free(rd->entries, rd->n_entries);
    raft_entries_free(rd->committed, rd->n_committed);
    raft_messages_free(rd->messages, rd->n_messages);
    free(rd->reads);
    free(rd->proposals);
    free(rd->snapshot_chunk.data);
    if (rd->has_snapshot) {
        assert(r->install_out);
        r->install_out = false;
        raft_log_snapshot_done(&r->log);
    }
    memset(rd, 0, sizeof(*rd));
    r->ready_out = false;
}

int raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
    if (!raft_log_stable_to(&r->log, index, term)) {
        raft_trace_event(r, "ignore persisted %llu/%llu", (unsigned long long)index,
                         (unsigned long long)term);
        return r->log.err;
    }
    int rc = 0;
    if (r->role == RAFT_LEADER) {
        struct progress *self = raft_tracker_get(r, r->id);
        if (self != NULL) {
            self->match = r->log.stable;
            self->next = raft_log_last_index(&r->log) + 1;
        }
        rc = raft_leader_maybe_commit(r);
    } else {
        rc = raft_follower_send_ack(r, false);
    }
    return rc != 0 ? rc : r->log.err;
}
