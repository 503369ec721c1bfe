/*
 * worker — one thread with its own event loop, listeners, sessions, backend
 * pools and counters. Nothing on the request path is shared with another
 * worker; the main thread talks to a worker only through worker_stop and
 * worker_abort, which are safe to call from any thread.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/loop.h>
#include <sluice/pool.h>

struct config;
struct config_backend;
struct event;
struct event_base;
struct listener;
struct resolve;

struct worker {
	struct loop loop;             /* what its sessions, pools and upstreams share */
	unsigned id;
	pthread_t thread;
	unsigned started:1;
	int finished;                 /* atomic: the loop has ended */
	unsigned retiring:1;          /* clients gone; backends being sent QUIT */
	struct listener **listeners;  /* one per cfg->listeners entry */
	unsigned n_listeners;
	struct pool **pools;          /* one per cfg->backends entry, same index */
	unsigned n_pools;
	struct pool_list removed_pools; /* backends a reload removed, draining */
	struct resolve *resolve;      /* looks up servers given by name (resolve.h) */
	struct event *tick;           /* periodic timeouts */
	uint64_t heartbeat_ms;        /* atomic: clock_ms() at its last tick, for /livez */
	const char *stall_file;       /* SLUICE_TEST_STALL_FILE (worker 0), or NULL */
	struct event *stop_ev;        /* worker_stop from another thread */
	struct event *abort_ev;       /* worker_abort from another thread */
	struct event *reload_ev;      /* worker_reload from another thread */
	struct event *done_ev;        /* the main thread's: fired when this worker exits */
	struct event *reload_done_ev; /* the main thread's: fired after each reload */
	struct config *next_cfg;      /* handed over by worker_reload (structure_lock) */
	int *next_fds;
	unsigned reloads_applied;     /* atomic: worker_reload calls done */
	int last_reload_ok;           /* atomic: the last one applied fully */
	uint64_t trim_churn;          /* accepts + closes at the last tick */
	unsigned trim_pending:1;      /* connections came or went since the last trim */
};

/* Creates the worker's event loop, serves its listening sockets (fds[i],
 * bound by the caller for cfg->listeners[i]; consumed even on failure) and
 * connects its pools. done_ev (may be NULL) is made active when the
 * worker's loop ends, reload_done_ev after each reload. Takes a reference
 * on cfg. NULL on failure, with the reason logged. */
struct worker *worker_new(unsigned id, struct config *cfg, int *fds, struct event *done_ev,
			  struct event *reload_done_ev);
int worker_start(struct worker *w);
/* Graceful: stop accepting, QUIT every client and backend, exit when done. */
void worker_stop(struct worker *w);
/* Immediate: close everything now. */
void worker_abort(struct worker *w);
/* Applies a validated snapshot in the worker's thread (any thread may
 * call): fds is a malloc'd array, for each of next's listeners a freshly
 * bound socket or -1 when the worker already serves that address; the
 * worker owns it from here on. reload_done_ev fires when it is applied. */
void worker_reload(struct worker *w, struct config *next, int *fds);
/* How many worker_reload calls the worker has applied (any thread). */
unsigned worker_reloads_applied(struct worker *w);
/* Whether the last reload applied completely (read after
 * worker_reloads_applied shows it done). */
int worker_last_reload_ok(struct worker *w);
/* Whether the worker's loop has ended (any thread). */
int worker_finished(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* The worker's pool for backend b of snapshot cfg (same index). */
struct pool *worker_pool(struct worker *w, const struct config_backend *b, const struct config *cfg);
#endif
