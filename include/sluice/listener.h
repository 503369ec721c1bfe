/*
 * listener — one listening socket of one worker (SO_REUSEPORT lets every
 * worker own a socket on the same address). Refuses connections past
 * limits.max_connections, refuses the clients waiting and pauses
 * accepting when file descriptors run out instead of spinning, and turns
 * each accepted socket into a session.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

struct config_listener;
struct listener;
struct loop;
struct pool;

struct config_addr;

/* A listening socket (SO_REUSEPORT, non-blocking) for one worker. The main
 * thread binds every socket before it commits a configuration, so a port
 * that cannot be bound fails the start or the reload, never half of it.
 * Returns the descriptor, or -1 with the reason logged. */
int listener_bind(const struct config_addr *addr);

/* Serves fd (from listener_bind; owned from here on, even on failure).
 * NULL on failure, with the reason logged. */
struct listener *listener_new(struct loop *loop, const struct config_listener *lc,
			      struct pool *pool, int fd);
void listener_free(struct listener *l);

/* Reload: the same socket serves the new configuration (certificates,
 * backend) for connections accepted from now on. */
void listener_update(struct listener *l, const struct config_listener *lc, struct pool *pool);
const struct config_listener *listener_conf(const struct listener *l);

#endif
