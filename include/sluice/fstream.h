/*
 * fstream — the frame stream: how the bytes of frames travel between
 * sockets and evbuffers, below the modules that decide (session, upstream)
 * and the one that places (pool). It reads (an upstream's socket straight
 * into its input), cuts frames (the next one behind a run), moves bytes
 * (evbuffer chains change hands; the bytes always leave their source),
 * batches (a run of frames for one destination moves in one go), and steps
 * around libevent's defaults where docs/PERFORMANCE.md measured a cost:
 * writes in the same turn of the loop, records OpenSSL read ahead, reads
 * past libevent's 4 KiB. It knows frames (frame.h) and nothing above.
 */
#ifndef SLUICE_FSTREAM_H
#define SLUICE_FSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include <sluice/frame.h>

struct bufferevent;
struct evbuffer;

/* ---- moving bytes -------------------------------------------------------- */

/* Moves the first len bytes of src to the end of dst: evbuffer chains
 * change hands, bytes are not copied (except the part of a chain that len
 * splits). The bytes always leave src, so the frames behind them stay
 * aligned even when dst cannot take them. 0, or -1 when not all of them
 * reached dst. */
int fstream_move(struct evbuffer *src, struct evbuffer *dst, size_t len);

/* Frames at the front of src that are judged and have a destination but
 * whose bytes have not moved yet: consecutive frames for one destination
 * move in one go (a pipelining client's burst costs one move, not one per
 * frame). Whoever adds to a run flushes it before anything else reads src
 * or control returns to the event loop. */
struct fstream_run {
	/* Hands the run's len bytes at src's front to dest (fstream_move
	 * and whatever the destination does with them). */
	void (*flush)(void *dest, struct evbuffer *src, size_t len);
	void *dest;                   /* where the run's frames go; NULL when empty */
	size_t len;                   /* their bytes, at the front of src */
};
#define FSTREAM_RUN_INIT(flush) { (flush), NULL, 0 }

/* The frame in src behind the run's (see frame_peek_at). */
static inline enum frame_status
fstream_run_peek(const struct fstream_run *run, struct evbuffer *src, uint32_t max_frame_size,
		 struct frame_info *fi)
{
	return frame_peek_at(src, run->len, max_frame_size, fi);
}

void fstream_run_flush(struct fstream_run *run, struct evbuffer *src);

/* The len bytes behind the run go to dest: they join the run, after the
 * run's bytes have gone when they were for another destination. */
static inline void
fstream_run_add(struct fstream_run *run, struct evbuffer *src, void *dest, size_t len)
{
	if (dest != run->dest)
		fstream_run_flush(run, src);
	run->dest = dest;
	run->len += len;
}

/* ---- reading and writing around libevent's defaults ---------------------- */

/* Caps every read of bev at max bytes (SLUICE_MAX_READ; 0: libevent's). */
void fstream_cap_reads(struct bufferevent *bev, size_t max);

/* Data was just queued on bev's output: write it in this turn of the event
 * loop rather than the next one. */
void fstream_write_soon(struct bufferevent *bev);

/* bev is a bufferevent_openssl whose SSL may hold records it read ahead,
 * which no readiness event will announce: they are read in this turn of
 * the loop. */
void fstream_read_buffered(struct bufferevent *bev);

enum fstream_read {
	FSTREAM_READ_OK,        /* bytes were added to the input */
	FSTREAM_READ_AGAIN,     /* nothing to read now (EAGAIN, EINTR) */
	FSTREAM_READ_EOF,       /* the peer closed */
	FSTREAM_READ_ERROR,     /* read(2) failed: errno says why */
	FSTREAM_READ_NOMEM,     /* the input could not make room */
	FSTREAM_READ_REFUSED,   /* the input refused the bytes read */
};

/* Reads fd straight into in, without libevent's 4 KiB limit: up to cap
 * bytes (0: FSTREAM_READ_MAX), or, when the frame at in's front still
 * misses more than FSTREAM_READ_TO_FRAME_END, to its last byte and no
 * further. */
enum fstream_read fstream_read(evutil_socket_t fd, struct evbuffer *in, size_t cap);

#endif
