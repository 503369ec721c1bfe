/*
 * prober — active health checks over the pool's own connections: a probe
 * is a request whose client is the server's probe record, which swallows
 * the answer and feeds health.c. A backend thus never sees more than
 * workers × connections connections (SPEC §2), and a probe tests the very
 * connections requests use.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/clock.h>
#include <sluice/frame.h>
#include <sluice/health.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/prober.h>
#include <sluice/request.h>

/* A flapping server must not flood the log. */
LOG_LIMIT(prober_limit_change, "server health changes");

static struct pool_server *
prober_server_of(struct request_client *rc)
{
	return (struct pool_server *)(void *)((char *)rc - offsetof(struct pool_server, probe.rc));
}

static void
prober_result(struct pool_server *srv, enum health_result r)
{
	struct pool *p = srv->pool;
	enum health_change change = health_probe_done(&srv->health, &p->conf->health, r);

	if (change != HEALTH_SAME)
		pool_publish_up(p);
	switch (change) {
	case HEALTH_MARKED_DOWN:
		log_limited(&prober_limit_change, LOG_WARN,
			    "backend %s: server %s marked down: %u health checks in a row failed (last: %s)",
			    p->name, srv->target.addr.text, srv->health.fails, health_result_name(r));
		break;
	case HEALTH_MARKED_UP:
		log_limited(&prober_limit_change, LOG_INFO,
			    "backend %s: server %s marked up: %u health checks in a row passed",
			    p->name, srv->target.addr.text, srv->health.oks);
		break;
	case HEALTH_SAME:
		break;
	}
}

/* The probe left its connection: a late one was counted already. */
static void
prober_finish(struct request *req, enum health_result r)
{
	struct pool_server *srv = prober_server_of(req->client);
	struct loop *l = srv->pool->loop;
	bool late = srv->probe.late;

	if (req->buf != NULL)
		evbuffer_free(req->buf);
	request_free(&l->requests, req);
	srv->probe.req = NULL;
	srv->probe.late = false;
	if (!late && !l->stopping && !srv->retired)
		prober_result(srv, r);
}

/* request_client_ops.take_head: never a client to deliver to. */
static struct request_client *
prober_take_head(struct request *req, uint32_t len)
{
	(void)req;
	(void)len;
	return NULL;
}

/* Any valid frame is a good answer: the connection parsed it. */
static void
prober_respond(struct request *req, struct evbuffer *src, uint32_t len)
{
	evbuffer_drain(src, len);
	prober_finish(req, HEALTH_OK);
}

static void
prober_respond_error(struct request *req, enum frame_err_code code, const char *message)
{
	(void)code;
	(void)message;
	prober_finish(req, HEALTH_FAIL);
}

static const struct request_client_ops prober_client_ops = {
	.take_head = prober_take_head,
	.deliver = NULL,             /* take_head never hands a client out */
	.respond = prober_respond,
	.respond_error = prober_respond_error,
};

/* A probe frame of the configured header and payload. */
static struct request *
prober_new_probe(struct pool_server *srv, uint64_t now_ms)
{
	const struct config_health *c = &srv->pool->conf->health;
	struct loop *l = srv->pool->loop;
	struct request *req = request_new(&l->requests);

	if (req == NULL)
		return NULL;
	req->buf = evbuffer_new();
	if (req->buf == NULL || frame_add(req->buf, c->header, (uint16_t)strlen(c->header), c->payload,
					  (uint32_t)strlen(c->payload)) < 0) {
		if (req->buf != NULL)
			evbuffer_free(req->buf);
		request_free(&l->requests, req);
		return NULL;
	}
	req->len = (uint32_t)evbuffer_get_length(req->buf);
	req->received_us = l->now_us;
	req->queued_ms = now_ms;
	srv->probe.rc.ops = &prober_client_ops;
	req->client = &srv->probe.rc;
	return req;
}

/* Out of memory skips a probe rather than failing a server. A write that
 * fails its connection answers the probe (FAIL) before returning. */
static void
prober_send(struct pool_server *srv, uint64_t now_ms)
{
	LOG_LIMIT(prober_limit_oom, "health check allocation failures");
	struct request *req = prober_new_probe(srv, now_ms);

	if (req == NULL) {
		log_limited(&prober_limit_oom, LOG_ERROR, "backend %s: server %s: out of memory building a health check",
			    srv->pool->name, srv->target.addr.text);
		return;
	}
	srv->probe.req = req;
	srv->probe.sent_ms = now_ms;
	srv->probe.late = false;
	if (pool_server_probe(srv, req) == 0)
		return;
	srv->probe.req = NULL;
	evbuffer_free(req->buf);
	request_free(&srv->pool->loop->requests, req);
	prober_result(srv, HEALTH_FAIL);
}

/* A probe still unanswered at the next interval counts once more (but
 * not twice in one tick, when timeout equals interval): a stalled server
 * fails once per interval, so it is down within fall × interval of the
 * stall. */
static void
prober_check(struct pool_server *srv, uint64_t now_ms)
{
	const struct config_health *c = &srv->pool->conf->health;
	struct health_probe *pr = &srv->probe;
	bool counted = false;

	if (pr->req != NULL && !pr->late && clock_since(now_ms, pr->sent_ms) >= c->timeout_ms) {
		pr->late = true;
		counted = true;
		prober_result(srv, HEALTH_TIMEOUT);
	}
	/* A new server's connections get one interval to connect before
	 * the first probe, which would otherwise fail for want of one. */
	if (pr->next_ms == 0)
		pr->next_ms = now_ms + c->interval_ms;
	if (now_ms < pr->next_ms)
		return;
	pr->next_ms = now_ms + c->interval_ms;
	if (pr->req == NULL)
		prober_send(srv, now_ms);
	else if (!counted)
		prober_result(srv, HEALTH_TIMEOUT);
}

/* A reload turned checks off: nothing would ever bring the server up. */
static void
prober_checks_off(struct pool_server *srv)
{
	srv->health.down = false;
	srv->health.fails = 0;
	srv->health.oks = 0;
	log_info("backend %s: server %s marked up: health checks are off", srv->pool->name, srv->target.addr.text);
}

void
prober_tick(struct pool *p, uint64_t now_ms)
{
	for (unsigned i = 0; i < p->n_servers; i++) {
		struct pool_server *srv = p->servers[i];

		if (health_eject_expired(&srv->health, now_ms))
			log_limited(&prober_limit_change, LOG_INFO,
				    "backend %s: server %s back from ejection: it takes requests again",
				    p->name, srv->target.addr.text);
		if (p->conf->health.enabled && !p->loop->stopping)
			prober_check(srv, now_ms);
		else if (srv->health.down && !p->conf->health.enabled)
			prober_checks_off(srv);
		__atomic_store_n(&srv->health.stats.up, (uint64_t)pool_server_up(srv), __ATOMIC_RELAXED);
	}
	pool_publish_up(p);
}
