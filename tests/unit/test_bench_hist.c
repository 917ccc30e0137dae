/* test_bench_hist.c - the latency histogram of raftfs bench: quantiles
 * never below the true value and within a bucket's width (1/64) above it,
 * small values exact, merging, the empty case. */
#include "bench_hist.h"
#include "check.h"

static struct bench_hist a, b;

/* True quantile of 1..n: the value of rank ceil(q*n). */
static void check_near(const struct bench_hist *h, double q, uint64_t truth)
{
    uint64_t got = bench_hist_quantile(h, q);
    CHECK(got >= truth);
    CHECK(got <= truth + truth / 64 + 1);
    if (got < truth || got > truth + truth / 64 + 1)
        fprintf(stderr, "  q=%g: got %llu, true %llu\n", q, (unsigned long long)got,
                (unsigned long long)truth);
}

int main(void)
{
    bench_hist_init(&a);
    CHECK_EQ(bench_hist_quantile(&a, 0.5), 0);
    CHECK_EQ(bench_hist_mean(&a), 0);

    /* small values are exact */
    for (uint64_t v = 1; v <= 100; v++)
        bench_hist_add(&a, v);
    CHECK_EQ(bench_hist_quantile(&a, 0.5), 50);
    CHECK_EQ(bench_hist_quantile(&a, 0.99), 99);
    CHECK_EQ(bench_hist_quantile(&a, 1), 100);
    CHECK_EQ(bench_hist_quantile(&a, 0), 1);
    CHECK_EQ(a.min, 1);
    CHECK_EQ(a.max, 100);
    CHECK(bench_hist_mean(&a) > 50.49 && bench_hist_mean(&a) < 50.51);

    /* 1..1,000,000 ns, in two halves merged */
    bench_hist_init(&a);
    bench_hist_init(&b);
    for (uint64_t v = 1; v <= 1000000; v++)
        bench_hist_add(v % 2 ? &a : &b, v);
    bench_hist_merge(&a, &b);
    CHECK_EQ(a.n, 1000000);
    CHECK_EQ(a.max, 1000000);
    CHECK_EQ(a.min, 1);
    check_near(&a, 0.5, 500000);
    check_near(&a, 0.9, 900000);
    check_near(&a, 0.99, 990000);
    check_near(&a, 0.999, 999000);
    CHECK_EQ(bench_hist_quantile(&a, 1), 1000000);

    /* a long tail: 999 fast samples and one slow; p99.9 is fast, max slow */
    bench_hist_init(&a);
    for (int i = 0; i < 999; i++)
        bench_hist_add(&a, 2000000);
    bench_hist_add(&a, 3000000000ULL);
    check_near(&a, 0.999, 2000000);
    CHECK_EQ(bench_hist_quantile(&a, 1), 3000000000ULL);

    /* the largest values land in the last buckets without overflow */
    bench_hist_init(&a);
    bench_hist_add(&a, UINT64_MAX);
    bench_hist_add(&a, 1ULL << 63);
    CHECK_EQ(bench_hist_quantile(&a, 1), UINT64_MAX);
    CHECK(bench_hist_quantile(&a, 0.5) >= 1ULL << 63);
    CHECK_DONE();
}
