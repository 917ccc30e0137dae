/* store_history.c - the change history: one event per revision that
 * changed the tree, kept for the last store_config.history_revisions
 * revisions, for watchers (issue 7) that resume from a revision.
 *
 * Design notes
 * 1. An event is written in the transaction that applies its command, so
 *    the history is exactly as durable as the tree. Commands that change no
 *    tree entry (member directory) bump the revision without an event: a
 *    watcher sees gaps, never a missing change.
 * 2. The history is this member's, derived from what it applied; it is not
 *    in snapshot images or the state digest. Installing an image resets it
 *    (nothing before the image's revision is known here), and so does
 *    opening a store whose history does not reach its revision (written by
 *    a build without one): events at or below "compacted" are gone, and a
 *    watcher asking for them is told so (STORE_ECOMPACTED) and re-lists.
 * 3. Compaction deletes the oldest events a few at a time per batch (at
 *    most HISTORY_DELETE_PER_EVENT for each event the batch added, plus a
 *    few), so a smaller limit set at a restart is reached gradually and no
 *    batch pays for a large deletion.
 *
 * 4. A txn changes several entries in one revision: its first event has
 *    the key of a plain one, the others that key and their position in
 *    the txn (1, 2 ...), so they sort after it and before the next
 *    revision.
 *
 * Records (table "history", key: revision as u64 big endian, and for the
 * second and later events of a txn a u32 big endian position), little
 * endian:
 *   u8 version (1) | u8 op (store_op) | u8 type (store_type, 0 unknown)
 *   | u8 rename flags | u32 mode | u64 ino | u64 size | u32 path length
 *   | u32 path2 length | path | path2
 * meta "history": u64 compacted | u64 complete (the store revision the
 *   history reaches).
 */
#include "store_internal.h"

#include <string.h>

#include "store_le.h"

#define EV_VERSION               1
#define EV_FIXED                 32
#define HISTORY_META_LEN         16
#define HISTORY_DELETE_PER_EVENT 2
#define HISTORY_DELETE_EXTRA     16

static const MDB_val history_key = {.mv_size = 7, .mv_data = "history"};

bool store_history_op(enum store_op op)
{
    return op >= STORE_OP_PUT && op <= STORE_OP_SETATTR;
}

static int meta_load(struct store *s, MDB_txn *txn, uint64_t *compacted, uint64_t *complete)
{
    MDB_val v;
    int rc = mdb_get(txn, s->meta, (MDB_val *)&history_key, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? ENOENT : store_mdb_errno(rc);
    if (v.mv_size != HISTORY_META_LEN)
        return EIO;
    *compacted = get64(v.mv_data);
    *complete = get64((const unsigned char *)v.mv_data + 8);
    return *compacted <= *complete ? 0 : EIO;
}

static int meta_save(struct store *s, MDB_txn *txn, uint64_t compacted, uint64_t complete)
{
    unsigned char buf[HISTORY_META_LEN];
    put64(buf, compacted);
    put64(buf + 8, complete);
    MDB_val v = {.mv_size = sizeof(buf), .mv_data = buf};
    return store_mdb_errno(mdb_put(txn, s->meta, (MDB_val *)&history_key, &v, 0));
}

int store_history_reset(struct store *s, MDB_txn *txn, uint64_t revision)
{
    int rc = store_mdb_errno(mdb_drop(txn, s->history, 0));
    return rc ? rc : meta_save(s, txn, revision, revision);
}

int store_history_open(struct store *s, MDB_txn *txn, uint64_t revision)
{
    uint64_t compacted = 0, complete = 0;
    int rc = meta_load(s, txn, &compacted, &complete);
    if (rc == ENOENT || (!rc && complete != revision))
        return store_history_reset(s, txn, revision);
    return rc;
}

uint64_t store_history_key_revision(const void *key, size_t len)
{
    const unsigned char *p = key;
    if (len == 8)
        return store_u64be_get(p);
    if (len == 12 && (p[8] | p[9] | p[10] | p[11]))
        return store_u64be_get(p);
    return 0;
}

int store_history_add(struct store *s, MDB_txn *txn, uint64_t revision, uint32_t pos,
                      const struct store_cmd *c, const struct store_result *res)
{
    size_t len = EV_FIXED + c->path_len + (c->op == STORE_OP_RENAME ? c->path2_len : 0);
    MDB_val v = {.mv_size = len}, k;
    unsigned char kb[12];
    store_u64be_put(kb, revision);
    kb[8] = (unsigned char)(pos >> 24);
    kb[9] = (unsigned char)(pos >> 16);
    kb[10] = (unsigned char)(pos >> 8);
    kb[11] = (unsigned char)pos;
    k.mv_size = pos ? 12 : 8;
    k.mv_data = kb;
    /* Revisions only grow: appended at the end of the table. */
    int rc = mdb_put(txn, s->history, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (rc)
        return store_mdb_errno(rc);
    unsigned char *p = v.mv_data;
    memset(p, 0, EV_FIXED);
    p[0] = EV_VERSION;
    p[1] = (unsigned char)c->op;
    if (res->has_attr) {
        p[2] = (unsigned char)res->attr.type;
        put32(p + 4, res->attr.mode);
        put64(p + 8, res->attr.ino);
        put64(p + 16, res->attr.size);
    }
    if (c->op == STORE_OP_RENAME)
        p[3] = (unsigned char)c->rename_flags;
    put32(p + 24, (uint32_t)c->path_len);
    memcpy(p + EV_FIXED, c->path, c->path_len);
    if (c->op == STORE_OP_RENAME) {
        put32(p + 28, (uint32_t)c->path2_len);
        memcpy(p + EV_FIXED + c->path_len, c->path2, c->path2_len);
    }
    return 0;
}

int store_history_batch_end(struct store *s, MDB_txn *txn, uint64_t revision, size_t added)
{
    uint64_t c, complete;
    int rc = meta_load(s, txn, &c, &complete);
    if (rc)
        return rc == ENOENT ? EIO : rc; /* store_history_open wrote it */
    if (revision == complete)
        return 0;
    uint64_t *compacted = &c;
    uint64_t keep = s->history_keep ? s->history_keep : STORE_DEFAULT_HISTORY_REVISIONS;
    uint64_t target = revision > keep ? revision - keep : 0;
    if (target > *compacted) {
        size_t budget = added * HISTORY_DELETE_PER_EVENT + HISTORY_DELETE_EXTRA;
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, s->history, &cur)))
            return store_mdb_errno(rc);
        MDB_val k, v;
        uint64_t reached = target, last = 0; /* nothing left at or below target */
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (!rc) {
            uint64_t r = store_history_key_revision(k.mv_data, k.mv_size);
            if (r > target)
                break;
            /* Out of budget: stop before a revision, never inside one. */
            if (!budget && r != last) {
                reached = r - 1; /* events up to r - 1 are gone */
                break;
            }
            if (budget)
                budget--;
            last = r;
            if ((rc = mdb_cursor_del(cur, 0)))
                break;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND)
            return store_mdb_errno(rc);
        if (reached > *compacted)
            *compacted = reached;
    }
    return meta_save(s, txn, c, revision);
}

int store_event_decode(uint64_t revision, const void *rec, size_t len, struct store_event *out)
{
    const unsigned char *p = rec;
    if (len < EV_FIXED || p[0] != EV_VERSION || !store_history_op(p[1]) || p[2] > STORE_TYPE_DIR)
        return EIO;
    uint32_t pl = get32(p + 24), p2l = get32(p + 28);
    if ((uint64_t)EV_FIXED + pl + p2l != len || !pl || (p[1] == STORE_OP_RENAME) != (p2l > 0))
        return EIO;
    memset(out, 0, sizeof(*out));
    out->revision = revision;
    out->op = (enum store_op)p[1];
    out->type = (enum store_type)p[2];
    out->rename_flags = p[3];
    out->mode = get32(p + 4);
    out->ino = get64(p + 8);
    out->size = get64(p + 16);
    out->path = (const char *)p + EV_FIXED;
    out->path_len = pl;
    out->path2 = p2l ? (const char *)p + EV_FIXED + pl : NULL;
    out->path2_len = p2l;
    return 0;
}

int store_events(struct store_txn *t, uint64_t from,
                 int (*cb)(void *ctx, const struct store_event *ev), void *ctx, uint64_t *compacted)
{
    struct store *s = t->s;
    uint64_t c, complete;
    int rc = meta_load(s, t->txn, &c, &complete);
    if (rc == ENOENT) /* a store opened read-only before its first start here */
        c = complete = t->st.revision;
    else if (rc)
        return rc;
    if (compacted)
        *compacted = c;
    if (from <= c)
        return STORE_ECOMPACTED;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(t->txn, s->history, &cur)))
        return store_mdb_errno(rc);
    unsigned char kb[8];
    store_u64be_put(kb, from);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int out = 0;
    while (!rc && !out) {
        struct store_event ev;
        uint64_t r = store_history_key_revision(k.mv_data, k.mv_size);
        if (!r || store_event_decode(r, v.mv_data, v.mv_size, &ev)) {
            out = EIO;
            break;
        }
        out = cb(ctx, &ev);
        if (!out)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (out)
        return out < 0 ? 0 : out;
    return rc == MDB_NOTFOUND ? 0 : store_mdb_errno(rc);
}
