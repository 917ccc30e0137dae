/* store_wal.h - the files of the Raft log: append-only segments in the data
 * directory's wal/ (store_wal.c; the format is in docs/store-format.md).
 * Internal to store/: store_log.c puts the store_log.h API on it, and the
 * offline check (store_check_log.c) opens it read-only.
 *
 * Threads: one thread writes (append, compact); the readers (hard_state,
 * snapshot, bounds, term, entries) may run on any thread at the same time.
 */
#ifndef RAFTFS_STORE_WAL_H
#define RAFTFS_STORE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_log.h"

#define STORE_WAL_DIR       "wal"
#define STORE_WAL_TMP       "wal.tmp"
#define STORE_WAL_SEG_BYTES (16u << 20) /* the default size of a segment */
#define STORE_WAL_SEG_MIN   (64u << 10)

struct store_wal;

/* Opens the log in directory dir (which exists) and replays it. A batch
 * torn by a crash at the end of the last segment is discarded (zeroed, unless
 * read_only) and described by store_wal_note; any other damage is EIO with
 * the place in err. read_only: nothing is written (for the check).
 * seg_bytes: the size of new segments (0: the default). */
int store_wal_open(const char *dir, bool read_only, uint64_t seg_bytes, struct store_wal **out,
                   char *err, size_t err_len);
void store_wal_close(struct store_wal *w);

/* What the open found worth telling (a discarded torn batch), or "". */
const char *store_wal_note(const struct store_wal *w);

/* Appends the hard state (if hs) and the entries (if n) as one batch and
 * fdatasyncs it. Entries replace e[0].index and every later one. EINVAL (a
 * gap, below the snapshot), ENOSPC (no room for a new segment: nothing
 * written), EIO (and every later write is EIO: after a failed fdatasync
 * nothing written since the last good one can be trusted). */
int store_wal_append(struct store_wal *w, const struct store_hard_state *hs,
                     const struct store_log_entry *e, size_t n);

/* Records that the log starts after snap (entries up to it go; with
 * drop_all every entry goes), then deletes the segments that hold only
 * entries it dropped. EINVAL if snap is below the current snapshot. */
int store_wal_compact(struct store_wal *w, const struct store_log_snapshot *snap, bool drop_all);

void store_wal_hard_state(struct store_wal *w, struct store_hard_state *out);
void store_wal_snapshot(struct store_wal *w, struct store_log_snapshot *out);
void store_wal_bounds(struct store_wal *w, uint64_t *first, uint64_t *last);
/* As store_log_term and store_log_entries. */
int store_wal_term(struct store_wal *w, uint64_t index, uint64_t *term);
int store_wal_entries(struct store_wal *w, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct store_log_entry **out, size_t *n);

/* Segments this writer started with one made ahead by its helper thread,
 * and ones it had to make itself (the first, a bigger one, or when the
 * helper failed). Writer thread only. */
void store_wal_made(const struct store_wal *w, uint64_t *ahead, uint64_t *in_place);

/* How many segment files the log has now, and their bytes. */
void store_wal_usage(struct store_wal *w, size_t *segments, uint64_t *bytes);

#endif
