/* raft/progress.h: the leader's view of each member: probe/replicate/snapshot and in-flight window.
 */
#ifndef RAFT_PROGRESS_H
#define RAFT_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * State diagram of one follower's progress (leader side):
 *
 *   PROBE --(append accepted)--> REPLICATE --(reject / silent heartbeat round)--> PROBE
 *     |  ^                                                                          |
 *     |  +-------------(snapshot acknowledged as applied)----- SNAPSHOT <-----------+
 *     +-------(next entry compacted)------------------------------^
 *
 * PROBE sends one APPEND and waits (probe_sent) until an answer or a heartbeat response.
 * REPLICATE pipelines APPENDs optimistically while the in-flight window (messages and bytes)
 * has room. SNAPSHOT sends one chunk at a time; appends are paused. Every transition resets the
 * in-flight window, so no counter survives a change of state (trap 13).
 */
enum progress_state {
    PROGRESS_PROBE = 0,
    PROGRESS_REPLICATE = 1,
    PROGRESS_SNAPSHOT = 2,
};

struct inflight {
    uint64_t last; /* last entry index carried by the message */
    size_t bytes;  /* entry bytes carried */
};

struct progress {
    uint64_t id;
    uint64_t match; /* highest index known durable and matching on the member */
    uint64_t next;  /* next index to send */
    enum progress_state state;
    bool probe_sent;
    bool recent_active;   /* heard from since the last CheckQuorum round */
    uint32_t idle_ticks;  /* ticks since the last APPEND/SNAPSHOT answer */
    uint64_t commit_sent; /* highest commit index sent to the member */
    /* in-flight window: ring of cap entries, owned by the progress */
    struct inflight *ring;
    uint32_t cap;
    uint32_t start;
    uint32_t count;
    size_t bytes;
    /* snapshot transfer (state SNAPSHOT) */
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t snap_size;
    uint64_t snap_offset; /* bytes acknowledged by the member */
    bool snap_chunk_out;  /* a chunk is in flight (one at a time) */
    bool snap_answered;   /* an answer arrived since the last heartbeat round */
};

/* Initialises pr with a window of cap messages. Returns RAFT_ENOMEM on failure. */
int raft_progress_init(struct progress *pr, uint64_t id, uint64_t next, uint32_t cap);
void raft_progress_free(struct progress *pr);

void raft_progress_become_probe(struct progress *pr);
/* Leaves SNAPSHOT without the member having the snapshot: probe from match + 1. */
void raft_progress_abort_snapshot(struct progress *pr);
void raft_progress_become_replicate(struct progress *pr);
void raft_progress_become_snapshot(struct progress *pr, uint64_t index, uint64_t term,
                                   uint64_t size);

/* An accepted APPEND_RESP for index n: raises match/next. Returns true if match grew. */
bool raft_progress_maybe_update(struct progress *pr, uint64_t n);
/* A rejection of prev index `rejected`; next_hint is the leader's guess of the next index
 * to try. Returns false if the rejection is stale (ignored). */
bool raft_progress_maybe_decrease(struct progress *pr, uint64_t rejected, uint64_t next_hint);

/* True when no APPEND may be sent now. */
bool raft_progress_is_paused(const struct progress *pr, size_t max_bytes);

/* Records an APPEND carrying entries up to last and bytes entry bytes. */
void raft_progress_inflight_add(struct progress *pr, uint64_t last, size_t bytes);
/* Releases every in-flight message whose last index is <= index. */
void raft_progress_inflight_free_to(struct progress *pr, uint64_t index);
void raft_progress_inflight_reset(struct progress *pr);

const char *raft_progress_state_name(enum progress_state s);

#endif
