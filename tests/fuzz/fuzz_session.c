/*
 * fuzz_session — a whole session in one process, without TLS: arbitrary
 * decrypted client bytes and arbitrary backend bytes, interleaved as the
 * input says.
 *
 *   fuzzer client ══socketpair══▶ plain bufferevent ─▶ session_attach
 *        (up to two)                  session ─▶ pool ─▶ upstream ─TCP─▶
 *   fuzzer backend (a listening socket on 127.0.0.1:0 that the pool's
 *        connections reach; every one of them is accepted here)
 *
 * A real worker is built once (worker_new with one listening socket nobody
 * connects to), but its thread never starts: this file drives w->base with
 * EVLOOP_NONBLOCK iterations between the steps of each input. Timeouts in
 * the configuration are an hour, so real time never fires one during a run;
 * the input makes time pass instead, deterministically: pool_tick with a
 * clock hours ahead (queue_timeout, request_timeout), and the upstreams'
 * own timers made active at once (backoff, QUIT grace, connect timeout).
 * The backend can stop listening (connects refused: the server goes down)
 * and the pool can be resized as a reload does (pool_reconfigure with a
 * snapshot of one connection per server: one retires with QUIT).
 *
 * "Run the loop until nothing moves" needs care with real sockets: a
 * round counts as quiet only when nothing moved on our side, sluice's
 * buffers, queues and socket queues look as they did, and no byte is in
 * flight on a backend connection (TCP_INFO counters of both ends; loopback
 * delivery can lag behind send()).
 *
 * Input: one byte of flags (low 2 bits: the read size, as SLUICE_MAX_READ
 * does), then steps, each a tag byte (low 4 bits the operation, modulo
 * OP_COUNT; high 4 bits its argument), a 2-byte big-endian length and that
 * many bytes of data (see enum op).
 *
 * Out of memory (oom.h): an OP_OOM step makes the Kth allocation from then
 * on fail (libevent's, and sluice's own malloc family where the program is
 * linked with the wrap), and the arg following ones with it; check_oom
 * arms the same counter before whole inputs. What sluice may do when an
 * allocation fails is close a client (without its QUIT, possibly in the
 * middle of a frame) or a backend connection, or answer a request with an
 * ERR instead of its response: a clean run's oracle then accepts an ERR
 * for any request and a client closed early, but never a missing or wrong
 * answer on a client that stays open. Every invariant checked after the
 * input holds whatever failed. OP_FILL_TIMERS fills libevent's timer heap
 * so that arming a timer needs an allocation too; and time passing
 * (OP_TIMERS) only fires the upstream timers that are armed.
 *
 * Checked all along: every frame a client receives is well formed, a
 * client never gets more responses than it sent requests (plus one ERR
 * PROTOCOL after an invalid frame) nor more than one QUIT, sluice never
 * cuts a frame when it closes a client, and every frame a backend receives
 * is valid. When an input only sends client bytes and lets the backend
 * echo (a "clean" run), the exact answer is known and checked: each
 * client's requests echoed in order, then ERR PROTOCOL and QUIT after an
 * invalid frame or QUIT after a QUIT, and nothing else. After each input:
 * the clients close, the requests still in flight time out, and backend
 * connections with anything left on them are closed and re-opened; then no
 * session, request or pending count may be left over.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/log.h>
#include <sluice/pool.h>
#include <sluice/request.h>
#include <sluice/session.h>
#include <sluice/slots.h>
#include <sluice/tls.h>
#include <sluice/upstream.h>
#include <sluice/worker.h>

#include "../testcerts.h"
#include "fuzz.h"
#include "fuzz_session.h"
#include "oom.h"

const char fuzz_target_name[] = "session";

#define FZ_MAX_FRAME 8192u        /* limits.max_frame_size in the config below */
#define FZ_CLIENTS 2
#define FZ_BACKENDS 16            /* accepted backend connections held at once */
#define FZ_QUIET_ROUNDS 4         /* rounds without any change: settled */
#define FZ_SETTLE_ROUNDS 20000    /* bound on waiting for quiet */
#define FZ_HOUR_MS (3600u * 1000u)
#define FZ_MAX_PADS 256           /* harness timers filling libevent's timer heap */

/* A growable byte string: what was sent or received, for the checks. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

/* The client side of a session: the fuzzer's end of the socketpair, and
 * sluice's bufferevent on the other end (we hold a reference, so its
 * descriptor stays ours to inspect until we see the session let go). */
struct fz_client {
	int fd;                       /* our end; -1 when not open */
	int sluice_fd;                /* sluice's end (valid while bev is held) */
	struct bufferevent *bev;      /* NULL once the session freed it */
	unsigned attached:1;
	unsigned closed:1;            /* we closed or shut our writing side */
	unsigned eof:1;               /* sluice closed its writing side */
	struct bytes out;             /* queued, not yet written to fd */
	struct bytes sent;            /* every byte queued, in order */
	struct bytes got;             /* every byte received */
	size_t got_parsed;            /* frames checked up to here */
	size_t sent_parsed;
	unsigned requests;            /* whole request frames in sent (before QUIT/invalid) */
	unsigned sent_quit:1;
	unsigned sent_invalid:1;
	unsigned responses;           /* non-QUIT frames received */
	unsigned quits;               /* QUIT frames received */
};

struct fz_backend {
	int fd;                       /* -1: slot free */
	in_port_t sluice_port;        /* sluice's end of the connection */
	struct bytes in;              /* received from sluice, not yet answered */
	size_t checked;               /* frames validated up to here */
	struct bytes out;             /* to send to sluice */
};

static struct {
	char dir[PATH_MAX];
	struct config *cfg;
	struct worker *w;
	const struct config_listener *lc;
	struct pool *pool;
	struct config *cfg_small;     /* the same with connections: 1 (OP_RESIZE) */
	bool resized;                 /* the pool runs on cfg_small */
	int backend_listen;           /* -1 while the backend refuses connections */
	in_port_t backend_port;
	struct fz_client clients[FZ_CLIENTS];
	struct fz_backend backends[FZ_BACKENDS];
	bool clean;                   /* only client bytes, loops and echoes so far */
	bool trace;                   /* SLUICE_FUZZ_TRACE: say what each input did */
	bool backends_dirty;          /* raw bytes were sent: renew the connections */
	bool oom_hit;                 /* an allocation failed during this input (before a re-arm) */
	struct event *pads[FZ_MAX_PADS]; /* OP_FILL_TIMERS */
	unsigned n_pads;
	uint64_t last_state;          /* settle(): fingerprint of the previous round */
} fz;

static int listen_loopback(in_port_t *port);

/* ---- small helpers ------------------------------------------------------ */

/* Whether an allocation failed during this input: what sluice may then
 * do differs (see the top comment). */
static bool
oom_hit(void)
{
	return fz.oom_hit || oom_failed() > 0;
}

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		oom_hold();
		b->p = realloc(b->p, cap);
		oom_release();
		FUZZ_ASSERT(b->p != NULL, "out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
bytes_consume(struct bytes *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* Where offset off is; an empty string has no buffer, and NULL + 0 is
 * undefined. */
static const uint8_t *
bytes_at(const struct bytes *b, size_t off)
{
	static const uint8_t none[1];

	return b->p != NULL ? b->p + off : none;
}

static void
bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* SPEC §1's frame rules, independent of frame.c. 0: not all there yet;
 * -1: invalid prefix; else the frame's total length. */
static long
frame_judge(const uint8_t *p, size_t have, uint16_t *header_len)
{
	uint32_t total;
	uint16_t hl;

	if (have < 6)
		return 0;
	hl = (uint16_t)(p[0] << 8 | p[1]);
	total = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
	if (total < 6 || (uint32_t)hl > total - 6 || total > FZ_MAX_FRAME)
		return -1;
	*header_len = hl;
	return have < total ? 0 : (long)total;
}

static bool
frame_is_quit(const uint8_t *p, uint16_t header_len)
{
	return header_len == 4 && memcmp(p + 6, "QUIT", 4) == 0;
}

static bool
frame_is_protocol_error(const uint8_t *p, long total, uint16_t header_len)
{
	static const char code[] = "PROTOCOL ";

	return header_len == 3 && memcmp(p + 6, "ERR", 3) == 0 &&
	       total >= 9 + (long)sizeof(code) - 1 && memcmp(p + 9, code, sizeof(code) - 1) == 0;
}

static void
set_nonblock_fd(int fd)
{
	int one = 1;

	FUZZ_ASSERT(ioctl(fd, FIONBIO, &one) == 0, "FIONBIO: %s", strerror(errno));
}

/* Bytes waiting in a socket's receive queue. */
static uint64_t
fd_pending(int fd)
{
	int n = 0;

	if (fd < 0 || ioctl(fd, FIONREAD, &n) != 0)
		return 0;
	return (uint64_t)n;
}

/* What a TCP socket's kernel has taken from the application (sent, or
 * still queued to send) and what it has received, in all. */
static bool
tcp_counts(int fd, uint64_t *taken, uint64_t *received)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int unsent = 0;

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    ioctl(fd, SIOCOUTQNSD, &unsent) != 0)
		return false;
	*taken = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans + (uint64_t)unsent;
	*received = ti.tcpi_bytes_received;
	return true;
}

static in_port_t
sock_port(int fd, bool peer)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len) :
			getsockname(fd, (struct sockaddr *)&sa, &len);

	return rc == 0 && sa.sin_family == AF_INET ? ntohs(sa.sin_port) : 0;
}

/* ---- the client side ---------------------------------------------------- */

/* Follows what the client has queued, as sluice must parse it: whole
 * frames are requests until a QUIT or an invalid prefix ends the stream. */
static void
client_parse_sent(struct fz_client *c)
{
	uint16_t hl;
	long total;

	while (!c->sent_quit && !c->sent_invalid) {
		total = frame_judge(bytes_at(&c->sent, c->sent_parsed), c->sent.len - c->sent_parsed, &hl);
		if (total == 0)
			return;
		if (total < 0) {
			c->sent_invalid = 1;
			return;
		}
		if (frame_is_quit(bytes_at(&c->sent, c->sent_parsed), hl))
			c->sent_quit = 1;
		else
			c->requests++;
		c->sent_parsed += (size_t)total;
	}
}

/* Every frame sluice sends a client: well formed, at most one response per
 * request (one more for ERR PROTOCOL after an invalid frame), one QUIT. */
static void
client_check_got(struct fz_client *c, unsigned idx)
{
	uint16_t hl;
	long total;

	for (;;) {
		const uint8_t *p = bytes_at(&c->got, c->got_parsed);

		total = frame_judge(p, c->got.len - c->got_parsed, &hl);
		FUZZ_ASSERT(total >= 0, "client %u received a malformed frame at offset %zu", idx,
			    c->got_parsed);
		if (total == 0)
			return;
		if (frame_is_quit(p, hl)) {
			c->quits++;
			FUZZ_ASSERT(c->quits == 1, "client %u received %u QUIT frames", idx, c->quits);
		} else {
			c->responses++;
			FUZZ_ASSERT(c->responses <= c->requests + c->sent_invalid,
				    "client %u received %u responses for %u requests%s", idx, c->responses,
				    c->requests, c->sent_invalid ? " and an invalid frame" : "");
		}
		c->got_parsed += (size_t)total;
	}
}

static void
client_attach(unsigned idx)
{
	struct fz_client *c = &fz.clients[idx];
	struct sockaddr_in peer = { .sin_family = AF_INET };
	int sv[2];

	c->attached = 1;
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
		    "socketpair: %s", strerror(errno));
	c->fd = sv[0];
	c->sluice_fd = sv[1];
	/* The options session_new gives its TLS bufferevents: callbacks run
	 * directly, not deferred, so re-entry is what sluice really sees.
	 * The accept is the harness's: its allocations never fail. */
	oom_hold();
	c->bev = bufferevent_socket_new(fz.w->loop.base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	oom_release();
	FUZZ_ASSERT(c->bev != NULL, "bufferevent_socket_new failed");
	/* Our reference keeps the descriptor open after the session frees the
	 * bufferevent; the session letting go shows as its callbacks gone. */
	bufferevent_incref(c->bev);
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer.sin_port = htons((uint16_t)(40000 + idx));
	/* The session gives its slot back when freed, as after an accept. */
	slots_take();
	/* Out of memory, it frees the bufferevent (our reference keeps the
	 * socket, and client_alive lets go of it). */
	if (session_attach(&fz.w->loop, fz.lc, fz.pool, c->bev, (struct sockaddr *)&peer, 1) == NULL &&
	    !oom_hit())
		fuzz_fail("session_attach failed");
}

/* Whether sluice still has a session on this client's bufferevent; once it
 * has not, our reference goes too, which closes sluice's descriptor. */
static bool
client_alive(struct fz_client *c)
{
	bufferevent_data_cb rd = NULL;

	if (c->bev == NULL)
		return false;
	bufferevent_getcb(c->bev, &rd, NULL, NULL, NULL);
	if (rd != NULL)
		return true;
	bufferevent_decref(c->bev);
	c->bev = NULL;
	c->sluice_fd = -1;
	return false;
}

static size_t
client_io(struct fz_client *c, unsigned idx)
{
	uint8_t buf[16384];
	size_t moved = 0;
	ssize_t n;

	if (c->fd < 0)
		return 0;
	while (c->out.len > 0 && !c->closed) {
		n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		bytes_consume(&c->out, (size_t)n);
		moved += (size_t)n;
	}
	while (!c->eof) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->eof = 1;
			client_check_got(c, idx);
			/* sluice closes a client only between frames. A
			 * client that half-closed has left: what it misses
			 * then is allowed to be cut; so is a client sluice
			 * drops for want of memory. */
			FUZZ_ASSERT(c->closed || oom_hit() || c->got_parsed == c->got.len,
				    "client %u: connection closed in the middle of a frame (%zu bytes left)",
				    idx, c->got.len - c->got_parsed);
			break;
		}
		bytes_add(&c->got, buf, (size_t)n);
		moved += (size_t)n;
	}
	client_check_got(c, idx);
	return moved;
}

static void
client_close(struct fz_client *c, bool half)
{
	if (c->fd < 0 || c->closed)
		return;
	c->closed = 1;
	if (half) {
		shutdown(c->fd, SHUT_WR);
		return;
	}
	close(c->fd);
	c->fd = -1;
}

/* ---- the backend side ---------------------------------------------------- */

static unsigned
backend_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		n += fz.backends[i].fd >= 0;
	return n;
}

/* The arg-th open connection (mod how many are open), or NULL. */
static struct fz_backend *
backend_pick(unsigned arg)
{
	unsigned n = backend_count(), k;

	if (n == 0)
		return NULL;
	k = arg % n;
	for (unsigned i = 0; i < FZ_BACKENDS; i++) {
		if (fz.backends[i].fd < 0)
			continue;
		if (k-- == 0)
			return &fz.backends[i];
	}
	return NULL;
}

static void
backend_close(struct fz_backend *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	bytes_free(&b->in);
	bytes_free(&b->out);
	b->checked = 0;
}

static size_t
backend_accept(void)
{
	size_t moved = 0;
	int one = 1;

	while (fz.backend_listen >= 0) {
		int fd = accept(fz.backend_listen, NULL, NULL);
		unsigned i;

		if (fd < 0)
			break;
		set_nonblock_fd(fd);
		/* As a real backend: with Nagle, an answer written right
		 * after another waits for sluice's delayed ACK (40 ms). */
		FUZZ_ASSERT(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0,
			    "TCP_NODELAY: %s", strerror(errno));
		for (i = 0; i < FZ_BACKENDS && fz.backends[i].fd >= 0; i++)
			;
		/* More connections than sluice's pool has means sluice leaks
		 * them: no fuzz input can make 16 of 2 without a bug. */
		FUZZ_ASSERT(i < FZ_BACKENDS, "more than %d backend connections open", FZ_BACKENDS);
		fz.backends[i].fd = fd;
		fz.backends[i].sluice_port = sock_port(fd, true);
		moved++;
	}
	return moved;
}

/* sluice forwards only valid frames: requests it validated, or its QUIT. */
static void
backend_check_in(struct fz_backend *b)
{
	uint16_t hl;
	long total;

	while ((total = frame_judge(bytes_at(&b->in, b->checked), b->in.len - b->checked, &hl)) != 0) {
		FUZZ_ASSERT(total > 0, "a backend received a malformed frame at offset %zu", b->checked);
		b->checked += (size_t)total;
	}
}

static size_t
backend_io(struct fz_backend *b)
{
	uint8_t buf[16384];
	size_t moved = 0;
	ssize_t n;

	while (b->fd >= 0 && b->out.len > 0) {
		n = send(b->fd, b->out.p, b->out.len, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		bytes_consume(&b->out, (size_t)n);
		moved += (size_t)n;
	}
	while (b->fd >= 0) {
		n = recv(b->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* sluice closed it (bad frame, timeout, QUIT done). */
			backend_close(b);
			moved++;
			break;
		}
		bytes_add(&b->in, buf, (size_t)n);
		moved += (size_t)n;
	}
	if (b->fd >= 0)
		backend_check_in(b);
	return moved;
}

/* The backend answers each whole frame with the frame itself (a QUIT from
 * sluice with a QUIT, as a real backend does). max 0: every frame. */
static void
backend_echo(struct fz_backend *b, unsigned max)
{
	unsigned done = 0;
	uint16_t hl;
	long total;

	while ((max == 0 || done < max) &&
	       (total = frame_judge(bytes_at(&b->in, 0), b->checked, &hl)) > 0) {
		bytes_add(&b->out, b->in.p, (size_t)total);
		bytes_consume(&b->in, (size_t)total);
		b->checked -= (size_t)total;
		done++;
	}
}

static void
backend_echo_all(void)
{
	for (unsigned i = 0; i < FZ_BACKENDS; i++) {
		if (fz.backends[i].fd >= 0)
			backend_echo(&fz.backends[i], 0);
	}
}

/* ---- driving the loop ----------------------------------------------------- */

/* The upstreams' own timers, fired now: time passes for them. */
static void
fire_timers(unsigned which)
{
	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		struct upstream *u = fz.pool->all[i];
		bool fire = ((which & 1) && u->state == UPSTREAM_BACKOFF) ||
			    ((which & 2) && u->state == UPSTREAM_QUIT_SENT) ||
			    ((which & 4) && u->state == UPSTREAM_CONNECTING);

		/* Only a timer that is armed ever fires: one sluice could not
		 * arm leaves its connection where it is. */
		if (fire && evtimer_pending(u->timer, NULL))
			event_active(u->timer, EV_TIMEOUT, 0);
	}
}

static void
pad_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* libevent keeps pending timers in a heap that grows (realloc) only when
 * it is full, so a timer sluice arms needs an allocation only then. The
 * harness adds timers of its own, hours off, until one cannot be added
 * while every allocation is refused (the heap is full), then removes room
 * of them again. */
static void
timers_fill(unsigned room)
{
	struct timeval far = { .tv_sec = 10 * 3600, .tv_usec = 0 };

	while (fz.n_pads < FZ_MAX_PADS) {
		struct event *ev;
		int rc;

		oom_hold();
		ev = evtimer_new(fz.w->loop.base, pad_cb, NULL);
		oom_release();
		FUZZ_ASSERT(ev != NULL, "evtimer_new failed");
		oom_deny();
		rc = evtimer_add(ev, &far);
		oom_allow();
		if (rc < 0) {
			event_free(ev);
			break;
		}
		fz.pads[fz.n_pads++] = ev;
	}
	for (unsigned k = 0; k < room && fz.n_pads > 0; k++)
		event_free(fz.pads[--fz.n_pads]);
}

static void
timers_unfill(void)
{
	while (fz.n_pads > 0)
		event_free(fz.pads[--fz.n_pads]);
}

static uint64_t
mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull;
}

/* Bytes on their way over the backend connections, either direction: what
 * one end's kernel took and the other's has not received yet. Loopback
 * delivery is not always done when send() returns (queued behind an
 * unacknowledged segment, or waiting for softirq processing under load),
 * and a few quiet rounds are no proof. */
static uint64_t
in_transit(void)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		struct upstream *u = fz.pool->all[i];
		uint64_t us_sent, us_recv, them_sent, them_recv;
		in_port_t port;
		int fd;

		if (u->bev == NULL || (fd = bufferevent_getfd(u->bev)) < 0)
			continue;
		port = sock_port(fd, false);
		for (unsigned k = 0; k < FZ_BACKENDS; k++) {
			const struct fz_backend *b = &fz.backends[k];

			if (b->fd < 0 || b->sluice_port != port || port == 0)
				continue;
			if (tcp_counts(b->fd, &us_sent, &us_recv) && tcp_counts(fd, &them_sent, &them_recv))
				n += (us_sent - them_recv) + (them_sent - us_recv);
			break;
		}
	}
	return n;
}

/* A fingerprint of everything that can still move: bytes waiting in
 * sluice's sockets and buffers, its queues. Unchanged for a few rounds
 * with nothing moved on our side and nothing in transit: the system is
 * at rest (possibly paused by backpressure, which is a rest too). */
static uint64_t
state_fingerprint(void)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < FZ_CLIENTS; i++) {
		struct fz_client *c = &fz.clients[i];

		if (!client_alive(c))
			continue;
		h = mix(h, fd_pending(c->sluice_fd));
		h = mix(h, evbuffer_get_length(bufferevent_get_input(c->bev)));
		h = mix(h, evbuffer_get_length(bufferevent_get_output(c->bev)));
	}
	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		struct upstream *u = fz.pool->all[i];

		h = mix(h, u->state);
		h = mix(h, u->outstanding);
		if (u->bev == NULL)
			continue;
		h = mix(h, fd_pending(bufferevent_getfd(u->bev)));
		h = mix(h, evbuffer_get_length(bufferevent_get_input(u->bev)));
		h = mix(h, evbuffer_get_length(bufferevent_get_output(u->bev)));
	}
	h = mix(h, fz.pool->pending);
	h = mix(h, fz.pool->n_waiting);
	h = mix(h, fz.w->loop.n_sessions);
	return h;
}

/* One round: our writes, one non-blocking loop iteration, our reads.
 * Returns how much moved on our side. */
static size_t
pump(void)
{
	size_t moved = 0;

	for (unsigned i = 0; i < FZ_CLIENTS; i++)
		moved += client_io(&fz.clients[i], i);
	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		moved += backend_io(&fz.backends[i]);
	FUZZ_ASSERT(event_base_loop(fz.w->loop.base, EVLOOP_NONBLOCK) >= 0, "event_base_loop failed");
	moved += backend_accept();
	for (unsigned i = 0; i < FZ_CLIENTS; i++) {
		moved += client_io(&fz.clients[i], i);
		(void)client_alive(&fz.clients[i]);
	}
	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		moved += backend_io(&fz.backends[i]);
	return moved;
}

/* Rounds until nothing changes for FZ_QUIET_ROUNDS in a row, echoing
 * every request when echo is set. Returns whether it came to rest. */
static bool
settle(bool echo, unsigned max_rounds)
{
	unsigned quiet = 0;

	for (unsigned r = 0; r < max_rounds; r++) {
		size_t moved;
		uint64_t st;

		if (echo)
			backend_echo_all();
		moved = pump();
		st = state_fingerprint();
		if (moved == 0 && st == fz.last_state && in_transit() == 0) {
			if (++quiet >= FZ_QUIET_ROUNDS)
				return true;
		} else {
			quiet = 0;
		}
		fz.last_state = st;
	}
	return false;
}

/* Every upstream connected and accepted by us, none left over. */
static bool
backends_ready(void)
{
	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		if (fz.pool->all[i]->state != UPSTREAM_CONNECTED)
			return false;
	}
	return backend_count() == fz.pool->n_all;
}

/* Nothing left on any backend connection, on either side: the next input
 * may use them as they are (renewing them costs most of a run). */
static bool
backends_clean(void)
{
	if (fz.backends_dirty || !backends_ready())
		return false;
	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		struct upstream *u = fz.pool->all[i];

		/* Bytes a backend sent that sluice has not read yet would
		 * answer the next input's first request. */
		if (u->outstanding > 0 || evbuffer_get_length(bufferevent_get_input(u->bev)) > 0 ||
		    evbuffer_get_length(bufferevent_get_output(u->bev)) > 0 ||
		    fd_pending(bufferevent_getfd(u->bev)) > 0)
			return false;
	}
	for (unsigned i = 0; i < FZ_BACKENDS; i++) {
		const struct fz_backend *b = &fz.backends[i];

		if (b->fd >= 0 && (b->in.len > 0 || b->out.len > 0 || fd_pending(b->fd) > 0))
			return false;
	}
	return true;
}

/* Closes every backend connection and waits for the pool to re-open them
 * all (backoff skipped): the next input starts from fresh connections. */
static void
backends_reset(void)
{
	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		backend_close(&fz.backends[i]);
	fz.backends_dirty = false;
	for (unsigned r = 0; r < FZ_SETTLE_ROUNDS; r++) {
		fire_timers(1 | 2);
		pump();
		/* Retired connections that closed leave the pool, as on the
		 * worker's tick. */
		pool_collect(fz.pool);
		if (backends_ready())
			return;
	}
	fuzz_fail("the pool did not reconnect: %u of %u upstreams, %u accepted", pool_connected(fz.pool),
		  fz.pool->n_all, backend_count());
}

/* ---- the clean-run oracle ------------------------------------------------- */

/* The first bytes of a frame in hex, for a failure message. */
static const char *
hex_prefix(char *out, size_t outlen, const uint8_t *p, size_t n)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k + 3 < outlen; i++, k += 2)
		snprintf(out + k, outlen - k, "%02x", p[i]);
	return out;
}

/* An echoing backend and a client that only sends: the answer is exactly
 * the requests, in order, then the end SPEC §1 and §3 prescribe. */
static void
check_clean(struct fz_client *c, unsigned idx)
{
	size_t so = 0, go = 0;
	uint16_t hl, ghl;
	long total, gtotal;

	for (unsigned k = 0; k < c->requests; k++) {
		total = frame_judge(bytes_at(&c->sent, so), c->sent.len - so, &hl);
		FUZZ_ASSERT(total > 0, "clean run: request %u unparsable", k);
		gtotal = frame_judge(bytes_at(&c->got, go), c->got.len - go, &ghl);
		FUZZ_ASSERT(gtotal > 0, "clean run: client %u got %u of %u responses", idx, k, c->requests);
		if (gtotal != total || memcmp(bytes_at(&c->sent, so), bytes_at(&c->got, go), (size_t)total) != 0) {
			char hs[40], hg[40];

			fuzz_fail("clean run: client %u response %u is not the echo of request %u "
				  "(sent %ld bytes %s..., got %ld bytes %s...)", idx, k, k,
				  total, hex_prefix(hs, sizeof(hs), bytes_at(&c->sent, so), (size_t)total),
				  gtotal, hex_prefix(hg, sizeof(hg), bytes_at(&c->got, go), (size_t)gtotal));
		}
		so += (size_t)total;
		go += (size_t)total;
	}
	if (c->sent_invalid) {
		gtotal = frame_judge(bytes_at(&c->got, go), c->got.len - go, &ghl);
		FUZZ_ASSERT(gtotal > 0 && frame_is_protocol_error(bytes_at(&c->got, go), gtotal, ghl),
			    "clean run: client %u sent an invalid frame and got no ERR PROTOCOL", idx);
		go += (size_t)gtotal;
	}
	if (c->sent_invalid || c->sent_quit) {
		gtotal = frame_judge(bytes_at(&c->got, go), c->got.len - go, &ghl);
		FUZZ_ASSERT(gtotal > 0 && frame_is_quit(bytes_at(&c->got, go), ghl),
			    "clean run: client %u got no QUIT at the end", idx);
		go += (size_t)gtotal;
		FUZZ_ASSERT(c->eof, "clean run: client %u not closed after the QUIT", idx);
	} else {
		FUZZ_ASSERT(!c->eof, "clean run: sluice closed client %u for no reason", idx);
	}
	FUZZ_ASSERT(go == c->got.len, "clean run: client %u got %zu bytes more than expected", idx,
		    c->got.len - go);
}

/* Whether the frame at p is an ERR sluice makes for a request it could not
 * forward or get answered (not PROTOCOL: that one ends a stream). */
static bool
frame_is_request_error(const uint8_t *p, long total, uint16_t header_len)
{
	return header_len == 3 && memcmp(p + 6, "ERR", 3) == 0 && !frame_is_protocol_error(p, total, header_len);
}

/* The clean-run oracle when an allocation failed: each request is answered
 * by its echo or by an ERR, in order, then the same ending; or sluice
 * dropped the client, closing its connection, possibly in the middle of a
 * frame. A client still connected has every answer: nothing is lost
 * silently (SPEC §1). */
static void
check_clean_oom(struct fz_client *c, unsigned idx)
{
	size_t so = 0, go = 0;
	uint16_t hl, ghl;
	long total, gtotal;
	bool ended = c->sent_invalid || c->sent_quit;

	for (unsigned k = 0; k < c->requests; k++) {
		const uint8_t *g = bytes_at(&c->got, go);

		total = frame_judge(bytes_at(&c->sent, so), c->sent.len - so, &hl);
		FUZZ_ASSERT(total > 0, "clean run: request %u unparsable", k);
		gtotal = frame_judge(g, c->got.len - go, &ghl);
		if (gtotal == 0) {
			FUZZ_ASSERT(c->eof, "out of memory: client %u got %u of %u responses and is still connected",
				    idx, k, c->requests);
			return;
		}
		FUZZ_ASSERT(gtotal > 0, "out of memory: client %u response %u malformed", idx, k);
		if (!frame_is_request_error(g, gtotal, ghl) &&
		    (gtotal != total || memcmp(bytes_at(&c->sent, so), g, (size_t)total) != 0)) {
			char hs[40], hg[40];

			fuzz_fail("out of memory: client %u response %u is neither the echo of request %u nor an ERR "
				  "(sent %ld bytes %s..., got %ld bytes %s...)", idx, k, k,
				  total, hex_prefix(hs, sizeof(hs), bytes_at(&c->sent, so), (size_t)total),
				  gtotal, hex_prefix(hg, sizeof(hg), g, (size_t)gtotal));
		}
		so += (size_t)total;
		go += (size_t)gtotal;
	}
	if (c->sent_invalid) {
		gtotal = frame_judge(bytes_at(&c->got, go), c->got.len - go, &ghl);
		if (gtotal == 0) {
			FUZZ_ASSERT(c->eof, "out of memory: client %u got no ERR PROTOCOL and is still connected", idx);
			return;
		}
		FUZZ_ASSERT(gtotal > 0 && frame_is_protocol_error(bytes_at(&c->got, go), gtotal, ghl),
			    "out of memory: client %u sent an invalid frame and got something else than ERR PROTOCOL",
			    idx);
		go += (size_t)gtotal;
	}
	if (ended) {
		gtotal = frame_judge(bytes_at(&c->got, go), c->got.len - go, &ghl);
		FUZZ_ASSERT(c->eof, "out of memory: client %u not closed after its stream ended", idx);
		if (gtotal == 0)
			return;
		FUZZ_ASSERT(gtotal > 0 && frame_is_quit(bytes_at(&c->got, go), ghl),
			    "out of memory: client %u got something else than QUIT at the end", idx);
		go += (size_t)gtotal;
	}
	FUZZ_ASSERT(go == c->got.len, "out of memory: client %u got %zu bytes more than expected", idx,
		    c->got.len - go);
}

/* ---- one input -------------------------------------------------------------- */

/* The backend server goes away (connects refused) or comes back on the
 * same port. */
static void
backend_listen(bool on)
{
	in_port_t port = fz.backend_port;

	if (!on) {
		if (fz.backend_listen >= 0)
			close(fz.backend_listen);
		fz.backend_listen = -1;
		return;
	}
	if (fz.backend_listen >= 0)
		return;
	fz.backend_listen = listen_loopback(&port);
	FUZZ_ASSERT(fz.backend_listen >= 0, "cannot listen on 127.0.0.1:%u again: %s", fz.backend_port,
		    strerror(errno));
}

/* What a reload changing `connections` does to the pool (worker_apply
 * calls the same pool_reconfigure). Closed connections are collected as
 * the worker's tick would. Out of memory, the pool keeps its shape (and
 * must stay consistent: the checks after the input see to that). */
static bool
pool_resize(bool small)
{
	struct config *cfg = small ? fz.cfg_small : fz.w->loop.cfg;

	if (small == fz.resized)
		return true;
	if (pool_reconfigure(fz.pool, cfg, &cfg->backends[0]) < 0) {
		FUZZ_ASSERT(oom_hit(), "pool_reconfigure failed");
		return false;
	}
	fz.resized = small;
	return true;
}

static void
op_client(unsigned idx, const uint8_t *data, size_t len)
{
	struct fz_client *c = &fz.clients[idx];

	if (c->closed)
		return;
	if (!c->attached)
		client_attach(idx);
	bytes_add(&c->out, data, len);
	bytes_add(&c->sent, data, len);
	client_parse_sent(c);
}

static void
run_step(unsigned op, unsigned arg, const uint8_t *data, size_t len)
{
	struct fz_backend *b;

	if (op != OP_CLIENT && op != OP_LOOP && op != OP_ECHO && op != OP_OOM && op != OP_FILL_TIMERS)
		fz.clean = false;
	switch (op) {
	case OP_CLIENT:
		op_client(arg & 1, data, len);
		break;
	case OP_BACKEND:
		b = backend_pick(arg);
		if (b != NULL)
			bytes_add(&b->out, data, len);
		/* Unsolicited bytes may still be on their way when the input
		 * ends: only new connections are sure to be free of them. */
		fz.backends_dirty = true;
		break;
	case OP_LOOP:
		if (arg == 15) {
			settle(false, FZ_SETTLE_ROUNDS);
			return;
		}
		for (unsigned r = 0; r < (arg + 1) * 2; r++)
			pump();
		return;
	case OP_ECHO:
		for (unsigned i = 0; i < FZ_BACKENDS; i++) {
			if (fz.backends[i].fd >= 0)
				backend_echo(&fz.backends[i], arg);
		}
		break;
	case OP_CLIENT_CLOSE:
		client_close(&fz.clients[arg & 1], (arg & 2) != 0);
		break;
	case OP_BACKEND_CLOSE:
		b = backend_pick(arg);
		if (b != NULL)
			backend_close(b);
		break;
	case OP_TICK:
		pool_tick(fz.pool, clock_ms() + ((arg & 1) ? 4 : 2) * (uint64_t)FZ_HOUR_MS);
		break;
	case OP_TIMERS:
		fire_timers(arg);
		break;
	case OP_SHUTDOWN:
		session_shutdown_all(&fz.w->loop);
		break;
	case OP_LISTEN:
		backend_listen(!(arg & 1));
		break;
	case OP_RESIZE:
		(void)pool_resize(arg & 1);
		break;
	case OP_OOM:
		fz.oom_hit = oom_hit();
		oom_arm(1 + (len >= 2 ? (unsigned long)(data[0] << 8 | data[1]) : len == 1 ? data[0] : 0),
			arg + 1);
		break;
	case OP_FILL_TIMERS:
		timers_fill(arg);
		break;
	}
	pump();
}

static void
trace_input(void)
{
	fprintf(stderr, "fuzz_session: %s run; upstreams", fz.clean ? "clean" : "mixed");
	for (unsigned i = 0; i < fz.pool->n_all; i++)
		fprintf(stderr, " %s/%u", upstream_state_name(fz.pool->all[i]->state),
			fz.pool->all[i]->outstanding);
	fprintf(stderr, "; pending %u, waiting %u", fz.pool->pending, fz.pool->n_waiting);
	if (oom_hit())
		fprintf(stderr, "; %lu allocations failed", oom_failed());
	fputc('\n', stderr);
	for (unsigned i = 0; i < FZ_CLIENTS; i++) {
		const struct fz_client *c = &fz.clients[i];

		if (!c->attached)
			continue;
		fprintf(stderr, "  client %u: %u requests%s%s, %u responses, %u QUIT%s%s\n", i, c->requests,
			c->sent_quit ? " + QUIT" : "", c->sent_invalid ? " + invalid" : "", c->responses,
			c->quits, c->eof ? ", closed by sluice" : "", c->bev != NULL ? ", session alive" : "");
	}
}

/* The per-state connection gauges of a server count its connections. */
static void
check_server_gauge(const struct pool_server *srv)
{
	uint64_t sum = 0;

	for (unsigned k = 0; k < UPSTREAM_STATE_COUNT; k++)
		sum += srv->target.stats.connections[k];
	FUZZ_ASSERT(sum == srv->n_ups, "server %s: its state gauges count %llu connections, it has %u",
		    srv->target.addr.text, (unsigned long long)sum, srv->n_ups);
	for (unsigned i = 0; i < srv->n_ups; i++)
		FUZZ_ASSERT(srv->target.stats.connections[srv->ups[i]->state] > 0,
			    "server %s: connection %u is %s, its gauge is 0", srv->target.addr.text, i,
			    upstream_state_name(srv->ups[i]->state));
}

/* The gauges of every server, configured or retired; every connection of
 * the configured servers is in the pool's list (pool_pick, the timeouts),
 * and nothing else is. */
static void
check_server_gauges(void)
{
	const struct pool_server *srv;
	unsigned n = 0;

	for (unsigned i = 0; i < fz.pool->n_servers; i++) {
		srv = fz.pool->servers[i];
		check_server_gauge(srv);
		for (unsigned j = 0; j < srv->n_ups; j++) {
			bool listed = false;

			for (unsigned k = 0; k < fz.pool->n_all; k++)
				listed = listed || fz.pool->all[k] == srv->ups[j];
			FUZZ_ASSERT(listed, "server %s: connection %u is missing from the pool's list",
				    srv->target.addr.text, j);
		}
		n += srv->n_ups;
	}
	FUZZ_ASSERT(n == fz.pool->n_all, "the pool lists %u connections, its servers have %u", fz.pool->n_all, n);
	TAILQ_FOREACH(srv, &fz.pool->retired, link)
		check_server_gauge(srv);
}

/* Back to the state every input starts from: no clients, backend
 * connections with nothing on them (renewed when anything was), nothing
 * pending anywhere. */
static void
finish_input(void)
{
	unsigned r;

	for (unsigned i = 0; i < FZ_CLIENTS; i++)
		client_close(&fz.clients[i], false);
	backend_listen(true);
	/* Refused for want of memory (OP_OOM fails up to 16 allocations in a
	 * row): the failures were the input's, and the next input starts
	 * from two connections per server again. */
	for (r = 0; r < 32 && !pool_resize(false); r++)
		;
	FUZZ_ASSERT(!fz.resized, "the pool could not be given back its two connections per server");
	settle(false, 200);
	/* Requests still in flight or queued keep their session until they
	 * are answered (time out, here): that is how sluice notices a client
	 * that left while it was paused. A paused session resumed by that may
	 * still read a request its client sent before leaving and write it to
	 * a fresh connection (an orphan, rightly in flight): so time passes
	 * and connections are renewed until nothing is left in flight. */
	for (unsigned k = 0; k < 8 && (fz.w->loop.n_sessions > 0 || fz.pool->pending > 0 || !backends_clean()); k++) {
		pool_tick(fz.pool, clock_ms() + 4 * (uint64_t)FZ_HOUR_MS);
		backends_reset();
		for (r = 0; r < FZ_SETTLE_ROUNDS && fz.w->loop.n_sessions > 0; r++) {
			pool_tick(fz.pool, clock_ms() + 4 * (uint64_t)FZ_HOUR_MS);
			pump();
		}
	}
	FUZZ_ASSERT(fz.w->loop.n_sessions == 0, "%u sessions left after their clients closed", fz.w->loop.n_sessions);
	for (unsigned i = 0; i < FZ_CLIENTS; i++) {
		struct fz_client *c = &fz.clients[i];

		FUZZ_ASSERT(!client_alive(c), "client %u: no session, but its bufferevent is still in use", i);
		bytes_free(&c->out);
		bytes_free(&c->sent);
		bytes_free(&c->got);
		memset(c, 0, sizeof(*c));
		c->fd = c->sluice_fd = -1;
	}
	FUZZ_ASSERT(backends_clean(), "the backend connections did not come back clean");
	FUZZ_ASSERT(fz.pool->pending == 0 && fz.pool->n_waiting == 0,
		    "pool left with %u pending, %u waiting", fz.pool->pending, fz.pool->n_waiting);
	FUZZ_ASSERT(fz.pool->users == 0, "pool left with %u users", fz.pool->users);
	FUZZ_ASSERT(TAILQ_EMPTY(&fz.pool->paused), "sessions left on the pool's pause list");
	FUZZ_ASSERT(fz.w->loop.stats.requests_pending == 0, "requests_pending gauge left at %llu",
		    (unsigned long long)fz.w->loop.stats.requests_pending);
	for (unsigned i = 0; i < fz.pool->n_all; i++)
		FUZZ_ASSERT(fz.pool->all[i]->outstanding == 0 && TAILQ_EMPTY(&fz.pool->all[i]->fifo),
			    "upstream %u left with %u outstanding", i, fz.pool->all[i]->outstanding);
	FUZZ_ASSERT(fz.w->loop.stats.connections_active == 0, "connections_active gauge left at %llu",
		    (unsigned long long)fz.w->loop.stats.connections_active);
	FUZZ_ASSERT(slots_taken() == 0, "%lu max_connections slots left taken",
		    slots_taken());
	check_server_gauges();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t reads[4] = { 0, 1, 7, 64 };
	size_t off = 1;

	if (size < 1) {
		oom_disarm();
		return 0;
	}
	fz.oom_hit = false;
	/* Requests come from a per-worker free list: emptied, every input
	 * allocates the same way whatever ran before (the Kth allocation of
	 * an input is always the same one, request_new's calloc included). */
	request_cache_clear(&fz.w->loop.requests);
	/* SLUICE_MAX_READ's effect, per input: on new client bufferevents
	 * through the worker, on the open upstreams directly. */
	fz.w->loop.max_read = reads[data[0] & 3];
	for (unsigned i = 0; i < fz.pool->n_all; i++) {
		if (fz.pool->all[i]->bev != NULL)
			bufferevent_set_max_single_read(fz.pool->all[i]->bev, fz.w->loop.max_read);
	}
	fz.clean = true;
	while (off + 3 <= size) {
		unsigned tag = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];

		off += 3;
		if (len > size - off)
			len = size - off;
		run_step((tag & 15) % OP_COUNT, tag >> 4, data + off, len);
		off += len;
	}
	if (fz.clean) {
		FUZZ_ASSERT(settle(true, FZ_SETTLE_ROUNDS), "clean run: no rest after %d rounds",
			    FZ_SETTLE_ROUNDS);
		/* A failed allocation may have failed a connection: requests
		 * that then wait for one are not lost, they wait for its
		 * backoff. Time passes for it (and the settle serves them)
		 * before the answers are judged. */
		for (unsigned r = 0; oom_hit() && fz.pool->n_waiting > 0 && r < FZ_SETTLE_ROUNDS; r++) {
			oom_hold();
			fire_timers(1 | 2 | 4);
			oom_release();
			FUZZ_ASSERT(settle(true, FZ_SETTLE_ROUNDS), "clean run: no rest after %d rounds",
				    FZ_SETTLE_ROUNDS);
		}
		for (unsigned i = 0; i < FZ_CLIENTS; i++) {
			if (!fz.clients[i].attached)
				continue;
			if (oom_hit())
				check_clean_oom(&fz.clients[i], i);
			else
				check_clean(&fz.clients[i], i);
		}
	} else {
		settle(false, 2000);
	}
	if (fz.trace)
		trace_input();
	/* Still armed: the clean-up (timeouts, reconnections, collection)
	 * is sluice's code too. */
	finish_input();
	oom_disarm();
	timers_unfill();
	return 0;
}

/* ---- start-up ------------------------------------------------------------------ */

/* A listening socket on 127.0.0.1:*port (0: any free port, written back).
 * SO_REUSEADDR: the backend's port is bound again while connections it
 * closed are still in TIME_WAIT. */
static int
listen_loopback(in_port_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(*port);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static void
fuzz_cleanup(void)
{
	char path[PATH_MAX + 32];
	static const char *const files[] = {
		"session.yaml", "session-small.yaml", "server.crt", "server.key",
	};

	/* Everything freed, so LeakSanitizer's report at exit means sluice. */
	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		backend_close(&fz.backends[i]);
	if (fz.w != NULL)
		worker_free(fz.w);
	if (fz.cfg != NULL)
		config_unref(fz.cfg);
	if (fz.cfg_small != NULL)
		config_unref(fz.cfg_small);
	if (fz.backend_listen >= 0)
		close(fz.backend_listen);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fz.dir, files[i]);
		unlink(path);
	}
	rmdir(fz.dir);
}

/* Short timeouts would make runs depend on the machine's speed: every one
 * is an hour, and the input decides when time passes. A small
 * max_pending and client_buffer make backpressure reachable with a few
 * frames; two connections make placement and stickiness matter. */
static const char fuzz_yaml[] =
	"workers: 1\n"
	"listen:\n"
	"  - address: 127.0.0.1:%u\n"
	"    backend: app\n"
	"    tls:\n"
	"      certificates:\n"
	"        - cert: server.crt\n"
	"          key: server.key\n"
	"backends:\n"
	"  app:\n"
	"    servers:\n"
	"      - address: 127.0.0.1:%u\n"
	"    connections: %u\n"
	"    connect_timeout: 1h\n"
	"    queue_timeout: 1h\n"
	"    request_timeout: 3h\n"
	"    max_pending: 4\n"
	"limits:\n"
	"  max_frame_size: 8KiB\n"
	"  client_buffer: 8KiB\n"
	"  handshake_timeout: 1h\n"
	"  idle_timeout: 1h\n"
	"shutdown:\n"
	"  grace_timeout: 1h\n";

/* The configuration above with `connections` servers' worth of
 * connections, written to name in the temp folder and loaded. */
static struct config *
load_config(const char *name, in_port_t lport, in_port_t bport, unsigned connections)
{
	char path[PATH_MAX + 32];
	char *errors = NULL;
	struct config *cfg;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", fz.dir, name);
	fp = fopen(path, "w");
	if (fp == NULL || fprintf(fp, fuzz_yaml, lport, bport, connections) < 0 || fclose(fp) != 0) {
		fprintf(stderr, "fuzz_session: cannot write %s\n", path);
		return NULL;
	}
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_session: configuration rejected:\n%s\n", errors ? errors : "?");
		free(errors);
	}
	return cfg;
}

static int
fuzz_setup(void)
{
	const char *tmp = getenv("TMPDIR");
	in_port_t lport = 0, bport = 0;
	int lfd;

	snprintf(fz.dir, sizeof(fz.dir), "%s/sluice-fuzz-session-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fz.dir) == NULL) {
		fprintf(stderr, "fuzz_session: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	atexit(fuzz_cleanup);
	if (testcerts_write(fz.dir, "server", "localhost", 1) < 0)
		return -1;
	fz.backend_listen = listen_loopback(&bport);
	/* The worker wants a listening socket per listener; nobody connects
	 * to this one: sessions come in through session_attach. */
	lfd = listen_loopback(&lport);
	if (fz.backend_listen < 0 || lfd < 0) {
		fprintf(stderr, "fuzz_session: cannot listen on 127.0.0.1: %s\n", strerror(errno));
		return -1;
	}
	fz.backend_port = bport;
	fz.cfg = load_config("session.yaml", lport, bport, 2);
	fz.cfg_small = load_config("session-small.yaml", lport, bport, 1);
	if (fz.cfg == NULL || fz.cfg_small == NULL)
		return -1;
	fz.w = worker_new(0, fz.cfg, &lfd, NULL, NULL);
	if (fz.w == NULL)
		return -1;
	fz.lc = &fz.w->loop.cfg->listeners[0];
	fz.pool = worker_pool(fz.w, fz.lc->backend, fz.w->loop.cfg);
	if (fz.pool == NULL) {
		fprintf(stderr, "fuzz_session: the worker has no pool\n");
		return -1;
	}
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *level = getenv("SLUICE_FUZZ_LOG");
	enum log_level lv = LOG_CRIT;

	(void)argc;
	(void)argv;
	/* Before the worker's event base: libevent's allocations from the
	 * first on go through the failure injection (disarmed). */
	oom_install();
	/* sluice logs every failed backend connection; each input closes
	 * them all. SLUICE_FUZZ_LOG=debug shows them when reproducing. */
	if (level != NULL && log_level_parse(level, &lv) < 0)
		lv = LOG_CRIT;
	log_set_level(lv);
	fz.trace = getenv("SLUICE_FUZZ_TRACE") != NULL;
	/* A client or backend that left must be an error code, not a death
	 * (sluice's main does the same). */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || tls_init() < 0)
		return -1;
	for (unsigned i = 0; i < FZ_CLIENTS; i++)
		fz.clients[i].fd = fz.clients[i].sluice_fd = -1;
	for (unsigned i = 0; i < FZ_BACKENDS; i++)
		fz.backends[i].fd = -1;
	fz.backend_listen = -1;
	if (fuzz_setup() < 0)
		return -1;
	backends_reset();
	return 0;
}
