/* fs_file.c - FUSE handlers for open files: open, create, read, write,
 * flush, fsync, release.
 *
 * Design notes
 * 1. A write handle collects the new value in memory and commits it as ONE
 *    command at flush (every close(2)) and fsync: readers never see an
 *    empty or half-written value, and the commit's errno is close's errno.
 *    RELEASE comes after close returned, so it only commits data written
 *    after the last flush (mmap writeback) and logs a failure.
 * 2. READ serves the value committed now (or the writer's own buffer on a
 *    read-write handle), never a copy taken at open: a stale READ would
 *    refill the kernel's page cache with old data for every reader.
 * 3. Write-only handles use direct I/O so uncommitted bytes never enter the
 *    shared page cache; read-write handles stay cached (mmap works) and the
 *    inode's cache is invalidated after each commit.
 * 4. A value deleted while open stays readable through the handles that
 *    had it open (fs_table_dropping), as with an unlinked file.
 */
#include "fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void handle_free(struct fs_handle *h)
{
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->mu);
    free(h->buf);
    free(h);
}

void fs_handle_lock(struct fs_handle *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->committing)
        pthread_cond_wait(&h->idle, &h->mu);
}

void fs_handle_drop(struct fs *fs, struct fs_handle *h)
{
    atomic_store(&h->closed, true); /* RELEASE set it already, under mu */
    if (fs_table_release(fs, h))
        handle_free(h);
}

void fs_handle_put(struct fs *fs, struct fs_handle *h)
{
    if (fs_table_writer_unborrow(fs, h))
        handle_free(h);
}

int fs_buf_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    char *p = realloc(*buf, c);
    if (!p)
        return ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

/* Grows h->buf to hold at least need bytes (need <= max value size). */
static int reserve(struct fs_handle *h, size_t need)
{
    return fs_buf_reserve(&h->buf, &h->cap, need, 256);
}

/* Builds the handle for an open (or a create, `created`) of file a. */
static int handle_make(struct fs *fs, fuse_req_t req, const struct store_attr *a,
                       struct fuse_file_info *fi, bool created, struct fs_handle **out)
{
    int acc = fi->flags & O_ACCMODE;
    struct fs_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return ENOMEM;
    h->kind = FS_HANDLE_FILE;
    h->ino = a->ino;
    h->readable = acc != O_WRONLY;
    h->writable = acc != O_RDONLY;
    h->opener = fuse_req_ctx(req)->pid;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    int rc = 0;
    if (h->writable) {
        if (created || (fi->flags & O_TRUNC)) {
            /* The new value starts empty; O_TRUNC is committed even if
             * nothing is written (at release, see trunc_only), also for a
             * file that was empty (Linux moves its mtime too), and so
             * whatever size a leader's read without a round saw. */
            h->dirty = !created;
            h->trunc_only = h->dirty;
        } else if (fi->flags & O_APPEND) {
            h->append = true;
            atomic_store(&h->stat_size, a->size);
        } else {
            /* Starts from the value at open; commits compare against it. */
            struct store_txn *t;
            const void *d;
            size_t n;
            if (!(rc = store_txn_begin(fs->store, &t))) {
                rc = store_read(t, a->ino, &d, &n);
                if (!rc && !(rc = reserve(h, n))) {
                    if (n)
                        memcpy(h->buf, d, n);
                    h->len = n;
                }
                store_txn_end(t);
            }
            h->has_expected_revision = true;
            atomic_store(&h->expected_revision, a->mod_revision);
            atomic_store(&h->stat_size, h->len);
        }
    }
    if (!rc)
        rc = fs_table_open(fs, h);
    if (rc) {
        handle_free(h);
        return rc;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    /* Direct I/O (see design note 3) except for read-write opens, which
     * keep the page cache so that shared mmap works. */
    fi->direct_io = acc != O_RDWR;
    fi->keep_cache = acc == O_RDWR;
    /* A read-only close has nothing to commit: no FLUSH round trip. */
    fi->noflush = acc == O_RDONLY;
    *out = h;
    return 0;
}

/* The open after its barrier (rc: the barrier's errno). */
static void open_finish(struct fs *fs, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                        int rc)
{
    struct store_attr a;
    struct store_txn *t;
    struct fs_handle *h;
    if (!rc && !(rc = store_txn_begin(fs->store, &t))) {
        rc = store_getattr(t, ino, &a);
        store_txn_end(t);
    }
    /* The kernel opened a name it had cached, and that inode is gone now
     * (deleted, maybe made again under the same name: a new inode). ENOENT
     * would say the name does not exist although it may; ESTALE makes the
     * kernel walk the path again with a fresh lookup (LOOKUP_REVAL), which
     * finds the new inode or answers ENOENT after a read barrier (found by
     * tests/chaos: a member behind, or a snapshot installed, leaves such
     * names cached). */
    if (rc == ENOENT)
        rc = ESTALE;
    if (!rc && a.type != STORE_TYPE_FILE)
        rc = EISDIR;
    /* O_RDONLY|O_TRUNC truncates on Linux: do it now, there is no buffer. */
    if (!rc && (fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) == O_RDONLY && a.size) {
        struct store_cmd cmd = {.op = STORE_OP_SETATTR,
                                .time_ns = fs_now_ns(),
                                .set_mask = STORE_SET_SIZE | STORE_SET_MTIME};
        cmd.mtime_ns = cmd.time_ns;
        struct store_result res;
        rc = fs_propose_ino(fs, ino, &cmd, &res);
        if (!rc && res.err)
            rc = res.err == STORE_ECONFLICT ? ESTALE : res.err;
        if (!rc)
            a = res.attr;
    }
    if (!rc)
        rc = handle_make(fs, req, &a, fi, false, &h);
    if (rc)
        fuse_reply_err(req, rc);
    else if (fuse_reply_open(req, fi) == -ENOENT)
        fs_handle_drop(fs, h); /* the opener was interrupted: no release will come */
}

/* An open kept across its barrier: libfuse's fi lives on the stack of
 * the handler's caller, so a copy goes to the reply. */
struct open_later {
    struct fs_later l; /* first: run gets &l */
    fuse_req_t req;
    fuse_ino_t ino;
    struct fuse_file_info fi;
};

static void open_run(struct fs_later *l, int rc)
{
    struct open_later *o = (struct open_later *)l;
    open_finish(l->fs, o->req, o->ino, &o->fi, rc);
    free(o);
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    /* A write-only O_TRUNC open reads nothing but that the inode exists,
     * and its commit names the inode again (expected_ino): if that commit
     * finds it, it existed all along, since this member holds only
     * committed state and inode numbers are never reused. So the leader
     * skips the heartbeat round here (node_read_barrier_for_write); should
     * it have been deposed unawares and the file deleted elsewhere, the
     * close answers ESTALE instead of the open, and nothing is written. */
    bool write_over = (fi->flags & O_ACCMODE) == O_WRONLY && (fi->flags & O_TRUNC);
    /* Other opens wait for a full barrier; a read-only one (without
     * O_TRUNC, which commits a truncation) on the later thread, as
     * lookups (fs_later.c). Opens for writing stay on their FUSE thread:
     * they copy the value into their buffer (up to the value size limit),
     * and the one later thread would make every lookup wait for that. */
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        open_finish(fs, req, ino, fi,
                    fs_node_errno(write_over ? node_read_barrier_for_write(fs->node)
                                             : node_read_barrier(fs->node)));
        return;
    }
    struct open_later *o = malloc(sizeof(*o));
    if (!o) {
        open_finish(fs, req, ino, fi, ENOMEM);
        return;
    }
    o->l.run = open_run;
    o->req = req;
    o->ino = ino;
    o->fi = *fi;
    fs_later_after_barrier(fs, &o->l);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_cmd cmd = {.op = STORE_OP_PUT,
                            .time_ns = fs_now_ns(),
                            .value = "",
                            .mode = mode & 07777,
                            .has_expected_revision = true,
                            .expected_revision = 0};
    struct store_result res;
    struct store_attr a;
    struct store_txn *t;
    struct fuse_entry_param e;
    struct fs_handle *h;
    char *path = NULL;
    bool created = false;
    uint64_t gen = fs_known_gen(&fs->known);

    int rc = fs_new_owner(fs, req, parent, false, &cmd.mode, &cmd.uid, &cmd.gid);
    if (!rc)
        rc = fs_path_child(fs, parent, name, &path, &cmd.path_len);
    if (!rc) {
        cmd.path = path;
        rc = fs_node_errno(node_propose(fs->node, &cmd, &res));
    }
    free(path);
    if (!rc && res.err == STORE_ECONFLICT) {
        /* Someone created it since the kernel's lookup: O_EXCL fails, a
         * plain O_CREAT opens what is there. */
        if (fi->flags & O_EXCL) {
            rc = EEXIST;
        } else if (!(rc = store_txn_begin(fs->store, &t))) {
            rc = store_lookup(t, parent, name, strlen(name), &a);
            store_txn_end(t);
            if (!rc && a.type != STORE_TYPE_FILE)
                rc = EISDIR;
        }
    } else if (!rc && res.err) {
        rc = res.err;
    } else if (!rc) {
        a = res.attr;
        created = true;
    }
    if (!rc)
        rc = handle_make(fs, req, &a, fi, created, &h);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fs_entry_hand(fs, &a, gen, &e);
    if (fuse_reply_create(req, &e, fi) == -ENOENT)
        fs_handle_drop(fs, h);
}

/* A read-only descriptor reads one version of the value: the one committed
 * when its first read ran (after the open's read barrier), copied into the
 * handle. Without it a program that reads until EOF (cat) while the key is
 * rewritten could join the start of one version to the end of another:
 * "2-1445" then, at offset 6, the tail of a newer 7-byte value (found by
 * tests/chaos). A deleted file's first read takes the value kept for it. */
static void read_snapshot(struct fs *fs, fuse_req_t req, fuse_ino_t ino, struct fs_handle *h,
                          size_t size, off_t off)
{
    fs_handle_lock(h);
    int rc = 0;
    if (!h->snapshot) {
        struct store_txn *t;
        const void *d;
        size_t n;
        if (!(rc = store_txn_begin(fs->store, &t))) {
            rc = store_read(t, ino, &d, &n);
            if (!rc && !(rc = reserve(h, n ? n : 1))) {
                if (n)
                    memcpy(h->buf, d, n);
                h->len = n;
                h->snapshot = true;
            }
            store_txn_end(t);
        }
        if (rc == ENOENT) {
            char *copy;
            size_t len;
            rc = fs_table_orphan_read(fs, ino, 0, SIZE_MAX, &copy, &len);
            if (rc == ENOENT)
                rc = ESTALE;
            if (!rc) {
                free(h->buf);
                h->buf = copy;
                h->len = h->cap = len;
                h->snapshot = true;
            }
        }
    }
    if (rc) {
        pthread_mutex_unlock(&h->mu);
        fuse_reply_err(req, rc);
        return;
    }
    size_t m = (uint64_t)off < h->len ? h->len - (size_t)off : 0;
    if (m > size)
        m = size;
    fuse_reply_buf(req, m ? h->buf + off : NULL, m);
    pthread_mutex_unlock(&h->mu);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct fs_handle *h = fs_file_handle(fi);
    if (!h || !h->readable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (h->writable && !h->append) {
        /* A read-write handle reads its own uncommitted value. */
        fs_handle_lock(h);
        size_t n = (uint64_t)off < h->len ? h->len - (size_t)off : 0;
        if (n > size)
            n = size;
        fuse_reply_buf(req, n ? h->buf + off : NULL, n);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    if (!h->writable) {
        read_snapshot(fs, req, ino, h, size, off);
        return;
    }
    struct store_txn *t;
    const void *d;
    size_t n;
    int rc = store_txn_begin(fs->store, &t);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    rc = store_read(t, ino, &d, &n);
    if (rc == ENOENT) {
        store_txn_end(t);
        char *copy;
        size_t len;
        rc = fs_table_orphan_read(fs, ino, off, size, &copy, &len);
        if (rc) {
            fuse_reply_err(req, rc == ENOENT ? ESTALE : rc);
            return;
        }
        fuse_reply_buf(req, copy, len);
        free(copy);
        return;
    }
    if (rc) {
        store_txn_end(t);
        fuse_reply_err(req, rc);
        return;
    }
    if (h->append) {
        /* O_RDWR|O_APPEND: the committed value, then what is pending. */
        fs_handle_lock(h);
        size_t total = n + h->len;
        size_t m = (uint64_t)off < total ? total - (size_t)off : 0;
        if (m > size)
            m = size;
        char *tmp = malloc(m ? m : 1);
        if (!tmp) {
            pthread_mutex_unlock(&h->mu);
            store_txn_end(t);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        for (size_t i = 0; i < m; i++) {
            size_t at = (size_t)off + i;
            tmp[i] = at < n ? ((const char *)d)[at] : h->buf[at - n];
        }
        pthread_mutex_unlock(&h->mu);
        store_txn_end(t);
        fuse_reply_buf(req, tmp, m);
        free(tmp);
        return;
    }
    size_t m = (uint64_t)off < n ? n - (size_t)off : 0;
    if (m > size)
        m = size;
    /* The reply copies out of the map before the transaction ends. */
    fuse_reply_buf(req, m ? (const char *)d + off : NULL, m);
    store_txn_end(t);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct fs_handle *h = fs_file_handle(fi);
    (void)ino;
    if (!h || !h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    size_t max = fs->limits.max_value_bytes;
    int rc = 0;
    fs_handle_lock(h);
    if (h->write_err) {
        rc = h->write_err;
    } else if (h->append) {
        /* The offset is the kernel's idea of the end: appends go to the
         * end of the value as committed, whatever it is then. */
        uint64_t base = atomic_load(&h->stat_size) - h->len;
        if (size > max || h->len + size > max || base + h->len + size > max)
            rc = EFBIG;
        else if (!(rc = reserve(h, h->len + size))) {
            memcpy(h->buf + h->len, buf, size);
            h->len += size;
            atomic_store(&h->stat_size, base + h->len);
        }
    } else {
        if ((uint64_t)off > max || size > max - (uint64_t)off) {
            rc = EFBIG;
        } else {
            size_t end = (size_t)off + size;
            if (!(rc = reserve(h, end))) {
                if ((size_t)off > h->len)
                    memset(h->buf + h->len, 0, (size_t)off - h->len);
                memcpy(h->buf + off, buf, size);
                if (end > h->len)
                    h->len = end;
                atomic_store(&h->stat_size, h->len);
            }
        }
    }
    if (!rc) {
        h->dirty = true;
        h->trunc_only = false;
    } else if (!h->write_err) {
        /* The value the writer meant can no longer be committed whole. */
        h->write_err = rc;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc)
        fuse_reply_err(req, rc);
    else
        fuse_reply_write(req, size);
}

/* h's value takes the size (its room reserved) as uncommitted data.
 * h->mu held. */
static void fold_size(struct fs_handle *h, uint64_t size)
{
    if (size > h->len)
        memset(h->buf + h->len, 0, (size_t)size - h->len);
    h->len = (size_t)size;
    h->dirty = true;
    h->trunc_only = false;
    atomic_store(&h->stat_size, h->len);
}

int fs_handle_truncate(struct fs *fs, struct fs_handle *h, uint64_t size)
{
    if (size > fs->limits.max_value_bytes)
        return EFBIG;
    fs_handle_lock(h);
    int rc = atomic_load(&h->closed) ? EBADF
             : h->write_err          ? h->write_err
                                     : reserve(h, (size_t)size);
    if (!rc)
        fold_size(h, size);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int fs_handle_truncate_path(struct fs *fs, struct fs_handle *h, uint64_t size, int64_t now,
                            struct store_attr *out, bool *by_path)
{
    *by_path = false;
    if (size > fs->limits.max_value_bytes)
        return EFBIG;
    fs_handle_lock(h);
    if (atomic_load(&h->closed) || h->write_err || reserve(h, (size_t)size)) {
        pthread_mutex_unlock(&h->mu);
        *by_path = true;
        return 0;
    }
    if (h->dirty) {
        fold_size(h, size); /* committed with the rest of h's value */
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    /* Nothing of h is uncommitted: the size is committed now. When h's
     * value was the file's (the revision it expects is current), it is so
     * again afterwards, at the new revision; otherwise h stays behind, and
     * its next commit conflicts as it would have. */
    struct store_cmd cmd = {
        .op = STORE_OP_SETATTR, .time_ns = now, .set_mask = STORE_SET_SIZE, .size = size};
    bool follows = h->has_expected_revision;
    if (follows) {
        cmd.has_expected_revision = true;
        cmd.expected_revision = atomic_load(&h->expected_revision);
    }
    struct store_result res = {0};
    int rc = fs_propose_ino(fs, h->ino, &cmd, &res);
    if (!rc && res.err == STORE_ECONFLICT && follows) {
        follows = false;
        cmd.has_expected_revision = false;
        res = (struct store_result){0};
        rc = fs_propose_ino(fs, h->ino, &cmd, &res);
    }
    if (rc == ENOENT || (!rc && res.err == ENOENT)) {
        /* Deleted while open: the size is the open file's own, as before
         * (its close then answers ESTALE). */
        fold_size(h, size);
        pthread_mutex_unlock(&h->mu);
        return 0;
    }
    if (!rc && res.err)
        rc = res.err == STORE_ECONFLICT ? ESTALE : res.err;
    if (!rc) {
        *out = res.attr;
        fold_size(h, size);
        h->dirty = false; /* committed */
        if (follows)
            atomic_store(&h->expected_revision, res.attr.mod_revision);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* After the proposal of h's value (rc, res as fs_propose_ino gives them):
 * the handle's state, and the errno for close(2)/fsync(2). h->mu held. */
static int commit_done(struct fs *fs, struct fs_handle *h, int rc, const struct store_result *r,
                       bool *committed, int64_t time_ns)
{
    struct store_result res = *r;
    *committed = false;
    if (!rc && res.err)
        rc = res.err == STORE_ECONFLICT || res.err == ENOENT ? ESTALE : res.err;
    else if (rc == ENOENT)
        rc = ESTALE; /* the file was deleted while open */
    if (rc) {
        /* Reported to this close only, and never proposed again: after
         * ETIMEDOUT the command may still commit (once), and a second
         * proposal of the same bytes (at release, or the next close) would
         * apply them twice (an APPEND twice: found by tests/chaos); after a
         * refusal (ENOSPC, ESTALE) it must stay refused. */
        h->dirty = false;
        h->trunc_only = false;
        if (h->append)
            h->len = 0;
        return rc;
    }
    *committed = true;
    h->dirty = false;
    h->trunc_only = false;
    if (h->append) {
        h->len = 0;
        atomic_store(&h->stat_size, res.attr.size);
    }
    uint64_t rev = res.attr.mod_revision;
    if (h->has_mtime || h->has_atime) {
        /* Times set explicitly while the data was pending (cp -p, rsync). */
        struct store_cmd tc = {.op = STORE_OP_SETATTR,
                               .time_ns = time_ns,
                               .mtime_ns = h->mtime_ns,
                               .atime_ns = h->atime_ns};
        tc.set_mask = (h->has_mtime ? STORE_SET_MTIME : 0) | (h->has_atime ? STORE_SET_ATIME : 0);
        h->has_mtime = h->has_atime = false;
        rc = fs_propose_ino(fs, h->ino, &tc, &res);
        if (rc || res.err)
            return rc ? rc : ESTALE;
        rev = res.attr.mod_revision;
    }
    if (h->has_expected_revision)
        atomic_store(&h->expected_revision, rev);
    return 0;
}

/* Commits h's uncommitted value as one command. h->mu held. Returns the
 * errno for close(2)/fsync(2); *committed tells if the store changed. */
static int commit(struct fs *fs, struct fs_handle *h, bool *committed, bool releasing)
{
    *committed = false;
    if (h->write_err) {
        /* Reported again by every close; the old value stays. */
        h->dirty = false;
        return h->write_err;
    }
    if (!h->dirty || (h->trunc_only && !releasing))
        return 0;
    struct store_cmd cmd = {.op = h->append ? STORE_OP_APPEND : STORE_OP_PUT,
                            .time_ns = fs_now_ns(),
                            .value = h->len ? h->buf : "",
                            .value_len = h->len,
                            .mode = 0644};
    if (h->has_expected_revision) {
        cmd.has_expected_revision = true;
        cmd.expected_revision = atomic_load(&h->expected_revision);
    }
    struct store_result res = {0};
    int rc = fs_propose_ino(fs, h->ino, &cmd, &res);
    return commit_done(fs, h, rc, &res, committed, cmd.time_ns);
}

/* After a commit the kernel's cached pages and attributes of ino may hold
 * what another handle read before: drop them before the caller goes on. */
static void invalidate(struct fs *fs, uint64_t ino)
{
    fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
}

/* Commits h on this thread and replies; h->mu held (and let go here). */
static void commit_locked_and_reply(struct fs *fs, fuse_req_t req, struct fs_handle *h)
{
    bool committed;
    int rc = commit(fs, h, &committed, false);
    pthread_mutex_unlock(&h->mu);
    if (committed || rc)
        invalidate(fs, h->ino);
    fuse_reply_err(req, rc);
}

static void commit_and_reply(fuse_req_t req, struct fs_handle *h)
{
    fs_handle_lock(h);
    commit_locked_and_reply(fuse_req_userdata(req), req, h);
}

/* A flush whose commit is in flight (flush_async). The handle is marked
 * committing meanwhile: every other use of its value and state waits
 * (fs_handle_lock), so the value proposed stays as it was. */
struct flush_later {
    struct fs_later l; /* first: run gets &l */
    fuse_req_t req;
    struct fs_handle *h;
    struct store_cmd cmd;
    char *path;
    size_t path_len;
    int attempt;
    struct store_result res;
    struct fs_inval_item *reply; /* for the end (fs_inval_then_reply) */
};

/* On the node's loop thread: the result goes to the later thread. */
static void flush_done(void *ctx, int rc, const struct store_result *res)
{
    struct flush_later *f = ctx;
    if (!rc && res)
        f->res = *res;
    fs_later_queue(&f->l, rc);
}

/* Proposes f's value at the inode's path now (as fs_propose_ino does, one
 * attempt). 0: flush_done will come; else the errno, and it will not. */
static int flush_submit(struct flush_later *f)
{
    struct fs *fs = f->l.fs;
    free(f->path);
    f->path = NULL;
    int rc = fs_path_of(fs, f->h->ino, &f->path, &f->path_len);
    if (rc)
        return rc; /* ENOENT: deleted while open (commit_done: ESTALE) */
    f->cmd.path = f->path;
    f->cmd.path_len = f->path_len;
    f->cmd.has_expected_ino = true;
    f->cmd.expected_ino = f->h->ino;
    /* Once proposed, f is not touched here again: the answer may already
     * have run on the later thread and freed it. */
    return fs_node_errno(node_propose_async(fs->node, &f->cmd, flush_done, f));
}

/* The end of an asynchronous flush: the handle's state, as commit(), then
 * the reply. */
static void flush_finish(struct flush_later *f, int rc)
{
    struct fs *fs = f->l.fs;
    struct fs_handle *h = f->h;
    uint64_t ino = h->ino;
    bool committed;
    pthread_mutex_lock(&h->mu);
    rc = commit_done(fs, h, rc, &f->res, &committed, f->cmd.time_ns);
    h->committing = false;
    pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->mu);
    /* h is not used from here on. The kernel sends RELEASE only after the
     * closing call returned, that is after this reply; this is only so as
     * not to depend on it. The invalidation may wait for the kernel, which
     * may wait for a page lock held by a READ that waits for another
     * handle's commit to end on this thread: so it is made, and the reply
     * sent after it, on the notifier thread, which no handler waits for
     * (fs_inval.c). */
    fs_inval_then_reply(fs, f->reply, ino, committed || rc, f->req, rc);
    free(f->path);
    free(f);
}

/* At most this many asynchronous flushes at once: each holds one of the
 * node's lanes, which become replicated session records once applied (a
 * synchronous flush holds a request thread instead, which max_threads
 * bounds). Beyond it a flush commits on its own thread. */
#define FS_FLUSHES_MAX 256

void fs_flush_ended(struct fs *fs)
{
    atomic_fetch_sub(&fs->flushes, 1);
}

size_t fs_flush_metrics(struct fs *fs, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "# HELP raftfs_flushes_in_flight Closes whose commit is in flight without "
                     "holding a request thread (at most %d).\n"
                     "# TYPE raftfs_flushes_in_flight gauge\n"
                     "raftfs_flushes_in_flight %u\n"
                     "# HELP raftfs_flushes_capped_total Closes that committed on their request "
                     "thread because as many were in flight as allowed.\n"
                     "# TYPE raftfs_flushes_capped_total counter\n"
                     "raftfs_flushes_capped_total %llu\n",
                     FS_FLUSHES_MAX, atomic_load(&fs->flushes),
                     (unsigned long long)atomic_load(&fs->flushes_capped));
    return n < 0 ? 0 : (size_t)n;
}

void fs_flushes_wait(struct fs *fs)
{
    /* Each ends by the node's --timeout at the latest (the node runs). */
    while (atomic_load(&fs->flushes))
        usleep(10 * 1000);
}

/* On the later thread, once the node answered. A conflict because the
 * inode moved between the path's resolution and the apply (a rename)
 * proposes again at its new path, as fs_propose_ino does. */
static void flush_run(struct fs_later *l, int rc)
{
    struct flush_later *f = (struct flush_later *)l;
    if (!rc && f->res.err == STORE_ECONFLICT && f->attempt < 3) {
        bool moved = false;
        int prc = fs_ino_moved(l->fs, f->h->ino, f->path, f->path_len, &moved);
        if (prc == ENOENT) {
            f->res.err = ENOENT; /* deleted meanwhile */
        } else if (prc) {
            rc = prc;
        } else if (moved) {
            f->attempt++;
            f->res = (struct store_result){0};
            if (!(rc = flush_submit(f)))
                return; /* runs again when the node answers */
        }
    }
    flush_finish(f, rc);
}

/* FLUSH (every close(2)) without holding a FUSE thread for the commit:
 * the thread proposes the value and goes back to /dev/fuse; the later
 * thread (fs_later.c) finishes and replies. A FUSE thread waiting out a
 * commit made libfuse start a thread for each concurrent writer, and each
 * request then woke a sleeping one (docs/profile.md, "Flushes finish on
 * the later thread"). What needs more than one proposal (times set while
 * the data was pending) and what needs none commit here, as before. */
static void flush_async(struct fs *fs, fuse_req_t req, struct fs_handle *h)
{
    fs_handle_lock(h);
    struct flush_later *f = NULL;
    if (fs->later_running && !h->write_err && h->dirty && !h->trunc_only && !h->has_mtime &&
        !h->has_atime) {
        /* counted (fs->flushes) from here until its reply */
        bool room = atomic_fetch_add(&fs->flushes, 1) < FS_FLUSHES_MAX;
        if (room && (f = calloc(1, sizeof(*f))) && !(f->reply = fs_inval_reply_new())) {
            free(f);
            f = NULL;
        }
        if (!room)
            atomic_fetch_add(&fs->flushes_capped, 1);
        if (!f)
            fs_flush_ended(fs); /* at the cap, or no memory: not after all */
    }
    if (!f) {
        commit_locked_and_reply(fs, req, h);
        return;
    }
    f->l.run = flush_run;
    f->l.fs = fs;
    f->req = req;
    f->h = h;
    f->cmd = (struct store_cmd){.op = h->append ? STORE_OP_APPEND : STORE_OP_PUT,
                                .time_ns = fs_now_ns(),
                                .value = h->len ? h->buf : "",
                                .value_len = h->len,
                                .mode = 0644};
    if (h->has_expected_revision) {
        f->cmd.has_expected_revision = true;
        f->cmd.expected_revision = atomic_load(&h->expected_revision);
    }
    h->committing = true;
    pthread_mutex_unlock(&h->mu);
    int rc = flush_submit(f);
    if (rc)
        flush_finish(f, rc); /* not proposed: the node will not answer */
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_handle *h = fs_file_handle(fi);
    (void)ino;
    if (!h) {
        fuse_reply_err(req, EBADF);
        return;
    }
    flush_async(fuse_req_userdata(req), req, h);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct fs_handle *h = fs_file_handle(fi);
    (void)ino, (void)datasync;
    if (!h) {
        fuse_reply_err(req, EBADF);
        return;
    }
    /* Every commit is already durable (fsync'ed by the node). */
    commit_and_reply(req, h);
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct fs_handle *h = fs_file_handle(fi);
    if (!h) {
        fuse_reply_err(req, EBADF);
        return;
    }
    bool committed;
    fs_handle_lock(h);
    /* Data written after the last flush (mmap writeback at munmap): commit
     * it; nobody is left to report an error to but the log. */
    committed = false;
    int rc = h->write_err ? 0 : commit(fs, h, &committed, true);
    /* From here a truncate(2) that found h by its writer's process
     * (fs_op_setattr) proposes its size instead of changing a buffer
     * nobody commits any more. */
    atomic_store(&h->closed, true);
    pthread_mutex_unlock(&h->mu);
    if (rc)
        node_log(NODE_LOG_WARN, "inode %llu: uncommitted data dropped at release: %s",
                 (unsigned long long)ino, strerror(rc));
    if (committed || rc)
        invalidate(fs, h->ino);
    fs_handle_drop(fs, h);
    fuse_reply_err(req, 0);
}
