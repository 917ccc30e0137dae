/* store_apply.c - applying commands to the tree in one write transaction.
 *
 * Design notes
 * 1. Deterministic: a command's result depends only on the tree, the command
 *    bytes and the stored limits; time comes from the command (time_ns).
 *    Never the local clock, never local configuration.
 * 2. Validate, then mutate: each command first checks every precondition
 *    (logical errors go to store_result.err and change nothing); only then
 *    writes. A write can fail only for LMDB reasons (map full, I/O), which
 *    abort the whole batch: nothing of it is applied, the caller gets the
 *    errno and may retry the same indexes.
 * 3. One revision per successful command: every record it touches gets
 *    mod_revision = the new revision, and the global revision advances by one.
 *    A failed command leaves the revision where it was.
 * 4. The applied index is stored in the same transaction as the changes, so
 *    after a crash either both are there or neither; an index at or below it
 *    is skipped, so nothing is applied twice.
 */
#include "fault.h"
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct applier {
    struct store *s;
    MDB_txn *txn;
    struct store_state st;
    const struct store_cmd *c;
    uint64_t rev;       /* the revision this command writes, if it succeeds */
    uint64_t client_id; /* of the command being applied */
    size_t events;      /* history events added in this batch */
    /* Inside a txn: values of dropped files, told to the observer only
     * once the whole txn has applied (store_observer.dropping). */
    bool defer_drops;
    struct drop *drops;
    size_t n_drops, cap_drops;
};

struct drop {
    struct store_attr attr;
    void *data;
    size_t len;
};

/* ---- change records (reported after commit) ---- */

static int change_add(struct applier *a, enum store_change_kind kind, uint64_t ino, uint64_t parent,
                      const char *name, size_t name_len)
{
    struct store *s = a->s;
    if (s->n_changes == s->cap_changes) {
        size_t cap = s->cap_changes ? s->cap_changes * 2 : 64;
        struct store_change_rec *p = fault_realloc(s->changes, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        s->changes = p;
        s->cap_changes = cap;
    }
    if (s->names_len + name_len > s->names_cap) {
        size_t cap = s->names_cap ? s->names_cap : 4096;
        while (cap < s->names_len + name_len)
            cap *= 2;
        char *p = fault_realloc(s->change_names, cap);
        if (!p)
            return ENOMEM;
        s->change_names = p;
        s->names_cap = cap;
    }
    struct store_change_rec *r = &s->changes[s->n_changes++];
    r->kind = kind;
    r->ino = ino;
    r->parent = parent;
    r->name_off = s->names_len;
    r->name_len = name_len;
    r->client_id = a->client_id;
    if (name_len)
        memcpy(s->change_names + s->names_len, name, name_len);
    s->names_len += name_len;
    return 0;
}

/* ---- record writes ---- */

static int inode_put(struct applier *a, const struct store_inode *in)
{
    unsigned char kb[8], vb[STORE_INODE_REC_MAX];
    store_u64be_put(kb, in->attr.ino);
    MDB_val k = {.mv_size = 8, .mv_data = kb};
    MDB_val v = {.mv_size = store_inode_encode(in, vb), .mv_data = vb};
    return store_mdb_errno(mdb_put(a->txn, a->s->inodes, &k, &v, 0));
}

static int inode_del(struct applier *a, uint64_t ino)
{
    unsigned char kb[8];
    store_u64be_put(kb, ino);
    MDB_val k = {.mv_size = 8, .mv_data = kb};
    int rc = mdb_del(a->txn, a->s->inodes, &k, NULL);
    return rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc);
}

static int dirent_put(struct applier *a, uint64_t parent, const char *name, size_t len,
                      uint64_t ino, enum store_type type)
{
    unsigned char kb[STORE_DIRENT_KEY_MAX], vb[STORE_DIRENT_VAL_LEN];
    MDB_val k = {.mv_size = store_dirent_key(parent, name, len, kb), .mv_data = kb};
    store_dirent_val_encode(ino, type, vb);
    MDB_val v = {.mv_size = sizeof(vb), .mv_data = vb};
    return store_mdb_errno(mdb_put(a->txn, a->s->dirents, &k, &v, 0));
}

static int dirent_del(struct applier *a, uint64_t parent, const char *name, size_t len)
{
    unsigned char kb[STORE_DIRENT_KEY_MAX];
    MDB_val k = {.mv_size = store_dirent_key(parent, name, len, kb), .mv_data = kb};
    int rc = mdb_del(a->txn, a->s->dirents, &k, NULL);
    return rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc);
}

/* Reserves len bytes for ino's value (next to its inode record, see
 * store_value_key): *out points into the map (valid until the next write
 * in this txn). */
static int data_reserve(struct applier *a, uint64_t ino, size_t len, void **out)
{
    unsigned char kb[STORE_VALUE_KEY_LEN];
    store_value_key(ino, kb);
    MDB_val k = {.mv_size = sizeof(kb), .mv_data = kb};
    MDB_val v = {.mv_size = len, .mv_data = NULL};
    *out = NULL; /* also on failure: -O3 cannot see that rc != 0 stays non-zero */
    int rc = mdb_put(a->txn, a->s->inodes, &k, &v, MDB_RESERVE);
    if (rc)
        return store_mdb_errno(rc);
    *out = v.mv_data;
    return 0;
}

static int data_put(struct applier *a, uint64_t ino, const void *data, size_t len)
{
    void *dst;
    int rc = data_reserve(a, ino, len, &dst);
    if (!rc && len)
        memcpy(dst, data, len);
    return rc;
}

static int data_get(struct applier *a, uint64_t ino, const void **data, size_t *len)
{
    unsigned char kb[STORE_VALUE_KEY_LEN];
    store_value_key(ino, kb);
    MDB_val k = {.mv_size = sizeof(kb), .mv_data = kb}, v;
    *data = NULL; /* also on failure, as in data_reserve */
    *len = 0;
    int rc = mdb_get(a->txn, a->s->inodes, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

static int data_del(struct applier *a, uint64_t ino)
{
    unsigned char kb[STORE_VALUE_KEY_LEN];
    store_value_key(ino, kb);
    MDB_val k = {.mv_size = sizeof(kb), .mv_data = kb};
    int rc = mdb_del(a->txn, a->s->inodes, &k, NULL);
    return rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc);
}

/* ---- helpers ---- */

static void split(const char *path, size_t len, size_t *parent_len, const char **name,
                  size_t *name_len)
{
    size_t i = len;
    while (i > 0 && path[i - 1] != '/')
        i--;
    /* path is checked: absolute, so i >= 1 */
    *parent_len = i == 1 ? 1 : i - 1;
    *name = path + i;
    *name_len = len - i;
}

/* Where a path lives: its parent directory and, if it exists, its entry. */
struct place {
    struct store_inode parent;
    const char *name;
    size_t name_len;
    bool exists;
    struct store_inode node;
};

/* Resolves the parent of a checked, non-root path and looks the name up.
 * Logical errors (ENOENT, ENOTDIR of the parent) go to *err. */
static int place_find(struct applier *a, const char *path, size_t len, struct place *p, int *err)
{
    size_t plen;
    split(path, len, &plen, &p->name, &p->name_len);
    int rc = store_walk(a->s, a->txn, path, plen, &p->parent);
    if (rc == ENOENT || rc == ENOTDIR) {
        *err = rc;
        return 0;
    }
    if (rc)
        return rc;
    if (p->parent.attr.type != STORE_TYPE_DIR) {
        *err = ENOTDIR;
        return 0;
    }
    uint64_t ino;
    enum store_type type;
    rc = store_dirent_get(a->s, a->txn, p->parent.attr.ino, p->name, p->name_len, &ino, &type);
    if (rc == ENOENT) {
        p->exists = false;
        return 0;
    }
    if (rc)
        return rc;
    rc = store_inode_load(a->s, a->txn, ino, &p->node);
    if (rc == ENOENT || (!rc && p->node.attr.type != type))
        return EIO;
    if (rc)
        return rc;
    p->exists = true;
    return 0;
}

static bool is_reserved(const struct place *p)
{
    return p->parent.attr.ino == STORE_ROOT_INO && p->name_len == sizeof(STORE_RESERVED_NAME) - 1 &&
           !memcmp(p->name, STORE_RESERVED_NAME, p->name_len);
}

/* The compare of the command against the entry at its (source) path. */
static int compare(const struct store_cmd *c, const struct place *p)
{
    if (c->has_expected_revision) {
        if (c->expected_revision == 0) {
            if (p->exists)
                return STORE_ECONFLICT;
        } else if (!p->exists || p->node.attr.mod_revision != c->expected_revision) {
            return STORE_ECONFLICT;
        }
    }
    if (c->has_expected_ino && (!p->exists || p->node.attr.ino != c->expected_ino))
        return STORE_ECONFLICT;
    return 0;
}

static int path_checks(struct applier *a, const char *path, size_t len)
{
    return store_path_check(path, len, &a->s->limits);
}

static bool is_root(const char *path, size_t len)
{
    return len == 1 && path[0] == '/';
}

/* Marks in as changed by this command. */
static void touch(struct applier *a, struct store_inode *in, bool content)
{
    in->attr.ctime_ns = a->c->time_ns;
    if (content)
        in->attr.mtime_ns = a->c->time_ns;
    in->attr.mod_revision = a->rev;
    in->attr.version++;
}

/* A directory gained or lost entries (nlink_delta: subdirectories). */
static int dir_changed(struct applier *a, struct store_inode *dir, int nlink_delta)
{
    touch(a, dir, true);
    dir->attr.nlink = (uint32_t)((int64_t)dir->attr.nlink + nlink_delta);
    int rc = inode_put(a, dir);
    if (!rc)
        rc = change_add(a, STORE_CHANGE_INODE, dir->attr.ino, 0, NULL, 0);
    return rc;
}

static void new_inode(struct applier *a, struct store_inode *in, enum store_type type,
                      const struct place *p)
{
    const struct store_cmd *c = a->c;
    memset(in, 0, sizeof(*in));
    in->attr.ino = a->st.next_ino++;
    in->attr.type = type;
    in->attr.mode = (c->mode & 07777) | (type == STORE_TYPE_DIR ? S_IFDIR : S_IFREG);
    in->attr.uid = c->uid;
    in->attr.gid = c->gid;
    in->attr.nlink = type == STORE_TYPE_DIR ? 2 : 1;
    in->attr.atime_ns = in->attr.mtime_ns = in->attr.ctime_ns = c->time_ns;
    in->attr.create_revision = in->attr.mod_revision = a->rev;
    in->attr.version = 1;
    in->attr.parent = p->parent.attr.ino;
    memcpy(in->name, p->name, p->name_len);
    in->name_len = p->name_len;
    a->st.inodes++;
}

static int drop_defer(struct applier *a, const struct store_attr *attr, const void *d, size_t n)
{
    if (a->n_drops == a->cap_drops) {
        size_t cap = a->cap_drops ? a->cap_drops * 2 : 8;
        struct drop *p = realloc(a->drops, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        a->drops = p;
        a->cap_drops = cap;
    }
    struct drop *dr = &a->drops[a->n_drops];
    if (!(dr->data = malloc(n ? n : 1)))
        return ENOMEM;
    memcpy(dr->data, d, n);
    dr->len = n;
    dr->attr = *attr;
    a->n_drops++;
    return 0;
}

/* Ends deferring: tells the observer of the deferred drops if tell. */
static void drops_end(struct applier *a, bool tell)
{
    for (size_t i = 0; i < a->n_drops; i++) {
        if (tell)
            a->s->obs.dropping(a->s->obs.ctx, &a->drops[i].attr, a->drops[i].data, a->drops[i].len);
        free(a->drops[i].data);
    }
    free(a->drops);
    a->drops = NULL;
    a->n_drops = a->cap_drops = 0;
    a->defer_drops = false;
}

/* Removes the entry p names (file or empty directory) and its records. */
static int drop_entry(struct applier *a, struct place *p)
{
    struct store *s = a->s;
    uint64_t ino = p->node.attr.ino;
    int rc;
    if (p->node.attr.type == STORE_TYPE_FILE) {
        if (s->obs.dropping) {
            const void *d;
            size_t n;
            if ((rc = data_get(a, ino, &d, &n)))
                return rc;
            if (a->defer_drops)
                rc = drop_defer(a, &p->node.attr, d, n);
            else
                s->obs.dropping(s->obs.ctx, &p->node.attr, d, n);
            if (rc)
                return rc;
        }
        if ((rc = data_del(a, ino)) || (rc = store_lease_attach(s, a->txn, ino, 0)))
            return rc;
    }
    if ((rc = inode_del(a, ino)) || (rc = dirent_del(a, p->parent.attr.ino, p->name, p->name_len)))
        return rc;
    a->st.inodes--;
    return change_add(a, STORE_CHANGE_INODE_GONE, ino, 0, NULL, 0);
}

/* Is directory ino empty? Its nlink counts subdirectories only, so files
 * need a look at the first dirent under it. */
static int dir_empty(struct applier *a, const struct store_inode *dir, bool *out)
{
    if (dir->attr.nlink != 2) {
        *out = false;
        return 0;
    }
    MDB_cursor *cur;
    unsigned char kb[8];
    store_u64be_put(kb, dir->attr.ino);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    int rc = mdb_cursor_open(a->txn, a->s->dirents, &cur);
    if (rc)
        return store_mdb_errno(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    *out = rc == MDB_NOTFOUND || (!rc && store_u64be_get(k.mv_data) != dir->attr.ino);
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? store_mdb_errno(rc) : 0;
}

static void set_attr_result(struct store_result *res, const struct store_inode *in)
{
    res->has_attr = true;
    res->attr = in->attr;
}

/* The common start of a command on c->path: checks the path, refuses the
 * root with root_err, finds the place and runs the compare. */
static int find_target(struct applier *a, struct store_result *res, int root_err, struct place *p)
{
    const struct store_cmd *c = a->c;
    int rc;
    if ((res->err = path_checks(a, c->path, c->path_len)))
        return 0;
    if (is_root(c->path, c->path_len)) {
        res->err = root_err;
        return 0;
    }
    if ((rc = place_find(a, c->path, c->path_len, p, &res->err)) || res->err)
        return rc;
    res->err = compare(c, p);
    return 0;
}

/* ---- commands ----
 * Each returns 0 with res->err set (0 or a logical errno), or a fatal errno
 * (LMDB, memory) that aborts the batch. */

/* A PUT's lease, if it names one, must exist. */
static int lease_check(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    uint64_t ttl;
    if (!c->has_lease || !c->lease)
        return 0;
    int rc = store_lease_load(a->s, a->txn, c->lease, &ttl);
    if (rc == ENOKEY)
        return res->err = ENOKEY, 0;
    return rc;
}

static int cmd_put(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    struct place p;
    int rc;
    if ((rc = find_target(a, res, EISDIR, &p)) || res->err)
        return rc;
    if (c->value_len > a->s->limits.max_value_bytes)
        return res->err = EFBIG, 0;
    if (p.exists && p.node.attr.type == STORE_TYPE_DIR)
        return res->err = EISDIR, 0;
    if (!p.exists && is_reserved(&p))
        return res->err = EPERM, 0;
    if ((rc = lease_check(a, res)) || res->err)
        return rc;

    if (p.exists) {
        touch(a, &p.node, true);
        p.node.attr.size = c->value_len;
        p.node.value_crc = store_value_crc(c->value, c->value_len);
        if ((rc = data_put(a, p.node.attr.ino, c->value, c->value_len)) ||
            (rc = inode_put(a, &p.node)) ||
            (rc = change_add(a, STORE_CHANGE_INODE, p.node.attr.ino, 0, NULL, 0)) ||
            (c->has_lease && (rc = store_lease_attach(a->s, a->txn, p.node.attr.ino, c->lease))))
            return rc;
        set_attr_result(res, &p.node);
        return 0;
    }
    struct store_inode in;
    new_inode(a, &in, STORE_TYPE_FILE, &p);
    in.attr.size = c->value_len;
    in.value_crc = store_value_crc(c->value, c->value_len);
    if ((rc = inode_put(a, &in)) || (rc = data_put(a, in.attr.ino, c->value, c->value_len)) ||
        (rc = dirent_put(a, p.parent.attr.ino, p.name, p.name_len, in.attr.ino, STORE_TYPE_FILE)) ||
        (rc = dir_changed(a, &p.parent, 0)) ||
        (rc = change_add(a, STORE_CHANGE_NAME, 0, p.parent.attr.ino, p.name, p.name_len)) ||
        (c->has_lease && (rc = store_lease_attach(a->s, a->txn, in.attr.ino, c->lease))))
        return rc;
    set_attr_result(res, &in);
    return 0;
}

static int cmd_append(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    struct place p;
    int rc;
    if ((rc = find_target(a, res, EISDIR, &p)) || res->err)
        return rc;
    if (!p.exists)
        return res->err = ENOENT, 0;
    if (p.node.attr.type == STORE_TYPE_DIR)
        return res->err = EISDIR, 0;
    uint64_t old = p.node.attr.size;
    if (c->value_len > a->s->limits.max_value_bytes ||
        old + c->value_len > a->s->limits.max_value_bytes)
        return res->err = EFBIG, 0;

    const void *d;
    size_t n;
    if ((rc = data_get(a, p.node.attr.ino, &d, &n)))
        return rc;
    if (n != old)
        return EIO;
    /* MDB_RESERVE may move the old value: copy it out first. */
    void *tmp = NULL;
    if (old) {
        tmp = malloc(old);
        if (!tmp)
            return ENOMEM;
        memcpy(tmp, d, old);
    }
    void *dst;
    rc = data_reserve(a, p.node.attr.ino, old + c->value_len, &dst);
    if (!rc) {
        if (old)
            memcpy(dst, tmp, old);
        if (c->value_len)
            memcpy((char *)dst + old, c->value, c->value_len);
        p.node.value_crc = store_value_crc(dst, old + c->value_len);
    }
    free(tmp);
    if (rc)
        return rc;
    touch(a, &p.node, true);
    p.node.attr.size = old + c->value_len;
    if ((rc = inode_put(a, &p.node)) ||
        (rc = change_add(a, STORE_CHANGE_INODE, p.node.attr.ino, 0, NULL, 0)))
        return rc;
    set_attr_result(res, &p.node);
    return 0;
}

static int cmd_delete(struct applier *a, struct store_result *res, bool dir)
{
    struct place p;
    int rc;
    if ((rc = find_target(a, res, dir ? EBUSY : EISDIR, &p)) || res->err)
        return rc;
    if (!p.exists)
        return res->err = ENOENT, 0;
    if (dir && p.node.attr.type != STORE_TYPE_DIR)
        return res->err = ENOTDIR, 0;
    if (!dir && p.node.attr.type == STORE_TYPE_DIR)
        return res->err = EISDIR, 0;
    if (dir) {
        bool empty;
        if ((rc = dir_empty(a, &p.node, &empty)))
            return rc;
        if (!empty)
            return res->err = ENOTEMPTY, 0;
    }
    if ((rc = drop_entry(a, &p)) || (rc = dir_changed(a, &p.parent, dir ? -1 : 0)) ||
        (rc = change_add(a, STORE_CHANGE_NAME, 0, p.parent.attr.ino, p.name, p.name_len)))
        return rc;
    return 0;
}

static int cmd_mkdir(struct applier *a, struct store_result *res)
{
    struct place p;
    int rc;
    if ((rc = find_target(a, res, EEXIST, &p)) || res->err)
        return rc;
    if (p.exists)
        return res->err = EEXIST, 0;
    if (is_reserved(&p))
        return res->err = EPERM, 0;
    struct store_inode in;
    new_inode(a, &in, STORE_TYPE_DIR, &p);
    if ((rc = inode_put(a, &in)) ||
        (rc = dirent_put(a, p.parent.attr.ino, p.name, p.name_len, in.attr.ino, STORE_TYPE_DIR)) ||
        (rc = dir_changed(a, &p.parent, 1)) ||
        (rc = change_add(a, STORE_CHANGE_NAME, 0, p.parent.attr.ino, p.name, p.name_len)))
        return rc;
    set_attr_result(res, &in);
    return 0;
}

/* Is `anc` the directory `ino` or one of its ancestors? */
static int is_ancestor(struct applier *a, uint64_t anc, uint64_t ino, bool *out)
{
    unsigned depth = 0;
    for (;;) {
        if (ino == anc) {
            *out = true;
            return 0;
        }
        if (ino == STORE_ROOT_INO) {
            *out = false;
            return 0;
        }
        struct store_inode in;
        int rc = store_inode_load(a->s, a->txn, ino, &in);
        if (rc)
            return rc == ENOENT ? EIO : rc;
        ino = in.attr.parent;
        if (++depth > STORE_MAX_PATH_BYTES_BOUND / 2)
            return EIO; /* a loop: corruption */
    }
}

/* Moves entry `node` (currently at src) to the name of dst. */
static int move_entry(struct applier *a, struct store_inode *node, const struct place *src,
                      const struct place *dst)
{
    int rc;
    if ((rc = dirent_put(a, dst->parent.attr.ino, dst->name, dst->name_len, node->attr.ino,
                         node->attr.type)))
        return rc;
    node->attr.parent = dst->parent.attr.ino;
    memcpy(node->name, dst->name, dst->name_len);
    node->name_len = dst->name_len;
    touch(a, node, false);
    if ((rc = inode_put(a, node)))
        return rc;
    (void)src;
    return change_add(a, STORE_CHANGE_INODE, node->attr.ino, 0, NULL, 0);
}

static int cmd_rename(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    struct place from, to;
    int rc;
    if (c->rename_flags & ~(STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE) ||
        c->rename_flags == (STORE_RENAME_NOREPLACE | STORE_RENAME_EXCHANGE))
        return res->err = EINVAL, 0;
    if ((res->err = path_checks(a, c->path, c->path_len)) ||
        (res->err = path_checks(a, c->path2, c->path2_len)))
        return 0;
    if (is_root(c->path, c->path_len) || is_root(c->path2, c->path2_len))
        return res->err = EBUSY, 0;
    if ((rc = place_find(a, c->path, c->path_len, &from, &res->err)) || res->err)
        return rc;
    if ((res->err = compare(c, &from)))
        return 0;
    if (!from.exists)
        return res->err = ENOENT, 0;
    if ((rc = place_find(a, c->path2, c->path2_len, &to, &res->err)) || res->err)
        return rc;
    bool exchange = c->rename_flags & STORE_RENAME_EXCHANGE;
    if (to.exists && to.node.attr.ino == from.node.attr.ino) {
        /* Same entry: nothing to do (rename(2) returns 0); NOREPLACE still
         * refuses an existing target. */
        if (c->rename_flags & STORE_RENAME_NOREPLACE)
            res->err = EEXIST;
        return 0;
    }
    if (to.exists && (c->rename_flags & STORE_RENAME_NOREPLACE))
        return res->err = EEXIST, 0;
    if (exchange && !to.exists)
        return res->err = ENOENT, 0;
    if (!to.exists && is_reserved(&to))
        return res->err = EPERM, 0;
    bool inside;
    /* A directory cannot move below itself (and with EXCHANGE, neither can
     * the target directory move below itself). */
    if (from.node.attr.type == STORE_TYPE_DIR) {
        if ((rc = is_ancestor(a, from.node.attr.ino, to.parent.attr.ino, &inside)))
            return rc;
        if (inside)
            return res->err = EINVAL, 0;
    }
    if (exchange && to.node.attr.type == STORE_TYPE_DIR) {
        if ((rc = is_ancestor(a, to.node.attr.ino, from.parent.attr.ino, &inside)))
            return rc;
        if (inside)
            return res->err = EINVAL, 0;
    }
    if (to.exists && !exchange) {
        bool src_dir = from.node.attr.type == STORE_TYPE_DIR;
        bool dst_dir = to.node.attr.type == STORE_TYPE_DIR;
        if (src_dir && !dst_dir)
            return res->err = ENOTDIR, 0;
        if (!src_dir && dst_dir)
            return res->err = EISDIR, 0;
        if (dst_dir) {
            bool empty;
            if ((rc = dir_empty(a, &to.node, &empty)))
                return rc;
            if (!empty)
                return res->err = ENOTEMPTY, 0;
        }
    }

    /* Mutations. The parents may be one directory: keep one copy of it. */
    bool same_parent = from.parent.attr.ino == to.parent.attr.ino;
    struct store_inode *fp = &from.parent, *tp = same_parent ? &from.parent : &to.parent;
    int fp_delta = 0, tp_delta = 0; /* subdirectory count changes */
    bool from_dir = from.node.attr.type == STORE_TYPE_DIR;

    if (exchange) {
        bool to_dir = to.node.attr.type == STORE_TYPE_DIR;
        struct store_inode a_node = from.node, b_node = to.node;
        if ((rc = move_entry(a, &a_node, &from, &to)) || (rc = move_entry(a, &b_node, &to, &from)))
            return rc;
        fp_delta = (to_dir ? 1 : 0) - (from_dir ? 1 : 0);
        tp_delta = -fp_delta;
        set_attr_result(res, &a_node);
    } else {
        if (to.exists) {
            if (to.node.attr.type == STORE_TYPE_DIR)
                tp_delta--;
            if ((rc = drop_entry(a, &to)))
                return rc;
        }
        if ((rc = dirent_del(a, from.parent.attr.ino, from.name, from.name_len)))
            return rc;
        struct store_inode moved = from.node;
        if ((rc = move_entry(a, &moved, &from, &to)))
            return rc;
        if (from_dir) {
            fp_delta--;
            tp_delta++;
        }
        set_attr_result(res, &moved);
    }
    if (same_parent) {
        if ((rc = dir_changed(a, fp, fp_delta + tp_delta)))
            return rc;
    } else if ((rc = dir_changed(a, fp, fp_delta)) || (rc = dir_changed(a, tp, tp_delta))) {
        return rc;
    }
    if ((rc =
             change_add(a, STORE_CHANGE_NAME, 0, from.parent.attr.ino, from.name, from.name_len)) ||
        (rc = change_add(a, STORE_CHANGE_NAME, 0, to.parent.attr.ino, to.name, to.name_len)))
        return rc;
    return 0;
}

static int cmd_setattr(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    struct place p;
    struct store_inode root;
    int rc;
    if ((res->err = path_checks(a, c->path, c->path_len)))
        return 0;
    if (c->set_mask & ~(STORE_SET_MODE | STORE_SET_UID | STORE_SET_GID | STORE_SET_SIZE |
                        STORE_SET_ATIME | STORE_SET_MTIME | STORE_SET_LEASE))
        return res->err = EINVAL, 0;
    struct store_inode *node;
    if (is_root(c->path, c->path_len)) {
        if ((rc = store_inode_load(a->s, a->txn, STORE_ROOT_INO, &root)))
            return rc == ENOENT ? EIO : rc;
        memset(&p, 0, sizeof(p));
        p.exists = true;
        p.node = root;
        node = &p.node;
    } else {
        if ((rc = place_find(a, c->path, c->path_len, &p, &res->err)) || res->err)
            return rc;
        node = &p.node;
    }
    if ((res->err = compare(c, &p)))
        return 0;
    if (!p.exists)
        return res->err = ENOENT, 0;
    bool sized = c->set_mask & STORE_SET_SIZE;
    if (sized && node->attr.type == STORE_TYPE_DIR)
        return res->err = EISDIR, 0;
    if (sized && c->size > a->s->limits.max_value_bytes)
        return res->err = EFBIG, 0;
    bool leased = c->set_mask & STORE_SET_LEASE;
    if (leased && node->attr.type == STORE_TYPE_DIR)
        return res->err = EISDIR, 0; /* leases hold files */
    if (leased && c->lease) {
        uint64_t ttl;
        if ((rc = store_lease_load(a->s, a->txn, c->lease, &ttl)) == ENOKEY)
            return res->err = ENOKEY, 0;
        if (rc)
            return rc;
    }

    if (sized && c->size != node->attr.size) {
        const void *d;
        size_t n;
        if ((rc = data_get(a, node->attr.ino, &d, &n)))
            return rc;
        if (n != node->attr.size)
            return EIO;
        size_t keep = c->size < n ? (size_t)c->size : n;
        void *tmp = NULL;
        if (keep) {
            tmp = malloc(keep);
            if (!tmp)
                return ENOMEM;
            memcpy(tmp, d, keep);
        }
        void *dst;
        rc = data_reserve(a, node->attr.ino, (size_t)c->size, &dst);
        if (!rc) {
            if (keep)
                memcpy(dst, tmp, keep);
            if (c->size > keep)
                memset((char *)dst + keep, 0, (size_t)c->size - keep);
            node->value_crc = store_value_crc(dst, (size_t)c->size);
        }
        free(tmp);
        if (rc)
            return rc;
    }
    touch(a, node, sized);
    if (sized)
        node->attr.size = c->size;
    if (c->set_mask & STORE_SET_MODE)
        node->attr.mode = (node->attr.mode & S_IFMT) | (c->mode & 07777);
    if (c->set_mask & STORE_SET_UID)
        node->attr.uid = c->uid;
    if (c->set_mask & STORE_SET_GID)
        node->attr.gid = c->gid;
    if (c->set_mask & STORE_SET_ATIME)
        node->attr.atime_ns = c->atime_ns;
    if (c->set_mask & STORE_SET_MTIME)
        node->attr.mtime_ns = c->mtime_ns;
    if ((rc = inode_put(a, node)) ||
        (rc = change_add(a, STORE_CHANGE_INODE, node->attr.ino, 0, NULL, 0)) ||
        (leased && (rc = store_lease_attach(a->s, a->txn, node->attr.ino, c->lease))))
        return rc;
    set_attr_result(res, node);
    return 0;
}

/* MEMBER_SET / MEMBER_DEL: the member directory (not the tree). */
static int cmd_member(struct applier *a, struct store_result *res, bool set)
{
    const struct store_cmd *c = a->c;
    if (!c->member_id)
        return res->err = EINVAL, 0;
    unsigned char kb[8];
    store_u64be_put(kb, c->member_id);
    MDB_val k = {.mv_size = 8, .mv_data = kb};
    if (!set) {
        int rc = mdb_del(a->txn, a->s->members, &k, NULL);
        if (rc == MDB_NOTFOUND)
            return res->err = ENOENT, 0;
        return store_mdb_errno(rc);
    }
    if (c->path_len == 0 || c->path_len > STORE_MAX_ADDR_BYTES || memchr(c->path, 0, c->path_len))
        return res->err = EINVAL, 0;
    /* A known incarnation is replaced only by no incarnation (the id added
     * again as a new member), never by another one: of two leaders that
     * learnt different incarnations, the first committed wins. */
    if (c->incarnation) {
        MDB_val old;
        int rc = mdb_get(a->txn, a->s->members, &k, &old);
        if (rc && rc != MDB_NOTFOUND)
            return store_mdb_errno(rc);
        if (!rc) {
            const char *addr;
            size_t addr_len;
            uint64_t known;
            if (store_member_decode(old.mv_data, old.mv_size, &addr, &addr_len, &known))
                return EIO;
            if (known && known != c->incarnation)
                return res->err = EEXIST, 0;
        }
    }
    unsigned char rec[STORE_MEMBER_REC_MAX];
    MDB_val v = {.mv_size = store_member_encode(c->path, c->path_len, c->incarnation, rec),
                 .mv_data = rec};
    return store_mdb_errno(mdb_put(a->txn, a->s->members, &k, &v, 0));
}

static int cmd_lease_grant(struct applier *a, struct store_result *res);
static int cmd_lease_revoke(struct applier *a, struct store_result *res);

/* Applies a->c, a tree, member or lease op. */
static int apply_op(struct applier *a, struct store_result *res)
{
    switch (a->c->op) {
    case STORE_OP_PUT:
        return cmd_put(a, res);
    case STORE_OP_APPEND:
        return cmd_append(a, res);
    case STORE_OP_DELETE:
        return cmd_delete(a, res, false);
    case STORE_OP_MKDIR:
        return cmd_mkdir(a, res);
    case STORE_OP_RMDIR:
        return cmd_delete(a, res, true);
    case STORE_OP_RENAME:
        return cmd_rename(a, res);
    case STORE_OP_SETATTR:
        return cmd_setattr(a, res);
    case STORE_OP_MEMBER_SET:
    case STORE_OP_MEMBER_DEL:
        return cmd_member(a, res, a->c->op == STORE_OP_MEMBER_SET);
    case STORE_OP_LEASE_GRANT:
        return cmd_lease_grant(a, res);
    case STORE_OP_LEASE_REVOKE:
        return cmd_lease_revoke(a, res);
    case STORE_OP_AUTH:
        return store_auth_apply(a->s, a->txn, a->c, &res->err);
    case STORE_OP_TXN:
        break;
    }
    res->err = EINVAL;
    return 0;
}

static bool cmp_result(enum store_cmp_result want, int order)
{
    switch (want) {
    case STORE_CMP_EQUAL:
        return order == 0;
    case STORE_CMP_NOT_EQUAL:
        return order != 0;
    case STORE_CMP_GREATER:
        return order > 0;
    case STORE_CMP_LESS:
        return order < 0;
    }
    return false;
}

/* Whether compare k holds. A malformed path is a logical error (*err). */
static int compare_holds(struct applier *a, const struct store_compare *k, bool *holds, int *err)
{
    *holds = false;
    if ((*err = path_checks(a, k->path, k->path_len)))
        return 0;
    struct place p = {0};
    int rc;
    if (is_root(k->path, k->path_len)) {
        rc = store_inode_load(a->s, a->txn, STORE_ROOT_INO, &p.node);
        if (rc)
            return rc == ENOENT ? EIO : rc;
        p.exists = true;
    } else {
        int lerr = 0;
        if ((rc = place_find(a, k->path, k->path_len, &p, &lerr)))
            return rc;
        if (lerr)
            p.exists = false; /* a missing or file parent: no such entry */
    }
    const struct store_attr *at = &p.node.attr;
    if (k->target == STORE_CMP_VALUE) {
        if (!p.exists || at->type != STORE_TYPE_FILE)
            return 0; /* no value to compare */
        const void *d;
        size_t n;
        if ((rc = data_get(a, at->ino, &d, &n)))
            return rc;
        size_t m = n < k->value_len ? n : k->value_len;
        int order = m ? memcmp(d, k->value, m) : 0;
        if (!order)
            order = n < k->value_len ? -1 : n > k->value_len;
        *holds = cmp_result(k->result, order);
        return 0;
    }
    uint64_t have = 0;
    if (p.exists)
        have = k->target == STORE_CMP_VERSION           ? at->version
               : k->target == STORE_CMP_CREATE_REVISION ? at->create_revision
                                                        : at->mod_revision;
    *holds = cmp_result(k->result, have < k->number ? -1 : have > k->number);
    return 0;
}

/* Applies ops[0..n) in a nested transaction, all or none: each change
 * gets the one revision a->rev and is one event of it. If one fails, its
 * errno goes to res->err and its 1-based position to *failed. */
static int apply_ops(struct applier *a, const struct store_cmd *ops, size_t n,
                     struct store_result *res, uint32_t *failed)
{
    const struct store_cmd *c = a->c;
    MDB_txn *parent = a->txn, *child;
    int rc = mdb_txn_begin(a->s->env, parent, 0, &child);
    if (rc)
        return store_mdb_errno(rc);
    struct store *s = a->s;
    size_t mark_changes = s->n_changes, mark_names = s->names_len, mark_events = a->events;
    uint64_t mark_next = a->st.next_ino, mark_inodes = a->st.inodes;
    a->txn = child;
    a->defer_drops = true;
    uint32_t pos = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct store_result sub = {0};
        size_t before = s->n_changes;
        a->c = &ops[i];
        rc = apply_op(a, &sub);
        if (!rc && sub.err) {
            res->err = sub.err;
            *failed = (uint32_t)i + 1;
            break;
        }
        if (!rc && s->n_changes != before) {
            rc = store_history_add(s, child, a->rev, pos++, &ops[i], &sub);
            a->events += !rc;
        }
    }
    a->c = c;
    a->txn = parent;
    if (!rc && !res->err)
        rc = store_mdb_errno(mdb_txn_commit(child));
    else
        mdb_txn_abort(child);
    if (rc || res->err) {
        s->n_changes = mark_changes;
        s->names_len = mark_names;
        a->events = mark_events;
        a->st.next_ino = mark_next;
        a->st.inodes = mark_inodes;
    }
    drops_end(a, !rc && !res->err);
    return rc;
}

/* A txn: its compares choose a branch, applied by apply_ops. */
static int cmd_txn(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    bool ok = true;
    for (size_t i = 0; i < c->n_compares; i++) {
        bool holds;
        int rc = compare_holds(a, &c->compares[i], &holds, &res->err);
        if (rc || res->err)
            return rc;
        ok = ok && holds;
    }
    res->txn_succeeded = ok;
    const struct store_cmd *ops = ok ? c->then_ops : c->else_ops;
    size_t n = ok ? c->n_then : c->n_else;
    return n ? apply_ops(a, ops, n, res, &res->txn_failed_op) : 0;
}

static int cmd_lease_grant(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    uint64_t ttl;
    res->lease_id = c->lease;
    res->lease_ttl_ms = c->ttl_ms;
    if (!c->lease || !c->ttl_ms || c->ttl_ms > STORE_LEASE_TTL_MAX_MS)
        return res->err = EINVAL, 0;
    int rc = store_lease_load(a->s, a->txn, c->lease, &ttl);
    if (!rc)
        return res->err = EEXIST, 0;
    if (rc != ENOKEY)
        return rc;
    return store_lease_write(a->s, a->txn, c->lease, c->ttl_ms);
}

/* Deletes the lease's files (one revision, as a txn of DELETEs), then the
 * lease. */
static int cmd_lease_revoke(struct applier *a, struct store_result *res)
{
    const struct store_cmd *c = a->c;
    uint64_t ttl, *inos = NULL;
    size_t n = 0;
    res->lease_id = c->lease;
    int rc = store_lease_load(a->s, a->txn, c->lease, &ttl);
    if (rc == ENOKEY)
        return res->err = ENOKEY, 0;
    if (rc || (rc = store_lease_files(a->s, a->txn, c->lease, &inos, &n)))
        return rc;
    struct store_cmd *ops = calloc(n + 1, sizeof(*ops));
    char **paths = calloc(n + 1, sizeof(*paths));
    size_t cap = (size_t)a->s->limits.max_path_bytes + 1;
    struct store_txn view = {.s = a->s, .txn = a->txn};
    if (!ops || !paths)
        rc = ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!(paths[i] = malloc(cap))) {
            rc = ENOMEM;
            break;
        }
        size_t len;
        if ((rc = store_path(&view, inos[i], paths[i], cap, &len)))
            rc = rc == ENOENT ? EIO : rc; /* a file the lease holds is there */
        ops[i] = (struct store_cmd){
            .op = STORE_OP_DELETE, .time_ns = c->time_ns, .path = paths[i], .path_len = len};
    }
    uint32_t failed = 0;
    if (!rc && n)
        rc = apply_ops(a, ops, n, res, &failed);
    if (!rc && res->err)
        rc = EIO; /* deleting a file the lease holds cannot fail */
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(ops);
    free(inos);
    return rc ? rc : store_lease_delete(a->s, a->txn, c->lease);
}

static int apply_one(struct applier *a, const struct store_entry *e, struct store_result *res)
{
    struct store_cmd_decoded d;
    memset(res, 0, sizeof(*res));
    if (e->noop) {
        res->revision = a->st.revision;
        return 0;
    }
    int rc = store_cmd_decode(e->data, e->len, &d);
    if (rc == ENOMEM)
        return rc;
    if (rc) {
        res->err = rc;
        res->revision = a->st.revision;
        return 0;
    }
    res->client_id = d.cmd.client_id;
    res->seq = d.cmd.seq;
    res->op = d.cmd.op;
    if (d.cmd.client_id) {
        /* Exactly once: a (client_id, seq) seen before gets its result. */
        struct store_session sess;
        rc = store_session_get(a->s, a->txn, d.cmd.client_id, &sess);
        if (rc && rc != ENOENT) {
            store_cmd_decoded_free(&d);
            return rc;
        }
        if (!rc && d.cmd.seq <= sess.seq) {
            if (d.cmd.seq == sess.seq) {
                *res = sess.result;
                res->op = d.cmd.op;
                res->client_id = d.cmd.client_id;
                res->seq = d.cmd.seq;
            } else
                res->err = EALREADY; /* older than its client's last one */
            res->duplicate = true;
            res->skipped = false;
            res->revision = a->st.revision;
            store_cmd_decoded_free(&d);
            return 0;
        }
    }
    a->c = &d.cmd;
    a->rev = a->st.revision + 1;
    a->client_id = d.cmd.client_id;
    size_t mark_changes = a->s->n_changes, mark_names = a->s->names_len;
    uint64_t mark_next = a->st.next_ino, mark_inodes = a->st.inodes;
    /* A client's command: only if its user may (access control). */
    rc = store_auth_command(a->s, a->txn, &d.cmd, &res->err);
    if (!rc && !res->err)
        rc = d.cmd.op == STORE_OP_TXN ? cmd_txn(a, res) : apply_op(a, res);
    uint64_t client_id = d.cmd.client_id, seq = d.cmd.seq;
    bool changed = a->s->n_changes != mark_changes;
    if (!rc && !res->err && changed && store_history_op(d.cmd.op)) {
        rc = store_history_add(a->s, a->txn, a->rev, 0, &d.cmd, res);
        a->events += !rc;
    }
    store_cmd_decoded_free(&d);
    a->c = NULL;
    if (rc)
        return rc;
    if (res->err) {
        /* Validate-then-mutate: a failed command wrote nothing. */
        assert(!changed && a->st.next_ino == mark_next && a->st.inodes == mark_inodes);
        (void)mark_names;
        (void)mark_next;
        (void)mark_inodes;
        res->has_attr = false;
    } else if (changed) {
        a->st.revision = a->rev;
    }
    res->revision = a->st.revision;
    if (client_id)
        return store_session_put(a->s, a->txn, client_id, seq, e->index, res);
    return 0;
}

int store_apply_batch(struct store *s, const struct store_entry *entries, size_t n,
                      struct store_result *results)
{
    return store_apply_batch_decided(s, entries, n, results, NULL, NULL);
}

/* Reports the changes of what was committed to the observer, and forgets
 * them. */
static void report_changes(struct store *s)
{
    if (s->obs.changed) {
        for (size_t i = 0; i < s->n_changes; i++) {
            const struct store_change_rec *r = &s->changes[i];
            struct store_change ch = {.kind = r->kind,
                                      .ino = r->ino,
                                      .parent = r->parent,
                                      .name = s->change_names + r->name_off,
                                      .name_len = r->name_len,
                                      .client_id = r->client_id};
            s->obs.changed(s->obs.ctx, &ch);
        }
    }
    s->n_changes = 0;
    s->names_len = 0;
}

int store_apply_flush(struct store *s)
{
    if (!s->apply_txn)
        return 0;
    MDB_txn *txn = s->apply_txn;
    uint64_t last = s->deferred_index;
    s->apply_txn = NULL;
    s->deferred_index = 0;
    int rc = store_txn_commit(s, txn, !s->lazy_apply);
    if (rc) {
        /* Nothing of the deferred batches was applied. */
        s->n_changes = 0;
        s->names_len = 0;
        return rc;
    }
    if (last)
        s->visible_index = last;
    report_changes(s);
    return 0;
}

int store_begin(struct store *s, unsigned flags, MDB_txn **txn)
{
    if (s->apply_txn && pthread_equal(s->apply_owner, pthread_self())) {
        int rc = store_apply_flush(s);
        if (rc && !s->flush_error)
            s->flush_error = rc; /* for store_apply_flush_error */
    }
    return mdb_txn_begin(s->env, NULL, flags, txn);
}

int store_apply_flush_error(struct store *s)
{
    int rc = s->flush_error;
    s->flush_error = 0;
    return rc;
}

bool store_apply_deferred(const struct store *s)
{
    return s->apply_txn != NULL;
}

uint64_t store_applied_visible(const struct store *s)
{
    return s->visible_index;
}

int store_apply_batch_decided(struct store *s, const struct store_entry *entries, size_t n,
                              struct store_result *results, bool (*decided)(void *ctx), void *ctx)
{
    /* With lazy apply, every batch joins one open transaction that
     * decided(ctx) may leave open (deferred) for later batches. A batch
     * used to run in a child of it, so that a failure lost only that
     * batch; but LMDB allocates 3 MB for each child transaction (its dirty
     * and free page lists), and merges the child's dirty list into the
     * parent's at its commit, for every batch. A failure is rare (no room,
     * a disk error): it now loses the deferred batches too, as a failed
     * commit of them does, and the caller applies them again from the log. */
    MDB_txn *parent = s->apply_txn;
    if (parent && !pthread_equal(s->apply_owner, pthread_self()))
        return EINVAL; /* the caller's bug: one applying thread */
    for (size_t i = 1; i < n; i++)
        if (entries[i].index <= entries[i - 1].index)
            return EINVAL; /* the caller's bug: indexes must increase */
    struct applier a = {.s = s};
    int rc;
    if (parent) {
        a.txn = parent;
    } else if ((rc = mdb_txn_begin(s->env, NULL, 0, &a.txn))) {
        return store_mdb_errno(rc);
    } else if (s->lazy_apply) {
        s->apply_txn = a.txn;
        s->apply_owner = pthread_self();
    }
    if ((rc = store_state_load(s, a.txn, &a.st)))
        goto fail;
    uint64_t last = a.st.applied_index;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const struct store_entry *e = &entries[i];
        if (e->index <= a.st.applied_index) {
            memset(&results[i], 0, sizeof(results[i]));
            results[i].skipped = true;
            results[i].revision = a.st.revision;
            continue;
        }
        if ((rc = apply_one(&a, e, &results[i])))
            goto fail;
        last = e->index;
        any = true;
    }
    if (!any) {
        /* Nothing written: one opened for this batch alone goes. */
        if (!parent) {
            mdb_txn_abort(a.txn);
            s->apply_txn = NULL;
        }
        return 0;
    }
    a.st.applied_index = last;
    if ((rc = store_history_batch_end(s, a.txn, a.st.revision, a.events)))
        goto fail;
    unsigned char stbuf[STORE_STATE_REC_LEN];
    store_state_encode(&a.st, stbuf);
    MDB_val k = {.mv_size = 5, .mv_data = "state"},
            v = {.mv_size = sizeof(stbuf), .mv_data = stbuf};
    if ((rc = store_mdb_errno(mdb_put(a.txn, s->meta, &k, &v, 0))))
        goto fail;
    if (s->lazy_apply) {
        /* In the open transaction: no write to the disk yet. */
        s->deferred_index = last;
        bool now = decided ? decided(ctx) : true;
        if (!now)
            return 0; /* deferred: store_apply_flush commits it */
        return store_apply_flush(s);
    }
    if (decided)
        decided(ctx);
    rc = store_txn_commit(s, a.txn, true);
    a.txn = NULL;
    if (rc)
        goto fail_changes;
    s->visible_index = last;
    report_changes(s);
    return 0;

fail:
    /* Nothing of this batch, nor of the batches deferred before it. */
    mdb_txn_abort(a.txn);
    s->apply_txn = NULL;
    s->deferred_index = 0;
fail_changes:
    s->n_changes = 0;
    s->names_len = 0;
    return rc;
}

int store_apply(struct store *s, uint64_t index, const void *data, size_t len,
                struct store_result *result)
{
    struct store_entry e = {.index = index, .data = data, .len = len};
    return store_apply_batch(s, &e, 1, result);
}

void store_set_lazy_apply(struct store *s, bool lazy)
{
    s->lazy_apply = lazy;
}
