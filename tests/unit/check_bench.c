/*
 * Unit tests for sluice-bench's two pieces of logic that its figures rest on:
 * the log-linear latency histogram (bucket boundaries, the relative error
 * bound, percentiles of known distributions, merging per-thread
 * histograms) and the check of each response against its request (equal,
 * unequal, header or payload differences, lengths, answers out of order or
 * from another connection, ERR and QUIT).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../fixture.h"
#include "bench_frame.h"
#include "bench_hist.h"

#define US 1000u
#define MS (1000u * 1000u)

/* ---- histogram -------------------------------------------------------- */

static struct hist *hist_new(void)
{
	struct hist *h = malloc(sizeof(*h));

	ck_assert_ptr_nonnull(h);
	hist_init(h);
	return h;
}

START_TEST(test_hist_exact_below_64)
{
	for (uint64_t v = 0; v < HIST_SUB_COUNT; v++) {
		ck_assert_uint_eq(hist_index(v), v);
		ck_assert_uint_eq(hist_bucket_low(v), v);
		ck_assert_uint_eq(hist_bucket_high(v), v);
	}
}
END_TEST

/* The octave boundaries, by hand: 64..127 are still one per bucket, then
 * widths 2, 4, ... */
START_TEST(test_hist_octave_boundaries)
{
	ck_assert_uint_eq(hist_index(64), 64);
	ck_assert_uint_eq(hist_index(127), 127);
	ck_assert_uint_eq(hist_index(128), 128);
	ck_assert_uint_eq(hist_index(129), 128);
	ck_assert_uint_eq(hist_index(130), 129);
	ck_assert_uint_eq(hist_index(255), 191);
	ck_assert_uint_eq(hist_index(256), 192);
	ck_assert_uint_eq(hist_index(259), 192);
	ck_assert_uint_eq(hist_index(260), 193);
	ck_assert_uint_eq(hist_bucket_low(128), 128);
	ck_assert_uint_eq(hist_bucket_high(128), 129);
	ck_assert_uint_eq(hist_bucket_low(192), 256);
	ck_assert_uint_eq(hist_bucket_high(192), 259);
	ck_assert_uint_eq(hist_bucket_high(HIST_BUCKETS - 1), (UINT64_C(1) << HIST_TOP_BIT) - 1);
	ck_assert_uint_lt(hist_index(HIST_MAX_NS), HIST_BUCKETS);
}
END_TEST

/* Every bucket holds exactly [low, high], and the next one starts right
 * after: no value falls between buckets or into two. */
START_TEST(test_hist_buckets_tile_the_range)
{
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);

		ck_assert_uint_le(lo, hi);
		ck_assert_uint_eq(hist_index(lo), i);
		ck_assert_uint_eq(hist_index(hi), i);
		if (i + 1 < HIST_BUCKETS)
			ck_assert_uint_eq(hist_bucket_low(i + 1), hi + 1);
	}
}
END_TEST

/* A bucket's top, which is what a percentile reports, is never more than
 * 1/64 (1.6%) above any value in the bucket; below 64 ns it is exact. */
START_TEST(test_hist_relative_error_bound)
{
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), over = hist_bucket_high(i) - lo;

		ck_assert_uint_le(over * HIST_SUB_COUNT, lo);
		if (lo < HIST_SUB_COUNT)
			ck_assert_uint_eq(over, 0);
	}
	/* And through hist_percentile, for values from 1 us to 60 s. */
	for (uint64_t v = US; v <= HIST_MAX_NS; v += v / 7 + 1) {
		struct hist *h = hist_new();

		hist_record(h, v + 3);
		hist_record(h, v);
		hist_record(h, v + 5);
		uint64_t p = hist_percentile(h, 50);
		ck_assert_uint_ge(p, v + 3);
		ck_assert_msg((double)(p - (v + 3)) / (double)(v + 3) < 0.02,
			      "p50 of %llu reported as %llu", (unsigned long long)(v + 3),
			      (unsigned long long)p);
		free(h);
	}
}
END_TEST

START_TEST(test_hist_clamps_past_60s)
{
	struct hist *h = hist_new();

	hist_record(h, 100ull * 1000 * MS);
	hist_record(h, 5 * MS);
	ck_assert_uint_eq(h->total, 2);
	ck_assert_uint_eq(h->clamped, 1);
	ck_assert_uint_eq(h->max, HIST_MAX_NS);
	ck_assert_uint_eq(hist_percentile(h, 100), HIST_MAX_NS);
	free(h);
}
END_TEST

START_TEST(test_hist_empty)
{
	struct hist *h = hist_new();

	ck_assert_uint_eq(hist_percentile(h, 50), 0);
	ck_assert_uint_eq(hist_percentile(h, 99.9), 0);
	ck_assert(hist_mean(h) == 0.0);
	free(h);
}
END_TEST

static void assert_near(uint64_t got, uint64_t want)
{
	ck_assert_msg(got >= want && (double)(got - want) <= (double)want / HIST_SUB_COUNT,
		      "got %llu, want %llu (+1/64)", (unsigned long long)got,
		      (unsigned long long)want);
}

/* 1, 2, ..., 100000 us: the nearest-rank percentile p is p% of 100000 us. */
START_TEST(test_hist_percentiles_uniform)
{
	struct hist *h = hist_new();

	for (uint64_t i = 100000; i >= 1; i--)
		hist_record(h, i * US);
	ck_assert_uint_eq(h->total, 100000);
	ck_assert_uint_eq(h->min, US);
	assert_near(hist_percentile(h, 50), 50000 * US);
	assert_near(hist_percentile(h, 90), 90000 * US);
	assert_near(hist_percentile(h, 99), 99000 * US);
	assert_near(hist_percentile(h, 99.9), 99900 * US);
	ck_assert_uint_eq(hist_percentile(h, 100), 100000 * US);   /* clamped to max */
	assert_near(hist_percentile(h, 0.0001), US);                /* rank 1 */
	ck_assert(hist_mean(h) > 50000.0 * US && hist_mean(h) < 50001.0 * US);
	free(h);
}
END_TEST

/* 990 fast answers and 10 slow ones: p99 is the 990th value (fast), p99.1
 * the 991st (slow) — the tail is neither smoothed over nor exaggerated. */
START_TEST(test_hist_percentiles_bimodal)
{
	struct hist *h = hist_new();

	for (int i = 0; i < 990; i++)
		hist_record(h, 100 * US);
	for (int i = 0; i < 10; i++)
		hist_record(h, 10 * MS);
	assert_near(hist_percentile(h, 50), 100 * US);
	assert_near(hist_percentile(h, 99), 100 * US);
	assert_near(hist_percentile(h, 99.1), 10 * MS);
	assert_near(hist_percentile(h, 99.9), 10 * MS);
	ck_assert_uint_eq(hist_percentile(h, 100), 10 * MS);
	free(h);
}
END_TEST

/* A single value: every percentile is that value, exactly (min = max). */
START_TEST(test_hist_percentiles_constant)
{
	struct hist *h = hist_new();

	for (int i = 0; i < 1000; i++)
		hist_record(h, 123457);
	ck_assert_uint_eq(hist_percentile(h, 1), 123457);
	ck_assert_uint_eq(hist_percentile(h, 50), 123457);
	ck_assert_uint_eq(hist_percentile(h, 99.9), 123457);
	free(h);
}
END_TEST

/* Per-thread histograms merged give what one histogram of all the values
 * would have. */
START_TEST(test_hist_merge)
{
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *sum = hist_new();
	uint64_t x = 88172645463325252ull;

	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = x % (50 * MS);

		hist_record(i % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_merge(sum, a);
	hist_merge(sum, b);
	ck_assert_uint_eq(sum->total, all->total);
	ck_assert_uint_eq(sum->min, all->min);
	ck_assert_uint_eq(sum->max, all->max);
	ck_assert_uint_eq(sum->sum, all->sum);
	ck_assert_int_eq(memcmp(sum->counts, all->counts, sizeof(all->counts)), 0);
	ck_assert_uint_eq(hist_percentile(sum, 99), hist_percentile(all, 99));
	/* An empty thread's histogram changes nothing, its min included. */
	hist_init(b);
	hist_merge(sum, b);
	ck_assert_uint_eq(sum->min, all->min);
	ck_assert_uint_eq(sum->total, all->total);
	free(a);
	free(b);
	free(all);
	free(sum);
}
END_TEST

/* ---- verification ----------------------------------------------------- */

/* Shapes: no body, bodies shorter than the stamp, headers of the reserved
 * lengths (3 = ERR, 4 = QUIT), the usual, a big payload. */
static const struct {
	uint16_t header;
	uint32_t payload;
} shapes[] = {
	{ 0, 0 }, { 0, 5 }, { 3, 0 }, { 4, 0 }, { 2, 9 }, { 16, 64 }, { 0, 512 },
	{ 100, 0 }, { 16, 65536 },
};

struct frame_fixture {
	struct bench_pattern pat;
	uint8_t *a;
	uint8_t *b;
};

static void fixture_init(struct frame_fixture *f, uint16_t header, uint32_t payload)
{
	ck_assert_int_eq(bench_pattern_init(&f->pat, header, payload, 42), 0);
	f->a = malloc(f->pat.frame_len);
	f->b = malloc(f->pat.frame_len);
	ck_assert_ptr_nonnull(f->a);
	ck_assert_ptr_nonnull(f->b);
}

static void fixture_free(struct frame_fixture *f)
{
	free(f->a);
	free(f->b);
	bench_pattern_free(&f->pat);
}

START_TEST(test_verify_equal)
{
	struct frame_fixture f;
	uint16_t h;
	uint32_t t;

	fixture_init(&f, shapes[_i].header, shapes[_i].payload);
	for (uint64_t seq = 0; seq < 200; seq++) {
		bench_frame_build(&f.pat, 7, seq, f.a);
		ck_assert_int_eq(bench_frame_prefix(f.a, UINT32_MAX, &h, &t), 0);
		ck_assert_uint_eq(h, shapes[_i].header);
		ck_assert_uint_eq(t, f.pat.frame_len);
		ck_assert_int_eq(bench_frame_check(&f.pat, 7, seq, f.a, t, NULL), BENCH_OK);
	}
	/* The stamp's magic byte keeps a request from reading as ERR or QUIT. */
	if (shapes[_i].header == 3)
		ck_assert_int_ne(memcmp(f.a + 6, "ERR", 3), 0);
	if (shapes[_i].header == 4)
		ck_assert_int_ne(memcmp(f.a + 6, "QUIT", 4), 0);
	fixture_free(&f);
}
END_TEST

/* Requests differ from each other past the stamp too, so an answer that
 * repeats an older request's bytes is caught by the payload comparison. */
START_TEST(test_verify_requests_differ)
{
	struct frame_fixture f;

	fixture_init(&f, 16, 64);
	bench_frame_build(&f.pat, 7, 42, f.a);
	bench_frame_build(&f.pat, 7, 43, f.b);
	ck_assert_int_ne(memcmp(f.a + 6 + BENCH_STAMP_LEN, f.b + 6 + BENCH_STAMP_LEN,
				f.pat.body_len - BENCH_STAMP_LEN), 0);
	bench_frame_build(&f.pat, 8, 42, f.b);
	ck_assert_int_ne(memcmp(f.a, f.b, f.pat.frame_len), 0);
	fixture_free(&f);
}
END_TEST

START_TEST(test_verify_header_and_payload_mismatch)
{
	struct frame_fixture f;

	fixture_init(&f, 16, 64);
	bench_frame_build(&f.pat, 3, 9, f.a);
	/* Past the stamp, in the header. */
	f.a[6 + 14] ^= 0x01;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_HEADER);
	f.a[6 + 14] ^= 0x01;
	/* The stamp's magic byte is in the header too. */
	f.a[6] ^= 0x80;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_HEADER);
	f.a[6] ^= 0x80;
	/* First and last payload bytes. */
	f.a[6 + 16] ^= 0xff;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_PAYLOAD);
	f.a[6 + 16] ^= 0xff;
	f.a[f.pat.frame_len - 1] ^= 0x10;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_PAYLOAD);
	f.a[f.pat.frame_len - 1] ^= 0x10;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL), BENCH_OK);
	fixture_free(&f);
}
END_TEST

/* Without a header the stamp is in the payload: a wrong stamp byte is a
 * payload difference. */
START_TEST(test_verify_stamp_in_payload)
{
	struct frame_fixture f;

	fixture_init(&f, 0, 64);
	bench_frame_build(&f.pat, 3, 9, f.a);
	f.a[6] ^= 0x01;
	ck_assert_int_eq(bench_frame_check(&f.pat, 3, 9, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_PAYLOAD);
	fixture_free(&f);
}
END_TEST

static void put_prefix(uint8_t *p, uint16_t header_len, uint32_t total_len)
{
	p[0] = (uint8_t)(header_len >> 8);
	p[1] = (uint8_t)header_len;
	p[2] = (uint8_t)(total_len >> 24);
	p[3] = (uint8_t)(total_len >> 16);
	p[4] = (uint8_t)(total_len >> 8);
	p[5] = (uint8_t)total_len;
}

START_TEST(test_verify_length_mismatch)
{
	struct frame_fixture f;

	fixture_init(&f, 16, 64);
	bench_frame_build(&f.pat, 1, 1, f.a);
	/* Cut short by one byte, with a prefix that says so. */
	put_prefix(f.a, 16, (uint32_t)f.pat.frame_len - 1);
	ck_assert_int_eq(bench_frame_check(&f.pat, 1, 1, f.a, f.pat.frame_len - 1, NULL),
			 BENCH_BAD_LENGTH);
	/* Same total, the boundary between header and payload moved. */
	put_prefix(f.a, 17, (uint32_t)f.pat.frame_len);
	ck_assert_int_eq(bench_frame_check(&f.pat, 1, 1, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_LENGTH);
	fixture_free(&f);
}
END_TEST

/* A stream of answers in which two were swapped: each of the pair is the
 * answer to the other request; the rest are fine. */
START_TEST(test_verify_out_of_order)
{
	static const uint64_t order[] = { 0, 1, 3, 2, 4 };
	struct frame_fixture f;
	uint64_t got;

	fixture_init(&f, shapes[_i].header, shapes[_i].payload);
	if (f.pat.body_len < BENCH_STAMP_LEN) {
		fixture_free(&f);
		return;              /* a cut stamp cannot name the request */
	}
	for (uint64_t expect = 0; expect < 5; expect++) {
		bench_frame_build(&f.pat, 5, order[expect], f.a);
		got = UINT64_MAX;
		enum bench_verdict v = bench_frame_check(&f.pat, 5, expect, f.a, f.pat.frame_len,
							 &got);
		if (order[expect] == expect) {
			ck_assert_int_eq(v, BENCH_OK);
		} else {
			ck_assert_int_eq(v, BENCH_BAD_ORDER);
			ck_assert_uint_eq(got, order[expect]);
		}
	}
	fixture_free(&f);
}
END_TEST

/* Sequence numbers far apart (the stamp carries all 64 bits) and an answer
 * meant for another connection. */
START_TEST(test_verify_lost_and_misrouted)
{
	struct frame_fixture f;
	uint64_t got = 0;

	fixture_init(&f, 16, 64);
	bench_frame_build(&f.pat, 5, UINT64_C(1) << 40, f.a);
	ck_assert_int_eq(bench_frame_check(&f.pat, 5, 3, f.a, f.pat.frame_len, &got),
			 BENCH_BAD_ORDER);
	ck_assert_uint_eq(got, UINT64_C(1) << 40);
	bench_frame_build(&f.pat, 6, 3, f.a);
	ck_assert_int_eq(bench_frame_check(&f.pat, 5, 3, f.a, f.pat.frame_len, &got),
			 BENCH_BAD_CONN);
	ck_assert_uint_eq(got, 3);
	fixture_free(&f);
}
END_TEST

/* Another request's answer that was also damaged is reported as damage
 * (the first wrong byte), never as a clean reordering. */
START_TEST(test_verify_damaged_other_request)
{
	struct frame_fixture f;

	fixture_init(&f, 16, 64);
	bench_frame_build(&f.pat, 5, 4, f.a);
	f.a[f.pat.frame_len - 2] ^= 0x40;
	ck_assert_int_eq(bench_frame_check(&f.pat, 5, 3, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_HEADER);
	fixture_free(&f);
}
END_TEST

/* A body shorter than the stamp still tells neighbouring requests apart. */
START_TEST(test_verify_short_body)
{
	struct frame_fixture f;

	fixture_init(&f, 0, 5);
	bench_frame_build(&f.pat, 5, 1, f.a);
	ck_assert_int_eq(bench_frame_check(&f.pat, 5, 2, f.a, f.pat.frame_len, NULL),
			 BENCH_BAD_PAYLOAD);
	ck_assert_int_eq(bench_frame_check(&f.pat, 5, 1, f.a, f.pat.frame_len, NULL), BENCH_OK);
	fixture_free(&f);
}
END_TEST

START_TEST(test_verify_err_and_quit)
{
	struct frame_fixture f;
	uint8_t err[6 + 3 + 12], quit[6 + 4];

	fixture_init(&f, 16, 64);
	put_prefix(err, 3, sizeof(err));
	memcpy(err + 6, "ERRBUSY queued", 3 + 12);
	ck_assert_int_eq(bench_frame_check(&f.pat, 1, 0, err, sizeof(err), NULL),
			 BENCH_ERR_FRAME);
	put_prefix(quit, 4, sizeof(quit));
	memcpy(quit + 6, "QUIT", 4);
	ck_assert_int_eq(bench_frame_check(&f.pat, 1, 0, quit, sizeof(quit), NULL),
			 BENCH_QUIT_FRAME);
	ck_assert_str_eq(bench_verdict_string(BENCH_BAD_ORDER), "out of order");
	ck_assert_str_eq(bench_verdict_string(BENCH_VERDICTS), "unknown");
	fixture_free(&f);
}
END_TEST

START_TEST(test_verify_prefix_rules)
{
	uint8_t p[6];
	uint16_t h;
	uint32_t t;

	put_prefix(p, 0, 6);
	ck_assert_int_eq(bench_frame_prefix(p, 100, &h, &t), 0);
	put_prefix(p, 0, 5);
	ck_assert_int_eq(bench_frame_prefix(p, 100, &h, &t), -1);
	put_prefix(p, 2, 7);
	ck_assert_int_eq(bench_frame_prefix(p, 100, &h, &t), -1);
	put_prefix(p, 1, 7);
	ck_assert_int_eq(bench_frame_prefix(p, 100, &h, &t), 0);
	ck_assert_uint_eq(h, 1);
	ck_assert_uint_eq(t, 7);
	put_prefix(p, 0, 101);
	ck_assert_int_eq(bench_frame_prefix(p, 100, &h, &t), -1);
}
END_TEST

static Suite *bench_suite(void)
{
	Suite *s = suite_create("bench");
	TCase *hist = tcase_create("hist");
	TCase *verify = tcase_create("verify");
	int nshapes = (int)(sizeof(shapes) / sizeof(shapes[0]));

	tcase_add_test(hist, test_hist_exact_below_64);
	tcase_add_test(hist, test_hist_octave_boundaries);
	tcase_add_test(hist, test_hist_buckets_tile_the_range);
	tcase_add_test(hist, test_hist_relative_error_bound);
	tcase_add_test(hist, test_hist_clamps_past_60s);
	tcase_add_test(hist, test_hist_empty);
	tcase_add_test(hist, test_hist_percentiles_uniform);
	tcase_add_test(hist, test_hist_percentiles_bimodal);
	tcase_add_test(hist, test_hist_percentiles_constant);
	tcase_add_test(hist, test_hist_merge);
	suite_add_tcase(s, hist);
	tcase_add_loop_test(verify, test_verify_equal, 0, nshapes);
	tcase_add_test(verify, test_verify_requests_differ);
	tcase_add_test(verify, test_verify_header_and_payload_mismatch);
	tcase_add_test(verify, test_verify_stamp_in_payload);
	tcase_add_test(verify, test_verify_length_mismatch);
	tcase_add_loop_test(verify, test_verify_out_of_order, 0, nshapes);
	tcase_add_test(verify, test_verify_lost_and_misrouted);
	tcase_add_test(verify, test_verify_damaged_other_request);
	tcase_add_test(verify, test_verify_short_body);
	tcase_add_test(verify, test_verify_err_and_quit);
	tcase_add_test(verify, test_verify_prefix_rules);
	suite_add_tcase(s, verify);
	return s;
}

int main(void)
{
	return fixture_run_suite(bench_suite());
}
