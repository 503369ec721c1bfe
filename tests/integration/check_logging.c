/*
 * check_logging — SPEC §10's last point through the real sluice binary:
 *
 *   - lines a client can cause are rate-limited: a flood of 2000 failed
 *     handshakes prints a bounded number of lines, and the summaries
 *     ("... and N more like this in the last S s") account for every other
 *     failure counted in sluice_tls_handshake_failures_total;
 *   - a slow log reader never stalls the data path: with stderr a pipe the
 *     test fills and never reads, at log.level debug, TLS clients are still
 *     served within a deadline, lines past sluice's queue are counted in
 *     sluice_log_lines_dropped_total and reported once the pipe is read
 *     again, and SIGTERM still ends sluice with its last lines written.
 *
 * Figures (lines printed against failures, latencies with stderr stalled)
 * go to stderr. Every wait polls with a deadline.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/log.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

#define T_START_MS 15000
/* The failed handshakes of the flood, and how many are under way at once:
 * below the listen backlog, so that no SYN is dropped and retried. */
#define FLOOD_N 2000
#define FLOOD_BATCH 100
/* What a client sends instead of a ClientHello: plain HTTP to the TLS
 * port, the commonest mistake. */
#define GARBAGE "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
/* The slowest a TLS client may be served (connect, handshake, a round
 * trip) while stderr is stalled; unstalled it takes milliseconds. */
#define T_STALLED_MS 3000
#define STALLED_CLIENTS 20

static void
wait_metric_at_least(const struct fixture *fx, const char *series, double want)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	double got;

	while ((got = fixture_metric(fx, series)) < want && fixture_mono_ms() < deadline)
		usleep(20 * 1000);   /* the scrape period */
	ck_assert_msg(got >= want, "%s is %g, expected at least %g", series, got, want);
}

/* Waits (until deadline) for sluice to close fd: a read that ends or
 * fails. 0, or -1 on timeout. */
static int
wait_closed(int fd, int64_t deadline)
{
	char sink[4096];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - fixture_mono_ms();
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
		n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0;
	}
}

/* count connections that each send GARBAGE and are closed by sluice, at
 * most FLOOD_BATCH at a time. */
static void
flood_garbage(uint16_t port, int count)
{
	int fds[FLOOD_BATCH];

	for (int done = 0; done < count;) {
		int n = count - done < FLOOD_BATCH ? count - done : FLOOD_BATCH;
		int64_t deadline = fixture_mono_ms() + T_IO_MS;

		for (int i = 0; i < n; i++) {
			struct pollfd pfd;

			fds[i] = harness_tcp_connect_nowait(port);
			ck_assert_msg(fds[i] >= 0, "%s", harness_last_error());
			pfd.fd = fds[i];
			pfd.events = POLLOUT;
			ck_assert_int_eq(poll(&pfd, 1, T_IO_MS), 1);
			ck_assert_msg(send(fds[i], GARBAGE, strlen(GARBAGE), MSG_NOSIGNAL) ==
				      (ssize_t)strlen(GARBAGE), "send: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			ck_assert_msg(wait_closed(fds[i], deadline) == 0,
				      "connection %d of the flood not closed by sluice", done + i);
			close(fds[i]);
		}
		done += n;
	}
}

/* ---- the rate limit ------------------------------------------------------ */

/* 2000 clients send HTTP to the TLS port within a few seconds. The log has
 * at most the burst plus the rate over the flood's duration of "TLS
 * handshake failed" lines; the summaries printed since (the periodic one
 * comes LOG_LIMIT_SUMMARY_MS after the first line held back, without
 * SIGTERM) add up with them to the failures counted, as does
 * sluice_log_lines_suppressed_total. */
START_TEST(test_handshake_flood_rate_limited)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .level = "info" };
	long lines = 0, summarised = 0, failures, bound;
	int64_t t0, flood_ms, deadline;
	struct harness_tls *t;

	fixture_up(&fx, &o);
	t0 = fixture_mono_ms();
	flood_garbage(fx.port, FLOOD_N);
	flood_ms = fixture_mono_ms() - t0;
	wait_metric_at_least(&fx, "sluice_tls_handshake_failures_total", FLOOD_N);
	failures = (long)fixture_metric(&fx, "sluice_tls_handshake_failures_total");
	ck_assert_int_eq(failures, FLOOD_N);
	deadline = fixture_mono_ms() + LOG_LIMIT_SUMMARY_MS + T_IO_MS;
	while (fixture_log_limited(fx.log, "TLS handshake failed", "failed TLS handshakes", &lines,
				   &summarised) < failures && fixture_mono_ms() < deadline)
		usleep(50 * 1000);   /* polling period */
	fprintf(stderr, "check_logging: %d failed handshakes in %lld ms: %ld lines printed, %ld summarised "
		"(%d summary lines)\n", FLOOD_N, (long long)flood_ms, lines, summarised,
		harness_count_log(fx.log, "more like this in the last"));
	ck_assert_msg(lines + summarised == failures, "%ld lines + %ld summarised, %ld failures (see %s)",
		      lines, summarised, failures, fx.log);
	/* The bucket: a burst, then the rate for as long as the flood lasted
	 * (plus the second it may have begun in). */
	bound = LOG_LIMIT_BURST + LOG_LIMIT_RATE * (flood_ms / 1000 + 2);
	ck_assert_msg(lines <= bound, "%ld lines printed in %lld ms, more than %ld", lines, (long long)flood_ms,
		      bound);
	ck_assert_int_ge(lines, LOG_LIMIT_BURST);
	ck_assert_int_ge(harness_count_log(fx.log, "failed TLS handshakes: ... and "), 1);
	ck_assert_int_eq((long)fixture_metric(&fx, "sluice_log_lines_suppressed_total"), summarised);
	ck_assert_int_eq((long)fixture_metric(&fx, "sluice_log_lines_dropped_total"), 0);
	/* The flood over, a client is served. */
	t = fixture_connect(&fx);
	fixture_round_trip(t, "after the flood");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- a stalled log reader ------------------------------------------------- */

/* Like fixture_up, with sluice's stderr (and stdout) a FIFO at fx->log that
 * the test holds open for reading and does not read: *rfd is its read end,
 * its capacity shrunk to *cap bytes so that a few dozen lines fill it. */
static void
up_with_stalled_stderr(struct fixture *fx, const struct fixture_opts *o, int *rfd, int *cap)
{
	const char *bin = getenv("SLUICE_BIN");
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-c", fx->conf, NULL };

	memset(fx, 0, sizeof(*fx));
	ck_assert_msg(harness_tmpdir(fx->dir, sizeof(fx->dir)) == 0, "%s", harness_last_error());
	ck_assert_int_eq(testcerts_write(fx->dir, "server", "localhost", 1), 0);
	snprintf(fx->conf, sizeof(fx->conf), "%s/sluice.yaml", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/sluice.fifo", fx->dir);
	fx->n_echos = 1;
	fx->port = harness_free_port();
	fx->admin_port = harness_free_port();
	fx->echo_port[0] = harness_free_port();
	ck_assert(fx->port != 0 && fx->admin_port != 0 && fx->echo_port[0] != 0);
	fixture_start_echo(fx, 0, o->echo_args);
	fixture_write_config(fx, o);
	ck_assert_int_eq(mkfifo(fx->log, 0600), 0);
	/* Open before sluice, so that its open for writing does not wait. */
	*rfd = open(fx->log, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(*rfd, 0);
	*cap = fcntl(*rfd, F_SETPIPE_SZ, 4096);
	ck_assert_int_gt(*cap, 0);
	ck_assert_int_eq(harness_spawn(&fx->sluice, fx->log, argv), 0);
	/* No log line to wait for: the port, then a client served. */
	ck_assert_msg(harness_wait_port(fx->port, T_START_MS) == 0, "sluice did not listen: %s",
		      harness_last_error());
}

static int
pipe_queued(int rfd)
{
	int n = 0;

	ck_assert_int_eq(ioctl(rfd, FIONREAD, &n), 0);
	return n;
}

/* Connects and closes plain TCP connections, each of which makes sluice
 * log at least "client A: connected" and "client A: closed ..." (over 64
 * bytes), until they add up to twice the pipe's capacity: the pipe is
 * full then and whoever writes to it waits. Returns how many were made
 * (fewer than the listen backlog, so each connect succeeds even if sluice
 * stopped accepting). */
static int
fill_pipe(const struct fixture *fx, int cap)
{
	int want = 2 * cap / 64;

	for (int made = 0; made < want; made++) {
		int fd = harness_tcp_connect(fx->port);

		ck_assert_msg(fd >= 0, "%s", harness_last_error());
		close(fd);
	}
	return want;
}

/* count more such connections, in batches that sluice has accepted before
 * the next (a full listen backlog would drop SYNs, retried a second
 * later). */
static void
plain_connections(const struct fixture *fx, int count)
{
	double total = fixture_metric(fx, "sluice_connections_total");

	for (int made = 0; made < count; made++) {
		int fd = harness_tcp_connect(fx->port);

		ck_assert_msg(fd >= 0, "%s", harness_last_error());
		close(fd);
		if ((made + 1) % FLOOD_BATCH == 0)
			wait_metric_at_least(fx, "sluice_connections_total", total + made + 1);
	}
}

/* What the test has read from sluice's stderr. */
struct drained {
	char *text;     /* NUL-terminated */
	size_t len;
};

/* Reads the pipe, appending to d, until needle has been read or, with
 * needle NULL, until sluice closes it (exits); 0, or -1 at the deadline. */
static int
drain_pipe(int rfd, struct drained *d, const char *needle, int64_t deadline)
{
	char buf[65536];

	for (;;) {
		struct pollfd pfd = { .fd = rfd, .events = POLLIN };
		int64_t left = deadline - fixture_mono_ms();
		size_t from;
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, left < 100 ? (int)left : 100) < 0 && errno != EINTR)
			return -1;
		n = read(rfd, buf, sizeof(buf));
		if (n == 0)
			return needle == NULL ? 0 : -1;
		if (n < 0)
			continue;   /* EAGAIN: nothing yet */
		d->text = realloc(d->text, d->len + (size_t)n + 1);
		ck_assert_ptr_nonnull(d->text);
		memcpy(d->text + d->len, buf, (size_t)n);
		/* The needle may straddle two reads. */
		from = needle != NULL && d->len > strlen(needle) ? d->len - strlen(needle) : 0;
		d->len += (size_t)n;
		d->text[d->len] = '\0';
		if (needle != NULL && strstr(d->text + from, needle) != NULL)
			return 0;
	}
}

/* stderr is a pipe nobody reads, and sluice logs at debug level (lines for
 * every connection). Once the pipe is full, STALLED_CLIENTS TLS clients in
 * a row still connect and get their answer, each within T_STALLED_MS;
 * more connections overflow sluice's queue: sluice_log_lines_dropped_total
 * counts the lines lost. When the pipe is read again, a line reports them;
 * SIGTERM ends sluice at once, "sluice stopped" written last. */
START_TEST(test_stalled_stderr_does_not_stall_clients)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .level = "debug" };
	struct drained d = { NULL, 0 };
	char text[64];
	int64_t worst = 0, t0;
	int rfd, cap, made;
	double dropped;

	up_with_stalled_stderr(&fx, &o, &rfd, &cap);
	made = fill_pipe(&fx, cap);
	ck_assert_msg(pipe_queued(rfd) > 0, "nothing in the pipe after %d connections", made);
	for (int i = 0; i < STALLED_CLIENTS; i++) {
		struct harness_tls *t;
		struct harness_frame f;
		int64_t took;

		t0 = fixture_mono_ms();
		t = harness_tls_connect(fx.port, "localhost", T_STALLED_MS);
		ck_assert_msg(t != NULL, "client %d not served with stderr stalled: %s", i, harness_last_error());
		snprintf(text, sizeof(text), "stalled %d", i);
		ck_assert_int_eq(harness_send_frame(t, NULL, 0, text, (uint32_t)strlen(text)), 0);
		ck_assert_msg(harness_recv_frame(t, &f, T_STALLED_MS) == 0,
			      "client %d got no answer with stderr stalled: %s", i, harness_last_error());
		ck_assert_uint_eq(f.payload_len, strlen(text));
		harness_frame_free(&f);
		harness_tls_close(t);
		took = fixture_mono_ms() - t0;
		ck_assert_msg(took < T_STALLED_MS, "client %d served in %lld ms", i, (long long)took);
		if (took > worst)
			worst = took;
	}
	/* Some 250 bytes of lines a connection: enough to overflow the queue. */
	made = (int)(2 * LOG_QUEUE_BYTES / 200);
	plain_connections(&fx, made);
	wait_metric_at_least(&fx, "sluice_log_lines_dropped_total", 1);
	dropped = fixture_metric(&fx, "sluice_log_lines_dropped_total");
	fprintf(stderr, "check_logging: stderr stalled (a pipe of %d bytes holding %d): %d TLS clients served, "
		"the slowest in %lld ms; %d more connections, %g log lines dropped\n", cap, pipe_queued(rfd),
		STALLED_CLIENTS, (long long)worst, made, dropped);
	/* The reader is back: the queue, then the report of the loss. */
	ck_assert_msg(drain_pipe(rfd, &d, " log lines dropped: stderr is not being read\n",
				 fixture_mono_ms() + T_IO_MS) == 0, "no report of the dropped lines");
	/* Then the end: sluice exits at once, its last line written. */
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	ck_assert_msg(drain_pipe(rfd, &d, NULL, fixture_mono_ms() + T_IO_MS) == 0,
		      "sluice's stderr still open %d ms after SIGTERM", T_IO_MS);
	close(rfd);
	/* What was read is the log fixture_wait_exit checks for crashes. */
	snprintf(fx.log, sizeof(fx.log), "%s/sluice.log", fx.dir);
	ck_assert_uint_lt(strlen(fx.log), sizeof(fx.sluice.log));
	memcpy(fx.sluice.log, fx.log, strlen(fx.log) + 1);
	ck_assert_int_eq(harness_write_file(fx.log, d.text), 0);
	fixture_wait_exit(&fx);
	ck_assert_msg(strstr(d.text, "[info] sluice stopped\n") != NULL, "no 'sluice stopped' in %s", fx.log);
	ck_assert_int_eq(harness_count_log(fx.log, "log lines dropped: stderr is not being read"), 1);
	free(d.text);
	fixture_cleanup(&fx);
}
END_TEST

static Suite *
logging_suite(void)
{
	Suite *s = suite_create("logging");
	TCase *tc = tcase_create("logging");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_handshake_flood_rate_limited);
	tcase_add_test(tc, test_stalled_stderr_does_not_stall_clients);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	fixture_set_deadlines(T_START_MS, 20000);
	return fixture_run_suite(logging_suite());
}
