/* store_session.c - exactly-once application: the last result of each
 * client (client_id, seq), kept in the replicated state.
 *
 * A proposal retried after a leader change may be committed twice; the
 * second copy finds its (client_id, seq) here and returns the first
 * result without applying anything (Raft dissertation §6.3). The table is
 * bounded: past STORE_MAX_SESSIONS clients, the one whose last command is
 * oldest (by log index) is forgotten. Everything here depends only on the
 * log, so every replica keeps the same table.
 *
 * Tables:
 *   sessions     u64be client_id -> u8 version (1) | u8 flags (1: attr,
 *                2: a txn's compares held) | u16 a txn's failed op (1-based,
 *                0 none) | i32 err | u64 seq | u64 revision | u64 index |
 *                inode record of the result's attributes (if flag 1)
 *   session_lru  u64be index ++ u64be client_id -> (empty)
 */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "store_le.h"

#define SESSION_FIXED 32

int store_session_get(struct store *s, MDB_txn *txn, uint64_t client_id, struct store_session *out)
{
    unsigned char kb[8];
    store_u64be_put(kb, client_id);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    int rc = mdb_get(txn, s->sessions, &k, &v);
    if (rc)
        return store_mdb_errno(rc);
    const unsigned char *p = v.mv_data;
    if (v.mv_size < SESSION_FIXED || p[0] != 1 || (p[1] & ~3))
        return EIO;
    memset(out, 0, sizeof(*out));
    out->result.txn_succeeded = p[1] & 2;
    out->result.txn_failed_op = (uint32_t)p[2] | (uint32_t)p[3] << 8;
    out->result.err = (int)get32(p + 4);
    out->seq = get64(p + 8);
    out->result.revision = get64(p + 16);
    out->index = get64(p + 24);
    if (p[1] & 1) {
        struct store_inode in;
        if (store_inode_decode(p + SESSION_FIXED, v.mv_size - SESSION_FIXED, &in))
            return EIO;
        out->result.has_attr = true;
        out->result.attr = in.attr;
    } else if (v.mv_size != SESSION_FIXED) {
        return EIO;
    }
    return 0;
}

static int lru_key(unsigned char kb[16], uint64_t index, uint64_t client_id)
{
    store_u64be_put(kb, index);
    store_u64be_put(kb + 8, client_id);
    return 16;
}

int store_session_put(struct store *s, MDB_txn *txn, uint64_t client_id, uint64_t seq,
                      uint64_t index, const struct store_result *res)
{
    struct store_session old;
    int rc = store_session_get(s, txn, client_id, &old);
    unsigned char lk[16];
    MDB_val k = {.mv_size = 16, .mv_data = lk};
    bool existed = rc == 0;
    if (rc && rc != ENOENT)
        return rc;
    if (existed) {
        lru_key(lk, old.index, client_id);
        rc = mdb_del(txn, s->session_lru, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return store_mdb_errno(rc);
    }
    unsigned char rec[SESSION_FIXED + STORE_INODE_REC_MAX];
    size_t len = SESSION_FIXED;
    rec[0] = 1;
    rec[1] = (res->has_attr ? 1 : 0) | (res->txn_succeeded ? 2 : 0);
    /* Fits: a txn holds at most STORE_MAX_TXN_OPS commands. */
    rec[2] = (unsigned char)(res->txn_failed_op & 0xff);
    rec[3] = (unsigned char)(res->txn_failed_op >> 8);
    put32(rec + 4, (uint32_t)res->err);
    put64(rec + 8, seq);
    put64(rec + 16, res->revision);
    put64(rec + 24, index);
    if (res->has_attr) {
        struct store_inode in = {.attr = res->attr, .name_len = 0};
        len += store_inode_encode(&in, rec + SESSION_FIXED);
    }
    unsigned char kb[8];
    store_u64be_put(kb, client_id);
    MDB_val sk = {.mv_size = 8, .mv_data = kb}, sv = {.mv_size = len, .mv_data = rec};
    if ((rc = mdb_put(txn, s->sessions, &sk, &sv, 0)))
        return store_mdb_errno(rc);
    lru_key(lk, index, client_id);
    MDB_val empty = {.mv_size = 0, .mv_data = ""};
    if ((rc = mdb_put(txn, s->session_lru, &k, &empty, 0)))
        return store_mdb_errno(rc);
    if (existed)
        return 0;
    /* A new client: forget the least recently active one past the bound. */
    MDB_stat st;
    if ((rc = mdb_stat(txn, s->sessions, &st)))
        return store_mdb_errno(rc);
    if (st.ms_entries <= STORE_MAX_SESSIONS)
        return 0;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->session_lru, &cur)))
        return store_mdb_errno(rc);
    MDB_val ok, ov;
    rc = mdb_cursor_get(cur, &ok, &ov, MDB_FIRST);
    if (!rc && ok.mv_size == 16) {
        unsigned char victim[8];
        memcpy(victim, (unsigned char *)ok.mv_data + 8, 8);
        rc = mdb_cursor_del(cur, 0);
        MDB_val vk = {.mv_size = 8, .mv_data = victim};
        if (!rc)
            rc = mdb_del(txn, s->sessions, &vk, NULL);
    } else if (!rc) {
        rc = MDB_CORRUPTED;
    }
    mdb_cursor_close(cur);
    return rc ? (rc == MDB_NOTFOUND ? EIO : store_mdb_errno(rc)) : 0;
}
