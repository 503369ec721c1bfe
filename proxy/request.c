/*
 * request — allocation of request records. A request is allocated per
 * frame, so each worker keeps a bounded free list of them instead of going
 * to malloc on every frame; the list is the worker's own, so no lock.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/request.h>

/* Enough to serve a busy worker's steady state from the cache, small enough
 * that a burst does not pin memory forever (about 100 bytes each). */
#define REQUEST_CACHE_MAX 4096u

struct request *
request_new(struct request_cache *c)
{
	struct request *req = c->free;

	if (req != NULL) {
		c->free = TAILQ_NEXT(req, queue_link);
		c->n_free--;
		memset(req, 0, sizeof(*req));
		return req;
	}
	return calloc(1, sizeof(*req));
}

void
request_free(struct request_cache *c, struct request *req)
{
	if (req->buf != NULL) {
		evbuffer_free(req->buf);
		req->buf = NULL;
	}
	if (c->n_free >= REQUEST_CACHE_MAX) {
		free(req);
		return;
	}
	TAILQ_NEXT(req, queue_link) = c->free;
	c->free = req;
	c->n_free++;
}

void
request_cache_clear(struct request_cache *c)
{
	struct request *req;

	while ((req = c->free) != NULL) {
		c->free = TAILQ_NEXT(req, queue_link);
		free(req);
	}
	c->n_free = 0;
}
