/* raft/readonly.h: ReadIndex bookkeeping: waiting reads, the heartbeat round in flight, forwarded
 * reads. */
#ifndef RAFT_READONLY_H
#define RAFT_READONLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/*
 * §6.4 ReadIndex on the leader. Reads that arrive while a round is in flight wait for the
 * next round: a heartbeat sent before a read arrived proves nothing about leadership at the
 * time of that read. Every round gets a fresh context (trap 2) so that a late answer to an
 * earlier round never completes a later one. At most one round is in flight.
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

struct readonly {
    struct read_req *wait;
    size_t n_wait;
    size_t cap_wait;
    bool active;
    uint64_t round_ctx;
    uint64_t round_index;
    struct read_req *round;
    size_t n_round;
    size_t cap_round;
    uint64_t acks[3 * RAFT_CONF_MAX];
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
/* Moves every waiting read into a new round at index; returns the round context. */
uint64_t raft_readonly_round_start(struct readonly *ro, uint64_t index, uint64_t self);
/* Records that id answered the round with context ctx; false if ctx is not the live round. */
bool raft_readonly_round_ack(struct readonly *ro, uint64_t id, uint64_t ctx);
bool raft_readonly_round_acked_by(const struct readonly *ro, uint64_t id);
/* Ends the round (caller has consumed ro->round[0..n_round)). */
void raft_readonly_round_end(struct readonly *ro);
int raft_readonly_fwd_add(struct readonly *ro, uint64_t cookie, uint64_t leader, uint64_t *context);
/* Removes the forwarded read with context; returns false if unknown (late or forged). */
bool raft_readonly_fwd_take(struct readonly *ro, uint64_t context, struct fwd_read *out);

#endif
