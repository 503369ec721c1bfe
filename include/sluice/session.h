/*
 * session — one client connection: its TLS, its state (handshake →
 * established → closing → closed), its timers, and its requests in arrival
 * order. It cuts frames out of the decrypted input, hands them to the pool,
 * and writes the responses back in request order, whichever backend
 * connection answered first. Answers reach it through its requests'
 * client ops (request.h), not through this header. Two files: session.c
 * (the connection's life) above session_io.c (what it reads and answers);
 * struct session, in session_io.h, is theirs alone.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <event2/util.h>

#include <sluice/frame.h>
#include <sluice/session_io.h>

struct config;
struct config_addr;
struct config_listener;
struct evbuffer;
struct pool;
struct loop;
struct request;

/* Takes ownership of fd (closed on failure), and of the count taken for
 * counted (addr_limit_take) unless NULL: given back when it closes. peer is
 * the client's address: the socket's, or the PROXY header's. Returns NULL
 * on failure, after logging why. */
struct addr_limit_key;
struct session *session_new(struct loop *l, const struct config_listener *lc,
			    struct pool *pool, evutil_socket_t fd,
			    const struct sockaddr *peer, const struct addr_limit_key *counted);

/* The same around a bufferevent made elsewhere (owned from here on, freed
 * on failure), using up one connection slot the caller took with
 * slots_take(). A fuzzer or a test hands in a plain one
 * with established set: the session then skips the TLS handshake. */
struct bufferevent;
struct session *session_attach(struct loop *l, const struct config_listener *lc,
			       struct pool *pool, struct bufferevent *bev,
			       const struct sockaddr *peer, int established);

/* Why a client connection ended: enum session_close_reason (session_io.h).
 * "client_quit", "proxy_quit", ... (metric label values). */
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
