/*
 * probes — /livez from the workers' heartbeats, /readyz from their pools'
 * servers_up counts (pool_server_up decides what up means). The main
 * thread asks; the workers never wait for it.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/pool.h>
#include <sluice/probes.h>
#include <sluice/worker.h>

bool
probes_stuck(uint64_t now_ms, uint64_t beat_ms)
{
	return clock_since(now_ms, beat_ms) > PROBES_STUCK_MS;
}

int
probes_live(struct worker *const *workers, unsigned n_workers, uint64_t now_ms, char *why,
	    size_t len)
{
	for (unsigned i = 0; i < n_workers; i++) {
		struct worker *w = workers[i];
		uint64_t beat;

		if (w == NULL || worker_finished(w))
			continue;
		beat = __atomic_load_n(&w->heartbeat_ms, __ATOMIC_RELAXED);
		if (probes_stuck(now_ms, beat)) {
			snprintf(why, len, "worker %u: event loop stuck for %.1f s", w->id,
				 (double)clock_since(now_ms, beat) / 1000.0);
			return 0;
		}
	}
	return 1;
}

/* Servers up in w's pool for backend name; -1 without such a pool (for
 * a moment during a reload, cfg may name a backend the worker has let
 * go of: no verdict rather than a false "down"). */
static long
probes_servers_up(struct worker *w, const char *name)
{
	long up = -1;

	if (pthread_mutex_lock(&w->loop.structure_lock) != 0)
		return -1;
	for (unsigned i = 0; i < w->n_pools; i++) {
		const struct pool *p = w->pools[i];

		if (p != NULL && strcmp(p->name, name) == 0) {
			up = __atomic_load_n(&p->servers_up, __ATOMIC_RELAXED);
			break;
		}
	}
	(void)pthread_mutex_unlock(&w->loop.structure_lock);
	return up;
}

static int
probes_backend_ready(struct worker *const *workers, unsigned n_workers, const char *name, char *why,
		     size_t len)
{
	for (unsigned i = 0; i < n_workers; i++) {
		if (workers[i] != NULL && probes_servers_up(workers[i], name) == 0) {
			snprintf(why, len, "backend %s: no server up", name);
			return 0;
		}
	}
	return 1;
}

int
probes_ready(struct worker *const *workers, unsigned n_workers, const struct config *cfg, char *why,
	     size_t len)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *lc = &cfg->listeners[i];

		if (!probes_backend_ready(workers, n_workers, lc->backend_name, why, len))
			return 0;
		for (size_t r = 0; r < lc->n_routes; r++) {
			if (!probes_backend_ready(workers, n_workers, lc->routes[r].backend_name, why, len))
				return 0;
		}
	}
	return 1;
}
