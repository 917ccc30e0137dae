/* store_log.h - the durable Raft log: entries by index, the hard state
 * (term, vote, commit) and the metadata of the snapshot the log starts
 * after. It lives in the data directory's wal/ (store_wal.c): append-only
 * segment files, one fdatasync per write.
 *
 * Every batch carries a CRC-32C; a batch torn by a crash at the end of the
 * log is discarded at open (it was never acknowledged), and any other damage
 * or contradiction (an entry below the snapshot, a gap) makes store_open
 * fail: the member fails closed instead of trusting a damaged log. Entries
 * are replaced from an index on by the same write that adds the new ones,
 * so a crash never resurrects entries that a conflict removed.
 *
 * The store knows nothing of Raft's types: entries are (index, term, type,
 * bytes), the configuration of a snapshot is opaque bytes. node/ adapts
 * this to raft/'s storage interface.
 *
 * Threads: one thread writes (the node loop); reads may come from any
 * thread.
 */
#ifndef RAFTFS_STORE_LOG_H
#define RAFTFS_STORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The version of the log's files (wal/: docs/store-format.md). */
#define STORE_WAL_FORMAT 1

/* The index is below the first entry (compacted into the snapshot). */
#define STORE_ECOMPACTED ERANGE

struct store_log_entry {
    uint64_t index;
    uint64_t term;
    uint32_t type;
    const void *data; /* for writes: borrowed; for reads: see store_log_entries */
    size_t len;
};

struct store_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

/* Where the log starts: after the snapshot (index, term), whose membership
 * configuration is conf (opaque, at most STORE_LOG_CONF_MAX bytes). */
struct store_log_snapshot {
    uint64_t index; /* 0: no snapshot */
    uint64_t term;
    uint64_t size; /* bytes of the image */
    uint8_t conf[1024];
    size_t conf_len;
};
#define STORE_LOG_CONF_MAX 1024

/* Writes, as one batch and one fdatasync (always, whatever sync says): the
 * hard state (if hs), then the entries (if n): entry e[0].index and every
 * later stored entry are replaced by e[0..n). Entries must have consecutive
 * indexes and follow the log (e[0].index <= last index + 1, > snapshot
 * index). Errors: EINVAL (a gap, or below the snapshot), ENOSPC (no room for
 * a new segment; nothing written), EIO (after which every write is EIO). */
int store_log_persist(struct store *s, const struct store_hard_state *hs,
                      const struct store_log_entry *e, size_t n, bool sync);

/* The hard state; all zero for a new member. EIO if damaged. */
int store_log_hard_state(struct store *s, struct store_hard_state *out);

/* First index (snapshot index + 1) and last index (the snapshot index if
 * no entry follows it). EIO. */
int store_log_bounds(struct store *s, uint64_t *first, uint64_t *last);

/* Term of the entry at index; at the snapshot index, the snapshot's term.
 * STORE_ECOMPACTED below the snapshot, ENOENT beyond the last entry, EIO. */
int store_log_term(struct store *s, uint64_t index, uint64_t *term);

/* Entries [lo, hi), stopping once their data exceeds max_bytes (at least
 * one entry is returned). *out is one malloc'd block (free it alone) holding
 * the array and the data the entries point to. Errors as store_log_term,
 * and ENOMEM. */
int store_log_entries(struct store *s, uint64_t lo, uint64_t hi, size_t max_bytes,
                      struct store_log_entry **out, size_t *n);

/* The snapshot the log starts after (index 0: none). EIO. */
int store_log_snapshot(struct store *s, struct store_log_snapshot *out);

/* Records that the log now starts after snap: entries up to snap->index
 * are deleted (those after it stay), in one write, once the store's tree is
 * synced (its commits may be lazy, store_set_lazy_apply). For compaction
 * after a local snapshot, and for an installed one (with drop_all, every
 * entry goes). EINVAL if snap->index is below the current snapshot. */
int store_log_compact(struct store *s, const struct store_log_snapshot *snap, bool drop_all);

/* What opening the log found worth telling the operator (a batch torn by a
 * crash, discarded), or "". */
const char *store_log_note(struct store *s);

#endif
