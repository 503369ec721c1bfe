/*
 * log — leveled diagnostics on stderr, one write(2) per line so lines from
 * several threads never interleave. Levels: crit (a bug in sluice), error,
 * warn, info, debug.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <sluice/log.h>

static int log_level = LOG_INFO;

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

static void __attribute__((format(printf, 2, 0)))
log_write(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ sluice[%ld]: [%s] ",
		     ts.tv_nsec / 1000000, (long)getpid(), log_level_name(level));
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';
	/* Nothing sensible to do when stderr is gone; do not loop on it. */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_write(level, fmt, ap);
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
