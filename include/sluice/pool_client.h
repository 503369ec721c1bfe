/*
 * pool_client — a client's placement record in a backend's pool: the
 * connection its written requests stick to, its waiting requests, and the
 * list of paused clients it may be on. The pool keeps it; the session
 * embeds it.
 */
#ifndef SLUICE_POOL_CLIENT_H
#define SLUICE_POOL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/queue.h>

#include <sluice/request.h>

struct upstream;

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

/* Its requests written to u, or one of them answered or failed: it sticks
 * to u while any is left there. */
void pool_client_stick(struct pool_client *pc, struct upstream *u);
void pool_client_unstick(struct pool_client *pc);

/* Resumes every client paused on list: those with nothing in the pool
 * first (see pool_client.c). */
void pool_client_wake(struct pool_client_list *list);

#endif
