/* tests/sim/cluster.h: one simulated cluster: nodes, network, clients, faults and safety checks. */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include "sim.h"

#define SIM_MAX_UNKNOWN 8 /* writes with an unknown outcome per register */

struct sim_msg {
    struct raft_message m; /* deep copy, owned */
    uint64_t deliver_at;
};

struct app_state {
    uint64_t applied;
    uint64_t regs[SIM_KEYS];
    uint64_t dedup[SIM_MAX_CLIENTS];
    struct raft_conf conf;
};

struct sim_node {
    uint64_t id;
    bool alive;
    bool founder;
    struct raft *r;
    struct sim_disk disk;
    struct app_state app; /* durable at apply, like one LMDB transaction per batch */
    uint8_t *incoming;
    size_t incoming_len;
    uint64_t restart_at;
    uint64_t crash_at; /* scheduled crash (0 = none) */
    uint32_t rate_num;
    uint32_t rate_den;
    uint32_t clock_acc;
    uint64_t last_commit;
    enum raft_role last_role;
    uint64_t last_term;
    uint64_t lead_last_index; /* while leader: last index seen, must stay */
    uint64_t lead_last_term;
    /* Highest index this member acknowledged (APPEND_RESP, SNAPSHOT_RESP done) in term
     * ack_term, and that entry's term: a leader of ack_term counts it, so it must stay
     * durable as long as the member is in that term. */
    uint64_t ack_term;
    uint64_t ack_index;
    uint64_t ack_entry_term; /* 0: covered by the snapshot */
};

enum client_state {
    CL_IDLE = 0,
    CL_SUBMIT,
    CL_WAIT,
    CL_WAIT_APPLY,
};

struct client {
    uint32_t idx;
    enum client_state st;
    uint64_t seq;
    bool write;
    uint32_t key;
    uint64_t value;
    uint64_t invoke;
    uint32_t node;
    uint64_t hint;
    uint64_t attempt;
    uint64_t deadline;
    uint64_t next_at;
    uint64_t read_index;
    uint32_t attempts;
    bool proposed; /* some attempt of this write reached a leader's log */
};

struct applied_rec {
    uint64_t term;
    uint64_t chain;
    uint64_t max_leader_term; /* highest leader term seen when first applied */
};

struct sim {
    uint64_t seed;
    struct sim_params p;
    struct sim_rng g;
    bool trace;
    uint64_t now;
    uint64_t clock; /* logical time of client events */
    struct sim_node nodes[SIM_MAX_NODES];
    uint32_t n_nodes;
    struct raft_conf initial;
    struct sim_msg *net;
    size_t n_net;
    size_t cap_net;
    bool blocked[SIM_MAX_NODES][SIM_MAX_NODES];
    bool healed;
    bool clients_stop;
    struct client clients[SIM_MAX_CLIENTS];
    struct lin_op hist[SIM_KEYS][LIN_MAX_OPS];
    size_t n_hist[SIM_KEYS];
    size_t n_unknown[SIM_KEYS];
    /* safety registries */
    uint64_t *leader_of_term;
    size_t cap_leader_of_term;
    uint64_t max_leader_term;
    struct applied_rec *applied;
    size_t n_applied;
    size_t cap_applied;
    uint64_t *reg_keys; /* (index, term) -> chain, open addressing */
    uint64_t *reg_terms;
    uint64_t *reg_chain;
    size_t reg_cap;
    size_t reg_n;
    struct sim_result *res;
};

void sim_init(struct sim *s, uint64_t seed, const struct sim_params *p, bool trace,
              struct sim_result *res);
void sim_destroy(struct sim *s);
/* One step of simulated time. Returns false once a violation was recorded. */
bool sim_step(struct sim *s);
void sim_crash(struct sim *s, uint32_t i, bool torn);
void sim_restart(struct sim *s, uint32_t i);
/* Index of the live leader with the highest term, or -1. */
int sim_leader(struct sim *s);
void sim_violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
