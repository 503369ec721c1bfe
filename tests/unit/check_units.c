/*
 * check_units — the duration and size syntax of the configuration: what is
 * accepted, what is refused (bare numbers, fractions, signs, overflow), and
 * that formatting picks the largest exact unit and reads back the same.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <sluice/units.h>

#include "../fixture.h"

struct units_case {
	const char *text;
	uint64_t value;
};

static const struct units_case duration_ok[] = {
	{ "0s", 0 },
	{ "0ms", 0 },
	{ "1ms", 1 },
	{ "250ms", 250 },
	{ "5s", 5000 },
	{ "2m", 120000 },
	{ "1h", 3600000 },
	{ "5 s", 5000 },
	{ "  5s  ", 5000 },
	{ "\t30s", 30000 },
	{ "007s", 7000 },
	{ "1500ms", 1500 },
	{ "18446744073709551615ms", UINT64_MAX },
	{ "5124095576030h", UINT64_C(5124095576030) * 3600000 },
};

static const char *const duration_bad[] = {
	"", " ", "s", "5", "10 ", "-5s", "+5s", "1.5s", "5sec", "5 S", "5S",
	"5us", "5d", "5 s x", "5s5", "5 5s", "0x10s", "1_000ms", "5 m s",
	"99999999999999999999h",      /* digits overflow */
	"18446744073709551616ms",     /* one past UINT64_MAX */
	"5124095576031h",             /* multiplication overflow */
	"18446744073709552s",
};

static const struct units_case size_ok[] = {
	{ "0B", 0 },
	{ "512B", 512 },
	{ "1KiB", 1024 },
	{ "16KiB", 16384 },
	{ "1MiB", 1048576 },
	{ "2GiB", UINT64_C(2147483648) },
	{ "4 MiB", 4194304 },
	{ " 1 B ", 1 },
	{ "18446744073709551615B", UINT64_MAX },
	{ "17179869183GiB", UINT64_C(17179869183) << 30 },
};

static const char *const size_bad[] = {
	"", "B", "1", "1K", "1KB", "1kib", "1MB", "1mib", "1 GB", "-1B",
	"1.5MiB", "1MiBx", "1 TiB", "1e3B", "MiB",
	"18446744073709551616B",      /* one past UINT64_MAX */
	"99999999999999999999B",
	"17179869184GiB",             /* multiplication overflow */
};

START_TEST(test_duration_ok)
{
	uint64_t v = 12345;

	ck_assert_msg(units_parse_duration(duration_ok[_i].text, &v) == 0,
		      "'%s' refused", duration_ok[_i].text);
	ck_assert_uint_eq(v, duration_ok[_i].value);
}
END_TEST

START_TEST(test_duration_bad)
{
	uint64_t v = 12345;

	ck_assert_msg(units_parse_duration(duration_bad[_i], &v) == -1,
		      "'%s' accepted", duration_bad[_i]);
	ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_size_ok)
{
	uint64_t v = 12345;

	ck_assert_msg(units_parse_size(size_ok[_i].text, &v) == 0,
		      "'%s' refused", size_ok[_i].text);
	ck_assert_uint_eq(v, size_ok[_i].value);
}
END_TEST

START_TEST(test_size_bad)
{
	uint64_t v = 12345;

	ck_assert_msg(units_parse_size(size_bad[_i], &v) == -1,
		      "'%s' accepted", size_bad[_i]);
	ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_null_refused)
{
	uint64_t v;

	ck_assert_int_eq(units_parse_duration(NULL, &v), -1);
	ck_assert_int_eq(units_parse_size(NULL, &v), -1);
}
END_TEST

static const struct units_case duration_fmt[] = {
	{ "0s", 0 },
	{ "1ms", 1 },
	{ "1500ms", 1500 },
	{ "5s", 5000 },
	{ "90s", 90000 },
	{ "2m", 120000 },
	{ "61m", 3660000 },
	{ "1h", 3600000 },
	{ "18446744073709551615ms", UINT64_MAX },
};

static const struct units_case size_fmt[] = {
	{ "0B", 0 },
	{ "1B", 1 },
	{ "1023B", 1023 },
	{ "1KiB", 1024 },
	{ "1536KiB", 1536 * 1024 },
	{ "1MiB", 1048576 },
	{ "4MiB", 4194304 },
	{ "1GiB", UINT64_C(1) << 30 },
	{ "4095MiB", UINT64_C(4095) << 20 },
	{ "4294967295B", UINT64_C(4294967295) },
};

START_TEST(test_duration_format)
{
	char buf[32];
	uint64_t back;

	units_format_duration(duration_fmt[_i].value, buf, sizeof(buf));
	ck_assert_str_eq(buf, duration_fmt[_i].text);
	ck_assert_int_eq(units_parse_duration(buf, &back), 0);
	ck_assert_uint_eq(back, duration_fmt[_i].value);
}
END_TEST

START_TEST(test_size_format)
{
	char buf[32];
	uint64_t back;

	units_format_size(size_fmt[_i].value, buf, sizeof(buf));
	ck_assert_str_eq(buf, size_fmt[_i].text);
	ck_assert_int_eq(units_parse_size(buf, &back), 0);
	ck_assert_uint_eq(back, size_fmt[_i].value);
}
END_TEST

/* A short buffer truncates but stays a terminated string. */
START_TEST(test_format_truncates)
{
	char buf[4] = "zzz";

	units_format_size(1536 * 1024, buf, sizeof(buf));
	ck_assert_str_eq(buf, "153");
	units_format_duration(5000, buf, 0);
	ck_assert_str_eq(buf, "153");
}
END_TEST

#define UNITS_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *
units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_duration_ok, 0, UNITS_N(duration_ok));
	tcase_add_loop_test(tc, test_duration_bad, 0, UNITS_N(duration_bad));
	tcase_add_loop_test(tc, test_size_ok, 0, UNITS_N(size_ok));
	tcase_add_loop_test(tc, test_size_bad, 0, UNITS_N(size_bad));
	tcase_add_test(tc, test_null_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_loop_test(tc, test_duration_format, 0, UNITS_N(duration_fmt));
	tcase_add_loop_test(tc, test_size_format, 0, UNITS_N(size_fmt));
	tcase_add_test(tc, test_format_truncates);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(units_suite());
}
