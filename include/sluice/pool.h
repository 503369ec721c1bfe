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
#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

#include <sluice/config.h>
#include <sluice/frame.h>
#include <sluice/fstream.h>
#include <sluice/request.h>
#include <sluice/upstream.h>

struct config;
struct config_backend;
struct evbuffer;
struct loop;
struct upstream;

/* One server of the backend. Allocated on its own so that upstreams can
 * point at it (its target) across reloads. */
struct pool_server {
	struct upstream_target target;  /* what its connections see: address, counters */
	struct pool *pool;
	struct upstream **ups;          /* its connections, owned */
	unsigned n_ups;
	unsigned down:1;                /* every connection failed to connect */
	unsigned retired:1;             /* removed by a reload; draining */
	TAILQ_ENTRY(pool_server) link;  /* the pool's list of retired servers */
};

TAILQ_HEAD(pool_server_list, pool_server);

/* Whether srv takes new requests: the one decision that placement and
 * /readyz (through pool.servers_up) share. */
static inline bool
pool_server_up(const struct pool_server *srv)
{
	return !srv->down && !srv->retired;
}

/* A client's placement, kept by the pool and embedded in the client's own
 * record (the session): the connection its written requests are on (it
 * sticks to it, so the backend executes its requests in the order sent),
 * how many wait in the queue, and its place among the paused clients. The
 * pool reaches the client only through ops (and its requests' answers go
 * through rc.ops). */
struct pool_client;
struct pool_client_ops {
	/* The pool has room again: read the client's requests again. */
	void (*resume)(struct pool_client *pc);
};
TAILQ_HEAD(pool_client_list, pool_client);
struct pool_client {
	struct request_client rc;         /* what its requests point at (req->client) */
	const struct pool_client_ops *ops;
	struct upstream *sticky;          /* carries its written requests, or NULL */
	unsigned n_sticky;                /* how many of them */
	unsigned n_waiting;               /* its requests in the pool's wait queue */
	TAILQ_ENTRY(pool_client) pause_link;
	struct pool_client_list *paused_on; /* the pool list it waits on, or NULL */
};

/* The placement record a request's client pointer is part of. */
static inline struct pool_client *
pool_client_of(struct request_client *c)
{
	return c == NULL ? NULL : (struct pool_client *)(void *)((char *)c - offsetof(struct pool_client, rc));
}

void pool_client_init(struct pool_client *pc, const struct request_client_ops *rops,
		      const struct pool_client_ops *ops);
/* Requests the client has in the pool: waiting or written, unanswered. */
static inline unsigned
pool_client_outstanding(const struct pool_client *pc)
{
	return pc->n_sticky + pc->n_waiting;
}
static inline bool
pool_client_paused(const struct pool_client *pc)
{
	return pc->paused_on != NULL;
}
/* Leaves the paused list (the client closes, or resumes on its own). */
void pool_client_unpause(struct pool_client *pc);
/* The client is gone: forget its placement (its waiting requests were
 * cancelled, its written ones orphaned). */
void pool_client_reset(struct pool_client *pc);

/* Requests placed on one connection whose bytes have not moved yet are a
 * run (fstream.h) whose destination is that connection: pool_place adds
 * to it, and flushes it itself when the connection changes; the caller
 * flushes it (fstream_run_flush) before anything else reads src or
 * control returns to the event loop. */
void pool_run_send(void *upstream, struct evbuffer *src, size_t len);
#define POOL_RUN_INIT FSTREAM_RUN_INIT(pool_run_send)

struct pool {
	struct loop *loop;
	struct config *cfg;             /* snapshot conf lives in; one reference */
	const struct config_backend *conf;
	char *name;                     /* the backend's name (a reload may rename it) */
	struct upstream_backend backend; /* what its connections see: ops, name, conf */
	struct pool_server **servers;   /* the servers in the configuration */
	unsigned n_servers;
	unsigned servers_up;            /* atomic: servers pool_server_up, for /readyz */
	struct pool_server_list retired; /* servers (or surplus connections) draining */
	struct upstream **all;          /* every serving upstream, for least-outstanding picks */
	unsigned n_all;
	unsigned rr;                    /* round-robin start for ties */
	struct request_queue waiting;   /* requests no connection could take yet */
	unsigned n_waiting;
	unsigned pending;               /* waiting + written and unanswered */
	struct pool_client_list paused; /* clients not read until the pool drains */
	unsigned users;                 /* sessions using the pool */
	unsigned removed:1;             /* its backend left the configuration */
	unsigned placing:1;             /* pool_drain_waiting under way */
	unsigned place_again:1;         /* ... and asked for again meanwhile */
	TAILQ_ENTRY(pool) link;         /* the worker's list of removed pools */
};

TAILQ_HEAD(pool_list, pool);

/* Creates the pool and starts connecting every upstream. Takes a
 * reference on cfg (conf lives in it). NULL on failure. */
struct pool *pool_new(struct loop *l, struct config *cfg, const struct config_backend *conf);
/* Frees every upstream; outstanding requests are answered ERR UNAVAILABLE. */
void pool_free(struct pool *p);

/* Reload: the same backend with a new configuration. Servers whose address
 * is unchanged keep their connections (growing or shrinking to the new
 * `connections`); removed servers and surplus connections drain with QUIT;
 * new servers connect. Timeouts and limits apply to new work. 0 or -1 (out
 * of memory: the pool keeps its old shape). */
int pool_reconfigure(struct pool *p, struct config *cfg, const struct config_backend *conf);

/* Whether the pool has a server that conf lists too. */
bool pool_shares_server(const struct pool *p, const struct config_backend *conf);

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

/* Places req of client req->client, whose frame is the req->len bytes of
 * src after the run's: on the connection that already carries the client's
 * requests, else on the least loaded one (the bytes join the run), else in
 * the wait queue (ERR BUSY after queue_timeout) or answered ERR
 * UNAVAILABLE when every server is down (the bytes leave src now, after
 * the run's). */
void pool_place(struct pool *p, struct request *req, struct evbuffer *src, struct fstream_run *run);

/* Whether a client should stop reading before submitting more: its
 * connection is above its high-water mark, or the pool holds max_pending
 * requests, unless the client has nothing in the pool and a connection is
 * idle (a pipelining client gets its share, not the pool). */
bool pool_congested(const struct pool *p, const struct pool_client *pc);
/* Stops reading pc until the pool drains (resumed through its ops). */
void pool_pause(struct pool *p, struct pool_client *pc);

/* A waiting request whose client left. */
void pool_cancel(struct pool *p, struct request *req);

/* Periodic work: queue_timeout for waiting requests, request_timeout for
 * written ones. */
void pool_tick(struct pool *p, uint64_t now_ms);

/* Totals for logs and metrics. */
unsigned pool_connected(const struct pool *p);

#endif
