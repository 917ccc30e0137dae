/* node.c - a single-member replica: a proposal queue drained by one loop
 * thread that applies each batch in one fsync'ed store transaction.
 *
 * Design notes
 * 1. A proposal is encoded by its caller's thread, queued, and the caller
 *    waits on its own semaphore. The loop takes everything queued (up to
 *    max_batch), gives the commands consecutive log indexes after the
 *    applied index, and applies them in ONE transaction: one fsync for the
 *    whole batch (group commit). Each waiter is then woken with its result.
 * 2. Indexes: next_index is applied_index + 1 of the store at start and
 *    advances only when a batch commits; a failed batch is not applied at
 *    all, so its indexes are reused by the next one.
 * 3. Fail closed: an EIO from the store (a failed write or fsync) stops the
 *    node from accepting anything: after a failed fsync the page cache may
 *    no longer match the disk, and LMDB's environment refuses further
 *    writes. ENOSPC fails only the batch: space may come back.
 */
#include "node.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct node_req {
    void *data; /* encoded command, owned by the proposer */
    size_t len;
    int rc;
    struct store_result *res;
    sem_t done;
    struct node_req *next;
};

struct node {
    struct store *store;
    size_t max_batch;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* the queue got work, or stopping */
    struct node_req *head, *tail;
    bool stopping;
    int failed; /* 0, or the errno the node failed closed with */
    struct node_stats stats;
};

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
    pthread_cond_init(&n->cv, NULL);
    *out = n;
    return 0;
}

struct store *node_store(struct node *n)
{
    return n->store;
}

void node_set_observer(struct node *n, const struct store_observer *obs)
{
    store_set_observer(n->store, obs);
}

/* Fails every queued request with rc. Called with mu held. */
static void fail_queue(struct node *n, int rc)
{
    struct node_req *r = n->head;
    n->head = n->tail = NULL;
    while (r) {
        struct node_req *next = r->next;
        r->rc = rc;
        n->stats.failed++;
        sem_post(&r->done);
        r = next;
    }
}

static void *node_loop(void *arg)
{
    struct node *n = arg;
    struct store_entry *entries = calloc(n->max_batch, sizeof(*entries));
    struct store_result *results = calloc(n->max_batch, sizeof(*results));
    struct node_req **batch = calloc(n->max_batch, sizeof(*batch));
    struct store_stats st;
    int rc = entries && results && batch ? store_get_stats(n->store, &st) : ENOMEM;
    uint64_t next_index = rc ? 0 : st.applied_index + 1;

    pthread_mutex_lock(&n->mu);
    if (rc) {
        node_log(NODE_LOG_ERROR, "node cannot start its loop: %s", strerror(rc));
        n->failed = rc == ENOMEM ? ENOMEM : EIO;
    }
    for (;;) {
        while (!n->head && !n->stopping)
            pthread_cond_wait(&n->cv, &n->mu);
        if (n->stopping || n->failed) {
            fail_queue(n, n->failed ? n->failed : ESHUTDOWN);
            if (n->stopping)
                break;
            continue;
        }
        size_t count = 0;
        while (n->head && count < n->max_batch) {
            batch[count++] = n->head;
            n->head = n->head->next;
        }
        if (!n->head)
            n->tail = NULL;
        pthread_mutex_unlock(&n->mu);

        for (size_t i = 0; i < count; i++)
            entries[i] = (struct store_entry){
                .index = next_index + i, .data = batch[i]->data, .len = batch[i]->len};
        rc = store_apply_batch(n->store, entries, count, results);
        if (!rc)
            next_index += count;
        else
            node_log(NODE_LOG_ERROR, "applying %zu command(s) failed: %s", count, strerror(rc));

        pthread_mutex_lock(&n->mu);
        if (rc == EIO && !n->failed) {
            n->failed = EIO;
            node_log(NODE_LOG_ERROR, "disk error: refusing all writes from now on (fail "
                                     "closed); restart the member once the disk is healthy");
        }
        if (!rc) {
            n->stats.batches++;
            n->stats.proposals += count;
        } else {
            n->stats.failed += count;
        }
        for (size_t i = 0; i < count; i++) {
            batch[i]->rc = rc;
            if (!rc)
                *batch[i]->res = results[i];
            sem_post(&batch[i]->done);
        }
    }
    pthread_mutex_unlock(&n->mu);
    free(entries);
    free(results);
    free(batch);
    return NULL;
}

int node_start(struct node *n)
{
    int rc = pthread_create(&n->thread, NULL, node_loop, n);
    if (rc)
        return rc;
    n->started = true;
    return 0;
}

void node_stop(struct node *n)
{
    if (!n || !n->started)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    n->started = false;
}

void node_close(struct node *n)
{
    if (!n)
        return;
    node_stop(n);
    store_close(n->store);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

int node_propose(struct node *n, const struct store_cmd *cmd, struct store_result *res)
{
    struct node_req r = {.res = res};
    int rc = store_cmd_encode(cmd, &r.data, &r.len);
    if (rc)
        return rc;
    sem_init(&r.done, 0, 0);
    pthread_mutex_lock(&n->mu);
    if (n->stopping || n->failed || !n->started) {
        rc = n->failed ? n->failed : ESHUTDOWN;
        pthread_mutex_unlock(&n->mu);
        goto out;
    }
    if (n->tail)
        n->tail->next = &r;
    else
        n->head = &r;
    n->tail = &r;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);

    while (sem_wait(&r.done) && errno == EINTR)
        ;
    rc = r.rc;
out:
    sem_destroy(&r.done);
    free(r.data);
    return rc;
}

int node_read_barrier(struct node *n)
{
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
