/*
 * listener — accepts clients on one address for one worker. Every worker
 * binds its own socket with SO_REUSEPORT, so the kernel spreads connections
 * over workers without a shared accept lock. Past max_connections a
 * connection is closed at once and counted; when the process runs out of
 * file descriptors, the connections waiting are refused and accepting
 * pauses briefly instead of spinning on EMFILE.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <sluice/admit.h>
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
	unsigned relisten:1;                /* listen() failed after a refusal: retry */
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
	(void)salen;
	/* Both own fd and the counted slot from here, even on failure. */
	if (admit_needed(loop, l->conf))
		admit_connection(loop, l->conf, l->pool, fd, sa);
	else
		session_new(loop, l->conf, l->pool, fd, sa, NULL);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 0, LISTENER_PAUSE_MS * 1000 };

	(void)fd;
	(void)what;
	if (l->relisten) {
		if (listen(evconnlistener_get_fd(l->ev), LISTENER_BACKLOG) < 0) {
			if (evtimer_add(l->resume, &tv) < 0)
				log_error("listener %s: cannot arm the resume timer", l->conf->addr.text);
			return;
		}
		l->relisten = 0;
		log_info("listener %s: listening again", l->conf->addr.text);
	}
	if (evconnlistener_enable(l->ev) < 0)
		log_error("listener %s: cannot resume accepting", l->conf->addr.text);
}

/*
 * Out of descriptors, the connections waiting in the accept queue cannot
 * even be accepted to be refused: they would sit there while their
 * clients wait. The usual cure (nginx, libuv) keeps a spare descriptor,
 * closes it to make room for one accept, closes that connection and
 * reopens the spare. But workers are threads sharing one descriptor table:
 * between the close and the accept, or the close and the reopen, another
 * thread's accept or socket() takes the freed slot, the spare is lost, and
 * from then on this listener's clients hang. No dup() or dup2() closes
 * that window, as accept() always needs a free slot of its own.
 *
 * So no descriptor is used. On Linux, shutdown(SHUT_RD) on a listening
 * socket resets every connection in its accept queue and stops it
 * listening; listen() at once takes new ones again (the port stays bound,
 * and SO_REUSEPORT puts the socket back in its group). Nothing another
 * thread does to the descriptor table can get in the way. TCP_INFO's
 * tcpi_unacked, for a listening socket the length of its accept queue,
 * says how many are refused; one that completes its handshake between
 * that look and the shutdown is refused uncounted.
 */
static void
listener_refuse_waiting(struct listener *l)
{
	int fd = evconnlistener_get_fd(l->ev);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	unsigned waiting = 0;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
		waiting = ti.tcpi_unacked;
	if (shutdown(fd, SHUT_RD) < 0) {
		log_error("listener %s: cannot refuse the connections waiting: %s", l->conf->addr.text,
			  strerror(errno));
		return;
	}
	LOOP_STAT_ADD(l->loop, connections_refused, waiting);
	log_debug("listener %s: out of descriptors: refused %u waiting connections",
		  l->conf->addr.text, waiting);
	if (listen(fd, LISTENER_BACKLOG) < 0) {
		/* The resume timer tries again; until then the port is
		 * served by the other workers' sockets, or refused. */
		l->relisten = 1;
		log_error("listener %s: cannot listen again: %s; retrying every %d ms",
			  l->conf->addr.text, strerror(errno), LISTENER_PAUSE_MS);
	}
}

static void
listener_error_cb(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, LISTENER_PAUSE_MS * 1000 };

	if (err == EMFILE || err == ENFILE)
		listener_refuse_waiting(l);
	log_limited(&listener_limit_accept, LOG_WARN, "listener %s: accept failed: %s; pausing accepts for %d ms",
		    l->conf->addr.text, evutil_socket_error_to_string(err), LISTENER_PAUSE_MS);
	/* Accepting again at once would fail again at once, forever, on the
	 * next connection to arrive: descriptors come back only as clients
	 * leave. */
	if (evconnlistener_disable(ev) < 0)
		log_error("listener %s: cannot pause accepting", l->conf->addr.text);
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
	free(l);
}
