/*
 * histogram — the request-duration histogram a worker fills without locks
 * and metrics renders (sluice_request_duration_seconds).
 */
#ifndef SLUICE_HISTOGRAM_H
#define SLUICE_HISTOGRAM_H

#include <stdint.h>

/* Upper bounds in microseconds; a last, implicit bucket is +Inf. */
#define HISTOGRAM_BOUNDS_US \
	{ 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, \
	  250000, 500000, 1000000, 2500000, 5000000, 10000000 }
#define HISTOGRAM_BUCKETS 17   /* the bounds above + Inf */

/* Written by one worker only (relaxed atomic stores), read by the admin
 * thread with relaxed loads: no lock, no locked instruction. Buckets are not
 * cumulative here; rendering makes them so. */
struct histogram {
	uint64_t buckets[HISTOGRAM_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
};

/* HISTOGRAM_BOUNDS_US, for rendering. */
extern const uint64_t histogram_bounds_us[HISTOGRAM_BUCKETS - 1];

void histogram_observe(struct histogram *h, uint64_t us);

#endif
