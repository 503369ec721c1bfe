/*
 * log — leveled diagnostics on stderr. Levels: crit (a bug in sluice),
 * error, warn, info, debug.
 *
 * The queue is a ring of formatted lines. head and tail count bytes since
 * start (64 bits: they never wrap), head - tail are queued. A thread that
 * logs copies its whole line in under log_q.lock, or drops it when it does
 * not fit; the writer thread writes [tail, head) straight from the ring
 * with the lock released and moves tail only afterwards, so nobody
 * overwrites bytes being written. log_out_lock lets one thread at a time
 * write to stderr (the writer, a crit line, or anyone before log_start):
 * lines never interleave, and a crit line follows what was queued before.
 *
 * Rate limits (struct log_limit) are token buckets kept in thousandths of
 * a line, so that LOG_LIMIT_RATE lines a second refill in whole units per
 * millisecond. Every limit that has been used joins a list the writer's
 * tick walks, to print summaries that no later line of the kind would.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <sluice/clock.h>
#include <sluice/log.h>

#define LOG_LINE_MAX 2048
/* The writer's tick: the most a summary of a kind no longer logged waits
 * past its LOG_LIMIT_SUMMARY_MS. */
#define LOG_TICK_MS 1000u
/* Once the queue was full, lines are dropped until it is down to this, so
 * the line reporting the loss is followed by room for many more, not by
 * the next loss. */
#define LOG_RESUME_BYTES (LOG_QUEUE_BYTES / 2)
/* A line's cost in a limit's credit, and the most credit there is. */
#define LOG_LIMIT_COST 1000u
#define LOG_LIMIT_CAP ((uint64_t)LOG_LIMIT_BURST * LOG_LIMIT_COST)

static int log_level = LOG_INFO;
static uint64_t log_dropped;               /* atomic: the metric */
static uint64_t log_suppressed;            /* atomic: the metric */
static struct log_limit *log_limits;       /* atomic: every limit used */
static pthread_mutex_t log_out_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* the writer's: lines queued, or stop */
	pthread_cond_t gone;         /* log_stop's: the writer has left */
	int conds_ready;             /* both made (on the monotonic clock) */
	uint64_t head, tail;
	int running;                 /* a writer thread takes the lines */
	int stopping;
	int exited;
	int dropping;                /* until the queue is LOG_RESUME_BYTES */
	uint64_t dropped;            /* lines lost since the last report */
	pthread_t thread;
	char buf[LOG_QUEUE_BYTES];
} log_q = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const log_names[] = {
	[LOG_CRIT] = "crit",
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
log_enabled(enum log_level level)
{
	return (int)level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	/* crit is not selectable: it is always printed. */
	for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	if ((int)level < LOG_CRIT || level > LOG_DEBUG)
		return "?";
	return log_names[level];
}

uint64_t
log_lines_dropped_total(void)
{
	return __atomic_load_n(&log_dropped, __ATOMIC_RELAXED);
}

uint64_t
log_lines_suppressed_total(void)
{
	return __atomic_load_n(&log_suppressed, __ATOMIC_RELAXED);
}

/* ---- locks --------------------------------------------------------------- */

/* A default mutex fails to lock only when it is corrupt: going on would
 * corrupt the queue or a limit, and there is no log left to say so. */
static void
log_lock(pthread_mutex_t *m)
{
	static const char msg[] = "sluice: [crit] a log lock failed\n";

	if (pthread_mutex_lock(m) != 0) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			abort();
		abort();
	}
}

/* Unlocking a default mutex this thread holds cannot fail. */
static void
log_unlock(pthread_mutex_t *m)
{
	(void)pthread_mutex_unlock(m);
}

/* ---- formatting and writing ---------------------------------------------- */

/* "2026-11-24T03:24:22.123Z sluice[pid]: [level] message\n" into line
 * (LOG_LINE_MAX bytes); returns its length, newline included. A longer
 * message is cut. */
static size_t __attribute__((format(printf, 3, 0)))
log_format(char *line, enum log_level level, const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, LOG_LINE_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, LOG_LINE_MAX - n, ".%03ldZ sluice[%ld]: [%s] ",
		     ts.tv_nsec / 1000000, (long)getpid(), log_level_name(level));
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, LOG_LINE_MAX - n - 1, fmt, ap);
	if (r > 0)
		n += (size_t)r < LOG_LINE_MAX - n - 1 ? (size_t)r : LOG_LINE_MAX - n - 2;
	line[n++] = '\n';
	return n;
}

static size_t __attribute__((format(printf, 3, 4)))
log_format_text(char *line, enum log_level level, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = log_format(line, level, fmt, ap);
	va_end(ap);
	return n;
}

/* All of p to stderr, however long it takes: only the writer thread, a
 * crit line, or a program without a writer gets here. A stderr that its
 * owner made non-blocking is waited on rather than lost; on any other
 * error the bytes go, as nothing sensible can be done when stderr is
 * gone. */
static void
log_write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (poll(&pfd, 1, (int)LOG_TICK_MS) < 0 && errno != EINTR)
				return;
		} else {
			return;
		}
	}
}

/* ---- the queue ------------------------------------------------------------ */

/* Under log_q.lock, with room for n checked. */
static void
log_q_put(const char *line, size_t n)
{
	size_t at = (size_t)(log_q.head % LOG_QUEUE_BYTES);
	size_t first = n < LOG_QUEUE_BYTES - at ? n : LOG_QUEUE_BYTES - at;

	memcpy(log_q.buf + at, line, first);
	memcpy(log_q.buf, line + first, n - first);
	log_q.head += n;
}

/* Under log_q.lock, as the writer makes room: once there is plenty after
 * a loss, a line says how many were lost, where they would have been. */
static void
log_q_report_drops(void)
{
	char line[LOG_LINE_MAX];
	size_t n;

	if (!log_q.dropping || log_q.head - log_q.tail > LOG_RESUME_BYTES)
		return;
	n = log_format_text(line, LOG_WARN, "%" PRIu64 " log lines dropped: stderr is not being read",
			    log_q.dropped);
	log_q_put(line, n);
	log_q.dropping = 0;
	log_q.dropped = 0;
}

/* Writes the queued bytes before until (a head seen earlier) straight from
 * the ring. The caller holds log_out_lock, which makes it the only one to
 * move tail. */
static void
log_q_write_until(uint64_t until)
{
	for (;;) {
		uint64_t tail;
		size_t at, len;

		log_lock(&log_q.lock);
		tail = log_q.tail;
		log_unlock(&log_q.lock);
		if (tail >= until)
			return;
		at = (size_t)(tail % LOG_QUEUE_BYTES);
		len = (size_t)(until - tail);
		if (len > LOG_QUEUE_BYTES - at)
			len = LOG_QUEUE_BYTES - at;
		log_write_all(log_q.buf + at, len);
		log_lock(&log_q.lock);
		log_q.tail += len;
		log_q_report_drops();
		log_unlock(&log_q.lock);
	}
}

static void
log_write_direct(const char *line, size_t n)
{
	log_lock(&log_out_lock);
	log_write_all(line, n);
	log_unlock(&log_out_lock);
}

/* Hands a formatted line to the writer thread, never waiting on stderr;
 * without a writer, writes it. */
static void
log_emit(const char *line, size_t n)
{
	log_lock(&log_q.lock);
	if (!log_q.running) {
		log_unlock(&log_q.lock);
		log_write_direct(line, n);
		return;
	}
	if (log_q.dropping || log_q.head - log_q.tail + n > LOG_QUEUE_BYTES) {
		log_q.dropping = 1;
		log_q.dropped++;
		__atomic_add_fetch(&log_dropped, 1, __ATOMIC_RELAXED);
	} else {
		/* The writer sleeps only on an empty queue. */
		if (log_q.head == log_q.tail)
			(void)pthread_cond_signal(&log_q.wake);
		log_q_put(line, n);
	}
	log_unlock(&log_q.lock);
}

/* A crit line may be the last before an abort(): this thread writes it
 * now, after what was queued before it, blocking if stderr is stalled
 * (losing why sluice died would be worse). */
static void
log_emit_crit(const char *line, size_t n)
{
	uint64_t until;

	log_lock(&log_out_lock);
	log_lock(&log_q.lock);
	until = log_q.head;
	log_unlock(&log_q.lock);
	log_q_write_until(until);
	log_write_all(line, n);
	log_unlock(&log_out_lock);
}

static void __attribute__((format(printf, 2, 0)))
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = log_format(line, level, fmt, ap);

	if (level == LOG_CRIT)
		log_emit_crit(line, n);
	else
		log_emit(line, n);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_openssl(enum log_level level, const char *what)
{
	char reason[256] = "unknown reason";
	unsigned long e, last = 0;

	/* Keep the most recent (most specific) reason, empty the queue. */
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last != 0)
		ERR_error_string_n(last, reason, sizeof(reason));
	log_msg(level, "%s: %s", what, reason);
}

/* ---- rate limits ------------------------------------------------------------ */

static void
log_limit_refill(struct log_limit *l, uint64_t now_ms)
{
	uint64_t elapsed;

	if (!l->started) {
		l->started = 1;
		l->credit = LOG_LIMIT_CAP;
		l->refill_ms = now_ms;
		return;
	}
	/* A clock that went back (a test's) gives nothing, takes nothing. */
	if (now_ms <= l->refill_ms)
		return;
	elapsed = now_ms - l->refill_ms;
	l->refill_ms = now_ms;
	/* LOG_LIMIT_RATE lines a second: LOG_LIMIT_RATE thousandths a ms.
	 * Capping elapsed first keeps the product from overflowing. */
	if (elapsed >= LOG_LIMIT_CAP / LOG_LIMIT_RATE)
		l->credit = LOG_LIMIT_CAP;
	else
		l->credit = l->credit + elapsed * LOG_LIMIT_RATE > LOG_LIMIT_CAP ?
			    LOG_LIMIT_CAP : l->credit + elapsed * LOG_LIMIT_RATE;
}

int
log_limit_due(struct log_limit *l, uint64_t now_ms, int force, struct log_limit_verdict *v)
{
	uint64_t held;

	v->print = 0;
	v->summary = 0;
	v->summary_s = 0;
	if (l->suppressed == 0)
		return 0;
	held = now_ms > l->since_ms ? now_ms - l->since_ms : 0;
	if (!force && held < LOG_LIMIT_SUMMARY_MS)
		return 0;
	v->summary = l->suppressed;
	/* Rounded up, and never "the last 0 s". */
	v->summary_s = held == 0 ? 1u : (unsigned)((held + 999) / 1000);
	l->suppressed = 0;
	return 1;
}

void
log_limit_take(struct log_limit *l, uint64_t now_ms, struct log_limit_verdict *v)
{
	(void)log_limit_due(l, now_ms, 0, v);
	log_limit_refill(l, now_ms);
	if (l->credit >= LOG_LIMIT_COST) {
		l->credit -= LOG_LIMIT_COST;
		v->print = 1;
		return;
	}
	if (l->suppressed++ == 0)
		l->since_ms = now_ms;
}

int
log_limit_summary(char *buf, size_t len, const char *what, uint64_t n, unsigned secs)
{
	return snprintf(buf, len, "%s: ... and %" PRIu64 " more like this in the last %u s", what, n, secs);
}

static void
log_limit_print_summary(const char *what, enum log_level level, const struct log_limit_verdict *v)
{
	char text[256];

	if (log_limit_summary(text, sizeof(text), what, v->summary, v->summary_s) < 0)
		return;
	log_msg(level, "%s", text);
}

/* Under l->lock, once: limits are static and never leave, so the list is
 * only ever pushed onto, and walked without a lock. */
static void
log_limit_join(struct log_limit *l)
{
	struct log_limit *head;

	if (l->registered)
		return;
	l->registered = 1;
	head = __atomic_load_n(&log_limits, __ATOMIC_ACQUIRE);
	do {
		l->next = head;
	} while (!__atomic_compare_exchange_n(&log_limits, &head, l, 0, __ATOMIC_RELEASE,
					      __ATOMIC_ACQUIRE));
}

/* The tick, and log_stop (force): summaries nobody else will print. */
static void
log_limit_flush_all(uint64_t now_ms, int force)
{
	struct log_limit *l;

	for (l = __atomic_load_n(&log_limits, __ATOMIC_ACQUIRE); l != NULL; l = l->next) {
		struct log_limit_verdict v;
		enum log_level level;
		int due;

		log_lock(&l->lock);
		due = log_limit_due(l, now_ms, force, &v);
		level = l->level;
		log_unlock(&l->lock);
		if (due && log_enabled(level))
			log_limit_print_summary(l->what, level, &v);
	}
}

void
log_limited_msg(struct log_limit *l, enum log_level level, const char *fmt, ...)
{
	struct log_limit_verdict v;
	uint64_t now = clock_ms();
	int saved = errno;
	va_list ap;

	if (!log_enabled(level))
		return;
	log_lock(&l->lock);
	log_limit_join(l);
	l->level = level;
	log_limit_take(l, now, &v);
	log_unlock(&l->lock);
	if (v.summary > 0)
		log_limit_print_summary(l->what, level, &v);
	if (v.print) {
		va_start(ap, fmt);
		log_vmsg(level, fmt, ap);
		va_end(ap);
	} else {
		__atomic_add_fetch(&log_suppressed, 1, __ATOMIC_RELAXED);
	}
	errno = saved;
}

/* ---- the writer thread ------------------------------------------------------ */

/* Under log_q.lock: sleeps until woken or until at_ms (monotonic). */
static void
log_q_sleep(pthread_cond_t *cond, uint64_t at_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(at_ms / 1000),
			       .tv_nsec = (long)(at_ms % 1000) * 1000000L };

	/* A timeout is the tick (or log_stop's deadline), a wake-up or an
	 * error alike: the callers look at the state again. */
	(void)pthread_cond_timedwait(cond, &log_q.lock, &ts);
}

static void *
log_writer_main(void *arg)
{
	uint64_t next_tick = clock_ms() + LOG_TICK_MS;

	(void)arg;
	log_lock(&log_q.lock);
	for (;;) {
		uint64_t now = clock_ms();

		if (now >= next_tick) {
			log_unlock(&log_q.lock);
			log_limit_flush_all(now, 0);
			next_tick = now + LOG_TICK_MS;
			log_lock(&log_q.lock);
		} else if (log_q.head != log_q.tail) {
			/* One pass over what is there, then the tick and
			 * stop are looked at again. */
			uint64_t until = log_q.head;

			log_unlock(&log_q.lock);
			log_lock(&log_out_lock);
			log_q_write_until(until);
			log_unlock(&log_out_lock);
			log_lock(&log_q.lock);
		} else if (log_q.stopping) {
			break;
		} else {
			log_q_sleep(&log_q.wake, next_tick);
		}
	}
	log_q.exited = 1;
	(void)pthread_cond_broadcast(&log_q.gone);
	log_unlock(&log_q.lock);
	return NULL;
}

/* Both conditions wait on the monotonic clock, like clock_ms(). */
static int
log_q_make_conds(void)
{
	pthread_condattr_t attr;
	int err;

	if (log_q.conds_ready)
		return 0;
	if (pthread_condattr_init(&attr) != 0)
		return -1;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(&log_q.wake, &attr);
	if (err == 0) {
		err = pthread_cond_init(&log_q.gone, &attr);
		if (err != 0)
			(void)pthread_cond_destroy(&log_q.wake);
	}
	(void)pthread_condattr_destroy(&attr);
	if (err != 0)
		return -1;
	log_q.conds_ready = 1;
	return 0;
}

int
log_start(void)
{
	sigset_t all, old;
	int err;

	log_lock(&log_q.lock);
	if (log_q.running) {
		log_unlock(&log_q.lock);
		return 0;
	}
	if (log_q_make_conds() < 0) {
		log_unlock(&log_q.lock);
		log_warn("cannot start the log writer thread; stderr is written directly");
		return -1;
	}
	log_q.running = 1;
	log_q.stopping = 0;
	log_q.exited = 0;
	/* The writer takes no signal: they stay with the threads that expect
	 * them, and its writes are not cut short. */
	sigfillset(&all);
	err = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (err == 0) {
		err = pthread_create(&log_q.thread, NULL, log_writer_main, NULL);
		/* Putting back the mask that was just in force cannot fail. */
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (err != 0)
		log_q.running = 0;
	log_unlock(&log_q.lock);
	if (err != 0) {
		log_warn("cannot start the log writer thread (%s); stderr is written directly",
			 strerror(err));
		return -1;
	}
	return 0;
}

int
log_stop(int timeout_ms)
{
	uint64_t deadline = clock_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int running, gone;

	log_lock(&log_q.lock);
	running = log_q.running;
	log_unlock(&log_q.lock);
	if (!running)
		return 0;
	log_limit_flush_all(clock_ms(), 1);
	log_lock(&log_q.lock);
	log_q.stopping = 1;
	(void)pthread_cond_signal(&log_q.wake);
	while (!log_q.exited && clock_ms() < deadline)
		log_q_sleep(&log_q.gone, deadline);
	gone = log_q.exited;
	if (gone)
		log_q.running = 0;
	log_unlock(&log_q.lock);
	if (!gone)
		return -1;
	return pthread_join(log_q.thread, NULL) == 0 ? 0 : -1;
}
