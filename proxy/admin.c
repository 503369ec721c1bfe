/*
 * admin — plain HTTP on admin.address, served by evhttp on the main
 * thread: GET /metrics (Prometheus text) and GET /healthz (200 serving,
 * 503 draining). Anything else is 404; methods other than GET/HEAD are 405.
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/listener.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <sluice/admin.h>
#include <sluice/config.h>
#include <sluice/log.h>

#define ADMIN_MAX_BODY 1024

struct admin {
	struct evhttp *http;
	struct evconnlistener *listener; /* owned by http */
	struct event *resume;         /* accepting again after EMFILE */
	admin_render_fn render;
	void *arg;
	int draining;
	char addr[128];
	struct admin *next;           /* admin_all */
};

/* Every admin endpoint (two for a moment during a reload that moves it):
 * the listener's error callback only gets evhttp's pointer. Main thread
 * only. */
static struct admin *admin_all;

#define ADMIN_PAUSE_MS 100

static void
admin_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;

	(void)fd;
	(void)what;
	if (evconnlistener_enable(a->listener) < 0)
		log_error("admin %s: cannot resume accepting", a->addr);
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
	log_warn("admin %s: accept failed: %s; pausing accepts for %d ms", a->addr,
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), ADMIN_PAUSE_MS);
	if (evconnlistener_disable(l) < 0 || evtimer_add(a->resume, &tv) < 0)
		log_error("admin %s: cannot pause accepting", a->addr);
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

	if (body == NULL || a->render(body, a->arg) < 0) {
		log_error("admin %s: cannot render /metrics", a->addr);
		if (body != NULL)
			evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, "cannot render metrics");
		return;
	}
	admin_send(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

static void
admin_cb(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

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
	else
		admin_reply_text(req, HTTP_NOTFOUND, "Not Found", "try /metrics or /healthz\n");
}

struct admin *
admin_new(struct event_base *base, const struct config_addr *addr, admin_render_fn render, void *arg)
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
	a->render = render;
	a->arg = arg;
	a->http = evhttp_new(base);
	if (a->http == NULL)
		goto fail;
	/* Every method reaches admin_cb, so each refusal carries Allow. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(a->http, 10);
	evhttp_set_max_headers_size(a->http, 8192);
	/* Room for a small body, so that a POST with one is told 405 (the
	 * method) rather than 413 (its size). */
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(a->http, admin_cb, a);
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
	a->resume = evtimer_new(base, admin_resume_cb, a);
	if (a->resume == NULL)
		goto fail;
	evconnlistener_set_error_cb(l, admin_accept_error_cb);
	a->next = admin_all;
	admin_all = a;
	log_info("admin endpoint on http://%s (/metrics, /healthz)", a->addr);
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
	event_free(a->resume);
	evhttp_free(a->http);
	free(a);
}
