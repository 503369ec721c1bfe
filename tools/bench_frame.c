/*
 * bench_frame — sluice-bench's requests and the verification of responses
 * (see bench_frame.h for the layout).
 *
 * The common case, a correct answer, costs two memcmp calls: the stamp, and
 * the rest of the body against the shared pattern. Only a wrong answer pays
 * for working out what went wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "bench_frame.h"

#define BENCH_PREFIX_LEN 6u

int bench_pattern_init(struct bench_pattern *p, uint16_t header_len, uint32_t payload_len,
		       uint64_t seed)
{
	uint64_t x = seed ? seed : UINT64_C(0x9E3779B97F4A7C15);
	size_t i, n;

	memset(p, 0, sizeof(*p));
	if ((uint64_t)payload_len + header_len + BENCH_PREFIX_LEN > UINT32_MAX)
		return -1;
	p->header_len = header_len;
	p->payload_len = payload_len;
	p->body_len = (size_t)header_len + payload_len;
	p->frame_len = BENCH_PREFIX_LEN + p->body_len;
	n = p->body_len + BENCH_PATTERN_SHIFTS;
	p->bytes = malloc(n);
	if (p->bytes == NULL)
		return -1;
	/* xorshift64: random-looking bytes, so no compression or repeated
	 * block can flatter anyone. */
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p->bytes[i] = (uint8_t)(x >> 24);
	}
	return 0;
}

void bench_pattern_free(struct bench_pattern *p)
{
	free(p->bytes);
	p->bytes = NULL;
}

static void bench_stamp(uint8_t stamp[BENCH_STAMP_LEN], uint32_t conn, uint64_t seq)
{
	unsigned i;

	stamp[0] = BENCH_STAMP_MAGIC;
	for (i = 0; i < 8; i++)
		stamp[1 + i] = (uint8_t)(seq >> (8 * i));
	for (i = 0; i < 3; i++)
		stamp[9 + i] = (uint8_t)(conn >> (8 * i));
}

static size_t bench_stamp_len(const struct bench_pattern *p)
{
	return p->body_len < BENCH_STAMP_LEN ? p->body_len : BENCH_STAMP_LEN;
}

/* Where the pattern is read from for request seq. */
static const uint8_t *bench_rest(const struct bench_pattern *p, uint64_t seq)
{
	return p->bytes + seq % BENCH_PATTERN_SHIFTS;
}

void bench_frame_build(const struct bench_pattern *p, uint32_t conn, uint64_t seq, uint8_t *out)
{
	uint8_t stamp[BENCH_STAMP_LEN];
	size_t sl = bench_stamp_len(p);
	uint32_t total = (uint32_t)p->frame_len;
	uint8_t *body = out + BENCH_PREFIX_LEN;

	out[0] = (uint8_t)(p->header_len >> 8);
	out[1] = (uint8_t)p->header_len;
	out[2] = (uint8_t)(total >> 24);
	out[3] = (uint8_t)(total >> 16);
	out[4] = (uint8_t)(total >> 8);
	out[5] = (uint8_t)total;
	bench_stamp(stamp, conn, seq);
	memcpy(body, stamp, sl);
	memcpy(body + sl, bench_rest(p, seq) + sl, p->body_len - sl);
}

int bench_frame_prefix(const uint8_t *prefix, uint32_t max_len, uint16_t *header_len,
		       uint32_t *total_len)
{
	uint16_t h = (uint16_t)(prefix[0] << 8 | prefix[1]);
	uint32_t t = (uint32_t)prefix[2] << 24 | (uint32_t)prefix[3] << 16 |
		     (uint32_t)prefix[4] << 8 | prefix[5];

	if (t < BENCH_PREFIX_LEN || h > t - BENCH_PREFIX_LEN || t > max_len)
		return -1;
	*header_len = h;
	*total_len = t;
	return 0;
}

/* The verdict for the first byte of the body that differs from request seq. */
static enum bench_verdict bench_first_difference(const struct bench_pattern *p, uint32_t conn,
						 uint64_t seq, const uint8_t *body)
{
	uint8_t stamp[BENCH_STAMP_LEN];
	const uint8_t *rest = bench_rest(p, seq);
	size_t sl = bench_stamp_len(p), i;

	bench_stamp(stamp, conn, seq);
	for (i = 0; i < p->body_len; i++)
		if (body[i] != (i < sl ? stamp[i] : rest[i]))
			break;
	if (i == p->body_len)
		return BENCH_OK;
	return i < p->header_len ? BENCH_BAD_HEADER : BENCH_BAD_PAYLOAD;
}

/* A stamp naming another request whose bytes are otherwise whole: the
 * answer to that request, arrived in this one's place. */
static enum bench_verdict bench_misplaced(const struct bench_pattern *p, uint32_t conn,
					  uint64_t seq, const uint8_t *body, uint64_t *got_seq)
{
	uint64_t s = 0;
	uint32_t c = 0;
	unsigned i;

	if (p->body_len < BENCH_STAMP_LEN || body[0] != BENCH_STAMP_MAGIC)
		return BENCH_OK;
	for (i = 0; i < 8; i++)
		s |= (uint64_t)body[1 + i] << (8 * i);
	for (i = 0; i < 3; i++)
		c |= (uint32_t)body[9 + i] << (8 * i);
	if ((s == seq && c == conn) || bench_first_difference(p, c, s, body) != BENCH_OK)
		return BENCH_OK;
	if (got_seq != NULL)
		*got_seq = s;
	return c == conn ? BENCH_BAD_ORDER : BENCH_BAD_CONN;
}

enum bench_verdict bench_frame_check(const struct bench_pattern *p, uint32_t conn, uint64_t seq,
				     const uint8_t *frame, size_t len, uint64_t *got_seq)
{
	uint8_t stamp[BENCH_STAMP_LEN];
	const uint8_t *body = frame + BENCH_PREFIX_LEN;
	size_t sl = bench_stamp_len(p);
	uint16_t hlen = (uint16_t)(frame[0] << 8 | frame[1]);
	enum bench_verdict v;

	if (hlen == 3 && len >= BENCH_PREFIX_LEN + 3 && memcmp(body, "ERR", 3) == 0)
		return BENCH_ERR_FRAME;
	if (hlen == 4 && len >= BENCH_PREFIX_LEN + 4 && memcmp(body, "QUIT", 4) == 0)
		return BENCH_QUIT_FRAME;
	if (len != p->frame_len || hlen != p->header_len)
		return BENCH_BAD_LENGTH;
	bench_stamp(stamp, conn, seq);
	if (memcmp(body, stamp, sl) == 0 &&
	    memcmp(body + sl, bench_rest(p, seq) + sl, p->body_len - sl) == 0)
		return BENCH_OK;
	v = bench_misplaced(p, conn, seq, body, got_seq);
	return v != BENCH_OK ? v : bench_first_difference(p, conn, seq, body);
}

const char *bench_verdict_string(enum bench_verdict v)
{
	static const char *const names[BENCH_VERDICTS] = {
		[BENCH_OK] = "ok",
		[BENCH_ERR_FRAME] = "ERR answer",
		[BENCH_QUIT_FRAME] = "QUIT from the server",
		[BENCH_BAD_LENGTH] = "length differs",
		[BENCH_BAD_ORDER] = "out of order",
		[BENCH_BAD_CONN] = "another connection's answer",
		[BENCH_BAD_HEADER] = "header differs",
		[BENCH_BAD_PAYLOAD] = "payload differs",
	};

	return (unsigned)v < BENCH_VERDICTS ? names[v] : "unknown";
}
