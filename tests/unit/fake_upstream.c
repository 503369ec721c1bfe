/*
 * fake_upstream — backend connections without sockets, for the pool's unit
 * tests. It defines the functions of include/sluice/upstream.h that pool.c
 * calls, on the real struct upstream, and reports to the pool through the
 * ops the pool hands it, as the real one does; what a real connection
 * writes to its socket lands in an evbuffer (the "wire") the test reads,
 * and what a backend would do (answer, fail, connect, drain its output)
 * the test does with the fake_ functions below. Linked before
 * libsluice.a, so the real upstream.o is never pulled in.
 */
#include <assert.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include <sluice/loop.h>
#include <sluice/upstream.h>

#include "fake_upstream.h"

enum upstream_state fake_initial_state = UPSTREAM_CONNECTED;

/* A connection and its wire: what the pool moved to its output. */
struct fake_conn {
	struct upstream u;
	struct evbuffer *wire;
};

struct upstream *
upstream_new(struct loop *l, const struct upstream_backend *b, struct upstream_target *t, unsigned index)
{
	struct fake_conn *c = calloc(1, sizeof(*c));
	struct upstream *u;

	if (c == NULL)
		return NULL;
	u = &c->u;
	u->loop = l;
	u->backend = b;
	u->target = t;
	u->index = index;
	u->state = fake_initial_state;
	TAILQ_INIT(&u->fifo);
	c->wire = evbuffer_new();
	assert(c->wire != NULL);
	return u;
}

struct evbuffer *
fake_wire(struct upstream *u)
{
	return ((struct fake_conn *)u)->wire;
}

static struct request *
fake_pop(struct upstream *u)
{
	struct request *req = TAILQ_FIRST(&u->fifo);

	assert(req != NULL && req->state == REQUEST_WRITTEN);
	TAILQ_REMOVE(&u->fifo, req, queue_link);
	u->outstanding--;
	req->state = REQUEST_UNLINKED;
	u->backend->ops->request_left(u, req);
	return req;
}

/* Written requests may have reached the backend: answered, never replayed. */
static void
fake_fail_requests(struct upstream *u)
{
	while (!TAILQ_EMPTY(&u->fifo)) {
		struct request *req = fake_pop(u);

		req->client->ops->respond_error(req, FRAME_ERR_UNAVAILABLE, "connection failed");
	}
}

void
upstream_free(struct upstream *u)
{
	fake_fail_requests(u);
	evbuffer_free(fake_wire(u));
	free((struct fake_conn *)u);
}

bool
upstream_retired(const struct upstream *u)
{
	return u->state == UPSTREAM_RETIRING || u->state == UPSTREAM_QUIT_SENT ||
	       u->state == UPSTREAM_CLOSED;
}

bool
upstream_available(const struct upstream *u)
{
	return u->state == UPSTREAM_CONNECTED && !u->congested;
}

bool
upstream_congested(const struct upstream *u)
{
	return u->congested;
}

void
upstream_enqueue(struct upstream *u, struct request *req)
{
	assert(u->state == UPSTREAM_CONNECTED);
	req->state = REQUEST_WRITTEN;
	req->upstream = u;
	req->written_us = u->loop->now_us;
	TAILQ_INSERT_TAIL(&u->fifo, req, queue_link);
	u->outstanding++;
}

void
upstream_send(struct upstream *u, struct evbuffer *src, size_t len)
{
	int moved = evbuffer_remove_buffer(src, fake_wire(u), len);

	assert(moved == (int)len);
}

void
upstream_write(struct upstream *u, struct request *req)
{
	assert(req->buf != NULL);
	upstream_enqueue(u, req);
	assert(evbuffer_add_buffer(fake_wire(u), req->buf) == 0);
	evbuffer_free(req->buf);
	req->buf = NULL;
}

void
upstream_retire(struct upstream *u)
{
	switch (u->state) {
	case UPSTREAM_CONNECTED:
		u->state = u->outstanding > 0 ? UPSTREAM_RETIRING : UPSTREAM_CLOSED;
		return;
	case UPSTREAM_CONNECTING:
	case UPSTREAM_BACKOFF:
		u->state = UPSTREAM_CLOSED;
		return;
	case UPSTREAM_RETIRING:
	case UPSTREAM_QUIT_SENT:
	case UPSTREAM_CLOSED:
		return;
	}
}

void
fake_fail(struct upstream *u)
{
	u->connect_failed = u->state == UPSTREAM_CONNECTING;
	u->lost = u->outstanding + u->lost_head;   /* as upstream_fail */
	u->lost_head = 0;
	fake_fail_requests(u);
	u->state = upstream_retired(u) ? UPSTREAM_CLOSED : UPSTREAM_BACKOFF;
	u->backend->ops->failed(u);
}

void
upstream_timeout(struct upstream *u)
{
	struct request *req = fake_pop(u);

	LOOP_STAT_ADD(u->loop, timeouts_request, 1);
	req->client->ops->respond_error(req, FRAME_ERR_TIMEOUT, "request_timeout");
	u->lost_head = 1;
	fake_fail(u);
}

void
fake_connect(struct upstream *u)
{
	u->state = UPSTREAM_CONNECTED;
	u->connect_failed = 0;
	u->backend->ops->ready(u);
}

void
fake_set_congested(struct upstream *u, bool congested)
{
	bool was = u->congested;

	u->congested = congested;
	if (was && !congested)
		u->backend->ops->ready(u);
}

struct request *
fake_answer(struct upstream *u)
{
	struct request *req = fake_pop(u);

	u->backend->ops->answered(u);
	if (u->state == UPSTREAM_RETIRING && u->outstanding == 0) {
		u->state = UPSTREAM_CLOSED;
		u->backend->ops->failed(u);
	}
	return req;
}

const char *
upstream_state_name(enum upstream_state state)
{
	return state == UPSTREAM_CONNECTED ? "connected" : "other";
}
