/* node.c - the replica's life cycle and its doors: requests from any thread
 * go into the inbox and wake the loop; the loop (node_raft.c) does the
 * rest and calls each request's completion on its own thread.
 *
 * Design notes
 * 1. One loop thread (net_loop) owns Raft, the peers, the client port and
 *    the store's writes. Other threads only append to the inbox (under mu)
 *    and wake the loop.
 * 2. A failure of the disk (EIO from a log or apply transaction) fails the
 *    node closed: after a failed fsync the page cache may no longer match
 *    the disk, so nothing more is acknowledged until a restart.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "net_tls.h"
#include "node_internal.h"

static uint64_t random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    }
    return v ? v : 1;
}

/* A data directory's incarnation: random, so that a new data directory
 * given an old member id is told from the old one (and never 0, which
 * means "not known"). From getrandom only: a weak fallback could repeat. */
static int incarnation_new(uint64_t *out)
{
    uint64_t v = 0;
    for (int tries = 0; !v && tries < 16; tries++) {
        ssize_t got = getrandom(&v, sizeof(v), 0);
        if (got < 0 && errno != EINTR)
            return errno;
        if (got != (ssize_t)sizeof(v))
            v = 0;
    }
    if (!v)
        return EIO;
    *out = v;
    return 0;
}

/* TLS for the port and the peers when its files are given. Otherwise
 * plaintext, which only loopback addresses get unless allowed: anyone who
 * can reach a port in plaintext can read the tree and speak as a member. */
static int tls_open(struct node *n, const char *listen, char *err, size_t err_len)
{
    const struct node_config *cfg = &n->cfg;
    if (cfg->tls_cert_file || cfg->tls_key_file || cfg->tls_ca_file) {
        if (!cfg->tls_cert_file || !cfg->tls_key_file || !cfg->tls_ca_file) {
            snprintf(err, err_len,
                     "TLS needs this member's certificate, its key and the CA that signs the "
                     "members' certificates (--cert-file, --key-file, --trusted-ca-file): all "
                     "three");
            return EINVAL;
        }
        struct net_tls_config tc = {.cert_file = cfg->tls_cert_file,
                                    .key_file = cfg->tls_key_file,
                                    .ca_file = cfg->tls_ca_file,
                                    .require_client_cert = cfg->tls_client_cert_auth};
        return net_tls_new(&tc, &n->tls, err, err_len);
    }
    if (cfg->tls_client_cert_auth) {
        snprintf(err, err_len,
                 "--client-cert-auth needs TLS (--cert-file, --key-file, "
                 "--trusted-ca-file)");
        return EINVAL;
    }
    if (cfg->allow_plaintext)
        return 0;
    const char *what = NULL;
    char addr[160];
    struct net_addr a;
    char why[256];
    if (listen && net_addr_parse(listen, &a, why, sizeof(why)) == 0 && !net_addr_is_loopback(&a)) {
        what = "serve";
        snprintf(addr, sizeof(addr), "%s", listen);
    }
    for (size_t i = 0; i < n->n_peers && !what; i++) {
        if (n->peers[i].id && !net_addr_is_loopback(&n->peers[i].addr)) {
            what = "talk to a peer at";
            snprintf(addr, sizeof(addr), "%s", n->peers[i].name);
        }
    }
    if (!what)
        return 0;
    snprintf(err, err_len,
             "refusing to %s %s in plaintext: it is not a loopback address, and anyone who can "
             "reach it could read the tree and speak as a member. Give --cert-file, --key-file "
             "and --trusted-ca-file for TLS (docs/operations.md, \"TLS\"), or --allow-plaintext "
             "to accept that",
             what, addr);
    return EPERM;
}

int node_open(struct node **out, const struct node_config *cfg_in, char *err, size_t err_len)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return ENOMEM;
    n->cfg = *cfg_in;
    struct node_config *cfg = &n->cfg;
    if (!cfg->id)
        cfg->id = 1;
    if (!cfg->tick_ms)
        cfg->tick_ms = NODE_DEFAULT_TICK_MS;
    if (!cfg->election_ticks)
        cfg->election_ticks = NODE_DEFAULT_ELECTION_TICKS;
    if (!cfg->timeout_ms)
        cfg->timeout_ms = NODE_DEFAULT_TIMEOUT_MS;
    if (!cfg->max_batch)
        cfg->max_batch = NODE_DEFAULT_MAX_BATCH;
    if (!cfg->snapshot_entries)
        cfg->snapshot_entries = NODE_DEFAULT_SNAP_ENTRIES;
    n->tick_timer = -1;
    n->mount_client_id = random64() & ~((1ULL << NODE_LANE_BITS) - 1);
    n->member_client_id = random64();
    n->lease_client_id = random64() | 1;
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->vis_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->vis_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct store_config sc = cfg->store;
    sc.unsynced_apply = !cfg->sync_tree;
    int rc = store_open(&n->store, cfg->data_dir, &sc, err, err_len);
    if (rc) {
        pthread_mutex_destroy(&n->mu);
        pthread_mutex_destroy(&n->vis_mu);
        pthread_cond_destroy(&n->vis_cv);
        free(n);
        return rc;
    }
    uint64_t rebuilt_from;
    if (store_rebuilt(n->store, &rebuilt_from))
        node_log(NODE_LOG_WARN,
                 "%s: the store was open when this machine last stopped (another boot): not "
                 "trusting it, rebuilt it from the snapshot image at index %llu; the log's "
                 "entries after that are applied again (the old files are in %s/store.untrusted)",
                 cfg->data_dir, (unsigned long long)rebuilt_from, cfg->data_dir);
    /* A data directory serves one member of one cluster, for ever. */
    uint64_t cluster, member, incarnation;
    if ((rc = store_identity_get(n->store, &cluster, &member, &incarnation))) {
        snprintf(err, err_len, "%s: cannot read its identity: %s", cfg->data_dir, strerror(rc));
        goto fail;
    }
    if (!cluster && !member) {
        cluster = cfg->cluster_id;
        member = cfg->id;
        incarnation = 0; /* drawn below: a new data directory */
    } else if (cfg->cluster_id_loose && member == cfg->id) {
        cfg->cluster_id = cluster; /* restarted without --peers: as recorded */
    } else if (cluster != cfg->cluster_id || member != cfg->id) {
        snprintf(err, err_len,
                 "data directory %s belongs to member %llu of cluster %016llx, not member %llu of "
                 "cluster %016llx: refusing to start (give each member its own directory)",
                 cfg->data_dir, (unsigned long long)member, (unsigned long long)cluster,
                 (unsigned long long)cfg->id, (unsigned long long)cfg->cluster_id);
        rc = EINVAL;
        goto fail;
    }
    /* Its incarnation, drawn once: when the identity is first recorded, or
     * at the first start of a data directory made before incarnations. */
    if (!incarnation) {
        if ((rc = incarnation_new(&incarnation))) {
            snprintf(err, err_len, "cannot draw a random incarnation: %s", strerror(rc));
            goto fail;
        }
        if ((rc = store_identity_set(n->store, cluster, member, incarnation))) {
            snprintf(err, err_len, "%s: cannot record its identity: %s", cfg->data_dir,
                     strerror(rc));
            goto fail;
        }
    }
    n->incarnation = incarnation;
    if ((rc = net_loop_new(&n->loop))) {
        snprintf(err, err_len, "cannot create the event loop: %s", strerror(rc));
        goto fail;
    }
    if ((rc = node_raft_init(n, err, err_len)))
        goto fail;
    if ((rc = node_peers_init(n, err, err_len)))
        goto fail;
    const char *listen = cfg->listen;
    char own[256];
    if (!listen) {
        for (size_t i = 0; i < cfg->n_members; i++)
            if (cfg->members[i].id == cfg->id)
                listen = cfg->members[i].addr;
    }
    /* A member that joined later is in the replicated directory: restarted
     * without --listen, it listens where the others reach it. */
    if (!listen)
        listen = node_member_addr(n, cfg->id, own, sizeof(own));
    if ((rc = tls_open(n, listen, err, err_len)))
        goto fail;
    if (listen && (rc = node_server_open(n, listen, err, err_len)))
        goto fail;
    node_members_sync(n); /* members that joined later, from the directory */
    *out = n;
    return 0;
fail:
    node_close(n);
    return rc;
}

struct store *node_store(struct node *n)
{
    return n->store;
}

uint64_t node_incarnation(const struct node *n)
{
    return n->incarnation;
}

bool node_is_own_client(const struct node *n, uint64_t client_id)
{
    return client_id && (client_id & ~((1ULL << NODE_LANE_BITS) - 1)) == n->mount_client_id;
}

void node_set_observer(struct node *n, const struct store_observer *obs)
{
    store_set_observer(n->store, obs);
}

static void on_wake(struct net_loop *l, void *ctx)
{
    /* The turn hook takes the inbox; waking only makes sure a turn runs. */
    (void)l, (void)ctx;
}

static void *node_main(void *arg)
{
    struct node *n = arg;
    pthread_setname_np(pthread_self(), "raftfs-node"); /* for top -H, perf */
    int rc = net_loop_run(n->loop);
    if (rc)
        node_log(NODE_LOG_ERROR, "event loop failed: %s", strerror(rc));
    return NULL;
}

int node_start(struct node *n)
{
    /* Alone in its configuration, a member need not wait an election
     * timeout to find out nobody else is there: let the timer run out now
     * (ticks are the only clock raft has; no other thread runs yet). */
    const struct raft_conf *conf = raft_conf(n->raft);
    if (conf->n_voters == 1 && conf->voters[0] == n->cfg.id && !conf->n_voters_old)
        for (uint32_t i = 0; i < 2 * n->cfg.election_ticks + 1; i++)
            raft_tick(n->raft);
    int rc = net_loop_every(n->loop, n->cfg.tick_ms, node_raft_tick, n, &n->tick_timer);
    if (rc)
        return rc;
    net_loop_on_turn(n->loop, node_raft_turn, n);
    net_loop_on_idle(n->loop, node_raft_idle, n);
    net_loop_on_wake(n->loop, on_wake, n);
    if ((rc = pthread_create(&n->thread, NULL, node_main, n)))
        return rc;
    pthread_mutex_lock(&n->mu);
    n->started = true;
    pthread_mutex_unlock(&n->mu);
    net_loop_wake(n->loop); /* a first turn: campaign at once if alone */
    return 0;
}

/* Completes and frees a request. Loop thread (or a stopped node). */
void node_req_finish(struct node *n, struct node_req *r, int rc, const struct store_result *res)
{
    pthread_mutex_lock(&n->mu);
    if (rc)
        n->stats.failed++;
    else if (r->start_us)
        node_hist_observe(r->kind == NODE_REQ_PROPOSE ? &n->metrics.proposal
                                                      : &n->metrics.read_index,
                          (double)(node_now_us() - r->start_us) / 1e6);
    pthread_mutex_unlock(&n->mu);
    r->done(r->ctx, rc, res);
    free(r->data);
    free(r);
}

void node_stop(struct node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    bool started = n->started;
    n->started = false;
    n->stopping = true;
    struct node_req *inbox = n->inbox;
    n->inbox = n->inbox_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    if (started) {
        net_loop_stop(n->loop);
        pthread_join(n->thread, NULL);
    }
    /* Whatever is still waiting fails: the node is stopping. */
    for (struct node_req *r = inbox, *next; r; r = next) {
        next = r->next;
        node_req_finish(n, r, ESHUTDOWN, NULL);
    }
    for (struct node_req *r = n->pending, *next; r; r = next) {
        next = r->next;
        node_req_finish(n, r, ESHUTDOWN, NULL);
    }
    n->pending = NULL;
    n->n_pending = 0;
}

void node_close(struct node *n)
{
    if (!n)
        return;
    node_stop(n);
    if (n->loop) {
        node_server_close(n);
        node_peers_fini(n);
        if (n->tick_timer >= 0)
            net_loop_timer_cancel(n->loop, n->tick_timer);
        net_loop_free(n->loop);
    }
    node_raft_fini(n);
    net_tls_free(n->tls); /* after every connection's session */
    store_close(n->store);
    while (n->free_lanes) {
        struct node_lane *l = n->free_lanes;
        n->free_lanes = l->next;
        free(l);
    }
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->vis_mu);
    pthread_cond_destroy(&n->vis_cv);
    free(n);
}

static int enqueue(struct node *n, struct node_req *r)
{
    uint64_t now = net_now_ms();
    r->deadline_ms = now + n->cfg.timeout_ms;
    r->start_us = node_now_us();
    r->retry_ms = 0;
    pthread_mutex_lock(&n->mu);
    if (n->stopping || !n->started) {
        pthread_mutex_unlock(&n->mu);
        free(r->data);
        free(r);
        return ESHUTDOWN;
    }
    if (n->failed) {
        int rc = n->failed;
        pthread_mutex_unlock(&n->mu);
        free(r->data);
        free(r);
        return rc;
    }
    if (n->inbox_tail)
        n->inbox_tail->next = r;
    else
        n->inbox = r;
    n->inbox_tail = r;
    pthread_mutex_unlock(&n->mu);
    net_loop_wake(n->loop);
    return 0;
}

int node_submit(struct node *n, void *data, size_t len, uint64_t client_id, uint64_t seq,
                bool early, node_done_fn done, void *ctx)
{
    if (!client_id || !seq) {
        free(data);
        return EINVAL;
    }
    struct node_req *r = node_req_propose_new(data, len, client_id, seq, done, ctx);
    if (!r)
        return ENOMEM;
    r->early = early;
    return enqueue(n, r);
}

struct node_req *node_req_propose_new(void *data, size_t len, uint64_t client_id, uint64_t seq,
                                      node_done_fn done, void *ctx)
{
    struct node_req *r = fault_calloc(1, sizeof(*r));
    if (!r) {
        free(data);
        return NULL;
    }
    r->kind = NODE_REQ_PROPOSE;
    r->data = data;
    r->len = len;
    r->client_id = client_id;
    r->seq = seq;
    r->done = done;
    r->ctx = ctx;
    return r;
}

struct node_req *node_req_barrier_new(node_done_fn done, void *ctx)
{
    struct node_req *r = fault_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = NODE_REQ_BARRIER;
    r->done = done;
    r->ctx = ctx;
    return r;
}

int node_submit_barrier(struct node *n, node_done_fn done, void *ctx)
{
    struct node_req *r = node_req_barrier_new(done, ctx);
    return r ? enqueue(n, r) : ENOMEM;
}

struct sync_wait {
    sem_t done;
    int rc;
    struct store_result *res;
};

static void sync_done(void *ctx, int rc, const struct store_result *res)
{
    struct sync_wait *w = ctx;
    w->rc = rc;
    if (!rc && w->res && res)
        *w->res = *res;
    sem_post(&w->done);
}

static int wait_for(struct sync_wait *w, int rc)
{
    if (!rc) {
        while (sem_wait(&w->done) && errno == EINTR)
            ;
        rc = w->rc;
    }
    sem_destroy(&w->done);
    return rc;
}

/* A lane no other caller uses until it is put back. */
static struct node_lane *lane_take(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    struct node_lane *l = n->free_lanes;
    if (l) {
        n->free_lanes = l->next;
    } else if (n->n_lanes + 1 < (1ULL << NODE_LANE_BITS) && (l = calloc(1, sizeof(*l)))) {
        l->client_id = n->mount_client_id | ++n->n_lanes;
    }
    pthread_mutex_unlock(&n->mu);
    return l;
}

static void lane_put(struct node *n, struct node_lane *l)
{
    pthread_mutex_lock(&n->mu);
    l->next = n->free_lanes;
    n->free_lanes = l;
    pthread_mutex_unlock(&n->mu);
}

/* A node_propose_async in flight: its lane, held until done. */
struct async_propose {
    struct node *n;
    struct node_lane *lane;
    node_done_fn done;
    void *ctx;
};

static void async_done(void *ctx, int rc, const struct store_result *res)
{
    struct async_propose *a = ctx;
    lane_put(a->n, a->lane);
    a->done(a->ctx, rc, res);
    free(a);
}

int node_propose_async(struct node *n, struct store_cmd *cmd, node_done_fn done, void *ctx)
{
    struct async_propose *a = malloc(sizeof(*a));
    if (!a)
        return ENOMEM;
    *a = (struct async_propose){.n = n, .lane = lane_take(n), .done = done, .ctx = ctx};
    if (!a->lane) {
        free(a);
        return ENOMEM;
    }
    cmd->client_id = a->lane->client_id;
    cmd->seq = ++a->lane->seq;
    void *data;
    size_t len;
    int rc = store_cmd_encode(cmd, &data, &len);
    if (!rc)
        rc = node_submit(n, data, len, cmd->client_id, cmd->seq, false, async_done, a);
    if (rc) {
        lane_put(n, a->lane);
        free(a);
    }
    return rc;
}

int node_propose(struct node *n, struct store_cmd *cmd, struct store_result *res)
{
    struct sync_wait w = {.res = res};
    sem_init(&w.done, 0, 0);
    return wait_for(&w, node_propose_async(n, cmd, sync_done, &w));
}

/* Why a local read is refused now (failed closed, stopping, not started),
 * or 0. n->mu held. */
static int local_read_refusal(const struct node *n)
{
    return n->failed ? n->failed : (n->stopping || !n->started) ? ESHUTDOWN : 0;
}

static int read_barrier(struct node *n, bool leader_local)
{
    if (n->cfg.serializable) {
        pthread_mutex_lock(&n->mu);
        int rc = local_read_refusal(n);
        pthread_mutex_unlock(&n->mu);
        return rc;
    }
    struct sync_wait w = {0};
    sem_init(&w.done, 0, 0);
    struct node_req *r = node_req_barrier_new(sync_done, &w);
    if (r)
        r->leader_local = leader_local;
    return wait_for(&w, r ? enqueue(n, r) : ENOMEM);
}

int node_read_barrier(struct node *n)
{
    return read_barrier(n, false);
}

int node_read_barrier_for_write(struct node *n)
{
    /* The leader's read point without a hand-off to the loop and back,
     * when what is applied here has reached it (node_raft.c publishes the
     * point; store_applied_visible is what a read transaction begun now
     * sees). Otherwise the loop waits for the applies (read_barrier). */
    uint64_t point = atomic_load_explicit(&n->write_point, memory_order_acquire);
    if (n->cfg.serializable || !point)
        return read_barrier(n, true);
    if (store_applied_visible(n->store) < point) {
        /* Other writers' batches are committed, not yet applied: the loop
         * is applying them. Wait for that here, a tick at most (a stalled
         * or failing member is the loop's to answer for). */
        atomic_fetch_add(&n->vis_waiters, 1);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)n->cfg.tick_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&n->vis_mu);
        while (store_applied_visible(n->store) < point &&
               pthread_cond_timedwait(&n->vis_cv, &n->vis_mu, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&n->vis_mu);
        atomic_fetch_sub(&n->vis_waiters, 1);
    }
    if (store_applied_visible(n->store) >= point) {
        pthread_mutex_lock(&n->mu);
        int rc = local_read_refusal(n);
        if (!rc) {
            n->stats.read_local++;
            n->stats.read_published++;
        }
        pthread_mutex_unlock(&n->mu);
        return rc;
    }
    return read_barrier(n, true);
}

void node_get_stats(struct node *n, struct node_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    pthread_mutex_unlock(&n->mu);
}

void node_get_status(struct node *n, struct node_status *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->status;
    pthread_mutex_unlock(&n->mu);
}

void node_fail(struct node *n, int rc, const char *what)
{
    pthread_mutex_lock(&n->mu);
    bool first = !n->failed;
    if (first)
        n->failed = rc;
    pthread_mutex_unlock(&n->mu);
    if (first && rc == ESHUTDOWN) /* removed or refused: what says what to do */
        node_log(NODE_LOG_ERROR, "%s", what);
    else if (first)
        node_log(NODE_LOG_ERROR,
                 "%s: %s: refusing everything from now on (fail closed); restart the member "
                 "once the disk is healthy",
                 what, strerror(rc));
}
