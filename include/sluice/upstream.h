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

#include <sluice/request.h>

struct bufferevent;
struct event;
struct evbuffer;
struct loop;
struct pool;
struct pool_server;

enum upstream_state {
	UPSTREAM_CONNECTING,  /* TCP connect under way (connect_timeout) */
	UPSTREAM_CONNECTED,   /* takes requests */
	UPSTREAM_RETIRING,    /* takes no more; waits for its answers, then QUIT */
	UPSTREAM_QUIT_SENT,   /* QUIT written; waits for the backend's QUIT or close */
	UPSTREAM_BACKOFF,     /* failed; reconnects when the timer fires */
	UPSTREAM_CLOSED,      /* retired for good; the pool may free it */
};
#define UPSTREAM_STATE_COUNT 6

struct upstream {
	struct loop *loop;
	struct pool *pool;
	struct pool_server *server;
	unsigned index;               /* within the server, for logs */
	enum upstream_state state;
	struct bufferevent *bev;      /* NULL in BACKOFF */
	struct event *read_ev;        /* reads bev's socket once connected (upstream.c) */
	struct event *timer;          /* connect timeout, backoff, quit grace */
	struct request_queue fifo;    /* written, unanswered, in write order */
	unsigned outstanding;
	unsigned failures;            /* consecutive; drives backoff */
	uint64_t connected_ms;        /* clock_ms() at connect; 0 when not connected */
	unsigned connect_failed:1;    /* the last connect attempt failed: "down" */
	unsigned reconnect:1;         /* after RETIRING: connect again (backend-initiated QUIT) */
	unsigned congested:1;         /* output passed the high-water mark */
};

struct upstream *upstream_new(struct pool *p, struct pool_server *srv, unsigned index);
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
