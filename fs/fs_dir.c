/* fs_dir.c - FUSE handlers for directories: opendir, readdir(plus),
 * releasedir.
 *
 * Offsets: 1 follows ".", 2 follows "..", 2 + k follows the k-th entry in
 * name order. A handle remembers the offset it reached and the last name
 * it returned, so the next page resumes after that name: entries created or
 * removed meanwhile never make a listing skip or repeat the others. A seek
 * to any other offset lists again from the start and skips.
 */
#include "fs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fill {
    fuse_req_t req;
    struct fs *fs;
    struct store_txn *t;
    bool plus;
    char *buf;
    size_t size, used;
    off_t off;     /* offset of the last entry added */
    uint64_t skip; /* entries to pass over first (seek) */
    int err;
    char last[STORE_MAX_NAME_BYTES_BOUND + 1];
    size_t last_len;
    bool added;
    uint64_t gen; /* fs_known_gen before the store was read */
};

/* Adds one entry; false when the buffer is full. */
static bool add(struct fill *f, const char *name, const struct store_attr *a, uint64_t ino,
                enum store_type type)
{
    size_t n;
    off_t next = f->off + 1;
    if (f->plus) {
        struct fuse_entry_param e;
        if (a) {
            fs_entry_hand(f->fs, a, f->gen, &e);
        } else {
            /* "." and "..": no lookup is taken for them */
            memset(&e, 0, sizeof(e));
            e.attr.st_ino = ino;
            e.attr.st_mode = S_IFDIR;
        }
        n = fuse_add_direntry_plus(f->req, f->buf + f->used, f->size - f->used, name, &e, next);
    } else {
        struct stat st = {.st_ino = ino, .st_mode = type == STORE_TYPE_DIR ? S_IFDIR : S_IFREG};
        n = fuse_add_direntry(f->req, f->buf + f->used, f->size - f->used, name, &st, next);
    }
    if (n > f->size - f->used) {
        if (f->plus && a) /* not in this reply: the kernel takes no reference */
            fs_known_forget(&f->fs->known, a->ino, 1);
        return false;
    }
    f->used += n;
    f->off = next;
    return true;
}

static int list_cb(void *ctx, const struct store_dirent *e)
{
    struct fill *f = ctx;
    if (f->skip) {
        f->skip--;
        f->off++;
        memcpy(f->last, e->name, e->name_len);
        f->last_len = e->name_len;
        return 0;
    }
    char name[STORE_MAX_NAME_BYTES_BOUND + 1];
    memcpy(name, e->name, e->name_len);
    name[e->name_len] = 0;
    struct store_attr a;
    if (f->plus) {
        int rc = store_getattr(f->t, e->ino, &a);
        if (rc) {
            f->err = rc == ENOENT ? EIO : rc;
            return 1;
        }
    }
    if (!add(f, name, f->plus ? &a : NULL, e->ino, e->type))
        return 1;
    memcpy(f->last, e->name, e->name_len);
    f->last_len = e->name_len;
    f->added = true;
    return 0;
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_txn *t;
    struct store_attr a;
    int rc = fs_node_errno(node_read_barrier(fs->node));
    if (!rc && !(rc = store_txn_begin(fs->store, &t))) {
        rc = store_getattr(t, ino, &a);
        store_txn_end(t);
    }
    /* A directory gone since the kernel's lookup (deleted, maybe made
     * again): ESTALE, so the kernel looks the name up again, as for
     * fs_op_open and fs_op_getattr. */
    if (rc == ENOENT)
        rc = ESTALE;
    if (!rc && a.type != STORE_TYPE_DIR)
        rc = ENOTDIR;
    struct fs_dirh *d = NULL;
    if (!rc && !(d = calloc(1, sizeof(*d))))
        rc = ENOMEM;
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    d->kind = FS_HANDLE_DIR;
    pthread_mutex_init(&d->mu, NULL);
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi, bool plus)
{
    struct fs *fs = fuse_req_userdata(req);
    struct fs_dirh *d = fi ? (struct fs_dirh *)(uintptr_t)fi->fh : NULL;
    if (!d || d->kind != FS_HANDLE_DIR) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (size > (1U << 20))
        size = 1U << 20; /* the kernel asks for a page or a few */
    struct fill f = {.req = req, .fs = fs, .plus = plus, .size = size, .off = off};
    f.buf = malloc(size ? size : 1);
    if (!f.buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&d->mu);
    if (off == 0) { /* rewinddir */
        free(d->last_name);
        d->last_name = NULL;
        d->last_len = 0;
    }
    struct store_attr dir;
    f.gen = fs_known_gen(&fs->known);
    int rc = store_txn_begin(fs->store, &f.t);
    if (rc)
        goto out;
    if ((rc = store_getattr(f.t, ino, &dir)))
        goto out_txn;
    if (off == 0 && !add(&f, ".", NULL, ino, STORE_TYPE_DIR))
        goto out_txn;
    if (f.off == 1 && !add(&f, "..", NULL, dir.parent, STORE_TYPE_DIR))
        goto out_txn;
    const char *after = NULL;
    size_t after_len = 0;
    if (f.off > 2 && off == d->next_off && d->last_name) {
        after = d->last_name;
        after_len = d->last_len;
    } else if (f.off > 2) {
        f.skip = (uint64_t)f.off - 2; /* a seek: count from the start */
        f.off = 2;
    }
    rc = store_list(f.t, ino, after, after_len, list_cb, &f);
    if (!rc)
        rc = f.err;
    if (!rc && f.last_len) {
        char *copy = malloc(f.last_len);
        if (copy) {
            memcpy(copy, f.last, f.last_len);
            free(d->last_name);
            d->last_name = copy;
            d->last_len = f.last_len;
        }
    }
out_txn:
    store_txn_end(f.t);
out:
    d->next_off = f.off;
    pthread_mutex_unlock(&d->mu);
    if (rc && f.used == 0)
        fuse_reply_err(req, rc);
    else
        fuse_reply_buf(req, f.buf, f.used);
    free(f.buf);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, true);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_dirh *d = fi ? (struct fs_dirh *)(uintptr_t)fi->fh : NULL;
    (void)ino;
    if (d && d->kind == FS_HANDLE_DIR) {
        pthread_mutex_destroy(&d->mu);
        free(d->last_name);
        free(d);
    }
    fuse_reply_err(req, 0);
}
