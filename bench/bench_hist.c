/* bench_hist.c - see bench_hist.h. */
#include "bench_hist.h"

#include <math.h>
#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Below 2*SUB: the value itself. Above: with e = (bit length - 7), the
 * top 7 bits of v (64..127) in the row of e. */
static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * BENCH_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v) - 6;
    return e * BENCH_HIST_SUB + (unsigned)(v >> e);
}

static uint64_t bucket_high(unsigned i)
{
    if (i < 2 * BENCH_HIST_SUB)
        return i;
    unsigned e = i / BENCH_HIST_SUB - 1;
    uint64_t m = i % BENCH_HIST_SUB + BENCH_HIST_SUB;
    uint64_t high = ((m + 1) << e) - 1;
    return high < m << e ? UINT64_MAX : high; /* the last bucket */
}

void bench_hist_add(struct bench_hist *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->n++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
    if (!h->n)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->n ? (double)(h->sum / h->n) : 0;
}
