/*
 * session — one client connection, from TLS handshake to close: creating
 * it, its libevent callbacks and its timer, and the one way it ends
 * (session_free, with a reason). What it reads and answers once
 * established is session_io.c's.
 *
 * States: HANDSHAKE → ESTABLISHED → CLOSING (QUIT received or sent, or a
 * protocol error: no new requests once read_done) → DRAINING (all answered,
 * QUIT queued, output not read yet: cut off after grace_timeout without
 * progress) → CLOSED
 * (close_notify sent, lingering briefly so the client reads the end before
 * the socket closes).
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/config_addr.h>
#include <sluice/frame.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/route.h>
#include <sluice/session.h>
#include <sluice/session_io.h>
#include <sluice/slots.h>
#include <sluice/tls.h>

/* Lines a client can cause, rate-limited (SPEC §10; log.h). */
LOG_LIMIT(session_limit_handshake, "failed TLS handshakes");
LOG_LIMIT(session_limit_handshake_timeout, "TLS handshakes timed out");
LOG_LIMIT(session_limit_idle, "idle clients sent QUIT");
LOG_LIMIT(session_limit_drain, "clients cut off for not reading");
LOG_LIMIT(session_limit_left, "clients gone with requests unanswered");
LOG_LIMIT(session_limit_grace, "clients closed at the end of the grace period");

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_timer_cb(evutil_socket_t fd, short what, void *arg);
static void session_established(struct session *s);

static const char *const session_close_reason_names[SESSION_CLOSE_COUNT] = {
	[SESSION_CLOSE_CLIENT_QUIT] = "client_quit",
	[SESSION_CLOSE_PROXY_QUIT] = "proxy_quit",
	[SESSION_CLOSE_IDLE] = "idle",
	[SESSION_CLOSE_PROTOCOL] = "protocol_error",
	[SESSION_CLOSE_CLIENT_CLOSED] = "client_closed",
	[SESSION_CLOSE_RESET] = "reset",
	[SESSION_CLOSE_NO_HELLO] = "no_hello",
	[SESSION_CLOSE_HANDSHAKE] = "handshake_failed",
	[SESSION_CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[SESSION_CLOSE_BUFFER_LIMIT] = "buffer_limit",
	[SESSION_CLOSE_DRAIN_TIMEOUT] = "drain_timeout",
	[SESSION_CLOSE_ABORTED] = "aborted",
	[SESSION_CLOSE_INTERNAL] = "internal_error",
};

const char *
session_close_reason_name(enum session_close_reason r)
{
	return r < SESSION_CLOSE_COUNT ? session_close_reason_names[r] : "unknown";
}

struct session *
session_attach(struct loop *l, const struct config_listener *lc, struct pool *pool,
	       struct bufferevent *bev, const struct sockaddr *peer, int established)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		log_error("cannot allocate a session: out of memory; connection closed");
		goto fail;
	}
	s->magic = SESSION_MAGIC;
	s->loop = l;
	s->lc = lc;
	s->pool = pool;
	s->bev = bev;
	session_requests_init(s);
	s->reason = SESSION_CLOSE_COUNT;
	config_addr_format(peer, s->peer, sizeof(s->peer));
	s->timer = evtimer_new(l->base, session_timer_cb, s);
	if (s->timer == NULL) {
		log_error("client %s: cannot create timer; connection closed", s->peer);
		goto fail;
	}
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	fstream_cap_reads(bev, l->max_read);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) < 0) {
		log_error("client %s: cannot enable events; connection closed", s->peer);
		event_free(s->timer);
		goto fail;
	}
	s->cfg = config_ref(l->cfg);
	pool_use(pool);
	TAILQ_INSERT_TAIL(&l->sessions, s, loop_link);
	l->n_sessions++;
	LOOP_STAT_ADD(l, connections_total, 1);
	LOOP_STAT_ADD(l, connections_active, 1);
	log_debug("client %s: connected", s->peer);
	s->state = SESSION_HANDSHAKE;
	s->last_active_ms = clock_ms();
	if (established)
		session_established(s);
	else
		session_arm(s, l->cfg->limits.handshake_timeout_ms);
	return s;
fail:
	bufferevent_free(bev);
	free(s);
	slots_give();
	return NULL;
}

struct session *
session_new(struct loop *l, const struct config_listener *lc, struct pool *pool,
	    evutil_socket_t fd, const struct sockaddr *peer, const struct addr_limit_key *counted)
{
	struct bufferevent *bev;
	struct session *s;
	SSL *ssl;
	int one = 1;

	/* Small frames must not wait for Nagle; sluice batches writes itself. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_debug("client: TCP_NODELAY: %s", strerror(errno));
	ssl = tls_ctx_new_ssl(lc->tls_ctx);
	if (ssl == NULL)
		goto fail;
	bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_error("cannot create a TLS bufferevent for a client; connection closed");
		SSL_free(ssl);
		goto fail;
	}
	s = session_attach(l, lc, pool, bev, peer, 0);
	if (s != NULL && counted != NULL)
		s->addr_key = *counted;
	else if (counted != NULL)
		addr_limit_give(counted);
	return s;
fail:
	evutil_closesocket(fd);
	slots_give();
	if (counted != NULL)
		addr_limit_give(counted);
	return NULL;
}

/* The one way a session ends: every path comes here with its reason, which
 * is counted (sluice_connections_closed_total) unless an earlier cause was
 * recorded. Faults that cut a session short override the cause. */
static void
session_free(struct session *s, enum session_close_reason reason)
{
	struct loop *l = s->loop;

	switch (reason) {
	case SESSION_CLOSE_BUFFER_LIMIT:
	case SESSION_CLOSE_DRAIN_TIMEOUT:
	case SESSION_CLOSE_ABORTED:
	case SESSION_CLOSE_INTERNAL:
		s->reason = reason;
		break;
	default:
		session_note_reason(s, reason);
		break;
	}
	LOOP_STAT_ADD(l, connections_closed[s->reason], 1);
	log_debug("client %s: closed (%s)", s->peer, session_close_reason_name(s->reason));
	pool_client_unpause(&s->pc);
	session_release_requests(s);
	TAILQ_REMOVE(&l->sessions, s, loop_link);
	l->n_sessions--;
	event_free(s->timer);
	tls_session_done(bufferevent_openssl_get_ssl(s->bev));
	bufferevent_free(s->bev);
	pool_unuse(s->pool);
	config_unref(s->cfg);
	if (s->addr_key.family != 0)
		addr_limit_give(&s->addr_key);
	s->magic = 0;
	free(s);
	LOOP_STAT_SUB(l, connections_active, 1);
	slots_give();
	loop_closed(l);
}

void
session_abort(struct session *s, enum session_close_reason reason)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	/* close_notify only when nothing is left unsent: a client must be
	 * able to tell a complete stream from a cut one. */
	if (s->state != SESSION_HANDSHAKE && ssl != NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 && SSL_shutdown(ssl) < 0)
		ERR_clear_error();
	session_free(s, reason);
}

/* A client that reads, however slowly, finishes (as nginx's send_timeout
 * counts between two writes); one that read nothing for a whole period is
 * cut off. */
static void
session_drain_check(struct session *s)
{
	size_t left = evbuffer_get_length(bufferevent_get_output(s->bev));
	uint64_t period = session_drain_period(s);

	if (left < s->drain_left) {
		s->drain_left = left;
		session_arm(s, period);
		return;
	}
	LOOP_STAT_ADD(s->loop, timeouts_drain, 1);
	log_limited(&session_limit_drain, LOG_INFO, "client %s: read none of its last %zu bytes for %llu ms; closing without close_notify",
		 s->peer, left, (unsigned long long)period);
	session_reset_on_close(s);
	session_abort(s, SESSION_CLOSE_DRAIN_TIMEOUT);
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = session_check(arg);
	struct evbuffer *in = bufferevent_get_input(bev);

	loop_clock(s->loop);
	if (s->read_done) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	session_process(s);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = session_check(arg);

	(void)bev;
	switch (s->state) {
	case SESSION_HANDSHAKE:
	case SESSION_CLOSED:
		return;
	case SESSION_ESTABLISHED:
	case SESSION_CLOSING:
	case SESSION_DRAINING:
		break;
	}
	if (s->read_done) {
		session_finish_when_done(s);
		return;
	}
	/* Output drained: a session paused on its own budget may go on. */
	if (s->read_paused && !pool_client_paused(&s->pc))
		session_resume(s);
}

/* listen[].routes: the client moves to its route's backend before its
 * first request is read, by the routes of the snapshot it was accepted
 * under (those its certificate came from too) and the pools in force. */
static void
session_route(struct session *s, SSL *ssl)
{
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	const char *sni = NULL;
	const struct config_route *r;
	struct pool *p;

	if (ssl != NULL) {
		sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	}
	r = route_match(s->lc, sni, alpn, alpn_len);
	if (r == NULL)
		return;
	p = loop_pool_named(s->loop, r->backend_name);
	if (p == NULL) {
		/* A reload removed the backend since the client came. */
		log_debug("client %s: backend %s of its route is gone; staying on %s", s->peer,
			  r->backend_name, s->pool->name);
		return;
	}
	if (p != s->pool) {
		pool_use(p);
		pool_unuse(s->pool);
		s->pool = p;
	}
	log_debug("client %s: routed to backend %s", s->peer, p->name);
}

static void
session_established(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	assert(s->state == SESSION_HANDSHAKE);
	if (s->lc->n_routes > 0)
		session_route(s, ssl);
	s->state = SESSION_ESTABLISHED;
	s->last_active_ms = clock_ms();
	session_arm(s, s->loop->cfg->limits.idle_timeout_ms);
	if (ssl != NULL) {
		LOOP_STAT_ADD(s->loop, handshakes[SSL_session_reused(ssl) ? 1 : 0], 1);
		log_debug("client %s: TLS established (%s, %s)", s->peer, SSL_get_version(ssl),
			  SSL_get_cipher_name(ssl));
	}
	/* Bytes that came with the handshake's last flight are already here. */
	loop_clock(s->loop);
	session_process(s);
}

static void
session_handshake_failed(struct session *s)
{
	SSL *ssl;
	unsigned long e = bufferevent_get_openssl_error(s->bev);
	char reason[160] = "connection closed during the handshake";
	enum tls_cert_failure why;

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else if (EVUTIL_SOCKET_ERROR() != 0 && errno != 0)
		snprintf(reason, sizeof(reason), "%s", strerror(errno));
	while (bufferevent_get_openssl_error(s->bev) != 0)
		;
	ERR_clear_error();
	/* A TCP health check connects and closes without a byte: that is no
	 * failed handshake, and counting it would drown the real ones. */
	ssl = bufferevent_openssl_get_ssl(s->bev);
	if (ssl != NULL && BIO_number_read(SSL_get_rbio(ssl)) == 0) {
		log_debug("client %s: closed before sending a TLS ClientHello", s->peer);
		session_free(s, SESSION_CLOSE_NO_HELLO);
		return;
	}
	LOOP_STAT_ADD(s->loop, handshake_failures, 1);
	why = tls_cert_failure_of(ssl, e);
	if (why != TLS_CERT_OK) {
		LOOP_STAT_ADD(s->loop, client_cert_failures[why], 1);
		log_limited(&session_limit_handshake, LOG_INFO, "client %s: TLS handshake failed: %s (client certificate: %s)", s->peer,
			 reason, tls_cert_failure_name(why));
	} else {
		log_limited(&session_limit_handshake, LOG_INFO, "client %s: TLS handshake failed: %s", s->peer, reason);
	}
	session_free(s, SESSION_CLOSE_HANDSHAKE);
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = session_check(arg);

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		session_established(s);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	switch (s->state) {
	case SESSION_HANDSHAKE:
		session_handshake_failed(s);
		return;
	case SESSION_CLOSED:
		session_free(s, SESSION_CLOSE_CLIENT_CLOSED);
		return;
	case SESSION_ESTABLISHED:
	case SESSION_CLOSING:
	case SESSION_DRAINING:
		while (bufferevent_get_openssl_error(s->bev) != 0)
			;
		ERR_clear_error();
		if (s->n_reqs > 0)
			log_limited(&session_limit_left, LOG_INFO, "client %s: left with %u requests unanswered; their responses will be discarded",
				 s->peer, s->n_reqs);
		session_free(s, (what & BEV_EVENT_EOF) ? SESSION_CLOSE_CLIENT_CLOSED : SESSION_CLOSE_RESET);
		return;
	}
}

/* idle_timeout: no request outstanding and, for that long, no whole frame
 * read and no last answer sent (bytes of an unfinished frame do not
 * count). */
static void
session_idle_check(struct session *s)
{
	uint64_t idle = s->loop->cfg->limits.idle_timeout_ms;
	uint64_t now = clock_ms();
	uint64_t quiet = now - s->last_active_ms;

	if (s->n_reqs > 0 || quiet < idle) {
		session_arm(s, s->n_reqs > 0 ? idle : idle - quiet);
		return;
	}
	LOOP_STAT_ADD(s->loop, timeouts_idle, 1);
	log_limited(&session_limit_idle, LOG_INFO, "client %s: idle for %llu ms; sending QUIT", s->peer, (unsigned long long)quiet);
	session_note_reason(s, SESSION_CLOSE_IDLE);
	session_shutdown(s);
}

static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_check(arg);

	(void)fd;
	(void)what;
	switch (s->state) {
	case SESSION_HANDSHAKE:
		LOOP_STAT_ADD(s->loop, timeouts_handshake, 1);
		log_limited(&session_limit_handshake_timeout, LOG_INFO, "client %s: TLS handshake not completed within %llu ms; closing", s->peer,
			 (unsigned long long)s->loop->cfg->limits.handshake_timeout_ms);
		session_free(s, SESSION_CLOSE_HANDSHAKE_TIMEOUT);
		return;
	case SESSION_ESTABLISHED:
		session_idle_check(s);
		return;
	case SESSION_CLOSING:
		/* Only ever armed as a grace period (session_shutdown): what
		 * is answered by now was delivered; the rest is dropped. */
		log_limited(&session_limit_grace, LOG_INFO, "client %s: grace period over with %u requests unanswered; closing", s->peer, s->n_reqs);
		session_release_requests(s);
		if (session_stop_reading(s) < 0)
			return;
		session_finish_when_done(s);
		return;
	case SESSION_DRAINING:
		session_drain_check(s);
		return;
	case SESSION_CLOSED:
		session_free(s, SESSION_CLOSE_CLIENT_CLOSED);
		return;
	}
}

void
session_shutdown(struct session *s)
{
	switch (s->state) {
	case SESSION_HANDSHAKE:
		session_free(s, SESSION_CLOSE_PROXY_QUIT);
		return;
	case SESSION_CLOSING:
		/* A close the client began has no deadline of its own; the
		 * shutdown's grace bounds it too. One the proxy began keeps
		 * the grace it has. */
		if (!evtimer_pending(s->timer, NULL))
			session_arm(s, s->loop->cfg->grace_timeout_ms);
		return;
	case SESSION_DRAINING:   /* has its deadline */
	case SESSION_CLOSED:
		return;
	case SESSION_ESTABLISHED:
		break;
	}
	/* The output only ever holds whole frames, so the end of it is a frame
	 * boundary: the QUIT can go there now. */
	if (frame_add_quit(bufferevent_get_output(s->bev)) < 0) {
		session_free(s, SESSION_CLOSE_INTERNAL);
		return;
	}
	s->quit_sent = 1;
	session_note_reason(s, SESSION_CLOSE_PROXY_QUIT);
	s->state = SESSION_CLOSING;
	session_arm(s, s->loop->cfg->grace_timeout_ms);
}

void
session_shutdown_all(struct loop *l)
{
	struct session *s, *next;

	for (s = TAILQ_FIRST(&l->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, loop_link);
		session_shutdown(s);
	}
}

void
session_shutdown_listener(struct loop *l, const struct config_addr *addr)
{
	struct session *s, *next;

	for (s = TAILQ_FIRST(&l->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, loop_link);
		if (config_addr_equal(&s->lc->addr, addr))
			session_shutdown(s);
	}
}

void
session_abort_all(struct loop *l)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&l->sessions)) != NULL)
		session_abort(s, SESSION_CLOSE_ABORTED);
}
