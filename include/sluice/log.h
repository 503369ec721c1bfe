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
/* At exit, from the main thread: waits up to timeout_ms for the writer to
 * empty the queue, and stops it. 0, or -1 when stderr did not take it all in time (the writer is left
 * blocked; what it holds is lost when the process exits). Lines logged
 * afterwards are written directly again. */
int log_stop(int timeout_ms);

/* Lines dropped because the queue was full (stderr not read fast enough),
 * since start. */
uint64_t log_lines_dropped_total(void);

#endif
