/* store_check_log.c - the check of the Raft log: entries contiguous from
 * just after the snapshot, each sealed (CRC-32C), of a known type, terms
 * never decreasing; the hard state's term at least the last entry's; the
 * applied index between the snapshot's and the last entry; the snapshot
 * image the log starts after passes store_snapshot_check.
 *
 * The log in wal/ is read by store_wal.c's replay, opened read-only: it
 * already refuses every damage to the files (naming the segment and offset)
 * but a torn last batch, so this file checks what the records say. The
 * LMDB tables of an older raftfs (moved to wal/ at the next start) are
 * decoded here again, from the format, independently of the code that
 * wrote them, and each problem is placed. */
#include "store_check_internal.h"
#include "store_le.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store_crc.h"
#include "store_log.h"
#include "store_wal.h"

/* Records: u8 version, three zero bytes, u32 CRC-32C of every byte after
 * the header, then the body (docs/store-format.md). */
#define LOG_REC_VERSION 1
#define LOG_REC_HDR     8
#define LOG_ENTRY_FIXED (LOG_REC_HDR + 12)
#define LOG_HARD_LEN    (LOG_REC_HDR + 24)
#define LOG_SNAP_FIXED  (LOG_REC_HDR + 28)
#define LOG_TYPE_MIN    1 /* command */
#define LOG_TYPE_MAX    3 /* no-op 2, configuration 3 */

/* Is rec a record of version 1 whose CRC matches? */
static bool sealed(const unsigned char *rec, size_t len)
{
    return len >= LOG_REC_HDR && rec[0] == LOG_REC_VERSION && !rec[1] && !rec[2] && !rec[3] &&
           get32(rec + 4) == store_crc32c(0, rec + LOG_REC_HDR, len - LOG_REC_HDR);
}

static void check_snapshot_file(struct store_checker *c, const struct store_log_snapshot *snap)
{
    char path[4300], err[256];
    snprintf(path, sizeof(path), "%s/snapshots/snap-%llu-%llu", c->dir,
             (unsigned long long)snap->index, (unsigned long long)snap->term);
    const char *name = strrchr(path, '/') + 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        store_check_problem(c,
                            "the log starts after a snapshot whose image cannot be opened: %s "
                            "(snapshots/%s)",
                            strerror(errno), name);
        return;
    }
    struct store_snapshot_info info;
    err[0] = 0;
    int rc = store_snapshot_check(fd, &info, err, sizeof(err));
    close(fd);
    if (rc) {
        store_check_problem(c, "%s (snapshots/%s)", err[0] ? err : strerror(rc), name);
        return;
    }
    if (info.applied_index != snap->index)
        store_check_problem(c, "snapshot image of index %llu, the log says %llu (snapshots/%s)",
                            (unsigned long long)info.applied_index, (unsigned long long)snap->index,
                            name);
    if (info.bytes != snap->size)
        store_check_problem(c, "snapshot image of %llu bytes, the log says %llu (snapshots/%s)",
                            (unsigned long long)info.bytes, (unsigned long long)snap->size, name);
    if (c->have_state && info.revision > c->st.revision)
        store_check_problem(
            c, "snapshot image at revision %llu, above the store's %llu (snapshots/%s)",
            (unsigned long long)info.revision, (unsigned long long)c->st.revision, name);
}

/* What both kinds of log are checked for once their records are read. */
static void check_rest(struct store_checker *c, const struct store_log_snapshot *snapp,
                       bool have_snap, const struct store_hard_state *hsp, bool hs_damaged,
                       uint64_t n, uint64_t first, uint64_t last, uint64_t last_term)
{
    struct store_log_snapshot snap = *snapp;
    struct store_hard_state hs = *hsp;
    if (n == 0)
        first = snap.index + 1;

    /* The hard state: no entry of a term above the current one (Raft
     * §3.3: currentTerm only grows, and is durable before entries of it).
     * Its commit index is a hint that may run ahead of the log or lag
     * behind the applied index (raft/raft.c clamps it at start): not
     * checked. */
    if (n && !hs_damaged && hs.term < last_term)
        store_check_problem(c, "current term %llu below the last entry's term %llu (raft hard)",
                            (unsigned long long)hs.term, (unsigned long long)last_term);

    /* The applied index: at least the snapshot's (the state holds it) and
     * at most the log's last (every applied entry was in the log first), once
     * the store has a log at all: one that applied commands without Raft has
     * none until a node adopts its state. */
    if (c->have_state) {
        uint64_t applied = c->st.applied_index;
        if (applied < snap.index)
            store_check_problem(c, "applied index %llu below the snapshot's %llu (meta state)",
                                (unsigned long long)applied, (unsigned long long)snap.index);
        if ((have_snap || n) && applied > last)
            store_check_problem(c,
                                "applied index %llu beyond the log's last entry %llu (meta state)",
                                (unsigned long long)applied, (unsigned long long)last);
    }
    /* A snapshot taken or installed has its image (size > 0); adopting a
     * store's state as the log's start records none (size 0). */
    if (have_snap && snap.index && snap.size)
        check_snapshot_file(c, &snap);
    c->rep->log_first = first;
    c->rep->log_last = last;
    c->rep->log_term = last_term;
}

/* The log of an older raftfs, still in the store's LMDB tables (it moves
 * to wal/ at the member's next start). */
static void check_tables(struct store_checker *c)
{
    struct store_log_snapshot snap = {0};
    struct store_hard_state hs = {0};
    bool have_snap = false, hs_damaged = false;
    MDB_val k, v;
    int rc = 0;
    if (c->have_raft) {
        k = (MDB_val){.mv_size = 4, .mv_data = "snap"};
        rc = mdb_get(c->txn, c->s->raft, &k, &v);
        if (!rc) {
            const unsigned char *p = v.mv_data;
            uint32_t conf_len = v.mv_size >= LOG_SNAP_FIXED ? get32(p + LOG_REC_HDR + 24) : 0;
            if (v.mv_size < LOG_SNAP_FIXED || !sealed(p, v.mv_size) ||
                conf_len > STORE_LOG_CONF_MAX || v.mv_size != LOG_SNAP_FIXED + conf_len) {
                store_check_problem(c, "the snapshot record %s (raft snap)",
                                    v.mv_size >= LOG_REC_HDR && !sealed(p, v.mv_size)
                                        ? "fails its checksum"
                                        : "is malformed");
            } else {
                have_snap = true;
                snap.index = get64(p + LOG_REC_HDR);
                snap.term = get64(p + LOG_REC_HDR + 8);
                snap.size = get64(p + LOG_REC_HDR + 16);
            }
        } else if (rc != MDB_NOTFOUND) {
            store_check_unreadable(c, "raft", rc);
        }
        k = (MDB_val){.mv_size = 4, .mv_data = "hard"};
        rc = mdb_get(c->txn, c->s->raft, &k, &v);
        if (!rc) {
            if (v.mv_size != LOG_HARD_LEN || !sealed(v.mv_data, v.mv_size)) {
                hs_damaged = true;
                store_check_problem(c, "the hard state record %s (raft hard)",
                                    v.mv_size == LOG_HARD_LEN ? "fails its checksum"
                                                              : "is malformed");
            } else {
                const unsigned char *p = v.mv_data;
                hs.term = get64(p + LOG_REC_HDR);
                hs.vote = get64(p + LOG_REC_HDR + 8);
                hs.commit = get64(p + LOG_REC_HDR + 16);
            }
        } else if (rc != MDB_NOTFOUND) {
            store_check_unreadable(c, "raft", rc);
        }
    }

    /* The entries: contiguous from snapshot index + 1, sealed, known
     * types, terms never decreasing (none below the snapshot's). */
    uint64_t first = snap.index + 1, last = snap.index, last_term = snap.term, n = 0;
    MDB_cursor *cur;
    if (c->have_log && !(rc = mdb_cursor_open(c->txn, c->s->log, &cur))) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8) {
                store_check_problem(c, "a log entry has a %zu-byte key (log)", k.mv_size);
                continue;
            }
            uint64_t index = store_u64be_get(k.mv_data);
            if (n == 0 && index != snap.index + 1)
                store_check_problem(
                    c,
                    "the log starts at index %llu, not right after the snapshot's %llu "
                    "(log index %llu)",
                    (unsigned long long)index, (unsigned long long)snap.index,
                    (unsigned long long)index);
            else if (n > 0 && index != last + 1)
                store_check_problem(
                    c, "gap in the log: entries %llu..%llu are missing (log index %llu)",
                    (unsigned long long)last + 1, (unsigned long long)index - 1,
                    (unsigned long long)index);
            if (n == 0)
                first = index;
            n++;
            last = index;
            const unsigned char *p = v.mv_data;
            if (v.mv_size < LOG_ENTRY_FIXED || !sealed(p, v.mv_size)) {
                store_check_problem(c, "log entry %s (log index %llu)",
                                    v.mv_size >= LOG_REC_HDR && p[0] == LOG_REC_VERSION
                                        ? "fails its checksum"
                                        : "is malformed",
                                    (unsigned long long)index);
                continue;
            }
            uint64_t term = get64(p + LOG_REC_HDR);
            uint32_t type = get32(p + LOG_REC_HDR + 8);
            if (type < LOG_TYPE_MIN || type > LOG_TYPE_MAX)
                store_check_problem(c, "log entry of unknown type %u (log index %llu)", type,
                                    (unsigned long long)index);
            if (term == 0 || term < last_term)
                store_check_problem(c, "log entry of term %llu after term %llu (log index %llu)",
                                    (unsigned long long)term, (unsigned long long)last_term,
                                    (unsigned long long)index);
            last_term = term;
        }
        mdb_cursor_close(cur);
    }
    if (c->have_log && rc != MDB_NOTFOUND)
        store_check_unreadable(c, "log", rc);
    check_rest(c, &snap, have_snap, &hs, hs_damaged, n, first, last, last_term);
}

/* The log in wal/ (store_wal.c): opened read-only, which replays it and
 * refuses any damage but a torn last batch (a crash's, never acknowledged). */
static void check_wal(struct store_checker *c, const char *path)
{
    struct store_wal *w;
    char err[600];
    err[0] = 0;
    int rc = store_wal_open(path, true, 0, &w, err, sizeof(err));
    if (rc) {
        store_check_problem(c, "the Raft log cannot be read: %s", err[0] ? err : strerror(rc));
        return;
    }
    struct store_log_snapshot snap;
    struct store_hard_state hs;
    store_wal_snapshot(w, &snap);
    store_wal_hard_state(w, &hs);
    uint64_t first, last, last_term = snap.term, n = 0;
    store_wal_bounds(w, &first, &last);
    for (uint64_t lo = first; lo <= last;) {
        struct store_log_entry *e;
        size_t k;
        if ((rc = store_wal_entries(w, lo, last + 1, 4u << 20, &e, &k))) {
            store_check_problem(c, "the Raft log's entries from %llu cannot be read: %s",
                                (unsigned long long)lo, strerror(rc));
            break;
        }
        for (size_t i = 0; i < k; i++) {
            if (e[i].type < LOG_TYPE_MIN || e[i].type > LOG_TYPE_MAX)
                store_check_problem(c, "log entry of unknown type %u (log index %llu)", e[i].type,
                                    (unsigned long long)e[i].index);
            if (e[i].term == 0 || e[i].term < last_term)
                store_check_problem(c, "log entry of term %llu after term %llu (log index %llu)",
                                    (unsigned long long)e[i].term, (unsigned long long)last_term,
                                    (unsigned long long)e[i].index);
            last_term = e[i].term;
        }
        n += k;
        lo += k;
        free(e);
    }
    store_wal_close(w);
    check_rest(c, &snap, snap.index > 0, &hs, false, n, first, last, last_term);
}

void store_check_log(struct store_checker *c)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/" STORE_WAL_DIR, c->dir);
    struct stat st;
    if (stat(path, &st) == 0)
        check_wal(c, path);
    else
        check_tables(c);
}
