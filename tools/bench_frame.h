/*
 * bench_frame — the requests sluice-bench sends and the check of each
 * response against its request. A request is a pure function of
 * (connection, sequence number), so nothing is stored per request: the
 * response is compared with the request regenerated from a pattern that all
 * threads share read-only.
 *
 * The frame's body (header then payload, as one run of bytes) starts with a
 * stamp: a magic byte, the sequence number (little-endian, so a truncated
 * stamp keeps the bytes that change) and the connection number, cut to the
 * body's length. The rest of the body is the pattern read from an offset
 * that depends on the sequence number, so consecutive requests differ
 * everywhere. The magic byte means no header ever reads "QUIT" or "ERR".
 */
#ifndef SLUICE_BENCH_FRAME_H
#define SLUICE_BENCH_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_STAMP_MAGIC 0xB5u
#define BENCH_STAMP_LEN 12u          /* magic, 8 bytes sequence, 3 connection */
#define BENCH_PATTERN_SHIFTS 61u     /* distinct pattern offsets (a prime) */
#define BENCH_MAX_CONN 0xFFFFFFu     /* connection numbers fit in 3 bytes */

/* The request shape of a run; built once, then read-only for all threads. */
struct bench_pattern {
	uint8_t *bytes;              /* body_len + BENCH_PATTERN_SHIFTS random bytes */
	uint16_t header_len;
	uint32_t payload_len;
	size_t body_len;             /* header_len + payload_len */
	size_t frame_len;            /* 6 + body_len */
};

enum bench_verdict {
	BENCH_OK,
	BENCH_ERR_FRAME,             /* header "ERR": an error answer from the proxy */
	BENCH_QUIT_FRAME,            /* header "QUIT": the server is closing */
	BENCH_BAD_LENGTH,            /* header_len or total_len differ from the request's */
	BENCH_BAD_ORDER,             /* another request of this connection: reordered,
				      * lost or duplicated */
	BENCH_BAD_CONN,              /* a request of another connection: misrouted */
	BENCH_BAD_HEADER,            /* the first wrong byte is in the header */
	BENCH_BAD_PAYLOAD,           /* the first wrong byte is in the payload */
	BENCH_VERDICTS
};

/* 0, or -1 when out of memory or the frame would not fit a total_len. */
int bench_pattern_init(struct bench_pattern *p, uint16_t header_len, uint32_t payload_len,
		       uint64_t seed);
void bench_pattern_free(struct bench_pattern *p);

/* Writes request (conn, seq) into out: p->frame_len bytes. */
void bench_frame_build(const struct bench_pattern *p, uint32_t conn, uint64_t seq, uint8_t *out);

/* Reads the 6-byte prefix: 0, or -1 if it breaks SPEC §1's rules or exceeds
 * max_len. */
int bench_frame_prefix(const uint8_t *prefix, uint32_t max_len, uint16_t *header_len,
		       uint32_t *total_len);

/* Checks the whole frame `len` bytes long (len from its own prefix) against
 * request (conn, seq). For BENCH_BAD_ORDER and BENCH_BAD_CONN, *got_seq
 * (when not NULL) is the sequence number the response belongs to. */
enum bench_verdict bench_frame_check(const struct bench_pattern *p, uint32_t conn, uint64_t seq,
				     const uint8_t *frame, size_t len, uint64_t *got_seq);

const char *bench_verdict_string(enum bench_verdict v);

#endif
