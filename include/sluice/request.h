/*
 * request — one request frame on its way through sluice, from the moment its
 * last byte arrives until its response has been handed to the client. It
 * points at bytes, never copies them: while it waits for a backend
 * connection it holds the request frame, once answered out of order it
 * holds the response frame, and otherwise it holds nothing at all.
 *
 * Ownership: the session owns its requests (session_link, in arrival order).
 * When the client goes away with a request written to a backend, the
 * request is orphaned (session = NULL) and the upstream that carries it owns
 * it until the backend answers or the connection fails.
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stdint.h>
#include <sys/queue.h>

struct evbuffer;
struct pool_client;
struct session;
struct upstream;

enum request_state {
	REQUEST_WAITING,    /* in its pool's wait queue; buf holds the request frame */
	REQUEST_WRITTEN,    /* queued on upstream's output; awaiting the backend */
	REQUEST_DONE,       /* answered; buf holds the response until its turn */
	REQUEST_UNLINKED,   /* out of every queue, being answered by sluice: if
			     * that fails, it is only freed */
};

struct request {
	struct session *session;          /* NULL once the client left */
	struct pool_client *client;       /* session's placement record, or NULL */
	struct upstream *upstream;        /* WRITTEN: the connection carrying it */
	TAILQ_ENTRY(request) session_link; /* the session's arrival-order queue */
	TAILQ_ENTRY(request) queue_link;  /* upstream FIFO or pool wait queue */
	struct evbuffer *buf;             /* see request_state; NULL otherwise */
	uint32_t len;                     /* request frame length */
	uint32_t resp_len;                /* DONE: response frame length */
	uint64_t received_us;             /* when its last byte was read */
	uint64_t queued_ms;               /* when it entered the pool */
	uint64_t written_us;              /* when it was written to an upstream */
	enum request_state state;
};

TAILQ_HEAD(request_queue, request);

/* Per-worker allocation with a free list: requests are the per-frame
 * allocation, so they are recycled rather than returned to malloc. The
 * cache belongs to one thread (the worker's loop): no lock. */
struct request_cache {
	struct request *free;             /* linked by queue_link */
	unsigned n_free;
};

struct request *request_new(struct request_cache *c);
void request_free(struct request_cache *c, struct request *req);
/* Frees the free list at worker exit. */
void request_cache_clear(struct request_cache *c);

#endif
