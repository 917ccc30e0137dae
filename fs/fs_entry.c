/* fs_entry.c - FUSE handlers for names and metadata (lookup, getattr,
 * setattr, mkdir, unlink, rmdir, rename, statfs) and the helpers that turn
 * an inode into the path a command names.
 *
 * Every handler validates what the kernel sends (name lengths, flags),
 * returns exactly one reply, and maps errors to the errnos of README.md. */
#include "fs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

int64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int fs_node_errno(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case ENOSPC:
    case ENOMEM:
    case EIO:
    case EINVAL:
    case ENAMETOOLONG:
    case EFBIG:
    case ETIMEDOUT: /* no quorum: the outcome of a write is unknown */
        return rc;
    default:
        return EIO; /* ESHUTDOWN (stopping) and anything unexpected */
    }
}

void fs_attr_to_stat(const struct store_attr *a, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_size = (off_t)a->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim.tv_sec = a->atime_ns / 1000000000LL;
    st->st_atim.tv_nsec = a->atime_ns % 1000000000LL;
    st->st_mtim.tv_sec = a->mtime_ns / 1000000000LL;
    st->st_mtim.tv_nsec = a->mtime_ns % 1000000000LL;
    st->st_ctim.tv_sec = a->ctime_ns / 1000000000LL;
    st->st_ctim.tv_nsec = a->ctime_ns % 1000000000LL;
}

void fs_entry_fill(struct fs *fs, const struct store_attr *a, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = a->ino;
    e->generation = 1; /* inode numbers are never reused */
    fs_attr_to_stat(a, &e->attr);
    e->attr_timeout = fs->attr_timeout;
    e->entry_timeout = fs->entry_timeout;
}

void fs_entry_hand(struct fs *fs, const struct store_attr *a, uint64_t gen,
                   struct fuse_entry_param *e)
{
    fs_entry_fill(fs, a, e);
    if (!fs_known_ref(&fs->known, a->ino, gen))
        e->attr_timeout = e->entry_timeout = 0;
}

int fs_path_of(struct fs *fs, uint64_t ino, char **out, size_t *len)
{
    size_t cap = fs->limits.max_path_bytes + 1;
    char *buf = malloc(cap);
    if (!buf)
        return ENOMEM;
    struct store_txn *t;
    int rc = store_txn_begin(fs->store, &t);
    if (!rc) {
        rc = store_path(t, ino, buf, cap, len);
        store_txn_end(t);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int fs_path_child(struct fs *fs, uint64_t parent, const char *name, char **out, size_t *len)
{
    size_t nlen = strlen(name);
    int rc = store_name_check(name, nlen, &fs->limits);
    if (rc)
        return rc;
    char *p;
    size_t plen;
    if ((rc = fs_path_of(fs, parent, &p, &plen)))
        return rc;
    size_t total = (plen == 1 ? 0 : plen) + 1 + nlen;
    if (total > fs->limits.max_path_bytes) {
        free(p);
        return ENAMETOOLONG;
    }
    char *buf = realloc(p, total + 1);
    if (!buf) {
        free(p);
        return ENOMEM;
    }
    size_t at = plen == 1 ? 0 : plen;
    buf[at] = '/';
    memcpy(buf + at + 1, name, nlen);
    buf[total] = 0;
    *out = buf;
    *len = total;
    return 0;
}

int fs_propose_ino(struct fs *fs, uint64_t ino, struct store_cmd *cmd, struct store_result *res)
{
    /* The path is resolved, then the command applied: a rename in between
     * makes the inode guard fail. Resolve again and retry while the inode
     * keeps moving; a conflict at an unchanged path is the caller's. */
    for (int attempt = 0;; attempt++) {
        char *path;
        size_t len;
        int rc = fs_path_of(fs, ino, &path, &len);
        if (rc)
            return rc;
        cmd->path = path;
        cmd->path_len = len;
        cmd->has_expected_ino = true;
        cmd->expected_ino = ino;
        rc = node_propose(fs->node, cmd, res);
        cmd->path = NULL;
        if (rc || res->err != STORE_ECONFLICT || attempt == 3) {
            free(path);
            return fs_node_errno(rc);
        }
        bool moved;
        rc = fs_ino_moved(fs, ino, path, len, &moved);
        free(path);
        if (rc == ENOENT) {
            res->err = ENOENT; /* deleted meanwhile */
            return 0;
        }
        if (rc)
            return rc;
        if (!moved)
            return 0;
    }
}

int fs_ino_moved(struct fs *fs, uint64_t ino, const char *path, size_t len, bool *moved)
{
    char *now;
    size_t now_len;
    int rc = fs_path_of(fs, ino, &now, &now_len);
    if (rc)
        return rc;
    *moved = now_len != len || memcmp(now, path, len);
    free(now);
    return 0;
}

/* A lookup's name and where it stands, kept across its barrier. */
struct lookup_later {
    struct fs_later l; /* first: run gets &l */
    fuse_req_t req;
    fuse_ino_t parent;
    uint64_t gen;
    size_t len;
    char name[];
};

/* The lookup after its barrier (rc: the barrier's errno). */
static void lookup_finish(struct fs *fs, fuse_req_t req, fuse_ino_t parent, const char *name,
                          size_t len, uint64_t gen, int rc)
{
    struct fuse_entry_param e;
    struct store_attr a;
    struct store_txn *t;
    if (!rc && !(rc = store_txn_begin(fs->store, &t))) {
        rc = store_lookup(t, parent, name, len, &a);
        store_txn_end(t);
    }
    /* ENOENT is not cached by the kernel (no negative entries): a name
     * created elsewhere is found by the very next lookup. */
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fs_entry_hand(fs, &a, gen, &e);
    fuse_reply_entry(req, &e);
}

static void lookup_run(struct fs_later *l, int rc)
{
    struct lookup_later *k = (struct lookup_later *)l;
    lookup_finish(l->fs, k->req, k->parent, k->name, k->len, k->gen, rc);
    free(k);
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *fs = fuse_req_userdata(req);
    size_t len = strlen(name);
    /* Taken before the barrier, as before any read (fs_entry_hand). */
    uint64_t gen = fs_known_gen(&fs->known);
    /* The name is looked up after a read barrier, like any other read: a
     * name answered from this member's state alone could be one that was
     * renamed away or deleted elsewhere, and the open of the inode it
     * names would then read (or a write replace) another key's value. A
     * member behind the leader answered the old inode for every such
     * name (tests/bats/cluster.bats, "a member behind the leader never
     * reads through a name renamed away elsewhere"). On a serializable
     * mount the barrier returns at once and the lookup finishes here;
     * otherwise it is not waited for here: the lookup goes on on the later
     * thread (fs_later.c), and this FUSE thread takes the next request. */
    int rc = store_name_check(name, len, &fs->limits);
    struct lookup_later *k = NULL;
    if (!rc && !(k = malloc(sizeof(*k) + len + 1)))
        rc = ENOMEM;
    if (rc) {
        lookup_finish(fs, req, parent, name, len, gen, rc);
        return;
    }
    k->l.run = lookup_run;
    k->req = req;
    k->parent = parent;
    k->gen = gen;
    k->len = len;
    memcpy(k->name, name, len + 1);
    fs_later_after_barrier(fs, &k->l);
}

/* Inode numbers are stable and never reused, so there is no per-inode
 * memory to free; the count tells the cache notifier what the kernel
 * still holds. */
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct fs *fs = fuse_req_userdata(req);
    fs_known_forget(&fs->known, ino, nlookup);
    fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct fs *fs = fuse_req_userdata(req);
    for (size_t i = 0; i < count; i++)
        fs_known_forget(&fs->known, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* Replies with ino's attributes; an open writer of the caller's process
 * sees its own uncommitted size (never cached: timeout 0). */
static void reply_attr(fuse_req_t req, struct fs *fs, const struct store_attr *a,
                       struct fuse_file_info *fi)
{
    struct stat st;
    fs_attr_to_stat(a, &st);
    double timeout = fs->attr_timeout;
    uint64_t size;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct fs_handle *h = fs_file_handle(fi);
    if (a->type == STORE_TYPE_FILE &&
        fs_table_writer_size(fs, a->ino, h ? (uint64_t)(uintptr_t)h : 0, ctx->pid, &size)) {
        st.st_size = (off_t)size;
        st.st_blocks = (blkcnt_t)((size + 511) / 512);
        timeout = 0;
    }
    fuse_reply_attr(req, &st, timeout);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_attr a;
    struct store_txn *t;
    /* The member's own state, without asking the leader: the kernel caches
     * attributes anyway, and `stat` of the mount must not hang in a
     * minority. Contents (open) and listings (opendir) are linearizable. */
    int rc = store_txn_begin(fs->store, &t);
    if (!rc) {
        rc = store_getattr(t, ino, &a);
        store_txn_end(t);
    }
    /* fstat of a file deleted while open: its last attributes, nlink 0. */
    if (rc == ENOENT && fs_table_orphan_attr(fs, ino, &a) == 0)
        rc = 0;
    /* Any other inode the kernel asks about that is gone was reached by a
     * name that now leads elsewhere (deleted, maybe made again: a new
     * inode). The kernel asks for attributes between its lookup and the
     * open, for the permission check (default_permissions): ENOENT there
     * failed the open as if the name did not exist. ESTALE makes it walk
     * the path again (LOOKUP_REVAL), as for an open (fs_op_open). Found by
     * tests/chaos with the kernel's fuse tracepoints: LOOKUP answered, no
     * OPEN sent, a GETATTR answered ENOENT, the read reported the key
     * absent although it had been written again before the read began. */
    if (rc == ENOENT)
        rc = ESTALE;
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    reply_attr(req, fs, &a, fi);
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                   struct fuse_file_info *fi)
{
    struct fs *fs = fuse_req_userdata(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct store_attr a;
    struct store_txn *t;
    struct fs_handle *borrowed = NULL; /* see below */
    int64_t now = fs_now_ns();
    int rc;

    if ((rc = store_txn_begin(fs->store, &t)))
        goto fail;
    rc = store_getattr(t, ino, &a);
    store_txn_end(t);
    if (rc)
        goto fail;

    /* ftruncate through an open writer, or truncate(2) by the process that
     * is writing the file: the size belongs to its uncommitted value. A
     * handle found by the process (not given by the kernel) is borrowed:
     * its RELEASE may run meanwhile, and then the size is proposed. */
    struct fs_handle *h = fs_file_handle(fi);
    if (h && !h->writable)
        h = NULL;
    if ((to_set & FUSE_SET_ATTR_SIZE) && a.type == STORE_TYPE_FILE) {
        if (!h)
            h = borrowed = fs_table_writer_of(fs, ino, ctx->pid);
        if (h && h->append)
            h = NULL;
        if (h && h == borrowed) {
            bool by_path = false;
            rc = fs_handle_truncate_path(fs, h, (uint64_t)attr->st_size, now, &a, &by_path);
            if (rc)
                goto fail;
            if (by_path)
                h = NULL; /* closed meanwhile, or poisoned: proposed below */
            else
                to_set &= ~FUSE_SET_ATTR_SIZE;
        } else if (h) {
            if ((rc = fs_handle_truncate(fs, h, (uint64_t)attr->st_size)))
                goto fail;
            to_set &= ~FUSE_SET_ATTR_SIZE;
        }
    }

    struct store_cmd cmd = {.op = STORE_OP_SETATTR, .time_ns = now};
    if (to_set & FUSE_SET_ATTR_MODE) {
        cmd.set_mask |= STORE_SET_MODE;
        cmd.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        cmd.set_mask |= STORE_SET_UID;
        cmd.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        cmd.set_mask |= STORE_SET_GID;
        cmd.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < 0) {
            rc = EINVAL;
            goto fail;
        }
        if ((uint64_t)attr->st_size > fs->limits.max_value_bytes) {
            rc = EFBIG;
            goto fail;
        }
        cmd.set_mask |= STORE_SET_SIZE;
        cmd.size = (uint64_t)attr->st_size;
    }
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
        cmd.set_mask |= STORE_SET_ATIME;
        cmd.atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW)
                           ? now
                           : (int64_t)attr->st_atim.tv_sec * 1000000000LL + attr->st_atim.tv_nsec;
    }
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
        cmd.set_mask |= STORE_SET_MTIME;
        cmd.mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW)
                           ? now
                           : (int64_t)attr->st_mtim.tv_sec * 1000000000LL + attr->st_mtim.tv_nsec;
    }
    /* Explicit times given while a writer holds uncommitted data would be
     * overwritten by its commit: the writer sets them again after it. */
    if (h && (cmd.set_mask & (STORE_SET_ATIME | STORE_SET_MTIME))) {
        fs_handle_lock(h);
        if (h->dirty) {
            if (cmd.set_mask & STORE_SET_MTIME) {
                h->has_mtime = true;
                h->mtime_ns = cmd.mtime_ns;
            }
            if (cmd.set_mask & STORE_SET_ATIME) {
                h->has_atime = true;
                h->atime_ns = cmd.atime_ns;
            }
        }
        pthread_mutex_unlock(&h->mu);
    }

    if (cmd.set_mask || (to_set & FUSE_SET_ATTR_CTIME)) {
        struct store_result res;
        if ((rc = fs_propose_ino(fs, ino, &cmd, &res)))
            goto fail;
        if (res.err) {
            rc = res.err == STORE_ECONFLICT ? ESTALE : res.err;
            goto fail;
        }
        /* A metadata change moves mod_revision; writers that were up to
         * date with the value still are. */
        if (!(cmd.set_mask & STORE_SET_SIZE))
            fs_table_rebase(fs, ino, a.mod_revision, res.attr.mod_revision);
        a = res.attr;
    }
    if (borrowed)
        fs_handle_put(fs, borrowed);
    reply_attr(req, fs, &a, fi);
    return;
fail:
    if (borrowed)
        fs_handle_put(fs, borrowed);
    fuse_reply_err(req, rc);
}

int fs_new_owner(struct fs *fs, fuse_req_t req, uint64_t parent, bool dir, uint32_t *mode,
                 uint32_t *uid, uint32_t *gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct store_txn *t;
    struct store_attr p;
    int rc = store_txn_begin(fs->store, &t);
    if (rc)
        return rc;
    rc = store_getattr(t, parent, &p);
    store_txn_end(t);
    if (rc)
        return rc;
    if (p.type != STORE_TYPE_DIR)
        return ENOTDIR;
    *uid = ctx->uid;
    *gid = ctx->gid;
    if (p.mode & S_ISGID) {
        *gid = p.gid;
        if (dir)
            *mode |= S_ISGID;
    }
    return 0;
}

/* Proposes cmd on the path parent/name. Returns the errno for the reply:
 * a node error, the command's own, or `conflict` for a failed compare. */
static int propose_child(struct fs *fs, uint64_t parent, const char *name, struct store_cmd *cmd,
                         struct store_result *res, int conflict)
{
    char *path = NULL;
    int rc = fs_path_child(fs, parent, name, &path, &cmd->path_len);
    if (!rc) {
        cmd->path = path;
        rc = fs_node_errno(node_propose(fs->node, cmd, res));
        cmd->path = NULL;
        if (!rc)
            rc = res->err == STORE_ECONFLICT ? conflict : res->err;
    }
    free(path);
    return rc;
}

/* MKDIR, or PUT of an empty file that must not exist; replies the entry. */
static void make_entry(fuse_req_t req, uint64_t parent, const char *name, struct store_cmd *cmd)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_result res;
    struct fuse_entry_param e;
    uint64_t gen = fs_known_gen(&fs->known);
    int rc =
        fs_new_owner(fs, req, parent, cmd->op == STORE_OP_MKDIR, &cmd->mode, &cmd->uid, &cmd->gid);
    if (!rc)
        rc = propose_child(fs, parent, name, cmd, &res, EEXIST);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    fs_entry_hand(fs, &res.attr, gen, &e);
    fuse_reply_entry(req, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct store_cmd cmd = {.op = STORE_OP_MKDIR, .time_ns = fs_now_ns(), .mode = mode & 07777};
    make_entry(req, parent, name, &cmd);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    /* Only regular files: the tree holds keys and directories. */
    (void)rdev;
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    struct store_cmd cmd = {.op = STORE_OP_PUT,
                            .time_ns = fs_now_ns(),
                            .mode = mode & 07777,
                            .value = "",
                            .has_expected_revision = true,
                            .expected_revision = 0};
    make_entry(req, parent, name, &cmd);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, enum store_op op)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_cmd cmd = {.op = op, .time_ns = fs_now_ns()};
    struct store_result res;
    fuse_reply_err(req, propose_child(fs, parent, name, &cmd, &res, ESTALE));
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, STORE_OP_DELETE);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, STORE_OP_RMDIR);
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                  const char *newname, unsigned int flags)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_cmd cmd = {.op = STORE_OP_RENAME, .time_ns = fs_now_ns()};
    struct store_result res;
    char *from = NULL, *to = NULL;
    int rc = 0;
    /* RENAME_WHITEOUT (overlayfs) and unknown flags are not ours. */
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
        flags == (RENAME_NOREPLACE | RENAME_EXCHANGE))
        rc = EINVAL;
    cmd.rename_flags = flags;
    if (!rc)
        rc = fs_path_child(fs, parent, name, &from, &cmd.path_len);
    if (!rc)
        rc = fs_path_child(fs, newparent, newname, &to, &cmd.path2_len);
    if (!rc) {
        cmd.path = from;
        cmd.path2 = to;
        rc = fs_node_errno(node_propose(fs->node, &cmd, &res));
        if (!rc)
            rc = res.err;
    }
    free(from);
    free(to);
    fuse_reply_err(req, rc);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    fuse_reply_err(req, EPERM); /* the tree holds keys and directories only */
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    fuse_reply_err(req, EPERM); /* one name per key: a path is its identity */
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct fs *fs = fuse_req_userdata(req);
    struct store_stats st;
    struct statvfs sv;
    (void)ino;
    int rc = store_get_stats(fs->store, &st);
    if (rc) {
        fuse_reply_err(req, rc);
        return;
    }
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_blocks = st.map_bytes / 4096;
    sv.f_bfree = st.used_bytes < st.map_bytes ? (st.map_bytes - st.used_bytes) / 4096 : 0;
    sv.f_bavail = sv.f_bfree;
    /* No inode table to run out of: report room for one inode per block. */
    sv.f_files = sv.f_blocks > st.inodes ? sv.f_blocks : st.inodes;
    sv.f_ffree = sv.f_files - st.inodes;
    sv.f_favail = sv.f_ffree;
    sv.f_namemax = fs->limits.max_name_bytes;
    fuse_reply_statfs(req, &sv);
}
