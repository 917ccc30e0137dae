/* node_lease.c - the leader's lease clocks: when each lease expires, and
 * the LEASE_REVOKE it proposes then.
 *
 * Design notes
 * 1. Only the leader keeps time, on its own monotonic clock; nothing about
 *    time is replicated. Expiry is decided here and replicated as a
 *    command (LEASE_REVOKE with expired set), which every member applies
 *    alike: the keys go on every member at the same revision.
 * 2. Never early: a leader that takes over (or a restarted one) gives
 *    every lease a whole ttl from the moment it knows it (the first tick
 *    as leader for those in its store, the apply for those granted
 *    later). A lease is then never expired before ttl after its last
 *    keep-alive, on any leader; it may live up to one election plus ttl
 *    longer after a leader change.
 * 3. A revoke is proposed again after a second if it was not applied (a
 *    lost proposal); a second one for a revoked lease gets ENOKEY and
 *    changes nothing.
 * Everything runs on the loop thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

#define LEASE_RETRY_MS 1000

static struct node_lease *find(struct node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_leases; i++)
        if (n->leases[i].id == id)
            return &n->leases[i];
    return NULL;
}

static int track(struct node *n, uint64_t id, uint64_t ttl_ms, uint64_t now)
{
    struct node_lease *l = find(n, id);
    if (!l) {
        if (n->n_leases == n->cap_leases) {
            size_t cap = n->cap_leases ? n->cap_leases * 2 : 16;
            struct node_lease *p = realloc(n->leases, cap * sizeof(*p));
            if (!p)
                return ENOMEM;
            n->leases = p;
            n->cap_leases = cap;
        }
        l = &n->leases[n->n_leases++];
    }
    *l = (struct node_lease){.id = id, .ttl_ms = ttl_ms, .deadline_ms = now + ttl_ms};
    return 0;
}

static void untrack(struct node *n, uint64_t id)
{
    struct node_lease *l = find(n, id);
    if (l)
        *l = n->leases[--n->n_leases];
}

static int load_one(void *ctx, const struct store_lease *l)
{
    struct node *n = ctx;
    return track(n, l->id, l->ttl_ms, net_now_ms());
}

static void revoke_done(void *ctx, int rc, const struct store_result *res)
{
    (void)ctx;
    if (rc && rc != ESHUTDOWN)
        node_log(NODE_LOG_WARN, "expiring lease %llx: %s",
                 (unsigned long long)(res ? res->lease_id : 0), strerror(rc));
}

static void propose_revoke(struct node *n, struct node_lease *l, uint64_t now)
{
    struct store_cmd c = {.op = STORE_OP_LEASE_REVOKE,
                          .time_ns = node_now_ns(),
                          .lease = l->id,
                          .lease_expired = true,
                          .client_id = n->lease_client_id,
                          .seq = ++n->lease_seq};
    void *data;
    size_t len;
    if (store_cmd_encode(&c, &data, &len))
        return;
    l->proposed_ms = now;
    if (node_submit(n, data, len, c.client_id, c.seq, false, revoke_done, NULL) == 0)
        node_log(NODE_LOG_INFO, "lease %llx expired (no keep-alive for %llu ms): revoking it",
                 (unsigned long long)l->id, (unsigned long long)l->ttl_ms);
}

void node_leases_tick(struct node *n)
{
    if (raft_role(n->raft) != RAFT_LEADER) {
        n->n_leases = 0;
        n->leases_loaded = false;
        return;
    }
    uint64_t now = net_now_ms();
    if (!n->leases_loaded) {
        struct store_txn *t;
        if (store_txn_begin(n->store, &t))
            return;
        n->n_leases = 0;
        int rc = store_leases(t, load_one, n);
        store_txn_end(t);
        if (rc) {
            node_log(NODE_LOG_WARN, "cannot read the leases: %s", strerror(rc));
            return;
        }
        n->leases_loaded = true;
    }
    for (size_t i = 0; i < n->n_leases; i++) {
        struct node_lease *l = &n->leases[i];
        if (now >= l->deadline_ms && (!l->proposed_ms || now >= l->proposed_ms + LEASE_RETRY_MS))
            propose_revoke(n, l, now);
    }
}

void node_leases_applied(struct node *n, const struct store_result *results,
                         const struct store_entry *entries, size_t count)
{
    if (!n->leases_loaded)
        return; /* not the leader: it loads them all when it becomes one */
    uint64_t now = net_now_ms();
    for (size_t i = 0; i < count; i++) {
        const struct store_result *r = &results[i];
        if (entries[i].noop || r->skipped || r->duplicate || r->err)
            continue;
        if (r->op == STORE_OP_LEASE_GRANT)
            track(n, r->lease_id, r->lease_ttl_ms, now);
        else if (r->op == STORE_OP_LEASE_REVOKE)
            untrack(n, r->lease_id);
    }
}

bool node_leases_ready(struct node *n)
{
    if (raft_role(n->raft) != RAFT_LEADER)
        return false;
    if (!n->leases_loaded)
        node_leases_tick(n); /* a leader since less than a tick */
    return n->leases_loaded;
}

int node_lease_keep_alive(struct node *n, uint64_t id, struct store_lease *out, int64_t *remaining)
{
    if (!node_leases_ready(n))
        return EAGAIN;
    struct store_txn *t;
    int rc = store_txn_begin(n->store, &t);
    if (rc)
        return rc;
    rc = store_lease_get(t, id, out);
    store_txn_end(t);
    if (rc)
        return rc; /* ENOKEY: revoked, expired, never granted (or not applied here yet) */
    struct node_lease *l = find(n, id);
    if (l && l->proposed_ms)
        return ENOKEY; /* expiring: too late */
    uint64_t now = net_now_ms();
    if ((rc = track(n, id, out->ttl_ms, now)))
        return rc;
    *remaining = (int64_t)out->ttl_ms;
    return 0;
}

int node_lease_remaining(struct node *n, uint64_t id, int64_t *remaining)
{
    if (!node_leases_ready(n))
        return EAGAIN;
    struct node_lease *l = find(n, id);
    if (!l)
        return ENOKEY;
    uint64_t now = net_now_ms();
    *remaining = l->deadline_ms > now && !l->proposed_ms ? (int64_t)(l->deadline_ms - now) : 0;
    return 0;
}
