/*
 * log — the one place sluice writes diagnostics. Lines go to stderr as
 * "2026-11-24T03:24:22.123Z sluice[pid]: [level] message"; the level names
 * are what tests and operators grep for ("crit" marks a bug in sluice).
 *
 * Once log_start() has run, no thread that serves traffic writes to stderr
 * itself: it formats its line into a bounded in-memory queue that one
 * writer thread empties, so a log reader that stops reading stalls only
 * that thread (SPEC §10). Lines that find the queue full are dropped,
 * counted, and reported by a line once there is room again.
 *
 * Lines a client can cause (failed handshakes, protocol errors, refusals,
 * timeouts) go through a struct log_limit: a few per second are printed,
 * the rest counted and summarised as "WHAT: ... and N more like this in the
 * last S s".
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_CRIT = 0,   /* sluice itself is broken: always printed */
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* Thread-safe: the level is read atomically, and lines never interleave. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_enabled(enum log_level level);

/* Parses "error" | "warn" | "info" | "debug"; returns -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_crit(...)  log_msg(LOG_CRIT, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/* Drains OpenSSL's error queue of this thread into one log line prefixed by
 * what, so the reason is logged once and the queue left clean. */
void log_openssl(enum log_level level, const char *what);

/* ---- the writer thread ---------------------------------------------------- */

/* Until log_start() (and in programs that never call it: the tools, the
 * tests, the fuzzers) every line is written at once by the thread that logs
 * it. crit lines always are, after whatever is queued: sluice may be about
 * to abort. */

/* Bytes of formatted lines the queue holds: some 2000 lines, seconds of a
 * busy debug log. */
#define LOG_QUEUE_BYTES (256u * 1024)
/* How long log_stop() waits for a stalled stderr at exit, in ms. */
#define LOG_STOP_MS 2000

/* Starts the writer thread. 0, or -1 (lines keep being written directly). */
int log_start(void);
/* At exit, from the main thread: prints the summaries still pending, then
 * waits up to timeout_ms for the writer to empty the queue, and stops it.
 * 0, or -1 when stderr did not take it all in time (the writer is left
 * blocked; what it holds is lost when the process exits). Lines logged
 * afterwards are written directly again. */
int log_stop(int timeout_ms);

/* Lines dropped because the queue was full (stderr not read fast enough),
 * and lines a log_limit held back, since start. */
uint64_t log_lines_dropped_total(void);
uint64_t log_lines_suppressed_total(void);

/* ---- rate-limited lines (SPEC §10) -------------------------------------- */

/* A token bucket per kind of line: LOG_LIMIT_BURST lines at once after a
 * quiet spell, LOG_LIMIT_RATE per second sustained. Lines past it are
 * counted; once LOG_LIMIT_SUMMARY_MS have passed since the first of them,
 * one line says how many (at the next line of that kind, or from the
 * writer thread's once-a-second tick, or at log_stop). */
#define LOG_LIMIT_RATE 5
#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_SUMMARY_MS 10000u

struct log_limit {
	const char *what;             /* names the kind in its summary line */
	pthread_mutex_t lock;         /* callers of log_limited_msg share it */
	struct log_limit *next;       /* the tick's list, set once when joining */
	int registered;               /* on that list */
	int started;                  /* credit has been filled once */
	enum log_level level;         /* of the latest line: the summary's */
	uint64_t credit;              /* thousandths of a line */
	uint64_t refill_ms;           /* when credit was last topped up */
	uint64_t suppressed;          /* lines held back since since_ms */
	uint64_t since_ms;            /* the first of them */
};

#define LOG_LIMIT_INIT(w) { .what = (w), .lock = PTHREAD_MUTEX_INITIALIZER }
/* A limit for one kind of line, with static storage at its call sites:
 * LOG_LIMIT(session_limit_handshake, "failed TLS handshakes"); */
#define LOG_LIMIT(name, w) static struct log_limit name = LOG_LIMIT_INIT(w)

/* What to do with one line, or at one tick. */
struct log_limit_verdict {
	int print;            /* 1: print the line */
	uint64_t summary;     /* > 0: first print the summary of that many */
	unsigned summary_s;   /* ... held back over that many seconds (rounded up) */
};

/* The decisions themselves, pure functions of the clock the caller passes
 * (monotonic ms) and not locked: log_limited_msg and the tick call them
 * under l->lock; unit tests call them with a clock of their own.
 * log_limit_take decides one line; log_limit_due says whether a summary is
 * due without a line (force: whatever is held back, as at exit), 1 or 0. */
void log_limit_take(struct log_limit *l, uint64_t now_ms, struct log_limit_verdict *v);
int log_limit_due(struct log_limit *l, uint64_t now_ms, int force, struct log_limit_verdict *v);
/* "WHAT: ... and N more like this in the last S s" into buf (no newline).
 * Returns snprintf's count. */
int log_limit_summary(char *buf, size_t len, const char *what, uint64_t n, unsigned secs);

/* Logs one line of l's kind, or counts it (see above). Thread-safe. */
void log_limited_msg(struct log_limit *l, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_limited(l, level, ...) \
	do { if (log_enabled(level)) log_limited_msg((l), (level), __VA_ARGS__); } while (0)

#endif
