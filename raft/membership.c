/* raft/membership.c: configuration tracking in the log (§4.1), joint consensus (§4.3), conf change
 * API. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "confchange.h"
#include "impl.h"

static void conf_refresh(struct raft *r)
{
    struct raft_conf prev = r->conf;
    r->conf = r->n_conf_log > 0 ? r->conf_log[r->n_conf_log - 1].conf : r->committed_conf;
    if (!raft_conf_equal(&prev, &r->conf) && r->cfg.trace != NULL) {
        char buf[256];
        raft_conf_format(&r->conf, buf, sizeof(buf));
        raft_trace_event(r, "conf %s", buf);
    }
}

static int push_conf(struct raft *r, uint64_t index, const struct raft_conf *c)
{
    int rc = raft_grow_array((void **)&r->conf_log, &r->cap_conf_log, r->n_conf_log + 1,
                             sizeof(*r->conf_log));
    if (rc != 0) {
        return rc;
    }
    r->conf_log[r->n_conf_log].index = index;
    r->conf_log[r->n_conf_log].conf = *c;
    r->n_conf_log++;
    return 0;
}

void raft_membership_close(struct raft *r)
{
    free(r->conf_log);
    r->conf_log = NULL;
    r->n_conf_log = 0;
    r->cap_conf_log = 0;
}

int raft_membership_init(struct raft *r)
{
    struct raft_storage *st = &r->cfg.storage;
    struct raft_snapshot_meta snap;
    memset(&snap, 0, sizeof(snap));
    int rc = st->snapshot_meta(st->ctx, &snap);
    if (rc != 0) {
        return rc;
    }
    r->committed_conf = snap.conf;
    r->committed_conf_index = snap.index;
    uint64_t last = raft_log_last_index(&r->log);
    uint64_t lo = snap.index + 1;
    while (lo <= last) {
        struct raft_entry *ents = NULL;
        size_t n = 0;
        rc = raft_log_entries(&r->log, lo, last + 1, 1 << 20, &ents, &n);
        if (rc != 0) {
            return rc;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct raft_conf c;
            if (ents[i].type != RAFT_ENTRY_CONF ||
                raft_conf_decode(ents[i].data, ents[i].len, &c) != 0) {
                continue;
            }
            if (ents[i].index <= r->log.committed) {
                r->committed_conf = c;
                r->committed_conf_index = ents[i].index;
            } else {
                rc = push_conf(r, ents[i].index, &c);
            }
        }
        lo += n;
        raft_entries_free(ents, n);
        if (rc != 0) {
            return rc;
        }
    }
    conf_refresh(r);
    return 0;
}

int raft_membership_on_append(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf c;
    if (e->type != RAFT_ENTRY_CONF) {
        return 0;
    }
    if (raft_conf_decode(e->data, e->len, &c) != 0) {
        raft_trace_event(r, "ignore malformed conf entry %llu", (unsigned long long)e->index);
        return 0;
    }
    int rc = push_conf(r, e->index, &c);
    if (rc != 0) {
        return rc;
    }
    conf_refresh(r);
    if (r->role == RAFT_LEADER) {
        return raft_tracker_rebuild(r);
    }
    return 0;
}

void raft_membership_on_truncate(struct raft *r, uint64_t from_index)
{
    /* Trap 8: a configuration entry that is truncated away is rolled back; a server always
     * uses the latest configuration still in its log (§4.1). */
    while (r->n_conf_log > 0 && r->conf_log[r->n_conf_log - 1].index >= from_index) {
        r->n_conf_log--;
    }
    conf_refresh(r);
}

void raft_membership_on_restore(struct raft *r, const struct raft_snapshot_meta *meta)
{
    r->n_conf_log = 0;
    r->committed_conf = meta->conf;
    r->committed_conf_index = meta->index;
    conf_refresh(r);
}

bool raft_membership_change_pending(const struct raft *r)
{
    return r->n_conf_log > 0 || raft_conf_is_joint(&r->committed_conf);
}

static int propose_conf(struct raft *r, const struct raft_conf *c, uint64_t cookie)
{
    size_t len = raft_conf_encoded_size(c);
    uint8_t buf[4 + 8 * 3 * RAFT_CONF_MAX];
    raft_conf_encode(c, buf);
    uint64_t index = 0;
    int rc = raft_log_append_leader(r, RAFT_ENTRY_CONF, buf, len, &index);
    if (rc != 0 || cookie == 0) {
        return rc;
    }
    rc = raft_grow_array((void **)&r->props, &r->cap_props, r->n_props + 1, sizeof(*r->props));
    if (rc != 0) {
        return rc;
    }
    r->props[r->n_props].cookie = cookie;
    r->props[r->n_props].index = index;
    r->props[r->n_props].term = r->term;
    r->n_props++;
    return 0;
}

int raft_membership_on_commit(struct raft *r)
{
    size_t k = 0;
    while (k < r->n_conf_log && r->conf_log[k].index <= r->log.committed) {
        r->committed_conf = r->conf_log[k].conf;
        r->committed_conf_index = r->conf_log[k].index;
        k++;
    }
    if (k > 0) {
        memmove(r->conf_log, r->conf_log + k, (r->n_conf_log - k) * sizeof(*r->conf_log));
        r->n_conf_log -= k;
    }
    if (r->role != RAFT_LEADER || r->n_conf_log > 0) {
        return 0;
    }
    if (raft_conf_is_joint(&r->committed_conf)) {
        if (!raft_committed_in_term(r)) {
            return 0;
        }
        /* §4.3: once C_old,new is committed the leader moves on to C_new by itself. */
        struct raft_conf next;
        raft_confchange_leave_joint(&r->committed_conf, &next);
        raft_trace_event(r, "leave joint");
        return propose_conf(r, &next, 0);
    }
    if (!raft_conf_is_voter(&r->committed_conf, r->id)) {
        /* §4.2.2 (trap 9): a leader that is not part of the committed configuration steps
         * down once that configuration is committed. */
        raft_trace_event(r, "removed, stepping down");
        raft_become_follower(r, r->term, 0);
    }
    return 0;
}

int raft_conf_change(struct raft *r, const struct raft_change *changes, size_t n, uint64_t cookie)
{
    struct raft_conf next;
    if (r->role != RAFT_LEADER) {
        return RAFT_ENOTLEADER;
    }
    if (r->transfer_target != 0) {
        return RAFT_ETRANSFER;
    }
    if (!raft_committed_in_term(r)) {
        /* Trap 1: until an entry of its term commits, the new leader may not know the
         * latest committed configuration. */
        return RAFT_ENOTREADY;
    }
    if (raft_membership_change_pending(r)) {
        return RAFT_ECONFPENDING;
    }
    if (cookie != 0 && r->n_props >= r->cfg.max_pending_proposals) {
        return RAFT_EBUSY;
    }
    int rc = raft_confchange_apply(&r->conf, changes, n, &next);
    if (rc != 0) {
        return rc;
    }
    /* A learner is promoted only once it holds (nearly) everything committed, so that the
     * new majority can make progress at once. */
    uint64_t committed = r->log.committed;
    for (size_t i = 0; i < n; i++) {
        if (changes[i].type == RAFT_CHANGE_ADD_VOTER &&
            raft_conf_is_learner(&r->conf, changes[i].id)) {
            struct progress *pr = raft_tracker_get(r, changes[i].id);
            if (pr == NULL || pr->match + r->cfg.promote_max_lag < committed) {
                return RAFT_ECATCHUP;
            }
        }
    }
    if (r->cfg.trace != NULL) {
        char buf[256];
        raft_conf_format(&next, buf, sizeof(buf));
        raft_trace_event(r, "conf change proposed %s", buf);
    }
    return propose_conf(r, &next, cookie);
}
