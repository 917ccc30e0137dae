/* tests/sim/rng.c: the simulator's one source of randomness (splitmix64 from the seed). */
#include "sim.h"

uint64_t rng_u64(struct sim_rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rng_below(struct sim_rng *g, uint64_t n)
{
    return n == 0 ? 0 : rng_u64(g) % n;
}

bool rng_chance(struct sim_rng *g, uint32_t per_mille)
{
    return rng_below(g, 1000) < per_mille;
}
