/*
 * admin — plain HTTP on admin.address, served by evhttp on the main
 * thread: GET /metrics (Prometheus text), GET /healthz (200 serving,
 * 503 draining), GET /livez and GET /readyz (200, or 503 with the reason
 * the owner's ops give). Anything else is 404; methods other than
 * GET/HEAD are 405.
 *
 * A scraper must not be able to take descriptors or time from clients
 * (SPEC §7), and evhttp alone bounds neither: it accepts every connection
 * and its timeout restarts with each byte. So every connection gets a
 * record here, from evhttp's bufferevent callback (called for each
 * accepted socket), that bounds both:
 *
 *   accept ─▶ admin_bev_cb: counted, deadline armed, our reference on its
 *       bufferevent; at ADMIN_MAX_CONNECTIONS the listener stops accepting
 *   first complete request ─▶ admin_cb: adopted (close callback set, our
 *       reference dropped); each request re-arms the deadline
 *   closed by evhttp ─▶ admin_conn_closed: uncounted, accepting again
 *   deadline ─▶ shutdown(2): evhttp sees the end and frees it
 *
 * evhttp tells nothing about a connection before its first request, so
 * until then our reference keeps the bufferevent (and its descriptor)
 * alive: one that ends without a request keeps its place until its
 * deadline, which bounds how long that can be.
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <sluice/admin.h>
#include <sluice/config.h>
#include <sluice/log.h>

#define ADMIN_MAX_BODY 1024
/* A probe's one-line reason ("backend NAME: no server up"). */
#define ADMIN_REASON_MAX 256
#define ADMIN_MAX_HEADERS 8192
/* Unread input a connection may hold: a request head and body, twice. */
#define ADMIN_READ_MAX (2 * (ADMIN_MAX_HEADERS + ADMIN_MAX_BODY))

struct admin_conn;

struct admin {
	struct evhttp *http;
	struct evconnlistener *listener; /* owned by http */
	struct event *resume;         /* accepting again after EMFILE */
	const struct admin_ops *ops;
	void *arg;
	int draining;
	struct admin_conn *conns;     /* every open connection, at most
				       * ADMIN_MAX_CONNECTIONS */
	unsigned n_conns;
	unsigned paused:1;            /* out of descriptors: resume is armed */
	unsigned accepting:1;         /* the listener is enabled */
	unsigned freeing:1;           /* in admin_free: the listener is gone */
	char addr[128];
	struct admin *next;           /* admin_all */
};

/* One accepted connection. Owned by its admin (conns); freed when evhttp
 * closes it (once adopted) or at its deadline (before). */
struct admin_conn {
	struct admin *admin;
	struct bufferevent *bev;      /* evhttp's; referenced by us until adopted */
	struct evhttp_connection *evcon; /* once adopted, until its close callback */
	struct event *deadline;
	struct admin_conn *prev, *next;
};

/* Every admin endpoint (two for a moment during a reload that moves it):
 * the listener's error callback only gets evhttp's pointer. Main thread
 * only. */
static struct admin *admin_all;

#define ADMIN_PAUSE_MS 100

/* Accepts while there is room and descriptors are not short. Disabling
 * from inside evhttp's accept callback also stops libevent's accept loop
 * at once, so the bound holds even for a burst. */
static void
admin_update_accepting(struct admin *a)
{
	unsigned want = !a->paused && a->n_conns < ADMIN_MAX_CONNECTIONS;

	if (a->freeing || want == a->accepting)
		return;
	if ((want ? evconnlistener_enable(a->listener) : evconnlistener_disable(a->listener)) < 0) {
		log_error("admin %s: cannot %s accepting", a->addr, want ? "resume" : "stop");
		return;
	}
	a->accepting = want;
	if (!want && !a->paused)
		log_debug("admin %s: %u connections open; accepting again when one ends", a->addr,
			  a->n_conns);
}

static void
admin_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;

	(void)fd;
	(void)what;
	a->paused = 0;
	admin_update_accepting(a);
}

/* Out of descriptors: without this, libevent retries accept at once,
 * forever, on the connection left in the backlog. */
static void
admin_accept_error_cb(struct evconnlistener *l, void *http)
{
	struct timeval tv = { 0, ADMIN_PAUSE_MS * 1000 };
	struct admin *a;

	for (a = admin_all; a != NULL && a->http != http; a = a->next)
		;
	if (a == NULL)
		return;
	(void)l;
	log_warn("admin %s: accept failed: %s; pausing accepts for %d ms", a->addr,
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), ADMIN_PAUSE_MS);
	a->paused = 1;
	admin_update_accepting(a);
	if (evtimer_add(a->resume, &tv) < 0)
		log_error("admin %s: cannot pause accepting", a->addr);
}

/* ---- the connection bound and the deadline --------------------------------- */

static void
admin_conn_free(struct admin_conn *c)
{
	struct admin *a = c->admin;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	a->n_conns--;
	event_free(c->deadline);
	/* Before adoption, ours may be the last reference: dropping it closes
	 * the descriptor (BEV_OPT_CLOSE_ON_FREE). */
	if (c->evcon == NULL)
		(void)bufferevent_decref(c->bev);
	free(c);
	admin_update_accepting(a);
}

/* evhttp is closing an adopted connection. */
static void
admin_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	admin_conn_free(arg);
}

/* The connection took too long over a request, however steadily it sent
 * or read. shutdown() rather than close(): evhttp still owns the
 * descriptor, and sees an ordinary end of connection on it. */
static void
admin_conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn *c = arg;
	struct bufferevent *bev = c->evcon != NULL ? evhttp_connection_get_bufferevent(c->evcon) : c->bev;
	evutil_socket_t sock = bufferevent_getfd(bev);

	(void)fd;
	(void)what;
	log_info("admin %s: closing a connection that went %d ms without completing a request",
		 c->admin->addr, ADMIN_DEADLINE_MS);
	if (sock >= 0 && shutdown(sock, SHUT_RDWR) < 0)
		log_debug("admin %s: shutdown: %s", c->admin->addr,
			  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	/* Adopted: evhttp frees it on the end it now sees, and the close
	 * callback frees the record. Not adopted: evhttp may have let go
	 * of it already, and will say nothing either way. */
	if (c->evcon == NULL)
		admin_conn_free(c);
}

static int
admin_conn_arm(struct admin_conn *c)
{
	struct timeval tv = { ADMIN_DEADLINE_MS / 1000, (ADMIN_DEADLINE_MS % 1000) * 1000 };

	return evtimer_add(c->deadline, &tv);
}

/* evhttp asks for the bufferevent of each socket it has just accepted. */
static struct bufferevent *
admin_bev_cb(struct event_base *base, void *arg)
{
	struct admin *a = arg;
	struct admin_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		goto fail;
	c->admin = a;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(base, admin_conn_deadline_cb, c);
	if (c->bev == NULL || c->deadline == NULL || admin_conn_arm(c) < 0)
		goto fail;
	/* evhttp frees its bufferevent without a word when a connection ends
	 * before its first request: this reference keeps it, and so the
	 * descriptor counted here, until the record lets go of it. */
	bufferevent_incref(c->bev);
	/* Until that reference goes, the bufferevent would read whatever a
	 * client sends after evhttp let go of it. evhttp itself never needs
	 * more than a request head and a small body buffered. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, ADMIN_READ_MAX);
	c->next = a->conns;
	if (c->next != NULL)
		c->next->prev = c;
	a->conns = c;
	a->n_conns++;
	admin_update_accepting(a);
	return c->bev;
fail:
	/* evhttp makes a bufferevent of its own, or closes the socket when
	 * it cannot either: this one goes unbounded. */
	log_error("admin %s: out of memory: a connection goes without a deadline", a->addr);
	if (c != NULL) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		free(c);
	}
	return NULL;
}

/* The first complete request shows which evhttp connection a record is:
 * from then on its close callback frees the record. Each request gets
 * the whole deadline again, for its answer and the next request. */
static void
admin_conn_request(struct admin *a, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct admin_conn *c;

	if (evcon == NULL)
		return;
	for (c = a->conns; c != NULL; c = c->next) {
		if (c->evcon == evcon || (c->evcon == NULL && c->bev == bev))
			break;
	}
	if (c == NULL)
		return;
	if (c->evcon == NULL) {
		c->evcon = evcon;
		evhttp_connection_set_closecb(evcon, admin_conn_closed, c);
		(void)bufferevent_decref(c->bev);
		c->bev = NULL;
	}
	if (admin_conn_arm(c) < 0)
		log_error("admin %s: cannot re-arm a connection's deadline", a->addr);
}

/* Sends body (freed here) with its type. evhttp sends a body even to HEAD,
 * which would leave the client's next response misframed: HEAD gets the
 * headers alone, with the length GET would have. */
static void
admin_send(struct evhttp_request *req, int code, const char *reason, const char *type,
	   struct evbuffer *body)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	char length[32];

	snprintf(length, sizeof(length), "%zu", evbuffer_get_length(body));
	if (evhttp_add_header(headers, "Content-Type", type) < 0 ||
	    (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD &&
	     (evhttp_add_header(headers, "Content-Length", length) < 0 ||
	      evbuffer_drain(body, evbuffer_get_length(body)) < 0))) {
		evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

static void
admin_reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL || evbuffer_add(body, text, strlen(text)) < 0) {
		if (body != NULL)
			evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		return;
	}
	admin_send(req, code, reason, "text/plain; charset=utf-8", body);
}

static void
admin_metrics(struct admin *a, struct evhttp_request *req)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL || a->ops->render(body, a->arg) < 0) {
		log_error("admin %s: cannot render /metrics", a->addr);
		if (body != NULL)
			evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, "cannot render metrics");
		return;
	}
	admin_send(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

/* /livez or /readyz: 200 with ok, or 503 with the one-line reason. */
static void
admin_probe(struct evhttp_request *req, int passed, const char *ok, const char *why)
{
	char line[ADMIN_REASON_MAX + 2];

	if (passed) {
		admin_reply_text(req, HTTP_OK, "OK", ok);
		return;
	}
	snprintf(line, sizeof(line), "%s\n", why);
	admin_reply_text(req, 503, "Service Unavailable", line);
}

static void
admin_readyz(struct admin *a, struct evhttp_request *req)
{
	char why[ADMIN_REASON_MAX] = "not ready";

	if (a->draining)
		admin_probe(req, 0, NULL, "draining");
	else
		admin_probe(req, a->ops->ready(why, sizeof(why), a->arg), "ready\n", why);
}

static void
admin_livez(struct admin *a, struct evhttp_request *req)
{
	char why[ADMIN_REASON_MAX] = "not live";

	admin_probe(req, a->ops->live(why, sizeof(why), a->arg), "live\n", why);
}

static void
admin_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	admin_conn_request(a, req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		/* RFC 9110 §15.5.6: a 405 names the methods that would do. */
		if (evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD") < 0) {
			evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
			return;
		}
		admin_reply_text(req, 405, "Method Not Allowed", "only GET and HEAD\n");
		return;
	}
	if (path != NULL && strcmp(path, "/metrics") == 0)
		admin_metrics(a, req);
	else if (path != NULL && strcmp(path, "/healthz") == 0 && !a->draining)
		admin_reply_text(req, HTTP_OK, "OK", "serving\n");
	else if (path != NULL && strcmp(path, "/healthz") == 0)
		admin_reply_text(req, 503, "Service Unavailable", "draining\n");
	else if (path != NULL && strcmp(path, "/livez") == 0)
		admin_livez(a, req);
	else if (path != NULL && strcmp(path, "/readyz") == 0)
		admin_readyz(a, req);
	else
		admin_reply_text(req, HTTP_NOTFOUND, "Not Found",
				 "try /metrics, /healthz, /livez or /readyz\n");
}

struct admin *
admin_new(struct event_base *base, const struct config_addr *addr, const struct admin_ops *ops,
	  void *arg)
{
	struct admin *a = calloc(1, sizeof(*a));
	struct evconnlistener *l;
	evutil_socket_t fd;
	int one = 1;

	if (a == NULL) {
		log_error("admin %s: out of memory", addr->text);
		return NULL;
	}
	snprintf(a->addr, sizeof(a->addr), "%s", addr->text);
	a->ops = ops;
	a->arg = arg;
	a->http = evhttp_new(base);
	if (a->http == NULL)
		goto fail;
	/* Every method reaches admin_cb, so each refusal carries Allow. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	/* Inactivity (reading or writing), shorter than the deadline so that
	 * an idle keep-alive connection ends quietly before it. */
	evhttp_set_timeout(a->http, ADMIN_IDLE_S);
	evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
	/* Room for a small body, so that a POST with one is told 405 (the
	 * method) rather than 413 (its size). */
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(a->http, admin_cb, a);
	evhttp_set_bevcb(a->http, admin_bev_cb, a);
	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(fd, 128) < 0) {
		evutil_closesocket(fd);
		goto fail;
	}
	l = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l == NULL || evhttp_bind_listener(a->http, l) == NULL) {
		if (l != NULL)
			evconnlistener_free(l);
		else
			evutil_closesocket(fd);
		goto fail;
	}
	a->listener = l;
	a->accepting = 1;
	a->resume = evtimer_new(base, admin_resume_cb, a);
	if (a->resume == NULL)
		goto fail;
	evconnlistener_set_error_cb(l, admin_accept_error_cb);
	a->next = admin_all;
	admin_all = a;
	log_info("admin endpoint on http://%s (/metrics, /healthz, /livez, /readyz)", a->addr);
	return a;
fail:
	log_error("admin %s: cannot listen: %s", addr->text,
		  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (a->http != NULL)
		evhttp_free(a->http);
	free(a);
	return NULL;
}

void
admin_set_draining(struct admin *a, int draining)
{
	a->draining = draining;
}

void
admin_free(struct admin *a)
{
	struct admin **p;

	for (p = &admin_all; *p != NULL; p = &(*p)->next) {
		if (*p == a) {
			*p = a->next;
			break;
		}
	}
	/* evhttp_free frees the listener, then each connection: adopted ones
	 * go through admin_conn_closed, which must not touch the listener. */
	a->freeing = 1;
	evhttp_free(a->http);
	while (a->conns != NULL)
		admin_conn_free(a->conns);
	event_free(a->resume);
	free(a);
}
