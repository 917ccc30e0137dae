/* node_raft.c - driving raft/ on the node's loop: the storage adapter over
 * store_log, the ready loop (persist, send, apply, answer), and the
 * requests waiting for it (proposals by client id and sequence number,
 * barriers by ReadIndex cookie) with their retries and deadlines.
 *
 * Design notes
 * 1. The ready loop, once per loop turn and until raft has nothing more:
 *      persist hard state + entries (one LMDB transaction, one commit)
 *      -> send messages -> apply committed entries (one transaction per
 *      batch) -> complete waiters -> raft_advance -> raft_persisted.
 *    Persisting comes before sending, so hard state is durable before any
 *    message that depends on it leaves (trap 5); acknowledgements of
 *    entries are only made by raft after raft_persisted.
 * 2. A proposal waits for its own (client_id, seq) to be applied here; it
 *    does not care which index or which leader got it there. On the leader
 *    it is proposed; on a follower forwarded to the leader; it is retried
 *    after an election timeout without an outcome, at once when raft says
 *    leadership was lost, and fails with ETIMEDOUT at its deadline. A
 *    retry that commits twice is applied once (store sessions).
 * 3. EIO from the store fails the member closed. ENOSPC holds the ready
 *    where it failed and retries it every tick: nothing else moves, new
 *    writes fail fast with ENOSPC, and the member goes on once space
 *    returns (a bigger --db-size, or room on the disk).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fault.h"
#include "node_internal.h"

/* ---- storage adapter ---- */

static int map_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case STORE_ECOMPACTED:
        return RAFT_ECOMPACTED;
    case ENOENT:
        return RAFT_EUNAVAILABLE;
    case ENOMEM:
        return RAFT_ENOMEM;
    case EIO:
        return RAFT_ECORRUPT;
    default:
        return RAFT_ESTORAGE;
    }
}

static int st_hard_state(void *ctx, struct raft_hard_state *out)
{
    struct node *n = ctx;
    struct store_hard_state hs;
    int rc = store_log_hard_state(n->store, &hs);
    if (!rc) {
        out->term = hs.term;
        out->vote = hs.vote;
        out->commit = hs.commit;
    }
    return map_err(rc);
}

static int st_first(void *ctx, uint64_t *out)
{
    struct node *n = ctx;
    uint64_t last;
    return map_err(store_log_bounds(n->store, out, &last));
}

static int st_last(void *ctx, uint64_t *out)
{
    struct node *n = ctx;
    uint64_t first;
    return map_err(store_log_bounds(n->store, &first, out));
}

static int st_term(void *ctx, uint64_t index, uint64_t *out)
{
    struct node *n = ctx;
    return map_err(store_log_term(n->store, index, out));
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct raft_entry **out, size_t *count)
{
    struct node *n = ctx;
    struct store_log_entry *e;
    size_t k;
    int rc = store_log_entries(n->store, lo, hi, max_bytes, &e, &k);
    if (rc)
        return map_err(rc);
    /* raft takes over an array whose entries' data are each malloc'd. */
    struct raft_entry *arr = fault_calloc(k, sizeof(*arr));
    if (!arr) {
        free(e);
        return RAFT_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        arr[i].term = e[i].term;
        arr[i].index = e[i].index;
        arr[i].type = e[i].type;
        arr[i].len = (uint32_t)e[i].len;
        if (e[i].len) {
            arr[i].data = malloc(e[i].len);
            if (!arr[i].data) {
                for (size_t j = 0; j < i; j++)
                    free(arr[j].data);
                free(arr);
                free(e);
                return RAFT_ENOMEM;
            }
            memcpy(arr[i].data, e[i].data, e[i].len);
        }
    }
    free(e);
    *out = arr;
    *count = k;
    return 0;
}

static int st_snapshot_meta(void *ctx, struct raft_snapshot_meta *out)
{
    struct node *n = ctx;
    struct store_log_snapshot snap;
    int rc = store_log_snapshot(n->store, &snap);
    if (rc)
        return map_err(rc);
    memset(out, 0, sizeof(*out));
    out->index = snap.index;
    out->term = snap.term;
    out->size = snap.size;
    if (snap.index && raft_conf_decode(snap.conf, snap.conf_len, &out->conf))
        return RAFT_ECORRUPT;
    return 0;
}

static int st_snapshot_read(void *ctx, uint64_t index, uint64_t term, uint64_t offset,
                            size_t max_len, uint8_t **data, size_t *len)
{
    return node_snap_read(ctx, index, term, offset, max_len, data, len);
}

static void trace(void *ctx, const char *line)
{
    struct node *n = ctx;
    if (n->raft) /* NULL while raft_new runs */
        node_log_set_term(n->cfg.id, raft_term(n->raft));
    node_log(NODE_LOG_DEBUG, "raft: %s", line);
}

/* ---- set-up ---- */

int node_raft_init(struct node *n, char *err, size_t err_len)
{
    struct raft_config rc;
    raft_config_init(&rc);
    rc.id = n->cfg.id;
    rc.election_ticks = n->cfg.election_ticks;
    rc.heartbeat_ticks = 1;
    rc.pre_vote = true;
    rc.check_quorum = true;
    if (getrandom(&rc.seed, sizeof(rc.seed), 0) != sizeof(rc.seed))
        rc.seed = n->mount_client_id;
    struct store_stats ss;
    int r = store_get_stats(n->store, &ss);
    if (r) {
        snprintf(err, err_len, "cannot read the store: %s", strerror(r));
        return r;
    }
    rc.applied = ss.applied_index;
    n->applied = ss.applied_index;
    n->counted = n->applied;
    /* One command (a whole value) must fit in one message. */
    struct store_limits lim;
    store_get_limits(n->store, &lim);
    size_t cmd_max = (size_t)lim.max_value_bytes + 2 * (size_t)lim.max_path_bytes + 65536;
    if (rc.max_msg_bytes < cmd_max)
        rc.max_msg_bytes = cmd_max;
    if (rc.max_inflight_bytes < 4 * cmd_max)
        rc.max_inflight_bytes = 4 * cmd_max;
    /* Founding configuration: the given members, or this one alone; a
     * member that joins gets its configuration from the leader. */
    if (n->cfg.joining) {
        /* empty bootstrap */
    } else if (n->cfg.n_members == 0) {
        rc.bootstrap.voters[0] = n->cfg.id;
        rc.bootstrap.n_voters = 1;
    } else {
        for (size_t i = 0; i < n->cfg.n_members; i++)
            rc.bootstrap.voters[i] = n->cfg.members[i].id;
        rc.bootstrap.n_voters = (uint32_t)n->cfg.n_members;
    }
    const char *note = store_log_note(n->store);
    if (*note)
        node_log(NODE_LOG_WARN, "the Raft log: %s", note);
    /* A store that applied commands before it had a log (it served alone,
     * without Raft): its state becomes the snapshot the log starts after. */
    uint64_t first, last;
    if ((r = store_log_bounds(n->store, &first, &last))) {
        snprintf(err, err_len, "the Raft log is damaged (%s): refusing to start", strerror(r));
        return r;
    }
    /* Every applied entry was durable in the log first: a log that ends
     * before the applied index lost entries after they were applied (a
     * damaged last batch, discarded as torn). raft_new would refuse it
     * too, as "storage inconsistent"; say what it is. */
    if (last > 0 && ss.applied_index > last) {
        snprintf(err, err_len,
                 "the store applied entry %llu but the Raft log ends at %llu (its last batch "
                 "damaged, or the log cut short): refusing to start (raftfs check --data DIR)",
                 (unsigned long long)ss.applied_index, (unsigned long long)last);
        return EPROTO;
    }
    if (ss.applied_index > 0 && last == 0) {
        struct store_log_snapshot snap = {.index = ss.applied_index, .term = 1};
        snap.conf_len = raft_conf_encoded_size(&rc.bootstrap);
        raft_conf_encode(&rc.bootstrap, snap.conf);
        if ((r = store_log_compact(n->store, &snap, true))) {
            snprintf(err, err_len, "cannot adopt the existing state: %s", strerror(r));
            return r;
        }
        node_log(NODE_LOG_INFO, "adopted the state at index %llu as the log's start",
                 (unsigned long long)ss.applied_index);
    }
    rc.storage = (struct raft_storage){.ctx = n,
                                       .hard_state = st_hard_state,
                                       .first_index = st_first,
                                       .last_index = st_last,
                                       .term = st_term,
                                       .entries = st_entries,
                                       .snapshot_meta = st_snapshot_meta,
                                       .snapshot_read = st_snapshot_read};
    rc.trace = trace;
    rc.trace_ctx = n;
    n->rcfg = rc;
    /* Every applied entry is durable in the log first, which is synced. */
    store_set_lazy_apply(n->store, true);
    if ((r = raft_new(&rc, &n->raft))) {
        snprintf(err, err_len, "cannot start Raft: %s", raft_strerror(r));
        return r == RAFT_ENOMEM ? ENOMEM : EIO;
    }
    node_log_set_term(n->cfg.id, raft_term(n->raft));
    struct store_hard_state hs;
    if ((r = store_log_hard_state(n->store, &hs))) {
        snprintf(err, err_len, "cannot read the hard state: %s", strerror(r));
        return r;
    }
    n->hs_term = hs.term;
    n->hs_vote = hs.vote;
    if ((r = store_space(n->store, &n->space))) {
        snprintf(err, err_len, "cannot measure the store: %s", strerror(r));
        return r;
    }
    if ((r = node_snap_init(n, err, err_len)))
        return r;
    n->batch_cap = n->cfg.max_batch;
    n->entries = calloc(n->batch_cap, sizeof(*n->entries));
    n->results = calloc(n->batch_cap, sizeof(*n->results));
    if (!n->entries || !n->results) {
        snprintf(err, err_len, "out of memory");
        return ENOMEM;
    }
    return 0;
}

void node_raft_fini(struct node *n)
{
    if (n->rd_held) {
        raft_advance(n->raft, &n->rd);
        n->rd_held = false;
    }
    raft_free(n->raft);
    n->raft = NULL;
    free(n->entries);
    free(n->results);
    free(n->leases);
}

/* ---- requests ---- */

static uint64_t retry_interval_ms(const struct node *n)
{
    return (uint64_t)n->cfg.tick_ms * n->cfg.election_ticks;
}

/* A write that cannot fit is refused before it enters the log (once in
 * the log it must apply, and a member without room stalls). It lands
 * twice, as a log entry and as a value, each on consecutive pages when
 * large (store_space_take), and copy-on-write needs room for the pages it
 * replaces. Writes accepted before the next measurement (every tick) use
 * up the room they take, so that a burst cannot pass on one figure. A
 * refusal asks for an early compaction (maybe_snapshot). Below the guard,
 * ENOSPC can still happen at apply: the ready is then held until there is
 * room. */
static bool take_room(struct node *n, size_t len)
{
    struct store_space sp = n->space;
    if ((uint64_t)len * 3 + (256U << 10) > sp.free_bytes || !store_space_take(&sp, len) ||
        !store_space_take(&sp, len)) {
        n->space_refused = true;
        return false;
    }
    n->space = sp;
    return true;
}

static void submit(struct node *n, struct node_req *r, uint64_t now)
{
    uint64_t leader = raft_leader(n->raft);
    if (r->kind == NODE_REQ_BARRIER) {
        uint64_t point;
        bool local = r->leader_local && raft_leader_commit_point(n->raft, &point);
        pthread_mutex_lock(&n->mu);
        if (local)
            n->stats.read_local++;
        else
            n->stats.read_rounds++;
        pthread_mutex_unlock(&n->mu);
        if (local) {
            r->read_known = true; /* completed by sweep_pending */
            r->read_index = point;
            return;
        }
        r->cookie = ++n->next_cookie;
        int rc = raft_read_index(n->raft, r->cookie);
        r->retry_ms = now + (rc ? n->cfg.tick_ms : retry_interval_ms(n));
        return;
    }
    if (!take_room(n, r->len)) {
        if (r->handed) {
            /* An earlier submission may still commit (found by tests/chaos
             * seed 1: a retry refused here was answered ENOSPC, and the
             * first one applied). Only its apply or the deadline
             * (ETIMEDOUT: outcome unknown) answers it now. */
            r->retry_ms = now + n->cfg.tick_ms;
            return;
        }
        r->retry_ms = UINT64_MAX;
        r->deadline_ms = 0;
        r->answer = ENOSPC; /* given by sweep_pending */
        return;
    }
    if (raft_role(n->raft) == RAFT_LEADER) {
        r->cookie = ++n->next_cookie;
        int rc = raft_propose(n->raft, r->data, r->len, r->cookie, NULL, NULL);
        if (rc == RAFT_ETOOBIG) {
            r->retry_ms = UINT64_MAX; /* answered by sweep_pending */
            r->deadline_ms = 0;
            r->answer = EFBIG;
            return;
        }
        if (!rc)
            r->handed++;
        r->retry_ms = now + (rc ? n->cfg.tick_ms : retry_interval_ms(n));
        return;
    }
    if (leader && leader != n->cfg.id) {
        r->handed++;
        node_peer_forward(n, leader, r->data, r->len);
        r->retry_ms = now + retry_interval_ms(n);
        return;
    }
    r->retry_ms = now + n->cfg.tick_ms; /* no leader known yet */
}

/* Moves the inbox to the pending list and submits what is new. */
static void take_inbox(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    struct node_req *r = n->inbox;
    n->inbox = n->inbox_tail = NULL;
    int stalled = n->stalled;
    pthread_mutex_unlock(&n->mu);
    uint64_t now = net_now_ms();
    while (r) {
        struct node_req *next = r->next;
        if (stalled && r->kind == NODE_REQ_PROPOSE) {
            node_req_finish(n, r, stalled, NULL);
        } else {
            r->next = n->pending;
            n->pending = r;
            n->n_pending++;
            submit(n, r, now);
        }
        r = next;
    }
}

void node_raft_enqueue(struct node *n, struct node_req *r)
{
    r->next = n->pending;
    n->pending = r;
    n->n_pending++;
    submit(n, r, net_now_ms());
}

bool node_raft_answered_ahead(const struct node *n)
{
    return n->counted > n->applied;
}

int node_raft_wait_answered(struct node *n, node_done_fn done, void *ctx)
{
    struct node_req *r = node_req_barrier_new(done, ctx);
    if (!r)
        return ENOMEM;
    r->cookie = ++n->next_cookie;
    r->read_known = true; /* completed by sweep_pending, never sent to raft */
    r->read_index = n->counted;
    r->deadline_ms = net_now_ms() + n->cfg.timeout_ms;
    r->next = n->pending;
    n->pending = r;
    n->n_pending++;
    return 0;
}

/* The pending request (client_id, seq) or cookie, taken off the list;
 * with only_early, only if it may be answered before its batch commits. */
static struct node_req *take_pending(struct node *n, enum node_req_kind kind, uint64_t client_id,
                                     uint64_t seq, uint64_t cookie, bool only_early)
{
    for (struct node_req **pp = &n->pending; *pp; pp = &(*pp)->next) {
        struct node_req *r = *pp;
        bool match = r->kind == kind &&
                     (kind == NODE_REQ_PROPOSE ? r->client_id == client_id && r->seq == seq
                                               : r->cookie == cookie);
        if (match && only_early && !r->early)
            return NULL;
        if (match) {
            *pp = r->next;
            n->n_pending--;
            return r;
        }
    }
    return NULL;
}

static struct node_req *find_pending(struct node *n, enum node_req_kind kind, uint64_t cookie)
{
    for (struct node_req *r = n->pending; r; r = r->next)
        if (r->kind == kind && r->cookie == cookie)
            return r;
    return NULL;
}

static struct node_req *find_pending_cmd(struct node *n, uint64_t client_id, uint64_t seq)
{
    for (struct node_req *r = n->pending; r; r = r->next)
        if (r->kind == NODE_REQ_PROPOSE && r->client_id == client_id && r->seq == seq)
            return r;
    return NULL;
}

/* Completes barriers whose read index is applied, requests past their
 * deadline, and resubmits those due. */
static void sweep_pending(struct node *n, bool retries)
{
    uint64_t now = net_now_ms();
    /* Failed closed: nothing pending can be answered any more; say so now
     * rather than at each deadline. EIO whatever the failure was (ENOMEM,
     * ENOSPC...): the outcome of a write whose entry was already in the log
     * is unknown, and a definite errno would say it was refused. */
    pthread_mutex_lock(&n->mu);
    int failed = n->failed == ESHUTDOWN ? ESHUTDOWN : n->failed ? EIO : 0;
    pthread_mutex_unlock(&n->mu);
    struct node_req **pp = &n->pending;
    while (*pp) {
        struct node_req *r = *pp;
        int rc = -1;
        if (r->kind == NODE_REQ_BARRIER && r->read_known && r->read_index <= n->applied)
            rc = 0;
        else if (failed)
            rc = failed;
        else if (now >= r->deadline_ms)
            rc = r->answer ? r->answer : ETIMEDOUT;
        if (rc >= 0) {
            *pp = r->next;
            n->n_pending--;
            node_req_finish(n, r, rc, NULL);
            continue;
        }
        if (retries && !(r->kind == NODE_REQ_BARRIER && r->read_known) && r->retry_ms <= now)
            submit(n, r, now);
        pp = &r->next;
    }
}

/* ---- the ready loop ---- */

static bool in_conf(const struct raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_voters_old; i++)
        if (c->voters_old[i] == id)
            return true;
    return raft_conf_is_voter(c, id) || raft_conf_is_learner(c, id);
}

/* Every id of c: voters, old voters (joint), learners. */
static size_t node_conf_ids(const struct raft_conf *c, uint64_t *ids)
{
    size_t n = 0;
    for (uint32_t i = 0; i < c->n_voters; i++)
        ids[n++] = c->voters[i];
    for (uint32_t i = 0; i < c->n_voters_old; i++)
        ids[n++] = c->voters_old[i];
    for (uint32_t i = 0; i < c->n_learners; i++)
        ids[n++] = c->learners[i];
    return n;
}

/* Remembers the members that `after` removes from `before`, for the
 * leader to delete their directory entries (node_members_tick). */
static void note_removed(struct node *n, const struct raft_conf *before,
                         const struct raft_conf *after)
{
    uint64_t ids[3 * RAFT_CONF_MAX];
    size_t k = node_conf_ids(before, ids);
    for (size_t i = 0; i < k; i++) {
        if (in_conf(after, ids[i]) || ids[i] == n->cfg.id)
            continue;
        bool known = false;
        for (size_t j = 0; j < n->n_dir_removed; j++)
            known |= n->dir_removed[j] == ids[i];
        if (!known && n->n_dir_removed < sizeof(n->dir_removed) / sizeof(n->dir_removed[0]))
            n->dir_removed[n->n_dir_removed++] = ids[i];
    }
}

/* Removed, or refused by most of the others because this data directory
 * is not the one the cluster knows: stop serving (ESHUTDOWN, which the
 * mount turns into EIO), saying why and what to do. */
static void fail_removed(struct node *n)
{
    char what[512];
    if (n->removed_lost)
        snprintf(what, sizeof(what),
                 "most members refuse this data directory (incarnation %016llx) as member "
                 "%llu: its state is lost; it serves nothing more. Unmount it, run `raftfs "
                 "member remove %llu`, and add it again as a new member",
                 (unsigned long long)n->incarnation, (unsigned long long)n->cfg.id,
                 (unsigned long long)n->cfg.id);
    else
        snprintf(what, sizeof(what),
                 "this member was removed from the cluster; it serves nothing more "
                 "(unmount it)");
    node_fail(n, ESHUTDOWN, what);
}

/* Counts a batch's commands and answers the requests they complete: at
 * early (the batch's results are known, its commit and fsync are still to
 * come), those marked early, and after the commit all others. Early ones
 * are protocol clients, whose next request is served on this thread, so
 * after the commit; and their answers are flushed at once, not at the end
 * of the turn (issue 6: a put's answer no longer waits for the apply's
 * fsync). A mount's caller reads the store from its own thread next, so it
 * is answered once the batch is visible. */
static void answer_batch(struct node *n, size_t count, bool early)
{
    if (early) {
        size_t applied_cmds = 0;
        for (size_t i = 0; i < count; i++) {
            const struct store_result *res = &n->results[i];
            if (n->entries[i].noop || res->skipped || n->entries[i].index <= n->counted)
                continue;
            applied_cmds++;
        }
        bool fresh = n->entries[count - 1].index > n->counted;
        if (fresh)
            n->counted = n->entries[count - 1].index;
        /* counted before any waiter is woken: whoever saw its write
         * complete sees it in the statistics and the revision */
        pthread_mutex_lock(&n->mu);
        n->stats.batches += fresh;
        n->stats.proposals += applied_cmds;
        n->status.revision = n->results[count - 1].revision;
        pthread_mutex_unlock(&n->mu);
    }
    for (size_t i = 0; i < count; i++) {
        const struct store_result *res = &n->results[i];
        if (n->entries[i].noop || res->skipped || !res->client_id)
            continue;
        struct node_req *r = take_pending(n, NODE_REQ_PROPOSE, res->client_id, res->seq, 0, early);
        if (r)
            node_req_finish(n, r, 0, res);
    }
    if (early)
        node_server_flush(n);
}

/* Applies left uncommitted (store_apply_batch_decided's deferral): their
 * commit, one fsync, is made once they are NODE_DEFER_MS old, when the loop
 * is idle (node_raft_idle) or at the end of a turn; at once when a read
 * waits for them; or with the next batch that must be visible at once (a
 * mount's write, membership). So one fsync serves the applies of many
 * writes, and a lone client's next write does not wait for it. */
#define NODE_DEFER_MS      2
#define NODE_DEFER_ENTRIES 8192

struct decided {
    struct node *n;
    size_t count;
    bool must_commit; /* configuration entries */
};

/* Is a request that is answered only once its batch is visible (a
 * mount's) waiting for one of these results? */
static bool late_waiter(struct node *n, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct store_result *res = &n->results[i];
        if (n->entries[i].noop || res->skipped || !res->client_id)
            continue;
        if (res->op == STORE_OP_MEMBER_SET || res->op == STORE_OP_MEMBER_DEL)
            return true; /* the directory is read back at once */
        for (const struct node_req *r = n->pending; r; r = r->next)
            if (r->kind == NODE_REQ_PROPOSE && r->client_id == res->client_id && r->seq == res->seq)
                return true;
    }
    return false;
}

static bool batch_decided(void *ctx)
{
    struct decided *d = ctx;
    struct node *n = d->n;
    answer_batch(n, d->count, true);
    if (d->must_commit || late_waiter(n, d->count))
        return true;
    uint64_t now = net_now_ms();
    if (n->deferred_since_ms && now >= n->deferred_since_ms + NODE_DEFER_MS)
        return true;
    return n->counted - n->applied > NODE_DEFER_ENTRIES;
}

/* After a commit of deferred applies (or a failed one): the visible index,
 * the applies to make again, the waiters it releases. */
static void after_commit(struct node *n, int rc)
{
    if (!rc)
        rc = store_apply_flush_error(n->store); /* one made before a read */
    uint64_t vis = store_applied_visible(n->store);
    if (vis > n->applied) {
        n->applied = vis;
        node_raft_visible_moved(n);
    }
    if (!store_apply_deferred(n->store))
        n->deferred_since_ms = 0;
    if (rc) {
        /* Nothing of the deferred applies was committed: they are made
         * again from the log before anything else is applied. */
        if (n->counted > n->reapply_to)
            n->reapply_to = n->counted;
        if (rc != ENOSPC)
            node_fail(n, EIO, "committing applied entries failed");
        else
            node_log(NODE_LOG_WARN, "committing applied entries: no space (tried again once "
                                    "there is)");
    }
}

/* Commits deferred applies now. */
static void commit_deferred(struct node *n)
{
    int rc = store_apply_deferred(n->store) ? store_apply_flush(n->store) : 0;
    after_commit(n, rc);
    sweep_pending(n, false);
}

static bool deferred_due(const struct node *n)
{
    return n->deferred_since_ms && net_now_ms() >= n->deferred_since_ms + NODE_DEFER_MS;
}

/* Does a read wait for applies that are decided but not committed? */
static bool reads_wait(const struct node *n)
{
    for (const struct node_req *r = n->pending; r; r = r->next)
        if (r->kind == NODE_REQ_BARRIER && r->read_known && r->read_index > n->applied &&
            r->read_index <= n->counted)
            return true;
    return false;
}

void node_raft_idle(struct net_loop *l, void *ctx)
{
    struct node *n = ctx;
    (void)l;
    commit_deferred(n);
}

/* Applies again, from the log, what a failed commit lost. Answers nobody:
 * every result was known and answered before. */
static int reapply(struct node *n)
{
    while (n->applied < n->reapply_to) {
        uint64_t hi = n->reapply_to + 1;
        if (hi - (n->applied + 1) > n->batch_cap)
            hi = n->applied + 1 + n->batch_cap;
        struct store_log_entry *e;
        size_t k;
        int rc = store_log_entries(n->store, n->applied + 1, hi, 4u << 20, &e, &k);
        if (rc)
            return rc == ENOSPC ? ENOSPC : EIO;
        for (size_t i = 0; i < k; i++)
            n->entries[i] = (struct store_entry){.index = e[i].index,
                                                 .data = e[i].data,
                                                 .len = e[i].len,
                                                 .noop = e[i].type != RAFT_ENTRY_NORMAL};
        rc = store_apply_batch_decided(n->store, n->entries, k, n->results, NULL, NULL);
        free(e);
        if (rc)
            return rc;
        n->applied = store_applied_visible(n->store);
        node_raft_visible_moved(n);
    }
    n->reapply_to = 0;
    return 0;
}

/* Publishes the leader's commit point for node_read_barrier_for_write, as
 * of the ready just taken: before any of its messages leave (they carry its
 * commit index) and before anything it commits is answered, so an open that
 * begins after a write was answered, here or on another member, reads a
 * point at or past that write. A leader deposed unawares keeps its last
 * one, as the loop's own local read does (raft_leader_commit_point). */
static void publish_write_point(struct node *n)
{
    uint64_t point;
    if (!raft_leader_commit_point(n->raft, &point))
        point = 0;
    atomic_store_explicit(&n->write_point, point, memory_order_release);
}

void node_raft_visible_moved(struct node *n)
{
    if (!atomic_load(&n->vis_waiters))
        return;
    pthread_mutex_lock(&n->vis_mu);
    pthread_cond_broadcast(&n->vis_cv);
    pthread_mutex_unlock(&n->vis_mu);
}

/* An applied configuration leaves this member's id out: is it this data
 * directory that is removed? Not when the member directory records another
 * incarnation for the id: the id was removed once before and then added
 * again, and this is the new member, catching up from a log that still
 * holds the old removal (node_member.c, note 4). Anything else (the same
 * incarnation, none recorded, the directory unreadable) is a removal. */
static bool removes_this_directory(struct node *n, uint64_t index)
{
    uint64_t inc = 0;
    if (node_member_incarnation(n, n->cfg.id, &inc) || !inc || inc == n->incarnation)
        return true;
    node_log(NODE_LOG_INFO,
             "member %llu was removed at index %llu as incarnation %016llx; this data directory "
             "(incarnation %016llx) is the member added again since",
             (unsigned long long)n->cfg.id, (unsigned long long)index, (unsigned long long)inc,
             (unsigned long long)n->incarnation);
    return false;
}

/* A read on this thread commits the deferred applies first (store_begin);
 * if that commit failed, they are lost, and must be made again from the log
 * before anything after them is applied: applied over the older state, the
 * next batch would leave a hole in the tree that the visible index then
 * passes. Returns 0, or the errno to stop applying with. */
static int lost_deferred(struct node *n)
{
    int rc = store_apply_flush_error(n->store);
    if (!rc)
        return 0;
    after_commit(n, rc); /* reapply_to, and fails the node unless ENOSPC */
    return rc == ENOSPC ? ENOSPC : EIO;
}

/* Applies rd's committed entries from rd_applied on, in batches. */
static int apply(struct node *n, struct raft_ready *rd)
{
    int lost = lost_deferred(n);
    if (lost)
        return lost;
    if (n->reapply_to > n->applied) {
        int rc = reapply(n);
        if (rc)
            return rc;
    }
    while (n->rd_applied < rd->n_committed) {
        if ((lost = lost_deferred(n)))
            return lost;
        size_t count = rd->n_committed - n->rd_applied;
        if (count > n->batch_cap)
            count = n->batch_cap;
        struct raft_entry *ce = rd->committed + n->rd_applied;
        /* The configuration in force follows its applied entries: taken
         * over only once the batch is applied (a batch that finds no room
         * is tried again, and a snapshot may be taken meanwhile). */
        struct raft_conf conf = n->applied_conf;
        bool removed = false, conf_entries = false;
        for (size_t i = 0; i < count; i++) {
            n->entries[i] = (struct store_entry){.index = ce[i].index,
                                                 .data = ce[i].data,
                                                 .len = ce[i].len,
                                                 .noop = ce[i].type != RAFT_ENTRY_NORMAL};
            if (ce[i].type == RAFT_ENTRY_CONF) {
                struct raft_conf before = conf;
                if (raft_conf_decode(ce[i].data, ce[i].len, &conf))
                    return EIO;
                if (in_conf(&before, n->cfg.id) && !in_conf(&conf, n->cfg.id)) {
                    if (i > 0) {
                        /* The entries before it first: whose removal it
                         * is depends on the directory they leave. */
                        conf = before;
                        count = i;
                        break;
                    }
                    removed = removes_this_directory(n, ce[i].index); /* acted on once applied */
                    /* its directory read committed what was deferred (store_begin) */
                    if ((lost = lost_deferred(n)))
                        return lost; /* decided again once they are made again */
                }
                conf_entries = true;
                note_removed(n, &before, &conf);
            }
        }
        uint64_t t0 = node_now_us();
        struct decided d = {.n = n, .count = count, .must_commit = conf_entries};
        uint64_t decided_before = n->counted;
        int rc =
            store_apply_batch_decided(n->store, n->entries, count, n->results, batch_decided, &d);
        if (rc) {
            /* A failed batch or commit lost the batches deferred before
             * this one too: those are made again from the log, then this
             * one. */
            if (!store_apply_deferred(n->store) &&
                store_applied_visible(n->store) < decided_before && decided_before > n->reapply_to)
                n->reapply_to = decided_before;
            return rc;
        }
        node_metric_observe(n, &n->metrics.apply, t0);
        n->applied_conf = conf;
        n->removed |= removed;
        n->rd_applied += count;
        node_leases_applied(n, n->results, n->entries, count);
        if (store_apply_deferred(n->store)) {
            if (!n->deferred_since_ms)
                n->deferred_since_ms = net_now_ms();
            net_loop_want_idle(n->loop, n->deferred_since_ms + NODE_DEFER_MS);
            continue; /* only early answers, given already */
        }
        after_commit(n, 0);
        bool members = false;
        for (size_t i = 0; i < count; i++) {
            const struct store_result *res = &n->results[i];
            if (!n->entries[i].noop && !res->skipped)
                members |= res->op == STORE_OP_MEMBER_SET || res->op == STORE_OP_MEMBER_DEL;
        }
        answer_batch(n, count, false);
        if (members)
            node_members_sync(n);
        if (n->removed) {
            node_member_removed(n);
            fail_removed(n);
            return ESHUTDOWN;
        }
    }
    return 0;
}

/* The log had no room for rd's entries: nothing of rd is durable. Raft is
 * remade from what is durable (as after a crash). The waiters of those
 * proposals get ENOSPC, a definite answer, only when the entries exist
 * nowhere else: this member made them as the leader and no message carried
 * them. Otherwise (rd's messages left early, or the entries came from a
 * leader and other members may hold them) they may still commit: the
 * waiters stay, answered by the apply or by their deadline. */
static int drop_unpersisted(struct node *n, struct raft_ready *rd)
{
    commit_deferred(n); /* raft is remade from the committed index */
    bool definite = !n->rd_sent_early && raft_role(n->raft) == RAFT_LEADER;
    for (size_t i = 0; definite && i < rd->n_entries; i++) {
        if (rd->entries[i].type != RAFT_ENTRY_NORMAL)
            continue;
        struct store_cmd_decoded d;
        if (store_cmd_decode(rd->entries[i].data, rd->entries[i].len, &d))
            continue;
        struct node_req *r = find_pending_cmd(n, d.cmd.client_id, d.cmd.seq);
        /* Proposed or forwarded before this time too: that one may commit. */
        if (r && r->handed <= 1)
            r = take_pending(n, NODE_REQ_PROPOSE, d.cmd.client_id, d.cmd.seq, 0, false);
        else
            r = NULL;
        store_cmd_decoded_free(&d);
        if (r)
            node_req_finish(n, r, ENOSPC, NULL);
    }
    raft_advance(n->raft, rd);
    n->rd_held = false;
    raft_free(n->raft);
    n->raft = NULL;
    struct raft_config rc = n->rcfg;
    rc.applied = n->applied;
    /* a new seed, as at any start: contexts of reads forwarded by the
     * previous instance must not match this one's */
    if (getrandom(&rc.seed, sizeof(rc.seed), 0) != sizeof(rc.seed))
        rc.seed = n->rcfg.seed + n->applied + 1;
    n->rcfg.seed = rc.seed;
    int rrc = raft_new(&rc, &n->raft);
    if (rrc) {
        node_fail(n, EIO, raft_strerror(rrc));
        return EIO;
    }
    return ENOSPC;
}

/* rd's entries (and everything else of rd) are durable: tells raft at once
 * and sends what that makes (a follower's acknowledgement), before rd's
 * committed entries are applied. The acknowledgement of a batch used to wait
 * for the apply of the batch before it (and a deferred apply commit), which
 * is work the leader does not need done first (issue 6, docs/profile.md). */
static int persisted_now(struct node *n, const struct raft_ready *rd)
{
    const struct raft_entry *last = &rd->entries[rd->n_entries - 1];
    if (raft_persisted(n->raft, last->index, last->term)) {
        node_fail(n, EIO, "raft refused what the log holds");
        return EIO;
    }
    publish_write_point(n); /* a leader's own durability may commit: see there */
    struct raft_message *m;
    size_t k;
    raft_take_messages(n->raft, &m, &k);
    for (size_t i = 0; i < k; i++)
        node_peer_send_raft(n, &m[i]);
    if (k)
        node_peers_flush(n);
    raft_messages_free(m, k);
    return 0;
}

/* Finishes the held ready from its stage. 0 when done (advanced), ENOSPC
 * when it must wait for space, another errno when the node failed. */
static int finish_ready(struct node *n)
{
    struct raft_ready *rd = &n->rd;
    int rc;
    if (n->rd_stage == 0) {
        /* Messages may leave before rd's entries are durable (raft.h, ready
         * contract 2: no message depends on them, acknowledgements wait for
         * raft_persisted), so a leader's appends travel while it writes its
         * own log. Not before a new term or vote or a snapshot is durable
         * (contract 1): those are written first, as before. */
        bool vote_changed = rd->hard_state_changed && (rd->hard_state.term != n->hs_term ||
                                                       rd->hard_state.vote != n->hs_vote);
        if (!n->rd_sent_early && rd->n_entries && rd->n_messages && !vote_changed &&
            !rd->has_snapshot_chunk && !rd->has_snapshot) {
            for (size_t i = 0; i < rd->n_messages; i++)
                node_peer_send_raft(n, &rd->messages[i]);
            node_peers_flush(n);
            n->rd_sent_early = true;
        }
        if (rd->has_snapshot_chunk && (rc = node_snap_chunk(n, &rd->snapshot_chunk))) {
            if (rc != ENOSPC)
                node_log(NODE_LOG_ERROR, "writing a snapshot chunk (at %llu, offset %llu): %s",
                         (unsigned long long)rd->snapshot_chunk.snap.index,
                         (unsigned long long)rd->snapshot_chunk.offset, strerror(rc));
            return rc == ENOSPC ? ENOSPC : EIO;
        }
        if (rd->has_snapshot && (rc = node_snap_install(n, &rd->snapshot)))
            return rc == ENOSPC ? ENOSPC : EIO;
        /* A hard state whose term and vote are unchanged differs only in
         * its commit index, a hint raft clamps at start (never below the
         * applied index): it is written with the next entries, not on its
         * own. Writing it alone cost an fdatasync on every member for every
         * commit, on the leader between the quorum's acknowledgement and
         * the answer (issue 6). */
        if (rd->n_entries || vote_changed) {
            struct store_hard_state hs = {.term = rd->hard_state.term,
                                          .vote = rd->hard_state.vote,
                                          .commit = rd->hard_state.commit};
            struct store_log_entry *e = NULL;
            if (rd->n_entries) {
                e = fault_calloc(rd->n_entries, sizeof(*e));
                if (!e)
                    return ENOSPC; /* try again */
                for (size_t i = 0; i < rd->n_entries; i++)
                    e[i] = (struct store_log_entry){.index = rd->entries[i].index,
                                                    .term = rd->entries[i].term,
                                                    .type = rd->entries[i].type,
                                                    .data = rd->entries[i].data,
                                                    .len = rd->entries[i].len};
            }
            /* Synced when raft says so (entries, term, vote); a commit index
             * alone is a hint that may be lost. */
            uint64_t t0 = node_now_us();
            rc = store_log_persist(n->store, rd->hard_state_changed ? &hs : NULL, e, rd->n_entries,
                                   rd->must_sync || rd->n_entries);
            free(e);
            if (!rc)
                node_metric_observe(n, &n->metrics.persist, t0);
            if (rc == ENOSPC)
                return drop_unpersisted(n, rd);
            if (rc) {
                node_log(NODE_LOG_ERROR, "persisting %zu entries%s: %s", rd->n_entries,
                         rd->hard_state_changed ? " and the hard state" : "", strerror(rc));
                return rc;
            }
            if (rd->hard_state_changed) {
                n->hs_term = hs.term;
                n->hs_vote = hs.vote;
            }
            if (rd->n_entries && (rc = persisted_now(n, rd)))
                return rc;
        }
        n->rd_stage = 1;
    }
    if (n->rd_stage == 1) {
        if (!n->rd_sent_early) {
            for (size_t i = 0; i < rd->n_messages; i++)
                node_peer_send_raft(n, &rd->messages[i]);
            /* Out now, not at the end of the turn: applying the committed
             * entries, and the deferred apply commit (its fsync), come
             * first there, and a follower's acknowledgement or a leader's
             * commit index would wait for them (issue 6, docs/profile.md). */
            if (rd->n_messages && rd->n_committed)
                node_peers_flush(n);
        }
        n->rd_stage = 2;
        n->rd_applied = 0;
    }
    if (n->rd_stage == 2) {
        if ((rc = apply(n, rd))) {
            if (rc != ENOSPC && rc != ESHUTDOWN)
                node_log(NODE_LOG_ERROR, "applying entries from %llu: %s",
                         (unsigned long long)rd->committed[n->rd_applied].index, strerror(rc));
            return rc;
        }
        n->rd_stage = 3;
    }
    uint64_t now = net_now_ms();
    for (size_t i = 0; i < rd->n_proposals; i++) {
        node_member_conf_result(n, rd->proposals[i].cookie, rd->proposals[i].status);
        if (rd->proposals[i].status == 0)
            continue;
        /* Leadership lost before it committed: try again at once. */
        struct node_req *r = find_pending(n, NODE_REQ_PROPOSE, rd->proposals[i].cookie);
        if (r)
            r->retry_ms = now;
    }
    if (n->member_ops)
        node_member_settle(n);
    for (size_t i = 0; i < rd->n_reads; i++) {
        struct node_req *r = find_pending(n, NODE_REQ_BARRIER, rd->reads[i].cookie);
        if (!r)
            continue;
        if (rd->reads[i].status == 0) {
            r->read_known = true;
            r->read_index = rd->reads[i].index;
        } else {
            r->retry_ms = now + n->cfg.tick_ms;
        }
    }
    raft_advance(n->raft, rd);
    n->rd_held = false;
    return 0;
}

/* Runs ready after ready until raft has none, or one must wait. */
static void run_ready(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    int failed = n->failed;
    pthread_mutex_unlock(&n->mu);
    if (failed)
        return;
    for (;;) {
        if (!n->rd_held) {
            if (!raft_has_ready(n->raft))
                break;
            int rc = raft_ready(n->raft, &n->rd);
            if (rc) {
                node_fail(n, EIO, raft_strerror(rc));
                return;
            }
            publish_write_point(n);
            n->rd_held = true;
            n->rd_stage = 0;
            n->rd_sent_early = false; /* stage 0 may run again: send once */
        }
        int rc = finish_ready(n);
        if (rc == ENOSPC) {
            pthread_mutex_lock(&n->mu);
            bool first = !n->stalled;
            n->stalled = ENOSPC;
            pthread_mutex_unlock(&n->mu);
            if (first)
                node_log(NODE_LOG_ERROR,
                         "no space for the log or the store: writes are refused until space "
                         "returns (a bigger --db-size, or room on the disk)");
            return;
        }
        if (rc) {
            node_fail(n, rc, "writing the log or the store failed");
            return;
        }
        pthread_mutex_lock(&n->mu);
        if (n->stalled) {
            n->stalled = 0;
            node_log(NODE_LOG_INFO, "space is back: accepting writes again");
        }
        pthread_mutex_unlock(&n->mu);
    }
}

static const char *role_name(enum raft_role r)
{
    switch (r) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    default:
        return "follower";
    }
}

/* Votes in every half of c (both, while c is joint). */
static bool votes_in(const struct raft_conf *c, uint64_t id)
{
    for (uint32_t i = 0; i < c->n_voters; i++)
        if (c->voters[i] == id) {
            if (!c->n_voters_old)
                return true;
            for (uint32_t j = 0; j < c->n_voters_old; j++)
                if (c->voters_old[j] == id)
                    return true;
            return false;
        }
    return false;
}

const char *node_member_role(const struct raft_conf *latest, const struct raft_conf *committed,
                             uint64_t id, uint64_t leader)
{
    if (id == leader)
        return "leader";
    if (raft_conf_is_learner(latest, id))
        return "learner";
    if (votes_in(latest, id) && votes_in(committed, id))
        return "follower";
    bool incoming = false;
    for (uint32_t i = 0; i < latest->n_voters; i++)
        incoming |= latest->voters[i] == id;
    return incoming ? "joining" : "leaving";
}

static void refresh_status(struct node *n)
{
    struct node_status st = {0};
    struct raft *r = n->raft;
    const struct raft_conf *conf = raft_conf(r);
    st.id = n->cfg.id;
    st.cluster_id = n->cfg.cluster_id;
    st.term = raft_term(r);
    st.leader = raft_leader(r);
    st.commit = raft_commit_index(r);
    st.applied = n->applied;
    st.serializable = n->cfg.serializable;
    st.role = raft_conf_is_learner(conf, n->cfg.id) ? "learner" : role_name(raft_role(r));
    uint64_t now = net_now_ms();
    const struct raft_conf *committed = raft_conf_committed(r);
    st.config = raft_conf_changing(r) ? "changing" : "settled";
    size_t k = 0;
    uint64_t ids[6 * RAFT_CONF_MAX];
    size_t nids = node_conf_ids(conf, ids);
    nids += node_conf_ids(committed, ids + nids);
    for (size_t i = 0; i < nids && k < NODE_MAX_MEMBERS; i++) {
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= st.members[j].id == ids[i];
        if (dup)
            continue;
        struct node_member_status *m = &st.members[k++];
        m->id = ids[i];
        m->role = node_member_role(conf, committed, ids[i], st.leader);
        /* the address: the peer's (kept from the replicated directory, so
         * members that joined later have one too), else the start-up list */
        struct node_peer *p = node_peer_find(n, ids[i]);
        if (p && p->name[0])
            snprintf(m->addr, sizeof(m->addr), "%s", p->name);
        for (size_t j = 0; j < n->cfg.n_members && !m->addr[0]; j++)
            if (n->cfg.members[j].id == ids[i])
                snprintf(m->addr, sizeof(m->addr), "%s", n->cfg.members[j].addr);
        if (ids[i] == n->cfg.id) {
            snprintf(m->build, sizeof(m->build), "%s", RAFTFS_VERSION);
            m->command_version = STORE_CMD_VERSION;
        } else if (p) {
            snprintf(m->build, sizeof(m->build), "%s", p->build);
            m->command_version = p->cmd_version;
        }
        if (raft_role(r) == RAFT_LEADER)
            raft_member_match(r, ids[i], &m->match);
        m->last_contact_s = ids[i] == n->cfg.id     ? 0
                            : p && p->last_heard_ms ? (double)(now - p->last_heard_ms) / 1000.0
                                                    : -1;
    }
    st.n_members = k;
    /* Contact with a leader, kept across its loss: how far behind local
     * reads may be. */
    if (st.leader == n->cfg.id) {
        n->leader_heard_ms = now;
    } else if (st.leader) {
        struct node_peer *lp = node_peer_find(n, st.leader);
        if (lp && lp->last_heard_ms > n->leader_heard_ms)
            n->leader_heard_ms = lp->last_heard_ms;
    }
    st.leader_contact_s = n->leader_heard_ms ? (double)(now - n->leader_heard_ms) / 1000.0 : -1;
    bool campaign = raft_role(r) == RAFT_CANDIDATE && n->role_seen != RAFT_CANDIDATE;
    n->role_seen = raft_role(r);
    node_log_set_term(n->cfg.id, st.term);
    pthread_mutex_lock(&n->mu);
    st.revision = n->status.revision;
    n->status = st;
    if (campaign)
        n->metrics.elections++;
    if (st.leader && st.leader != n->leader_seen)
        n->metrics.leader_changes++;
    pthread_mutex_unlock(&n->mu);
    if (st.leader != n->leader_seen) {
        n->leader_seen = st.leader;
        if (st.leader)
            node_log(NODE_LOG_INFO, "member %llu is the leader of term %llu%s",
                     (unsigned long long)st.leader, (unsigned long long)st.term,
                     st.leader == n->cfg.id ? " (this member)" : "");
        else
            node_log(NODE_LOG_INFO, "no leader known (term %llu)", (unsigned long long)st.term);
    }
}

/* Snapshot and compact when the log has grown enough since the last one,
 * or early when room is short: compaction is what gives the log's space
 * back (at most once a second then). */
static void maybe_snapshot(struct node *n)
{
    /* A ready held at its apply stage (no room to apply) is fine: the
     * snapshot is of what is applied, and compacting the log is what may
     * make room for the rest. */
    if ((n->rd_held && n->rd_stage != 2) || n->applied <= n->snap_index)
        return;
    bool due = n->applied >= n->snap_index + n->cfg.snapshot_entries;
    uint64_t now = net_now_ms();
    bool short_of_room = (n->space.free_bytes < 4 * n->rcfg.max_msg_bytes || n->space_refused) &&
                         now >= n->next_low_snap_ms;
    if (!due && !short_of_room)
        return;
    /* The image is of what is committed, and n->applied must say so. */
    commit_deferred(n);
    if (store_apply_deferred(n->store) || n->reapply_to > n->applied)
        return;
    if (short_of_room) {
        n->next_low_snap_ms = now + 1000;
        n->space_refused = false;
    }
    pthread_mutex_lock(&n->mu);
    int failed = n->failed;
    pthread_mutex_unlock(&n->mu);
    if (failed)
        return;
    int rc = node_snap_take(n);
    struct store_space room;
    if (!rc && !store_space(n->store, &room))
        n->space = room;
    if (rc == EIO)
        node_fail(n, EIO, "taking a snapshot");
    else if (rc)
        node_log(NODE_LOG_WARN, "cannot take a snapshot now: %s", strerror(rc));
}

void node_raft_turn(struct net_loop *l, void *ctx)
{
    struct node *n = ctx;
    (void)l;
    take_inbox(n);
    run_ready(n);
    if (store_apply_deferred(n->store) && (deferred_due(n) || reads_wait(n))) {
        node_peers_flush(n); /* what this turn queued leaves before the fsync */
        commit_deferred(n);
    } else
        after_commit(n, 0); /* a read may have committed them (store_begin) */
    maybe_snapshot(n);
    sweep_pending(n, false);
    refresh_status(n);
    node_watch_pump(n);
}

/* etcd's initial election tick advance: a member that starts and reaches
 * a majority of the voters (itself included) without hearing of a leader
 * moves its election timer on to two ticks short of the shortest timeout,
 * once. A new cluster then elects its leader about as soon as a majority
 * is up, not an election timeout (0.5-1 s) after its first member started.
 * A member restarting into a live cluster loses nothing: the leader's
 * heartbeat comes first, or its pre-vote is refused by members that hear
 * from a leader (check-quorum). */
void node_raft_majority_reached(struct node *n)
{
    if (n->election_advanced)
        return;
    if (raft_leader(n->raft)) {
        n->election_advanced = true; /* heard of one: nothing to speed up */
        return;
    }
    const struct raft_conf *conf = raft_conf(n->raft);
    if (!n->rcfg.pre_vote || conf->n_voters_old || !raft_conf_is_voter(conf, n->cfg.id))
        return;
    uint32_t reached = 1;
    for (size_t i = 0; i < n->n_peers; i++)
        if (n->peers[i].id && n->peers[i].ready && raft_conf_is_voter(conf, n->peers[i].id))
            reached++;
    if (reached * 2 <= conf->n_voters)
        return;
    n->election_advanced = true;
    if (n->cfg.election_ticks > 2 && raft_advance_election(n->raft, n->cfg.election_ticks - 2))
        node_log(NODE_LOG_DEBUG,
                 "%u of %u voters reached and no leader known: election timer moved on", reached,
                 conf->n_voters);
}

void node_raft_tick(struct net_loop *l, void *ctx)
{
    struct node *n = ctx;
    (void)l;
    pthread_mutex_lock(&n->mu);
    int failed = n->failed;
    pthread_mutex_unlock(&n->mu);
    if (failed) {
        sweep_pending(n, false);
        return;
    }
    pthread_mutex_lock(&n->mu);
    int stalled = n->stalled;
    pthread_mutex_unlock(&n->mu);
    if (stalled && !n->rd_held) {
        /* Out of space earlier: is there room again? Rewrite the hard
         * state, the smallest write there is. */
        struct store_hard_state hs;
        if (!store_log_hard_state(n->store, &hs) &&
            !store_log_persist(n->store, &hs, NULL, 0, true)) {
            pthread_mutex_lock(&n->mu);
            n->stalled = 0;
            pthread_mutex_unlock(&n->mu);
            node_log(NODE_LOG_INFO, "space is back: accepting writes again");
        }
    }
    struct store_space room;
    if (!store_space(n->store, &room))
        n->space = room;
    int rc = raft_tick(n->raft);
    if (rc)
        node_fail(n, EIO, raft_strerror(rc));
    if (n->peers_resync) {
        n->peers_resync = false;
        node_members_sync(n);
    }
    node_peers_tick(n);
    if (n->removed) {
        fail_removed(n);
        return;
    }
    node_members_tick(n);
    node_leases_tick(n);
    if (n->member_ops)
        node_member_settle(n);
    node_watch_pump(n); /* a slow reader's queue may have drained */
    sweep_pending(n, true);
    /* the turn hook runs the ready loop */
}

void node_raft_step(struct node *n, const struct raft_message *m)
{
    pthread_mutex_lock(&n->mu);
    int failed = n->failed;
    pthread_mutex_unlock(&n->mu);
    if (failed || n->rd_held)
        return; /* a held ready must finish first; raft will resend */
    int rc = raft_step(n->raft, m);
    if (rc)
        node_fail(n, EIO, raft_strerror(rc));
}

void node_raft_forwarded(struct node *n, const void *data, size_t len)
{
    if (raft_role(n->raft) != RAFT_LEADER || n->rd_held)
        return; /* the follower retries, to the leader it learns next */
    /* The follower checked its own room; the leader must have room too,
     * or the write would stall it. There is no answer to a forward: the
     * follower retries until its deadline (ETIMEDOUT). */
    if (!take_room(n, len)) {
        uint64_t now = net_now_ms();
        if (now >= n->next_forward_refusal_log_ms) {
            node_log(NODE_LOG_WARN, "a forwarded write of %zu bytes refused: no room here", len);
            n->next_forward_refusal_log_ms = now + 10000;
        }
        return;
    }
    raft_propose(n->raft, data, len, 0, NULL, NULL);
}
