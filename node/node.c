/* node.c - a single-member replica on an event loop: proposals from any
 * thread are queued, and at the end of each loop turn everything queued is
 * applied in ONE fsync'ed store transaction (group commit).
 *
 * Design notes
 * 1. One loop thread (net_loop) owns the store's write side. Other threads
 *    only append to the inbox (a mutex-protected list) and wake the loop.
 *    The turn hook takes the whole inbox, gives the commands consecutive
 *    indexes after the applied index, applies them together, then calls
 *    each request's completion on the loop thread.
 * 2. Indexes: next_index is the store's applied index + 1 at start and
 *    advances only when a batch commits; a failed batch is not applied at
 *    all, so its indexes are reused by the next one.
 * 3. Fail closed: an EIO from the store (a failed write or fsync) stops the
 *    node from accepting anything: after a failed fsync the page cache may
 *    no longer match the disk, and LMDB refuses further writes. ENOSPC fails
 *    only the batch: space may come back.
 * 4. The client protocol server (node_client.c) lives on the same loop and
 *    submits its writes through the same inbox.
 */
#include "node_internal.h"

#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

int node_open(struct node **out, const struct node_config *cfg, char *err, size_t err_len)
{
    struct node *n = calloc(1, sizeof(*n));
    if (!n)
        return ENOMEM;
    int rc = store_open(&n->store, cfg->data_dir, &cfg->store, err, err_len);
    if (rc) {
        free(n);
        return rc;
    }
    n->max_batch = cfg->max_batch ? cfg->max_batch : NODE_DEFAULT_MAX_BATCH;
    pthread_mutex_init(&n->mu, NULL);
    if ((rc = net_loop_new(&n->loop))) {
        snprintf(err, err_len, "cannot create the event loop: %s", strerror(rc));
        node_close(n);
        return rc;
    }
    *out = n;
    return 0;
}

struct store *node_store(struct node *n)
{
    return n->store;
}

struct net_loop *node_loop(struct node *n)
{
    return n->loop;
}

void node_set_observer(struct node *n, const struct store_observer *obs)
{
    store_set_observer(n->store, obs);
}

static void complete(struct node *n, struct node_req *r, int rc, const struct store_result *res)
{
    if (rc) {
        pthread_mutex_lock(&n->mu);
        n->stats.failed++;
        pthread_mutex_unlock(&n->mu);
    }
    r->done(r->ctx, rc, res);
    free(r->data);
    free(r);
}

/* Takes the inbox. Loop thread. */
static struct node_req *take_inbox(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    struct node_req *head = n->inbox;
    n->inbox = n->inbox_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    return head;
}

/* Applies everything queued, in batches of max_batch. Loop thread. */
static void on_turn(struct net_loop *l, void *ctx)
{
    struct node *n = ctx;
    (void)l;
    struct node_req *r = take_inbox(n);
    while (r) {
        struct node_req *batch[NODE_DEFAULT_MAX_BATCH * 4];
        size_t max = n->max_batch < sizeof(batch) / sizeof(batch[0])
                         ? n->max_batch
                         : sizeof(batch) / sizeof(batch[0]);
        size_t count = 0;
        while (r && count < max) {
            batch[count++] = r;
            r = r->next;
        }
        pthread_mutex_lock(&n->mu);
        int failed = n->failed;
        pthread_mutex_unlock(&n->mu);
        if (failed) {
            for (size_t i = 0; i < count; i++)
                complete(n, batch[i], failed, NULL);
            continue;
        }
        for (size_t i = 0; i < count; i++)
            n->entries[i] = (struct store_entry){.index = n->next_index + i,
                                                 .data = batch[i]->data,
                                                 .len = batch[i]->len,
                                                 .origin = batch[i]->origin};
        int rc = store_apply_batch(n->store, n->entries, count, n->results);
        if (!rc)
            n->next_index += count;
        else
            node_log(NODE_LOG_ERROR, "applying %zu command(s) failed: %s", count, strerror(rc));
        pthread_mutex_lock(&n->mu);
        if (!rc) {
            n->stats.batches++;
            n->stats.proposals += count;
        } else if (rc == EIO && !n->failed) {
            n->failed = EIO;
            node_log(NODE_LOG_ERROR, "disk error: refusing all writes from now on (fail "
                                     "closed); restart the member once the disk is healthy");
        }
        pthread_mutex_unlock(&n->mu);
        for (size_t i = 0; i < count; i++)
            complete(n, batch[i], rc, rc ? NULL : &n->results[i]);
    }
}

static void on_wake(struct net_loop *l, void *ctx)
{
    /* The turn hook does the work; waking only makes sure a turn happens. */
    (void)l, (void)ctx;
}

static void *node_main(void *arg)
{
    struct node *n = arg;
    int rc = net_loop_run(n->loop);
    if (rc)
        node_log(NODE_LOG_ERROR, "event loop failed: %s", strerror(rc));
    /* Whatever is still queued fails: the node is stopping. */
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    pthread_mutex_unlock(&n->mu);
    for (struct node_req *r = take_inbox(n), *next; r; r = next) {
        next = r->next;
        complete(n, r, ESHUTDOWN, NULL);
    }
    return NULL;
}

int node_start(struct node *n)
{
    struct store_stats st;
    int rc = store_get_stats(n->store, &st);
    if (rc)
        return rc;
    n->next_index = st.applied_index + 1;
    n->entries = calloc(n->max_batch, sizeof(*n->entries));
    n->results = calloc(n->max_batch, sizeof(*n->results));
    if (!n->entries || !n->results)
        return ENOMEM;
    net_loop_on_turn(n->loop, on_turn, n);
    net_loop_on_wake(n->loop, on_wake, n);
    if ((rc = pthread_create(&n->thread, NULL, node_main, n)))
        return rc;
    pthread_mutex_lock(&n->mu);
    n->started = true;
    pthread_mutex_unlock(&n->mu);
    return 0;
}

void node_stop(struct node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    bool started = n->started;
    n->started = false;
    n->stopping = true;
    pthread_mutex_unlock(&n->mu);
    if (!started)
        return;
    net_loop_stop(n->loop);
    pthread_join(n->thread, NULL);
}

void node_close(struct node *n)
{
    if (!n)
        return;
    node_stop(n);
    node_client_stop(n);
    net_loop_free(n->loop);
    store_close(n->store);
    pthread_mutex_destroy(&n->mu);
    free(n->entries);
    free(n->results);
    free(n);
}

int node_submit(struct node *n, enum node_origin origin, void *data, size_t len, node_done_fn done,
                void *ctx)
{
    struct node_req *r = calloc(1, sizeof(*r));
    if (!r) {
        free(data);
        return ENOMEM;
    }
    r->data = data;
    r->len = len;
    r->origin = origin;
    r->done = done;
    r->ctx = ctx;
    pthread_mutex_lock(&n->mu);
    if (n->stopping || !n->started) {
        pthread_mutex_unlock(&n->mu);
        free(data);
        free(r);
        return ESHUTDOWN;
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

struct sync_wait {
    sem_t done;
    int rc;
    struct store_result *res;
};

static void sync_done(void *ctx, int rc, const struct store_result *res)
{
    struct sync_wait *w = ctx;
    w->rc = rc;
    if (!rc)
        *w->res = *res;
    sem_post(&w->done);
}

int node_propose(struct node *n, const struct store_cmd *cmd, struct store_result *res)
{
    void *data;
    size_t len;
    int rc = store_cmd_encode(cmd, &data, &len);
    if (rc)
        return rc;
    struct sync_wait w = {.res = res};
    sem_init(&w.done, 0, 0);
    rc = node_submit(n, NODE_ORIGIN_MOUNT, data, len, sync_done, &w);
    if (!rc) {
        while (sem_wait(&w.done) && errno == EINTR)
            ;
        rc = w.rc;
    }
    sem_destroy(&w.done);
    return rc;
}

int node_read_barrier(struct node *n)
{
    /* One member: acknowledgements follow apply, so every committed write
     * is already visible to a read that starts now. */
    pthread_mutex_lock(&n->mu);
    int rc = n->failed ? n->failed : (n->stopping || !n->started) ? ESHUTDOWN : 0;
    pthread_mutex_unlock(&n->mu);
    return rc;
}

void node_get_stats(struct node *n, struct node_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    pthread_mutex_unlock(&n->mu);
}
