/*
 * loop — the state one worker's event loop shares with everything it
 * serves. Nothing here is shared with another worker: the counters are
 * only written by the loop's own thread (and read with relaxed loads by
 * metrics), and only the structure lock is ever taken by another thread.
 */
#include <assert.h>
#include <stdlib.h>
#include <sys/random.h>

#include <sluice/clock.h>
#include <sluice/log.h>
#include <sluice/loop.h>

/* A test knob, not a tuning one: SLUICE_MAX_READ=7 makes every read (TLS
 * and backend) at most 7 bytes, so frames split across reads and evbuffer
 * chains at every offset (twemproxy's T_MBUF idea). */
static size_t
loop_max_read(void)
{
	const char *v = getenv("SLUICE_MAX_READ");
	char *end;
	unsigned long n;

	if (v == NULL || *v == '\0')
		return 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || n == 0 || n > 1024 * 1024) {
		log_warn("SLUICE_MAX_READ=%s ignored: expected 1..1048576", v);
		return 0;
	}
	log_warn("SLUICE_MAX_READ=%lu: reads are capped for testing; do not use in production", n);
	return n;
}

void
loop_init(struct loop *l, unsigned id, const struct loop_ops *ops)
{
	l->ops = ops;
	TAILQ_INIT(&l->sessions);
	LIST_INIT(&l->admitting);
	pthread_mutex_init(&l->structure_lock, NULL);
	l->max_read = loop_max_read();
	if (getrandom(&l->rng, sizeof(l->rng), 0) != (ssize_t)sizeof(l->rng) || l->rng == 0)
		l->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)clock_us() ^ id;
}

void
loop_fini(struct loop *l)
{
	request_cache_clear(&l->requests);
	pthread_mutex_destroy(&l->structure_lock);
}

uint64_t
loop_random(struct loop *l)
{
	uint64_t x = l->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	l->rng = x;
	return x;
}

void
loop_closed(struct loop *l)
{
	assert(l->ops != NULL);
	l->ops->closed(l);
}

struct pool *
loop_pool_named(struct loop *l, const char *name)
{
	return l->ops->pool_named != NULL ? l->ops->pool_named(l, name) : NULL;
}

void
loop_count_error(struct loop *l, enum frame_err_code code)
{
	switch (code) {
	case FRAME_ERR_BUSY:
		LOOP_STAT_ADD(l, errors_busy, 1);
		break;
	case FRAME_ERR_TIMEOUT:
		LOOP_STAT_ADD(l, errors_timeout, 1);
		break;
	case FRAME_ERR_UNAVAILABLE:
		LOOP_STAT_ADD(l, errors_unavailable, 1);
		break;
	case FRAME_ERR_PROTOCOL:
		break;
	}
}
