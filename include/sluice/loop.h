/*
 * loop — what every object served by one worker's event loop shares: the
 * event base, the clock of the current batch of frames, the counters, the
 * request records' free list, a random source, the configuration snapshot
 * in force and the live sessions. Sessions, pools, upstreams and listeners
 * hold a struct loop *, never the worker that embeds it; the way back up
 * to the worker is the loop's ops.
 */
#ifndef SLUICE_LOOP_H
#define SLUICE_LOOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <sluice/clock.h>
#include <sluice/frame.h>
#include <sluice/histogram.h>
#include <sluice/request.h>
#include <sluice/tls.h>

struct config;
struct event_base;
struct loop;
struct pool;
struct session;

/* How many enum session_close_reason values there are (session.h checks
 * it): connections_closed has a counter for each. */
#define LOOP_CLOSE_REASONS 13

/* Counters: written only by the owning worker, read by anyone with relaxed
 * atomic loads, so the hot path pays no lock and no locked instruction. */
struct loop_stats {
	uint64_t connections_active;
	uint64_t connections_total;
	uint64_t connections_refused;
	uint64_t handshake_failures;
	uint64_t handshakes[2];       /* completed: [0] full, [1] resumed */
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
	uint64_t proxy_protocol_errors; /* PROXY headers bad, cut short or too late */
	uint64_t requests_pending;    /* gauge: waiting + written, all pools */
	uint64_t connections_closed[LOOP_CLOSE_REASONS]; /* by enum session_close_reason */
	uint64_t client_cert_failures[TLS_CERT_FAILURE_COUNT]; /* by enum tls_cert_failure */
	struct histogram duration;    /* request received → response queued */
};

#define LOOP_STAT_ADD(l, field, n) \
	__atomic_store_n(&(l)->stats.field, (l)->stats.field + (uint64_t)(n), __ATOMIC_RELAXED)
#define LOOP_STAT_SUB(l, field, n) \
	__atomic_store_n(&(l)->stats.field, (l)->stats.field - (uint64_t)(n), __ATOMIC_RELAXED)

/* The way up to whoever runs the loop (the worker). */
struct loop_ops {
	/* A session or an upstream closed: the owner may be done draining. */
	void (*closed)(struct loop *l);
	/* The pool that serves backend name under the configuration in
	 * force, or NULL when it has no such backend (listen[].routes). */
	struct pool *(*pool_named)(struct loop *l, const char *name);
};

TAILQ_HEAD(loop_sessions, session);
struct admit_wait;
LIST_HEAD(loop_admitting, admit_wait);

/* Embedded in its worker; everything here belongs to the worker's thread,
 * except what says otherwise. */
struct loop {
	const struct loop_ops *ops;
	struct event_base *base;
	uint64_t now_us;              /* the clock at the start of the current
				       * callback: one read per batch of frames */
	struct config *cfg;           /* the snapshot in force; one reference */
	size_t max_read;              /* SLUICE_MAX_READ: tests split frames everywhere; 0 = libevent's */
	uint64_t rng;                 /* xorshift state for jitter */
	struct request_cache requests; /* request_new's free list */
	struct loop_sessions sessions; /* every live session (session.c links them) */
	unsigned n_sessions;
	struct loop_admitting admitting; /* waiting for a PROXY header (admit.c links them) */
	unsigned stopping:1;          /* graceful shutdown under way */
	/* Held by the worker while it changes its pools or listeners (start,
	 * reload, exit) and by readers walking them from another thread
	 * (metrics). Never taken on the request path. */
	pthread_mutex_t structure_lock;
	struct loop_stats stats;
};

/* Sets up everything but the base and the configuration: ops, the
 * session list, the lock, SLUICE_MAX_READ, the random source (id varies
 * the fallback seed). */
void loop_init(struct loop *l, unsigned id, const struct loop_ops *ops);
/* Frees the request free list and the lock. */
void loop_fini(struct loop *l);

/* Reads the clock into l->now_us: at the top of the callbacks that handle
 * many frames, whose requests then share one timestamp. */
static inline uint64_t
loop_clock(struct loop *l)
{
	return l->now_us = clock_us();
}

uint64_t loop_random(struct loop *l);

/* A session or upstream closed: tells the owner (loop_ops.closed). */
void loop_closed(struct loop *l);
/* loop_ops.pool_named, or NULL when the owner has no pools. */
struct pool *loop_pool_named(struct loop *l, const char *name);

/* sluice answers a request with ERR code: errors_busy, _unavailable or
 * _timeout (a PROTOCOL error is counted as protocol_errors instead). */
void loop_count_error(struct loop *l, enum frame_err_code code);

#endif
