/*
 * request — allocation of request records. A request is allocated per
 * frame, so each worker keeps a bounded free list of them instead of going
 * to malloc on every frame; the list is the worker's own, so no lock.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/request.h>
#include <sluice/worker.h>

/* Enough to serve a busy worker's steady state from the cache, small enough
 * that a burst does not pin memory forever (about 100 bytes each). */
#define REQUEST_CACHE_MAX 4096u

struct request *
request_new(struct worker *w)
{
	struct request *req = w->free_requests;

	if (req != NULL) {
		w->free_requests = TAILQ_NEXT(req, queue_link);
		w->n_free_requests--;
		memset(req, 0, sizeof(*req));
		return req;
	}
	return calloc(1, sizeof(*req));
}

void
request_free(struct worker *w, struct request *req)
{
	if (req->buf != NULL) {
		evbuffer_free(req->buf);
		req->buf = NULL;
	}
	if (w->n_free_requests >= REQUEST_CACHE_MAX) {
		free(req);
		return;
	}
	TAILQ_NEXT(req, queue_link) = w->free_requests;
	w->free_requests = req;
	w->n_free_requests++;
}

void
request_cache_clear(struct worker *w)
{
	struct request *req;

	while ((req = w->free_requests) != NULL) {
		w->free_requests = TAILQ_NEXT(req, queue_link);
		free(req);
	}
	w->n_free_requests = 0;
}
