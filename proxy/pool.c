/*
 * pool — a worker's persistent connections to one backend, shared by all of
 * the worker's clients. Placement: a client with requests outstanding stays
 * on the connection that carries them (so the backend executes its requests
 * in the order sent); otherwise the connection with the fewest outstanding
 * requests, ties broken round robin. No connection able to take a request:
 * it waits in the pool's queue (ERR BUSY after queue_timeout), or is
 * answered ERR UNAVAILABLE at once when every server is down.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/frame.h>
#include <sluice/log.h>
#include <sluice/pool.h>
#include <sluice/session.h>
#include <sluice/upstream.h>
#include <sluice/worker.h>

/* pending is read by metrics from another thread: relaxed atomic stores.
 * The worker's gauge is kept in step so a scrape needs no pool walk. */
void
pool_pending_add(struct pool *p, int delta)
{
	struct worker *w = p->worker;

	__atomic_store_n(&p->pending, (unsigned)((int)p->pending + delta), __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.requests_pending, (uint64_t)((int64_t)w->stats.requests_pending + delta),
			 __ATOMIC_RELAXED);
}

static void
pool_server_free(struct pool_server *srv)
{
	for (unsigned i = 0; i < srv->n_ups; i++)
		upstream_free(srv->ups[i]);
	free(srv->ups);
	free(srv->addr.text);
	free(srv);
}

static struct pool_server *
pool_server_new(struct pool *p, const struct config_addr *addr)
{
	struct pool_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->pool = p;
	srv->addr = *addr;
	srv->addr.text = strdup(addr->text);
	if (srv->addr.text == NULL) {
		free(srv);
		return NULL;
	}
	return srv;
}

/* Connections of the server that serve (not retiring, not closed). */
static unsigned
pool_server_serving(const struct pool_server *srv)
{
	unsigned n = 0;

	for (unsigned i = 0; i < srv->n_ups; i++)
		n += !upstream_retired(srv->ups[i]);
	return n;
}

/* Opens or retires connections until `want` serve. */
static int
pool_server_resize(struct pool_server *srv, unsigned want)
{
	unsigned have = pool_server_serving(srv);

	for (unsigned i = srv->n_ups; i-- > 0 && have > want;) {
		if (!upstream_retired(srv->ups[i])) {
			upstream_retire(srv->ups[i]);
			have--;
		}
	}
	while (have < want) {
		struct upstream **ups = realloc(srv->ups, (srv->n_ups + 1) * sizeof(*ups));
		struct upstream *u;

		if (ups == NULL)
			return -1;
		srv->ups = ups;
		u = upstream_new(srv->pool, srv, srv->n_ups);
		if (u == NULL)
			return -1;
		srv->ups[srv->n_ups++] = u;
		have++;
	}
	return 0;
}

/* Connections of the configured servers. */
static unsigned
pool_count_ups(const struct pool *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->n_servers; i++)
		n += p->servers[i]->n_ups;
	return n;
}

/* p->all: every upstream of the configured servers, for pool_pick. The
 * array is allocated beforehand, with room for all of them, by callers
 * that must not be left with a list they cannot rebuild (one naming freed
 * connections, or missing new ones). */
static void
pool_set_all(struct pool *p, struct upstream **all)
{
	unsigned k = 0;

	for (unsigned i = 0; i < p->n_servers; i++) {
		for (unsigned j = 0; j < p->servers[i]->n_ups; j++)
			all[k++] = p->servers[i]->ups[j];
	}
	free(p->all);
	p->all = all;
	p->n_all = k;
	p->rr = 0;
}

static void
pool_set_config(struct pool *p, struct config *cfg, const struct config_backend *conf)
{
	struct config *old = p->cfg;

	p->cfg = config_ref(cfg);
	p->conf = conf;
	if (old != NULL)
		config_unref(old);
}

struct pool *
pool_new(struct worker *w, struct config *cfg, const struct config_backend *conf)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		goto oom;
	p->worker = w;
	TAILQ_INIT(&p->waiting);
	TAILQ_INIT(&p->paused);
	TAILQ_INIT(&p->retired);
	p->name = strdup(conf->name);
	if (p->name == NULL)
		goto oom;
	pool_set_config(p, cfg, conf);
	if (pool_reconfigure(p, cfg, conf) < 0)
		goto oom;
	return p;
oom:
	log_error("backend %s: cannot allocate its connection pool: out of memory", conf->name);
	if (p != NULL)
		pool_free(p);
	return NULL;
}

static void
pool_retire_server(struct pool *p, struct pool_server *srv)
{
	log_info("backend %s: server %s removed from the configuration; draining its connections",
		 p->name, srv->addr.text);
	srv->retired = 1;
	for (unsigned i = 0; i < srv->n_ups; i++)
		upstream_retire(srv->ups[i]);
	TAILQ_INSERT_TAIL(&p->retired, srv, link);
}

/* The configured server with this address, marked taken; NULL when new. */
static struct pool_server *
pool_find_server(struct pool *p, const struct config_addr *addr, bool *taken)
{
	for (unsigned i = 0; i < p->n_servers; i++) {
		if (!taken[i] && config_addr_equal(&p->servers[i]->addr, addr)) {
			taken[i] = true;
			return p->servers[i];
		}
	}
	return NULL;
}

/* Builds the new server list aside; on failure the pool is untouched. */
static struct pool_server **
pool_plan_servers(struct pool *p, const struct config_backend *conf, bool *taken)
{
	struct pool_server **next = calloc(conf->n_servers, sizeof(*next));
	bool *fresh = calloc(conf->n_servers, sizeof(*fresh));
	size_t i;

	if (next == NULL || fresh == NULL)
		goto fail;
	for (i = 0; i < conf->n_servers; i++) {
		next[i] = pool_find_server(p, &conf->servers[i].addr, taken);
		if (next[i] == NULL) {
			next[i] = pool_server_new(p, &conf->servers[i].addr);
			fresh[i] = true;
		}
		if (next[i] == NULL)
			goto fail;
	}
	free(fresh);
	return next;
fail:
	for (size_t j = 0; next != NULL && fresh != NULL && j < conf->n_servers; j++) {
		if (fresh[j] && next[j] != NULL)
			pool_server_free(next[j]);
	}
	free(next);
	free(fresh);
	return NULL;
}

int
pool_reconfigure(struct pool *p, struct config *cfg, const struct config_backend *conf)
{
	/* Room for the connections kept and every one that may be opened. */
	struct upstream **all = calloc(pool_count_ups(p) + conf->n_servers * conf->connections + 1,
				       sizeof(*all));
	bool *taken = all ? calloc(p->n_servers + 1, sizeof(*taken)) : NULL;
	struct pool_server **next = taken ? pool_plan_servers(p, conf, taken) : NULL;

	if (next == NULL) {
		free(all);
		free(taken);
		return -1;
	}
	for (unsigned i = 0; i < p->n_servers; i++) {
		if (!taken[i])
			pool_retire_server(p, p->servers[i]);
	}
	free(taken);
	free(p->servers);
	p->servers = next;
	p->n_servers = (unsigned)conf->n_servers;
	pool_set_config(p, cfg, conf);
	for (unsigned i = 0; i < p->n_servers; i++) {
		if (pool_server_resize(p->servers[i], conf->connections) < 0)
			log_error("backend %s: server %s: cannot open all %u connections: out of memory",
				  p->name, p->servers[i]->addr.text, conf->connections);
	}
	pool_set_all(p, all);
	return 0;
}

static void
pool_fail_waiting(struct pool *p, const char *code, const char *message)
{
	struct request *req;

	while ((req = TAILQ_FIRST(&p->waiting)) != NULL) {
		TAILQ_REMOVE(&p->waiting, req, queue_link);
		p->n_waiting--;
		pool_pending_add(p, -1);
		if (req->session != NULL)
			session_note_waiting(req->session, -1);
		session_respond_error(req, code, message);
	}
}

void
pool_free(struct pool *p)
{
	struct pool_server *srv;

	pool_fail_waiting(p, "UNAVAILABLE", "sluice is shutting down");
	for (unsigned i = 0; i < p->n_servers; i++)
		pool_server_free(p->servers[i]);
	while ((srv = TAILQ_FIRST(&p->retired)) != NULL) {
		TAILQ_REMOVE(&p->retired, srv, link);
		pool_server_free(srv);
	}
	free(p->servers);
	free(p->all);
	free(p->name);
	if (p->cfg != NULL)
		config_unref(p->cfg);
	free(p);
}

void
pool_retire(struct pool *p)
{
	struct pool_server *srv;

	for (unsigned i = 0; i < p->n_servers; i++) {
		for (unsigned j = 0; j < p->servers[i]->n_ups; j++)
			upstream_retire(p->servers[i]->ups[j]);
	}
	TAILQ_FOREACH(srv, &p->retired, link) {
		for (unsigned j = 0; j < srv->n_ups; j++)
			upstream_retire(srv->ups[j]);
	}
}

static bool
pool_server_closed(const struct pool_server *srv)
{
	for (unsigned i = 0; i < srv->n_ups; i++) {
		if (srv->ups[i]->state != UPSTREAM_CLOSED)
			return false;
	}
	return true;
}

bool
pool_closed(const struct pool *p)
{
	const struct pool_server *srv;

	for (unsigned i = 0; i < p->n_servers; i++) {
		if (!pool_server_closed(p->servers[i]))
			return false;
	}
	TAILQ_FOREACH(srv, &p->retired, link) {
		if (!pool_server_closed(srv))
			return false;
	}
	return true;
}

/* Frees the server's closed connections; returns how many. */
static unsigned
pool_server_collect(struct pool_server *srv)
{
	unsigned kept = 0, freed = 0;

	for (unsigned i = 0; i < srv->n_ups; i++) {
		struct upstream *u = srv->ups[i];

		if (u->state == UPSTREAM_CLOSED) {
			upstream_free(u);
			freed++;
		} else {
			srv->ups[kept++] = u;
		}
	}
	srv->n_ups = kept;
	return freed;
}

/* Whether any of the server's connections is closed (to collect). */
static bool
pool_server_has_closed(const struct pool_server *srv)
{
	for (unsigned i = 0; i < srv->n_ups; i++) {
		if (srv->ups[i]->state == UPSTREAM_CLOSED)
			return true;
	}
	return false;
}

void
pool_collect(struct pool *p)
{
	struct pool_server *srv, *next;
	struct upstream **all;
	bool closed = false;

	for (srv = TAILQ_FIRST(&p->retired); srv != NULL; srv = next) {
		next = TAILQ_NEXT(srv, link);
		pool_server_collect(srv);
		if (srv->n_ups == 0) {
			/* metrics walks the retired list from another thread */
			pthread_mutex_lock(&p->worker->structure_lock);
			TAILQ_REMOVE(&p->retired, srv, link);
			pthread_mutex_unlock(&p->worker->structure_lock);
			pool_server_free(srv);
		}
	}
	if (p->worker->stopping)
		return;   /* shutting down: pool_closed() wants to see them */
	for (unsigned i = 0; i < p->n_servers; i++)
		closed = closed || pool_server_has_closed(p->servers[i]);
	if (!closed)
		return;
	/* The new list first: p->all must never name a freed connection.
	 * Out of memory, they are freed on a later tick. */
	all = calloc(pool_count_ups(p) + 1, sizeof(*all));
	if (all == NULL) {
		log_error("backend %s: out of memory rebuilding the connection list", p->name);
		return;
	}
	for (unsigned i = 0; i < p->n_servers; i++)
		(void)pool_server_collect(p->servers[i]);
	pool_set_all(p, all);
}

void
pool_use(struct pool *p)
{
	p->users++;
}

void
pool_unuse(struct pool *p)
{
	if (--p->users == 0 && p->removed)
		pool_retire(p);
}

/* Least outstanding among the connections that can take a request. */
static struct upstream *
pool_pick(struct pool *p)
{
	struct upstream *best = NULL;
	unsigned best_i = 0;

	for (unsigned k = 0; k < p->n_all; k++) {
		unsigned i = (p->rr + k) % p->n_all;
		struct upstream *u = p->all[i];

		if (!upstream_available(u))
			continue;
		if (best == NULL || u->outstanding < best->outstanding) {
			best = u;
			best_i = i;
		}
	}
	if (best != NULL)
		p->rr = (best_i + 1) % p->n_all;
	return best;
}

static int
pool_all_down(const struct pool *p)
{
	for (unsigned i = 0; i < p->n_servers; i++) {
		if (!p->servers[i]->down)
			return 0;
	}
	return 1;
}

static void
pool_enqueue(struct pool *p, struct request *req, struct evbuffer *src)
{
	req->buf = evbuffer_new();
	if (req->buf == NULL)
		evbuffer_drain(src, req->len);
	if (req->buf == NULL || frame_move(src, req->buf, req->len) < 0) {
		log_error("backend %s: out of memory queueing a request", p->name);
		pool_pending_add(p, -1);
		session_respond_error(req, "UNAVAILABLE", "sluice is out of memory");
		return;
	}
	req->state = REQUEST_WAITING;
	TAILQ_INSERT_TAIL(&p->waiting, req, queue_link);
	p->n_waiting++;
	session_note_waiting(req->session, 1);
}

struct upstream *
pool_route(struct pool *p, struct request *req)
{
	struct session *s = req->session;
	struct upstream *u = session_sticky(s);

	req->queued_ms = p->worker->now_us / 1000;
	pool_pending_add(p, 1);
	/* The sticky connection takes the request even above its high-water
	 * mark: the session pauses instead, and order is kept. A retiring one
	 * takes nothing new (SPEC §3): the request waits until the earlier
	 * ones are answered, then goes to a live connection. */
	if (u != NULL) {
		if (u->state != UPSTREAM_CONNECTED)
			return NULL;
	} else if (session_waiting(s) > 0) {
		/* Earlier requests of this session wait: this one waits too. */
		return NULL;
	} else if ((u = pool_pick(p)) == NULL) {
		return NULL;
	}
	upstream_enqueue(u, req);
	return u;
}

void
pool_hold(struct pool *p, struct request *req, struct evbuffer *src)
{
	if (pool_all_down(p) && session_sticky(req->session) == NULL) {
		evbuffer_drain(src, req->len);
		pool_pending_add(p, -1);
		session_respond_error(req, "UNAVAILABLE", "no backend server is reachable");
		return;
	}
	pool_enqueue(p, req, src);
}

bool
pool_congested(const struct pool *p, const struct session *s)
{
	struct upstream *u = session_sticky(s);

	if (p->pending >= p->conf->max_pending)
		return true;
	return u != NULL && upstream_congested(u);
}

void
pool_pause(struct pool *p, struct session *s)
{
	session_pause_link(s, &p->paused);
}

static void
pool_wake(struct pool *p)
{
	struct session *s;

	/* session_resume unlinks the session and defers its reading to the
	 * event loop, so none re-joins the list inside this loop. */
	while ((s = TAILQ_FIRST(&p->paused)) != NULL)
		session_resume(s);
}

/* Written in FIFO order; a session with a sticky connection is written to
 * it (or keeps waiting while that connection retires), the others take what
 * pool_pick offers. A session whose first waiting
 * request finds no connection has no sticky one, so its later requests find
 * none either: a session's requests never overtake each other. */
static void
pool_drain_pass(struct pool *p)
{
	struct request *req, *next;
	int exhausted = 0;

	for (req = TAILQ_FIRST(&p->waiting); req != NULL; req = next) {
		struct upstream *u = session_sticky(req->session);

		next = TAILQ_NEXT(req, queue_link);
		if (u != NULL && u->state != UPSTREAM_CONNECTED)
			continue;   /* its session waits for a retiring connection */
		if (u == NULL && !exhausted) {
			u = pool_pick(p);
			exhausted = u == NULL;
		}
		if (u == NULL)
			continue;
		TAILQ_REMOVE(&p->waiting, req, queue_link);
		p->n_waiting--;
		session_note_waiting(req->session, -1);
		upstream_write(u, req, NULL);
	}
}

/* A write that fails the connection reports it (pool_upstream_failed),
 * which drains too: that nested pass would move requests out from under
 * this one's next pointer, so it only asks for one more pass here. */
static void
pool_drain_waiting(struct pool *p)
{
	if (p->placing) {
		p->place_again = 1;
		return;
	}
	p->placing = 1;
	do {
		p->place_again = 0;
		pool_drain_pass(p);
	} while (p->place_again);
	p->placing = 0;
}

void
pool_cancel(struct pool *p, struct request *req)
{
	TAILQ_REMOVE(&p->waiting, req, queue_link);
	p->n_waiting--;
	pool_pending_add(p, -1);
}

void
pool_request_done(struct pool *p)
{
	pool_pending_add(p, -1);
	if (p->pending <= p->conf->max_pending - p->conf->max_pending / 4)
		pool_wake(p);
}

static void
pool_server_update(struct pool_server *srv)
{
	int down = 1, serving = 0;

	for (unsigned i = 0; i < srv->n_ups; i++) {
		struct upstream *u = srv->ups[i];

		/* Down takes a failed connect: a connection the backend
		 * merely closed is re-opened before anyone is refused.
		 * Retiring connections have no say. */
		if (upstream_retired(u))
			continue;
		serving++;
		if (u->state == UPSTREAM_CONNECTED || !u->connect_failed)
			down = 0;
	}
	if (srv->retired || serving == 0)
		return;
	if (down && !srv->down)
		log_warn("backend %s: server %s is down: every connection failed; retrying with backoff",
			 srv->pool->name, srv->addr.text);
	else if (!down && srv->down)
		log_info("backend %s: server %s is up again", srv->pool->name, srv->addr.text);
	srv->down = (unsigned)down;
}

void
pool_upstream_ready(struct pool *p, struct upstream *u)
{
	pool_server_update(u->server);
	pool_drain_waiting(p);
	pool_wake(p);
}

void
pool_upstream_failed(struct pool *p, struct upstream *u)
{
	pool_server_update(u->server);
	if (p->n_waiting > 0 && pool_all_down(p))
		pool_fail_waiting(p, "UNAVAILABLE", "no backend server is reachable");
	/* Sessions whose requests waited for the failed connection have no
	 * sticky one now: their waiting requests may go to any connection,
	 * idle ones included, rather than wait for queue_timeout. */
	pool_drain_waiting(p);
	/* Sessions paused on the failed connection have no sticky one now. */
	pool_wake(p);
}

/* request_timeout, on the connections of removed servers too: a removed
 * server that stops answering must not hold its requests forever. */
static void
pool_tick_upstreams(struct pool *p, uint64_t now_ms)
{
	struct pool_server *srv;

	for (unsigned i = 0; i < p->n_all; i++)
		upstream_tick(p->all[i], now_ms);
	/* Nothing a tick does removes a server from the list: pool_collect
	 * does, later in the worker's tick. */
	TAILQ_FOREACH(srv, &p->retired, link) {
		for (unsigned j = 0; j < srv->n_ups; j++)
			upstream_tick(srv->ups[j], now_ms);
	}
}

void
pool_tick(struct pool *p, uint64_t now_ms)
{
	struct request *req;
	uint64_t limit = p->conf->queue_timeout_ms;

	/* The queue is in arrival order: the oldest expire first. */
	while ((req = TAILQ_FIRST(&p->waiting)) != NULL && now_ms - req->queued_ms >= limit) {
		TAILQ_REMOVE(&p->waiting, req, queue_link);
		p->n_waiting--;
		pool_pending_add(p, -1);
		session_note_waiting(req->session, -1);
		WORKER_STAT_ADD(p->worker, timeouts_queue, 1);
		session_respond_error(req, "BUSY", "no backend connection could take the request within queue_timeout");
	}
	pool_tick_upstreams(p, now_ms);
	pool_wake(p);
}

unsigned
pool_connected(const struct pool *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->n_all; i++)
		n += p->all[i]->state == UPSTREAM_CONNECTED;
	return n;
}
