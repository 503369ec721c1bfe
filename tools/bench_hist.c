/*
 * bench_hist — log-linear latency histogram (see bench_hist.h).
 *
 * Index of a value v:
 *   v < 64:  v itself (one bucket per nanosecond);
 *   v >= 64: with k = floor(log2 v) and s = k - 6, (s * 64) + (v >> s).
 * v >> s is in [64, 128), so each octave takes 64 indexes and the octaves
 * follow each other (and the exact range) without a gap.
 */
#include <string.h>

#include "bench_hist.h"

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

size_t hist_index(uint64_t ns)
{
	unsigned k, shift;

	if (ns < HIST_SUB_COUNT)
		return (size_t)ns;
	k = 63u - (unsigned)__builtin_clzll(ns);
	shift = k - HIST_SUB_BITS;
	return (size_t)shift * HIST_SUB_COUNT + (size_t)(ns >> shift);
}

/* The octave shift of a bucket: 0 for the exact range and the first octave. */
static unsigned hist_shift(size_t index)
{
	return index < 2 * HIST_SUB_COUNT ? 0 : (unsigned)(index / HIST_SUB_COUNT) - 1;
}

uint64_t hist_bucket_low(size_t index)
{
	unsigned shift = hist_shift(index);

	return (uint64_t)(index - (size_t)shift * HIST_SUB_COUNT) << shift;
}

uint64_t hist_bucket_high(size_t index)
{
	return hist_bucket_low(index) + (UINT64_C(1) << hist_shift(index)) - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
	if (ns > HIST_MAX_NS) {
		ns = HIST_MAX_NS;
		h->clamped++;
	}
	h->counts[hist_index(ns)]++;
	h->total++;
	h->sum += ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	size_t i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	double want = pct / 100.0 * (double)h->total;
	uint64_t rank, seen = 0, v;
	size_t i;

	if (h->total == 0)
		return 0;
	/* The smallest rank r with r >= pct% of total: the nearest-rank method. */
	rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	v = hist_bucket_high(i < HIST_BUCKETS ? i : HIST_BUCKETS - 1);
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}

double hist_mean(const struct hist *h)
{
	return h->total ? (double)h->sum / (double)h->total : 0.0;
}
