/*
 * session — one client connection: its TLS, its state (handshake →
 * established → closing → closed), its timers, and its requests in arrival
 * order. It cuts frames out of the decrypted input, hands them to the pool,
 * and writes the responses back in request order, whichever backend
 * connection answered first.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <event2/util.h>

struct config;
struct config_addr;
struct config_listener;
struct evbuffer;
struct pool;
struct request;
struct worker;

/* Takes ownership of fd (closed on failure). Returns NULL on failure, after
 * logging why. */
struct session *session_new(struct worker *w, const struct config_listener *lc,
			    struct pool *pool, evutil_socket_t fd,
			    const struct sockaddr *peer, int peer_len);

/* The same around a bufferevent made elsewhere (owned from here on, freed
 * on failure), using up one connection slot the caller took with
 * listener_connection_opened(). A fuzzer or a test hands in a plain one
 * with established set: the session then skips the TLS handshake. */
struct bufferevent;
struct session *session_attach(struct worker *w, const struct config_listener *lc,
			       struct pool *pool, struct bufferevent *bev,
			       const struct sockaddr *peer, int established);

/* Proxy-initiated close (graceful shutdown, listener removed): sends QUIT at
 * the next frame boundary and lets the client finish within grace_timeout. */
void session_shutdown(struct session *s);

/* Frees the session at once, discarding its responses (worker exit). */
void session_abort(struct session *s, const char *reason);

/* The same for every session of a worker, or of one listener address. */
void session_shutdown_all(struct worker *w);
void session_shutdown_listener(struct worker *w, const struct config_addr *addr);
void session_abort_all(struct worker *w);

/* The backend answered req with the first len bytes of src; they are moved
 * (not copied) to the client, now or when req's turn comes. The caller has
 * taken req out of its queue (pool or upstream FIFO): from here on it is
 * REQUEST_ANSWERING until answered, even when answering it fails. */
void session_respond(struct request *req, struct evbuffer *src, uint32_t len);

/* The same in two steps, so that consecutive answers to one session move
 * in one go: when req is its session's oldest request, session_take_head
 * accounts for its answer (len bytes) and returns the session; the caller
 * then hands over the run's bytes with session_deliver before anything
 * else reads src. NULL otherwise (use session_respond). */
struct session *session_take_head(struct request *req, uint32_t len);
void session_deliver(struct session *s, struct evbuffer *src, size_t len);

/* sluice answers req itself with "ERR CODE message" (req out of its queue,
 * as for session_respond). */
void session_respond_error(struct request *req, const char *code, const char *message);

/* Backpressure lifted: read again, starting with what is already buffered. */
void session_resume(struct session *s);

/* Bookkeeping for the pool: which upstream carries this session's
 * outstanding requests (a session sticks to it so that a backend never sees
 * its requests out of order), and how many of its requests wait. */
struct upstream *session_sticky(const struct session *s);
void session_note_written(struct session *s, struct upstream *u);
unsigned session_waiting(const struct session *s);
void session_note_waiting(struct session *s, int delta);

/* Links for the pool's list of sessions paused on it. */
TAILQ_HEAD(session_list, session);
void session_pause_link(struct session *s, struct session_list *list);
void session_pause_unlink(struct session *s);

#endif
