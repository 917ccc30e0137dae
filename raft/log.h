/* raft/log.h: the core's view of the log: storage (durable) plus the unstable tail in memory. */
#ifndef RAFT_LOG_H
#define RAFT_LOG_H

#include "raft.h"

/*
 * Invariants (checked by raft_check):
 *  1. Entries 1..stable are durable and readable from storage (or compacted into the
 *     snapshot); entries stable+1..stable+n live in ents[] (owned, data malloc()ed).
 *  2. applied <= committed, applied <= stable (only durable entries are applied).
 *  3. handed <= last: entries up to handed were given out in a ready for writing.
 *  4. While has_snap, a snapshot install handed out in a ready is not yet acknowledged by
 *     raft_advance(): storage still shows the old log, so nothing at or below snap.index is
 *     read from it.
 *  5. Terms never decrease along the log.
 *  6. writes[] lists, in write order, the writes handed out whose "persisted" notice has not
 *     arrived: a notice is matched to the oldest one ending at its (index, term), which it and
 *     every older one are then durable. Entries up to stable are those whose latest write is
 *     durable: a write still pending that starts at f leaves f and above unstable, even when
 *     an earlier write of the very same entries is durable (trap 6: (index, term) alone can
 *     match again after a log was truncated and rewritten).
 * Storage errors are sticky in err: the first one is kept and returned by the public call.
 */
struct raft_log_write {
    uint64_t first; /* first index written; first > last: void (superseded by an install) */
    uint64_t last;  /* last index written and its term: what its notice carries */
    uint64_t term;
};

struct raft_log {
    struct raft_storage *st;
    int err;
    bool has_snap;
    struct raft_snapshot_meta snap;
    uint64_t stable;
    struct raft_entry *ents;
    size_t n;
    size_t cap;
    uint64_t handed;
    struct raft_log_write *writes;
    size_t n_writes;
    size_t cap_writes;
    uint64_t committed;
    uint64_t applied;
};

int raft_log_init(struct raft_log *l, struct raft_storage *st);
void raft_log_close(struct raft_log *l);

uint64_t raft_log_last_index(const struct raft_log *l);
/* 0, RAFT_ECOMPACTED, RAFT_EUNAVAILABLE or a storage error (also recorded in l->err). */
int raft_log_entry_term(struct raft_log *l, uint64_t index, uint64_t *term);
uint64_t raft_log_last_term(struct raft_log *l);
/* True iff the entry at index exists here with this term (index 0 matches term 0). */
bool raft_log_match_term(struct raft_log *l, uint64_t index, uint64_t term);
/* First index available (snapshot index + 1). */
uint64_t raft_log_first_index(struct raft_log *l);
/* §5.4.1: a log ending at (last_index, last_term) is at least as up to date as ours. */
bool raft_log_is_up_to_date(struct raft_log *l, uint64_t last_index, uint64_t last_term);

/* Copies entries [lo, hi) (at least one if lo < hi, then up to max_bytes of data) into a new
 * malloc()ed array (*out, *n); free with raft_entries_free(). Errors as log_term. */
int raft_log_entries(struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_bytes,
                     struct raft_entry **out, size_t *n);

/* Appends copies of ents (contiguous, ents[0].index <= last+1), first dropping every entry at
 * or after ents[0].index. Never called below committed+1. RAFT_ENOMEM on failure. */
int raft_log_append(struct raft_log *l, const struct raft_entry *ents, size_t n);

/* Index of the first entry of ents that is missing here or has another term; 0 if none. */
uint64_t raft_log_find_conflict(struct raft_log *l, const struct raft_entry *ents, size_t n);

/* Records that entries first..handed (the last one of term) were handed out as one write.
 * RAFT_ENOMEM on failure (nothing changed). */
int raft_log_handed_write(struct raft_log *l, uint64_t first, uint64_t last, uint64_t term);

/* The write ending at (index, term) is durable, and so is every earlier one: moves the entries
 * whose latest write is durable out of the unstable tail. Ignored if no write handed out ends
 * there (trap 6). Returns true when stable advanced. */
bool raft_log_stable_to(struct raft_log *l, uint64_t index, uint64_t term);

/* Replaces the whole log by snapshot meta (install pending until log_snapshot_done). */
void raft_log_restore(struct raft_log *l, const struct raft_snapshot_meta *meta);
void raft_log_snapshot_done(struct raft_log *l);

void raft_entries_free(struct raft_entry *ents, size_t n);
/* Deep copy of one entry (data malloc()ed). RAFT_ENOMEM on failure. */
int raft_entry_copy(struct raft_entry *dst, const struct raft_entry *src);

#endif
