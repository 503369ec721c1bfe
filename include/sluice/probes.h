/*
 * probes — the decisions behind GET /livez and GET /readyz (SPEC §7), made
 * on the main thread from what the workers publish with atomic stores:
 * each worker's heartbeat (its tick) and each pool's count of servers up.
 * Neither takes anything from the request path.
 */
#ifndef SLUICE_PROBES_H
#define SLUICE_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct worker;

/* A worker whose event loop has not turned for longer than this is stuck:
 * its tick runs every 100 ms, so only a callback that blocks (or a
 * starved machine) gets near it. */
#define PROBES_STUCK_MS 5000

/* Whether a heartbeat taken at beat_ms is older than PROBES_STUCK_MS at
 * now_ms (a beat after now is fresh). */
bool probes_stuck(uint64_t now_ms, uint64_t beat_ms);

/* 1 when every running worker's loop turned within PROBES_STUCK_MS of
 * now_ms; else 0 with "worker N: event loop stuck for S s" in why (len
 * bytes). A worker that has finished (draining is over) is not counted. */
int probes_live(struct worker *const *workers, unsigned n_workers, uint64_t now_ms, char *why,
		size_t len);

/* 1 when every backend a listener of cfg sends clients to (its backend
 * and every routed one) has a server up in each worker's pool; else 0
 * with "backend NAME: no server up" in why. Takes each worker's
 * structure lock while it looks its pools up. */
int probes_ready(struct worker *const *workers, unsigned n_workers, const struct config *cfg,
		 char *why, size_t len);

#endif
