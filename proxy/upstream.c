/*
 * upstream — one persistent plaintext connection to a backend server.
 *
 *   CONNECTING ─connected─▶ CONNECTED ─retire─▶ RETIRING ─answers done─▶
 *   QUIT_SENT ─QUIT/close/grace─▶ CLOSED (or CONNECTING again when the
 *   backend asked to quit). One grace_timeout, armed when sluice retires
 *   the connection, bounds RETIRING and QUIT_SENT together. Any failure ─▶
 *   BACKOFF ─timer─▶ CONNECTING.
 *
 * Requests go onto the output in the order written and wait in the FIFO;
 * the backend answers in that order, so each response frame belongs to the
 * FIFO's head. A failure answers every written request ERR UNAVAILABLE: it
 * may have reached the backend, so it is never replayed.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/frame.h>
#include <sluice/fstream.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/upstream.h>

#define UPSTREAM_MAGIC 0x55505354u       /* "UPST": catches use after free */
/* Output high/low water: past HIGH the clients feeding this connection
 * pause; below LOW they resume. */
#define UPSTREAM_HIGH_WATER (1024u * 1024u)
#define UPSTREAM_LOW_WATER (256u * 1024u)

static void upstream_connect(struct upstream *u);
static void upstream_read_cb(struct bufferevent *bev, void *arg);
static void upstream_write_cb(struct bufferevent *bev, void *arg);
static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);
static void upstream_sock_read_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_timer_cb(evutil_socket_t fd, short what, void *arg);

/* At every libevent callback's entry: a callback on a freed (or never
 * made) upstream crashes here, saying so, rather than somewhere later. */
static struct upstream *
upstream_check(void *arg)
{
	struct upstream *u = arg;

	if (u->magic != UPSTREAM_MAGIC) {
		log_crit("upstream callback on a freed or corrupt connection %p", arg);
		abort();
	}
	return u;
}

static const char *
upstream_backend(const struct upstream *u)
{
	return u->backend->name;
}

static const char *
upstream_addr(const struct upstream *u)
{
	return u->target->addr.text;
}

const char *
upstream_state_name(enum upstream_state state)
{
	switch (state) {
	case UPSTREAM_CONNECTING:
		return "connecting";
	case UPSTREAM_CONNECTED:
		return "connected";
	case UPSTREAM_RETIRING:
		return "retiring";
	case UPSTREAM_QUIT_SENT:
		return "quit_sent";
	case UPSTREAM_BACKOFF:
		return "backoff";
	case UPSTREAM_CLOSED:
		return "closed";
	}
	return "unknown";
}

/* Every transition goes through here so the per-state gauges stay exact. */
static void
upstream_set_state(struct upstream *u, enum upstream_state state)
{
	struct upstream_server_stats *st = &u->target->stats;

	__atomic_store_n(&st->connections[u->state], st->connections[u->state] - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->connections[state], st->connections[state] + 1, __ATOMIC_RELAXED);
	u->state = state;
}

static void
upstream_count_error(struct upstream *u)
{
	struct upstream_server_stats *st = &u->target->stats;

	__atomic_store_n(&st->errors, st->errors + 1, __ATOMIC_RELAXED);
}

static int
upstream_arm(struct upstream *u, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	if (evtimer_add(u->timer, &tv) == 0)
		return 0;
	log_error("backend %s: server %s: cannot arm timer", upstream_backend(u), upstream_addr(u));
	return -1;
}

/* Only the backoff timer takes a connection out of BACKOFF: when it cannot
 * be armed (libevent's timer heap grows when full, and that can fail), the
 * reconnection is tried at once rather than never. */
static void
upstream_arm_backoff(struct upstream *u, uint64_t ms)
{
	if (upstream_arm(u, ms) < 0)
		event_active(u->timer, EV_TIMEOUT, 0);
}

struct upstream *
upstream_new(struct loop *l, const struct upstream_backend *b, struct upstream_target *t, unsigned index)
{
	struct upstream *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->magic = UPSTREAM_MAGIC;
	u->loop = l;
	u->backend = b;
	u->target = t;
	u->index = index;
	u->state = UPSTREAM_BACKOFF;
	TAILQ_INIT(&u->fifo);
	u->timer = evtimer_new(l->base, upstream_timer_cb, u);
	if (u->timer == NULL) {
		free(u);
		return NULL;
	}
	/* Counted once it exists: upstream_free uncounts it. */
	__atomic_store_n(&t->stats.connections[UPSTREAM_BACKOFF],
			 t->stats.connections[UPSTREAM_BACKOFF] + 1, __ATOMIC_RELAXED);
	upstream_connect(u);
	return u;
}

/* The one way out of the FIFO: the head, answered or failed from here. It
 * is UNLINKED until its answer is handed over, so a failure to hand it
 * over leaves it to be freed, never unlinked twice. */
static struct request *
upstream_pop(struct upstream *u)
{
	struct request *req = TAILQ_FIRST(&u->fifo);

	assert(req != NULL && req->state == REQUEST_WRITTEN && req->upstream == u);
	TAILQ_REMOVE(&u->fifo, req, queue_link);
	u->outstanding--;
	req->state = REQUEST_UNLINKED;
	u->backend->ops->request_left(u, req);
	return req;
}

/* sluice answers a request that left the FIFO. One whose client left is
 * counted as answered, and freed. */
static void
upstream_respond_error(struct upstream *u, struct request *req, enum frame_err_code code, const char *message)
{
	if (req->client == NULL) {
		loop_count_error(u->loop, code);
		request_free(&u->loop->requests, req);
		return;
	}
	req->client->ops->respond_error(req, code, message);
}

static void
upstream_fail_requests(struct upstream *u)
{
	while (!TAILQ_EMPTY(&u->fifo)) {
		struct request *req = upstream_pop(u);

		upstream_respond_error(u, req, FRAME_ERR_UNAVAILABLE,
				       "the backend connection failed after the request was written");
	}
}

static void
upstream_drop_bev(struct upstream *u)
{
	if (u->read_ev != NULL) {
		/* Before the socket closes with the bufferevent. */
		event_free(u->read_ev);
		u->read_ev = NULL;
	}
	if (u->bev != NULL) {
		bufferevent_free(u->bev);
		u->bev = NULL;
	}
	u->congested = 0;
	u->connected_ms = 0;
}

uint64_t
upstream_backoff_ms(unsigned failures, uint64_t random)
{
	unsigned shift = failures > 8 ? 8 : (failures ? failures - 1 : 0);
	uint64_t delay = (uint64_t)UPSTREAM_BACKOFF_BASE_MS << shift;

	if (delay > UPSTREAM_BACKOFF_MAX_MS)
		delay = UPSTREAM_BACKOFF_MAX_MS;
	/* Jitter in [delay/2, delay]: workers and connections that failed
	 * together do not reconnect together. */
	return delay / 2 + random % (delay / 2 + 1);
}

/* A connection that served for a while was a healthy one: failures before
 * it are history, as nginx forgets a server's failures after fail_timeout
 * (10 s by default), so a later failure starts the backoff at 100 ms again
 * instead of the 5 s earned by a start-up outage hours ago. A backend that
 * accepts and hangs up sooner (or flaps within the 5 s cap) keeps its
 * backoff growing. A response resets the count too (upstream_answer). */
unsigned
upstream_failures_carried(unsigned failures, uint64_t up_ms)
{
	return up_ms >= UPSTREAM_STABLE_MS ? 0 : failures;
}

/* How long the connection has been up, 0 when it is not connected. */
static uint64_t
upstream_up_ms(const struct upstream *u)
{
	return u->connected_ms != 0 ? clock_ms() - u->connected_ms : 0;
}

static uint64_t
upstream_next_backoff(struct upstream *u)
{
	return upstream_backoff_ms(u->failures, loop_random(u->loop));
}

static void upstream_closed(struct upstream *u);

static void
upstream_fail(struct upstream *u, const char *reason)
{
	unsigned lost = u->outstanding;
	uint64_t delay;

	assert(u->state != UPSTREAM_CLOSED);
	if ((u->state == UPSTREAM_RETIRING || u->state == UPSTREAM_QUIT_SENT) && !u->reconnect) {
		/* Retired for good: no reconnection. */
		log_info("backend %s: server %s connection %u: %s while retiring; %u written requests answered ERR UNAVAILABLE",
			 upstream_backend(u), upstream_addr(u), u->index, reason, lost);
		upstream_closed(u);
		return;
	}

	upstream_count_error(u);
	u->lost = lost + u->lost_head;
	u->lost_head = 0;
	u->failures = upstream_failures_carried(u->failures, upstream_up_ms(u)) + 1;
	u->connect_failed = u->state == UPSTREAM_CONNECTING;
	delay = upstream_next_backoff(u);
	if (lost > 0 || u->failures == 1)
		log_warn("backend %s: server %s connection %u: %s; %u written requests answered ERR UNAVAILABLE; reconnecting in %llu ms",
			 upstream_backend(u), upstream_addr(u), u->index, reason, lost, (unsigned long long)delay);
	else
		log_debug("backend %s: server %s connection %u: %s; reconnecting in %llu ms",
			  upstream_backend(u), upstream_addr(u), u->index, reason, (unsigned long long)delay);
	upstream_drop_bev(u);
	upstream_fail_requests(u);
	upstream_set_state(u, UPSTREAM_BACKOFF);
	upstream_arm_backoff(u, delay);
	u->backend->ops->failed(u);
}

static void
upstream_connect(struct upstream *u)
{
	const struct config_addr *a = &u->target->addr;

	assert(u->state == UPSTREAM_BACKOFF && u->bev == NULL);
	u->bev = bufferevent_socket_new(u->loop->base, -1,
					BEV_OPT_CLOSE_ON_FREE);
	if (u->bev == NULL) {
		upstream_fail(u, "cannot create a socket bufferevent");
		return;
	}
	bufferevent_setcb(u->bev, upstream_read_cb, upstream_write_cb, upstream_event_cb, u);
	bufferevent_setwatermark(u->bev, EV_WRITE, UPSTREAM_LOW_WATER, 0);
	fstream_cap_reads(u->bev, u->loop->max_read);
	upstream_set_state(u, UPSTREAM_CONNECTING);
	/* The bufferevent connects and writes; reading is upstream_sock_read_cb's,
	 * from the moment the connection is up. */
	if (bufferevent_socket_connect(u->bev, (const struct sockaddr *)&a->ss, (int)a->len) < 0) {
		upstream_fail(u, strerror(errno));
		return;
	}
	upstream_arm(u, u->backend->conf->connect_timeout_ms);
}

void
upstream_free(struct upstream *u)
{
	struct upstream_server_stats *st = &u->target->stats;

	__atomic_store_n(&st->connections[u->state], st->connections[u->state] - 1, __ATOMIC_RELAXED);
	upstream_drop_bev(u);
	upstream_fail_requests(u);
	event_free(u->timer);
	u->magic = 0;
	free(u);
}

bool
upstream_retired(const struct upstream *u)
{
	switch (u->state) {
	case UPSTREAM_RETIRING:
	case UPSTREAM_QUIT_SENT:
		return !u->reconnect;
	case UPSTREAM_CLOSED:
		return true;
	case UPSTREAM_CONNECTING:
	case UPSTREAM_CONNECTED:
	case UPSTREAM_BACKOFF:
		return false;
	}
	return false;
}

bool
upstream_available(const struct upstream *u)
{
	return u->state == UPSTREAM_CONNECTED && !u->congested;
}

bool
upstream_congested(const struct upstream *u)
{
	return u->congested;
}

void
upstream_enqueue(struct upstream *u, struct request *req)
{
	assert(u->state == UPSTREAM_CONNECTED);
	req->state = REQUEST_WRITTEN;
	req->upstream = u;
	req->written_us = u->loop->now_us;
	TAILQ_INSERT_TAIL(&u->fifo, req, queue_link);
	u->outstanding++;
}

/* The bytes always leave src (fstream_move), so the frames behind them stay
 * aligned even when the connection cannot take them: it fails. */
void
upstream_send(struct upstream *u, struct evbuffer *src, size_t len)
{
	struct evbuffer *out;

	/* Its requests were enqueued (CONNECTED) in this same turn. */
	assert(u->bev != NULL);
	out = bufferevent_get_output(u->bev);
	if (fstream_move(src, out, len) < 0) {
		upstream_fail(u, "cannot queue requests: out of memory");
		return;
	}
	if (evbuffer_get_length(out) > UPSTREAM_HIGH_WATER)
		u->congested = 1;
	if (u->state == UPSTREAM_CONNECTED)
		fstream_write_soon(u->bev);
}

void
upstream_write(struct upstream *u, struct request *req)
{
	struct evbuffer *out = bufferevent_get_output(u->bev);
	int ok;

	assert(req->buf != NULL);
	/* Called from wherever a waiting request finds a connection: the
	 * batch clock may be old. */
	loop_clock(u->loop);
	upstream_enqueue(u, req);
	ok = evbuffer_add_buffer(out, req->buf) == 0;
	evbuffer_free(req->buf);
	req->buf = NULL;
	if (!ok) {
		upstream_fail(u, "cannot queue a request: out of memory");
		return;
	}
	if (evbuffer_get_length(out) > UPSTREAM_HIGH_WATER)
		u->congested = 1;
	if (u->state == UPSTREAM_CONNECTED)
		fstream_write_soon(u->bev);
}

static void
upstream_send_quit(struct upstream *u)
{
	/* Only once nothing written is left unanswered. */
	assert(u->state == UPSTREAM_RETIRING && u->outstanding == 0);
	if (frame_add_quit(bufferevent_get_output(u->bev)) < 0) {
		upstream_fail(u, "cannot queue QUIT");
		return;
	}
	upstream_set_state(u, UPSTREAM_QUIT_SENT);
	/* A retirement keeps the deadline it began with (SPEC §3: closed on
	 * the answering frame, the close or the grace timeout, whichever
	 * comes first); a backend-initiated QUIT has none yet. */
	if (!evtimer_pending(u->timer, NULL))
		upstream_arm(u, u->loop->cfg->grace_timeout_ms);
}

/* The connection is done with (QUIT exchanged, closed, or grace over). */
static void
upstream_closed(struct upstream *u)
{
	assert(u->state != UPSTREAM_CLOSED);
	u->failures = upstream_failures_carried(u->failures, upstream_up_ms(u));
	upstream_drop_bev(u);
	upstream_fail_requests(u);
	evtimer_del(u->timer);
	if (u->reconnect) {
		u->reconnect = 0;
		upstream_set_state(u, UPSTREAM_BACKOFF);
		upstream_arm_backoff(u, upstream_next_backoff(u));
		u->backend->ops->failed(u);
		return;
	}
	upstream_set_state(u, UPSTREAM_CLOSED);
	u->backend->ops->failed(u);
	loop_closed(u->loop);
}

void
upstream_retire(struct upstream *u)
{
	switch (u->state) {
	case UPSTREAM_CONNECTING:
	case UPSTREAM_BACKOFF:
		u->reconnect = 0;
		upstream_closed(u);
		return;
	case UPSTREAM_CONNECTED:
		u->reconnect = 0;
		upstream_set_state(u, UPSTREAM_RETIRING);
		/* A backend that stops answering must not hold the connection
		 * (and its requests) forever. */
		upstream_arm(u, u->loop->cfg->grace_timeout_ms);
		if (u->outstanding == 0)
			upstream_send_quit(u);
		return;
	case UPSTREAM_RETIRING:
		/* The backend asked to quit, without a deadline; now sluice
		 * retires it, with one. */
		if (u->reconnect)
			upstream_arm(u, u->loop->cfg->grace_timeout_ms);
		u->reconnect = 0;
		return;
	case UPSTREAM_QUIT_SENT:
		u->reconnect = 0;
		return;
	case UPSTREAM_CLOSED:
		return;
	}
}

/* A QUIT from the backend: it wants to go away. Stop sending to it, let it
 * answer what it has, answer its QUIT, and connect again later. */
static void
upstream_backend_quit(struct upstream *u)
{
	switch (u->state) {
	case UPSTREAM_CONNECTED:
		log_info("backend %s: server %s connection %u: the backend sent QUIT; finishing %u requests, then reconnecting",
			 upstream_backend(u), upstream_addr(u), u->index, u->outstanding);
		upstream_set_state(u, UPSTREAM_RETIRING);
		u->reconnect = 1;
		if (u->outstanding == 0)
			upstream_send_quit(u);
		return;
	case UPSTREAM_RETIRING:
		return;
	case UPSTREAM_QUIT_SENT:
		upstream_closed(u);
		return;
	case UPSTREAM_CONNECTING:
	case UPSTREAM_BACKOFF:
	case UPSTREAM_CLOSED:
		return;
	}
}

/* Consecutive answers to one client, the oldest requests of it, move to
 * its output in one go (see request_client_ops.take_head): a run whose
 * destination is the client. */
static void
upstream_deliver(void *client, struct evbuffer *src, size_t len)
{
	struct request_client *c = client;

	c->ops->deliver(c, src, len);
}

/* The FIFO's head is answered by the len bytes after the run. */
static void
upstream_answer(struct upstream *u, struct fstream_run *run, struct evbuffer *in, uint32_t len)
{
	struct request *req = upstream_pop(u);
	struct request_client *c;

	u->failures = 0;
	if (req->client == NULL) {
		/* Its client left: the response goes nowhere, never elsewhere. */
		fstream_run_flush(run, in);
		evbuffer_drain(in, len);
		request_free(&u->loop->requests, req);
	} else if ((c = req->client->ops->take_head(req, len)) != NULL) {
		fstream_run_add(run, in, c, len);
	} else {
		fstream_run_flush(run, in);
		req->client->ops->respond(req, in, len);
	}
	/* Only wakes sessions (deferred): nothing here answers a request. */
	u->backend->ops->answered(u);
	if (u->state == UPSTREAM_RETIRING && u->outstanding == 0) {
		/* What follows may fail this connection or answer waiting
		 * requests: the run's bytes go first. */
		fstream_run_flush(run, in);
		upstream_send_quit(u);
		/* Sessions that waited for this connection's answers may now
		 * go elsewhere. */
		u->backend->ops->ready(u);
	}
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_check(arg);
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t max = (uint32_t)u->loop->cfg->limits.max_frame_size;
	struct fstream_run run = FSTREAM_RUN_INIT(upstream_deliver);
	struct frame_info fi;
	char reason[128];

	loop_clock(u->loop);
	while (u->bev == bev) {
		switch (fstream_run_peek(&run, in, max, &fi)) {
		case FRAME_NEED_MORE:
			fstream_run_flush(&run, in);
			return;
		case FRAME_INVALID:
			fstream_run_flush(&run, in);
			snprintf(reason, sizeof(reason), "malformed frame from the backend (%s)",
				 frame_error_string(fi.error));
			upstream_fail(u, reason);
			return;
		case FRAME_READY:
			break;
		}
		if (fi.is_quit) {
			fstream_run_flush(&run, in);
			evbuffer_drain(in, fi.total_len);
			upstream_backend_quit(u);
			continue;
		}
		if (TAILQ_EMPTY(&u->fifo)) {
			fstream_run_flush(&run, in);
			upstream_fail(u, "the backend sent a frame with no request outstanding");
			return;
		}
		upstream_answer(u, &run, in, fi.total_len);
	}
}

/* Reads the socket itself, past libevent's 4 KiB (fstream_read), then hands
 * the frames on as libevent's own read callback would. */
static void
upstream_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = upstream_check(arg);

	(void)what;
	switch (fstream_read(fd, bufferevent_get_input(u->bev), u->loop->max_read)) {
	case FSTREAM_READ_OK:
		upstream_read_cb(u->bev, u);
		return;
	case FSTREAM_READ_AGAIN:
		return;
	case FSTREAM_READ_EOF:
		upstream_event_cb(u->bev, BEV_EVENT_READING | BEV_EVENT_EOF, u);
		return;
	case FSTREAM_READ_ERROR:
		upstream_event_cb(u->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, u);
		return;
	case FSTREAM_READ_NOMEM:
		upstream_fail(u, "cannot read: out of memory");
		return;
	case FSTREAM_READ_REFUSED:
		upstream_fail(u, "cannot read: evbuffer refused the data");
		return;
	}
}

static void
upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream *u = upstream_check(arg);

	(void)bev;
	if (u->congested) {
		u->congested = 0;
		u->backend->ops->ready(u);
	}
}

static void
upstream_connected(struct upstream *u)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(u->bev);

	assert(u->state == UPSTREAM_CONNECTING);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_debug("backend %s: TCP_NODELAY: %s", upstream_backend(u), strerror(errno));
	u->read_ev = event_new(u->loop->base, fd, EV_READ | EV_PERSIST, upstream_sock_read_cb, u);
	if (u->read_ev == NULL || event_add(u->read_ev, NULL) < 0) {
		upstream_fail(u, "cannot watch the connection for reading");
		return;
	}
	evtimer_del(u->timer);
	upstream_set_state(u, UPSTREAM_CONNECTED);
	if (u->failures > 0)
		log_info("backend %s: server %s connection %u: connected after %u failed attempts",
			 upstream_backend(u), upstream_addr(u), u->index, u->failures);
	/* failures is reset by the first response, or once the connection
	 * has stayed up UPSTREAM_STABLE_MS (upstream_failures_carried), not
	 * here: a backend that accepts and hangs up at once must still see
	 * the backoff grow. */
	u->connected_ms = clock_ms();
	u->connect_failed = 0;
	u->backend->ops->ready(u);
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream *u = upstream_check(arg);
	char reason[160];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		upstream_connected(u);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (u->state == UPSTREAM_QUIT_SENT) {
		upstream_closed(u);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason), "the backend closed the connection");
	else
		snprintf(reason, sizeof(reason), "%s%s",
			 u->state == UPSTREAM_CONNECTING ? "connect: " : "",
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	upstream_fail(u, reason);
}

static void
upstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = upstream_check(arg);
	char reason[96];

	(void)fd;
	(void)what;
	switch (u->state) {
	case UPSTREAM_CONNECTING:
		LOOP_STAT_ADD(u->loop, timeouts_connect, 1);
		snprintf(reason, sizeof(reason), "connect timed out after %llu ms",
			 (unsigned long long)u->backend->conf->connect_timeout_ms);
		upstream_fail(u, reason);
		return;
	case UPSTREAM_BACKOFF:
		upstream_connect(u);
		return;
	case UPSTREAM_QUIT_SENT:
		log_info("backend %s: server %s connection %u: no answer to QUIT within the grace period; closing",
			 upstream_backend(u), upstream_addr(u), u->index);
		upstream_closed(u);
		return;
	case UPSTREAM_RETIRING:
		/* Only armed when sluice retired it (upstream_retire). */
		log_info("backend %s: server %s connection %u: %u requests still unanswered when the grace period ended; closing",
			 upstream_backend(u), upstream_addr(u), u->index, u->outstanding);
		upstream_closed(u);
		return;
	case UPSTREAM_CONNECTED:
	case UPSTREAM_CLOSED:
		return;
	}
}

void
upstream_timeout(struct upstream *u)
{
	uint64_t limit = u->backend->conf->request_timeout_ms;
	struct request *req;
	char reason[128];

	/* The late response must never be matched to the next request: the
	 * connection is closed and the head answered TIMEOUT. */
	LOOP_STAT_ADD(u->loop, timeouts_request, 1);
	snprintf(reason, sizeof(reason), "no response within request_timeout (%llu ms)",
		 (unsigned long long)limit);
	req = upstream_pop(u);
	upstream_respond_error(u, req, FRAME_ERR_TIMEOUT, "the backend did not answer within request_timeout");
	u->lost_head = 1;
	upstream_fail(u, reason);
}
