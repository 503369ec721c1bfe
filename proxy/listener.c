/*
 * listener — accepts clients on one address for one worker. Every worker
 * binds its own socket with SO_REUSEPORT, so the kernel spreads connections
 * over workers without a shared accept lock. Past max_connections a
 * connection is closed at once and counted; when the process runs out of
 * file descriptors, accepting pauses briefly instead of spinning on EMFILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <sluice/config.h>
#include <sluice/listener.h>
#include <sluice/log.h>
#include <sluice/loop.h>
#include <sluice/session.h>
#include <sluice/slots.h>

#define LISTENER_BACKLOG 1024
#define LISTENER_PAUSE_MS 100

/* Lines a flood of clients causes are rate-limited (SPEC §10). */
LOG_LIMIT(listener_limit_refused, "connections refused at max_connections");
LOG_LIMIT(listener_limit_accept, "accept failures");

struct listener {
	struct loop *loop;
	const struct config_listener *conf; /* in the worker's config snapshot */
	struct pool *pool;
	struct evconnlistener *ev;
	struct event *resume;               /* re-enables accepting after EMFILE */
	int reserve_fd;                     /* spent to refuse one client on EMFILE */
};

static void
listener_accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
		   int salen, void *arg)
{
	struct listener *l = arg;
	struct loop *loop = l->loop;
	unsigned long open = slots_take();

	(void)ev;
	if (open > loop->cfg->limits.max_connections) {
		slots_give();
		LOOP_STAT_ADD(loop, connections_refused, 1);
		log_limited(&listener_limit_refused, LOG_DEBUG,
			    "listener %s: refused a connection: max_connections (%llu) reached",
			    l->conf->addr.text, (unsigned long long)loop->cfg->limits.max_connections);
		evutil_closesocket(fd);
		return;
	}
	/* session_new owns fd and the counted slot from here, even on failure. */
	session_new(loop, l->conf, l->pool, fd, sa, salen);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (evconnlistener_enable(l->ev) < 0)
		log_error("listener %s: cannot resume accepting", l->conf->addr.text);
}

/* Out of descriptors, the pending connection cannot even be accepted to be
 * refused: it would sit in the backlog while the client waits. A spare
 * descriptor kept for this moment lets sluice accept it and close it at
 * once (nginx and libuv do the same). */
static void
listener_refuse_with_reserve(struct listener *l)
{
	int fd;

	if (l->reserve_fd < 0)
		return;
	close(l->reserve_fd);
	fd = accept(evconnlistener_get_fd(l->ev), NULL, NULL);
	if (fd >= 0) {
		close(fd);
		LOOP_STAT_ADD(l->loop, connections_refused, 1);
	}
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
listener_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, LISTENER_PAUSE_MS * 1000 };

	if (err == EMFILE || err == ENFILE)
		listener_refuse_with_reserve(l);
	log_limited(&listener_limit_accept, LOG_WARN, "listener %s: accept failed: %s; pausing accepts for %d ms",
		    l->conf->addr.text, evutil_socket_error_to_string(err), LISTENER_PAUSE_MS);
	/* EMFILE/ENFILE leave the connection in the backlog: accepting again
	 * at once would fail again at once, forever. */
	evconnlistener_disable(ev);
	if (evtimer_add(l->resume, &tv) < 0)
		log_error("listener %s: cannot arm the resume timer", l->conf->addr.text);
}

int
listener_bind(const struct config_addr *addr)
{
	int one = 1;
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
	    listen(fd, LISTENER_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	log_error("listener %s: cannot listen: %s", addr->text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

struct listener *
listener_new(struct loop *loop, const struct config_listener *lc, struct pool *pool, int fd)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		log_error("listener %s: out of memory", lc->addr.text);
		close(fd);
		return NULL;
	}
	l->loop = loop;
	l->conf = lc;
	l->pool = pool;
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->resume = evtimer_new(loop->base, listener_resume_cb, l);
	if (l->resume != NULL)
		/* Backlog 0: the socket already listens with LISTENER_BACKLOG;
		 * -1 would make libevent call listen() again with 128, and a
		 * burst past that would see its SYNs dropped. */
		l->ev = evconnlistener_new(loop->base, listener_accept_cb, l,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->ev == NULL) {
		log_error("listener %s: cannot serve its socket: out of memory", lc->addr.text);
		if (l->resume != NULL)
			event_free(l->resume);
		if (l->reserve_fd >= 0)
			close(l->reserve_fd);
		close(fd);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->ev, listener_error_cb);
	return l;
}

void
listener_update(struct listener *l, const struct config_listener *lc, struct pool *pool)
{
	l->conf = lc;
	l->pool = pool;
}

const struct config_listener *
listener_conf(const struct listener *l)
{
	return l->conf;
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	evconnlistener_free(l->ev);
	event_free(l->resume);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	free(l);
}
