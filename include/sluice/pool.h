/*
 * pool — a worker's connections to one backend: `connections` persistent
 * upstreams per server, shared by every client of the worker. It places each
 * request on the connection with the fewest outstanding requests (keeping a
 * client on the connection that already carries its requests), queues it
 * when no connection can take it, and pauses the clients feeding it when the
 * backend falls behind.
 */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/config.h>
#include <sluice/request.h>
#include <sluice/session.h>
#include <sluice/upstream.h>

struct config;
struct config_backend;
struct evbuffer;
struct upstream;
struct worker;

/* Per server counters, written by the owning worker, read by metrics. */
struct pool_server_stats {
	uint64_t connections[UPSTREAM_STATE_COUNT]; /* gauge per upstream_state */
	uint64_t errors;                /* connection failures, timeouts, bad frames */
};

/* One server of the backend. Allocated on its own so that upstreams can
 * point at it across reloads; it copies its address out of the
 * configuration, so a retired server outlives the snapshot it came from. */
struct pool_server {
	struct pool *pool;
	struct config_addr addr;        /* own copy: text strdup'd */
	struct upstream **ups;          /* its connections, owned */
	unsigned n_ups;
	unsigned down:1;                /* every connection failed to connect */
	unsigned retired:1;             /* removed by a reload; draining */
	struct pool_server_stats stats;
	TAILQ_ENTRY(pool_server) link;  /* the pool's list of retired servers */
};

TAILQ_HEAD(pool_server_list, pool_server);

struct pool {
	struct worker *worker;
	struct config *cfg;             /* snapshot conf lives in; one reference */
	const struct config_backend *conf;
	char *name;                     /* the backend's name (stable across reloads) */
	struct pool_server **servers;   /* the servers in the configuration */
	unsigned n_servers;
	struct pool_server_list retired; /* servers (or surplus connections) draining */
	struct upstream **all;          /* every serving upstream, for least-outstanding picks */
	unsigned n_all;
	unsigned rr;                    /* round-robin start for ties */
	struct request_queue waiting;   /* requests no connection could take yet */
	unsigned n_waiting;
	unsigned pending;               /* waiting + written and unanswered */
	struct session_list paused;     /* sessions not read until the pool drains */
	unsigned users;                 /* sessions using the pool */
	unsigned removed:1;             /* its backend left the configuration */
	unsigned placing:1;             /* pool_drain_waiting under way */
	unsigned place_again:1;         /* ... and asked for again meanwhile */
	TAILQ_ENTRY(pool) link;         /* the worker's list of removed pools */
};

TAILQ_HEAD(pool_list, pool);

/* Creates the pool and starts connecting every upstream. Takes a
 * reference on cfg (conf lives in it). NULL on failure. */
struct pool *pool_new(struct worker *w, struct config *cfg, const struct config_backend *conf);
/* Frees every upstream; outstanding requests are answered ERR UNAVAILABLE. */
void pool_free(struct pool *p);

/* Reload: the same backend with a new configuration. Servers whose address
 * is unchanged keep their connections (growing or shrinking to the new
 * `connections`); removed servers and surplus connections drain with QUIT;
 * new servers connect. Timeouts and limits apply to new work. 0 or -1 (out
 * of memory: the pool keeps its old shape). */
int pool_reconfigure(struct pool *p, struct config *cfg, const struct config_backend *conf);

/* Retires every connection (shutdown, or backend removed and unused). */
void pool_retire(struct pool *p);
/* Every connection, serving or retired, is closed. */
bool pool_closed(const struct pool *p);
/* Frees retired servers whose connections have all closed (from the
 * worker's tick: never inside an upstream's own callback). */
void pool_collect(struct pool *p);

/* Sessions count as users: a removed backend's pool drains when its last
 * session leaves. */
void pool_use(struct pool *p);
void pool_unuse(struct pool *p);

/* Places req: on the connection that already carries its session's
 * requests, else on the least loaded one. Returns that upstream, with req
 * in its FIFO; the caller then owes it req's bytes (upstream_send), before
 * control returns to the event loop. NULL when no connection can take it
 * now: the caller hands it to pool_hold. */
struct upstream *pool_route(struct pool *p, struct request *req);
/* A request pool_route could not place (its frame is the first req->len
 * bytes of src): queued until a connection can take it, or answered ERR
 * UNAVAILABLE when every server is down. The bytes leave src. */
void pool_hold(struct pool *p, struct request *req, struct evbuffer *src);

/* Whether a session should stop reading before submitting more. */
bool pool_congested(const struct pool *p, const struct session *s);
void pool_pause(struct pool *p, struct session *s);

/* A waiting request whose client left. */
void pool_cancel(struct pool *p, struct request *req);

/* Periodic work: queue_timeout for waiting requests, request_timeout for
 * written ones. */
void pool_tick(struct pool *p, uint64_t now_ms);

/* From upstreams: state changes that may let queued work proceed. */
void pool_upstream_ready(struct pool *p, struct upstream *u);
void pool_upstream_failed(struct pool *p, struct upstream *u);
void pool_request_done(struct pool *p);
/* Every change to pending goes through here (metrics read it). */
void pool_pending_add(struct pool *p, int delta);

/* Totals for logs and metrics. */
unsigned pool_connected(const struct pool *p);

#endif
