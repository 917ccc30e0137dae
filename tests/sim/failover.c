/* tests/sim/failover.c: measures ticks from a leader crash to the next leader. */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Each trial: a healthy cluster (messages delayed 1 step, no loss, equal clocks, election
 * timeout 10 ticks, heartbeat 1 tick, PreVote and CheckQuorum on) runs until a leader is
 * stable, then the leader crashes; the trial measures the steps (one tick each) until a live
 * member is leader in a higher term.
 */
void sim_failover(uint64_t seed, uint32_t trials, uint32_t n_nodes, double *mean, uint64_t *p99,
                  uint64_t *max)
{
    uint64_t *ticks = calloc(trials, sizeof(uint64_t));
    uint64_t sum = 0;
    for (uint32_t t = 0; t < trials; t++) {
        struct sim_params p;
        memset(&p, 0, sizeof(p));
        p.n_nodes = n_nodes;
        p.max_delay = 1;
        p.max_down = 60;
        p.election_ticks = 10;
        p.heartbeat_ticks = 1;
        p.chaos_steps = 1000000;
        p.heal_steps = 0;
        p.max_msg_bytes = 1024;
        p.max_inflight = 8;
        p.max_chunk = 1024;
        p.n_clients = 1;
        p.pre_vote = true;
        p.check_quorum = true;
        struct sim_result res;
        struct sim *s = malloc(sizeof(*s));
        sim_init(s, seed + t, &p, false, &res);
        int leader = -1;
        for (int i = 0; i < 400 && sim_step(s); i++) {
            leader = sim_leader(s);
        }
        uint64_t old_term = leader >= 0 ? raft_term(s->nodes[leader].r) : 0;
        uint64_t crashed_at = s->now;
        if (leader >= 0) {
            sim_crash(s, (uint32_t)leader, false);
            s->nodes[leader].restart_at = UINT64_MAX;
        }
        uint64_t took = 0;
        while (sim_step(s) && s->now - crashed_at < 10000) {
            int l = sim_leader(s);
            if (l >= 0 && raft_term(s->nodes[l].r) > old_term) {
                took = s->now - crashed_at;
                break;
            }
        }
        ticks[t] = took;
        sum += took;
        sim_destroy(s);
        free(s);
    }
    qsort(ticks, trials, sizeof(uint64_t), cmp_u64);
    *mean = trials ? (double)sum / trials : 0;
    *p99 = trials ? ticks[(trials * 99 + 99) / 100 - 1] : 0;
    *max = trials ? ticks[trials - 1] : 0;
    free(ticks);
}
