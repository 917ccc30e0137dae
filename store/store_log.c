/* store_log.c - the Raft log on LMDB (see store_log.h).
 *
 * Tables:
 *   log   u64be index -> entry record
 *   raft  "hard"      -> hard state record
 *         "snap"      -> snapshot record
 * Records, little endian, each with a CRC-32C of every byte after it:
 *   entry    u8 version (1) | u8 0 | u16 0 | u32 crc | u64 term | u32 type | data
 *   hard     u8 version (1) | u8 0 | u16 0 | u32 crc | u64 term | u64 vote | u64 commit
 *   snap     u8 version (1) | u8 0 | u16 0 | u32 crc | u64 index | u64 term | u64 size
 *            | u32 conf length | conf
 */
#include "store_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_crc.h"
#include "store_internal.h"

#define REC_VERSION 1
#define REC_HDR     8
#define ENTRY_FIXED (REC_HDR + 12)
#define HARD_LEN    (REC_HDR + 24)
#define SNAP_FIXED  (REC_HDR + 28)

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Seals a record of len bytes: version, zeros, then the CRC of the rest. */
static void seal(unsigned char *rec, size_t len)
{
    rec[0] = REC_VERSION;
    rec[1] = rec[2] = rec[3] = 0;
    put32(rec + 4, store_crc32c(0, rec + REC_HDR, len - REC_HDR));
}

static bool sealed(const unsigned char *rec, size_t len)
{
    return len >= REC_HDR && rec[0] == REC_VERSION && !rec[1] && !rec[2] && !rec[3] &&
           get32(rec + 4) == store_crc32c(0, rec + REC_HDR, len - REC_HDR);
}

static int load_snap(struct store *s, MDB_txn *txn, struct store_log_snapshot *out)
{
    MDB_val k = {.mv_size = 4, .mv_data = "snap"}, v;
    memset(out, 0, sizeof(*out));
    int rc = mdb_get(txn, s->raft, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_mdb_errno(rc);
    const unsigned char *p = v.mv_data;
    if (v.mv_size < SNAP_FIXED || !sealed(p, v.mv_size))
        return EIO;
    uint32_t conf_len = get32(p + REC_HDR + 24);
    if (conf_len > STORE_LOG_CONF_MAX || v.mv_size != SNAP_FIXED + conf_len)
        return EIO;
    out->index = get64(p + REC_HDR);
    out->term = get64(p + REC_HDR + 8);
    out->size = get64(p + REC_HDR + 16);
    memcpy(out->conf, p + SNAP_FIXED, conf_len);
    out->conf_len = conf_len;
    return 0;
}

static int bounds(struct store *s, MDB_txn *txn, uint64_t *first, uint64_t *last,
                  struct store_log_snapshot *snap)
{
    int rc = load_snap(s, txn, snap);
    if (rc)
        return rc;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->log, &cur)))
        return store_mdb_errno(rc);
    MDB_val k, v;
    *first = snap->index + 1;
    *last = snap->index;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (!rc) {
        if (k.mv_size != 8) {
            rc = EIO;
        } else {
            *last = store_u64be_get(k.mv_data);
            /* The oldest stored entry must follow the snapshot directly. */
            int frc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            if (frc || k.mv_size != 8 || store_u64be_get(k.mv_data) != snap->index + 1 ||
                *last < snap->index + 1)
                rc = EIO;
        }
    } else {
        rc = rc == MDB_NOTFOUND ? 0 : store_mdb_errno(rc);
    }
    mdb_cursor_close(cur);
    return rc;
}

int store_log_bounds(struct store *s, uint64_t *first, uint64_t *last)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    struct store_log_snapshot snap;
    rc = bounds(s, txn, first, last, &snap);
    mdb_txn_abort(txn);
    return rc;
}

int store_log_snapshot(struct store *s, struct store_log_snapshot *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    rc = load_snap(s, txn, out);
    mdb_txn_abort(txn);
    return rc;
}

int store_log_hard_state(struct store *s, struct store_hard_state *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    MDB_val k = {.mv_size = 4, .mv_data = "hard"}, v;
    memset(out, 0, sizeof(*out));
    rc = mdb_get(txn, s->raft, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    } else if (rc) {
        rc = store_mdb_errno(rc);
    } else if (v.mv_size != HARD_LEN || !sealed(v.mv_data, v.mv_size)) {
        rc = EIO;
    } else {
        const unsigned char *p = v.mv_data;
        out->term = get64(p + REC_HDR);
        out->vote = get64(p + REC_HDR + 8);
        out->commit = get64(p + REC_HDR + 16);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* Decodes the entry record at index. */
static int decode_entry(uint64_t index, const MDB_val *v, struct store_log_entry *e)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < ENTRY_FIXED || !sealed(p, v->mv_size))
        return EIO;
    e->index = index;
    e->term = get64(p + REC_HDR);
    e->type = get32(p + REC_HDR + 8);
    e->data = p + ENTRY_FIXED;
    e->len = v->mv_size - ENTRY_FIXED;
    return 0;
}

static int term_in(struct store *s, MDB_txn *txn, uint64_t index, uint64_t *term)
{
    struct store_log_snapshot snap;
    int rc = load_snap(s, txn, &snap);
    if (rc)
        return rc;
    if (index < snap.index)
        return STORE_ECOMPACTED;
    if (index == snap.index) {
        if (index == 0) {
            *term = 0; /* the empty log's sentinel */
            return 0;
        }
        *term = snap.term;
        return 0;
    }
    unsigned char kb[8];
    store_u64be_put(kb, index);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    rc = mdb_get(txn, s->log, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ENOENT;
    if (rc)
        return store_mdb_errno(rc);
    struct store_log_entry e;
    if ((rc = decode_entry(index, &v, &e)))
        return rc;
    *term = e.term;
    return 0;
}

int store_log_term(struct store *s, uint64_t index, uint64_t *term)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    rc = term_in(s, txn, index, term);
    mdb_txn_abort(txn);
    return rc;
}

int store_log_entries(struct store *s, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct store_log_entry **out, size_t *n)
{
    if (hi <= lo)
        return EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_errno(rc);
    uint64_t first, last;
    struct store_log_snapshot snap;
    MDB_cursor *cur = NULL;
    struct store_log_entry *arr = NULL;
    if ((rc = bounds(s, txn, &first, &last, &snap)))
        goto out;
    if (lo < first) {
        rc = STORE_ECOMPACTED;
        goto out;
    }
    if (hi - 1 > last) {
        rc = ENOENT;
        goto out;
    }
    /* First pass: how many entries and bytes fit. */
    if ((rc = mdb_cursor_open(txn, s->log, &cur))) {
        rc = store_mdb_errno(rc);
        goto out;
    }
    unsigned char kb[8];
    store_u64be_put(kb, lo);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    size_t count = 0, bytes = 0;
    uint64_t want = lo;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); !rc && want < hi;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || store_u64be_get(k.mv_data) != want) {
            rc = EIO; /* a gap in the log */
            break;
        }
        size_t len = v.mv_size >= ENTRY_FIXED ? v.mv_size - ENTRY_FIXED : 0;
        if (count && bytes + len > max_bytes)
            break;
        bytes += len;
        count++;
        want++;
    }
    if (rc && rc != MDB_NOTFOUND && rc != EIO)
        rc = store_mdb_errno(rc);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc || count == 0) {
        rc = rc ? rc : EIO;
        goto out;
    }
    /* Second pass: copy into one block. */
    arr = malloc(count * sizeof(*arr) + bytes + 1);
    if (!arr) {
        rc = ENOMEM;
        goto out;
    }
    unsigned char *data = (unsigned char *)(arr + count);
    k.mv_size = 8;
    k.mv_data = kb;
    size_t i = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); !rc && i < count;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        struct store_log_entry e;
        if ((rc = decode_entry(lo + i, &v, &e)))
            break;
        arr[i] = e;
        arr[i].data = data;
        if (e.len)
            memcpy(data, e.data, e.len);
        data += e.len;
    }
    if (i == count)
        rc = 0;
    else if (!rc || rc == MDB_NOTFOUND)
        rc = EIO;
    if (!rc) {
        *out = arr;
        *n = count;
        arr = NULL;
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    free(arr);
    return rc;
}

int store_log_persist(struct store *s, const struct store_hard_state *hs,
                      const struct store_log_entry *e, size_t n, bool sync)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_mdb_errno(rc);
    if (hs) {
        unsigned char rec[HARD_LEN];
        put64(rec + REC_HDR, hs->term);
        put64(rec + REC_HDR + 8, hs->vote);
        put64(rec + REC_HDR + 16, hs->commit);
        seal(rec, sizeof(rec));
        MDB_val k = {.mv_size = 4, .mv_data = "hard"}, v = {.mv_size = sizeof(rec), .mv_data = rec};
        if ((rc = mdb_put(txn, s->raft, &k, &v, 0))) {
            rc = store_mdb_errno(rc);
            goto fail;
        }
    }
    if (n) {
        uint64_t first, last;
        struct store_log_snapshot snap;
        if ((rc = bounds(s, txn, &first, &last, &snap)))
            goto fail;
        if (e[0].index < first || e[0].index > last + 1) {
            rc = EINVAL;
            goto fail;
        }
        /* Remove every entry from e[0].index on: the new ones replace them. */
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, s->log, &cur))) {
            rc = store_mdb_errno(rc);
            goto fail;
        }
        unsigned char kb[8];
        store_u64be_put(kb, e[0].index);
        MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if ((rc = mdb_cursor_del(cur, 0)))
                break;
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND) {
            rc = store_mdb_errno(rc);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (e[i].index != e[0].index + i) {
                rc = EINVAL;
                goto fail;
            }
            store_u64be_put(kb, e[i].index);
            MDB_val vk = {.mv_size = 8, .mv_data = kb};
            MDB_val vv = {.mv_size = ENTRY_FIXED + e[i].len, .mv_data = NULL};
            if ((rc = mdb_put(txn, s->log, &vk, &vv, MDB_RESERVE | MDB_APPEND))) {
                rc = store_mdb_errno(rc);
                goto fail;
            }
            unsigned char *rec = vv.mv_data;
            put64(rec + REC_HDR, e[i].term);
            put32(rec + REC_HDR + 8, e[i].type);
            if (e[i].len)
                memcpy(rec + ENTRY_FIXED, e[i].data, e[i].len);
            seal(rec, vv.mv_size);
        }
    }
    /* A commit that need not be durable is made so by the next synced one
     * (same file); store_txn_commit keeps the file whole meanwhile. */
    return store_txn_commit(s, txn, sync);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int store_log_compact(struct store *s, const struct store_log_snapshot *snap, bool drop_all)
{
    if (snap->conf_len > STORE_LOG_CONF_MAX)
        return EINVAL;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_mdb_errno(rc);
    struct store_log_snapshot cur_snap;
    if ((rc = load_snap(s, txn, &cur_snap)))
        goto fail;
    if (snap->index < cur_snap.index) {
        rc = EINVAL;
        goto fail;
    }
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->log, &cur))) {
        rc = store_mdb_errno(rc);
        goto fail;
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!drop_all && (k.mv_size != 8 || store_u64be_get(k.mv_data) > snap->index))
            break;
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND) {
        rc = store_mdb_errno(rc);
        goto fail;
    }
    unsigned char rec[SNAP_FIXED + STORE_LOG_CONF_MAX];
    put64(rec + REC_HDR, snap->index);
    put64(rec + REC_HDR + 8, snap->term);
    put64(rec + REC_HDR + 16, snap->size);
    put32(rec + REC_HDR + 24, (uint32_t)snap->conf_len);
    memcpy(rec + SNAP_FIXED, snap->conf, snap->conf_len);
    seal(rec, SNAP_FIXED + snap->conf_len);
    MDB_val sk = {.mv_size = 4, .mv_data = "snap"},
            sv = {.mv_size = SNAP_FIXED + snap->conf_len, .mv_data = rec};
    if ((rc = mdb_put(txn, s->raft, &sk, &sv, 0))) {
        rc = store_mdb_errno(rc);
        goto fail;
    }
    /* What stays must follow the snapshot directly. */
    uint64_t first, last;
    struct store_log_snapshot check;
    if ((rc = bounds(s, txn, &first, &last, &check)))
        goto fail;
    if ((rc = mdb_txn_commit(txn)))
        return store_commit_errno(s, rc);
    return 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}
