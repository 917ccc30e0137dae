/* fs_events.c - `.raftfs/events`: the tree's changes as a stream file.
 *
 *   while read -r rev op path; do ...; done < MNT/.raftfs/events
 *
 * An open starts at the member's current revision; each read returns the
 * lines of the changes committed since (`REVISION OP PATH`, RENAME with its
 * target after the path; op as `raftfs watch` prints it), blocking until
 * there is one. Lines come from the store's change history
 * (store_events), read on the reader's own FUSE thread, so a slow reader
 * holds up nobody; one that falls behind the history gets the line
 * `ERROR compacted REVISION: open the file again and re-read the tree`
 * and then end of file.
 *
 * Design notes
 * 1. A read copies out of the handle's buffer of whole lines and refills
 *    it from the history when it is empty, so a reader that takes a byte
 *    at a time (bash's `read` on a file it cannot seek) and one that takes
 *    64 KiB both see whole lines in order. The file is not seekable and has
 *    no page cache (direct_io).
 * 2. A blocked read waits on a condition variable that every committed
 *    change signals (fs_events_wake, from the store observer), with a
 *    timeout so that an interrupt (the reader got a signal: EINTR) or the
 *    end of the session is noticed. poll/select work: a poll with nothing
 *    to read keeps its handle, and the next change notifies it.
 * 3. Each open blocks a FUSE thread while it waits; at most
 *    FS_EVENTS_MAX_OPEN are open at once on a mount (EMFILE beyond), well
 *    under the mount's max_threads, so other requests always have threads.
 * 4. Bytes of paths below 0x20, 0x7f and backslash are written as \xHH, so
 *    a line is always one line.
 */
#include "fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FS_EVENTS_MAX_OPEN 16
#define FS_EVENTS_FILL     (64u << 10) /* bytes of lines taken from the history at a time */
#define FS_EVENTS_WAIT_MS  200

struct fs_events {
    enum fs_handle_kind kind; /* FS_HANDLE_EVENTS */
    struct fs *fs;
    pthread_mutex_t mu; /* the buffer and next (not the fields below it) */
    uint64_t next;      /* the first revision not yet read from the history */
    char *buf;
    size_t len, off, cap;
    bool eof; /* the error line was given: nothing more */
    /* under fs->events_mu: */
    bool interrupted; /* the reader blocked in read got a signal */
    struct fuse_pollhandle *ph;
    struct fs_events *prev_h, *next_h; /* fs->events_list */
};

struct fs_events *fs_events_handle(const struct fuse_file_info *fi)
{
    struct fs_events *h = fi ? (struct fs_events *)(uintptr_t)fi->fh : NULL;
    return h && h->kind == FS_HANDLE_EVENTS ? h : NULL;
}

static int reserve(struct fs_events *h, size_t more)
{
    return fs_buf_reserve(&h->buf, &h->cap, h->len + more, 4096);
}

static void put_path(struct fs_events *h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            h->len += (size_t)sprintf(h->buf + h->len, "\\x%02x", c);
        else
            h->buf[h->len++] = (char)c;
    }
}

static int add_line(void *ctx, const struct store_event *e)
{
    struct fs_events *h = ctx;
    /* Enough for now, the rest at the next fill; but never half of a
     * txn's revision (h->next is the last one added + 1). */
    if (h->len >= FS_EVENTS_FILL && e->revision + 1 != h->next)
        return -1;
    if (reserve(h, 48 + 4 * (e->path_len + e->path2_len)))
        return ENOMEM;
    const char *op = store_event_op_name(e->op);
    h->len += (size_t)sprintf(h->buf + h->len, "%llu %s ", (unsigned long long)e->revision, op);
    put_path(h, e->path, e->path_len);
    if (e->path2) {
        h->buf[h->len++] = ' ';
        put_path(h, e->path2, e->path2_len);
    }
    h->buf[h->len++] = '\n';
    h->next = e->revision + 1;
    return 0;
}

/* Refills an empty buffer from the history (h->mu held). */
static int fill(struct fs_events *h)
{
    if (h->off < h->len || h->eof)
        return 0;
    h->off = h->len = 0;
    struct store_txn *t;
    int rc = store_txn_begin(h->fs->store, &t);
    if (rc)
        return rc;
    uint64_t rev = store_txn_revision(t), compacted = 0;
    if (h->next <= rev) {
        rc = store_events(t, h->next, add_line, h, &compacted);
        if (rc == STORE_ECOMPACTED) {
            rc = reserve(h, 128);
            if (!rc) {
                h->len = (size_t)sprintf(h->buf,
                                         "ERROR compacted %llu: open the file again and re-read "
                                         "the tree\n",
                                         (unsigned long long)compacted);
                h->eof = true;
            }
        } else if (!rc && h->len < FS_EVENTS_FILL) {
            h->next = rev + 1; /* revisions without events (the member directory) */
        }
    }
    store_txn_end(t);
    return rc;
}

static bool readable(const struct fs_events *h)
{
    return h->off < h->len || h->eof;
}

int fs_events_open(struct fs *fs, struct fuse_file_info *fi)
{
    struct fs_events *h = calloc(1, sizeof(*h));
    if (!h)
        return ENOMEM;
    h->kind = FS_HANDLE_EVENTS;
    h->fs = fs;
    pthread_mutex_init(&h->mu, NULL);
    struct store_txn *t;
    int rc = store_txn_begin(fs->store, &t);
    if (rc) {
        free(h);
        return rc;
    }
    h->next = store_txn_revision(t) + 1;
    store_txn_end(t);
    pthread_mutex_lock(&fs->events_mu);
    if (fs->events_open >= FS_EVENTS_MAX_OPEN) {
        pthread_mutex_unlock(&fs->events_mu);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return EMFILE;
    }
    h->next_h = fs->events_list;
    if (fs->events_list)
        fs->events_list->prev_h = h;
    fs->events_list = h;
    atomic_fetch_add(&fs->events_open, 1);
    pthread_mutex_unlock(&fs->events_mu);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->nonseekable = 1;
    return 0;
}

void fs_events_release(struct fs_events *h)
{
    struct fs *fs = h->fs;
    pthread_mutex_lock(&fs->events_mu);
    if (h->prev_h)
        h->prev_h->next_h = h->next_h;
    else
        fs->events_list = h->next_h;
    if (h->next_h)
        h->next_h->prev_h = h->prev_h;
    atomic_fetch_sub(&fs->events_open, 1);
    pthread_mutex_unlock(&fs->events_mu);
    if (h->ph)
        fuse_pollhandle_destroy(h->ph);
    pthread_mutex_destroy(&h->mu);
    free(h->buf);
    free(h);
}

static void on_interrupt(fuse_req_t req, void *data)
{
    struct fs_events *h = data;
    (void)req;
    pthread_mutex_lock(&h->fs->events_mu);
    h->interrupted = true;
    pthread_cond_broadcast(&h->fs->events_cv);
    pthread_mutex_unlock(&h->fs->events_mu);
}

void fs_events_read(fuse_req_t req, struct fs_events *h, size_t size)
{
    struct fs *fs = h->fs;
    pthread_mutex_lock(&fs->events_mu);
    h->interrupted = false;
    pthread_mutex_unlock(&fs->events_mu);
    fuse_req_interrupt_func(req, on_interrupt, h);
    int rc = 0;
    char *copy = NULL;
    size_t n = 0;
    for (;;) {
        uint64_t gen = atomic_load(&fs->events_gen);
        pthread_mutex_lock(&h->mu);
        rc = fill(h);
        if (!rc && h->off < h->len) {
            n = h->len - h->off;
            if (n > size)
                n = size;
            /* Sent from a copy: the reply may outlive a release on another
             * thread once the kernel has the data (as in fs_ctl_read). */
            if ((copy = malloc(n))) {
                memcpy(copy, h->buf + h->off, n);
                h->off += n;
            } else {
                rc = ENOMEM;
            }
        }
        bool done = rc || copy || h->eof;
        pthread_mutex_unlock(&h->mu);
        if (done)
            break;
        pthread_mutex_lock(&fs->events_mu);
        if (h->interrupted || fuse_req_interrupted(req))
            rc = EINTR;
        else if (fuse_session_exited(fs->se))
            rc = EIO;
        else if (atomic_load(&fs->events_gen) == gen) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += FS_EVENTS_WAIT_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&fs->events_cv, &fs->events_mu, &until);
        }
        pthread_mutex_unlock(&fs->events_mu);
        if (rc)
            break;
    }
    fuse_req_interrupt_func(req, NULL, NULL);
    if (rc)
        fuse_reply_err(req, rc);
    else
        fuse_reply_buf(req, copy, n); /* n == 0: end of file, after the error line */
    free(copy);
}

void fs_events_poll(fuse_req_t req, struct fs_events *h, struct fuse_pollhandle *ph)
{
    struct fs *fs = h->fs;
    uint64_t gen = atomic_load(&fs->events_gen);
    pthread_mutex_lock(&h->mu);
    int rc = fill(h);
    unsigned revents = rc || readable(h) ? POLLIN : 0;
    pthread_mutex_unlock(&h->mu);
    if (ph && revents) {
        fuse_pollhandle_destroy(ph);
    } else if (ph) {
        pthread_mutex_lock(&fs->events_mu);
        if (h->ph)
            fuse_pollhandle_destroy(h->ph);
        h->ph = ph; /* notified at the next change */
        if (atomic_load(&fs->events_gen) != gen) {
            /* one came since the fill: the kernel polls again */
            fuse_lowlevel_notify_poll(h->ph);
            fuse_pollhandle_destroy(h->ph);
            h->ph = NULL;
        }
        pthread_mutex_unlock(&fs->events_mu);
    }
    fuse_reply_poll(req, revents);
}

void fs_events_wake(struct fs *fs)
{
    if (!atomic_load(&fs->events_open))
        return;
    atomic_fetch_add(&fs->events_gen, 1);
    pthread_mutex_lock(&fs->events_mu);
    pthread_cond_broadcast(&fs->events_cv);
    for (struct fs_events *h = fs->events_list; h; h = h->next_h)
        if (h->ph) {
            fuse_lowlevel_notify_poll(h->ph);
            fuse_pollhandle_destroy(h->ph);
            h->ph = NULL;
        }
    pthread_mutex_unlock(&fs->events_mu);
}
