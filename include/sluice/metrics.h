/*
 * metrics — the counters an operator scrapes (docs/OPERATIONS.md): the
 * Prometheus text rendering that sums every worker's counters (and its
 * request-duration histogram, histogram.h).
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

struct evbuffer;
struct worker;

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
