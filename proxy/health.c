/*
 * health — the per-server state machine of active health checks and
 * passive ejection (SPEC §8 "Health"). Pure: no I/O, no clock of its own;
 * the pool and the prober feed it and log the changes it reports.
 */
#include <stdbool.h>
#include <stdint.h>

#include <sluice/health.h>

static void
health_stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

enum health_change
health_probe_done(struct health_state *h, const struct config_health *c, enum health_result r)
{
	health_stat_add(&h->stats.checks[r], 1);
	if (r == HEALTH_OK) {
		h->fails = 0;
		h->oks++;
		if (h->down && h->oks >= c->rise) {
			h->down = false;
			return HEALTH_MARKED_UP;
		}
		return HEALTH_SAME;
	}
	h->oks = 0;
	h->fails++;
	if (!h->down && h->fails >= c->fall) {
		h->down = true;
		return HEALTH_MARKED_DOWN;
	}
	return HEALTH_SAME;
}

bool
health_outcome(struct health_state *h, unsigned eject_after, bool ok, unsigned n)
{
	if (ok) {
		h->errors = 0;
		h->ejections = 0;
		return false;
	}
	/* What fails while ejected (connects, probes) is not held against the
	 * server once it is tried again. */
	if (h->ejected)
		return false;
	h->errors += n;
	return eject_after > 0 && h->errors >= eject_after;
}

bool
health_may_eject(unsigned n, unsigned ejected, unsigned percent)
{
	if (percent == 0)
		return false;
	if (ejected == 0)
		return true;
	return (uint64_t)(ejected + 1) * 100 <= (uint64_t)n * percent;
}

uint64_t
health_eject(struct health_state *h, uint64_t eject_time_ms, uint64_t now_ms)
{
	uint64_t ms;

	h->ejections++;
	h->errors = 0;
	ms = eject_time_ms > HEALTH_EJECT_MAX_MS / h->ejections ? HEALTH_EJECT_MAX_MS : eject_time_ms * h->ejections;
	h->ejected = true;
	h->ejected_until_ms = now_ms + ms;
	health_stat_add(&h->stats.ejections, 1);
	return ms;
}

bool
health_eject_expired(struct health_state *h, uint64_t now_ms)
{
	if (!h->ejected || now_ms < h->ejected_until_ms)
		return false;
	h->ejected = false;
	return true;
}

bool
health_up(const struct health_state *h)
{
	return !h->down && !h->ejected;
}

const char *
health_result_name(enum health_result r)
{
	switch (r) {
	case HEALTH_OK:
		return "ok";
	case HEALTH_FAIL:
		return "fail";
	case HEALTH_TIMEOUT:
		return "timeout";
	}
	return "unknown";
}
