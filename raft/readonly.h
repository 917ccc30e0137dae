/* raft/readonly.h: ReadIndex bookkeeping: waiting reads, the heartbeat round in flight, forwarded
 * reads. */
#ifndef RAFT_READONLY_H
#define RAFT_READONLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/*
 * §6.4 ReadIndex on the leader. A read joins the next round the leader starts; a heartbeat
 * sent before a read arrived proves nothing about leadership at the time of that read. Up to
 * max_read_rounds rounds are in flight at once, so that a read arriving while one is out
 * starts its own at once instead of waiting for it to end. Every round gets a fresh context
 * (trap 2), larger than every earlier one: an answer to context c, sent after round c
 * started, confirms the leadership for round c and for every round started before it, and
 * for no later one. So the leader keeps, per member, the largest context it answered in
 * this term, and a round ends when a quorum answered its context or a later one. Rounds end
 * in the order they started, and their indexes never decrease.
 *
 * Followers forward reads to the leader under a context of their own and remember them in fwd
 * until the answer, a change of leader or term, or a timeout.
 */
struct read_req {
    uint64_t cookie;  /* caller's cookie (local reads) */
    uint64_t from;    /* 0 = local, else the follower that forwarded it */
    uint64_t context; /* the follower's context (forwarded reads) */
};

struct fwd_read {
    uint64_t context;
    uint64_t cookie;
    uint64_t leader;
    uint32_t age_ticks;
};

/* The most rounds in flight at once (raft_config.max_read_rounds is at most this). */
#define RAFT_READ_ROUNDS_MAX 16

struct read_round {
    uint64_t ctx;
    uint64_t index; /* the commit index when it started */
    struct read_req *reqs;
    size_t n;
    size_t cap;
};

struct read_ack {
    uint64_t id;
    uint64_t ctx; /* the largest context the member answered in this term */
};

struct readonly {
    struct read_req *wait; /* reads for the next round */
    size_t n_wait;
    size_t cap_wait;
    struct read_round rounds[RAFT_READ_ROUNDS_MAX]; /* a ring: first, then n_rounds */
    uint32_t first;
    uint32_t n_rounds;
    struct read_ack acks[3 * RAFT_CONF_MAX];
    uint32_t n_acks;
    uint64_t next_ctx; /* rounds: never reused within the life of the core */
    /* Forwarded reads: never reused across restarts either (the answer to a read forwarded
     * before a restart may still be in the network and the member's term need not change):
     * the sequence starts at a point drawn from the configuration's seed. */
    uint64_t next_fwd_ctx;
    struct fwd_read *fwd;
    size_t n_fwd;
    size_t cap_fwd;
};

/* fwd_base: first context of forwarded reads, different at every start of the member. */
void raft_readonly_init(struct readonly *ro, uint64_t fwd_base);
void raft_readonly_close(struct readonly *ro);
size_t raft_readonly_pending(const struct readonly *ro);
int raft_readonly_wait_add(struct readonly *ro, const struct read_req *req);
/* Moves every waiting read into a new round at index, the newest in flight (the caller
 * checked that there is room); returns the round's context. */
uint64_t raft_readonly_round_start(struct readonly *ro, uint64_t index);
/* The oldest round in flight, or NULL. */
struct read_round *raft_readonly_round_front(struct readonly *ro);
/* The i-th round in flight, oldest first (i < n_rounds). */
struct read_round *raft_readonly_round_at(const struct readonly *ro, uint32_t i);
/* The newest round's context, or 0 without one. */
uint64_t raft_readonly_newest_ctx(const struct readonly *ro);
/* Ends the oldest round (the caller has consumed its reads). */
void raft_readonly_round_pop(struct readonly *ro);
/* Records that id answered context ctx. False, and nothing recorded, if ctx is not one of
 * this core's rounds (0, or never given out: late, forged or corrupt). */
bool raft_readonly_ack(struct readonly *ro, uint64_t id, uint64_t ctx);
/* The largest context id answered (0: none). */
uint64_t raft_readonly_acked(const struct readonly *ro, uint64_t id);
/* Forgets every round (their reads included), every waiting read and every answer. */
void raft_readonly_reset(struct readonly *ro);
int raft_readonly_fwd_add(struct readonly *ro, uint64_t cookie, uint64_t leader, uint64_t *context);
/* Removes the forwarded read with context; returns false if unknown (late or forged). */
bool raft_readonly_fwd_take(struct readonly *ro, uint64_t context, struct fwd_read *out);

#endif
