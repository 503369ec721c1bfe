/*
 * frame — the v1 wire format: u16 header_len, u32 total_len (both
 * big-endian, total_len counts the whole frame), header, payload. A frame is
 * judged on its 6-byte prefix before anything else is read, so an absurd
 * total_len is refused without a byte being allocated for it.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/frame.h>

enum frame_status
frame_parse_prefix(const uint8_t prefix[FRAME_PREFIX_LEN], uint32_t max_frame_size,
		   struct frame_info *info)
{
	info->header_len = (uint16_t)((prefix[0] << 8) | prefix[1]);
	info->total_len = ((uint32_t)prefix[2] << 24) | ((uint32_t)prefix[3] << 16) |
			  ((uint32_t)prefix[4] << 8) | (uint32_t)prefix[5];
	info->is_quit = 0;
	info->error = FRAME_OK;

	if (info->total_len < FRAME_PREFIX_LEN)
		info->error = FRAME_ERR_SHORT;
	else if (info->header_len > info->total_len - FRAME_PREFIX_LEN)
		info->error = FRAME_ERR_HEADER_LEN;
	else if (info->total_len > max_frame_size)
		info->error = FRAME_ERR_TOO_LARGE;
	return info->error == FRAME_OK ? FRAME_READY : FRAME_INVALID;
}

enum frame_status
frame_peek_at(struct evbuffer *buf, size_t offset, uint32_t max_frame_size,
	      struct frame_info *info)
{
	uint8_t head[FRAME_PREFIX_LEN + sizeof(FRAME_QUIT_HEADER) - 1];
	size_t len = evbuffer_get_length(buf);
	size_t have = len > offset ? len - offset : 0;
	struct evbuffer_ptr at;

	info->error = FRAME_OK;
	info->is_quit = 0;
	if (have < FRAME_PREFIX_LEN)
		return FRAME_NEED_MORE;
	if (evbuffer_ptr_set(buf, &at, offset, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(buf, &at, head, FRAME_PREFIX_LEN) != FRAME_PREFIX_LEN)
		return FRAME_NEED_MORE;
	if (frame_parse_prefix(head, max_frame_size, info) == FRAME_INVALID)
		return FRAME_INVALID;
	if (have < info->total_len)
		return FRAME_NEED_MORE;
	if (info->header_len == sizeof(FRAME_QUIT_HEADER) - 1 &&
	    evbuffer_copyout_from(buf, &at, head, sizeof(head)) == (ev_ssize_t)sizeof(head) &&
	    memcmp(head + FRAME_PREFIX_LEN, FRAME_QUIT_HEADER, sizeof(FRAME_QUIT_HEADER) - 1) == 0)
		info->is_quit = 1;
	return FRAME_READY;
}

enum frame_status
frame_peek(struct evbuffer *buf, uint32_t max_frame_size, struct frame_info *info)
{
	return frame_peek_at(buf, 0, max_frame_size, info);
}

int
frame_add(struct evbuffer *out, const void *header, uint16_t header_len,
	  const void *payload, uint32_t payload_len)
{
	uint8_t prefix[FRAME_PREFIX_LEN];
	uint64_t total = (uint64_t)FRAME_PREFIX_LEN + header_len + payload_len;

	if (total > UINT32_MAX)
		return -1;
	prefix[0] = (uint8_t)(header_len >> 8);
	prefix[1] = (uint8_t)header_len;
	prefix[2] = (uint8_t)(total >> 24);
	prefix[3] = (uint8_t)(total >> 16);
	prefix[4] = (uint8_t)(total >> 8);
	prefix[5] = (uint8_t)total;
	if (evbuffer_add(out, prefix, sizeof(prefix)) < 0)
		return -1;
	if (header_len > 0 && evbuffer_add(out, header, header_len) < 0)
		return -1;
	if (payload_len > 0 && evbuffer_add(out, payload, payload_len) < 0)
		return -1;
	return 0;
}

int
frame_add_quit(struct evbuffer *out)
{
	return frame_add(out, FRAME_QUIT_HEADER, sizeof(FRAME_QUIT_HEADER) - 1, NULL, 0);
}

int
frame_add_error(struct evbuffer *out, const char *code, const char *message)
{
	char payload[256];
	int n = snprintf(payload, sizeof(payload), "%s %s", code, message);

	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(payload))
		n = sizeof(payload) - 1;
	return frame_add(out, FRAME_ERR_HEADER, sizeof(FRAME_ERR_HEADER) - 1,
			 payload, (uint32_t)n);
}

const char *
frame_err_code_name(enum frame_err_code code)
{
	switch (code) {
	case FRAME_ERR_BUSY:
		return "BUSY";
	case FRAME_ERR_UNAVAILABLE:
		return "UNAVAILABLE";
	case FRAME_ERR_TIMEOUT:
		return "TIMEOUT";
	case FRAME_ERR_PROTOCOL:
		return "PROTOCOL";
	}
	return "UNKNOWN";
}

const char *
frame_error_string(enum frame_error error)
{
	switch (error) {
	case FRAME_OK:
		return "valid frame";
	case FRAME_ERR_SHORT:
		return "total_len is smaller than the 6-byte prefix";
	case FRAME_ERR_HEADER_LEN:
		return "header_len is larger than the frame";
	case FRAME_ERR_TOO_LARGE:
		return "frame is larger than max_frame_size";
	}
	return "unknown frame error";
}
