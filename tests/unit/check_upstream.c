/*
 * check_upstream — the pure parts of a backend connection's reconnection
 * policy: the backoff's growth, cap and jitter range, and when earlier
 * failures are forgotten.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <sluice/upstream.h>

#include "../fixture.h"

/* The delay before jitter for the nth consecutive failure. */
static uint64_t
nominal(unsigned failures)
{
	uint64_t d = UPSTREAM_BACKOFF_BASE_MS;

	for (unsigned i = 1; i < failures && d < UPSTREAM_BACKOFF_MAX_MS; i++)
		d *= 2;
	return d < UPSTREAM_BACKOFF_MAX_MS ? d : UPSTREAM_BACKOFF_MAX_MS;
}

/* Growth: 100, 200, 400 ... ms, doubling with each failure; the random
 * value only ever picks a point of [delay/2, delay], whose ends are reached
 * with 0 and delay/2. A first failure (and 0) waits about 100 ms. */
START_TEST(test_backoff_growth)
{
	static const uint64_t want[] = { 100, 100, 200, 400, 800, 1600, 3200 };

	for (unsigned f = 0; f < sizeof(want) / sizeof(want[0]); f++) {
		ck_assert_uint_eq(nominal(f), want[f]);
		ck_assert_uint_eq(upstream_backoff_ms(f, 0), want[f] / 2);
		ck_assert_uint_eq(upstream_backoff_ms(f, want[f] / 2), want[f]);
	}
}
END_TEST

/* Cap: from the 7th failure on the delay is 5 s at most, however many
 * failures (no shift overflow at UINT_MAX). */
START_TEST(test_backoff_cap)
{
	static const unsigned failures[] = { 7, 8, 9, 10, 31, 32, 33, 64, 1000, UINT32_MAX };

	for (unsigned i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		ck_assert_uint_eq(upstream_backoff_ms(failures[i], 0), UPSTREAM_BACKOFF_MAX_MS / 2);
		ck_assert_uint_eq(upstream_backoff_ms(failures[i], UPSTREAM_BACKOFF_MAX_MS / 2),
				  UPSTREAM_BACKOFF_MAX_MS);
		ck_assert_uint_eq(upstream_backoff_ms(failures[i], UINT64_MAX) <= UPSTREAM_BACKOFF_MAX_MS, 1);
	}
}
END_TEST

/* Jitter: over many random values every delay lies in [delay/2, delay],
 * and they spread over the range (connections that failed together must
 * not reconnect together): both the lowest and the highest tenth are hit. */
START_TEST(test_backoff_jitter_range)
{
	uint64_t x = 88172645463325252ull;

	for (unsigned f = 1; f <= 12; f++) {
		uint64_t hi = nominal(f), lo = hi / 2, min = UINT64_MAX, max = 0;

		for (int i = 0; i < 10000; i++) {
			uint64_t d;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			d = upstream_backoff_ms(f, x);
			ck_assert_msg(d >= lo && d <= hi, "failure %u: %llu ms outside [%llu, %llu]", f,
				      (unsigned long long)d, (unsigned long long)lo, (unsigned long long)hi);
			min = d < min ? d : min;
			max = d > max ? d : max;
		}
		ck_assert_msg(min < lo + (hi - lo) / 10 && max > hi - (hi - lo) / 10,
			      "failure %u: delays only spread over [%llu, %llu] of [%llu, %llu]", f,
			      (unsigned long long)min, (unsigned long long)max, (unsigned long long)lo,
			      (unsigned long long)hi);
	}
}
END_TEST

/* Backoff kept across a stable connection: the failure count was reset
 * only by a response, so a connection that failed often at start-up, then
 * connected and stayed up idle for hours, waited the full 5 s to reconnect
 * when it next failed. A connection up for UPSTREAM_STABLE_MS forgets its
 * failures; one that was up for less (a backend that accepts and hangs up)
 * or never connected keeps them, and its backoff keeps growing. */
START_TEST(test_backoff_kept_across_stable_connection)
{
	ck_assert_uint_eq(upstream_failures_carried(9, UPSTREAM_STABLE_MS), 0);
	ck_assert_uint_eq(upstream_failures_carried(9, 6ull * 3600 * 1000), 0);
	ck_assert_uint_eq(upstream_backoff_ms(upstream_failures_carried(9, UPSTREAM_STABLE_MS) + 1, 0),
			  UPSTREAM_BACKOFF_BASE_MS / 2);
	ck_assert_uint_eq(upstream_failures_carried(9, UPSTREAM_STABLE_MS - 1), 9);
	ck_assert_uint_eq(upstream_failures_carried(9, 0), 9);
	ck_assert_uint_eq(upstream_failures_carried(0, 0), 0);
	/* Longer than any backoff: a backend flapping within the cap never
	 * looks stable. */
	ck_assert_uint_gt(UPSTREAM_STABLE_MS, UPSTREAM_BACKOFF_MAX_MS);
}
END_TEST

static Suite *
upstream_suite(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("backoff");

	tcase_add_test(tc, test_backoff_growth);
	tcase_add_test(tc, test_backoff_cap);
	tcase_add_test(tc, test_backoff_jitter_range);
	tcase_add_test(tc, test_backoff_kept_across_stable_connection);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(upstream_suite());
}
