/* raft/replicate.c: leader side of replication: appends, heartbeats, snapshot chunks, commit (§3.5,
 * §3.6). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "impl.h"
#include "quorum.h"

struct progress *raft_tracker_get(struct raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

void raft_tracker_clear(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        raft_progress_free(&r->prs[i]);
    }
    free(r->prs);
    r->prs = NULL;
    r->n_prs = 0;
}

int raft_tracker_rebuild(struct raft *r)
{
    uint64_t ids[3 * RAFT_CONF_MAX + 1];
    uint32_t n = raft_conf_all_ids(&r->conf, ids);
    struct progress *prs = calloc(n + 1, sizeof(*prs));
    if (prs == NULL) {
        return RAFT_ENOMEM;
    }
    uint64_t next = raft_log_last_index(&r->log) + 1;
    for (uint32_t i = 0; i < n; i++) {
        struct progress *old = raft_tracker_get(r, ids[i]);
        if (old != NULL) {
            prs[i] = *old;
            old->ring = NULL; /* moved */
            continue;
        }
        int rc = raft_progress_init(&prs[i], ids[i], next, r->cfg.max_inflight_msgs);
        if (rc != 0) {
            for (uint32_t j = 0; j < i; j++) {
                raft_progress_free(&prs[j]);
            }
            free(prs);
            return rc;
        }
        prs[i].recent_active = true; /* a new member gets a full CheckQuorum round */
        if (ids[i] == r->id) {
            prs[i].match = r->log.stable;
            prs[i].next = next;
        }
    }
    raft_tracker_clear(r);
    r->prs = prs;
    r->n_prs = n;
    if (r->transfer_target != 0 && !raft_conf_is_voter(&r->conf, r->transfer_target)) {
        raft_transfer_abort(r, "target removed");
    }
    /* The quorum of a read round in flight is judged against the new configuration. */
    return raft_read_check_round(r);
}

/* §5.3 fast backtracking: the largest index <= index whose term is <= term. */
static uint64_t find_conflict_by_term(struct raft *r, uint64_t index, uint64_t term)
{
    uint64_t last = raft_log_last_index(&r->log);
    uint64_t i = index < last ? index : last;
    for (; i > 0; i--) {
        uint64_t t = 0;
        if (raft_log_entry_term(&r->log, i, &t) != 0 || t <= term) {
            break;
        }
    }
    return i;
}

static int start_snapshot(struct raft *r, struct progress *pr)
{
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct raft_storage *st = &r->cfg.storage;
    int rc = st->snapshot_meta(st->ctx, &meta);
    if (rc != 0) {
        r->log.err = r->log.err ? r->log.err : rc;
        return rc;
    }
    if (meta.index == 0) {
        /* Storage compacted without a snapshot: nothing to send yet; retried later. */
        raft_trace_event(r, "no snapshot for=%llu", (unsigned long long)pr->id);
        pr->probe_sent = true;
        return 0;
    }
    raft_progress_become_snapshot(pr, meta.index, meta.term, meta.size);
    raft_trace_event(r, "snapshot start to=%llu index=%llu term=%llu size=%llu",
                     (unsigned long long)pr->id, (unsigned long long)meta.index,
                     (unsigned long long)meta.term, (unsigned long long)meta.size);
    return 0;
}

static int send_chunk(struct raft *r, struct progress *pr)
{
    struct raft_storage *st = &r->cfg.storage;
    struct raft_message m = {0};
    int rc = st->snapshot_meta(st->ctx, &m.snap);
    if (rc != 0) {
        r->log.err = r->log.err ? r->log.err : rc;
        return rc;
    }
    if (m.snap.index != pr->snap_index || m.snap.term != pr->snap_term) {
        /* A newer snapshot replaced the one in transfer: start over with it. */
        raft_progress_abort_snapshot(pr);
        return 0;
    }
    uint64_t offset = pr->snap_offset;
    size_t want = r->cfg.max_snapshot_chunk;
    if (m.snap.size - offset < want) {
        want = (size_t)(m.snap.size - offset);
    }
    uint8_t *data = NULL;
    size_t len = 0;
    if (want > 0) {
        rc = st->snapshot_read(st->ctx, m.snap.index, m.snap.term, offset, want, &data, &len);
        if (rc == RAFT_ESNAPGONE) {
            /* It was the current snapshot a moment ago, in the same call: storage
             * contradicts itself. */
            rc = RAFT_ECORRUPT;
        }
        if (rc != 0) {
            r->log.err = r->log.err ? r->log.err : rc;
            return rc;
        }
        if (len == 0 || len > want) {
            free(data);
            r->log.err = r->log.err ? r->log.err : RAFT_ECORRUPT;
            return RAFT_ECORRUPT;
        }
    }
    m.type = RAFT_MSG_SNAPSHOT;
    m.to = pr->id;
    m.offset = offset;
    m.data = data;
    m.len = len;
    m.done = offset + len == m.snap.size;
    pr->snap_chunk_out = true;
    raft_trace_event(r, "snapshot chunk to=%llu index=%llu offset=%llu len=%zu%s",
                     (unsigned long long)pr->id, (unsigned long long)m.snap.index,
                     (unsigned long long)offset, len, m.done ? " done" : "");
    return raft_send_msg(r, &m);
}

/* Sends one APPEND to pr from pr->next (possibly empty). Switches to SNAPSHOT when the entries
 * it needs are compacted (trap 4: "compacted" is never "term 0"). */
static int send_append(struct raft *r, struct progress *pr)
{
    uint64_t prev = pr->next - 1;
    uint64_t prev_term = 0;
    uint64_t last = raft_log_last_index(&r->log);
    int rc = raft_log_entry_term(&r->log, prev, &prev_term);
    if (rc == RAFT_ECOMPACTED) {
        return start_snapshot(r, pr);
    }
    if (rc != 0) {
        return rc;
    }
    struct raft_message m = {0};
    if (pr->next <= last) {
        rc = raft_log_entries(&r->log, pr->next, last + 1, r->cfg.max_msg_bytes, &m.entries,
                              &m.n_entries);
        if (rc == RAFT_ECOMPACTED) {
            return start_snapshot(r, pr);
        }
        if (rc != 0) {
            return rc;
        }
    }
    m.type = RAFT_MSG_APPEND;
    m.to = pr->id;
    m.prev_index = prev;
    m.prev_term = prev_term;
    m.commit = r->log.committed;
    size_t bytes = 0;
    for (size_t i = 0; i < m.n_entries; i++) {
        bytes += m.entries[i].len;
    }
    if (pr->state == PROGRESS_REPLICATE) {
        if (m.n_entries > 0) {
            uint64_t sent_last = m.entries[m.n_entries - 1].index;
            pr->next = sent_last + 1;
            raft_progress_inflight_add(pr, sent_last, bytes);
        }
    } else {
        pr->probe_sent = true;
    }
    pr->commit_sent = r->log.committed;
    return raft_send_msg(r, &m);
}

static bool progress_wants_send(struct raft *r, const struct progress *pr)
{
    if (pr->id == r->id) {
        return false;
    }
    if (pr->state == PROGRESS_SNAPSHOT) {
        return !pr->snap_chunk_out;
    }
    if (raft_progress_is_paused(pr, r->cfg.max_inflight_bytes)) {
        return false;
    }
    uint64_t last = raft_log_last_index(&r->log);
    /* PROBE also sends an empty APPEND when next is past the end but the member's log is
     * unknown (a member just added starts so): its answer says where to go on from. */
    return pr->next <= last || (pr->state == PROGRESS_PROBE && pr->match < last) ||
           (pr->state == PROGRESS_REPLICATE && pr->commit_sent < r->log.committed);
}

bool raft_leader_needs_flush(struct raft *r);
bool raft_leader_needs_flush(struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        return false;
    }
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (progress_wants_send(r, &r->prs[i])) {
            return true;
        }
    }
    return false;
}

int raft_leader_flush(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs && r->role == RAFT_LEADER; i++) {
        struct progress *pr = &r->prs[i];
        /* Each send pauses the progress, advances next, or changes its state; the guard
         * bounds the work per ready when storage keeps replacing its snapshot. */
        for (int guard = 0; guard < 64 && progress_wants_send(r, pr); guard++) {
            int rc = pr->state == PROGRESS_SNAPSHOT ? send_chunk(r, pr) : send_append(r, pr);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int raft_leader_bcast_heartbeat(struct raft *r)
{
    uint32_t stall = r->cfg.election_ticks / 2 > 2 ? r->cfg.election_ticks / 2 : 2;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id) {
            continue;
        }
        pr->idle_ticks += r->cfg.heartbeat_ticks;
        if (pr->idle_ticks >= stall) {
            /* Nothing heard for a while with messages in flight: they (or the answers) were
             * lost. Fall back to probing from the last known match; in SNAPSHOT, resend the
             * chunk from the last acknowledged offset. Every window is released here. */
            if (pr->state == PROGRESS_REPLICATE && pr->count > 0) {
                raft_trace_event(r, "stalled to=%llu match=%llu", (unsigned long long)pr->id,
                                 (unsigned long long)pr->match);
                raft_progress_become_probe(pr);
            } else if (pr->state == PROGRESS_SNAPSHOT && pr->snap_chunk_out) {
                pr->snap_chunk_out = false;
            } else if (pr->state == PROGRESS_PROBE) {
                pr->probe_sent = false;
            }
            pr->idle_ticks = 0;
        }
        struct raft_message m = {0};
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = pr->id;
        /* Only what the member is known to hold may be declared committed to it. */
        m.commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        m.context = raft_readonly_newest_ctx(&r->ro);
        int rc = raft_send_msg(r, &m);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int raft_leader_maybe_commit(struct raft *r)
{
    assert(r->role == RAFT_LEADER);
    const struct raft_conf *c = &r->conf;
    uint64_t vals[RAFT_CONF_MAX];
    uint64_t vals_old[RAFT_CONF_MAX];
    for (int half = 0; half < 2; half++) {
        const uint64_t *ids = half == 0 ? c->voters : c->voters_old;
        uint32_t n = half == 0 ? c->n_voters : c->n_voters_old;
        uint64_t *out = half == 0 ? vals : vals_old;
        for (uint32_t i = 0; i < n; i++) {
            if (ids[i] == r->id) {
                /* Trap 5: the leader counts itself only for what is durable locally. */
#ifdef RAFT_MUTATE_SELF_COUNT_UNSYNCED
                out[i] = raft_log_last_index(&r->log);
#else
                out[i] = r->log.stable;
#endif
            } else {
                struct progress *pr = raft_tracker_get(r, ids[i]);
                out[i] = pr != NULL ? pr->match : 0;
            }
        }
    }
    uint64_t idx = raft_quorum_joint_index(vals, c->n_voters, vals_old, c->n_voters_old);
    if (idx == UINT64_MAX || idx <= r->log.committed) {
        return 0;
    }
    uint64_t t = 0;
    if (raft_log_entry_term(&r->log, idx, &t) != 0) {
        return r->log.err;
    }
#ifndef RAFT_MUTATE_COMMIT_PREV_TERM
    /* §3.6.2 (Figure 3.7): only an entry of the current term is committed by counting
     * replicas; earlier ones are committed indirectly with it (trap 1). */
    if (t != r->term) {
        return 0;
    }
#endif
    r->log.committed = idx;
    raft_trace_event(r, "commit %llu", (unsigned long long)idx);
    return raft_membership_on_commit(r);
}

int raft_recv_append_resp(struct raft *r, const struct raft_message *m)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    struct progress *pr = raft_tracker_get(r, m->from);
    if (pr == NULL || m->index > raft_log_last_index(&r->log)) {
        return 0;
    }
    pr->recent_active = true;
    pr->idle_ticks = 0;
    if (m->reject) {
        if (pr->state == PROGRESS_SNAPSHOT) {
            return 0;
        }
        uint64_t hint = m->hint_index;
        if (m->hint_term > 0) {
            hint = find_conflict_by_term(r, m->hint_index, m->hint_term);
        }
        if (raft_progress_maybe_decrease(pr, m->index, hint + 1)) {
            raft_trace_event(r, "rejected by=%llu index=%llu next=%llu",
                             (unsigned long long)m->from, (unsigned long long)m->index,
                             (unsigned long long)pr->next);
            if (pr->state == PROGRESS_REPLICATE) {
                raft_progress_become_probe(pr);
            }
        }
        return 0;
    }
    if (!raft_progress_maybe_update(pr, m->index)) {
        return 0;
    }
    if (pr->state == PROGRESS_PROBE) {
        raft_progress_become_replicate(pr);
    } else if (pr->state == PROGRESS_SNAPSHOT && pr->match >= pr->snap_index) {
        raft_progress_become_probe(pr);
    } else if (pr->state == PROGRESS_REPLICATE) {
        raft_progress_inflight_free_to(pr, m->index);
    }
    uint64_t id = pr->id;
    int rc = raft_leader_maybe_commit(r);
    if (rc != 0 || r->role != RAFT_LEADER) {
        return rc;
    }
    pr = raft_tracker_get(r, id);
    return pr != NULL ? raft_transfer_on_progress(r, pr) : 0;
}

int raft_recv_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    struct progress *pr = raft_tracker_get(r, m->from);
    if (pr == NULL) {
        return 0;
    }
    pr->recent_active = true;
    if (pr->state == PROGRESS_PROBE) {
        pr->probe_sent = false;
    }
    if (raft_readonly_ack(&r->ro, m->from, m->context)) {
        /* Checked even for a repeated answer: a configuration change since the last one
         * may have made the acknowledgements already collected a quorum. */
        return raft_read_check_round(r);
    }
    return 0;
}

int raft_recv_snapshot_resp(struct raft *r, const struct raft_message *m)
{
    if (r->role != RAFT_LEADER) {
        return 0;
    }
    struct progress *pr = raft_tracker_get(r, m->from);
    if (pr == NULL) {
        return 0;
    }
    pr->recent_active = true;
    pr->idle_ticks = 0;
    if (pr->state != PROGRESS_SNAPSHOT || m->snap.index != pr->snap_index ||
        m->snap.term != pr->snap_term) {
        return 0;
    }
    pr->snap_chunk_out = false;
    if (m->done) {
        raft_trace_event(r, "snapshot done by=%llu index=%llu", (unsigned long long)m->from,
                         (unsigned long long)m->index);
        if (m->index <= raft_log_last_index(&r->log)) {
            raft_progress_maybe_update(pr, m->index);
        }
        raft_progress_become_probe(pr);
        uint64_t id = pr->id;
        int rc = raft_leader_maybe_commit(r);
        if (rc != 0 || r->role != RAFT_LEADER) {
            return rc;
        }
        pr = raft_tracker_get(r, id);
        return pr != NULL ? raft_transfer_on_progress(r, pr) : 0;
    }
    if (m->offset > pr->snap_size) {
        return 0;
    }
    pr->snap_offset = m->offset;
    return 0;
}
