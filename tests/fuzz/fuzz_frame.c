/*
 * fuzz_frame — the frame parser (frame_peek, frame_peek_at,
 * frame_parse_prefix) against a reference written from SPEC §1, on bytes
 * that arrive in pieces: the input is cut into evbuffer chains at points
 * the fuzzer chooses and fed one piece at a time, and after each piece the
 * frames are taken the way session_process and upstream_read_cb take them:
 * judged one after the other in place (frame_peek_at at the end of the run
 * so far), then the whole run moved out in one go. Then the frames sluice
 * builds itself (frame_add, frame_add_error, frame_add_quit) must parse
 * back.
 *
 * Input: byte 0 picks max_frame_size (low 3 bits); byte 1 says how many
 * chunk sizes follow (low 4 bits); each of those bytes is a chunk size
 * minus one, used in turn; the rest is the byte stream.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/frame.h>

#include "fuzz.h"

const char fuzz_target_name[] = "frame";

/* Room for the prefix and the 4 bytes that tell a QUIT. */
#define SNAP_LEN (FRAME_PREFIX_LEN + 4)

/* Limits around every boundary: just the prefix, prefix plus QUIT, small,
 * the default, the largest total_len can say. */
static const uint32_t frame_limits[8] = {
	6, 7, 10, 64, 1024, 65536, 1024 * 1024, UINT32_MAX,
};

struct reference {
	enum frame_status status;
	enum frame_error error;
	uint16_t header_len;
	uint32_t total_len;
	bool is_quit;
};

/* SPEC §1 read literally, independent of frame.c: what the front of a
 * buffer of `have` bytes starting with snap must be judged. */
static struct reference
reference_judge(const uint8_t *snap, size_t have, uint32_t max)
{
	struct reference r = { FRAME_NEED_MORE, FRAME_OK, 0, 0, false };

	if (have < FRAME_PREFIX_LEN)
		return r;
	r.header_len = (uint16_t)(snap[0] * 256u + snap[1]);
	r.total_len = (uint32_t)snap[2] * 16777216u + (uint32_t)snap[3] * 65536u +
		      (uint32_t)snap[4] * 256u + snap[5];
	if (r.total_len < 6)
		r.error = FRAME_ERR_SHORT;
	else if ((uint64_t)r.header_len + 6 > r.total_len)
		r.error = FRAME_ERR_HEADER_LEN;
	else if (r.total_len > max)
		r.error = FRAME_ERR_TOO_LARGE;
	if (r.error != FRAME_OK) {
		r.status = FRAME_INVALID;
		return r;
	}
	if (have < r.total_len)
		return r;
	r.status = FRAME_READY;
	/* header_len 4 means total_len >= 10: the snapshot holds the header. */
	r.is_quit = r.header_len == 4 && memcmp(snap + 6, "QUIT", 4) == 0;
	return r;
}

static const char *
status_name(enum frame_status st)
{
	switch (st) {
	case FRAME_NEED_MORE:
		return "NEED_MORE";
	case FRAME_READY:
		return "READY";
	case FRAME_INVALID:
		return "INVALID";
	}
	return "?";
}

/* Up to SNAP_LEN bytes of buf from offset; returns how many. */
static size_t
snapshot(struct evbuffer *buf, size_t offset, uint8_t out[SNAP_LEN])
{
	size_t len = evbuffer_get_length(buf);
	size_t n = len > offset ? len - offset : 0;
	struct evbuffer_ptr at;

	if (n > SNAP_LEN)
		n = SNAP_LEN;
	if (n == 0)
		return 0;
	FUZZ_ASSERT(evbuffer_ptr_set(buf, &at, offset, EVBUFFER_PTR_SET) == 0, "evbuffer_ptr_set failed");
	FUZZ_ASSERT(evbuffer_copyout_from(buf, &at, out, n) == (ev_ssize_t)n, "copyout failed");
	return n;
}

/* One frame_peek_at (frame_peek at offset 0), checked against the
 * reference and for side effects. Returns its verdict; fi is filled as
 * the parser left it. */
static enum frame_status
checked_peek(struct evbuffer *buf, size_t offset, uint32_t max, struct frame_info *fi)
{
	uint8_t before[SNAP_LEN], after[SNAP_LEN], front[SNAP_LEN], front_after[SNAP_LEN];
	size_t len = evbuffer_get_length(buf);
	size_t have = len > offset ? len - offset : 0;
	size_t snap = snapshot(buf, offset, before);
	size_t fsnap = snapshot(buf, 0, front);
	struct reference ref;
	enum frame_status st;

	st = offset == 0 ? frame_peek(buf, max, fi) : frame_peek_at(buf, offset, max, fi);
	/* Peeking must never consume or change a byte. */
	FUZZ_ASSERT(evbuffer_get_length(buf) == len, "frame_peek_at changed the length: %zu -> %zu",
		    len, evbuffer_get_length(buf));
	FUZZ_ASSERT(snapshot(buf, offset, after) == snap && memcmp(before, after, snap) == 0,
		    "frame_peek_at changed the bytes it looked at");
	FUZZ_ASSERT(snapshot(buf, 0, front_after) == fsnap && memcmp(front, front_after, fsnap) == 0,
		    "frame_peek_at changed the buffer's front");

	ref = reference_judge(before, have, max);
	FUZZ_ASSERT(st == ref.status, "frame_peek_at(%zu) says %s, SPEC §1 says %s (have %zu, max %u)",
		    offset, status_name(st), status_name(ref.status), have, max);
	if (have >= FRAME_PREFIX_LEN) {
		struct frame_info pi;
		enum frame_status ps = frame_parse_prefix(before, max, &pi);

		FUZZ_ASSERT(ps == (ref.error == FRAME_OK ? FRAME_READY : FRAME_INVALID),
			    "frame_parse_prefix says %s, error %d expected", status_name(ps), (int)ref.error);
		FUZZ_ASSERT(pi.error == ref.error, "frame_parse_prefix error %d, expected %d",
			    (int)pi.error, (int)ref.error);
		FUZZ_ASSERT(pi.header_len == ref.header_len && pi.total_len == ref.total_len,
			    "frame_parse_prefix decoded %u/%u, expected %u/%u",
			    pi.header_len, pi.total_len, ref.header_len, ref.total_len);
	}
	switch (st) {
	case FRAME_READY:
		FUZZ_ASSERT(fi->error == FRAME_OK, "READY with error %d", (int)fi->error);
		FUZZ_ASSERT(fi->total_len >= FRAME_PREFIX_LEN, "READY with total_len %u", fi->total_len);
		FUZZ_ASSERT(fi->header_len <= fi->total_len - FRAME_PREFIX_LEN,
			    "READY with header_len %u > total_len %u - 6", fi->header_len, fi->total_len);
		FUZZ_ASSERT(fi->total_len <= max, "READY with total_len %u > max %u", fi->total_len, max);
		FUZZ_ASSERT(fi->total_len <= have, "READY with total_len %u > %zu buffered past offset %zu",
			    fi->total_len, have, offset);
		FUZZ_ASSERT(fi->header_len == ref.header_len && fi->total_len == ref.total_len,
			    "READY decoded %u/%u, expected %u/%u", fi->header_len, fi->total_len,
			    ref.header_len, ref.total_len);
		FUZZ_ASSERT((bool)fi->is_quit == ref.is_quit, "is_quit %u, expected %d", fi->is_quit,
			    (int)ref.is_quit);
		break;
	case FRAME_INVALID:
		FUZZ_ASSERT(fi->error == ref.error, "INVALID with error %d, expected %d", (int)fi->error,
			    (int)ref.error);
		FUZZ_ASSERT(!fi->is_quit, "an invalid frame flagged QUIT");
		break;
	case FRAME_NEED_MORE:
		FUZZ_ASSERT(!fi->is_quit, "an incomplete frame flagged QUIT");
		break;
	}
	FUZZ_ASSERT(frame_error_string(fi->error) != NULL && frame_error_string(fi->error)[0] != '\0',
		    "no text for frame error %d", (int)fi->error);
	return st;
}

/* Judges the frames at the front one after the other without moving them
 * (each frame_peek_at starts where the run so far ends), then moves the
 * whole run out in one go, as session_process and upstream_read_cb do, and
 * checks it is the stream's next bytes. Returns the verdict that stopped
 * the run. */
static enum frame_status
take_frames(struct evbuffer *buf, uint32_t max, const uint8_t *stream, size_t *taken)
{
	struct evbuffer *sink;
	struct frame_info fi;
	enum frame_status st;
	size_t run = 0;
	unsigned char *p;

	while ((st = checked_peek(buf, run, max, &fi)) == FRAME_READY)
		run += fi.total_len;
	if (run == 0)
		return st;
	sink = evbuffer_new();
	FUZZ_ASSERT(sink != NULL, "out of memory");
	FUZZ_ASSERT(evbuffer_remove_buffer(buf, sink, run) == (int)run,
		    "cannot move a run of %zu bytes of READY frames", run);
	p = evbuffer_pullup(sink, -1);
	FUZZ_ASSERT(p != NULL, "pullup failed");
	FUZZ_ASSERT(memcmp(p, stream + *taken, run) == 0, "the run taken is not the stream's next %zu bytes",
		    run);
	*taken += run;
	evbuffer_free(sink);
	/* What stopped the run is now at the front: frame_peek must agree. */
	FUZZ_ASSERT(checked_peek(buf, 0, max, &fi) == st, "the verdict changed once the run moved out");
	return st;
}

static void
check_stream(const uint8_t *sizes, size_t n_sizes, const uint8_t *stream, size_t len, uint32_t max)
{
	struct evbuffer *buf = evbuffer_new();
	size_t fed = 0, taken = 0, k = 0;
	enum frame_status st = FRAME_NEED_MORE;

	FUZZ_ASSERT(buf != NULL, "out of memory");
	while (fed < len) {
		size_t piece = n_sizes > 0 ? (size_t)sizes[k++ % n_sizes] + 1 : len - fed;

		if (piece > len - fed)
			piece = len - fed;
		/* A reference is its own chain: frames straddle chains. */
		FUZZ_ASSERT(evbuffer_add_reference(buf, stream + fed, piece, NULL, NULL) == 0,
			    "evbuffer_add_reference failed");
		fed += piece;
		st = take_frames(buf, max, stream, &taken);
		if (st == FRAME_INVALID)
			break;  /* session_process stops reading here too */
	}
	FUZZ_ASSERT(taken + evbuffer_get_length(buf) == fed, "bytes lost: fed %zu, taken %zu, left %zu",
		    fed, taken, evbuffer_get_length(buf));
	evbuffer_free(buf);
}

/* The frames sluice writes itself must read back as what was written. */
static void
check_builders(const uint8_t *stream, size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	struct frame_info fi;
	size_t hl = len > 0 ? stream[0] % len : 0;
	char code[32], message[512];
	size_t cl, ml;

	FUZZ_ASSERT(buf != NULL, "out of memory");
	FUZZ_ASSERT(frame_add(buf, stream, (uint16_t)hl, stream + hl, (uint32_t)(len - hl)) == 0,
		    "frame_add failed");
	FUZZ_ASSERT(checked_peek(buf, 0, UINT32_MAX, &fi) == FRAME_READY, "a built frame is not READY");
	FUZZ_ASSERT(fi.header_len == hl && fi.total_len == len + 6, "built %zu/%zu, read %u/%u",
		    hl, len + 6, fi.header_len, fi.total_len);
	evbuffer_drain(buf, evbuffer_get_length(buf));

	/* ERR "CODE message" from arbitrary text, cut at 255 bytes of payload. */
	cl = len < sizeof(code) - 1 ? len : sizeof(code) - 1;
	memcpy(code, stream, cl);
	code[cl] = '\0';
	ml = len - cl < sizeof(message) - 1 ? len - cl : sizeof(message) - 1;
	memcpy(message, stream + cl, ml);
	message[ml] = '\0';
	FUZZ_ASSERT(frame_add_error(buf, code, message) == 0, "frame_add_error failed");
	FUZZ_ASSERT(checked_peek(buf, 0, UINT32_MAX, &fi) == FRAME_READY, "an ERR frame is not READY");
	FUZZ_ASSERT(fi.header_len == 3 && fi.total_len <= 6 + 3 + 255 && !fi.is_quit,
		    "ERR frame read as %u/%u", fi.header_len, fi.total_len);
	evbuffer_drain(buf, evbuffer_get_length(buf));

	FUZZ_ASSERT(frame_add_quit(buf) == 0, "frame_add_quit failed");
	FUZZ_ASSERT(checked_peek(buf, 0, 10, &fi) == FRAME_READY && fi.is_quit && fi.total_len == 10,
		    "QUIT does not read back as QUIT");
	evbuffer_free(buf);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t max;
	size_t n_sizes;

	if (size < 2)
		return 0;
	max = frame_limits[data[0] & 7];
	n_sizes = data[1] & 15;
	if (size - 2 < n_sizes)
		return 0;
	check_stream(data + 2, n_sizes, data + 2 + n_sizes, size - 2 - n_sizes, max);
	check_builders(data + 2 + n_sizes, size - 2 - n_sizes);
	return 0;
}
