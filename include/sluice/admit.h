/*
 * admit — what a connection passes between accept and its TLS handshake
 * on listeners that ask for it: the PROXY protocol header from a trusted
 * balancer (proxy_protocol, proxy_trusted) and the per-address limit
 * (limits.max_connections_per_address). Plain listeners without the limit
 * never come here.
 */
#ifndef SLUICE_ADMIT_H
#define SLUICE_ADMIT_H

#include <sys/socket.h>

#include <event2/util.h>

struct config_listener;
struct loop;
struct pool;

/* Whether a connection on lc must go through admit_connection. */
int admit_needed(const struct loop *l, const struct config_listener *lc);

/* Takes fd and its connection slot (slots_take): hands them to a session
 * once admitted, else closes the connection and counts why. */
void admit_connection(struct loop *l, const struct config_listener *lc, struct pool *pool,
		      evutil_socket_t fd, const struct sockaddr *peer);

/* Closes the connections still waiting for their header (drain, worker
 * exit): before the pools and the configuration they hold go. */
void admit_abort_all(struct loop *l);

#endif
