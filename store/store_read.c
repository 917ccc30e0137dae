/* store_read.c - lookups and listings in read-only transactions, and the
 * record accessors the applier shares. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int store_state_load(struct store *s, MDB_txn *txn, struct store_state *out)
{
    MDB_val k = {.mv_size = 5, .mv_data = "state"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc);
    return store_state_decode(v.mv_data, v.mv_size, out);
}

int store_inode_load(struct store *s, MDB_txn *txn, uint64_t ino, struct store_inode *out)
{
    unsigned char kb[8];
    store_u64be_put(kb, ino);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    int rc = mdb_get(txn, s->inodes, &k, &v);
    if (rc)
        return store_mdb_errno(rc);
    if (store_inode_decode(v.mv_data, v.mv_size, out))
        return EIO;
    out->attr.ino = ino;
    return 0;
}

int store_dirent_get(struct store *s, MDB_txn *txn, uint64_t parent, const char *name,
                     size_t name_len, uint64_t *ino, enum store_type *type)
{
    unsigned char kb[STORE_DIRENT_KEY_MAX];
    if (name_len > STORE_MAX_NAME_BYTES_BOUND)
        return ENOENT; /* cannot exist */
    MDB_val k = {.mv_size = store_dirent_key(parent, name, name_len, kb), .mv_data = kb}, v;
    int rc = mdb_get(txn, s->dirents, &k, &v);
    if (rc)
        return store_mdb_errno(rc);
    return store_dirent_val_decode(v.mv_data, v.mv_size, ino, type);
}

int store_walk(struct store *s, MDB_txn *txn, const char *path, size_t len, struct store_inode *out)
{
    uint64_t ino = STORE_ROOT_INO;
    enum store_type type = STORE_TYPE_DIR;
    size_t i = 1;
    while (i < len) {
        if (type != STORE_TYPE_DIR)
            return ENOTDIR;
        const char *end = memchr(path + i, '/', len - i);
        size_t n = end ? (size_t)(end - (path + i)) : len - i;
        int rc = store_dirent_get(s, txn, ino, path + i, n, &ino, &type);
        if (rc)
            return rc;
        i += n + 1;
    }
    int rc = store_inode_load(s, txn, ino, out);
    if (rc == ENOENT)
        return EIO; /* a dirent without its inode */
    if (!rc && out->attr.type != type)
        return EIO;
    return rc;
}

int store_txn_begin(struct store *s, struct store_txn **out)
{
    struct store_txn *t = malloc(sizeof(*t));
    if (!t)
        return ENOMEM;
    t->s = s;
    int rc = store_begin(s, MDB_RDONLY, &t->txn);
    if (rc) {
        free(t);
        return store_mdb_errno(rc);
    }
    if ((rc = store_state_load(s, t->txn, &t->st))) {
        mdb_txn_abort(t->txn);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void store_txn_end(struct store_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    free(t);
}

uint64_t store_txn_applied_index(const struct store_txn *t)
{
    return t->st.applied_index;
}

uint64_t store_txn_revision(const struct store_txn *t)
{
    return t->st.revision;
}

int store_getattr(struct store_txn *t, uint64_t ino, struct store_attr *out)
{
    struct store_inode in;
    int rc = store_inode_load(t->s, t->txn, ino, &in);
    if (!rc)
        *out = in.attr;
    return rc;
}

int store_lookup(struct store_txn *t, uint64_t parent, const char *name, size_t name_len,
                 struct store_attr *out)
{
    int rc = store_name_check(name, name_len, &t->s->limits);
    if (rc)
        return rc;
    struct store_inode dir;
    if ((rc = store_inode_load(t->s, t->txn, parent, &dir)))
        return rc;
    if (dir.attr.type != STORE_TYPE_DIR)
        return ENOTDIR;
    uint64_t ino;
    enum store_type type;
    if ((rc = store_dirent_get(t->s, t->txn, parent, name, name_len, &ino, &type)))
        return rc;
    struct store_inode in;
    rc = store_inode_load(t->s, t->txn, ino, &in);
    if (rc == ENOENT || (!rc && in.attr.type != type))
        return EIO;
    if (!rc)
        *out = in.attr;
    return rc;
}

int store_resolve(struct store_txn *t, const char *path, size_t path_len, struct store_attr *out)
{
    int rc = store_path_check(path, path_len, &t->s->limits);
    if (rc)
        return rc;
    struct store_inode in;
    if ((rc = store_walk(t->s, t->txn, path, path_len, &in)))
        return rc;
    *out = in.attr;
    return 0;
}

int store_read(struct store_txn *t, uint64_t ino, const void **data, size_t *len)
{
    struct store_inode in;
    int rc = store_inode_load(t->s, t->txn, ino, &in);
    if (rc)
        return rc;
    if (in.attr.type != STORE_TYPE_FILE)
        return EISDIR;
    unsigned char kb[STORE_VALUE_KEY_LEN];
    store_value_key(ino, kb);
    MDB_val k = {.mv_size = sizeof(kb), .mv_data = kb}, v;
    rc = mdb_get(t->txn, t->s->inodes, &k, &v);
    if (rc == MDB_NOTFOUND)
        return EIO; /* every file has a value record, maybe empty */
    if (rc)
        return store_mdb_errno(rc);
    if (v.mv_size != in.attr.size)
        return EIO;
    *data = v.mv_size ? v.mv_data : "";
    *len = v.mv_size;
    return 0;
}

int store_path(struct store_txn *t, uint64_t ino, char *buf, size_t cap, size_t *len)
{
    if (cap < 2)
        return ENAMETOOLONG;
    /* Build from the end of buf backwards, then move to the front. */
    size_t pos = cap - 1;
    buf[pos] = 0;
    uint64_t cur = ino;
    unsigned depth = 0;
    while (cur != STORE_ROOT_INO) {
        struct store_inode in;
        int rc = store_inode_load(t->s, t->txn, cur, &in);
        if (rc)
            return rc == ENOENT && cur != ino ? EIO : rc;
        if (in.name_len + 1 > pos)
            return ENAMETOOLONG;
        pos -= in.name_len;
        memcpy(buf + pos, in.name, in.name_len);
        buf[--pos] = '/';
        cur = in.attr.parent;
        /* A parent loop would be corruption: bound the walk. */
        if (++depth > STORE_MAX_PATH_BYTES_BOUND / 2)
            return EIO;
    }
    if (pos == cap - 1)
        buf[--pos] = '/';
    size_t n = cap - 1 - pos;
    memmove(buf, buf + pos, n + 1);
    *len = n;
    return 0;
}

int store_list(struct store_txn *t, uint64_t dir, const char *after, size_t after_len,
               int (*cb)(void *ctx, const struct store_dirent *e), void *ctx)
{
    struct store_inode d;
    int rc = store_inode_load(t->s, t->txn, dir, &d);
    if (rc)
        return rc;
    if (d.attr.type != STORE_TYPE_DIR)
        return ENOTDIR;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(t->txn, t->s->dirents, &cur)))
        return store_mdb_errno(rc);
    unsigned char kb[STORE_DIRENT_KEY_MAX];
    if (after_len > STORE_MAX_NAME_BYTES_BOUND)
        after_len = STORE_MAX_NAME_BYTES_BOUND;
    MDB_val k = {.mv_size = store_dirent_key(dir, after ? after : "", after ? after_len : 0, kb),
                 .mv_data = kb},
            v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* Skip `after` itself if it still exists. */
    if (!rc && after && k.mv_size == 8 + after_len && !memcmp(k.mv_data, kb, 8 + after_len))
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    while (!rc) {
        if (k.mv_size < 9 || store_u64be_get(k.mv_data) != dir)
            break;
        struct store_dirent e;
        e.name = (const char *)k.mv_data + 8;
        e.name_len = k.mv_size - 8;
        if (store_dirent_val_decode(v.mv_data, v.mv_size, &e.ino, &e.type)) {
            mdb_cursor_close(cur);
            return EIO;
        }
        if (cb(ctx, &e))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return store_mdb_errno(rc);
    return 0;
}
