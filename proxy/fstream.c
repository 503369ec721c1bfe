/*
 * fstream — the bytes of frames between sockets and evbuffers. Nothing here
 * decides anything about a frame: the session and the upstream judge
 * frames (frame_peek through fstream_run_peek) and name a destination;
 * this layer moves the bytes, batches them, and reads and writes where
 * libevent's defaults cost too much (docs/PERFORMANCE.md).
 */
#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include <sluice/frame.h>
#include <sluice/fstream.h>

/* One read(2) takes up to this much of a backend's answers. libevent 2.1's
 * own reads stop at 4 KiB, which made a 64 KiB answer 16 reads, 16
 * callbacks, and 16 TLS records of 4 KiB on the client's side. */
#define FSTREAM_READ_MAX (64u * 1024u)
/* A frame still missing more than this is read up to its last byte and no
 * further, so that its last chain ends with it and moves to the client
 * whole (evbuffer_remove_buffer copies the part of a chain it splits). */
#define FSTREAM_READ_TO_FRAME_END (16u * 1024u)

int
fstream_move(struct evbuffer *src, struct evbuffer *dst, size_t len)
{
	size_t before = evbuffer_get_length(dst);
	int moved = evbuffer_remove_buffer(src, dst, len);

	/* libevent 2.1 copies the part of a chain the move splits, and when
	 * that copy fails for want of memory it drops those bytes and still
	 * reports them moved: what dst got is what counts. */
	if (moved == (int)len && evbuffer_get_length(dst) - before == len)
		return 0;
	if (moved < (int)len)
		evbuffer_drain(src, len - (size_t)(moved > 0 ? moved : 0));
	return -1;
}

void
fstream_run_flush(struct fstream_run *run, struct evbuffer *src)
{
	if (run->len > 0)
		run->flush(run->dest, src, run->len);
	run->dest = NULL;
	run->len = 0;
}

void
fstream_cap_reads(struct bufferevent *bev, size_t max)
{
	if (max > 0)
		bufferevent_set_max_single_read(bev, max);
}

/* libevent's bufferevents add their write event when the output goes from
 * empty to not empty and write in the next turn of the loop, where they
 * delete the event again once everything is written: two epoll_ctl calls
 * per batch of frames (the cost Envoy PR #183 dropped bufferevents for).
 * Making the write event active now runs that write in this turn, after
 * the callback that queued the data (so a whole read's worth of frames is
 * still one write), and the add and the delete then meet in the epoll
 * changelist, which cancels them: no system call. If the socket is full,
 * the write stops early and the event stays added, as before. */
void
fstream_write_soon(struct bufferevent *bev)
{
	event_active(&bev->ev_write, EV_WRITE, 1);
}

/* With read-ahead, one read(2) takes every record the socket holds, while
 * libevent hands them to us one SSL_read at a time and stops when the
 * current record is used up: the rest stays in OpenSSL, and the socket,
 * now empty, will not wake the loop for it. */
void
fstream_read_buffered(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl != NULL && SSL_has_pending(ssl))
		event_active(&bev->ev_read, EV_READ, 1);
}

/* How much the next read takes: to the end of a large frame under way,
 * else up to cap (tests cap it with SLUICE_MAX_READ). */
static size_t
fstream_read_size(struct evbuffer *in, size_t cap)
{
	size_t have = evbuffer_get_length(in);
	uint8_t prefix[FRAME_PREFIX_LEN];
	struct frame_info fi;

	if (have >= FRAME_PREFIX_LEN && evbuffer_copyout(in, prefix, sizeof(prefix)) == sizeof(prefix) &&
	    frame_parse_prefix(prefix, UINT32_MAX, &fi) == FRAME_READY && fi.total_len > have &&
	    fi.total_len - have > FSTREAM_READ_TO_FRAME_END)
		return fi.total_len - have < cap ? fi.total_len - have : cap;
	return cap;
}

/* Reads straight into in (evbuffer_reserve_space: the bytes land in the
 * chains that later move to clients). */
enum fstream_read
fstream_read(evutil_socket_t fd, struct evbuffer *in, size_t cap)
{
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t want = fstream_read_size(in, cap > 0 ? cap : FSTREAM_READ_MAX), left = want;
	ssize_t got;
	int n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);

	if (n <= 0)
		return FSTREAM_READ_NOMEM;
	for (int i = 0; i < n; i++) {
		v[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
		left -= v[i].iov_len;
		iov[i] = (struct iovec){ .iov_base = v[i].iov_base, .iov_len = v[i].iov_len };
	}
	got = readv(fd, iov, n);
	if (got <= 0) {
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return FSTREAM_READ_AGAIN;
		return got == 0 ? FSTREAM_READ_EOF : FSTREAM_READ_ERROR;
	}
	left = (size_t)got;
	for (int i = 0; i < n; i++) {
		v[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
		left -= v[i].iov_len;
	}
	if (evbuffer_commit_space(in, v, n > 1 && v[1].iov_len > 0 ? 2 : 1) < 0)
		return FSTREAM_READ_REFUSED;
	return FSTREAM_READ_OK;
}
