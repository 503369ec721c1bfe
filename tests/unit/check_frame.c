/*
 * Unit tests for the frame parser: every boundary of SPEC §1 (prefix length,
 * header_len against total_len, max_frame_size), frames split across
 * evbuffer chains, and the frames sluice builds itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include <sluice/frame.h>

#include "../fixture.h"

#define MAX_FRAME (1024u * 1024u)

static void
put_prefix(uint8_t *p, uint16_t header_len, uint32_t total_len)
{
	p[0] = (uint8_t)(header_len >> 8);
	p[1] = (uint8_t)header_len;
	p[2] = (uint8_t)(total_len >> 24);
	p[3] = (uint8_t)(total_len >> 16);
	p[4] = (uint8_t)(total_len >> 8);
	p[5] = (uint8_t)total_len;
}

static void
free_piece(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* A buffer holding a frame's first `have` bytes (zero-filled past the
 * prefix), added by reference in chunks of `chunk` bytes: each chunk is a
 * chain of its own, as after many small reads. */
static struct evbuffer *
make_buf(uint16_t header_len, uint32_t total_len, size_t have, size_t chunk)
{
	struct evbuffer *b = evbuffer_new();
	uint8_t *bytes = calloc(1, have > 6 ? have : 6);

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(bytes);
	put_prefix(bytes, header_len, total_len);
	for (size_t off = 0; off < have; off += chunk) {
		size_t n = have - off < chunk ? have - off : chunk;
		uint8_t *piece = malloc(n);

		ck_assert_ptr_nonnull(piece);
		memcpy(piece, bytes + off, n);
		ck_assert_int_eq(evbuffer_add_reference(b, piece, n, free_piece, NULL), 0);
	}
	free(bytes);
	ck_assert_int_eq(evbuffer_peek(b, -1, NULL, NULL, 0), (int)((have + chunk - 1) / chunk));
	return b;
}

/* Table of prefixes and verdicts. */
static const struct {
	uint16_t header_len;
	uint32_t total_len;
	enum frame_status status;
	enum frame_error error;
} prefix_cases[] = {
	{ 0, 0, FRAME_INVALID, FRAME_ERR_SHORT },
	{ 0, 5, FRAME_INVALID, FRAME_ERR_SHORT },
	{ 0, 6, FRAME_READY, FRAME_OK },                 /* empty frame */
	{ 1, 6, FRAME_INVALID, FRAME_ERR_HEADER_LEN },   /* header_len = total-6 + 1 */
	{ 0, 7, FRAME_READY, FRAME_OK },
	{ 1, 7, FRAME_READY, FRAME_OK },                 /* header_len = total-6 */
	{ 2, 7, FRAME_INVALID, FRAME_ERR_HEADER_LEN },
	{ 100, 106, FRAME_READY, FRAME_OK },
	{ 101, 106, FRAME_INVALID, FRAME_ERR_HEADER_LEN },
	{ 65535, 65541, FRAME_READY, FRAME_OK },
	{ 65535, 65540, FRAME_INVALID, FRAME_ERR_HEADER_LEN },
	{ 0, MAX_FRAME, FRAME_READY, FRAME_OK },          /* exactly max_frame_size */
	{ 0, MAX_FRAME + 1, FRAME_INVALID, FRAME_ERR_TOO_LARGE },
	{ 0, UINT32_MAX, FRAME_INVALID, FRAME_ERR_TOO_LARGE }, /* 4 GiB */
	{ 65535, UINT32_MAX, FRAME_INVALID, FRAME_ERR_TOO_LARGE },
};

START_TEST(test_parse_prefix_table)
{
	uint8_t p[6];
	struct frame_info fi;

	put_prefix(p, prefix_cases[_i].header_len, prefix_cases[_i].total_len);
	ck_assert_int_eq(frame_parse_prefix(p, MAX_FRAME, &fi), prefix_cases[_i].status);
	ck_assert_int_eq(fi.error, prefix_cases[_i].error);
	ck_assert_uint_eq(fi.header_len, prefix_cases[_i].header_len);
	ck_assert_uint_eq(fi.total_len, prefix_cases[_i].total_len);
}
END_TEST

START_TEST(test_peek_prefix_lengths)
{
	/* 5 bytes: not yet a prefix; 6: a whole empty frame; 7 of an 8-byte
	 * frame: wait. */
	struct evbuffer *b;
	struct frame_info fi;

	b = make_buf(0, 6, 5, 5);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_NEED_MORE);
	evbuffer_free(b);

	b = make_buf(0, 6, 6, 6);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.total_len, 6);
	ck_assert_uint_eq(evbuffer_get_length(b), 6); /* peek consumes nothing */
	evbuffer_free(b);

	b = make_buf(0, 8, 7, 3);   /* prefix split over three chains */
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_NEED_MORE);
	evbuffer_free(b);

	b = make_buf(0, 7, 7, 7);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	evbuffer_free(b);

	b = evbuffer_new();
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_NEED_MORE);
	evbuffer_free(b);
}
END_TEST

START_TEST(test_peek_invalid_before_complete)
{
	/* A bad prefix is refused as soon as its 6 bytes are in, whatever
	 * total_len promises: 4 GiB is never waited for or allocated. */
	struct evbuffer *b = make_buf(0, UINT32_MAX, 6, 6);
	struct frame_info fi;

	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_INVALID);
	ck_assert_int_eq(fi.error, FRAME_ERR_TOO_LARGE);
	evbuffer_free(b);

	b = make_buf(7, 12, 6, 6);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_INVALID);
	ck_assert_int_eq(fi.error, FRAME_ERR_HEADER_LEN);
	evbuffer_free(b);
}
END_TEST

START_TEST(test_peek_max_frame)
{
	struct evbuffer *b = make_buf(0, MAX_FRAME, MAX_FRAME, 4096);
	struct frame_info fi;

	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME - 1, &fi), FRAME_INVALID);
	evbuffer_drain(b, 1);
	ck_assert_int_eq(evbuffer_get_length(b), MAX_FRAME - 1);
	evbuffer_free(b);
}
END_TEST

START_TEST(test_peek_split_everywhere)
{
	/* The prefix and the QUIT header split at every byte across chains. */
	static const uint8_t quit[] = { 0, 4, 0, 0, 0, 10, 'Q', 'U', 'I', 'T' };

	for (size_t chunk = 1; chunk <= sizeof(quit); chunk++) {
		struct evbuffer *b = evbuffer_new();
		struct frame_info fi;

		for (size_t off = 0; off < sizeof(quit); off += chunk) {
			size_t n = sizeof(quit) - off < chunk ? sizeof(quit) - off : chunk;

			ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_NEED_MORE);
			ck_assert_int_eq(evbuffer_add_reference(b, quit + off, n, NULL, NULL), 0);
		}
		ck_assert_int_eq(evbuffer_peek(b, -1, NULL, NULL, 0),
				 (int)((sizeof(quit) + chunk - 1) / chunk));
		ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
		ck_assert(fi.is_quit);
		evbuffer_free(b);
	}
}
END_TEST

START_TEST(test_quit_detection)
{
	static const struct {
		const char *header;
		uint32_t payload;
		int is_quit;
	} cases[] = {
		{ "QUIT", 0, 1 },
		{ "QUIT", 3, 1 },   /* the header decides; a payload does not matter */
		{ "QUI", 0, 0 },
		{ "QUITS", 0, 0 },
		{ "quit", 0, 0 },
		{ "", 4, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		struct frame_info fi;
		char payload[8] = "QUIT";

		ck_assert_int_eq(frame_add(b, cases[i].header, (uint16_t)strlen(cases[i].header),
					   payload, cases[i].payload), 0);
		ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
		ck_assert_int_eq(fi.is_quit, cases[i].is_quit);
		evbuffer_free(b);
	}
}
END_TEST

START_TEST(test_build_frames)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_info fi;
	char body[64];

	ck_assert_int_eq(frame_add_error(b, "UNAVAILABLE", "no backend"), 0);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.header_len, 3);
	ck_assert_uint_eq(fi.total_len, 6 + 3 + strlen("UNAVAILABLE no backend"));
	ck_assert_uint_eq(evbuffer_get_length(b), fi.total_len);
	ck_assert_int_eq(evbuffer_remove(b, body, fi.total_len), (int)fi.total_len);
	ck_assert_int_eq(memcmp(body + 6, "ERRUNAVAILABLE no backend", fi.total_len - 6), 0);

	ck_assert_int_eq(frame_add_quit(b), 0);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert(fi.is_quit);
	ck_assert_uint_eq(fi.total_len, 10);
	evbuffer_free(b);
}
END_TEST

START_TEST(test_two_frames_back_to_back)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_info fi;

	ck_assert_int_eq(frame_add(b, "h", 1, "payload", 7), 0);
	ck_assert_int_eq(frame_add(b, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.total_len, 14);
	evbuffer_drain(b, fi.total_len);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.total_len, 6);
	evbuffer_drain(b, fi.total_len);
	ck_assert_int_eq(frame_peek(b, MAX_FRAME, &fi), FRAME_NEED_MORE);
	evbuffer_free(b);
}
END_TEST

/* frame_peek_at judges the frame behind a run of frames not yet moved
 * out, wherever the chains split. */
START_TEST(test_peek_at_offsets)
{
	struct evbuffer *b = evbuffer_new();
	struct frame_info fi;
	uint8_t bad[6];

	ck_assert_int_eq(frame_add(b, "h", 1, "first", 5), 0);          /* 12 bytes */
	ck_assert_int_eq(frame_add(b, "QUIT", 4, NULL, 0), 0);          /* 10 bytes */
	ck_assert_int_eq(frame_add(b, NULL, 0, "third!", 6), 0);        /* 12 bytes */
	ck_assert_int_eq(frame_peek_at(b, 0, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.total_len, 12);
	ck_assert(!fi.is_quit);
	ck_assert_int_eq(frame_peek_at(b, 12, MAX_FRAME, &fi), FRAME_READY);
	ck_assert(fi.is_quit);
	ck_assert_int_eq(frame_peek_at(b, 22, MAX_FRAME, &fi), FRAME_READY);
	ck_assert_uint_eq(fi.total_len, 12);
	ck_assert_int_eq(frame_peek_at(b, 34, MAX_FRAME, &fi), FRAME_NEED_MORE);
	ck_assert_int_eq(frame_peek_at(b, 1000, MAX_FRAME, &fi), FRAME_NEED_MORE);
	ck_assert_int_eq(frame_peek_at(b, 29, MAX_FRAME, &fi), FRAME_NEED_MORE); /* 5 bytes left */
	/* A bad prefix behind good frames, split across chains. */
	put_prefix(bad, 9, 10);
	ck_assert_int_eq(evbuffer_add_reference(b, bad, 3, NULL, NULL), 0);
	ck_assert_int_eq(frame_peek_at(b, 34, MAX_FRAME, &fi), FRAME_NEED_MORE);
	ck_assert_int_eq(evbuffer_add_reference(b, bad + 3, 3, NULL, NULL), 0);
	ck_assert_int_eq(frame_peek_at(b, 34, MAX_FRAME, &fi), FRAME_INVALID);
	ck_assert_int_eq(fi.error, FRAME_ERR_HEADER_LEN);
	ck_assert_uint_eq(evbuffer_get_length(b), 40);   /* nothing consumed */
	evbuffer_free(b);
}
END_TEST

static Suite *
frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse_prefix_table, 0,
			    (int)(sizeof(prefix_cases) / sizeof(prefix_cases[0])));
	tcase_add_test(tc, test_peek_prefix_lengths);
	tcase_add_test(tc, test_peek_invalid_before_complete);
	tcase_add_test(tc, test_peek_max_frame);
	tcase_add_test(tc, test_peek_split_everywhere);
	tcase_add_test(tc, test_quit_detection);
	tcase_add_test(tc, test_build_frames);
	tcase_add_test(tc, test_two_frames_back_to_back);
	tcase_add_test(tc, test_peek_at_offsets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(frame_suite());
}
