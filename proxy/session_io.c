/*
 * session_io — what an established session reads and answers.
 *
 *   TLS bytes ─▶ bufferevent_openssl ─▶ input evbuffer
 *        session_process: frame_peek the 6-byte prefix (fstream_run_peek),
 *        wait for the whole frame, then pool_place places it and the run
 *        moves it with the frames behind it (fstream: evbuffer chains change
 *        hands, bytes are not copied) to an upstream
 *   upstream ─▶ request_client_ops: the response is moved straight to the
 *        client's output when its request is the oldest one (take_head,
 *        deliver), otherwise it waits in its request until the earlier ones
 *        are answered (respond)
 *
 * The budget (session_over_budget) and the pool (pool_congested) decide
 * when the session stops reading; once nothing more will be read and every
 * request is answered, QUIT and close_notify end it
 * (session_finish_when_done), and session.c's timer frees it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/frame.h>
#include <sluice/fstream.h>
#include <sluice/histogram.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/request.h>
#include <sluice/session_io.h>

#define SESSION_LINGER_MS 1000u          /* after close_notify, before close(2) */
#define SESSION_DRAIN_MIN_MS 1000u       /* shortest DRAINING period */

/* Lines a client can cause, rate-limited (SPEC §10; log.h). */
LOG_LIMIT(session_limit_protocol, "invalid frames from clients");
LOG_LIMIT(session_limit_buffer, "clients disconnected for unread answers");

static void session_pc_resume(struct pool_client *pc);
static struct request_client *session_take_head(struct request *req, uint32_t len);
static void session_deliver(struct request_client *c, struct evbuffer *src, size_t len);
static void session_respond(struct request *req, struct evbuffer *src, uint32_t len);
static void session_respond_error(struct request *req, enum frame_err_code code, const char *message);

static const struct pool_client_ops session_pool_ops = {
	.resume = session_pc_resume,
};

/* How the pool and the upstreams answer its requests. */
static const struct request_client_ops session_request_ops = {
	.take_head = session_take_head,
	.deliver = session_deliver,
	.respond = session_respond,
	.respond_error = session_respond_error,
};

_Static_assert(SESSION_CLOSE_COUNT == LOOP_CLOSE_REASONS, "the loop counts every close reason");

/* The first cause recorded is the one reported: a client that sent QUIT
 * and then closed ended with "client_quit", not "client_closed". */
void
session_note_reason(struct session *s, enum session_close_reason r)
{
	if (s->reason == SESSION_CLOSE_COUNT)
		s->reason = r;
}

void
session_reset_on_close(struct session *s)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int fd = bufferevent_getfd(s->bev);

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) < 0)
		log_debug("client %s: SO_LINGER: %s", s->peer, strerror(errno));
}

struct session *
session_check(void *arg)
{
	struct session *s = arg;

	if (s->magic != SESSION_MAGIC) {
		log_crit("session callback on a freed or corrupt session %p", arg);
		abort();
	}
	return s;
}

/* The session a request-client record is part of (s->pc.rc). */
static struct session *
session_of_client(struct request_client *c)
{
	return session_check((char *)pool_client_of(c) - offsetof(struct session, pc));
}

/* The session req belongs to: its client has not left. */
static struct session *
session_of(const struct request *req)
{
	assert(req->client != NULL);
	return session_of_client(req->client);
}

void
session_arm(struct session *s, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (evtimer_add(s->timer, &tv) < 0)
		log_error("client %s: cannot arm timer", s->peer);
}

void
session_requests_init(struct session *s)
{
	TAILQ_INIT(&s->reqs);
	pool_client_init(&s->pc, &session_request_ops, &session_pool_ops);
}

/* Requests still in the pool stop there; written ones become orphans the
 * upstream frees when their response (or the connection's end) comes. */
void
session_release_requests(struct session *s)
{
	struct request *req;

	while ((req = TAILQ_FIRST(&s->reqs)) != NULL) {
		TAILQ_REMOVE(&s->reqs, req, session_link);
		switch (req->state) {
		case REQUEST_WAITING:
			pool_cancel(s->pool, req);
			request_free(&s->loop->requests, req);
			break;
		case REQUEST_WRITTEN:
			req->client = NULL;
			break;
		case REQUEST_DONE:
		case REQUEST_UNLINKED:   /* sluice failed to answer it */
			request_free(&s->loop->requests, req);
			break;
		}
	}
	s->n_reqs = 0;
	s->inflight_bytes = s->parked_bytes = s->passing_bytes = 0;
	s->n_inflight = 0;
	pool_client_reset(&s->pc);
}

/* For failures in the middle of a response path: the session must stay
 * valid until the caller unwinds, so it is freed from its own timer. */
static void
session_kill(struct session *s, enum session_close_reason reason, const char *why)
{
	if (reason == SESSION_CLOSE_INTERNAL)
		log_error("client %s: %s; closing", s->peer, why);
	else
		log_limited(&session_limit_buffer, LOG_INFO, "client %s: %s; closing", s->peer, why);
	s->reason = reason;
	pool_client_unpause(&s->pc);
	s->state = SESSION_CLOSED;
	s->read_done = 1;
	/* Already the way out: events that still come find it CLOSED, and
	 * the timer frees it next. Made active rather than armed: arming can
	 * need memory (libevent's timer heap grows when full), and a session
	 * whose timer never fires would never be freed. */
	if (bufferevent_disable(s->bev, EV_READ | EV_WRITE) < 0)
		log_error("client %s: cannot stop its events", s->peer);
	event_active(s->timer, EV_TIMEOUT, 0);
}

/* close_notify, then keep reading (and discarding) briefly: closing a socket
 * with unread input makes the kernel send a reset that can destroy the
 * responses the client has not read yet. */
static void
session_close(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	int fd = bufferevent_getfd(s->bev);

	assert(s->state != SESSION_CLOSED);
	s->state = SESSION_CLOSED;
	s->read_done = 1;
	if (ssl != NULL && SSL_shutdown(ssl) < 0)
		ERR_clear_error();   /* a peer that already left: nothing to tell */
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
	pool_client_unpause(&s->pc);
	s->read_paused = 0;
	if (bufferevent_enable(s->bev, EV_READ) < 0) {
		session_kill(s, SESSION_CLOSE_INTERNAL, "cannot read the client's close");
		return;
	}
	session_arm(s, SESSION_LINGER_MS);
}

/* Nothing more will be read as requests: once every earlier request is
 * answered, the QUIT (unless already sent) and close_notify follow. */
void
session_finish_when_done(struct session *s)
{
	struct evbuffer *out;

	if (s->state == SESSION_CLOSED || !s->read_done || s->n_reqs > 0)
		return;
	out = bufferevent_get_output(s->bev);
	if (!s->quit_sent) {
		if (frame_add_quit(out) < 0) {
			session_kill(s, SESSION_CLOSE_INTERNAL, "cannot queue QUIT");
			return;
		}
		s->quit_sent = 1;
	}
	if (evbuffer_get_length(out) == 0) {
		session_close(s);
		return;
	}
	/* session_write_cb closes once the output has drained, unless the
	 * client does not read it: a client that never reads must not keep
	 * its buffers and its max_connections slot forever. */
	if (s->state != SESSION_DRAINING) {
		s->state = SESSION_DRAINING;
		s->drain_left = evbuffer_get_length(out);
		session_arm(s, session_drain_period(s));
	}
}

/* grace_timeout, but never so short that a client still reading its last
 * responses is cut off: grace_timeout 0 means "do not wait for QUIT
 * answers", not "truncate". */
uint64_t
session_drain_period(const struct session *s)
{
	uint64_t grace = s->loop->cfg->grace_timeout_ms;

	return grace > SESSION_DRAIN_MIN_MS ? grace : SESSION_DRAIN_MIN_MS;
}

/* 0, or -1 when the session is being killed. */
int
session_stop_reading(struct session *s)
{
	s->read_done = 1;
	if (s->state == SESSION_ESTABLISHED) {
		/* The client ends it (QUIT or a bad frame). Its idle timer must
		 * not fire in CLOSING, where the timer means "grace over": SPEC
		 * §3 promises every earlier response, and each is bounded
		 * already (queue_timeout, request_timeout answer it with an ERR).
		 * Only a shutdown puts a deadline on it (session_shutdown). */
		s->state = SESSION_CLOSING;
		if (evtimer_del(s->timer) < 0)
			log_error("client %s: cannot stop the idle timer", s->peer);
	}
	pool_client_unpause(&s->pc);
	/* Reading stays on (input is discarded) so a client that leaves is
	 * noticed at once and its pending responses dropped. */
	if (s->read_paused) {
		s->read_paused = 0;
		if (bufferevent_enable(s->bev, EV_READ) < 0) {
			session_kill(s, SESSION_CLOSE_INTERNAL, "cannot watch the client's connection");
			return -1;
		}
	}
	return 0;
}

static void
session_protocol_error(struct session *s, const struct frame_info *fi)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *err;
	struct request *req;

	LOOP_STAT_ADD(s->loop, protocol_errors, 1);
	session_note_reason(s, SESSION_CLOSE_PROTOCOL);
	log_limited(&session_limit_protocol, LOG_INFO, "client %s: protocol error: %s (header_len %u, total_len %u); answering ERR PROTOCOL and closing",
		 s->peer, frame_error_string(fi->error), fi->header_len, fi->total_len);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (session_stop_reading(s) < 0)
		return;

	/* The error is a response like any other: it comes after the responses
	 * to every request received before the bad frame. */
	req = request_new(&s->loop->requests);
	err = evbuffer_new();
	if (req == NULL || err == NULL ||
	    frame_add_error(err, frame_err_code_name(FRAME_ERR_PROTOCOL), frame_error_string(fi->error)) < 0) {
		if (req != NULL)
			request_free(&s->loop->requests, req);
		if (err != NULL)
			evbuffer_free(err);
		session_kill(s, SESSION_CLOSE_INTERNAL, "out of memory answering a protocol error");
		return;
	}
	req->client = &s->pc.rc;
	req->state = REQUEST_UNLINKED;
	TAILQ_INSERT_TAIL(&s->reqs, req, session_link);
	s->n_reqs++;
	s->n_inflight++;
	session_respond(req, err, (uint32_t)evbuffer_get_length(err));
	evbuffer_free(err);
}

static void
session_quit_received(struct session *s)
{
	log_debug("client %s: QUIT received with %u requests outstanding", s->peer, s->n_reqs);
	s->quit_received = 1;
	session_note_reason(s, SESSION_CLOSE_CLIENT_QUIT);
	if (session_stop_reading(s) < 0)
		return;
	session_finish_when_done(s);
}

/* 0, or -1 when the session is being killed: a session that cannot stop
 * reading would take requests past its budget. */
static int
session_pause(struct session *s)
{
	if (s->read_paused)
		return 0;
	s->read_paused = 1;
	if (bufferevent_disable(s->bev, EV_READ) < 0) {
		session_kill(s, SESSION_CLOSE_INTERNAL, "cannot pause reading");
		return -1;
	}
	return 0;
}

/* Answers the client has not read: parked, on their way, in the output. */
static uint64_t
session_unread(const struct session *s)
{
	return s->parked_bytes + s->passing_bytes + evbuffer_get_length(bufferevent_get_output(s->bev));
}

/* The per-client budget (SPEC §4): requests in flight, each counted with
 * the size of answer it can be expected to bring (the recent answers'
 * decaying maximum: small requests for large answers spend the budget as
 * the answers would), plus answers not yet read by the client. One frame
 * is always allowed when nothing is held, so a frame as large as the
 * budget still gets through. */
static int
session_over_budget(const struct session *s, uint32_t next_len)
{
	uint64_t held = s->inflight_bytes + (uint64_t)s->n_inflight * s->answer_estimate + session_unread(s);

	return held > 0 && held + next_len + s->answer_estimate > s->loop->cfg->limits.client_buffer;
}

/* The hard bound on the answers sluice holds for one client, whatever their
 * size and whether or not it reads: 2 x client_buffer + max_frame_size.
 * The budget keeps a client below it unless answers dwarf its requests
 * before the first one arrives (a burst of small requests for large
 * answers, from a client that does not read): past the bound the client is
 * disconnected, as Redis does past client-output-buffer-limit, since an
 * answer can be neither refused nor delayed without stalling the backend
 * connection other clients share. */
static bool
session_answer_fits(const struct session *s, uint32_t len)
{
	const struct config_limits *lim = &s->loop->cfg->limits;

	return session_unread(s) + len <= 2 * lim->client_buffer + lim->max_frame_size;
}

static struct request *
session_new_request(struct session *s, uint32_t len)
{
	struct request *req = request_new(&s->loop->requests);

	if (req == NULL)
		return NULL;
	req->client = &s->pc.rc;
	req->len = len;
	req->received_us = s->loop->now_us;
	TAILQ_INSERT_TAIL(&s->reqs, req, session_link);
	s->n_reqs++;
	s->inflight_bytes += len;
	s->n_inflight++;
	LOOP_STAT_ADD(s->loop, frames_received, 1);
	LOOP_STAT_ADD(s->loop, bytes_received, len);
	/* Activity is a whole frame, not a byte: a client dribbling one byte
	 * at a time (slowloris) is idle as far as idle_timeout goes. */
	s->last_active_ms = req->received_us / 1000;
	return req;
}

/* The frame is the run's next len bytes of input. */
static void
session_submit(struct session *s, struct fstream_run *run, struct evbuffer *in, uint32_t len)
{
	struct request *req = session_new_request(s, len);

	if (req == NULL) {
		fstream_run_flush(run, in);
		evbuffer_drain(in, len);
		session_kill(s, SESSION_CLOSE_INTERNAL, "out of memory for a request");
		return;
	}
	pool_place(s->pool, req, in, run);   /* may answer req at once */
}

static int
session_can_read(const struct session *s)
{
	switch (s->state) {
	case SESSION_HANDSHAKE:
	case SESSION_DRAINING:
	case SESSION_CLOSED:
		return 0;
	case SESSION_ESTABLISHED:
	case SESSION_CLOSING:
		return !s->read_done && !s->read_paused;
	}
	return 0;
}

/* Records OpenSSL read ahead of what libevent asked for
 * (fstream_read_buffered), when the session reads at all. */
static void
session_read_buffered(struct session *s)
{
	if (session_can_read(s))
		fstream_read_buffered(s->bev);
}

void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	uint32_t max = (uint32_t)s->loop->cfg->limits.max_frame_size;
	struct fstream_run run = POOL_RUN_INIT;
	struct frame_info fi;

	while (session_can_read(s)) {
		switch (fstream_run_peek(&run, in, max, &fi)) {
		case FRAME_NEED_MORE:
			goto out;
		case FRAME_INVALID:
			fstream_run_flush(&run, in);
			session_protocol_error(s, &fi);
			return;
		case FRAME_READY:
			break;
		}
		if (fi.is_quit) {
			fstream_run_flush(&run, in);
			evbuffer_drain(in, fi.total_len);
			session_quit_received(s);
			return;
		}
		if (session_over_budget(s, fi.total_len)) {
			(void)session_pause(s);   /* session_write_cb resumes */
			goto out;
		}
		if (pool_congested(s->pool, &s->pc)) {
			if (session_pause(s) == 0)
				pool_pause(s->pool, &s->pc);
			goto out;
		}
		session_submit(s, &run, in, fi.total_len);
	}
out:
	/* Requests in the run are in their upstream's FIFO already: their
	 * bytes must follow before anything else happens. */
	fstream_run_flush(&run, in);
	session_read_buffered(s);
}

static void
session_dequeue(struct session *s, struct request *req)
{
	TAILQ_REMOVE(&s->reqs, req, session_link);
	s->n_reqs--;
	request_free(&s->loop->requests, req);
}

/* Hands every answered request at the head of the queue to the client. */
static void
session_flush(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct request *req;

	while ((req = TAILQ_FIRST(&s->reqs)) != NULL && req->state == REQUEST_DONE) {
		s->parked_bytes -= req->resp_len;
		if (evbuffer_add_buffer(out, req->buf) < 0) {
			session_kill(s, SESSION_CLOSE_INTERNAL, "cannot queue a response");
			return;
		}
		session_dequeue(s, req);
	}
	if (evbuffer_get_length(out) > 0)
		fstream_write_soon(s->bev);
	/* Idle time starts when nothing is in flight any more. */
	if (s->n_reqs == 0)
		s->last_active_ms = clock_ms();
	session_finish_when_done(s);
}

/* Counts req's answer (len bytes): its request leaves the budget. */
static void
session_account(struct session *s, struct request *req, uint32_t len)
{
	struct loop *l = s->loop;
	uint32_t est = s->answer_estimate;

	s->inflight_bytes -= req->len;
	s->n_inflight--;
	/* A decaying maximum: one large answer raises it at once, and it
	 * halves over some five smaller ones. */
	s->answer_estimate = len >= est ? len : est - est / 8 + len / 8;
	LOOP_STAT_ADD(l, frames_sent, 1);
	LOOP_STAT_ADD(l, bytes_sent, len);
	if (req->received_us != 0)
		histogram_observe(&l->stats.duration, l->now_us - req->received_us);
}

/* The bytes always leave src (fstream_move), so the frames behind them stay
 * aligned even when this session cannot take them: it is killed. */
static int
session_move(struct session *s, struct evbuffer *src, struct evbuffer *dst, size_t len)
{
	if (fstream_move(src, dst, len) == 0)
		return 0;
	session_kill(s, SESSION_CLOSE_INTERNAL, "cannot queue a response");
	return -1;
}

/* Whether the session takes req's answer (len bytes). A session on its way
 * out drops it; one whose unread answers would pass the hard bound is
 * disconnected first (reset: it does not read what it has). */
static bool
session_accepts(struct session *s, uint32_t len)
{
	if (s->state == SESSION_CLOSED)
		return false;
	if (session_answer_fits(s, len))
		return true;
	session_reset_on_close(s);
	session_kill(s, SESSION_CLOSE_BUFFER_LIMIT,
		     "answers it has not read passed 2 x client_buffer + max_frame_size");
	return false;
}

/* An answer the session does not take: it goes nowhere, never elsewhere. */
static void
session_drop(struct session *s, struct request *req, struct evbuffer *src, uint32_t len)
{
	evbuffer_drain(src, len);
	s->inflight_bytes -= req->len;
	s->n_inflight--;
	session_dequeue(s, req);
}

/* request_client_ops.take_head */
static struct request_client *
session_take_head(struct request *req, uint32_t len)
{
	struct session *s = session_of(req);

	if (req != TAILQ_FIRST(&s->reqs) || !session_accepts(s, len))
		return NULL;
	session_account(s, req, len);
	session_dequeue(s, req);
	s->passing_bytes += len;
	return &s->pc.rc;
}

/* request_client_ops.deliver */
static void
session_deliver(struct request_client *c, struct evbuffer *src, size_t len)
{
	struct session *s = session_of_client(c);

	assert(s->passing_bytes >= len);
	s->passing_bytes -= len;
	if (session_move(s, src, bufferevent_get_output(s->bev), len) == 0)
		session_flush(s);
}

/* request_client_ops.respond */
static void
session_respond(struct request *req, struct evbuffer *src, uint32_t len)
{
	struct session *s = session_of(req);
	struct request_client *c;

	/* Out of its queue: if answering fails, its session frees it rather
	 * than take it out of a queue again (session_release_requests). */
	req->state = REQUEST_UNLINKED;
	c = session_take_head(req, len);
	if (c != NULL) {
		session_deliver(c, src, len);
		return;
	}
	if (s->state == SESSION_CLOSED) {
		session_drop(s, req, src, len);
		return;
	}
	/* An earlier request is still unanswered: this answer waits. */
	session_account(s, req, len);
	if (req->buf == NULL)
		req->buf = evbuffer_new();
	else
		evbuffer_drain(req->buf, evbuffer_get_length(req->buf));
	if (req->buf == NULL) {
		evbuffer_drain(src, len);
		req->state = REQUEST_UNLINKED;
		session_kill(s, SESSION_CLOSE_INTERNAL, "cannot hold a response: out of memory");
		return;
	}
	if (session_move(s, src, req->buf, len) < 0) {
		req->state = REQUEST_UNLINKED;
		return;
	}
	req->state = REQUEST_DONE;
	req->resp_len = len;
	s->parked_bytes += len;
}

/* request_client_ops.respond_error */
static void
session_respond_error(struct request *req, enum frame_err_code code, const char *message)
{
	struct session *s = session_of(req);
	struct evbuffer *err;

	req->state = REQUEST_UNLINKED;   /* see session_respond */
	loop_count_error(s->loop, code);
	err = evbuffer_new();
	if (err == NULL || frame_add_error(err, frame_err_code_name(code), message) < 0) {
		if (err != NULL)
			evbuffer_free(err);
		session_kill(s, SESSION_CLOSE_INTERNAL, "out of memory answering an error");
		return;
	}
	session_respond(req, err, (uint32_t)evbuffer_get_length(err));
	evbuffer_free(err);
}

/* Backpressure lifted: read again, starting with what is already buffered. */
void
session_resume(struct session *s)
{
	pool_client_unpause(&s->pc);
	if (!s->read_paused)
		return;
	s->read_paused = 0;
	if (s->state == SESSION_CLOSED)
		return;
	if (bufferevent_enable(s->bev, EV_READ) < 0) {
		/* Left paused, it would wait for nothing forever. */
		session_kill(s, SESSION_CLOSE_INTERNAL, "cannot resume reading");
		return;
	}
	/* Frames may already wait in the input: no new bytes will announce
	 * them. Deferred, so a pool waking many sessions is not re-entered. */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	else
		session_read_buffered(s);
}

static void
session_pc_resume(struct pool_client *pc)
{
	struct session *s = (struct session *)((char *)pc - offsetof(struct session, pc));

	session_resume(session_check(s));
}
