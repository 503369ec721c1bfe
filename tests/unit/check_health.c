/*
 * check_health — the per-server health state machine with a clock the test
 * controls: fall and rise of active checks, passive ejection after
 * eject_after errors, the growing ejection time and its cap, the end of an
 * ejection, and the max_ejected_percent rule.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include <sluice/health.h>

#include "../fixture.h"

static const struct config_health checks = {
	.enabled = true, .interval_ms = 200, .timeout_ms = 100, .rise = 2, .fall = 3,
};

START_TEST(test_fall_then_rise)
{
	struct health_state h;

	memset(&h, 0, sizeof(h));
	ck_assert(health_up(&h));
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_TIMEOUT), HEALTH_SAME);
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_FAIL), HEALTH_SAME);
	ck_assert(health_up(&h));
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_TIMEOUT), HEALTH_MARKED_DOWN);
	ck_assert(!health_up(&h));
	/* More failures change nothing; one success is not enough. */
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_FAIL), HEALTH_SAME);
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_OK), HEALTH_SAME);
	ck_assert(!health_up(&h));
	ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_OK), HEALTH_MARKED_UP);
	ck_assert(health_up(&h));
	ck_assert_uint_eq(h.stats.checks[HEALTH_OK], 2);
	ck_assert_uint_eq(h.stats.checks[HEALTH_FAIL], 2);
	ck_assert_uint_eq(h.stats.checks[HEALTH_TIMEOUT], 2);
}
END_TEST

/* A success in between restarts the count of failures. */
START_TEST(test_fall_needs_a_row)
{
	struct health_state h;

	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_FAIL), HEALTH_SAME);
		ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_FAIL), HEALTH_SAME);
		ck_assert_int_eq(health_probe_done(&h, &checks, HEALTH_OK), HEALTH_SAME);
	}
	ck_assert(health_up(&h));
}
END_TEST

START_TEST(test_eject_after)
{
	struct health_state h;

	memset(&h, 0, sizeof(h));
	ck_assert(!health_outcome(&h, 3, false, 1));
	ck_assert(!health_outcome(&h, 3, false, 1));
	ck_assert(!health_outcome(&h, 3, true, 0));   /* an answer ends the run */
	ck_assert(!health_outcome(&h, 3, false, 2));
	ck_assert(health_outcome(&h, 3, false, 1));
	ck_assert_uint_eq(health_eject(&h, 300, 1000), 300);
	ck_assert(!health_up(&h));
	ck_assert_uint_eq(h.stats.ejections, 1);
	/* Ejected: more errors ask for nothing. */
	ck_assert(!health_outcome(&h, 3, false, 5));
	ck_assert(!health_eject_expired(&h, 1299));
	ck_assert(health_eject_expired(&h, 1300));
	ck_assert(!health_eject_expired(&h, 1301));   /* reported once */
	ck_assert(health_up(&h));
}
END_TEST

/* Off: eject_after 0 never asks. */
START_TEST(test_eject_off)
{
	struct health_state h;

	memset(&h, 0, sizeof(h));
	ck_assert(!health_outcome(&h, 0, false, 1000));
}
END_TEST

/* Ejections in a row (no answer in between) multiply eject_time, up to
 * five minutes; an answer starts again at one. */
START_TEST(test_eject_time_grows)
{
	struct health_state h;
	uint64_t now = 0;

	memset(&h, 0, sizeof(h));
	for (uint64_t k = 1; k <= 5; k++) {
		ck_assert(health_outcome(&h, 1, false, 1));
		ck_assert_uint_eq(health_eject(&h, 10000, now), 10000 * k);
		now += 10000 * k;
		ck_assert(health_eject_expired(&h, now));
	}
	for (int k = 0; k < 40; k++) {
		ck_assert(health_outcome(&h, 1, false, 1));
		ck_assert_uint_le(health_eject(&h, 10000, now), HEALTH_EJECT_MAX_MS);
		now += HEALTH_EJECT_MAX_MS;
		ck_assert(health_eject_expired(&h, now));
	}
	ck_assert_uint_eq(health_eject(&h, UINT64_MAX / 2, now), HEALTH_EJECT_MAX_MS);
	ck_assert(health_eject_expired(&h, now + HEALTH_EJECT_MAX_MS));
	ck_assert(!health_outcome(&h, 1, true, 0));
	ck_assert(health_outcome(&h, 1, false, 1));
	ck_assert_uint_eq(health_eject(&h, 10000, now), 10000);
}
END_TEST

START_TEST(test_max_ejected_percent)
{
	ck_assert(health_may_eject(2, 0, 50));
	ck_assert(!health_may_eject(2, 1, 50));
	ck_assert(health_may_eject(1, 0, 50));     /* at least one */
	ck_assert(!health_may_eject(1, 0, 0));     /* 0: never */
	ck_assert(health_may_eject(10, 2, 30));
	ck_assert(!health_may_eject(10, 3, 30));
	ck_assert(health_may_eject(3, 1, 100));
	ck_assert(health_may_eject(3, 2, 100));
	ck_assert(!health_may_eject(3, 1, 50));    /* 1.5 rounds down to 1 */
}
END_TEST

START_TEST(test_result_names)
{
	ck_assert_str_eq(health_result_name(HEALTH_OK), "ok");
	ck_assert_str_eq(health_result_name(HEALTH_FAIL), "fail");
	ck_assert_str_eq(health_result_name(HEALTH_TIMEOUT), "timeout");
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("active");

	tcase_add_test(tc, test_fall_then_rise);
	tcase_add_test(tc, test_fall_needs_a_row);
	tcase_add_test(tc, test_result_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("passive");
	tcase_add_test(tc, test_eject_after);
	tcase_add_test(tc, test_eject_off);
	tcase_add_test(tc, test_eject_time_grows);
	tcase_add_test(tc, test_max_ejected_percent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(health_suite());
}
