/*
 * histogram — request durations counted into fixed buckets by the one
 * worker that owns the histogram, with relaxed atomic stores so that a
 * scrape from another thread reads them without a lock.
 */
#include <sluice/histogram.h>

const uint64_t histogram_bounds_us[HISTOGRAM_BUCKETS - 1] = HISTOGRAM_BOUNDS_US;

void
histogram_observe(struct histogram *h, uint64_t us)
{
	unsigned i = 0;

	while (i < HISTOGRAM_BUCKETS - 1 && us > histogram_bounds_us[i])
		i++;
	__atomic_store_n(&h->buckets[i], h->buckets[i] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->sum_us, h->sum_us + us, __ATOMIC_RELAXED);
}
