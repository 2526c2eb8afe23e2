/*
 * bench/latency.h - the percentile definition every latency figure of the
 * benchmarks uses (weft-wake here, rpc-client in bench/peers; the tokio and
 * Go peers implement the same rule): nearest rank, in integers. The
 * percentile q/1000 of n sorted samples is the sample at index
 * ceil(q * n / 1000) - 1 (q in 1..1000), so p99.9 (q = 999) of 10,000
 * samples is the 10th largest and "max" is q = 1000.
 *
 * Header-only, no weft dependency: the load generators include it too.
 */
#ifndef WEFT_BENCH_LATENCY_H
#define WEFT_BENCH_LATENCY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int lat_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v[0..n) in place. */
static inline void lat_sort(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, lat_cmp_u64);
}

/* The nearest-rank percentile q/1000 of sorted[0..n); 0 when n == 0. */
static inline uint64_t lat_rank(const uint64_t *sorted, size_t n, unsigned q)
{
    if (n == 0)
        return 0;
    size_t r = ((size_t)q * n + 999) / 1000;
    return sorted[r == 0 ? 0 : r - 1];
}

/*
 * Sorts v[0..n) (nanoseconds) and prints, one per line on f,
 *     <prefix>p50_us X  <prefix>p99_us X  <prefix>p999_us X  <prefix>max_us X
 * in microseconds with 1 decimal: the keys bench/report.py reads.
 */
static inline void lat_print(FILE *f, const char *prefix, uint64_t *v, size_t n)
{
    static const struct { const char *key; unsigned q; } points[] = {
        { "p50_us", 500 }, { "p99_us", 990 }, { "p999_us", 999 }, { "max_us", 1000 },
    };
    lat_sort(v, n);
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
        fprintf(f, "%s%s %.1f\n", prefix, points[i].key,
                (double)lat_rank(v, n, points[i].q) / 1e3);
}

#endif /* WEFT_BENCH_LATENCY_H */
