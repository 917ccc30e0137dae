/* tests/unit/test_raft_harness.h: a hand-driven cluster of raft cores for deterministic scenario
 * tests. */
#ifndef TEST_RAFT_HARNESS_H
#define TEST_RAFT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "raft.h"
#include "sim.h"

#define TH_MAX 18

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);           \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %llu, %s == %llu\n", __FILE__,          \
                    __LINE__, #a, va_, #b, vb_);                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct th_applied {
    uint64_t index;
    uint64_t term;
    uint32_t type;
    uint64_t value; /* first 8 data bytes */
};

struct th_node {
    struct raft *r;
    struct sim_disk disk;
    bool alive;
    uint32_t starts;  /* how many times the core was created (seeds differ per start) */
    bool hold_sync;   /* entries stay unsynced until th_sync() */
    bool check_every; /* raft_check after every call (default on) */
    struct th_applied applied[512];
    size_t n_applied;
    struct raft_read_state reads[64];
    size_t n_reads;
    struct raft_proposal_result props[64];
    size_t n_props;
    uint8_t *incoming;
    size_t incoming_len;
    size_t installs;
    struct raft_snapshot_meta last_install;
};

struct th {
    uint32_t n;
    struct th_node nodes[TH_MAX + 1]; /* 1-based */
    struct raft_conf bootstrap;
    struct raft_message *q;
    size_t nq;
    size_t capq;
    void (*tweak)(struct raft_config *cfg, uint64_t id);
    char *trace;
    size_t trace_len;
    bool capture;
};

/* Nodes 1..n_voters are founding voters, n_voters+1..n_nodes start with no configuration. */
void th_init(struct th *t, uint32_t n_voters, uint32_t n_nodes,
             void (*tweak)(struct raft_config *cfg, uint64_t id));
void th_free(struct th *t);
void th_start(struct th *t, uint64_t id);
/* Crash: unsynced writes are lost. */
void th_crash(struct th *t, uint64_t id);
/* Processes every ready of id: persist (sync unless hold_sync), queue messages, apply. */
void th_ready(struct th *t, uint64_t id);
void th_ready_all(struct th *t);
/* Makes id's pending writes durable and reports them to the core. */
void th_sync(struct th *t, uint64_t id);
/* Delivers every queued message once (new ones wait for the next call); returns how many. */
size_t th_deliver(struct th *t);
/* Delivers queued message i only. */
void th_deliver_one(struct th *t, size_t i);
/* Removes queued messages matching (type or 0, from or 0, to or 0); returns how many. */
size_t th_drop(struct th *t, uint32_t type, uint64_t from, uint64_t to);
/* Index of the first queued message matching, or -1. */
long th_find(struct th *t, uint32_t type, uint64_t from, uint64_t to);
/* ready + deliver until nothing moves (bounded). */
void th_settle(struct th *t);
void th_tick(struct th *t, uint64_t id, uint32_t n);
/* Ticks id until it campaigns, then settles; checks that it leads. */
void th_elect(struct th *t, uint64_t id);
/* Proposes an 8-byte value on id; returns the index. */
uint64_t th_propose(struct th *t, uint64_t id, uint64_t value);
struct raft *th_r(struct th *t, uint64_t id);
/* Starts capturing core trace lines into t->trace. */
void th_capture(struct th *t);
/* Compacts id's log up to its applied index into a snapshot of the applied values. */
void th_compact(struct th *t, uint64_t id);
/* An APPEND message as a leader would send it (other fields zero). */
struct raft_message th_append_msg(uint64_t from, uint64_t to, uint64_t term, uint64_t prev,
                                  uint64_t prev_term, uint64_t commit, struct raft_entry *ents,
                                  size_t n);
/* Fills ents[0..n) with normal entries first, first+1, ... of term, each carrying the 8 bytes
 * at data. */
void th_fill_entries(struct raft_entry *ents, size_t n, uint64_t first, uint64_t term,
                     const uint64_t *data);

#endif
