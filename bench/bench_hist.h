/* bench_hist.h - a latency histogram for load generators: log-linear
 * buckets (64 per power of two, so a bucket is at most 1/64 = 1.6% wide),
 * fixed size, mergeable, no allocation. Values are unsigned (nanoseconds
 * in raftfs bench). Values below 128 are kept exactly. */
#ifndef RAFTFS_BENCH_HIST_H
#define RAFTFS_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB     64
#define BENCH_HIST_BUCKETS (59 * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t n, min, max;
    long double sum;
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_add(struct bench_hist *h, uint64_t v);
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* The q-quantile (0 <= q <= 1): the upper end of the bucket that holds the
 * sample of rank ceil(q * n), never above the largest value recorded. So
 * it is never below the true quantile and at most 1.6% above it. 0 if the
 * histogram is empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);
double bench_hist_mean(const struct bench_hist *h);

#endif
