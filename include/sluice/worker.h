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

#include <sluice/clock.h>
#include <sluice/histogram.h>
#include <sluice/pool.h>
#include <sluice/request.h>
#include <sluice/session.h>
#include <sluice/tls.h>

struct config;
struct config_backend;
struct bufferevent;
struct event;
struct event_base;
struct listener;

/* Counters: written only by the owning worker, read by anyone with relaxed
 * atomic loads, so the hot path pays no lock and no locked instruction. */
struct worker_stats {
	uint64_t connections_active;
	uint64_t connections_total;
	uint64_t connections_refused;
	uint64_t handshake_failures;
	uint64_t frames_received;
	uint64_t frames_sent;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t protocol_errors;
	uint64_t errors_busy;
	uint64_t errors_unavailable;
	uint64_t errors_timeout;
	uint64_t timeouts_handshake;
	uint64_t timeouts_idle;
	uint64_t timeouts_connect;
	uint64_t timeouts_queue;      /* the same event as errors_busy */
	uint64_t timeouts_request;    /* the same event as errors_timeout */
	uint64_t timeouts_drain;      /* closing clients cut off with output unread */
	uint64_t requests_pending;    /* gauge: waiting + written, all pools */
	uint64_t connections_closed[SESSION_CLOSE_COUNT]; /* by enum session_close_reason */
	uint64_t client_cert_failures[TLS_CERT_FAILURE_COUNT]; /* by enum tls_cert_failure */
	struct histogram duration; /* request received → response queued */
};

#define WORKER_STAT_ADD(w, field, n) \
	__atomic_store_n(&(w)->stats.field, (w)->stats.field + (uint64_t)(n), __ATOMIC_RELAXED)
#define WORKER_STAT_SUB(w, field, n) \
	__atomic_store_n(&(w)->stats.field, (w)->stats.field - (uint64_t)(n), __ATOMIC_RELAXED)

struct worker {
	unsigned id;
	struct event_base *base;
	pthread_t thread;
	unsigned started:1;
	int finished;                 /* atomic: the loop has ended */
	unsigned stopping:1;          /* graceful shutdown under way */
	unsigned retiring:1;          /* clients gone; backends being sent QUIT */
	struct config *cfg;           /* the snapshot in force; one reference */
	struct listener **listeners;  /* one per cfg->listeners entry */
	unsigned n_listeners;
	struct pool **pools;          /* one per cfg->backends entry, same index */
	unsigned n_pools;
	struct pool_list removed_pools; /* backends a reload removed, draining */
	struct session_list sessions; /* every live session (session.c links them) */
	unsigned n_sessions;
	struct event *tick;           /* periodic timeouts */
	struct event *stop_ev;        /* worker_stop from another thread */
	struct event *abort_ev;       /* worker_abort from another thread */
	struct event *reload_ev;      /* worker_reload from another thread */
	struct event *done_ev;        /* the main thread's: fired when this worker exits */
	struct event *reload_done_ev; /* the main thread's: fired after each reload */
	struct config *next_cfg;      /* handed over by worker_reload (structure_lock) */
	int *next_fds;
	unsigned reloads_applied;     /* atomic: worker_reload calls done */
	int last_reload_ok;           /* atomic: the last one applied fully */
	struct request *free_requests; /* request_new's cache, linked by queue_link */
	unsigned n_free_requests;
	uint64_t rng;                 /* xorshift state for jitter */
	uint64_t now_us;              /* the clock at the start of the current
				       * callback: one read per batch of frames */
	size_t max_read;              /* SLUICE_MAX_READ: tests split frames everywhere; 0 = libevent's */
	struct worker_stats stats;
	uint64_t trim_churn;          /* accepts + closes at the last tick */
	unsigned trim_pending:1;      /* connections came or went since the last trim */
	/* Held by the worker while it changes its pools or listeners (start,
	 * reload, exit) and by readers walking them from another thread
	 * (metrics). Never taken on the request path. */
	pthread_mutex_t structure_lock;
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
/* A session or upstream closed: the worker may be done draining. */
void worker_check_drained(struct worker *w);
uint64_t worker_random(struct worker *w);
/* Data was just queued on bev's output: write it in this turn of the event
 * loop rather than the next one (see worker.c). */
void worker_write_soon(struct bufferevent *bev);
/* OpenSSL holds decrypted-to-be records of bev that no readiness event will
 * announce: read them in this turn of the loop. */
void worker_read_soon(struct bufferevent *bev);

/* Reads the clock into w->now_us: at the top of the callbacks that handle
 * many frames, whose requests then share one timestamp. */
static inline uint64_t
worker_clock(struct worker *w)
{
	return w->now_us = clock_us();
}

#endif
