/* store_snapshot.c - snapshot images: the replicated state (the tree, its
 * counters and limits) as of one read transaction, in a self-checking file,
 * and installing such an image in place of the current state.
 *
 * Image format, version 1 (integers little endian):
 *   header   "raftfs-snap\0" (12) | u32 version | u64 applied index |
 *            u64 revision
 *   records  u8 table (1 meta, 2 inodes, 3 dirents, 4 data, 5 sessions,
 *            6 session_lru, 7 members, 8 leases, 9 lease_keys, 10 ino_lease,
 *            11 auth; builds from before 11 refuse an image that has it)
 *            | u32 key length
 *            | u32 value length | key | value
 *            tables in that order, keys in LMDB order within a table
 *   trailer  u8 0xff | u64 record count | u32 CRC-32C of every byte before
 *            the CRC
 * The meta table holds only the replicated records ("state", "limits"), not
 * the local "format" one. Values are "data" records keyed by the inode
 * alone, as store format 1 kept them; the store keeps them in the inodes
 * table (store_value_key), so writing an image takes them from there and
 * installing puts them back there. An image is checked whole (trailer, CRC, order,
 * lengths, the state and limits records) before anything is replaced, and
 * installed in one write transaction: a damaged image changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "store_crc.h"
#include "store_le.h"
#include "store_internal.h"

#define SNAP_MAGIC     "raftfs-snap"
#define SNAP_MAGIC_LEN 12 /* with its NUL */
#define SNAP_VERSION   1U
#define SNAP_HDR_LEN   (SNAP_MAGIC_LEN + 4 + 8 + 8)
#define SNAP_REC_HDR   9
#define SNAP_TRAILER   (1 + 8 + 4)
#define SNAP_END       0xff
#define SNAP_BUF       (1U << 20)

enum {
    SNAP_META = 1,
    SNAP_INODES,
    SNAP_DIRENTS,
    SNAP_DATA,
    SNAP_SESSIONS,
    SNAP_LRU,
    SNAP_MEMBERS,
    SNAP_LEASES,
    SNAP_LEASE_KEYS,
    SNAP_INO_LEASE,
    SNAP_AUTH,
    SNAP_TABLES = SNAP_AUTH
};

/* ---- writing ---- */

struct writer {
    int fd;
    unsigned char *buf;
    size_t len;
    uint32_t crc;
    uint64_t bytes;
    int err;
};

static void w_flush(struct writer *w)
{
    size_t off = 0;
    while (!w->err && off < w->len) {
        ssize_t n = fault_write(FAULT_SNAP_WRITE, w->fd, w->buf + off, w->len - off);
        if (n < 0) {
            if (errno != EINTR)
                w->err = errno;
            continue;
        }
        off += (size_t)n;
    }
    w->len = 0;
}

static void w_put(struct writer *w, const void *p, size_t n)
{
    w->crc = store_crc32c(w->crc, p, n);
    w->bytes += n;
    const unsigned char *src = p;
    while (n && !w->err) {
        size_t room = SNAP_BUF - w->len;
        size_t k = n < room ? n : room;
        memcpy(w->buf + w->len, src, k);
        w->len += k;
        src += k;
        n -= k;
        if (w->len == SNAP_BUF)
            w_flush(w);
    }
}

static int write_table(struct writer *w, MDB_txn *txn, MDB_dbi dbi, unsigned char table,
                       uint64_t *records)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return store_mdb_errno(rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && !w->err;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (table == SNAP_META && !(k.mv_size == 5 && !memcmp(k.mv_data, "state", 5)) &&
            !(k.mv_size == 6 && !memcmp(k.mv_data, "limits", 6)))
            continue; /* local records stay local */
        /* Values live in the inodes table (store_value_key); an image has
         * them apart, as "data" records keyed by the inode alone. */
        bool value = store_is_value_key(k.mv_data, k.mv_size);
        if (table == SNAP_INODES && value)
            continue;
        if (table == SNAP_DATA) {
            if (!value)
                continue;
            k.mv_size = 8;
        }
        unsigned char h[SNAP_REC_HDR];
        h[0] = table;
        put32(h + 1, (uint32_t)k.mv_size);
        put32(h + 5, (uint32_t)v.mv_size);
        w_put(w, h, sizeof(h));
        w_put(w, k.mv_data, k.mv_size);
        w_put(w, v.mv_data, v.mv_size);
        (*records)++;
    }
    mdb_cursor_close(cur);
    if (w->err)
        return w->err;
    return rc == MDB_NOTFOUND ? 0 : store_mdb_errno(rc);
}

int store_snapshot_write(struct store *s, int fd, struct store_snapshot_info *info)
{
    struct writer w = {.fd = fd};
    w.buf = malloc(SNAP_BUF);
    if (!w.buf)
        return ENOMEM;
    MDB_txn *txn;
    int rc = store_begin(s, MDB_RDONLY, &txn);
    if (rc) {
        free(w.buf);
        return store_mdb_errno(rc);
    }
    struct store_state st;
    if ((rc = store_state_load(s, txn, &st)))
        goto out;
    unsigned char hdr[SNAP_HDR_LEN] = SNAP_MAGIC;
    put32(hdr + SNAP_MAGIC_LEN, SNAP_VERSION);
    put64(hdr + SNAP_MAGIC_LEN + 4, st.applied_index);
    put64(hdr + SNAP_MAGIC_LEN + 12, st.revision);
    w_put(&w, hdr, sizeof(hdr));
    uint64_t records = 0;
    MDB_dbi dbis[SNAP_TABLES] = {s->meta,       s->inodes,      s->dirents, s->inodes,
                                 s->sessions,   s->session_lru, s->members, s->leases,
                                 s->lease_keys, s->ino_lease,   s->auth};
    for (unsigned char t = SNAP_META; t <= SNAP_TABLES && !rc; t++)
        rc = write_table(&w, txn, dbis[t - 1], t, &records);
    if (rc)
        goto out;
    unsigned char tr[SNAP_TRAILER];
    tr[0] = SNAP_END;
    put64(tr + 1, records);
    w_put(&w, tr, 9);
    put32(tr + 9, w.crc);
    /* the CRC itself is not part of what it covers */
    if (!w.err) {
        if (w.len + 4 > SNAP_BUF)
            w_flush(&w);
        memcpy(w.buf + w.len, tr + 9, 4);
        w.len += 4;
        w.bytes += 4;
    }
    w_flush(&w);
    if (!w.err && fault_fsync(FAULT_SNAP_SYNC, fd))
        w.err = errno;
    rc = w.err;
    if (!rc && info) {
        info->applied_index = st.applied_index;
        info->revision = st.revision;
        info->records = records;
        info->bytes = w.bytes;
    }
out:
    mdb_txn_abort(txn);
    free(w.buf);
    return rc;
}

/* ---- reading ---- */

struct reader {
    int fd;
    unsigned char *buf;
    size_t len, off;
    uint64_t pos; /* bytes consumed from the start of the file */
    uint32_t crc;
    int err;
    bool eof;
};

/* Makes n contiguous bytes available at r->buf + r->off (n <= SNAP_BUF).
 * False at the end of the file or on error. */
static bool r_need(struct reader *r, size_t n)
{
    if (r->len - r->off >= n)
        return true;
    memmove(r->buf, r->buf + r->off, r->len - r->off);
    r->len -= r->off;
    r->off = 0;
    while (r->len < n && !r->err) {
        ssize_t k = read(r->fd, r->buf + r->len, SNAP_BUF - r->len);
        if (k < 0) {
            if (errno != EINTR)
                r->err = errno;
            continue;
        }
        if (k == 0) {
            r->eof = true;
            return false;
        }
        r->len += (size_t)k;
    }
    return r->len >= n;
}

static const unsigned char *r_take(struct reader *r, size_t n)
{
    if (!r_need(r, n))
        return NULL;
    const unsigned char *p = r->buf + r->off;
    r->crc = store_crc32c(r->crc, p, n);
    r->off += n;
    r->pos += n;
    return p;
}

static int fail(char *err, size_t len, int rc, const char *what)
{
    if (err && len)
        snprintf(err, len, "snapshot image: %s", what);
    return rc;
}

/* One pass over the image; with txn, every record is also inserted. */
static int scan(struct store *s, MDB_txn *txn, int fd, struct store_snapshot_info *info, char *err,
                size_t err_len)
{
    struct reader r = {.fd = fd};
    if (lseek(fd, 0, SEEK_SET) < 0)
        return fail(err, err_len, errno, "cannot seek");
    r.buf = malloc(SNAP_BUF);
    if (!r.buf)
        return ENOMEM;
    int rc = 0;
    const unsigned char *p = r_take(&r, SNAP_HDR_LEN);
    if (!p || memcmp(p, SNAP_MAGIC, SNAP_MAGIC_LEN)) {
        rc = fail(err, err_len, EPROTO, "not a raftfs snapshot image");
        goto out;
    }
    if (get32(p + SNAP_MAGIC_LEN) != SNAP_VERSION) {
        rc = fail(err, err_len, EPROTO, "unknown image version");
        goto out;
    }
    uint64_t applied = get64(p + SNAP_MAGIC_LEN + 4), revision = get64(p + SNAP_MAGIC_LEN + 12);
    uint64_t records = 0;
    unsigned last_table = 0;
    unsigned char prev_key[STORE_DIRENT_KEY_MAX + 8];
    size_t prev_len = 0;
    bool have_state = false, have_limits = false;
    struct store_state st = {0};
    struct store_limits lim = {0};
    MDB_dbi dbis[SNAP_TABLES] = {0};
    if (s)
        memcpy(dbis,
               (MDB_dbi[]){s->meta, s->inodes, s->dirents, s->inodes, s->sessions, s->session_lru,
                           s->members, s->leases, s->lease_keys, s->ino_lease, s->auth},
               sizeof(dbis));
    for (;;) {
        p = r_take(&r, 1);
        if (!p) {
            rc = fail(err, err_len, EPROTO, "truncated");
            goto out;
        }
        unsigned table = p[0];
        if (table == SNAP_END)
            break;
        if (table < SNAP_META || table > SNAP_TABLES || table < last_table) {
            rc = fail(err, err_len, EPROTO, "bad table or table order");
            goto out;
        }
        if (table != last_table)
            prev_len = 0;
        last_table = table;
        p = r_take(&r, 8);
        if (!p) {
            rc = fail(err, err_len, EPROTO, "truncated");
            goto out;
        }
        uint32_t klen = get32(p), vlen = get32(p + 4);
        if (klen == 0 || klen > sizeof(prev_key) || vlen > STORE_MAX_VALUE_BYTES_BOUND) {
            rc = fail(err, err_len, EPROTO, "bad record length");
            goto out;
        }
        /* key and value together, contiguous: values are <= 64 MiB, so
         * large ones are read into their own buffer */
        const unsigned char *kp = r_take(&r, klen);
        if (!kp) {
            rc = fail(err, err_len, EPROTO, "truncated");
            goto out;
        }
        unsigned char key[sizeof(prev_key)];
        memcpy(key, kp, klen);
        if (prev_len &&
            (memcmp(prev_key, key, klen < prev_len ? klen : prev_len) > 0 ||
             (memcmp(prev_key, key, klen < prev_len ? klen : prev_len) == 0 && prev_len >= klen))) {
            rc = fail(err, err_len, EPROTO, "keys out of order");
            goto out;
        }
        memcpy(prev_key, key, klen);
        prev_len = klen;
        unsigned char *big = NULL;
        const unsigned char *vp;
        if (vlen <= SNAP_BUF / 2) {
            vp = r_take(&r, vlen);
        } else {
            big = malloc(vlen);
            if (!big) {
                rc = ENOMEM;
                goto out;
            }
            size_t got = 0;
            while (got < vlen) {
                size_t k = vlen - got < SNAP_BUF / 2 ? vlen - got : SNAP_BUF / 2;
                const unsigned char *q = r_take(&r, k);
                if (!q)
                    break;
                memcpy(big + got, q, k);
                got += k;
            }
            vp = got == vlen ? big : NULL;
        }
        if (!vp) {
            free(big);
            rc = fail(err, err_len, EPROTO, "truncated");
            goto out;
        }
        int bad = 0;
        if (table == SNAP_META) {
            if (klen == 5 && !memcmp(key, "state", 5))
                bad = store_state_decode(vp, vlen, &st), have_state = !bad;
            else if (klen == 6 && !memcmp(key, "limits", 6))
                bad = store_limits_decode(vp, vlen, &lim), have_limits = !bad;
            else
                bad = 1;
        } else if (table == SNAP_INODES) {
            struct store_inode in;
            bad = klen != 8 || store_inode_decode(vp, vlen, &in);
        } else if (table == SNAP_DIRENTS) {
            uint64_t ino;
            enum store_type type;
            bad = klen < 9 || store_dirent_val_decode(vp, vlen, &ino, &type);
        } else if (table == SNAP_DATA) {
            bad = klen != 8;
        } else if (table == SNAP_SESSIONS) {
            bad = klen != 8 || vlen < 32 || vp[0] != 1;
        } else if (table == SNAP_LRU) {
            bad = klen != 16 || vlen != 0;
        } else if (table == SNAP_LEASES) {
            uint64_t ttl;
            bad = klen != 8 || store_lease_decode(vp, vlen, &ttl);
        } else if (table == SNAP_LEASE_KEYS) {
            bad = klen != 16 || vlen != 0;
        } else if (table == SNAP_INO_LEASE) {
            bad = klen != 8 || vlen != 8;
        } else if (table == SNAP_AUTH) {
            bad = store_auth_record_check(key, klen, vp, vlen) != 0;
        } else {
            const char *addr;
            size_t addr_len;
            uint64_t inc;
            bad = klen != 8 || store_member_decode(vp, vlen, &addr, &addr_len, &inc);
        }
        if (bad) {
            free(big);
            rc = fail(err, err_len, EPROTO, "damaged record");
            goto out;
        }
        if (txn) {
            MDB_val k = {.mv_size = klen, .mv_data = key},
                    v = {.mv_size = vlen, .mv_data = (void *)vp};
            unsigned flags = MDB_APPEND;
            unsigned char vk[STORE_VALUE_KEY_LEN];
            if (table == SNAP_DATA) { /* next to its inode record, among them */
                store_value_key(store_u64be_get(key), vk);
                k = (MDB_val){.mv_size = sizeof(vk), .mv_data = vk};
                flags = MDB_NOOVERWRITE;
            }
            int mrc = mdb_put(txn, dbis[table - 1], &k, &v, flags);
            if (mrc) {
                free(big);
                rc = mrc == MDB_KEYEXIST ? fail(err, err_len, EPROTO, "keys out of order")
                                         : store_mdb_errno(mrc);
                goto out;
            }
        }
        free(big);
        records++;
    }
    p = r_take(&r, 8);
    uint32_t want_crc = r.crc;
    const unsigned char *c = p ? r_take(&r, 4) : NULL;
    if (!p || !c || get64(p) != records) {
        rc = fail(err, err_len, EPROTO, "truncated or bad trailer");
        goto out;
    }
    if (get32(c) != want_crc) {
        rc = fail(err, err_len, EPROTO, "checksum mismatch");
        goto out;
    }
    if (r_need(&r, 1)) {
        rc = fail(err, err_len, EPROTO, "bytes after the trailer");
        goto out;
    }
    if (!have_state || !have_limits || st.applied_index != applied || st.revision != revision) {
        rc = fail(err, err_len, EPROTO, "state or limits missing or inconsistent");
        goto out;
    }
    if (r.err) {
        rc = fail(err, err_len, r.err, "read error");
        goto out;
    }
    if (info) {
        info->applied_index = applied;
        info->revision = revision;
        info->records = records;
        info->bytes = r.pos;
    }
out:
    if (!rc && r.err)
        rc = r.err;
    free(r.buf);
    return rc;
}

int store_snapshot_check(int fd, struct store_snapshot_info *info, char *err, size_t err_len)
{
    return scan(NULL, NULL, fd, info, err, err_len);
}

int store_snapshot_install(struct store *s, int fd, struct store_snapshot_info *info, char *err,
                           size_t err_len)
{
    /* Check everything first: a damaged image must change nothing. */
    int rc = scan(NULL, NULL, fd, NULL, err, err_len);
    if (rc)
        return rc;
    MDB_txn *txn;
    if ((rc = store_begin(s, 0, &txn)))
        return fail(err, err_len, store_mdb_errno(rc), "cannot begin a transaction");
    /* The meta table keeps its local records (format); the others empty. */
    MDB_val sk = {.mv_size = 5, .mv_data = "state"}, lk = {.mv_size = 6, .mv_data = "limits"};
    int mrc = mdb_del(txn, s->meta, &sk, NULL);
    if (!mrc || mrc == MDB_NOTFOUND)
        mrc = mdb_del(txn, s->meta, &lk, NULL);
    if (mrc == MDB_NOTFOUND)
        mrc = 0;
    if (!mrc)
        mrc = mdb_drop(txn, s->inodes, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->dirents, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->data, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->sessions, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->session_lru, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->members, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->leases, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->lease_keys, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->ino_lease, 0);
    if (!mrc)
        mrc = mdb_drop(txn, s->auth, 0);
    if (mrc) {
        mdb_txn_abort(txn);
        return fail(err, err_len, store_mdb_errno(mrc), "cannot clear the state");
    }
    /* meta keeps only "format", which sorts before "limits" and "state":
     * every table can be filled in append mode. */
    struct store_snapshot_info got;
    rc = scan(s, txn, fd, &got, err, err_len);
    /* The history here does not reach past the image (store_history.c). */
    if (!rc && (rc = store_history_reset(s, txn, got.revision)))
        rc = fail(err, err_len, rc, "cannot reset the change history");
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (info)
        *info = got;
    if ((mrc = mdb_txn_commit(txn)))
        return fail(err, err_len, store_commit_errno(s, mrc), "cannot commit");
    if (info)
        s->visible_index = info->applied_index;
    struct store_limits lim;
    MDB_txn *rt;
    if (!store_begin(s, MDB_RDONLY, &rt)) {
        MDB_val v;
        if (!mdb_get(rt, s->meta, &lk, &v) && !store_limits_decode(v.mv_data, v.mv_size, &lim))
            s->limits = lim;
        mdb_txn_abort(rt);
    }
    return 0;
}
