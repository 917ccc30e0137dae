/* fs_ctl.c - `.raftfs/` at the mount root: the member reports on itself.
 *
 *   .raftfs/status    one line of JSON (node_status_json): role, term,
 *                     leader, commit/applied, reads mode, how long since the
 *                     leader was heard from, and every member
 *   .raftfs/members   "ID ADDRESS ROLE" per member
 *   .raftfs/metrics   Prometheus text (node_metrics_render)
 *   .raftfs/events    the changes as they commit, a line each (fs_events.c)
 *
 * None of it is in the store: the inodes are virtual (FS_CTL_INO_BASE and
 * up, far above any inode the store hands out) and the name `.raftfs` is
 * reserved at the root (the store's apply refuses to create it there:
 * is_reserved in store_apply.c, EPERM for put, mkdir and rename), so no key
 * can hide behind it. The folder is not listed in the root's readdir (a
 * copy of the tree must not pick it up) but is found by name. Everything is
 * this member's local view, answered without asking the leader, so it works
 * in a minority. Contents are rendered at open and stay fixed for that open
 * file (direct_io: no page cache); stat reports the length of a fresh
 * rendering, with no attribute caching.
 *
 * It is read-only: anything that would change it (write access, create,
 * mkdir, unlink, rmdir, rename from or into it, setattr, xattrs) fails
 * with EROFS.
 *
 * These wrappers sit in front of the fs_op_* handlers in the FUSE ops
 * table (fs_session.c): a request about a control inode or name is
 * answered here, everything else goes on unchanged.
 */
#include "fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FS_CTL_NAME     ".raftfs"
#define FS_CTL_INO_BASE (1ULL << 62)
#define FS_CTL_DIR_INO  FS_CTL_INO_BASE

enum ctl_file { CTL_STATUS, CTL_MEMBERS, CTL_METRICS, CTL_EVENTS, CTL_N };
static const char *const ctl_names[CTL_N] = {"status", "members", "metrics", "events"};
#define FS_CTL_EVENTS_INO (FS_CTL_DIR_INO + 1 + CTL_EVENTS)

/* An open control file: its contents as rendered at open. */
struct ctl_handle {
    enum fs_handle_kind kind; /* FS_HANDLE_CTL */
    char *text;
    size_t len;
};

static bool is_ctl(fuse_ino_t ino)
{
    return ino >= FS_CTL_DIR_INO && ino <= FS_CTL_DIR_INO + CTL_N;
}

static bool is_ctl_name(fuse_ino_t parent, const char *name)
{
    return is_ctl(parent) || (parent == FUSE_ROOT_ID && !strcmp(name, FS_CTL_NAME));
}

/* Renders control file `which` into a malloc'd buffer. */
static int render(struct fs *fs, enum ctl_file which, char **out, size_t *len)
{
    struct node_status st;
    node_get_status(fs->node, &st);
    size_t cap = 4096;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return ENOMEM;
        size_t need = which == CTL_STATUS    ? node_status_json(&st, buf, cap)
                      : which == CTL_MEMBERS ? node_members_text(&st, buf, cap)
                                             : node_metrics_render(fs->node, buf, cap);
        if (which == CTL_METRICS && need < cap)
            need += fs_inval_metrics(fs, buf + need, cap - need);
        if (which == CTL_METRICS && need < cap)
            need += fs_flush_metrics(fs, buf + need, cap - need);
        if (need < cap) {
            *out = buf;
            *len = need;
            return 0;
        }
        free(buf);
        cap = need + 1; /* metrics may grow between two renderings: loop */
    }
}

int fs_ctl_metrics(struct fs *fs, char **out, size_t *len)
{
    return render(fs, CTL_METRICS, out, len);
}

static int ctl_stat(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_blksize = 4096;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    st->st_atim = st->st_mtim = st->st_ctim = now;
    if (ino == FS_CTL_DIR_INO) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    if (ino == FS_CTL_EVENTS_INO) { /* a stream: no length */
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        return 0;
    }
    char *text;
    size_t len;
    int rc = render(fs, (enum ctl_file)(ino - FS_CTL_DIR_INO - 1), &text, &len);
    if (rc)
        return rc;
    free(text);
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t)len;
    st->st_blocks = (blkcnt_t)((len + 511) / 512);
    return 0;
}

static void reply_entry(fuse_req_t req, struct fs *fs, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    int rc = ctl_stat(fs, ino, &e.attr);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    e.ino = ino;
    e.generation = 1;
    e.entry_timeout = fs->entry_timeout;
    e.attr_timeout = 0; /* sizes change with every rendering */
    fuse_reply_entry(req, &e);
}

void fs_ctl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *fs = fuse_req_userdata(req);
    if (parent == FUSE_ROOT_ID && !strcmp(name, FS_CTL_NAME)) {
        reply_entry(req, fs, FS_CTL_DIR_INO);
        return;
    }
    if (!is_ctl(parent)) {
        fs_op_lookup(req, parent, name);
        return;
    }
    for (int i = 0; i < CTL_N; i++)
        if (parent == FS_CTL_DIR_INO && !strcmp(name, ctl_names[i])) {
            reply_entry(req, fs, FS_CTL_DIR_INO + 1 + (fuse_ino_t)i);
            return;
        }
    fuse_reply_err(req, parent == FS_CTL_DIR_INO ? ENOENT : ENOTDIR);
}

void fs_ctl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_ctl(ino)) {
        fs_op_getattr(req, ino, fi);
        return;
    }
    struct stat st;
    int rc = ctl_stat(fuse_req_userdata(req), ino, &st);
    if (rc)
        fuse_reply_err(req, rc);
    else
        fuse_reply_attr(req, &st, 0);
}

void fs_ctl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi)
{
    if (is_ctl(ino))
        fuse_reply_err(req, EROFS);
    else
        fs_op_setattr(req, ino, attr, to_set, fi);
}

void fs_ctl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_ctl(ino)) {
        fs_op_open(req, ino, fi);
        return;
    }
    if (ino == FS_CTL_DIR_INO) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (ino == FS_CTL_EVENTS_INO) {
        int rc = fs_events_open(fuse_req_userdata(req), fi);
        if (rc)
            fuse_reply_err(req, rc);
        else if (fuse_reply_open(req, fi) == -ENOENT)
            fs_events_release(fs_events_handle(fi));
        return;
    }
    struct ctl_handle *h = calloc(1, sizeof(*h));
    int rc = h ? render(fuse_req_userdata(req), (enum ctl_file)(ino - FS_CTL_DIR_INO - 1), &h->text,
                        &h->len)
               : ENOMEM;
    if (rc) {
        free(h);
        fuse_reply_err(req, rc);
        return;
    }
    h->kind = FS_HANDLE_CTL;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1; /* the length differs at every open: no page cache */
    fi->nonseekable = 0;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        free(h->text);
        free(h);
    }
}

static struct ctl_handle *ctl_handle(const struct fuse_file_info *fi)
{
    struct ctl_handle *h = fi ? (struct ctl_handle *)(uintptr_t)fi->fh : NULL;
    return h && h->kind == FS_HANDLE_CTL ? h : NULL;
}

void fs_ctl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    if (!is_ctl(ino)) {
        fs_op_read(req, ino, size, off, fi);
        return;
    }
    struct fs_events *ev = fs_events_handle(fi);
    if (ev) {
        fs_events_read(req, ev, size); /* a stream: the offset means nothing */
        return;
    }
    struct ctl_handle *h = ctl_handle(fi);
    if (!h) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if ((uint64_t)off >= h->len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = h->len - (size_t)off;
    if (n > size)
        n = size;
    /* The reply goes out from a copy: the kernel lets the reader go (and
     * the file be released, which frees the text, on another thread) as
     * soon as it has the data, which can be before writev returns here. */
    char *copy = malloc(n);
    if (!copy) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    memcpy(copy, h->text + off, n);
    fuse_reply_buf(req, copy, n);
    free(copy);
}

void fs_ctl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    if (is_ctl(ino))
        fuse_reply_err(req, EBADF); /* never opened for writing */
    else
        fs_op_write(req, ino, buf, size, off, fi);
}

void fs_ctl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (is_ctl(ino))
        fuse_reply_err(req, 0);
    else
        fs_op_flush(req, ino, fi);
}

void fs_ctl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    if (is_ctl(ino))
        fuse_reply_err(req, 0);
    else
        fs_op_fsync(req, ino, datasync, fi);
}

void fs_ctl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_ctl(ino)) {
        fs_op_release(req, ino, fi);
        return;
    }
    struct fs_events *ev = fs_events_handle(fi);
    if (ev) {
        fs_events_release(ev); /* frees it: fi->fh points nowhere now */
        fuse_reply_err(req, 0);
        return;
    }
    struct ctl_handle *h = ctl_handle(fi);
    if (h) {
        free(h->text);
        free(h);
    }
    fuse_reply_err(req, 0);
}

void fs_ctl_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                 struct fuse_pollhandle *ph)
{
    struct fs_events *ev = is_ctl(ino) ? fs_events_handle(fi) : NULL;
    if (ev) {
        fs_events_poll(req, ev, ph);
        return;
    }
    /* Everything else is always ready, as a regular file is. */
    if (ph)
        fuse_pollhandle_destroy(ph);
    fuse_reply_poll(req, POLLIN | POLLOUT);
}

void fs_ctl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_ctl(ino)) {
        fs_op_opendir(req, ino, fi);
        return;
    }
    if (ino != FS_CTL_DIR_INO) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fi->fh = 0; /* the listing is fixed: nothing to keep */
    fuse_reply_open(req, fi);
}

static void ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi, bool plus)
{
    if (!is_ctl(ino)) {
        if (plus)
            fs_op_readdirplus(req, ino, size, off, fi);
        else
            fs_op_readdir(req, ino, size, off, fi);
        return;
    }
    struct fs *fs = fuse_req_userdata(req);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (size > 65536)
        size = 65536;
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    /* Offsets: 0 ".", 1 "..", 2.. the files; an entry's offset is the next. */
    for (off_t i = off; i < 2 + CTL_N; i++) {
        const char *name = i == 0 ? "." : i == 1 ? ".." : ctl_names[i - 2];
        fuse_ino_t child = i == 0   ? FS_CTL_DIR_INO
                           : i == 1 ? FUSE_ROOT_ID
                                    : FS_CTL_DIR_INO + 1 + (fuse_ino_t)(i - 2);
        size_t n;
        if (plus) {
            struct fuse_entry_param e;
            memset(&e, 0, sizeof(e));
            /* "." and "..": attributes only, no lookup count (FUSE rule) */
            if (i >= 2) {
                if (ctl_stat(fs, child, &e.attr))
                    break;
                e.ino = child;
                e.generation = 1;
                e.entry_timeout = fs->entry_timeout;
            } else {
                e.attr.st_ino = child;
                e.attr.st_mode = S_IFDIR;
            }
            n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
        } else {
            struct stat st = {.st_ino = child, .st_mode = i < 2 ? S_IFDIR : S_IFREG};
            n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        }
        if (n > size - used)
            break;
        used += n;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

void fs_ctl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    ctl_readdir(req, ino, size, off, fi, false);
}

void fs_ctl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    ctl_readdir(req, ino, size, off, fi, true);
}

void fs_ctl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (is_ctl(ino))
        fuse_reply_err(req, 0);
    else
        fs_op_releasedir(req, ino, fi);
}

/* ---- everything that would change it: EROFS ---- */

void fs_ctl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_mknod(req, parent, name, mode, rdev);
}

void fs_ctl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_mkdir(req, parent, name, mode);
}

void fs_ctl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_symlink(req, link, parent, name);
}

void fs_ctl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    if (is_ctl(ino) || is_ctl_name(newparent, newname))
        fuse_reply_err(req, EROFS);
    else
        fs_op_link(req, ino, newparent, newname);
}

void fs_ctl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_unlink(req, parent, name);
}

void fs_ctl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_rmdir(req, parent, name);
}

void fs_ctl_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                   const char *newname, unsigned int flags)
{
    if (is_ctl_name(parent, name) || is_ctl_name(newparent, newname))
        fuse_reply_err(req, EROFS);
    else
        fs_op_rename(req, parent, name, newparent, newname, flags);
}

void fs_ctl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi)
{
    if (is_ctl_name(parent, name))
        fuse_reply_err(req, EROFS);
    else
        fs_op_create(req, parent, name, mode, fi);
}

void fs_ctl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    if (is_ctl(ino))
        fuse_reply_err(req, ENODATA);
    else
        fs_op_getxattr(req, ino, name, size);
}

void fs_ctl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    if (!is_ctl(ino))
        fs_op_listxattr(req, ino, size);
    else if (size == 0)
        fuse_reply_xattr(req, 0);
    else
        fuse_reply_buf(req, NULL, 0);
}

void fs_ctl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags)
{
    if (is_ctl(ino))
        fuse_reply_err(req, EROFS);
    else
        fs_op_setxattr(req, ino, name, value, size, flags);
}

void fs_ctl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    if (is_ctl(ino))
        fuse_reply_err(req, EROFS);
    else
        fs_op_removexattr(req, ino, name);
}
