/* fs_inval.c - keeping the kernel's caches true for changes this mount did
 * not make: entries proposed by other members (through their mounts) and
 * writes that came in by the client protocol, applied here from the Raft
 * log. The store observer queues them after each commit, and one thread
 * tells the kernel to drop the affected names (inval_entry) and inodes
 * (inval_inode: pages and attributes).
 *
 * The notifier thread holds no lock any FUSE handler takes and never runs
 * inside a handler, so a notification that waits for the kernel (which may
 * wait for a handler in the same directory) cannot deadlock: the handlers
 * never wait for this thread. It also invalidates and answers for flushes
 * finished on the later thread (fs_inval_then_reply): the closing program
 * waits for that reply, no handler does. Changes made through this mount are skipped:
 * the kernel performed those operations itself. So are changes to inodes
 * the kernel does not hold, and to names in directories it does not hold
 * (fs_known.h): it has nothing of them to drop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

#define FS_INVAL_MAX_QUEUED 65536

struct fs_inval_item {
    struct fs_inval_item *next;
    enum store_change_kind kind;
    uint64_t ino, parent;
    bool inval; /* tell the kernel (else only the reply below) */
    /* A flush finished on the later thread: its reply, after the
     * invalidation (fs_inval_then_reply). */
    bool reply;
    fuse_req_t req;
    int rc;
    size_t name_len;
    char name[];
};

/* Queues it; one that may be dropped is, with the queue full (a reply is
 * never dropped). */
static void queue(struct fs *fs, struct fs_inval_item *it, bool may_drop)
{
    pthread_mutex_lock(&fs->inval_mu);
    if (may_drop && fs->inval_count >= FS_INVAL_MAX_QUEUED) {
        fs->inval_dropped++;
        fs->inval_dropped_total++;
        pthread_mutex_unlock(&fs->inval_mu);
        free(it);
        return;
    }
    if (fs->inval_tail)
        fs->inval_tail->next = it;
    else
        fs->inval_head = it;
    fs->inval_tail = it;
    fs->inval_count++;
    pthread_cond_signal(&fs->inval_cv);
    pthread_mutex_unlock(&fs->inval_mu);
}

void fs_inval_changed(void *ctx, const struct store_change *c)
{
    struct fs *fs = ctx;
    fs_events_wake(fs);
    if (node_is_own_client(fs->node, c->client_id))
        return; /* made through this mount: the kernel knows */
    if (!fs_known_changed(&fs->known, c->kind == STORE_CHANGE_NAME ? c->parent : c->ino))
        return; /* nothing of it is in the kernel's caches */
    struct fs_inval_item *it = malloc(sizeof(*it) + c->name_len + 1);
    if (!it)
        return; /* the kernel's cache stays stale until its timeout */
    it->next = NULL;
    it->inval = true;
    it->reply = false;
    it->kind = c->kind;
    it->ino = c->ino;
    it->parent = c->parent;
    it->name_len = c->name_len;
    if (c->name_len) /* an inode change has no name (and maybe no pointer) */
        memcpy(it->name, c->name, c->name_len);
    it->name[c->name_len] = 0;
    queue(fs, it, true);
}

struct fs_inval_item *fs_inval_reply_new(void)
{
    return malloc(sizeof(struct fs_inval_item) + 1);
}

void fs_inval_then_reply(struct fs *fs, struct fs_inval_item *it, uint64_t ino, bool inval,
                         fuse_req_t req, int rc)
{
    if (!fs->inval_running) { /* not reached: the notifier outlives the later thread */
        free(it);
        fuse_reply_err(req, rc);
        fs_flush_ended(fs);
        return;
    }
    *it = (struct fs_inval_item){.kind = STORE_CHANGE_INODE,
                                 .ino = ino,
                                 .inval = inval,
                                 .reply = true,
                                 .req = req,
                                 .rc = rc};
    it->name[0] = 0;
    queue(fs, it, false);
}

static void notify(struct fs *fs, const struct fs_inval_item *it)
{
    if (it->reply) {
        if (it->inval)
            fuse_lowlevel_notify_inval_inode(fs->se, it->ino, 0, 0);
        fuse_reply_err(it->req, it->rc);
        fs_flush_ended(fs);
        return;
    }
    switch (it->kind) {
    case STORE_CHANGE_INODE:
    case STORE_CHANGE_INODE_GONE:
        /* ENOENT: the kernel does not know the inode; nothing to drop. */
        fuse_lowlevel_notify_inval_inode(fs->se, it->ino, 0, 0);
        break;
    case STORE_CHANGE_NAME:
        fuse_lowlevel_notify_inval_entry(fs->se, it->parent, it->name, it->name_len);
        break;
    }
}

static void *inval_main(void *arg)
{
    struct fs *fs = arg;
    pthread_setname_np(pthread_self(), "raftfs-inval");
    pthread_mutex_lock(&fs->inval_mu);
    for (;;) {
        while (!fs->inval_head && !fs->inval_stop)
            pthread_cond_wait(&fs->inval_cv, &fs->inval_mu);
        if (fs->inval_stop)
            break;
        struct fs_inval_item *it = fs->inval_head;
        fs->inval_head = it->next;
        if (!fs->inval_head)
            fs->inval_tail = NULL;
        fs->inval_count--;
        uint64_t dropped = fs->inval_dropped;
        fs->inval_dropped = 0;
        pthread_mutex_unlock(&fs->inval_mu);
        if (dropped)
            node_log(NODE_LOG_WARN,
                     "%llu kernel cache invalidations dropped (queue full): cached names and "
                     "attributes may be stale for up to their timeout",
                     (unsigned long long)dropped);
        notify(fs, it);
        free(it);
        pthread_mutex_lock(&fs->inval_mu);
    }
    pthread_mutex_unlock(&fs->inval_mu);
    return NULL;
}

size_t fs_inval_metrics(struct fs *fs, char *buf, size_t cap)
{
    size_t held;
    uint64_t told, skipped;
    fs_known_stats(&fs->known, &held, &told, &skipped);
    pthread_mutex_lock(&fs->inval_mu);
    uint64_t dropped = fs->inval_dropped_total;
    pthread_mutex_unlock(&fs->inval_mu);
    int n = snprintf(
        buf, cap,
        "# HELP raftfs_kernel_inodes Inodes the kernel holds through this mount (lookups not "
        "yet forgotten).\n"
        "# TYPE raftfs_kernel_inodes gauge\n"
        "raftfs_kernel_inodes %zu\n"
        "# HELP raftfs_kernel_invalidations_total Changes made elsewhere that the kernel's "
        "caches were told about.\n"
        "# TYPE raftfs_kernel_invalidations_total counter\n"
        "raftfs_kernel_invalidations_total %llu\n"
        "# HELP raftfs_kernel_invalidations_skipped_total Changes made elsewhere to inodes "
        "(or in directories) the kernel does not hold: nothing to tell.\n"
        "# TYPE raftfs_kernel_invalidations_skipped_total counter\n"
        "raftfs_kernel_invalidations_skipped_total %llu\n"
        "# HELP raftfs_kernel_invalidations_dropped_total Invalidations dropped with the queue "
        "full (the kernel's caches stale up to their timeout).\n"
        "# TYPE raftfs_kernel_invalidations_dropped_total counter\n"
        "raftfs_kernel_invalidations_dropped_total %llu\n",
        held, (unsigned long long)told, (unsigned long long)skipped, (unsigned long long)dropped);
    return n < 0 ? 0 : (size_t)n;
}

int fs_inval_start(struct fs *fs)
{
    fs_known_init(&fs->known, FUSE_ROOT_ID);
    pthread_mutex_init(&fs->inval_mu, NULL);
    pthread_cond_init(&fs->inval_cv, NULL);
    pthread_mutex_init(&fs->events_mu, NULL);
    pthread_cond_init(&fs->events_cv, NULL);
    int rc = pthread_create(&fs->inval_thread, NULL, inval_main, fs);
    if (rc) {
        pthread_cond_destroy(&fs->inval_cv);
        pthread_mutex_destroy(&fs->inval_mu);
        fs_known_fini(&fs->known);
        return rc;
    }
    fs->inval_running = true;
    return 0;
}

void fs_inval_stop(struct fs *fs)
{
    if (!fs->inval_running)
        return;
    pthread_mutex_lock(&fs->inval_mu);
    fs->inval_stop = true;
    pthread_cond_signal(&fs->inval_cv);
    pthread_mutex_unlock(&fs->inval_mu);
    pthread_join(fs->inval_thread, NULL);
    while (fs->inval_head) {
        struct fs_inval_item *it = fs->inval_head;
        fs->inval_head = it->next;
        if (it->reply) { /* every request is answered */
            fuse_reply_err(it->req, it->rc);
            fs_flush_ended(fs);
        }
        free(it);
    }
    pthread_cond_destroy(&fs->inval_cv);
    pthread_mutex_destroy(&fs->inval_mu);
    fs->inval_running = false;
    fs_known_fini(&fs->known);
}
