/*
 * bench_hist — the latency histogram of sluice-bench: log-linear, in the
 * manner of HdrHistogram. Values are nanoseconds. Below 64 ns every value
 * has a bucket of its own; above, each power of two [2^k, 2^(k+1)) is split
 * into 64 equal sub-buckets, so a bucket is never wider than 1/64 (1.6%) of
 * the values it holds. Recording is an index computation and an increment:
 * no allocation, no floating point, cheap enough for every request.
 *
 * Each thread records into its own histogram; hist_merge sums them at the
 * end. Values past HIST_MAX_NS (60 s) land in the top bucket and are counted
 * as clamped.
 */
#ifndef SLUICE_BENCH_HIST_H
#define SLUICE_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)           /* sub-buckets per octave */
#define HIST_TOP_BIT 36                                 /* 2^36 ns = 68.7 s */
#define HIST_BUCKETS (HIST_SUB_COUNT * (HIST_TOP_BIT - HIST_SUB_BITS + 1))
#define HIST_MAX_NS UINT64_C(60000000000)              /* 60 s */

/* One thread's histogram; plain data, owned by whoever embeds it. */
struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;              /* values recorded */
	uint64_t clamped;            /* of which were above HIST_MAX_NS */
	uint64_t min;                /* exact, UINT64_MAX while empty */
	uint64_t max;                /* exact (after clamping) */
	uint64_t sum;                /* for the mean; 2^64 ns is 584 years */
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The bucket holding ns (ns <= HIST_MAX_NS), and that bucket's range:
 * lowest and highest value it holds, both inclusive. */
size_t hist_index(uint64_t ns);
uint64_t hist_bucket_low(size_t index);
uint64_t hist_bucket_high(size_t index);

/* The value at or below which pct percent of the recorded values lie
 * (0 < pct <= 100): the highest value of the bucket holding that rank,
 * clamped to [min, max]. At most 1/64 above the exact percentile; 0 when
 * empty. */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean(const struct hist *h);

#endif
