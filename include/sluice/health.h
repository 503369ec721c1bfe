/*
 * health — whether a backend server may take new requests, as far as
 * health checks (SPEC §8 "Health") and passive ejection decide: a pure
 * state machine per server, fed with probe results and request outcomes,
 * with the clock passed in by the caller (the pool, the prober).
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/config_types.h>
#include <sluice/request.h>

/* What one probe came to; the label of sluice_health_checks_total. */
enum health_result {
	HEALTH_OK,       /* any valid frame came back within timeout */
	HEALTH_FAIL,     /* not sent (no connected connection), or its connection failed */
	HEALTH_TIMEOUT,  /* no answer within timeout */
};
#define HEALTH_RESULT_COUNT 3

/* Ejections in a row multiply eject_time up to this. */
#define HEALTH_EJECT_MAX_MS 300000u

/* Written by the owning worker, read by metrics from another thread
 * (relaxed atomics on both sides). */
struct health_stats {
	uint64_t checks[HEALTH_RESULT_COUNT];
	uint64_t ejections;
	uint64_t up;                  /* 1: the server takes new requests (the prober's tick) */
};

struct health_state {
	bool down;                    /* active checks failed `fall` times in a row */
	bool ejected;                 /* passive: until ejected_until_ms */
	unsigned fails;               /* consecutive failed probes */
	unsigned oks;                 /* consecutive good probes */
	unsigned errors;              /* consecutive UNAVAILABLE/TIMEOUT outcomes */
	unsigned ejections;           /* ejections in a row: not separated by an answer */
	uint64_t ejected_until_ms;
	struct health_stats stats;
};

/* The probe a server has in flight: its request's client is rc, which
 * swallows the answer (prober.c). */
struct health_probe {
	struct request_client rc;
	struct request *req;          /* in flight, or NULL */
	uint64_t sent_ms;
	uint64_t next_ms;             /* when the next one is due */
	bool late;                    /* req outlived timeout: already counted */
};

/* A state change, for the caller's log line. */
enum health_change {
	HEALTH_SAME,
	HEALTH_MARKED_DOWN,
	HEALTH_MARKED_UP,
};

/* Counts a probe result; down after c->fall failures in a row, up again
 * after c->rise successes in a row. */
enum health_change health_probe_done(struct health_state *h, const struct config_health *c,
				     enum health_result r);

/* A request placed on the server was answered by it (ok) or by sluice with
 * UNAVAILABLE or TIMEOUT (n of them at once, as when a connection dies with
 * n written). An answer ends the run of errors and of ejections. Returns
 * true when the errors in a row reached eject_after (> 0): the caller
 * decides with health_may_eject. Errors while ejected are not counted. */
bool health_outcome(struct health_state *h, unsigned eject_after, bool ok, unsigned n);

/* Whether one more server of n may be ejected when `ejected` already are:
 * at most percent% of them, rounded down, but at least one when percent
 * is above 0 (as Envoy does). */
bool health_may_eject(unsigned n, unsigned ejected, unsigned percent);

/* Ejects for eject_time_ms × the ejections in a row (this one included),
 * at most HEALTH_EJECT_MAX_MS; returns that time. */
uint64_t health_eject(struct health_state *h, uint64_t eject_time_ms, uint64_t now_ms);

/* The ejection is over at now_ms: the server is tried again (true, once). */
bool health_eject_expired(struct health_state *h, uint64_t now_ms);

/* Neither down nor ejected. */
bool health_up(const struct health_state *h);

/* "ok", "fail", "timeout" */
const char *health_result_name(enum health_result r);

#endif
