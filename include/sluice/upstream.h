/*
 * upstream — one persistent plaintext connection to a backend server.
 * Requests are pipelined onto its output and remembered in a FIFO; each
 * response frame the backend sends answers the FIFO's head. When the
 * connection fails, requests already written are answered ERR UNAVAILABLE
 * (never replayed) and the connection is re-opened with backoff and jitter.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/config_types.h>
#include <sluice/request.h>

struct bufferevent;
struct event;
struct evbuffer;
struct loop;
struct upstream;

enum upstream_state {
	UPSTREAM_CONNECTING,  /* TCP connect under way (connect_timeout) */
	UPSTREAM_CONNECTED,   /* takes requests */
	UPSTREAM_RETIRING,    /* takes no more; waits for its answers, then QUIT */
	UPSTREAM_QUIT_SENT,   /* QUIT written; waits for the backend's QUIT or close */
	UPSTREAM_BACKOFF,     /* failed; reconnects when the timer fires */
	UPSTREAM_CLOSED,      /* retired for good; the pool may free it */
};
#define UPSTREAM_STATE_COUNT 6

/* The way up from a connection to its owner (the pool). */
struct upstream_ops {
	/* It can take requests again: connected, its output drained below
	 * the low-water mark, or retiring with its last answer in. */
	void (*ready)(struct upstream *u);
	/* It failed (BACKOFF) or closed: what waited for it may go elsewhere. */
	void (*failed)(struct upstream *u);
	/* req left the FIFO, before it is answered (by the backend or by
	 * sluice): it is no longer pending, and its client may stick to
	 * another connection once it has none here. */
	void (*request_left)(struct upstream *u, struct request *req);
	/* The backend's answer to a request was handed over. */
	void (*answered)(struct upstream *u);
};

/* What the connections to one backend share, embedded in their owner (the
 * pool), which keeps name and conf current across reloads. */
struct upstream_backend {
	const struct upstream_ops *ops;
	const char *name;                   /* for logs; a reload may rename the backend */
	const struct config_backend *conf;  /* connect_timeout, request_timeout */
};

/* Per server counters, written by the owning worker, read by metrics. */
struct upstream_server_stats {
	uint64_t connections[UPSTREAM_STATE_COUNT]; /* gauge per upstream_state */
	uint64_t errors;                /* connection failures, timeouts, bad frames */
};

/* The server a connection goes to, embedded in the owner's record of that
 * server, which outlives its connections: its address (an own copy, so a
 * retired server outlives the snapshot it came from) and the counters its
 * connections keep. */
struct upstream_target {
	struct config_addr addr;        /* own copy: text strdup'd */
	struct upstream_server_stats stats;
};

struct upstream {
	uint32_t magic;               /* checked at every libevent callback */
	struct loop *loop;
	const struct upstream_backend *backend; /* its owner's: ops, name, settings */
	struct upstream_target *target; /* address and counters of its server */
	unsigned index;               /* within the server, for logs */
	enum upstream_state state;
	struct bufferevent *bev;      /* NULL in BACKOFF */
	struct event *read_ev;        /* reads bev's socket once connected (upstream.c) */
	struct event *timer;          /* connect timeout, backoff, quit grace */
	struct request_queue fifo;    /* written, unanswered, in write order */
	unsigned outstanding;
	unsigned failures;            /* consecutive; drives backoff */
	unsigned lost;                /* written requests its last failure answered ERR */
	unsigned lost_head;           /* ... of which the TIMEOUT head (upstream_timeout) */
	uint64_t connected_ms;        /* clock_ms() at connect; 0 when not connected */
	unsigned connect_failed:1;    /* the last connect attempt failed: "down" */
	unsigned reconnect:1;         /* after RETIRING: connect again (backend-initiated QUIT) */
	unsigned congested:1;         /* output passed the high-water mark */
};

/* Starts connecting to t (the index-th connection to it, for logs). */
struct upstream *upstream_new(struct loop *l, const struct upstream_backend *b, struct upstream_target *t,
			      unsigned index);
/* Answers every outstanding request ERR UNAVAILABLE and frees. */
void upstream_free(struct upstream *u);

/* Moves the frame a waiting req holds (req->buf) to the output and
 * appends req to the FIFO. Only in CONNECTED state. */
void upstream_write(struct upstream *u, struct request *req);
/* The same in two steps, so that a run of requests for one connection
 * moves in one go: enqueue each, then send the run's bytes (the first len
 * bytes of src) before control returns to the event loop. */
void upstream_enqueue(struct upstream *u, struct request *req);
void upstream_send(struct upstream *u, struct evbuffer *src, size_t len);

/* Takes requests, and is not above its output high-water mark. */
bool upstream_available(const struct upstream *u);
bool upstream_congested(const struct upstream *u);
/* Retired for good (draining, or closed): serves nothing new. */
bool upstream_retired(const struct upstream *u);

/* The FIFO's head waited request_timeout (the pool's tick decides): it is
 * answered ERR TIMEOUT and the connection fails (its other written
 * requests ERR UNAVAILABLE), so that a late answer is never matched to the
 * next request. */
void upstream_timeout(struct upstream *u);

/* Graceful retirement (SPEC §3 "Backends"). */
void upstream_retire(struct upstream *u);

/* For logs and metric labels: "connecting", "connected", ... */
const char *upstream_state_name(enum upstream_state state);

/* Reconnection backoff, a pure function of the consecutive failures (1 for
 * the first; 0 counts as 1) and any 64-bit random value: 100 ms ×
 * 2^(failures-1), capped at 5 s, jittered into [delay/2, delay]. */
#define UPSTREAM_BACKOFF_BASE_MS 100u
#define UPSTREAM_BACKOFF_MAX_MS 5000u
uint64_t upstream_backoff_ms(unsigned failures, uint64_t random);

/* How long a connection must stay up for its earlier failures to be
 * forgotten, and the failure count a connection that was up for up_ms (0:
 * never connected) carries into its next failure. */
#define UPSTREAM_STABLE_MS 10000u
unsigned upstream_failures_carried(unsigned failures, uint64_t up_ms);

#endif
