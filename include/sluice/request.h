/*
 * request — one request frame on its way through sluice, from the moment its
 * last byte arrives until its response has been handed to the client. It
 * points at bytes, never copies them: while it waits for a backend
 * connection it holds the request frame, once answered out of order it
 * holds the response frame, and otherwise it holds nothing at all.
 *
 * Ownership: the session owns its requests (session_link, in arrival order).
 * When the client goes away with a request written to a backend, the
 * request is orphaned (client = NULL) and the upstream that carries it owns
 * it until the backend answers or the connection fails: whoever takes it
 * out of the FIFO then answers nothing and frees it.
 *
 * The way up: a request reaches its client only through client->ops, so
 * that the modules which answer requests (pool, upstream) need not know
 * what a session is.
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <sluice/frame.h>

struct evbuffer;
struct request;
struct request_client;
struct upstream;

enum request_state {
	REQUEST_WAITING,    /* in its pool's wait queue; buf holds the request frame */
	REQUEST_WRITTEN,    /* queued on upstream's output; awaiting the backend */
	REQUEST_DONE,       /* answered; buf holds the response until its turn */
	REQUEST_UNLINKED,   /* out of the wait queue or the FIFO, being answered:
			     * no queue holds it, so a failure to answer it (out
			     * of memory) leaves it to its session alone, which
			     * frees it */
};

/* How an answer finds its client (a session implements these). */
struct request_client_ops {
	/* When req is its client's oldest request: accounts for its answer
	 * (len bytes) and returns the client, to which the caller hands the
	 * bytes with deliver before anything else reads them (consecutive
	 * answers to one client then move in one go). NULL otherwise: use
	 * respond. */
	struct request_client *(*take_head)(struct request *req, uint32_t len);
	void (*deliver)(struct request_client *c, struct evbuffer *src, size_t len);
	/* The backend answered req with the first len bytes of src; they are
	 * moved (not copied) to the client, now or when req's turn comes. */
	void (*respond)(struct request *req, struct evbuffer *src, uint32_t len);
	/* sluice answers req itself with "ERR CODE message". */
	void (*respond_error)(struct request *req, enum frame_err_code code, const char *message);
};

/* Embedded in the client's own record (through the pool's struct
 * pool_client). */
struct request_client {
	const struct request_client_ops *ops;
};

struct request {
	struct request_client *client;    /* NULL once the client left */
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
