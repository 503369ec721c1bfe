/*
 * frame — the v1 wire format (docs/PROTOCOL.md). Decides on a frame from its
 * 6-byte prefix alone, so nothing is allocated or copied before a frame is
 * known to be valid and complete; builds the frames sluice itself emits
 * (QUIT, ERR).
 */
#ifndef SLUICE_FRAME_H
#define SLUICE_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define FRAME_PREFIX_LEN 6u
#define FRAME_QUIT_HEADER "QUIT"
#define FRAME_ERR_HEADER "ERR"

enum frame_status {
	FRAME_NEED_MORE,   /* fewer bytes than the prefix or the whole frame */
	FRAME_READY,       /* a whole valid frame is at the front */
	FRAME_INVALID,     /* the prefix breaks a rule: see frame_error */
};

enum frame_error {
	FRAME_OK = 0,
	FRAME_ERR_SHORT,       /* total_len < 6 */
	FRAME_ERR_HEADER_LEN,  /* header_len > total_len - 6 */
	FRAME_ERR_TOO_LARGE,   /* total_len > max_frame_size */
};

struct frame_info {
	uint16_t header_len;
	uint32_t total_len;
	enum frame_error error;
	unsigned is_quit:1;    /* header is exactly "QUIT" (only set when READY) */
};

/* Validates a 6-byte prefix. Pure; never looks past prefix[5]. */
enum frame_status frame_parse_prefix(const uint8_t prefix[FRAME_PREFIX_LEN],
				     uint32_t max_frame_size,
				     struct frame_info *info);

/* Looks at the front of buf (without removing anything): NEED_MORE until the
 * prefix and then the whole frame are there. A frame is INVALID as soon as
 * its prefix is, however little of it has arrived. */
enum frame_status frame_peek(struct evbuffer *buf, uint32_t max_frame_size,
			     struct frame_info *info);

/* The same for the frame starting offset bytes into buf: frames already
 * judged but not yet moved out stay in place, so that a run of them can be
 * moved in one go. */
enum frame_status frame_peek_at(struct evbuffer *buf, size_t offset, uint32_t max_frame_size,
				struct frame_info *info);

/* Appends a frame to out. Return 0, or -1 when the evbuffer refuses. */
int frame_add(struct evbuffer *out, const void *header, uint16_t header_len,
	      const void *payload, uint32_t payload_len);
int frame_add_quit(struct evbuffer *out);
/* The codes of the ERR frames sluice answers requests with (SPEC §1). */
enum frame_err_code {
	FRAME_ERR_BUSY,         /* not written within queue_timeout: safe to retry */
	FRAME_ERR_UNAVAILABLE,  /* no connection could take it, or it died after the write */
	FRAME_ERR_TIMEOUT,      /* no answer within request_timeout */
	FRAME_ERR_PROTOCOL,     /* the client sent an invalid frame */
};
#define FRAME_ERR_CODE_COUNT 4
/* "BUSY", "UNAVAILABLE", ... as on the wire. */
const char *frame_err_code_name(enum frame_err_code code);

/* ERR frame with payload "CODE message". */
int frame_add_error(struct evbuffer *out, const char *code, const char *message);

const char *frame_error_string(enum frame_error error);

#endif
