/* store_log.c - the store_log.h API over the log's segment files
 * (store_wal.c), and the move of a log that an older raftfs kept in the
 * store's LMDB tables into them.
 *
 * The old tables, kept only to be read once:
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
#include "store_le.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_crc.h"
#include "fault.h"
#include "store_internal.h"
#include "store_wal.h"

#define REC_VERSION 1
#define REC_HDR     8
#define ENTRY_FIXED (REC_HDR + 12)
#define HARD_LEN    (REC_HDR + 24)
#define SNAP_FIXED  (REC_HDR + 28)

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

/* ---- the API ------------------------------------------------------------ */

int store_log_persist(struct store *s, const struct store_hard_state *hs,
                      const struct store_log_entry *e, size_t n, bool sync)
{
    /* Every batch is synced: a batch written unsynced before a synced one
     * could be torn by a crash while the later one survives, which the
     * replay must treat as corruption. (raft asks for sync whenever there
     * are entries or a changed term or vote, so this costs nothing.) */
    (void)sync;
    return store_wal_append(s->wal, hs, e, n);
}

int store_log_hard_state(struct store *s, struct store_hard_state *out)
{
    store_wal_hard_state(s->wal, out);
    return 0;
}

int store_log_bounds(struct store *s, uint64_t *first, uint64_t *last)
{
    store_wal_bounds(s->wal, first, last);
    return 0;
}

int store_log_term(struct store *s, uint64_t index, uint64_t *term)
{
    return store_wal_term(s->wal, index, term);
}

int store_log_entries(struct store *s, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct store_log_entry **out, size_t *n)
{
    return store_wal_entries(s->wal, lo, hi, max_bytes, out, n);
}

int store_log_snapshot(struct store *s, struct store_log_snapshot *out)
{
    store_wal_snapshot(s->wal, out);
    return 0;
}

int store_log_compact(struct store *s, const struct store_log_snapshot *snap, bool drop_all)
{
    if (snap->conf_len > STORE_LOG_CONF_MAX)
        return EINVAL;
    /* The tree's commits are not all synced (store_set_lazy_apply): the log
     * keeps the entries they applied until they are. Entries the snapshot
     * covers go now, so the tree must be durable up to it first. */
    int rc = fault_at(FAULT_TREE_SYNC);
    if (!rc)
        rc = mdb_env_sync(s->env, 1);
    if (rc) {
        store_sync_failed(s);
        return store_commit_errno(s, rc);
    }
    return store_wal_compact(s->wal, snap, drop_all);
}

const char *store_log_note(struct store *s)
{
    return s->wal ? store_wal_note(s->wal) : "";
}

/* ---- opening, and the move from the LMDB tables --------------------- */

/* Removes a directory of plain files (a log copy that was not finished). */
static int remove_flat_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : errno;
    struct dirent *de;
    int dfd = dirfd(d), rc = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && unlinkat(dfd, de->d_name, 0) &&
            !rc)
            rc = errno;
    closedir(d);
    if (!rc && rmdir(path))
        rc = errno;
    return rc;
}

static int sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) ? errno : 0;
    close(fd);
    return rc;
}

/* Empties the old tables once the log lives in wal/ (durable). */
static int clear_tables(struct store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_mdb_errno(rc);
    MDB_stat a, b;
    if ((rc = mdb_stat(txn, s->log, &a)) || (rc = mdb_stat(txn, s->raft, &b))) {
        mdb_txn_abort(txn);
        return store_mdb_errno(rc);
    }
    if (!a.ms_entries && !b.ms_entries) {
        mdb_txn_abort(txn);
        return 0;
    }
    if ((rc = mdb_drop(txn, s->log, 0)) || (rc = mdb_drop(txn, s->raft, 0))) {
        mdb_txn_abort(txn);
        return store_mdb_errno(rc);
    }
    return store_txn_commit(s, txn, true);
}

/* Copies the old tables' log into the log w (empty). */
static int copy_tables(struct store *s, struct store_wal *w, char *err, size_t err_len)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(err, err_len, store_mdb_errno(rc), "cannot read the old log: %s",
                          mdb_strerror(rc));
    struct store_log_snapshot snap;
    struct store_log_entry *batch = NULL;
    MDB_cursor *cur = NULL;
    const char *what = NULL;
    if ((rc = load_snap(s, txn, &snap))) {
        what = "snapshot record";
        goto out;
    }
    MDB_val k = {.mv_size = 4, .mv_data = "hard"}, v;
    struct store_hard_state hs = {0};
    rc = mdb_get(txn, s->raft, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = 0;
    } else if (rc) {
        rc = store_mdb_errno(rc);
        what = "hard state";
        goto out;
    } else if (v.mv_size != HARD_LEN || !sealed(v.mv_data, v.mv_size)) {
        rc = EIO;
        what = "hard state";
        goto out;
    } else {
        const unsigned char *p = v.mv_data;
        hs = (struct store_hard_state){.term = get64(p + REC_HDR),
                                       .vote = get64(p + REC_HDR + 8),
                                       .commit = get64(p + REC_HDR + 16)};
    }
    if (snap.index && (rc = store_wal_compact(w, &snap, true))) {
        what = "snapshot record (writing)";
        goto out;
    }
    if ((hs.term || hs.vote || hs.commit) && (rc = store_wal_append(w, &hs, NULL, 0))) {
        what = "hard state (writing)";
        goto out;
    }
    /* The entries, in batches of up to 4 MiB. */
    enum { BATCH = 512 };
    batch = malloc(BATCH * sizeof(*batch));
    if (!batch) {
        rc = ENOMEM;
        goto out;
    }
    if ((rc = mdb_cursor_open(txn, s->log, &cur))) {
        rc = store_mdb_errno(rc);
        what = "entries";
        goto out;
    }
    size_t n = 0, bytes = 0;
    uint64_t want = snap.index + 1;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        bool done = rc == MDB_NOTFOUND;
        if (rc && !done) {
            rc = store_mdb_errno(rc);
            what = "entries";
            goto out;
        }
        if (n && (done || n == BATCH || bytes + (v.mv_size) > (4u << 20))) {
            if ((rc = store_wal_append(w, NULL, batch, n))) {
                what = "entries (writing)";
                goto out;
            }
            n = bytes = 0;
        }
        if (done)
            break;
        if (k.mv_size != 8 || store_u64be_get(k.mv_data) != want ||
            decode_entry(want, &v, &batch[n])) {
            rc = EIO;
            what = "entries";
            goto out;
        }
        bytes += batch[n].len;
        n++;
        want++;
    }
    rc = 0;
out:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    free(batch);
    if (rc && what)
        return store_fail(err, err_len, rc, "moving the Raft log out of the store: the %s: %s",
                          what, strerror(rc));
    return rc;
}

int store_log_open(struct store *s, const char *dir, uint64_t seg_bytes, char *err, size_t err_len)
{
    char wal[3200], tmp[3200];
    snprintf(wal, sizeof(wal), "%s/" STORE_WAL_DIR, dir);
    snprintf(tmp, sizeof(tmp), "%s/" STORE_WAL_TMP, dir);
    int rc = remove_flat_dir(tmp);
    if (rc)
        return store_fail(err, err_len, rc, "%s: cannot remove: %s", tmp, strerror(rc));
    struct stat st;
    if (stat(wal, &st) == 0) {
        if ((rc = store_wal_open(wal, false, seg_bytes, &s->wal, err, err_len)))
            return rc;
        /* A move that stopped after the rename left the old tables. */
        if ((rc = clear_tables(s)))
            return store_fail(err, err_len, rc, "cannot clear the old log tables: %s",
                              strerror(rc));
        return 0;
    }
    if (errno != ENOENT)
        return store_fail(err, err_len, errno, "%s: %s", wal, strerror(errno));
    /* A new store, or one whose log is in the LMDB tables: build wal.tmp,
     * rename it into place, then empty the tables. */
    if (mkdir(tmp, 0700))
        return store_fail(err, err_len, errno, "%s: %s", tmp, strerror(errno));
    struct store_wal *w;
    if ((rc = store_wal_open(tmp, false, seg_bytes, &w, err, err_len)))
        return rc;
    if ((rc = copy_tables(s, w, err, err_len))) {
        store_wal_close(w);
        remove_flat_dir(tmp);
        return rc;
    }
    if ((rc = sync_path(tmp)) || (rename(tmp, wal) ? (rc = errno) : 0) || (rc = sync_path(dir))) {
        store_wal_close(w);
        return store_fail(err, err_len, rc, "%s: cannot put the log in place: %s", wal,
                          strerror(rc));
    }
    s->wal = w; /* its directory descriptor follows the rename */
    if ((rc = clear_tables(s)))
        return store_fail(err, err_len, rc, "cannot clear the old log tables: %s", strerror(rc));
    return 0;
}

void store_log_close(struct store *s)
{
    store_wal_close(s->wal);
    s->wal = NULL;
}
