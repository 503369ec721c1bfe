/*
 * session — one client connection: its TLS, its state (handshake →
 * established → closing → closed), its timers, and its requests in arrival
 * order. It cuts frames out of the decrypted input, hands them to the pool,
 * and writes the responses back in request order, whichever backend
 * connection answered first. Answers reach it through its requests'
 * client ops (request.h), not through this header.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <event2/util.h>

#include <sluice/frame.h>

struct config;
struct config_addr;
struct config_listener;
struct evbuffer;
struct pool;
struct loop;
struct request;

/* Takes ownership of fd (closed on failure). Returns NULL on failure, after
 * logging why. */
struct session *session_new(struct loop *l, const struct config_listener *lc,
			    struct pool *pool, evutil_socket_t fd,
			    const struct sockaddr *peer, int peer_len);

/* The same around a bufferevent made elsewhere (owned from here on, freed
 * on failure), using up one connection slot the caller took with
 * slots_take(). A fuzzer or a test hands in a plain one
 * with established set: the session then skips the TLS handshake. */
struct bufferevent;
struct session *session_attach(struct loop *l, const struct config_listener *lc,
			       struct pool *pool, struct bufferevent *bev,
			       const struct sockaddr *peer, int established);

/* Why a client connection ended: sluice_connections_closed_total{reason}
 * and the log. */
enum session_close_reason {
	SESSION_CLOSE_CLIENT_QUIT,        /* the client sent QUIT */
	SESSION_CLOSE_PROXY_QUIT,         /* sluice's QUIT: shutdown, listener removed */
	SESSION_CLOSE_IDLE,               /* idle_timeout, then sluice's QUIT */
	SESSION_CLOSE_PROTOCOL,           /* an invalid frame: ERR PROTOCOL, QUIT */
	SESSION_CLOSE_CLIENT_CLOSED,      /* the client closed without QUIT */
	SESSION_CLOSE_RESET,              /* a connection error (reset, TLS alert) */
	SESSION_CLOSE_NO_HELLO,           /* closed before a ClientHello (TCP checks) */
	SESSION_CLOSE_HANDSHAKE,          /* the TLS handshake failed */
	SESSION_CLOSE_HANDSHAKE_TIMEOUT,  /* no handshake within handshake_timeout */
	SESSION_CLOSE_BUFFER_LIMIT,       /* unread answers passed the hard bound */
	SESSION_CLOSE_DRAIN_TIMEOUT,      /* its last output not read within the grace */
	SESSION_CLOSE_ABORTED,            /* immediate stop (second signal) */
	SESSION_CLOSE_INTERNAL,           /* out of memory, an event that failed */
};
#define SESSION_CLOSE_COUNT 13
/* "client_quit", "proxy_quit", ... (metric label values). */
const char *session_close_reason_name(enum session_close_reason r);

/* Proxy-initiated close (graceful shutdown, listener removed): sends QUIT at
 * the next frame boundary and lets the client finish within grace_timeout. */
void session_shutdown(struct session *s);

/* Frees the session at once, discarding its responses (worker exit). */
void session_abort(struct session *s, enum session_close_reason reason);

/* The same for every session of a loop, or of one listener address. */
void session_shutdown_all(struct loop *l);
void session_shutdown_listener(struct loop *l, const struct config_addr *addr);
void session_abort_all(struct loop *l);

#endif
