/*
 * metrics — the counters an operator scrapes (docs/OPERATIONS.md): the
 * request-duration histogram each worker fills without locks, and the
 * Prometheus text rendering that sums every worker's counters.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

struct evbuffer;
struct worker;

/* Upper bounds in microseconds; a last, implicit bucket is +Inf. */
#define METRICS_DURATION_BOUNDS_US \
	{ 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, \
	  250000, 500000, 1000000, 2500000, 5000000, 10000000 }
#define METRICS_DURATION_BUCKETS 17   /* the bounds above + Inf */

/* Written by one worker only (relaxed atomic stores), read by the admin
 * thread with relaxed loads: no lock, no locked instruction. Buckets are not
 * cumulative here; rendering makes them so. */
struct metrics_histogram {
	uint64_t buckets[METRICS_DURATION_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
};

void metrics_observe(struct metrics_histogram *h, uint64_t us);

/* Process-wide counters kept by the main thread. */
struct metrics_global {
	uint64_t reloads_success;
	uint64_t reloads_failure;
};

/* Appends the Prometheus text exposition (format 0.0.4) of every metric
 * listed in docs/OPERATIONS.md, summed over the workers. Takes each
 * worker's structure lock while walking its pools. 0 or -1. */
int metrics_render(struct evbuffer *out, struct worker *const *workers, unsigned n_workers,
		   const struct metrics_global *global);

#endif
