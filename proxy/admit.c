/*
 * admit — between accept and TLS: trust and the PROXY protocol header of
 * listeners with proxy_protocol, then the per-address limit. The header is
 * read off the socket without taking a byte past it (MSG_PEEK, then
 * exactly the header's bytes), so the TLS layer finds the ClientHello
 * where the client put it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include <sluice/addr_limit.h>
#include <sluice/admit.h>
#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/config_addr.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/proxy_proto.h>
#include <sluice/session.h>
#include <sluice/slots.h>

LOG_LIMIT(admit_limit_untrusted, "connections refused from outside proxy_trusted");
LOG_LIMIT(admit_limit_header, "bad or missing PROXY headers");
LOG_LIMIT(admit_limit_per_address, "connections refused at max_connections_per_address");

#define ADMIT_PEER_LEN 64

/* A connection waiting for its PROXY header. */
struct admit_wait {
	LIST_ENTRY(admit_wait) link;
	struct loop *loop;
	struct config *cfg;                /* the snapshot lc lives in; one reference */
	const struct config_listener *lc;
	struct pool *pool;                 /* used (pool_use) while waiting */
	evutil_socket_t fd;
	struct event *ev;                  /* readable, or the deadline */
	uint64_t deadline_ms;
	struct sockaddr_storage peer;      /* the balancer's address */
	char peer_text[ADMIT_PEER_LEN];
	size_t have;                       /* header bytes consumed into buf */
	uint8_t buf[PROXY_PROTO_MAX];
};

/* Whether sa lies in one of lc's proxy_trusted networks (an IPv4 client
 * on an IPv6 socket counts as its IPv4 address). */
static int
admit_trusted(const struct config_listener *lc, const struct sockaddr *sa)
{
	struct addr_limit_key k;

	addr_limit_key_from(&k, sa);
	for (size_t i = 0; i < lc->n_proxy_trusted; i++) {
		const struct config_cidr *c = &lc->proxy_trusted[i];
		unsigned whole = c->prefix / 8, rest = c->prefix % 8;

		if (c->family != k.family || memcmp(c->addr, k.addr, whole) != 0)
			continue;
		if (rest == 0 || ((c->addr[whole] ^ k.addr[whole]) & (0xff00 >> rest) & 0xff) == 0)
			return 1;
	}
	return 0;
}

int
admit_needed(const struct loop *l, const struct config_listener *lc)
{
	return lc->proxy_protocol != CONFIG_PROXY_OFF || l->cfg->limits.max_connections_per_address > 0;
}

static void
admit_close(evutil_socket_t fd)
{
	evutil_closesocket(fd);
	slots_give();
}

/* The last step: the per-address limit on the client's address (the
 * header's, else the socket's), then the session. */
static void
admit_session(struct loop *l, const struct config_listener *lc, struct pool *pool, evutil_socket_t fd,
	      const struct sockaddr *client)
{
	uint64_t max = l->cfg->limits.max_connections_per_address;
	struct addr_limit_key key;
	char text[ADMIT_PEER_LEN];

	if (max == 0) {
		session_new(l, lc, pool, fd, client, NULL);
		return;
	}
	addr_limit_key_from(&key, client);
	if (addr_limit_take(&key, max) < 0) {
		config_addr_format(client, text, sizeof(text));
		LOOP_STAT_ADD(l, connections_refused, 1);
		log_limited(&admit_limit_per_address, LOG_INFO,
			    "client %s: refused: max_connections_per_address (%llu) reached", text,
			    (unsigned long long)max);
		admit_close(fd);
		return;
	}
	session_new(l, lc, pool, fd, client, &key);
}

static void
admit_wait_free(struct admit_wait *w)
{
	LIST_REMOVE(w, link);
	event_free(w->ev);
	pool_unuse(w->pool);
	config_unref(w->cfg);
	free(w);
}

/* The connection ends before a session: reason is what it counts as in
 * sluice_connections_closed_total; why, when set, is a header error. */
static void
admit_fail(struct admit_wait *w, enum session_close_reason reason, const char *why)
{
	struct loop *l = w->loop;

	LOOP_STAT_ADD(l, connections_closed[reason], 1);
	if (why != NULL) {
		LOOP_STAT_ADD(l, proxy_protocol_errors, 1);
		log_limited(&admit_limit_header, LOG_INFO, "client %s: PROXY header: %s; connection closed",
			    w->peer_text, why);
	}
	admit_close(w->fd);
	admit_wait_free(w);
	loop_closed(l);
}

static int
admit_rearm(struct admit_wait *w)
{
	uint64_t now = clock_ms();
	uint64_t left = w->deadline_ms > now ? w->deadline_ms - now : 0;
	struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };

	return event_add(w->ev, &tv);
}

/* Consumes n bytes known to be the header's (they were peeked). */
static int
admit_consume(struct admit_wait *w, size_t n)
{
	ssize_t got = recv(w->fd, w->buf + w->have, n, 0);

	if (got != (ssize_t)n)
		return -1;
	w->have += n;
	return 0;
}

/* A reload came while the header was on its way: a session lives in the
 * snapshot in force, so the connection moves to the listener of the same
 * address there (its TLS has not begun: the new certificates are its),
 * served by the pool in force for that listener's backend. 0, or -1 when
 * the reload removed the listener. */
static int
admit_follow_reload(struct admit_wait *w)
{
	struct config *cfg = w->loop->cfg;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *lc = &cfg->listeners[i];
		struct pool *pool;

		if (!config_addr_equal(&lc->addr, &w->lc->addr))
			continue;
		pool = loop_pool_named(w->loop, lc->backend->name);
		if (pool == NULL)
			return -1;
		pool_use(pool);
		pool_unuse(w->pool);
		w->pool = pool;
		w->lc = lc;
		config_unref(w->cfg);
		w->cfg = config_ref(cfg);
		return 0;
	}
	return -1;
}

static void
admit_header_done(struct admit_wait *w, const struct proxy_proto_result *r)
{
	struct loop *l = w->loop;
	/* A copy: the wait, and its peer, go before the session comes. */
	struct sockaddr_storage client = r->has_addr ? r->src : w->peer;
	char text[ADMIT_PEER_LEN];

	if (l->cfg != w->cfg && admit_follow_reload(w) < 0) {
		log_debug("client %s: its listener was removed while its PROXY header came; "
			  "connection closed", w->peer_text);
		admit_fail(w, SESSION_CLOSE_ABORTED, NULL);
		return;
	}
	config_addr_format((struct sockaddr *)&client, text, sizeof(text));
	log_debug("client %s: PROXY v%d header from %s", text, r->version, w->peer_text);
	evutil_socket_t fd = w->fd;
	const struct config_listener *lc = w->lc;
	struct pool *pool = w->pool;
	pool_use(pool);
	struct config *cfg = config_ref(w->cfg);
	admit_wait_free(w);
	admit_session(l, lc, pool, fd, (struct sockaddr *)&client);
	pool_unuse(pool);
	config_unref(cfg);
}

static enum proxy_proto_mode
admit_mode(const struct config_listener *lc)
{
	switch (lc->proxy_protocol) {
	case CONFIG_PROXY_V1:
		return PROXY_PROTO_MODE_V1;
	case CONFIG_PROXY_V2:
		return PROXY_PROTO_MODE_V2;
	default:
		return PROXY_PROTO_MODE_ANY;
	}
}

/* What arrived so far, peeked: the header whole, a part of it (consumed,
 * then wait for more), or not a header. */
static void
admit_read(struct admit_wait *w)
{
	struct proxy_proto_result r;
	ssize_t n = recv(w->fd, w->buf + w->have, sizeof(w->buf) - w->have, MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (admit_rearm(w) < 0)
			admit_fail(w, SESSION_CLOSE_INTERNAL, NULL);
		return;
	}
	if (n < 0) {
		admit_fail(w, SESSION_CLOSE_RESET, w->have > 0 ? "connection reset in the header" : NULL);
		return;
	}
	if (n == 0) {
		/* Closed before a byte: a balancer's TCP check, not an error. */
		if (w->have == 0)
			admit_fail(w, SESSION_CLOSE_NO_HELLO, NULL);
		else
			admit_fail(w, SESSION_CLOSE_CLIENT_CLOSED, "closed in the middle of the header");
		return;
	}
	switch (proxy_proto_parse(w->buf, w->have + (size_t)n, admit_mode(w->lc), &r)) {
	case PROXY_PROTO_INVALID:
		admit_fail(w, SESSION_CLOSE_PROTOCOL, r.reason);
		return;
	case PROXY_PROTO_NEED_MORE:
		if (admit_consume(w, (size_t)n) < 0 || admit_rearm(w) < 0)
			admit_fail(w, SESSION_CLOSE_INTERNAL, NULL);
		return;
	case PROXY_PROTO_DONE:
		if (admit_consume(w, r.len - w->have) < 0)
			admit_fail(w, SESSION_CLOSE_INTERNAL, NULL);
		else
			admit_header_done(w, &r);
		return;
	}
}

static void
admit_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admit_wait *w = arg;

	(void)fd;
	if (what & EV_TIMEOUT)
		admit_fail(w, SESSION_CLOSE_HANDSHAKE_TIMEOUT, "no complete header within handshake_timeout");
	else
		admit_read(w);
}

static void
admit_wait_header(struct loop *l, const struct config_listener *lc, struct pool *pool, evutil_socket_t fd,
		  const struct sockaddr *peer)
{
	struct admit_wait *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_error("cannot wait for a PROXY header: out of memory; connection closed");
		admit_close(fd);
		return;
	}
	w->ev = event_new(l->base, fd, EV_READ, admit_event_cb, w);
	if (w->ev == NULL) {
		log_error("cannot wait for a PROXY header: out of memory; connection closed");
		free(w);
		admit_close(fd);
		return;
	}
	w->loop = l;
	w->cfg = config_ref(l->cfg);
	w->lc = lc;
	w->pool = pool;
	pool_use(pool);
	w->fd = fd;
	memcpy(&w->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							   : sizeof(struct sockaddr_in));
	config_addr_format(peer, w->peer_text, sizeof(w->peer_text));
	w->deadline_ms = clock_ms() + l->cfg->limits.handshake_timeout_ms;
	LIST_INSERT_HEAD(&l->admitting, w, link);
	/* Most headers came in the connection's first segment: read now. */
	admit_read(w);
}

void
admit_connection(struct loop *l, const struct config_listener *lc, struct pool *pool, evutil_socket_t fd,
		 const struct sockaddr *peer)
{
	char text[ADMIT_PEER_LEN];

	if (lc->proxy_protocol == CONFIG_PROXY_OFF) {
		admit_session(l, lc, pool, fd, peer);
		return;
	}
	if (!admit_trusted(lc, peer)) {
		config_addr_format(peer, text, sizeof(text));
		LOOP_STAT_ADD(l, connections_refused, 1);
		LOOP_STAT_ADD(l, proxy_protocol_errors, 1);
		log_limited(&admit_limit_untrusted, LOG_INFO,
			    "client %s: refused: not in proxy_trusted of listener %s", text, lc->addr.text);
		admit_close(fd);
		return;
	}
	admit_wait_header(l, lc, pool, fd, peer);
}

void
admit_abort_all(struct loop *l)
{
	struct admit_wait *w;

	while ((w = LIST_FIRST(&l->admitting)) != NULL)
		admit_fail(w, SESSION_CLOSE_ABORTED, NULL);
}
