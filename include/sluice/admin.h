/*
 * admin — the plain-HTTP admin endpoint (evhttp on the main thread's event
 * loop): GET /metrics in the Prometheus text format, GET /healthz answering
 * 200 while serving and 503 while draining. It serves no client traffic, so
 * a slow scraper never delays a request.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

struct config_addr;
struct event_base;
struct evbuffer;
struct admin;

/* Appends the /metrics body to out; 0 or -1 (the scrape gets a 500). */
typedef int (*admin_render_fn)(struct evbuffer *out, void *arg);

/* Binds addr and serves. NULL on failure, with the reason logged. */
struct admin *admin_new(struct event_base *base, const struct config_addr *addr,
			admin_render_fn render, void *arg);
/* /healthz answers 503 from now on (graceful shutdown). */
void admin_set_draining(struct admin *a, int draining);
void admin_free(struct admin *a);

#endif
