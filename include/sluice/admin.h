/*
 * admin — the plain-HTTP admin endpoint (evhttp on the main thread's event
 * loop): GET /metrics in the Prometheus text format, GET /healthz answering
 * 200 while serving and 503 while draining, GET /livez and GET /readyz
 * answering 200 or 503 with a one-line reason, as its owner's ops decide.
 * It serves no client traffic, so a slow scraper never delays a request.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

/* The endpoint's own bounds (SPEC §7), so that a slow or hostile scraper
 * cannot take descriptors or time from clients: at most this many admin
 * connections at once (past it the endpoint stops accepting, and others
 * wait in the kernel's backlog until one ends; the descriptor budget in
 * process.c counts them); from its accept, and again from each complete
 * request, a connection has ADMIN_DEADLINE_MS to deliver its (next)
 * complete request, however steadily it dribbles, or it is closed; and
 * ADMIN_IDLE_S without reading or writing anything ends it sooner. */
#define ADMIN_MAX_CONNECTIONS 16
#define ADMIN_DEADLINE_MS 10000
#define ADMIN_IDLE_S 5

#include <stddef.h>

struct config_addr;
struct event_base;
struct evbuffer;
struct admin;

/* What the endpoint asks its owner; arg is admin_new's. */
struct admin_ops {
	/* Appends the /metrics body to out; 0 or -1 (the scrape gets a 500). */
	int (*render)(struct evbuffer *out, void *arg);
	/* /livez, and /readyz unless draining: 1 passes (200), 0 fails
	 * (503) with a one-line reason written to why (len bytes). */
	int (*live)(char *why, size_t len, void *arg);
	int (*ready)(char *why, size_t len, void *arg);
};

/* Binds addr and serves. NULL on failure, with the reason logged. */
struct admin *admin_new(struct event_base *base, const struct config_addr *addr,
			const struct admin_ops *ops, void *arg);
/* /healthz and /readyz answer 503 from now on (graceful shutdown). */
void admin_set_draining(struct admin *a, int draining);
void admin_free(struct admin *a);

#endif
