/*
 * worker — a thread, its event loop, and everything that loop serves: the
 * worker's listening sockets, sessions, backend pools and counters. The
 * main thread reaches a worker only by activating its stop, abort or reload
 * event (libevent's pthread locking makes that safe), and learns that the
 * worker is done through events the main thread handed it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <sluice/admit.h>
#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/listener.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/prober.h>
#include <sluice/process.h>
#include <sluice/resolve.h>
#include <sluice/session.h>
#include <sluice/upstream.h>
#include <sluice/worker.h>

/* Granularity of queue_timeout and request_timeout. */
#define WORKER_TICK_MS 100

/* A TLS handshake needs some 45 KiB for a moment, an established client
 * some 15 KiB for good: a burst of connections leaves the heap full of
 * holes between long-lived blocks, and glibc only gives back its top. Once
 * connections stop coming and going for a tick, hand the free pages in
 * between back to the system: the RSS then follows the clients, not the
 * past peak (a handshake flood would otherwise keep its memory for good).
 * Never under steady churn, where the holes are about to be reused. */
static void
worker_trim_after_burst(struct worker *w)
{
	uint64_t churn = 2 * w->loop.stats.connections_total - w->loop.stats.connections_active;

	if (churn != w->trim_churn) {
		w->trim_churn = churn;
		w->trim_pending = 1;
	} else if (w->trim_pending) {
		w->trim_pending = 0;
		process_trim_heap();
	}
}

/* A test knob, not a tuning one: with SLUICE_TEST_STALL_FILE=PATH, worker
 * 0 blocks in its tick while PATH exists (at most WORKER_STALL_MAX_MS at a
 * time), a stuck event loop that check_ready's /livez test can make and
 * end. Unset, it costs one test of a pointer per tick. */
#define WORKER_STALL_MAX_MS 60000
static void
worker_test_stall(const struct worker *w)
{
	uint64_t start = clock_ms();

	while (access(w->stall_file, F_OK) == 0 && clock_ms() - start < WORKER_STALL_MAX_MS)
		(void)usleep(20 * 1000);
}

static void
worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t now = loop_clock(&w->loop) / 1000;
	struct pool *p, *next;

	(void)fd;
	(void)what;
	__atomic_store_n(&w->heartbeat_ms, now, __ATOMIC_RELAXED);
	if (w->stall_file != NULL)
		worker_test_stall(w);
	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] == NULL)
			continue;
		pool_tick(w->pools[i], now);
		prober_tick(w->pools[i], now);
		pool_collect(w->pools[i]);
	}
	for (p = TAILQ_FIRST(&w->removed_pools); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		pool_tick(p, now);
		pool_collect(p);
		if (p->users == 0 && pool_closed(p) && !w->loop.stopping) {
			pthread_mutex_lock(&w->loop.structure_lock);
			TAILQ_REMOVE(&w->removed_pools, p, link);
			pthread_mutex_unlock(&w->loop.structure_lock);
			pool_free(p);
			resolve_pool_gone(w->resolve, p);
		}
	}
	worker_trim_after_burst(w);
}

static void
worker_retire_pools(struct worker *w)
{
	struct pool *p;

	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] != NULL)
			pool_retire(w->pools[i]);
	}
	TAILQ_FOREACH(p, &w->removed_pools, link)
		pool_retire(p);
}

static int
worker_pools_closed(const struct worker *w)
{
	const struct pool *p;

	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] != NULL && !pool_closed(w->pools[i]))
			return 0;
	}
	TAILQ_FOREACH(p, &w->removed_pools, link) {
		if (!pool_closed(p))
			return 0;
	}
	return 1;
}

static void
worker_check_drained(struct worker *w)
{
	if (!w->loop.stopping || w->loop.n_sessions > 0)
		return;
	/* Clients are gone: now the backends get their QUIT (SPEC §3). */
	if (!w->retiring) {
		w->retiring = 1;
		worker_retire_pools(w);
	}
	if (worker_pools_closed(w))
		event_base_loopexit(w->loop.base, NULL);
}

static struct worker *
worker_of_loop(struct loop *l)
{
	return (struct worker *)((char *)l - offsetof(struct worker, loop));
}

/* A session or upstream closed (loop_closed). */
static void
worker_loop_closed(struct loop *l)
{
	worker_check_drained(worker_of_loop(l));
}

/* A client on a listener with routes, once its handshake is done
 * (loop_pool_named): by name, as its route may come from the snapshot it
 * was accepted under, older than the pools'. */
static struct pool *
worker_loop_pool_named(struct loop *l, const char *name)
{
	struct worker *w = worker_of_loop(l);

	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] != NULL && strcmp(w->pools[i]->name, name) == 0)
			return w->pools[i];
	}
	return NULL;
}

static const struct loop_ops worker_loop_ops = {
	.closed = worker_loop_closed,
	.pool_named = worker_loop_pool_named,
};

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->loop.stopping)
		return;
	w->loop.stopping = 1;
	/* Closed, not just paused: with SO_REUSEPORT a socket left open would
	 * keep receiving connections that a successor sluice on the same
	 * address should take. */
	pthread_mutex_lock(&w->loop.structure_lock);
	for (unsigned i = 0; i < w->n_listeners; i++)
		listener_free(w->listeners[i]);
	w->n_listeners = 0;
	pthread_mutex_unlock(&w->loop.structure_lock);
	log_info("worker %u: draining %u client connections", w->id, w->loop.n_sessions);
	/* Those still sending their PROXY header have no TLS yet to say QUIT
	 * on: closed like a refusal. */
	admit_abort_all(&w->loop);
	session_shutdown_all(&w->loop);
	worker_check_drained(w);
}

static void
worker_abort_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	w->loop.stopping = 1;
	session_abort_all(&w->loop);
	admit_abort_all(&w->loop);
	event_base_loopexit(w->loop.base, NULL);
}

/* ---- configuration: start-up and reload ------------------------------- */

/* Takes the old pool that serves backend name (NULL when none). */
static struct pool *
worker_take_pool(struct worker *w, const char *name)
{
	for (unsigned i = 0; i < w->n_pools; i++) {
		struct pool *p = w->pools[i];

		if (p != NULL && strcmp(p->name, name) == 0) {
			w->pools[i] = NULL;
			return p;
		}
	}
	return NULL;
}

static bool
worker_backend_named(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (strcmp(cfg->backends[i].name, name) == 0)
			return true;
	}
	return false;
}

/* A backend renamed by the reload (no old pool of its name) takes over the
 * old pool, left without a backend of its name, that shares a server with
 * it: otherwise that server would see the old pool's connections, kept for
 * the clients placed on it, besides the new pool's, more than workers x
 * connections (SPEC §2). */
static struct pool *
worker_take_renamed(struct worker *w, const struct config *next, const struct config_backend *b)
{
	for (unsigned i = 0; i < w->n_pools; i++) {
		struct pool *p = w->pools[i];

		if (p == NULL || worker_backend_named(next, p->name) || !pool_shares_server(p, b))
			continue;
		log_info("backend %s: takes over the connections of backend %s (renamed)", b->name, p->name);
		w->pools[i] = NULL;
		return p;
	}
	return NULL;
}

/* Pools of the new snapshot: the same backend name keeps its pool (and its
 * connections), and so does a renamed one; a backend no longer configured
 * drains once unused. */
static int
worker_apply_pools(struct worker *w, struct config *next)
{
	struct pool **pools = calloc(next->n_backends, sizeof(*pools));

	if (pools == NULL)
		return -1;
	for (size_t i = 0; i < next->n_backends; i++)
		pools[i] = worker_take_pool(w, next->backends[i].name);
	for (size_t i = 0; i < next->n_backends; i++) {
		if (pools[i] == NULL)
			pools[i] = worker_take_renamed(w, next, &next->backends[i]);
	}
	for (size_t i = 0; i < next->n_backends; i++) {
		struct pool *p = pools[i];

		if (p == NULL)
			pools[i] = resolve_pool_new(w->resolve, next, &next->backends[i]);
		else if (resolve_pool_reconfigure(w->resolve, p, next, &next->backends[i]) < 0)
			log_error("backend %s: out of memory applying the new configuration; keeping the old servers",
				  p->name);
	}
	for (unsigned j = 0; j < w->n_pools; j++) {
		struct pool *p = w->pools[j];

		if (p == NULL)
			continue;
		log_info("backend %s: removed from the configuration; draining", p->name);
		p->removed = 1;
		TAILQ_INSERT_TAIL(&w->removed_pools, p, link);
		if (p->users == 0)
			pool_retire(p);
	}
	free(w->pools);
	w->pools = pools;
	w->n_pools = (unsigned)next->n_backends;
	for (unsigned i = 0; i < w->n_pools; i++) {
		if (pools[i] == NULL)
			return -1;
	}
	return 0;
}

static struct listener *
worker_take_listener(struct worker *w, const struct config_addr *addr)
{
	for (unsigned i = 0; i < w->n_listeners; i++) {
		struct listener *l = w->listeners[i];

		if (l != NULL && config_addr_equal(&listener_conf(l)->addr, addr)) {
			w->listeners[i] = NULL;
			return l;
		}
	}
	return NULL;
}

/* Listeners of the new snapshot: an unchanged address keeps its socket (no
 * connection is refused during a reload); fds[i] is the new socket the main
 * thread bound for listener i, or -1 when it is kept. */
static int
worker_apply_listeners(struct worker *w, struct config *next, int *fds)
{
	struct listener **ls = calloc(next->n_listeners, sizeof(*ls));
	unsigned n = 0;
	int rc = 0;

	if (ls == NULL)
		return -1;
	for (size_t i = 0; i < next->n_listeners; i++) {
		const struct config_listener *lc = &next->listeners[i];
		struct pool *p = worker_pool(w, lc->backend, next);
		struct listener *l = worker_take_listener(w, &lc->addr);

		if (p == NULL) {
			/* Its pool could not be made (out of memory, logged). */
			listener_free(l);
			rc = -1;
		} else if (l != NULL) {
			listener_update(l, lc, p);
			ls[n++] = l;
		} else if (fds[i] >= 0) {
			l = listener_new(&w->loop, lc, p, fds[i]);
			fds[i] = -1;
			if (l == NULL)
				rc = -1;
			else
				ls[n++] = l;
			if (l != NULL && w->id == 0)
				log_info("listening on %s (TLS) for backend %s", lc->addr.text, lc->backend_name);
		}
	}
	for (size_t i = 0; i < next->n_listeners; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	for (unsigned i = 0; i < w->n_listeners; i++) {
		struct listener *l = w->listeners[i];

		if (l == NULL)
			continue;
		if (w->id == 0)
			log_info("listener %s: removed from the configuration; closing it and sending QUIT to its clients",
				 listener_conf(l)->addr.text);
		session_shutdown_listener(&w->loop, &listener_conf(l)->addr);
		listener_free(l);
	}
	free(w->listeners);
	w->listeners = ls;
	w->n_listeners = n;
	return rc;
}

/* Takes the reference on next and the descriptors in fds. */
static int
worker_apply(struct worker *w, struct config *next, int *fds)
{
	struct config *old = w->loop.cfg;
	int rc;

	pthread_mutex_lock(&w->loop.structure_lock);
	rc = resolve_configure(w->resolve, next);
	if (worker_apply_pools(w, next) < 0)
		rc = -1;
	if (worker_apply_listeners(w, next, fds) < 0)
		rc = -1;
	w->loop.cfg = next;
	pthread_mutex_unlock(&w->loop.structure_lock);
	if (old != NULL)
		config_unref(old);
	return rc;
}

static void
worker_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct config *next;
	int *fds, ok = 1;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->loop.structure_lock);
	next = w->next_cfg;
	fds = w->next_fds;
	w->next_cfg = NULL;
	w->next_fds = NULL;
	pthread_mutex_unlock(&w->loop.structure_lock);
	if (next != NULL) {
		ok = worker_apply(w, next, fds) == 0;
		if (!ok)
			log_error("worker %u: the new configuration is only partly in force (see above)", w->id);
		free(fds);
	}
	__atomic_store_n(&w->last_reload_ok, ok, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->reloads_applied, 1, __ATOMIC_RELEASE);
	if (w->reload_done_ev != NULL)
		event_active(w->reload_done_ev, EV_TIMEOUT, 0);
}

void
worker_reload(struct worker *w, struct config *next, int *fds)
{
	pthread_mutex_lock(&w->loop.structure_lock);
	w->next_cfg = config_ref(next);
	w->next_fds = fds;
	pthread_mutex_unlock(&w->loop.structure_lock);
	event_active(w->reload_ev, EV_TIMEOUT, 0);
}

static int
worker_make_events(struct worker *w)
{
	struct timeval tick = { 0, WORKER_TICK_MS * 1000 };

	w->tick = event_new(w->loop.base, -1, EV_PERSIST, worker_tick_cb, w);
	w->stop_ev = event_new(w->loop.base, -1, 0, worker_stop_cb, w);
	w->abort_ev = event_new(w->loop.base, -1, 0, worker_abort_cb, w);
	w->reload_ev = event_new(w->loop.base, -1, 0, worker_reload_cb, w);
	if (w->tick == NULL || w->stop_ev == NULL || w->abort_ev == NULL || w->reload_ev == NULL)
		return -1;
	return event_add(w->tick, &tick);
}

/* epoll's changelist: a bufferevent arms its write event when its output
 * fills and disarms it when it drains, often within one loop iteration;
 * the changelist merges those into one epoll_ctl, or none, at the end of
 * the iteration (the cost Envoy PR #183 measured). Its one caveat, fds
 * dup()ed into the same loop, does not arise here. */
static struct event_base *
worker_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

struct worker *
worker_new(unsigned id, struct config *cfg, int *fds, struct event *done_ev,
	   struct event *reload_done_ev)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_error("worker %u: out of memory", id);
		for (size_t i = 0; i < cfg->n_listeners; i++)
			close(fds[i]);
		return NULL;
	}
	w->id = id;
	w->heartbeat_ms = clock_ms();
	w->stall_file = id == 0 ? getenv("SLUICE_TEST_STALL_FILE") : NULL;
	if (w->stall_file != NULL)
		log_warn("SLUICE_TEST_STALL_FILE=%s: worker 0 stops while that file exists (tests only); "
			 "do not use in production", w->stall_file);
	w->done_ev = done_ev;
	w->reload_done_ev = reload_done_ev;
	TAILQ_INIT(&w->removed_pools);
	loop_init(&w->loop, id, &worker_loop_ops);
	w->loop.base = worker_base_new();
	if (w->loop.base != NULL)
		w->resolve = resolve_new(&w->loop);
	if (w->loop.base == NULL || w->resolve == NULL || worker_make_events(w) < 0) {
		log_error("worker %u: cannot create its event loop", id);
		for (size_t i = 0; i < cfg->n_listeners; i++)
			close(fds[i]);
		worker_free(w);
		return NULL;
	}
	if (worker_apply(w, config_ref(cfg), fds) < 0 || w->n_listeners == 0) {
		log_error("worker %u: cannot start (see above)", id);
		worker_free(w);
		return NULL;
	}
	return w;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;

	if (event_base_dispatch(w->loop.base) < 0)
		log_crit("worker %u: event loop failed", w->id);
	/* evdns reports cancelled lookups from the loop: one more turn. */
	if (resolve_stop(w->resolve) && event_base_loop(w->loop.base, EVLOOP_NONBLOCK) < 0)
		log_error("worker %u: event loop failed while stopping its resolver", w->id);
	__atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
	if (w->done_ev != NULL)
		event_active(w->done_ev, EV_TIMEOUT, 0);
	return NULL;
}

int
worker_start(struct worker *w)
{
	int err = pthread_create(&w->thread, NULL, worker_run, w);

	if (err != 0) {
		log_error("worker %u: cannot start its thread: %s", w->id, strerror(err));
		return -1;
	}
	w->started = 1;
	return 0;
}

void
worker_stop(struct worker *w)
{
	event_active(w->stop_ev, EV_TIMEOUT, 0);
}

void
worker_abort(struct worker *w)
{
	event_active(w->abort_ev, EV_TIMEOUT, 0);
}

int
worker_last_reload_ok(struct worker *w)
{
	return __atomic_load_n(&w->last_reload_ok, __ATOMIC_RELAXED);
}

unsigned
worker_reloads_applied(struct worker *w)
{
	return __atomic_load_n(&w->reloads_applied, __ATOMIC_ACQUIRE);
}

int
worker_finished(struct worker *w)
{
	return __atomic_load_n(&w->finished, __ATOMIC_ACQUIRE);
}

void
worker_join(struct worker *w)
{
	if (w->started) {
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
}

static void
worker_free_event(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

void
worker_free(struct worker *w)
{
	struct pool *p;

	/* Tearing down: closing sessions must not start a drain. */
	w->loop.stopping = 0;
	session_abort_all(&w->loop);
	admit_abort_all(&w->loop);
	pthread_mutex_lock(&w->loop.structure_lock);
	for (unsigned i = 0; i < w->n_listeners; i++)
		listener_free(w->listeners[i]);
	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] != NULL)
			pool_free(w->pools[i]);
	}
	while ((p = TAILQ_FIRST(&w->removed_pools)) != NULL) {
		TAILQ_REMOVE(&w->removed_pools, p, link);
		pool_free(p);
	}
	/* After the pools, whose configurations it holds; before the base. */
	resolve_free(w->resolve);
	w->resolve = NULL;
	free(w->listeners);
	free(w->pools);
	w->listeners = NULL;
	w->pools = NULL;
	w->n_listeners = w->n_pools = 0;
	pthread_mutex_unlock(&w->loop.structure_lock);
	if (w->next_cfg != NULL) {
		for (size_t i = 0; i < w->next_cfg->n_listeners; i++) {
			if (w->next_fds[i] >= 0)
				close(w->next_fds[i]);
		}
		free(w->next_fds);
		config_unref(w->next_cfg);
	}
	worker_free_event(w->tick);
	worker_free_event(w->stop_ev);
	worker_free_event(w->abort_ev);
	worker_free_event(w->reload_ev);
	if (w->loop.base != NULL)
		event_base_free(w->loop.base);
	if (w->loop.cfg != NULL)
		config_unref(w->loop.cfg);
	loop_fini(&w->loop);
	free(w);
}

struct pool *
worker_pool(struct worker *w, const struct config_backend *b, const struct config *cfg)
{
	ptrdiff_t i = b - cfg->backends;

	if (i < 0 || (size_t)i >= w->n_pools)
		return NULL;
	return w->pools[i];
}
