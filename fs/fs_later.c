/* fs_later.c - FUSE requests that finish after a read barrier, on a thread
 * of their own instead of the FUSE thread that received them.
 *
 * A lookup on a linearizable mount waits for a read barrier (a heartbeat
 * round through the leader). Waited for on the FUSE thread, every lookup
 * costs that thread a sleep and the node's loop a wake-up of it; on this
 * machine a wake-up is most of what a lookup costs (docs/profile.md). So
 * the FUSE thread hands the request to the node with a continuation and
 * goes back to /dev/fuse; the node's loop queues each finished barrier
 * here (a lock and, only if this thread sleeps, one wake-up for all the
 * barriers of a round), and this thread runs the continuations: the store
 * read and the reply. Replies may come from any thread (libfuse).
 *
 * Order at the end: fs_later_stop runs after node_stop, which has finished
 * every barrier (their continuations queued here with ESHUTDOWN), and
 * before the session is destroyed, so that every request is answered. */
#include <stdlib.h>

#include "fs_internal.h"

void fs_later_queue(struct fs_later *l, int rc)
{
    struct fs *fs = l->fs;
    l->rc = rc;
    l->next = NULL;
    pthread_mutex_lock(&fs->later_mu);
    if (fs->later_tail)
        fs->later_tail->next = l;
    else
        fs->later_head = l;
    fs->later_tail = l;
    bool wake = fs->later_sleeping;
    fs->later_sleeping = false;
    pthread_mutex_unlock(&fs->later_mu);
    if (wake)
        pthread_cond_signal(&fs->later_cv);
}

static void later_done(void *ctx, int rc, const struct store_result *res)
{
    (void)res;
    fs_later_queue(ctx, rc);
}

static void *later_main(void *arg)
{
    struct fs *fs = arg;
    pthread_setname_np(pthread_self(), "raftfs-later");
    pthread_mutex_lock(&fs->later_mu);
    for (;;) {
        struct fs_later *l = fs->later_head;
        if (!l) {
            if (fs->later_stop)
                break;
            fs->later_sleeping = true;
            pthread_cond_wait(&fs->later_cv, &fs->later_mu);
            continue;
        }
        fs->later_head = fs->later_tail = NULL;
        pthread_mutex_unlock(&fs->later_mu);
        while (l) {
            struct fs_later *next = l->next;
            l->run(l, fs_node_errno(l->rc)); /* frees l */
            l = next;
        }
        pthread_mutex_lock(&fs->later_mu);
    }
    pthread_mutex_unlock(&fs->later_mu);
    return NULL;
}

int fs_later_start(struct fs *fs)
{
    pthread_mutex_init(&fs->later_mu, NULL);
    pthread_cond_init(&fs->later_cv, NULL);
    int rc = pthread_create(&fs->later_thread, NULL, later_main, fs);
    if (rc) {
        pthread_cond_destroy(&fs->later_cv);
        pthread_mutex_destroy(&fs->later_mu);
        return rc;
    }
    fs->later_running = true;
    return 0;
}

void fs_later_stop(struct fs *fs)
{
    if (!fs->later_running)
        return;
    pthread_mutex_lock(&fs->later_mu);
    fs->later_stop = true;
    pthread_mutex_unlock(&fs->later_mu);
    pthread_cond_signal(&fs->later_cv);
    pthread_join(fs->later_thread, NULL); /* it drains the queue first */
    fs->later_running = false;
    pthread_cond_destroy(&fs->later_cv);
    pthread_mutex_destroy(&fs->later_mu);
}

void fs_later_after_barrier(struct fs *fs, struct fs_later *l)
{
    l->fs = fs;
    if (fs->serializable || !fs->later_running) {
        /* Serializable: the barrier returns at once (unless the node
         * refuses), nothing to wait for. No thread: waited for here. */
        l->run(l, fs_node_errno(node_read_barrier(fs->node)));
        return;
    }
    int rc = node_submit_barrier(fs->node, later_done, l);
    if (rc)
        l->run(l, fs_node_errno(rc)); /* not submitted: done never runs */
}
