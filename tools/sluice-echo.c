/*
 * sluice-echo — the plaintext reference backend: answers every frame with the
 * byte-identical frame, in arrival order, optionally after a delay or with an
 * injected fault, so that tests and benchmarks have a backend that behaves (or
 * misbehaves) on demand.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "sluice/frame.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define ECHO_DEFAULT_PORT 9000
#define ECHO_DEFAULT_MAX_FRAME (16u * 1024 * 1024)
#define ECHO_MAX_MAX_FRAME (1024u * 1024 * 1024)
#define ECHO_BACKLOG 4096
/* Unsent answers above HIGH stop reading the connection until they drain below
 * LOW: a backend that does not read when its peer does not read, like a real
 * one, so proxies see TCP pushback instead of an echo growing without bound. */
#define ECHO_HIGH_WATER (8u * 1024 * 1024)
#define ECHO_LOW_WATER (1u * 1024 * 1024)
/* Bigger single reads and writes than libevent's 16 KiB default keep large
 * frames cheap in benchmarks. */
#define ECHO_MAX_SINGLE_IO (256 * 1024)
/* A closing connection sends FIN, then waits this long for the peer's FIN
 * before closing: closing with unread input would send RST, and an RST can
 * destroy answers the peer has not read yet. */
#define ECHO_LINGER_MS 2000
#define ECHO_ACCEPT_PAUSE_MS 100
#define ECHO_TRACE_PREFIX 32
#define ECHO_FAULT_OFF (-1L)

struct echo_opts {
	const char *address;
	uint16_t port;
	uint32_t delay_min_ms;
	uint32_t delay_max_ms;
	uint32_t max_frame;
	const char *trace_path;
	long close_after;            /* ECHO_FAULT_OFF or the frame number */
	long garbage_after;
	long stall_after;
	uint32_t answer_size;        /* --answer-size, 0: answers are the request */
	unsigned quiet:1;
	unsigned delayed:1;          /* some delay is configured */
};

/* One answer waiting for its release time; owned by its connection's FIFO. */
struct echo_pending {
	TAILQ_ENTRY(echo_pending) link;
	struct evbuffer *frame;      /* the bytes to send */
	struct timespec release;     /* CLOCK_MONOTONIC */
	unsigned quit:1;             /* the QUIT answer: close once it is sent */
};

enum echo_state {
	ECHO_OPEN,                   /* reading and answering frames */
	ECHO_QUITTING,               /* QUIT received: answers still pending */
	ECHO_DRAINING,               /* sending what is in the output, then FIN */
	ECHO_LINGERING,              /* FIN sent: discarding input until peer FIN */
};

struct echo_server;

/* One accepted connection; owned by the server's list, freed by conn_free. */
struct echo_conn {
	TAILQ_ENTRY(echo_conn) link;
	struct echo_server *srv;     /* not owned */
	struct bufferevent *bev;     /* owns the socket */
	struct event *timer;         /* releases delayed answers; linger timeout */
	TAILQ_HEAD(, echo_pending) pending;
	size_t pending_bytes;        /* bytes in the pending FIFO */
	struct timespec last_release;
	uint64_t id;                 /* 1, 2, ... in accept order (trace) */
	uint64_t frames;             /* frames received so far */
	enum echo_state state;
	unsigned stalled:1;          /* --stall-after hit: never read again */
	unsigned paused:1;           /* reading off until answers drain */
	unsigned peer_eof:1;         /* FIN received: answer, then close */
};

/* The whole process; lives on main's stack. */
struct echo_server {
	struct echo_opts opts;
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *sig_term;
	struct event *sig_int;
	struct event *accept_pause;  /* re-enables accepting after EMFILE */
	FILE *trace;                 /* --trace, or NULL */
	TAILQ_HEAD(, echo_conn) conns;
	uint64_t next_id;
	uint64_t rng;                /* xorshift state for --random-delay */
};

static void conn_process_input(struct echo_conn *c);
static void conn_start_close(struct echo_conn *c, int drop_pending);

static void echo_log(const struct echo_server *srv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Informational lines; -q silences them (errors use fprintf directly). */
static void echo_log(const struct echo_server *srv, const char *fmt, ...)
{
	va_list ap;

	if (srv->opts.quiet)
		return;
	va_start(ap, fmt);
	fputs("sluice-echo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void trace_line(struct echo_server *srv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Flushed per line so a test can read the trace while the echo runs. */
static void trace_line(struct echo_server *srv, const char *fmt, ...)
{
	va_list ap;

	if (srv->trace == NULL)
		return;
	va_start(ap, fmt);
	if (vfprintf(srv->trace, fmt, ap) < 0 || fputc('\n', srv->trace) == EOF ||
	    fflush(srv->trace) == EOF) {
		fprintf(stderr, "sluice-echo: writing the trace failed: %s; tracing stops\n",
			strerror(errno));
		(void)fclose(srv->trace);
		srv->trace = NULL;
	}
	va_end(ap);
}

static void trace_frame(struct echo_conn *c, const struct frame_info *info)
{
	static const char hex[] = "0123456789abcdef";
	struct evbuffer *in = bufferevent_get_input(c->bev);
	uint8_t prefix[ECHO_TRACE_PREFIX];
	char text[2 * ECHO_TRACE_PREFIX + 1] = "-";
	struct evbuffer_ptr pos;
	size_t want = info->total_len - FRAME_PREFIX_LEN - info->header_len;
	ev_ssize_t got = 0;
	ev_ssize_t i;

	if (c->srv->trace == NULL)
		return;
	if (want > sizeof(prefix))
		want = sizeof(prefix);
	if (want > 0 && evbuffer_ptr_set(in, &pos, FRAME_PREFIX_LEN + info->header_len,
					 EVBUFFER_PTR_SET) == 0)
		got = evbuffer_copyout_from(in, &pos, prefix, want);
	for (i = 0; i < got; i++) {
		text[2 * i] = hex[prefix[i] >> 4];
		text[2 * i + 1] = hex[prefix[i] & 15];
		text[2 * i + 2] = '\0';
	}
	trace_line(c->srv, "frame %" PRIu64 " %" PRIu32 " %s", c->id, info->total_len, text);
}

static void timespec_add_ms(struct timespec *ts, uint32_t ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static struct timespec now_monotonic(void)
{
	struct timespec ts;

	/* Cannot fail with a valid clock id and pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static uint32_t pick_delay(struct echo_server *srv)
{
	uint64_t span = (uint64_t)srv->opts.delay_max_ms - srv->opts.delay_min_ms + 1;

	srv->rng ^= srv->rng << 13;
	srv->rng ^= srv->rng >> 7;
	srv->rng ^= srv->rng << 17;
	return srv->opts.delay_min_ms + (uint32_t)(srv->rng % span);
}

static void pending_free(struct echo_pending *p)
{
	evbuffer_free(p->frame);
	free(p);
}

static void conn_drop_pending(struct echo_conn *c)
{
	struct echo_pending *p;

	while ((p = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, p, link);
		pending_free(p);
	}
	c->pending_bytes = 0;
}

static void conn_free(struct echo_conn *c, const char *why)
{
	struct echo_server *srv = c->srv;

	echo_log(srv, "connection %" PRIu64 " closed: %s", c->id, why);
	trace_line(srv, "close %" PRIu64, c->id);
	TAILQ_REMOVE(&srv->conns, c, link);
	conn_drop_pending(c);
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
}

static int timer_arm_ms(struct event *timer, long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(timer, &tv);
}

/* Output is empty: FIN now, then wait (bounded) for the peer to close. Never
 * frees the connection itself, so callers may still touch it; on failure the
 * timer fires at once and frees it from the loop. */
static void conn_shutdown(struct echo_conn *c)
{
	c->state = ECHO_LINGERING;
	if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) < 0 ||
	    bufferevent_enable(c->bev, EV_READ) < 0 ||
	    timer_arm_ms(c->timer, ECHO_LINGER_MS) < 0)
		event_active(c->timer, EV_TIMEOUT, 0);
}

static void conn_start_close(struct echo_conn *c, int drop_pending)
{
	if (drop_pending)
		conn_drop_pending(c);
	c->state = ECHO_DRAINING;
	if (bufferevent_disable(c->bev, EV_READ) < 0)
		fprintf(stderr, "sluice-echo: connection %" PRIu64 ": cannot stop reading\n", c->id);
	if (evtimer_del(c->timer) < 0)
		fprintf(stderr, "sluice-echo: connection %" PRIu64 ": cannot stop timer\n", c->id);
	/* The write callback fires only after a write; with nothing left to
	 * write it would never come. Watermark 0 makes it fire once empty. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_shutdown(c);
}

/* A peer that half-closed still gets the answers to what it sent before
 * its FIN (as "printf ... | nc -N" expects); then the connection closes. */
static void conn_finish_if_done(struct echo_conn *c)
{
	if (c->peer_eof && c->state == ECHO_OPEN && !c->paused && TAILQ_EMPTY(&c->pending))
		conn_start_close(c, 0);
}

static size_t conn_backlog(struct echo_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) + c->pending_bytes;
}

static void conn_pause_if_full(struct echo_conn *c)
{
	if (c->paused || conn_backlog(c) <= ECHO_HIGH_WATER)
		return;
	c->paused = 1;
	if (bufferevent_disable(c->bev, EV_READ) < 0)
		fprintf(stderr, "sluice-echo: connection %" PRIu64 ": cannot pause reading\n", c->id);
}

static void conn_arm_release(struct echo_conn *c)
{
	struct echo_pending *head = TAILQ_FIRST(&c->pending);
	struct timespec now = now_monotonic();
	long ms;

	if (head == NULL)
		return;
	ms = (long)(head->release.tv_sec - now.tv_sec) * 1000 +
	     (head->release.tv_nsec - now.tv_nsec) / 1000000;
	if (ms < 0)
		ms = 0;
	if (timer_arm_ms(c->timer, ms + 1) < 0) {
		fprintf(stderr, "sluice-echo: connection %" PRIu64 ": cannot arm timer\n", c->id);
		conn_start_close(c, 1);
	}
}

/* Queues an answer: released no earlier than the one before it, so answers
 * on one connection keep arrival order whatever their random delays. */
static int conn_queue(struct echo_conn *c, struct evbuffer *frame, int quit)
{
	struct echo_pending *p = calloc(1, sizeof(*p));
	int was_empty = TAILQ_EMPTY(&c->pending);
	struct timespec release = now_monotonic();

	if (p == NULL) {
		evbuffer_free(frame);
		return -1;
	}
	if (!quit)
		timespec_add_ms(&release, pick_delay(c->srv));
	if (timespec_before(&release, &c->last_release))
		release = c->last_release;
	c->last_release = release;
	p->frame = frame;
	p->release = release;
	p->quit = quit;
	c->pending_bytes += evbuffer_get_length(frame);
	TAILQ_INSERT_TAIL(&c->pending, p, link);
	if (was_empty)
		conn_arm_release(c);
	return 0;
}

static void release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo_conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timespec now = now_monotonic();
	struct echo_pending *p;

	(void)fd;
	(void)what;

	if (c->state == ECHO_LINGERING) {
		conn_free(c, "peer did not close in time");
		return;
	}
	while ((p = TAILQ_FIRST(&c->pending)) != NULL && !timespec_before(&now, &p->release)) {
		int quit = p->quit;

		TAILQ_REMOVE(&c->pending, p, link);
		c->pending_bytes -= evbuffer_get_length(p->frame);
		if (evbuffer_add_buffer(out, p->frame) < 0) {
			pending_free(p);
			conn_start_close(c, 1);
			return;
		}
		pending_free(p);
		if (quit) {
			conn_start_close(c, 1);
			return;
		}
	}
	if (TAILQ_EMPTY(&c->pending))
		conn_finish_if_done(c);
	else
		conn_arm_release(c);
}

/* --answer-size: the request's header and payload under a prefix that
 * announces size bytes, then zeros up to size. Moves the frame out of in. */
static int grow_answer(struct evbuffer *in, struct evbuffer *out, const struct frame_info *info,
		       uint32_t size)
{
	static const uint8_t zeros[64 * 1024];
	uint32_t body = info->total_len - FRAME_PREFIX_LEN;
	uint8_t prefix[FRAME_PREFIX_LEN];
	uint32_t left = size - info->total_len;

	prefix[0] = (uint8_t)(info->header_len >> 8);
	prefix[1] = (uint8_t)info->header_len;
	prefix[2] = (uint8_t)(size >> 24);
	prefix[3] = (uint8_t)(size >> 16);
	prefix[4] = (uint8_t)(size >> 8);
	prefix[5] = (uint8_t)size;
	if (evbuffer_drain(in, FRAME_PREFIX_LEN) < 0 || evbuffer_add(out, prefix, sizeof(prefix)) < 0 ||
	    evbuffer_remove_buffer(in, out, body) != (int)body)
		return -1;
	while (left > 0) {
		uint32_t n = left < sizeof(zeros) ? left : (uint32_t)sizeof(zeros);

		if (evbuffer_add(out, zeros, n) < 0)
			return -1;
		left -= n;
	}
	return 0;
}

/* The answer to the current frame: the frame itself, or --garbage-after's
 * invalid prefix. Moves the frame out of the input either way. */
static struct evbuffer *take_answer(struct echo_conn *c, const struct frame_info *info,
				    int garbage)
{
	static const uint8_t bad_prefix[FRAME_PREFIX_LEN] = { 0, 0, 0, 0, 0, 3 };
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *answer = evbuffer_new();

	if (answer == NULL)
		return NULL;
	if (garbage) {
		if (evbuffer_drain(in, info->total_len) < 0 ||
		    evbuffer_add(answer, bad_prefix, sizeof(bad_prefix)) < 0)
			goto fail;
	} else if (c->srv->opts.answer_size > info->total_len) {
		if (grow_answer(in, answer, info, c->srv->opts.answer_size) < 0)
			goto fail;
	} else if (evbuffer_remove_buffer(in, answer, info->total_len) !=
		   (int)info->total_len) {
		goto fail;
	}
	return answer;
fail:
	evbuffer_free(answer);
	return NULL;
}

/* The lean path (no delay, nothing queued): the frame's chain segments move
 * from input to output without a copy or an allocation. */
static int answer_now(struct echo_conn *c, const struct frame_info *info, int garbage)
{
	static const uint8_t bad_prefix[FRAME_PREFIX_LEN] = { 0, 0, 0, 0, 0, 3 };
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (garbage)
		return evbuffer_drain(in, info->total_len) < 0 ||
		       evbuffer_add(out, bad_prefix, sizeof(bad_prefix)) < 0 ? -1 : 0;
	if (c->srv->opts.answer_size > info->total_len)
		return grow_answer(in, out, info, c->srv->opts.answer_size);
	return evbuffer_remove_buffer(in, out, info->total_len) ==
	       (int)info->total_len ? 0 : -1;
}

static int answer_quit(struct echo_conn *c, const struct frame_info *info)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *answer;

	if (evbuffer_drain(in, info->total_len) < 0)
		return -1;
	echo_log(c->srv, "connection %" PRIu64 ": QUIT received", c->id);
	if (TAILQ_EMPTY(&c->pending)) {
		if (frame_add_quit(bufferevent_get_output(c->bev)) < 0)
			return -1;
		conn_start_close(c, 0);
		return 0;
	}
	c->state = ECHO_QUITTING;
	if (bufferevent_disable(c->bev, EV_READ) < 0)
		return -1;
	answer = evbuffer_new();
	if (answer == NULL || frame_add_quit(answer) < 0) {
		if (answer != NULL)
			evbuffer_free(answer);
		return -1;
	}
	return conn_queue(c, answer, 1);
}

static int answer_frame(struct echo_conn *c, const struct frame_info *info)
{
	const struct echo_opts *o = &c->srv->opts;
	int garbage = o->garbage_after == (long)c->frames;
	struct evbuffer *answer;

	if (garbage)
		echo_log(c->srv, "connection %" PRIu64 ": answering frame %" PRIu64
			 " with garbage", c->id, c->frames);
	if (!o->delayed && TAILQ_EMPTY(&c->pending))
		return answer_now(c, info, garbage);
	answer = take_answer(c, info, garbage);
	if (answer == NULL)
		return -1;
	return conn_queue(c, answer, 0);
}

/* One complete frame at the front of the input. Returns 0 to go on reading
 * frames, 1 when this connection must not take any more. */
static int conn_take_frame(struct echo_conn *c, const struct frame_info *info)
{
	const struct echo_opts *o = &c->srv->opts;

	c->frames++;
	trace_frame(c, info);
	if (o->close_after == (long)c->frames) {
		echo_log(c->srv, "connection %" PRIu64 ": closing after frame %" PRIu64
			 " as asked", c->id, c->frames);
		conn_start_close(c, 1);
		return 1;
	}
	if (info->is_quit) {
		if (answer_quit(c, info) < 0)
			goto fail;
		return 1;
	}
	if (answer_frame(c, info) < 0)
		goto fail;
	if (o->stall_after == (long)c->frames) {
		echo_log(c->srv, "connection %" PRIu64 ": stalling after frame %" PRIu64
			 " as asked", c->id, c->frames);
		c->stalled = 1;
		if (bufferevent_disable(c->bev, EV_READ) < 0)
			goto fail;
		return 1;
	}
	conn_pause_if_full(c);
	return c->paused;
fail:
	fprintf(stderr, "sluice-echo: connection %" PRIu64 ": out of memory answering a frame\n",
		c->id);
	conn_start_close(c, 1);
	return 1;
}

static void conn_process_input(struct echo_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct frame_info info;
	enum frame_status st;

	while (c->state == ECHO_OPEN && !c->stalled && !c->paused) {
		st = frame_peek(in, c->srv->opts.max_frame, &info);
		if (st == FRAME_NEED_MORE) {
			conn_finish_if_done(c);
			return;
		}
		if (st == FRAME_INVALID) {
			fprintf(stderr, "sluice-echo: connection %" PRIu64 ": invalid frame (%s); closing\n",
				c->id, frame_error_string(info.error));
			conn_start_close(c, 1);
			return;
		}
		if (conn_take_frame(c, &info) != 0)
			return;
	}
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct echo_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == ECHO_LINGERING) {
		if (evbuffer_drain(in, evbuffer_get_length(in)) < 0)
			conn_free(c, "cannot discard input");
		return;
	}
	conn_process_input(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct echo_conn *c = arg;

	if (c->state == ECHO_DRAINING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_shutdown(c);
		return;
	}
	if (!c->paused || c->stalled || c->state != ECHO_OPEN ||
	    conn_backlog(c) >= ECHO_LOW_WATER)
		return;
	c->paused = 0;
	if (!c->peer_eof && bufferevent_enable(bev, EV_READ) < 0) {
		conn_free(c, "cannot resume reading");
		return;
	}
	/* Frames that arrived before the pause are already in the input and
	 * would wait for more bytes that may never come. */
	conn_process_input(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct echo_conn *c = arg;

	(void)bev;

	if ((what & BEV_EVENT_EOF) && c->state == ECHO_OPEN && !c->peer_eof) {
		c->peer_eof = 1;
		if (bufferevent_disable(bev, EV_READ) < 0) {
			conn_free(c, "cannot stop reading");
			return;
		}
		conn_process_input(c);
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_free(c, "peer closed");
	else if (what & BEV_EVENT_ERROR)
		conn_free(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static int conn_setup_socket(evutil_socket_t fd)
{
	int one = 1;

	/* Answers are small and latency-bound: never wait for Nagle. */
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct echo_conn *conn_new(struct echo_server *srv, evutil_socket_t fd)
{
	struct echo_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->srv = srv;
	TAILQ_INIT(&c->pending);
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(srv->base, release_cb, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return NULL;
	}
	c->id = ++srv->next_id;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, ECHO_LOW_WATER, 0);
	if (bufferevent_set_max_single_read(c->bev, ECHO_MAX_SINGLE_IO) < 0 ||
	    bufferevent_set_max_single_write(c->bev, ECHO_MAX_SINGLE_IO) < 0)
		fprintf(stderr, "sluice-echo: connection %" PRIu64 ": keeping default I/O sizes\n",
			c->id);
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	return c;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct echo_server *srv = arg;
	struct echo_conn *c;

	(void)l;
	(void)sa;
	(void)salen;

	if (conn_setup_socket(fd) < 0)
		fprintf(stderr, "sluice-echo: TCP_NODELAY: %s\n", strerror(errno));
	c = conn_new(srv, fd);
	if (c == NULL) {
		fprintf(stderr, "sluice-echo: out of memory accepting a connection\n");
		return;
	}
	trace_line(srv, "accept %" PRIu64, c->id);
	echo_log(srv, "connection %" PRIu64 " accepted", c->id);
	if (srv->opts.close_after == 0) {
		conn_start_close(c, 1);
		return;
	}
	if (srv->opts.stall_after == 0) {
		c->stalled = 1;
		return;
	}
	if (bufferevent_enable(c->bev, EV_READ) < 0)
		conn_free(c, "cannot start reading");
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct echo_server *srv = arg;

	(void)fd;
	(void)what;

	if (evconnlistener_enable(srv->listener) < 0)
		fprintf(stderr, "sluice-echo: cannot resume accepting\n");
}

/* Out of descriptors: pause accepting briefly instead of spinning on the
 * pending connection. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct echo_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();

	fprintf(stderr, "sluice-echo: accept: %s; pausing %d ms\n",
		evutil_socket_error_to_string(err), ECHO_ACCEPT_PAUSE_MS);
	if (evconnlistener_disable(l) < 0 || timer_arm_ms(srv->accept_pause, ECHO_ACCEPT_PAUSE_MS) < 0)
		fprintf(stderr, "sluice-echo: cannot pause accepting\n");
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct echo_server *srv = arg;

	(void)what;

	echo_log(srv, "signal %d: exiting", (int)sig);
	if (event_base_loopbreak(srv->base) < 0)
		exit(0);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-echo [options]\n"
		"Plaintext backend answering every sluice frame with the same frame.\n"
		"  -a, --address ADDR        listen address (default 127.0.0.1)\n"
		"  -p, --port PORT           listen port (default %d; 0 picks one)\n"
		"  -d, --delay MS            delay every answer by MS milliseconds\n"
		"  -r, --random-delay MIN:MAX  delay each answer uniformly in [MIN, MAX] ms;\n"
		"                            answers on one connection keep arrival order\n"
		"      --max-frame SIZE      largest frame accepted (default 16MiB, at most 1GiB;\n"
		"                            B, KiB, MiB); a bigger or invalid one closes the\n"
		"                            connection\n"
		"      --trace FILE          append \"accept C\", \"frame C TOTAL_LEN HEX\" (every\n"
		"                            frame received, answered or not; HEX: its first 32\n"
		"                            payload bytes, \"-\" when empty) and \"close C\" lines\n"
		"      --close-after N       on the Nth frame of a connection, send the answers\n"
		"                            already due, drop that frame and later ones, close\n"
		"                            (0: right after accepting)\n"
		"      --garbage-after N     answer the Nth frame of each connection with an\n"
		"                            invalid prefix (00 00 00 00 00 03), in its place\n"
		"      --stall-after N       answer N frames of a connection, then never read it\n"
		"                            again (not even its close)\n"
		"      --answer-size SIZE    answer each frame with a frame of SIZE bytes: the\n"
		"                            request's header and payload, then zero bytes (a\n"
		"                            larger request is echoed as it is)\n"
		"  -q, --quiet               only errors on stderr\n"
		"  -h, --help                this text\n"
		"  -V, --version             print the version\n"
		"A frame whose header is QUIT is answered with QUIT after all earlier\n"
		"answers, then the connection is closed; so is one whose peer half-closes,\n"
		"once what it sent is answered. SIGTERM/SIGINT exit 0.\n",
		ECHO_DEFAULT_PORT);
}

static int parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_size(const char *text, uint32_t *out)
{
	static const struct { const char *suffix; unsigned long mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "KiB", 1024 }, { "MiB", 1024 * 1024 },
		{ "k", 1024 }, { "K", 1024 }, { "M", 1024 * 1024 },
	};
	char digits[32];
	size_t n = strspn(text, "0123456789");
	unsigned long v;
	size_t i;

	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, text, n);
	digits[n] = '\0';
	if (parse_ulong(digits, UINT32_MAX, &v) < 0)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(text + n, units[i].suffix) == 0) {
			if (v > UINT32_MAX / units[i].mult)
				return -1;
			*out = (uint32_t)(v * units[i].mult);
			return 0;
		}
	}
	return -1;
}

static int parse_range(const char *text, uint32_t *lo, uint32_t *hi)
{
	char buf[64];
	char *colon;
	unsigned long a, b;

	if (strlen(text) >= sizeof(buf))
		return -1;
	strcpy(buf, text);
	colon = strchr(buf, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	if (parse_ulong(buf, 3600000, &a) < 0 || parse_ulong(colon + 1, 3600000, &b) < 0 || a > b)
		return -1;
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return 0;
}

enum {
	OPT_MAX_FRAME = 256,
	OPT_TRACE,
	OPT_CLOSE_AFTER,
	OPT_GARBAGE_AFTER,
	OPT_STALL_AFTER,
	OPT_ANSWER_SIZE,
};

static int parse_fault(const char *text, unsigned long min, long *out)
{
	unsigned long v;

	if (parse_ulong(text, LONG_MAX, &v) < 0 || v < min)
		return -1;
	*out = (long)v;
	return 0;
}

/* One option; returns 0, or -1 after printing why (exit status 2). */
static int parse_one(struct echo_opts *o, int ch, const char *arg, int *delay_opts)
{
	unsigned long v;

	switch (ch) {
	case 'a':
		o->address = arg;
		return 0;
	case 'p':
		if (parse_ulong(arg, 65535, &v) < 0)
			break;
		o->port = (uint16_t)v;
		return 0;
	case 'd':
		if (parse_ulong(arg, 3600000, &v) < 0)
			break;
		o->delay_min_ms = o->delay_max_ms = (uint32_t)v;
		(*delay_opts)++;
		return 0;
	case 'r':
		if (parse_range(arg, &o->delay_min_ms, &o->delay_max_ms) < 0)
			break;
		(*delay_opts)++;
		return 0;
	case OPT_MAX_FRAME:
		/* evbuffer moves report their size as an int. */
		if (parse_size(arg, &o->max_frame) < 0 || o->max_frame < FRAME_PREFIX_LEN ||
		    o->max_frame > ECHO_MAX_MAX_FRAME)
			break;
		return 0;
	case OPT_ANSWER_SIZE:
		if (parse_size(arg, &o->answer_size) < 0 || o->answer_size < FRAME_PREFIX_LEN ||
		    o->answer_size > ECHO_MAX_MAX_FRAME)
			break;
		return 0;
	case OPT_TRACE:
		o->trace_path = arg;
		return 0;
	case OPT_CLOSE_AFTER:
		return parse_fault(arg, 0, &o->close_after) < 0 ? -2 : 0;
	case OPT_GARBAGE_AFTER:
		return parse_fault(arg, 1, &o->garbage_after) < 0 ? -2 : 0;
	case OPT_STALL_AFTER:
		return parse_fault(arg, 0, &o->stall_after) < 0 ? -2 : 0;
	case 'q':
		o->quiet = 1;
		return 0;
	default:
		return -1;
	}
	return -2;
}

/* Returns -1 to exit 2, 1 to exit 0 (help/version), 0 to run. */
static int parse_args(int argc, char **argv, struct echo_opts *o)
{
	static const struct option longs[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "delay", required_argument, NULL, 'd' },
		{ "random-delay", required_argument, NULL, 'r' },
		{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "close-after", required_argument, NULL, OPT_CLOSE_AFTER },
		{ "garbage-after", required_argument, NULL, OPT_GARBAGE_AFTER },
		{ "stall-after", required_argument, NULL, OPT_STALL_AFTER },
		{ "answer-size", required_argument, NULL, OPT_ANSWER_SIZE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int delay_opts = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, "a:p:d:r:qhV", longs, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return 1;
		}
		if (ch == 'V') {
			printf("sluice-echo %s\n", SLUICE_VERSION);
			return 1;
		}
		switch (parse_one(o, ch, optarg, &delay_opts)) {
		case 0:
			continue;
		case -2:
			fprintf(stderr, "sluice-echo: invalid value for option: '%s'\n", optarg);
			/* fall through */
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || delay_opts > 1) {
		fprintf(stderr, "sluice-echo: %s\n", optind != argc ?
			"unexpected argument" : "--delay and --random-delay exclude each other");
		usage(stderr);
		return -1;
	}
	o->delayed = o->delay_max_ms > 0;
	return 0;
}

static int resolve(const struct echo_opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)o->port);
	rc = getaddrinfo(o->address, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "sluice-echo: bad address '%s': %s\n", o->address, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int server_listen(struct echo_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int port;

	if (resolve(&srv->opts, &ss, &len) < 0)
		return -1;
	srv->listener = evconnlistener_new_bind(srv->base, accept_cb, srv,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
						ECHO_BACKLOG, (struct sockaddr *)&ss, (int)len);
	if (srv->listener == NULL) {
		fprintf(stderr, "sluice-echo: cannot listen on %s:%u: %s\n", srv->opts.address,
			(unsigned)srv->opts.port, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	port = bound_port(evconnlistener_get_fd(srv->listener));
	if (port < 0) {
		fprintf(stderr, "sluice-echo: getsockname: %s\n", strerror(errno));
		return -1;
	}
	fprintf(stderr, ss.ss_family == AF_INET6 ? "sluice-echo: listening on [%s]:%d\n" :
		"sluice-echo: listening on %s:%d\n", srv->opts.address, port);
	return 0;
}

static int server_init(struct echo_server *srv)
{
	struct timespec ts = now_monotonic();

	TAILQ_INIT(&srv->conns);
	srv->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ (uint64_t)ts.tv_sec;
	if (srv->rng == 0)
		srv->rng = 88172645463325252ull;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "sluice-echo: cannot ignore SIGPIPE\n");
		return -1;
	}
	srv->base = event_base_new();
	if (srv->base == NULL) {
		fprintf(stderr, "sluice-echo: event_base_new failed\n");
		return -1;
	}
	srv->sig_term = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->accept_pause = evtimer_new(srv->base, accept_resume_cb, srv);
	if (srv->sig_term == NULL || srv->sig_int == NULL || srv->accept_pause == NULL ||
	    evsignal_add(srv->sig_term, NULL) < 0 || evsignal_add(srv->sig_int, NULL) < 0) {
		fprintf(stderr, "sluice-echo: cannot set up signal handling\n");
		return -1;
	}
	if (srv->opts.trace_path != NULL) {
		srv->trace = fopen(srv->opts.trace_path, "a");
		if (srv->trace == NULL) {
			fprintf(stderr, "sluice-echo: cannot open trace %s: %s\n",
				srv->opts.trace_path, strerror(errno));
			return -1;
		}
	}
	return server_listen(srv);
}

/* Frees everything, so sanitizer runs report real leaks only. */
static void server_free(struct echo_server *srv)
{
	struct echo_conn *c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_free(c, "exiting");
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	if (srv->sig_term != NULL)
		event_free(srv->sig_term);
	if (srv->sig_int != NULL)
		event_free(srv->sig_int);
	if (srv->accept_pause != NULL)
		event_free(srv->accept_pause);
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->trace != NULL && fclose(srv->trace) == EOF)
		fprintf(stderr, "sluice-echo: closing the trace: %s\n", strerror(errno));
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	struct echo_server srv;
	int rc;

	memset(&srv, 0, sizeof(srv));
	srv.opts.address = "127.0.0.1";
	srv.opts.port = ECHO_DEFAULT_PORT;
	srv.opts.max_frame = ECHO_DEFAULT_MAX_FRAME;
	srv.opts.close_after = ECHO_FAULT_OFF;
	srv.opts.garbage_after = ECHO_FAULT_OFF;
	srv.opts.stall_after = ECHO_FAULT_OFF;
	rc = parse_args(argc, argv, &srv.opts);
	if (rc != 0)
		return rc < 0 ? 2 : 0;
	if (server_init(&srv) < 0) {
		server_free(&srv);
		return 1;
	}
	rc = event_base_dispatch(srv.base);
	if (rc < 0)
		fprintf(stderr, "sluice-echo: event loop failed\n");
	server_free(&srv);
	return rc < 0 ? 1 : 0;
}
