/* store_lease.c - leases: the records, and which files each holds.
 *
 * Tables (replicated state: in snapshot images and the digest):
 *   leases      u64be id -> u8 version (1) | 7 zero | u64 ttl_ms
 *   lease_keys  u64be id ++ u64be ino -> (empty): the files a lease holds
 *   ino_lease   u64be ino -> u64be id: the lease a file is attached to
 * lease_keys and ino_lease say the same thing both ways: a revoke finds
 * its files without a scan, and a file's deletion or re-attachment finds
 * its lease. Only files are attached. Time is not here: expiry is the
 * leader's decision, replicated as a LEASE_REVOKE (node/node_lease.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "store_le.h"

#define LEASE_REC_LEN 16

static MDB_val key8(unsigned char kb[8], uint64_t v)
{
    store_u64be_put(kb, v);
    MDB_val k = {.mv_size = 8, .mv_data = kb};
    return k;
}

int store_lease_decode(const void *rec, size_t len, uint64_t *ttl_ms)
{
    const unsigned char *p = rec;
    if (len != LEASE_REC_LEN || p[0] != 1)
        return EIO;
    for (int i = 1; i < 8; i++)
        if (p[i])
            return EIO;
    *ttl_ms = get64(p + 8);
    return *ttl_ms && *ttl_ms <= STORE_LEASE_TTL_MAX_MS ? 0 : EIO;
}

int store_lease_load(struct store *s, MDB_txn *txn, uint64_t id, uint64_t *ttl_ms)
{
    unsigned char kb[8];
    MDB_val k = key8(kb, id), v;
    int rc = mdb_get(txn, s->leases, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ENOKEY;
    if (rc)
        return store_mdb_errno(rc);
    return store_lease_decode(v.mv_data, v.mv_size, ttl_ms);
}

int store_lease_write(struct store *s, MDB_txn *txn, uint64_t id, uint64_t ttl_ms)
{
    unsigned char kb[8], rec[LEASE_REC_LEN] = {1};
    put64(rec + 8, ttl_ms);
    MDB_val k = key8(kb, id), v = {.mv_size = sizeof(rec), .mv_data = rec};
    return store_mdb_errno(mdb_put(txn, s->leases, &k, &v, 0));
}

int store_lease_delete(struct store *s, MDB_txn *txn, uint64_t id)
{
    unsigned char kb[8];
    MDB_val k = key8(kb, id);
    int rc = mdb_del(txn, s->leases, &k, NULL);
    return rc == MDB_NOTFOUND ? ENOKEY : store_mdb_errno(rc);
}

int store_lease_of(struct store *s, MDB_txn *txn, uint64_t ino, uint64_t *id)
{
    unsigned char kb[8];
    MDB_val k = key8(kb, ino), v;
    int rc = mdb_get(txn, s->ino_lease, &k, &v);
    *id = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_mdb_errno(rc);
    if (v.mv_size != 8)
        return EIO;
    *id = store_u64be_get(v.mv_data);
    return *id ? 0 : EIO;
}

int store_lease_attach(struct store *s, MDB_txn *txn, uint64_t ino, uint64_t id)
{
    uint64_t old;
    int rc = store_lease_of(s, txn, ino, &old);
    if (rc || old == id)
        return rc;
    unsigned char kb[8], pair[16];
    MDB_val k = key8(kb, ino);
    if (old) {
        store_u64be_put(pair, old);
        store_u64be_put(pair + 8, ino);
        MDB_val pk = {.mv_size = 16, .mv_data = pair};
        if ((rc = mdb_del(txn, s->lease_keys, &pk, NULL)) && rc != MDB_NOTFOUND)
            return store_mdb_errno(rc);
        if (!id && (rc = mdb_del(txn, s->ino_lease, &k, NULL)))
            return store_mdb_errno(rc);
    }
    if (!id)
        return 0;
    unsigned char idb[8];
    store_u64be_put(idb, id);
    MDB_val v = {.mv_size = 8, .mv_data = idb};
    if ((rc = mdb_put(txn, s->ino_lease, &k, &v, 0)))
        return store_mdb_errno(rc);
    store_u64be_put(pair, id);
    store_u64be_put(pair + 8, ino);
    MDB_val pk = {.mv_size = 16, .mv_data = pair}, empty = {.mv_size = 0, .mv_data = ""};
    return store_mdb_errno(mdb_put(txn, s->lease_keys, &pk, &empty, 0));
}

/* Calls cb(ctx, ino) for each file of lease id, in inode order. */
static int each_file(struct store *s, MDB_txn *txn, uint64_t id, int (*cb)(void *ctx, uint64_t ino),
                     void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->lease_keys, &cur);
    if (rc)
        return store_mdb_errno(rc);
    unsigned char from[16];
    store_u64be_put(from, id);
    memset(from + 8, 0, 8);
    MDB_val k = {.mv_size = 16, .mv_data = from}, v;
    int out = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc && !out;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16) {
            out = EIO;
            break;
        }
        if (store_u64be_get(k.mv_data) != id)
            break;
        out = cb(ctx, store_u64be_get((const unsigned char *)k.mv_data + 8));
    }
    mdb_cursor_close(cur);
    if (out)
        return out;
    return rc && rc != MDB_NOTFOUND ? store_mdb_errno(rc) : 0;
}

struct ino_list {
    uint64_t *inos;
    size_t n, cap;
};

static int add_ino(void *ctx, uint64_t ino)
{
    struct ino_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint64_t *p = realloc(l->inos, cap * sizeof(*p));
        if (!p)
            return ENOMEM;
        l->inos = p;
        l->cap = cap;
    }
    l->inos[l->n++] = ino;
    return 0;
}

int store_lease_files(struct store *s, MDB_txn *txn, uint64_t id, uint64_t **inos, size_t *n)
{
    struct ino_list l = {0};
    int rc = each_file(s, txn, id, add_ino, &l);
    if (rc) {
        free(l.inos);
        return rc;
    }
    *inos = l.inos;
    *n = l.n;
    return 0;
}

static int count_one(void *ctx, uint64_t ino)
{
    (void)ino;
    (*(uint64_t *)ctx)++;
    return 0;
}

int store_lease_get(struct store_txn *t, uint64_t id, struct store_lease *out)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    int rc = store_lease_load(t->s, t->txn, id, &out->ttl_ms);
    return rc ? rc : each_file(t->s, t->txn, id, count_one, &out->keys);
}

int store_leases(struct store_txn *t, int (*cb)(void *ctx, const struct store_lease *l), void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->s->leases, &cur);
    if (rc)
        return store_mdb_errno(rc);
    MDB_val k, v;
    int out = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && !out;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct store_lease l = {0};
        if (k.mv_size != 8 || store_lease_decode(v.mv_data, v.mv_size, &l.ttl_ms)) {
            out = EIO;
            break;
        }
        l.id = store_u64be_get(k.mv_data);
        if (!(out = each_file(t->s, t->txn, l.id, count_one, &l.keys)))
            out = cb(ctx, &l);
    }
    mdb_cursor_close(cur);
    if (out)
        return out;
    return rc && rc != MDB_NOTFOUND ? store_mdb_errno(rc) : 0;
}

int store_file_lease(struct store_txn *t, uint64_t ino, uint64_t *lease)
{
    return store_lease_of(t->s, t->txn, ino, lease);
}
