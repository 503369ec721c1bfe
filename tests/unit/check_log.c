/*
 * check_log — the log module's promises (SPEC §10):
 *
 *   - the rate limit, on a clock the tests drive: a burst of
 *     LOG_LIMIT_BURST lines, LOG_LIMIT_RATE a second after it, the rest
 *     counted; a summary once LOG_LIMIT_SUMMARY_MS have passed since the
 *     first line held back, with the count and the seconds, in the exact
 *     words operators grep for; every line either printed or summarised;
 *   - the writer thread: lines keep their format and order, a crit line is
 *     on stderr when log_crit returns, pending summaries are printed at
 *     log_stop, and a stderr nobody reads does not block the threads that
 *     log: lines past the queue are dropped, counted, and reported once
 *     the reader is back.
 *
 * stderr is pointed at a file or a pipe of the test's own for the second
 * part; every wait there polls with a deadline.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice/log.h>

#include "../fixture.h"

/* The gap between two lines at the sustained rate. */
#define GAP_MS (1000u / LOG_LIMIT_RATE)
/* An arbitrary start, far from 0, so that nothing depends on it. */
#define T0 UINT64_C(5000000)

static int
take(struct log_limit *l, uint64_t now, struct log_limit_verdict *v)
{
	log_limit_take(l, now, v);
	return v->print;
}

/* ---- the limiter, on a controlled clock ---------------------------------- */

/* LOG_LIMIT_BURST lines at the same instant are printed, the next is not,
 * and nothing is summarised yet. */
START_TEST(test_burst)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;

	for (int i = 0; i < LOG_LIMIT_BURST; i++) {
		ck_assert_msg(take(&l, T0, &v) == 1, "line %d of the burst held back", i);
		ck_assert_uint_eq(v.summary, 0);
	}
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(take(&l, T0, &v), 0);
		ck_assert_uint_eq(v.summary, 0);
	}
	ck_assert_uint_eq(l.suppressed, 5);
}
END_TEST

/* After the burst, one line per GAP_MS: not a millisecond earlier. */
START_TEST(test_rate)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;
	uint64_t t = T0;

	for (int i = 0; i < LOG_LIMIT_BURST; i++)
		ck_assert_int_eq(take(&l, t, &v), 1);
	for (int k = 1; k <= 20; k++) {
		ck_assert_msg(take(&l, t + GAP_MS - 1, &v) == 0, "line %d printed 1 ms early", k);
		t += GAP_MS;
		ck_assert_msg(take(&l, t, &v) == 1, "line %d held back at the rate", k);
	}
}
END_TEST

/* A flood of 100 lines a second for 9.99 s: the burst plus
 * LOG_LIMIT_RATE a second are printed, the rest held back, and no summary
 * before LOG_LIMIT_SUMMARY_MS. */
START_TEST(test_sustained_flood)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;
	unsigned printed = 0, n = 0;
	uint64_t t;

	for (t = T0; t < T0 + LOG_LIMIT_SUMMARY_MS - 10; t += 10, n++) {
		printed += (unsigned)take(&l, t, &v);
		ck_assert_msg(v.summary == 0, "a summary after %" PRIu64 " ms", t - T0);
	}
	/* The burst, then one per GAP_MS from the first (whole gaps only). */
	ck_assert_uint_eq(printed, LOG_LIMIT_BURST + (LOG_LIMIT_SUMMARY_MS - 20) / GAP_MS);
	ck_assert_uint_eq(l.suppressed, n - printed);
}
END_TEST

/* The summary comes with the first line at or past LOG_LIMIT_SUMMARY_MS
 * after the first line held back, says how many and over how long, and
 * starts a new count. */
START_TEST(test_summary_at_next_line)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;
	uint64_t first_held = T0;

	for (int i = 0; i < LOG_LIMIT_BURST; i++)
		(void)take(&l, T0, &v);
	for (int i = 0; i < 4312; i++)
		ck_assert_int_eq(take(&l, T0, &v), 0);
	/* Still held back: one more, and not yet due. */
	ck_assert_int_eq(take(&l, first_held + LOG_LIMIT_SUMMARY_MS - 1, &v), 1);
	ck_assert_uint_eq(v.summary, 0);
	ck_assert_int_eq(take(&l, first_held + LOG_LIMIT_SUMMARY_MS, &v), 1);
	ck_assert_uint_eq(v.summary, 4312);
	ck_assert_uint_eq(v.summary_s, LOG_LIMIT_SUMMARY_MS / 1000);
	ck_assert_uint_eq(l.suppressed, 0);
	/* Nothing held back since: nothing more to say. */
	ck_assert_int_eq(log_limit_due(&l, first_held + 3 * LOG_LIMIT_SUMMARY_MS, 1, &v), 0);
}
END_TEST

/* The periodic flush: not due before LOG_LIMIT_SUMMARY_MS, due after
 * (seconds rounded up), forced at any time (at least "1 s"), and each
 * held-back line is summarised once. */
START_TEST(test_due)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;

	ck_assert_int_eq(log_limit_due(&l, T0, 1, &v), 0);
	for (int i = 0; i < LOG_LIMIT_BURST + 7; i++)
		(void)take(&l, T0, &v);
	ck_assert_int_eq(log_limit_due(&l, T0 + LOG_LIMIT_SUMMARY_MS - 1, 0, &v), 0);
	ck_assert_int_eq(log_limit_due(&l, T0 + LOG_LIMIT_SUMMARY_MS + 400, 0, &v), 1);
	ck_assert_uint_eq(v.summary, 7);
	ck_assert_uint_eq(v.summary_s, LOG_LIMIT_SUMMARY_MS / 1000 + 1);
	ck_assert_int_eq(v.print, 0);
	ck_assert_int_eq(log_limit_due(&l, T0 + 2 * LOG_LIMIT_SUMMARY_MS, 0, &v), 0);
	/* Later, a new burst and two lines past it, summarised at once when
	 * forced (as at exit). */
	for (int i = 0; i < LOG_LIMIT_BURST; i++)
		ck_assert_int_eq(take(&l, T0 + 30 * LOG_LIMIT_SUMMARY_MS, &v), 1);
	ck_assert_int_eq(take(&l, T0 + 30 * LOG_LIMIT_SUMMARY_MS, &v), 0);
	ck_assert_int_eq(take(&l, T0 + 30 * LOG_LIMIT_SUMMARY_MS, &v), 0);
	ck_assert_int_eq(log_limit_due(&l, T0 + 30 * LOG_LIMIT_SUMMARY_MS, 1, &v), 1);
	ck_assert_uint_eq(v.summary, 2);
	ck_assert_uint_eq(v.summary_s, 1);
	ck_assert_int_eq(log_limit_due(&l, T0 + 30 * LOG_LIMIT_SUMMARY_MS, 1, &v), 0);
}
END_TEST

/* A long quiet spell gives back the burst, not more; a clock that goes
 * back gives nothing. */
START_TEST(test_refill_bounds)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;
	uint64_t later = T0 + UINT64_C(3600) * 1000 * 24 * 365;
	int printed = 0;

	for (int i = 0; i < LOG_LIMIT_BURST; i++)
		(void)take(&l, T0, &v);
	for (int i = 0; i < 3 * LOG_LIMIT_BURST; i++)
		printed += take(&l, later, &v);
	ck_assert_int_eq(printed, LOG_LIMIT_BURST);
	ck_assert_int_eq(take(&l, later - 60000, &v), 0);
	ck_assert_int_eq(take(&l, later, &v), 0);
	ck_assert_int_eq(take(&l, later + GAP_MS, &v), 1);
}
END_TEST

/* An irregular flood over a minute, with the tick flushing every second:
 * each line is printed or counted in exactly one summary, and printed
 * lines never outrun the bucket. */
START_TEST(test_every_line_accounted)
{
	struct log_limit l = LOG_LIMIT_INIT("things");
	struct log_limit_verdict v;
	uint64_t t = T0, next_tick = T0 + 1000, lines = 0, printed = 0, summarised = 0, summaries = 0;
	unsigned seed = 12345;

	while (t < T0 + 60000) {
		seed = seed * 1103515245u + 12345u;
		t += (seed >> 16) % 37;          /* 0..36 ms apart: bursts and gaps */
		while (next_tick <= t) {
			if (log_limit_due(&l, next_tick, 0, &v)) {
				summarised += v.summary;
				summaries++;
				ck_assert_uint_ge(v.summary_s, LOG_LIMIT_SUMMARY_MS / 1000);
			}
			next_tick += 1000;
		}
		lines++;
		printed += (uint64_t)take(&l, t, &v);
		if (v.summary > 0) {
			summarised += v.summary;
			summaries++;
		}
	}
	if (log_limit_due(&l, t, 1, &v))
		summarised += v.summary;
	ck_assert_uint_eq(printed + summarised, lines);
	ck_assert_uint_le(printed, LOG_LIMIT_BURST + (t - T0) / GAP_MS + 1);
	/* One summary per LOG_LIMIT_SUMMARY_MS at most, over a minute. */
	ck_assert_uint_le(summaries, 60000 / LOG_LIMIT_SUMMARY_MS + 1);
	ck_assert_uint_gt(summaries, 0);
}
END_TEST

START_TEST(test_summary_text)
{
	char buf[128];

	ck_assert_int_gt(log_limit_summary(buf, sizeof(buf), "failed TLS handshakes", 4312, 10), 0);
	ck_assert_str_eq(buf, "failed TLS handshakes: ... and 4312 more like this in the last 10 s");
	ck_assert_int_gt(log_limit_summary(buf, sizeof(buf), "x", UINT64_MAX, 1), 0);
	ck_assert_str_eq(buf, "x: ... and 18446744073709551615 more like this in the last 1 s");
}
END_TEST

/* ---- the writer, with stderr redirected ----------------------------------- */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Points stderr at fd; returns the old stderr to give back to
 * restore_stderr. */
static int
redirect_stderr(int fd)
{
	int saved = dup(STDERR_FILENO);

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	return saved;
}

static void
restore_stderr(int saved)
{
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
}

static char *
temp_file(int *fd)
{
	static char path[64];

	snprintf(path, sizeof(path), "/tmp/check_log-XXXXXX");
	*fd = mkstemp(path);
	ck_assert_int_ge(*fd, 0);
	return path;
}

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	text = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	return text;
}

static int
count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Through the writer thread, lines keep today's format and their order,
 * and log_stop leaves every one of them written. */
START_TEST(test_writer_order_and_format)
{
	int fd, saved;
	char *path = temp_file(&fd);
	char *text, *prev, want[64], head[64];
	int y, mo, d, h, mi, s, ms, pid, used = 0;

	saved = redirect_stderr(fd);
	log_set_level(LOG_INFO);
	ck_assert_int_eq(log_start(), 0);
	for (int i = 0; i < 1000; i++)
		log_info("line %04d", i);
	log_debug("not at info level");
	ck_assert_int_eq(log_stop(LOG_STOP_MS), 0);
	log_info("after the writer stopped");
	restore_stderr(saved);
	close(fd);
	text = read_all(path);
	unlink(path);
	ck_assert_int_eq(count_of(text, "\n"), 1001);
	ck_assert_int_eq(count_of(text, "not at info level"), 0);
	prev = text;
	for (int i = 0; i < 1000; i++) {
		char *at;

		snprintf(want, sizeof(want), "[info] line %04d\n", i);
		at = strstr(prev, want);
		ck_assert_msg(at != NULL, "'line %04d' missing or out of order", i);
		prev = at;
	}
	/* "2026-11-24T03:24:22.123Z sluice[pid]: [level] message" */
	ck_assert_int_eq(sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ sluice[%d]: %n", &y, &mo, &d, &h, &mi,
				&s, &ms, &pid, &used), 8);
	ck_assert_int_eq(pid, (int)getpid());
	snprintf(head, sizeof(head), "%.*s", 16, text + used);
	ck_assert_str_eq(head, "[info] line 0000");
	ck_assert_ptr_nonnull(strstr(text, "[info] after the writer stopped\n"));
	free(text);
}
END_TEST

/* A crit line (maybe the last before an abort) is on stderr when log_crit
 * returns, after everything logged before it. */
START_TEST(test_crit_written_at_once)
{
	int fd, saved;
	char *path = temp_file(&fd);
	char *text, *last;

	saved = redirect_stderr(fd);
	log_set_level(LOG_INFO);
	ck_assert_int_eq(log_start(), 0);
	for (int i = 0; i < 500; i++)
		log_info("before %d", i);
	log_crit("broken");
	text = read_all(path);
	ck_assert_int_eq(count_of(text, "]: [info] before "), 500);
	last = strstr(text, "]: [crit] broken\n");
	ck_assert_ptr_nonnull(last);
	ck_assert_msg(last[strlen("]: [crit] broken\n")] == '\0', "lines after the crit line");
	free(text);
	ck_assert_int_eq(log_stop(LOG_STOP_MS), 0);
	restore_stderr(saved);
	close(fd);
	unlink(path);
}
END_TEST

/* log_limited_msg end to end: a burst of 3 * LOG_LIMIT_BURST lines at once
 * prints (about) LOG_LIMIT_BURST, and log_stop prints the summary of the
 * rest: the lines and the summary add up, as does the metric. */
START_TEST(test_limited_summary_at_stop)
{
	LOG_LIMIT(limit, "test lines");
	int fd, saved, lines;
	char *path = temp_file(&fd);
	char *text, *at;
	uint64_t suppressed0 = log_lines_suppressed_total(), summarised = 0;

	saved = redirect_stderr(fd);
	log_set_level(LOG_INFO);
	ck_assert_int_eq(log_start(), 0);
	for (int i = 0; i < 3 * LOG_LIMIT_BURST; i++)
		log_limited(&limit, LOG_INFO, "limited line %d", i);
	log_limited(&limit, LOG_DEBUG, "a debug line is neither printed nor counted");
	ck_assert_int_eq(log_stop(LOG_STOP_MS), 0);
	restore_stderr(saved);
	close(fd);
	text = read_all(path);
	unlink(path);
	lines = count_of(text, "]: [info] limited line ");
	at = strstr(text, "]: [info] test lines: ... and ");
	if (at != NULL)
		summarised = strtoull(at + strlen("]: [info] test lines: ... and "), NULL, 10);
	ck_assert_msg(lines >= LOG_LIMIT_BURST, "%d lines printed", lines);
	ck_assert_msg(lines < 3 * LOG_LIMIT_BURST && at != NULL, "%d lines printed, no summary:\n%s", lines,
		      text);
	ck_assert_uint_eq((uint64_t)lines + summarised, 3 * LOG_LIMIT_BURST);
	ck_assert_uint_eq(log_lines_suppressed_total() - suppressed0, summarised);
	ck_assert_ptr_nonnull(strstr(at, " more like this in the last 1 s\n"));
	ck_assert_int_eq(count_of(text, "debug line"), 0);
	free(text);
}
END_TEST

/* stderr is a pipe nobody reads: logging 5000 lines still returns at once
 * (the queue takes what it can, the rest is dropped and counted); once the
 * pipe is read again, a line reports exactly how many were lost. */
START_TEST(test_stalled_stderr_drops)
{
	char chunk[65536], *seen = NULL, *at;
	size_t seen_len = 0;
	uint64_t dropped0 = log_lines_dropped_total(), dropped, reported = 0;
	int64_t t0, took, deadline;
	int p[2], saved;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	/* The smallest pipe: it fills with the first lines. */
	(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	saved = redirect_stderr(p[1]);
	log_set_level(LOG_INFO);
	ck_assert_int_eq(log_start(), 0);
	t0 = mono_ms();
	for (int i = 0; i < 5000; i++)
		log_info("a line of some hundred bytes, to fill the queue soon: %04d %s", i,
			 "................................................");
	took = mono_ms() - t0;
	dropped = log_lines_dropped_total() - dropped0;
	ck_assert_msg(took < 2000, "5000 lines to a stalled stderr took %lld ms", (long long)took);
	ck_assert_msg(dropped > 0 && dropped < 5000, "%" PRIu64 " lines dropped", dropped);
	fprintf(stdout, "check_log: 5000 lines to a stalled stderr in %lld ms, %" PRIu64 " dropped\n",
		(long long)took, dropped);
	/* The reader comes back: everything queued, then the report. */
	deadline = mono_ms() + 10000;
	while (mono_ms() < deadline) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		ck_assert_int_ge(poll(&pfd, 1, 100), 0);
		n = read(p[0], chunk, sizeof(chunk));
		if (n > 0) {
			seen = realloc(seen, seen_len + (size_t)n + 1);
			ck_assert_ptr_nonnull(seen);
			memcpy(seen + seen_len, chunk, (size_t)n);
			seen_len += (size_t)n;
			seen[seen_len] = '\0';
			if (strstr(seen, " log lines dropped: stderr is not being read\n") != NULL)
				break;
		}
	}
	ck_assert_ptr_nonnull(seen);
	ck_assert_msg(strstr(seen, " log lines dropped: stderr is not being read\n") != NULL,
		      "no report of the dropped lines in %zu bytes read", seen_len);
	at = strstr(seen, "]: [warn] ");
	ck_assert_ptr_nonnull(at);
	reported = strtoull(at + strlen("]: [warn] "), NULL, 10);
	ck_assert_uint_eq(reported, dropped);
	ck_assert_int_eq(count_of(seen, "a line of some hundred bytes") + (int)dropped, 5000);
	restore_stderr(saved);
	ck_assert_int_eq(log_stop(LOG_STOP_MS), 0);
	close(p[0]);
	close(p[1]);
	free(seen);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("limit");

	tcase_add_test(tc, test_burst);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_sustained_flood);
	tcase_add_test(tc, test_summary_at_next_line);
	tcase_add_test(tc, test_due);
	tcase_add_test(tc, test_refill_bounds);
	tcase_add_test(tc, test_every_line_accounted);
	tcase_add_test(tc, test_summary_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_writer_order_and_format);
	tcase_add_test(tc, test_crit_written_at_once);
	tcase_add_test(tc, test_limited_summary_at_stop);
	tcase_add_test(tc, test_stalled_stderr_drops);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(log_suite());
}
