/* raft/recv_snapshot.c: follower side of InstallSnapshot in chunks with offsets (§5.3, trap 7). */
#include <stdlib.h>
#include <string.h>

#include "impl.h"

static int reply(struct raft *r, const struct raft_message *m, uint64_t offset, bool reject,
                 bool done, uint64_t index)
{
    struct raft_message resp = {0};
    resp.type = RAFT_MSG_SNAPSHOT_RESP;
    resp.to = m->from;
    resp.snap.index = m->snap.index;
    resp.snap.term = m->snap.term;
    resp.offset = offset;
    resp.reject = reject;
    resp.done = done;
    resp.index = index;
    return raft_send_msg(r, &resp);
}

static bool chunk_well_formed(const struct raft_message *m)
{
    const struct raft_snapshot_meta *s = &m->snap;
    if (s->index == 0 || s->index > RAFT_PEER_MAX || s->term == 0 || s->term > m->term ||
        !raft_conf_valid(&s->conf, false) || m->offset > s->size || m->len > s->size - m->offset ||
        (m->len > 0 && !m->data)) {
        return false;
    }
    return m->done == (m->offset + m->len == s->size);
}

int raft_recv_snapshot(struct raft *r, const struct raft_message *m)
{
    if (!chunk_well_formed(m)) {
        raft_trace_event(r, "ignore malformed snapshot from=%llu", (unsigned long long)m->from);
        return 0;
    }
    if (r->chunk_pending || r->install_pending || r->install_out) {
        /* The previous chunk is not written yet: the leader resends after a while. */
        return 0;
    }
    uint64_t stable = r->log.stable;
    if (m->snap.index <= r->log.committed) {
        /* Already have it (committed prefix matches every leader). */
        r->recv_active = false;
        if (r->log.committed > r->ack_index) {
            r->ack_index = r->log.committed;
        }
        uint64_t idx = r->log.committed < stable ? r->log.committed : stable;
        return reply(r, m, 0, false, true, idx);
    }
    if (raft_log_match_term(&r->log, m->snap.index, m->snap.term)) {
        /* Trap 7: the snapshot's last entry is ours (same index and term), so our log up to
         * it is the leader's (Log Matching). Keep the suffix; just commit. Checked at every
         * chunk, not only the first: a delayed APPEND of the same leader may have brought
         * the entry (and acknowledged ones after it) since the transfer began, and those
         * must not be thrown away by an install. */
        r->recv_active = false;
        r->log.committed = m->snap.index;
        int rc = raft_membership_on_commit(r);
        if (rc != 0) {
            return rc;
        }
        if (m->snap.index > r->ack_index) {
            r->ack_index = m->snap.index;
        }
        raft_trace_event(r, "snapshot matches log index=%llu", (unsigned long long)m->snap.index);
        return reply(r, m, 0, false, true, m->snap.index < stable ? m->snap.index : stable);
    }
    bool same = r->recv_active && r->recv_snap.index == m->snap.index &&
                r->recv_snap.term == m->snap.term && r->recv_snap.size == m->snap.size &&
                r->recv_from == m->from && r->recv_term == m->term;
    if (!same) {
        if (m->offset != 0) {
            return reply(r, m, 0, true, false, 0);
        }
        r->recv_active = true;
        r->recv_snap = m->snap;
        r->recv_offset = 0;
        r->recv_from = m->from;
        r->recv_term = m->term;
    }
    if (m->offset != r->recv_offset) {
        /* A lost chunk (gap) or a duplicate: tell the leader where to resume. */
        return reply(r, m, r->recv_offset, m->offset > r->recv_offset, false, 0);
    }
    r->chunk.snap = m->snap;
    r->chunk.offset = m->offset;
    r->chunk.len = m->len;
    r->chunk.last = m->done;
    r->chunk.data = NULL;
    if (m->len > 0) {
        r->chunk.data = malloc(m->len);
        if (r->chunk.data == NULL) {
            return RAFT_ENOMEM;
        }
        memcpy(r->chunk.data, m->data, m->len);
    }
    r->chunk_pending = true;
    r->recv_offset += m->len;
    if (!m->done) {
        return reply(r, m, r->recv_offset, false, false, 0);
    }
    /* Trap 7: the snapshot does not match our log: the whole log goes. Its configuration
     * is the last committed one at its index (trap 8). */
    raft_trace_event(r, "snapshot install index=%llu term=%llu", (unsigned long long)m->snap.index,
                     (unsigned long long)m->snap.term);
    r->recv_active = false;
    raft_log_restore(&r->log, &m->snap);
    raft_membership_on_restore(r, &m->snap);
    r->install_pending = true;
    r->ack_index = m->snap.index;
    /* The install is durable before this answer leaves (ready contract). */
    return reply(r, m, r->recv_offset, false, true, m->snap.index);
}
