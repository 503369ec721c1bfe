/*
 * log — the one place sluice writes diagnostics. Lines go to stderr as
 * "2026-11-24T03:24:22.123Z sluice[pid]: [level] message"; the level names
 * are what tests and operators grep for ("crit" marks a bug in sluice).
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level {
	LOG_CRIT = 0,   /* sluice itself is broken: always printed */
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* Thread-safe: the level is read atomically, each line is one write(2). */
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

#endif
