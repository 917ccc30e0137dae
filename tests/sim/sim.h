/* tests/sim/sim.h: the deterministic cluster simulator that drives raft/ cores under seeded faults.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define SIM_MAX_NODES   9
#define SIM_MAX_CLIENTS 4
#define SIM_KEYS        3

/* ---- randomness: everything derives from one seed ---- */
struct sim_rng {
    uint64_t s;
};
uint64_t rng_u64(struct sim_rng *g);
/* Uniform in [0, n). */
uint64_t rng_below(struct sim_rng *g, uint64_t n);
/* True with probability per_mille / 1000. */
bool rng_chance(struct sim_rng *g, uint32_t per_mille);

/* ---- disk: durable state plus writes not yet synced ---- */
struct sim_entry {
    struct raft_entry e; /* data owned */
    uint64_t chain;      /* hash of this entry and every entry before it */
};

struct sim_log {
    struct sim_entry *v;
    size_t n;
    size_t cap;
};

struct sim_write {
    uint64_t first; /* index of entries[0] */
    struct sim_entry *ents;
    size_t n;
    uint64_t sync_at; /* step at which the write becomes durable */
};

struct sim_disk {
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    uint64_t snap_chain;
    uint8_t *snap_data;
    /* dur: what survives a crash; cur: what reads see (dur + pending writes) */
    struct sim_log dur;
    struct sim_log cur;
    struct sim_write *pending;
    size_t n_pending;
    size_t cap_pending;
};

void disk_init(struct sim_disk *d);
void disk_free(struct sim_disk *d);
void disk_storage(struct sim_disk *d, struct raft_storage *st);
uint64_t disk_last_index(const struct sim_disk *d);
const struct sim_entry *disk_entry(const struct sim_disk *d, uint64_t index);
/* Records a write of ents (copied) that becomes durable at sync_at. Returns the chain of
 * the last entry through *chain_out per entry via callback-less design: chains are computed
 * against cur. */
void disk_write(struct sim_disk *d, const struct raft_entry *ents, size_t n, uint64_t sync_at);
/* Makes the oldest pending write durable if its sync_at <= now; returns true and the
 * (index, term) of its last entry. Call until false: one notice per write, so notices for
 * writes whose entries a later write replaced reach the core too (trap 6). */
bool disk_sync(struct sim_disk *d, uint64_t now, uint64_t *index, uint64_t *term);
/* Crash: pending writes are lost; with torn, a prefix of the pending writes (down to a
 * single entry) survives. */
void disk_crash(struct sim_disk *d, bool torn, struct sim_rng *g);
void disk_install(struct sim_disk *d, const struct raft_snapshot_meta *meta, const uint8_t *data,
                  uint64_t chain);
/* Compacts the log up to index (<= last durable): meta/data become the snapshot. */
void disk_compact(struct sim_disk *d, const struct raft_snapshot_meta *meta, uint8_t *data,
                  uint64_t chain);
uint64_t entry_chain(uint64_t prev, const struct raft_entry *e);

/* ---- linearizability ---- */
#include "lincheck.h"

/* ---- the run ---- */
struct sim_params {
    uint32_t n_nodes;  /* initial voters */
    uint32_t n_spares; /* members that may join later */
    uint32_t drop_pm;  /* per-mille chances */
    uint32_t dup_pm;
    uint32_t max_delay;    /* steps */
    uint32_t partition_pm; /* chance per step to change the partition */
    uint32_t crash_pm;
    uint32_t leader_crash_pm;   /* crash whoever leads */
    uint32_t max_down;          /* steps a crashed member stays down at most */
    uint32_t fresh_crash_pm;    /* crash a new leader within a few steps of its election */
    uint32_t leader_isolate_pm; /* cut the leader off from everyone */
    uint32_t torn_pm;           /* chance that a crash keeps a torn prefix of unsynced writes */
    uint32_t conf_pm;
    uint32_t transfer_pm;
    uint32_t compact_pm;
    uint32_t max_sync_delay; /* steps before a write becomes durable */
    uint32_t election_ticks;
    uint32_t heartbeat_ticks;
    uint32_t chaos_steps;
    uint32_t heal_steps;
    uint32_t n_clients;
    bool varied_clocks;
    bool pre_vote;
    bool check_quorum;
    uint32_t profile;
    size_t max_msg_bytes;
    uint32_t max_inflight;
    size_t max_chunk;
};

struct sim_result {
    bool violation;
    char why[512];
    uint64_t step;
    uint64_t ops_ok;
    uint64_t ops_unknown;
    uint64_t elections;
    uint64_t crashes;
    uint64_t snapshots_installed;
    uint64_t conf_changes;
    uint64_t transfers;
    uint64_t commits;
};

/* Runs one seed. trace prints a readable story to stdout. */
void sim_params_from_seed(uint64_t seed, struct sim_params *p);
void sim_run(uint64_t seed, const struct sim_params *p, bool trace, struct sim_result *res);

/* Failover measurement: ticks from a leader crash to a new leader, n trials. */
void sim_failover(uint64_t seed, uint32_t trials, uint32_t n_nodes, double *mean, uint64_t *p99,
                  uint64_t *max);

#endif
