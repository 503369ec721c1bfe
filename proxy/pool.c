/*
 * pool — a worker's persistent connections to one backend, shared by all of
 * the worker's clients. Placement: a client with requests outstanding stays
 * on the connection that carries them (so the backend executes its requests
 * in the order sent); otherwise the connection with the fewest outstanding
 * requests, ties broken round robin. No connection able to take a request:
 * it waits in the pool's queue (ERR BUSY after queue_timeout), or is
 * answered ERR UNAVAILABLE at once when every server is down.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/fstream.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/upstream.h>

static void pool_upstream_ready(struct upstream *u);
static void pool_upstream_failed(struct upstream *u);
static void pool_request_left(struct upstream *u, struct request *req);
static void pool_request_answered(struct upstream *u);

/* How its connections report to the pool. */
static const struct upstream_ops pool_upstream_ops = {
	.ready = pool_upstream_ready,
	.failed = pool_upstream_failed,
	.request_left = pool_request_left,
	.answered = pool_request_answered,
};

/* Every change to pending goes through here: it is read by metrics from
 * another thread, so relaxed atomic stores. The worker's gauge is kept in
 * step so a scrape needs no pool walk. */
static void
pool_pending_add(struct pool *p, int delta)
{
	struct loop *l = p->loop;

	__atomic_store_n(&p->pending, (unsigned)((int)p->pending + delta), __ATOMIC_RELAXED);
	__atomic_store_n(&l->stats.requests_pending, (uint64_t)((int64_t)l->stats.requests_pending + delta),
			 __ATOMIC_RELAXED);
}

void
pool_client_init(struct pool_client *pc, const struct request_client_ops *rops,
		 const struct pool_client_ops *ops)
{
	memset(pc, 0, sizeof(*pc));
	pc->rc.ops = rops;
	pc->ops = ops;
}

void
pool_client_unpause(struct pool_client *pc)
{
	if (pc->paused_on == NULL)
		return;
	TAILQ_REMOVE(pc->paused_on, pc, pause_link);
	pc->paused_on = NULL;
}

/* A written request left its connection's FIFO (answered or failed): the
 * client may stick to another connection once none is left. */
static void
pool_client_unstick(struct pool_client *pc)
{
	assert(pc->n_sticky > 0);
	if (--pc->n_sticky == 0)
		pc->sticky = NULL;
}

void
pool_client_reset(struct pool_client *pc)
{
	pool_client_unpause(pc);
	pc->sticky = NULL;
	pc->n_sticky = 0;
	pc->n_waiting = 0;
}

static void
pool_client_stick(struct pool_client *pc, struct upstream *u)
{
	assert(pc->sticky == NULL || pc->sticky == u);
	pc->sticky = u;
	pc->n_sticky++;
}

static void
pool_server_free(struct pool_server *srv)
{
	for (unsigned i = 0; i < srv->n_ups; i++)
		upstream_free(srv->ups[i]);
	free(srv->ups);
	free(srv->target.addr.text);
	free(srv);
}

static struct pool_server *
pool_server_new(struct pool *p, const struct config_addr *addr)
{
	struct pool_server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->pool = p;
	srv->target.addr = *addr;
	srv->target.addr.text = strdup(addr->text);
	if (srv->target.addr.text == NULL) {
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
		u = upstream_new(srv->pool->loop, &srv->pool->backend, &srv->target, srv->n_ups);
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
	p->backend.conf = conf;
	if (old != NULL)
		config_unref(old);
}

/* After any change to what pool_server_up looks at: /readyz reads the
 * count from another thread. */
static void
pool_publish_up(struct pool *p)
{
	unsigned up = 0;

	for (unsigned i = 0; i < p->n_servers; i++)
		up += pool_server_up(p->servers[i]);
	__atomic_store_n(&p->servers_up, up, __ATOMIC_RELAXED);
}

struct pool *
pool_new(struct loop *l, struct config *cfg, const struct config_backend *conf)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		goto oom;
	p->loop = l;
	TAILQ_INIT(&p->waiting);
	TAILQ_INIT(&p->paused);
	TAILQ_INIT(&p->retired);
	p->name = strdup(conf->name);
	if (p->name == NULL)
		goto oom;
	p->backend.ops = &pool_upstream_ops;
	p->backend.name = p->name;
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
		 p->name, srv->target.addr.text);
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
		if (!taken[i] && config_addr_equal(&p->servers[i]->target.addr, addr)) {
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
	/* No server at all is a backend whose names resolve to nothing yet. */
	struct pool_server **next = calloc(conf->n_servers + 1, sizeof(*next));
	bool *fresh = calloc(conf->n_servers + 1, sizeof(*fresh));
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

bool
pool_shares_server(const struct pool *p, const struct config_backend *conf)
{
	for (unsigned i = 0; i < p->n_servers; i++) {
		for (size_t j = 0; j < conf->n_servers; j++) {
			if (config_addr_equal(&p->servers[i]->target.addr, &conf->servers[j].addr))
				return true;
		}
	}
	return false;
}

int
pool_reconfigure(struct pool *p, struct config *cfg, const struct config_backend *conf)
{
	/* A renamed backend keeps its pool (worker.c): logs and metrics
	 * follow the new name. Room in all for the connections kept and
	 * every one that may be opened. */
	bool renamed = strcmp(p->name, conf->name) != 0;
	char *name = renamed ? strdup(conf->name) : NULL;
	struct upstream **all = renamed && name == NULL ? NULL :
		calloc(pool_count_ups(p) + conf->n_servers * conf->connections + 1, sizeof(*all));
	bool *taken = all ? calloc(p->n_servers + 1, sizeof(*taken)) : NULL;
	struct pool_server **next = taken ? pool_plan_servers(p, conf, taken) : NULL;

	if (next == NULL) {
		free(name);
		free(all);
		free(taken);
		return -1;
	}
	if (name != NULL) {
		free(p->name);
		p->name = name;
		p->backend.name = name;
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
				  p->name, p->servers[i]->target.addr.text, conf->connections);
	}
	pool_set_all(p, all);
	pool_publish_up(p);
	return 0;
}

/* The one way out of the wait queue. The request is UNLINKED until it is
 * written or answered: if answering it fails, the client's teardown only
 * frees it (it must not be unlinked or uncounted twice). */
static void
pool_unlink_waiting(struct pool *p, struct request *req)
{
	assert(req->state == REQUEST_WAITING);
	TAILQ_REMOVE(&p->waiting, req, queue_link);
	p->n_waiting--;
	assert(req->client != NULL && pool_client_of(req->client)->n_waiting > 0);
	pool_client_of(req->client)->n_waiting--;
	req->state = REQUEST_UNLINKED;
}

/* sluice answers a waiting request itself: it leaves the pool. */
static void
pool_answer_waiting(struct pool *p, struct request *req, enum frame_err_code code, const char *message)
{
	pool_unlink_waiting(p, req);
	pool_pending_add(p, -1);
	req->client->ops->respond_error(req, code, message);
}

static void
pool_fail_waiting(struct pool *p, enum frame_err_code code, const char *message)
{
	struct request *req;

	while ((req = TAILQ_FIRST(&p->waiting)) != NULL)
		pool_answer_waiting(p, req, code, message);
}

void
pool_free(struct pool *p)
{
	struct pool_server *srv;

	pool_fail_waiting(p, FRAME_ERR_UNAVAILABLE, "sluice is shutting down");
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
			pthread_mutex_lock(&p->loop->structure_lock);
			TAILQ_REMOVE(&p->retired, srv, link);
			pthread_mutex_unlock(&p->loop->structure_lock);
			pool_server_free(srv);
		}
	}
	if (p->loop->stopping)
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
	return __atomic_load_n(&p->servers_up, __ATOMIC_RELAXED) == 0;
}

/* Into the wait queue; the frame's bytes leave src for req->buf. */
static void
pool_enqueue(struct pool *p, struct request *req, struct evbuffer *src)
{
	req->buf = evbuffer_new();
	if (req->buf == NULL)
		evbuffer_drain(src, req->len);
	if (req->buf == NULL || fstream_move(src, req->buf, req->len) < 0) {
		log_error("backend %s: out of memory queueing a request", p->name);
		pool_pending_add(p, -1);
		req->state = REQUEST_UNLINKED;
		req->client->ops->respond_error(req, FRAME_ERR_UNAVAILABLE, "sluice is out of memory");
		return;
	}
	req->state = REQUEST_WAITING;
	TAILQ_INSERT_TAIL(&p->waiting, req, queue_link);
	p->n_waiting++;
	pool_client_of(req->client)->n_waiting++;
}

/* The connection req may go to now, or NULL: it must wait. */
static struct upstream *
pool_route(struct pool *p, const struct pool_client *pc)
{
	struct upstream *u = pc->sticky;

	/* The sticky connection takes the request even above its high-water
	 * mark: the client pauses instead, and order is kept. A retiring one
	 * takes nothing new (SPEC §3): the request waits until the earlier
	 * ones are answered, then goes to a live connection. */
	if (u != NULL)
		return u->state == UPSTREAM_CONNECTED ? u : NULL;
	/* Earlier requests of this client wait: this one waits too. */
	if (pc->n_waiting > 0)
		return NULL;
	return pool_pick(p);
}

void
pool_run_send(void *upstream, struct evbuffer *src, size_t len)
{
	upstream_send(upstream, src, len);
}

void
pool_place(struct pool *p, struct request *req, struct evbuffer *src, struct fstream_run *run)
{
	struct pool_client *pc = pool_client_of(req->client);
	struct upstream *u;

	assert(pc != NULL);
	req->queued_ms = p->loop->now_us / 1000;
	pool_pending_add(p, 1);
	u = pool_route(p, pc);
	if (u != NULL) {
		/* Before the enqueue: the bytes of the requests already in
		 * another connection's FIFO go first. */
		fstream_run_add(run, src, u, req->len);
		upstream_enqueue(u, req);
		pool_client_stick(pc, u);
		return;
	}
	/* Queued or refused: its bytes leave from the front, after the run's. */
	fstream_run_flush(run, src);
	if (pool_all_down(p) && pc->sticky == NULL) {
		evbuffer_drain(src, req->len);
		pool_pending_add(p, -1);
		req->state = REQUEST_UNLINKED;
		req->client->ops->respond_error(req, FRAME_ERR_UNAVAILABLE, "no backend server is reachable");
		return;
	}
	pool_enqueue(p, req, src);
}

/* A connection with nothing outstanding that takes requests. */
static bool
pool_has_idle(const struct pool *p)
{
	for (unsigned i = 0; i < p->n_all; i++) {
		if (upstream_available(p->all[i]) && p->all[i]->outstanding == 0)
			return true;
	}
	return false;
}

bool
pool_congested(const struct pool *p, const struct pool_client *pc)
{
	if (pc->sticky != NULL && upstream_congested(pc->sticky))
		return true;
	if (p->pending < p->conf->max_pending)
		return false;
	/* max_pending reached, most likely by clients that pipeline without
	 * pause: one with nothing in the pool still gets an idle connection
	 * (pending exceeds max_pending by at most one per connection). */
	return pool_client_outstanding(pc) > 0 || !pool_has_idle(p);
}

void
pool_pause(struct pool *p, struct pool_client *pc)
{
	if (pc->paused_on != NULL)
		return;
	TAILQ_INSERT_TAIL(&p->paused, pc, pause_link);
	pc->paused_on = &p->paused;
}

static void
pool_resume(struct pool_client *pc)
{
	pool_client_unpause(pc);
	pc->ops->resume(pc);
}

/* Resumed clients read in the order resumed (deferred callbacks), and the
 * first to read takes the room there is: clients with nothing in the pool
 * go first, so one that pipelines without pause cannot refill the pool
 * ahead of them every time it drains. Resuming defers the reading to the
 * event loop, so none re-joins the list inside this function. */
static void
pool_wake(struct pool *p)
{
	struct pool_client *pc, *next;

	for (pc = TAILQ_FIRST(&p->paused); pc != NULL; pc = next) {
		next = TAILQ_NEXT(pc, pause_link);
		if (pool_client_outstanding(pc) == 0)
			pool_resume(pc);
	}
	while ((pc = TAILQ_FIRST(&p->paused)) != NULL)
		pool_resume(pc);
}

/* Written in FIFO order; a client with a sticky connection is written to
 * it (or keeps waiting while that connection retires), the others take what
 * pool_pick offers. A client whose first waiting request finds no
 * connection has no sticky one, so its later requests find none either: a
 * client's requests never overtake each other. */
static void
pool_drain_pass(struct pool *p)
{
	struct request *req, *next;
	int exhausted = 0;

	for (req = TAILQ_FIRST(&p->waiting); req != NULL; req = next) {
		struct pool_client *pc = pool_client_of(req->client);
		struct upstream *u = pc->sticky;

		next = TAILQ_NEXT(req, queue_link);
		if (u != NULL && u->state != UPSTREAM_CONNECTED)
			continue;   /* its client waits for a retiring connection */
		if (u == NULL && !exhausted) {
			u = pool_pick(p);
			exhausted = u == NULL;
		}
		if (u == NULL)
			continue;
		pool_unlink_waiting(p, req);
		pool_client_stick(pc, u);
		upstream_write(u, req);
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
	pool_unlink_waiting(p, req);
	pool_pending_add(p, -1);
}

/* The pool whose backend record u points at. */
static struct pool *
pool_of(const struct upstream *u)
{
	return (struct pool *)(void *)((const char *)u->backend - offsetof(struct pool, backend));
}

static struct pool_server *
pool_server_of(const struct upstream *u)
{
	return (struct pool_server *)(void *)((char *)u->target - offsetof(struct pool_server, target));
}

/* upstream_ops.request_left */
static void
pool_request_left(struct upstream *u, struct request *req)
{
	if (req->client != NULL)
		pool_client_unstick(pool_client_of(req->client));
	pool_pending_add(pool_of(u), -1);
}

/* upstream_ops.answered: the pool has room again below three quarters of
 * max_pending. */
static void
pool_request_answered(struct upstream *u)
{
	struct pool *p = pool_of(u);

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
			 srv->pool->name, srv->target.addr.text);
	else if (!down && srv->down)
		log_info("backend %s: server %s is up again", srv->pool->name, srv->target.addr.text);
	srv->down = (unsigned)down;
	pool_publish_up(srv->pool);
}

/* upstream_ops.ready: state changes that may let queued work proceed. */
static void
pool_upstream_ready(struct upstream *u)
{
	struct pool *p = pool_of(u);

	pool_server_update(pool_server_of(u));
	pool_drain_waiting(p);
	pool_wake(p);
}

/* upstream_ops.failed */
static void
pool_upstream_failed(struct upstream *u)
{
	struct pool *p = pool_of(u);

	pool_server_update(pool_server_of(u));
	if (p->n_waiting > 0 && pool_all_down(p))
		pool_fail_waiting(p, FRAME_ERR_UNAVAILABLE, "no backend server is reachable");
	/* Sessions whose requests waited for the failed connection have no
	 * sticky one now: their waiting requests may go to any connection,
	 * idle ones included, rather than wait for queue_timeout. */
	pool_drain_waiting(p);
	/* Sessions paused on the failed connection have no sticky one now. */
	pool_wake(p);
}

/* request_timeout: the head of u's FIFO is its oldest written request. A
 * request written during this tick (the tick's own timeouts move waiting
 * requests onto connections) is younger than now_ms: clock_since, not a
 * difference that wraps. */
static void
pool_tick_upstream(struct pool *p, struct upstream *u, uint64_t now_ms)
{
	struct request *req = TAILQ_FIRST(&u->fifo);

	if (req != NULL && clock_since(now_ms, req->written_us / 1000) >= p->conf->request_timeout_ms)
		upstream_timeout(u);
}

/* On the connections of removed servers too: a removed server that stops
 * answering must not hold its requests forever. */
static void
pool_tick_upstreams(struct pool *p, uint64_t now_ms)
{
	struct pool_server *srv;

	for (unsigned i = 0; i < p->n_all; i++)
		pool_tick_upstream(p, p->all[i], now_ms);
	/* Nothing a tick does removes a server from the list: pool_collect
	 * does, later in the worker's tick. */
	TAILQ_FOREACH(srv, &p->retired, link) {
		for (unsigned j = 0; j < srv->n_ups; j++)
			pool_tick_upstream(p, srv->ups[j], now_ms);
	}
}

/* req waited queue_timeout: ERR BUSY, and so do the client's later
 * waiting requests, which would otherwise be written after it was refused
 * (its r2 executed while r1 was not: SPEC §1 execution order). They are
 * behind req in the queue, which is in arrival order. */
static void
pool_expire(struct pool *p, struct request *req)
{
	static const char why[] = "no backend connection could take the request within queue_timeout";
	struct pool_client *pc = pool_client_of(req->client);
	struct request *next;

	for (; req != NULL && pc->n_waiting > 0; req = next) {
		next = TAILQ_NEXT(req, queue_link);
		if (req->client != &pc->rc)
			continue;
		LOOP_STAT_ADD(p->loop, timeouts_queue, 1);
		pool_answer_waiting(p, req, FRAME_ERR_BUSY, why);
	}
}

void
pool_tick(struct pool *p, uint64_t now_ms)
{
	struct request *req;
	uint64_t limit = p->conf->queue_timeout_ms;

	/* The queue is in arrival order: the oldest expire first. */
	while ((req = TAILQ_FIRST(&p->waiting)) != NULL && clock_since(now_ms, req->queued_ms) >= limit)
		pool_expire(p, req);
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
