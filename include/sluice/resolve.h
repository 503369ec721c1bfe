/*
 * resolve — backend servers given by DNS name (SPEC §8). Each worker has
 * its own resolver (libevent's evdns on the worker's event loop: nothing
 * crosses threads) that looks every name up at start and every
 * resolve_interval, and hands each pool the servers its names stand for:
 * one server per address, so pool_reconfigure keeps, adds and retires
 * servers exactly as a reload does.
 */
#ifndef SLUICE_RESOLVE_H
#define SLUICE_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/config.h>
#include <sluice/loop.h>
#include <sluice/pool.h>

/* What one lookup of one name came to (sluice_dns_resolutions_total). */
enum resolve_result {
	RESOLVE_OK,       /* addresses came back (the set may be unchanged) */
	RESOLVE_ERROR,    /* no usable answer: SERVFAIL, refused, timeout */
	RESOLVE_EMPTY,    /* the name does not exist or has no A/AAAA record */
	RESOLVE_RESULT_COUNT
};

struct resolve;

/* The worker's resolver; it looks nothing up until resolve_configure sees
 * a name. NULL when out of memory. */
struct resolve *resolve_new(struct loop *l);
/* The worker's loop has ended: no more lookups; those under way are
 * cancelled. True when evdns still has to report them, which it does
 * from the loop: run it once more (EVLOOP_NONBLOCK), or what it holds
 * for them is never freed. */
bool resolve_stop(struct resolve *r);
/* Frees the resolver and every backend's record, after the pools are
 * freed (the records do not look at them). */
void resolve_free(struct resolve *r);

/* Start and reload, before the pools: (re)reads the resolver
 * configuration (resolver: or the system's) when cfg has a name, and
 * looks every name up again at once. What cannot be used is logged, and
 * names fail to resolve until a reload fixes it. 0, or -1 when out of
 * memory (no resolver: the same). */
int resolve_configure(struct resolve *r, const struct config *cfg);

/* pool_new and pool_reconfigure for backend b of cfg, with each named
 * server standing for the addresses it last resolved to (none yet for a
 * new name: it is looked up now). A backend without names goes straight
 * to the pool. Called with the worker's structure lock held. */
struct pool *resolve_pool_new(struct resolve *r, struct config *cfg, const struct config_backend *b);
int resolve_pool_reconfigure(struct resolve *r, struct pool *p, struct config *cfg,
			     const struct config_backend *b);
/* p has been freed: drop its names (takes the structure lock). */
void resolve_pool_gone(struct resolve *r, const struct pool *p);

/* For metrics, with the worker's structure lock held: fn once per backend
 * with names, with its lookups counted by result. */
typedef int (*resolve_counts_fn)(void *arg, const char *backend,
				 const uint64_t counts[RESOLVE_RESULT_COUNT]);
int resolve_each_backend(const struct resolve *r, resolve_counts_fn fn, void *arg);
const char *resolve_result_name(enum resolve_result res);

#endif
