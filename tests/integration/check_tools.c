/*
 * check_tools — integration tests for the test tooling itself: sluice-echo
 * (answers, ordering, delays, QUIT, trace, injected faults), the harness
 * library (processes, ports, logs, the TLS client), sluice-client and
 * sluice-bench (its runs against the echo and through sluice, its rate
 * limit, its exit status when answers are wrong), so that a proxy test
 * failing points at the proxy and not at its tools.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

/* Tighter than the fixture's T_IO_MS (10 s): the tools under test answer
 * at once. */
#define TOOLS_IO_MS 5000
#define T_EXIT_MS 5000
#define T_CASE_TIMEOUT_S 60

/* One echo under test: its folder, port, process and trace path. */
struct fx {
	char dir[PATH_MAX];
	char trace[PATH_MAX + 16];
	uint16_t port;
	struct harness_proc echo;
};

/* Starts an echo with extra options; with_trace adds --trace dir/trace.log. */
static void fx_up(struct fx *fx, const char *extra, int with_trace)
{
	char args[PATH_MAX + 256];

	memset(fx, 0, sizeof(*fx));
	ck_assert_msg(harness_tmpdir(fx->dir, sizeof(fx->dir)) == 0, "%s", harness_last_error());
	snprintf(fx->trace, sizeof(fx->trace), "%s/trace.log", fx->dir);
	snprintf(args, sizeof(args), "%s%s %s", with_trace ? "--trace " : "",
		 with_trace ? fx->trace : "", extra != NULL ? extra : "");
	fx->port = harness_free_port();
	ck_assert_msg(fx->port != 0, "%s", harness_last_error());
	ck_assert_msg(harness_start_echo(&fx->echo, fx->dir, fx->port, args) == 0, "%s",
		      harness_last_error());
}

/* Stops the echo the way an operator would and insists on a clean exit and
 * a clean log. */
static void fx_down(struct fx *fx)
{
	char why[512];
	int status = -1;

	ck_assert_int_eq(harness_signal(&fx->echo, SIGTERM), 0);
	ck_assert_msg(harness_wait_exit(&fx->echo, T_EXIT_MS, &status) == 0, "%s",
		      harness_last_error());
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "echo status 0x%x", status);
	ck_assert_msg(harness_log_clean(fx->echo.log, why, sizeof(why)) == 0, "%s", why);
	harness_rmdir(fx->dir);
}

static struct harness_tls *plain(const struct fx *fx)
{
	struct harness_tls *t = harness_plain_connect(fx->port, TOOLS_IO_MS);

	ck_assert_msg(t != NULL, "connect: %s", harness_last_error());
	return t;
}

static void send_text(struct harness_tls *t, const char *hdr, const char *text)
{
	ck_assert_msg(harness_send_frame(t, hdr, (uint16_t)strlen(hdr), text,
					 (uint32_t)strlen(text)) == 0, "%s", harness_last_error());
}

static void expect_frame(struct harness_tls *t, const void *hdr, uint16_t hlen,
			 const void *payload, uint32_t plen)
{
	struct harness_frame f;

	ck_assert_msg(harness_recv_frame(t, &f, TOOLS_IO_MS) == 0, "%s", harness_last_error());
	ck_assert_uint_eq(f.header_len, hlen);
	ck_assert_uint_eq(f.payload_len, plen);
	ck_assert(hlen == 0 || memcmp(f.header, hdr, hlen) == 0);
	ck_assert(plen == 0 || memcmp(f.payload, payload, plen) == 0);
	harness_frame_free(&f);
}

static void expect_text(struct harness_tls *t, const char *hdr, const char *text)
{
	expect_frame(t, hdr, (uint16_t)strlen(hdr), text, (uint32_t)strlen(text));
}

static void expect_closed(struct harness_tls *t)
{
	struct harness_frame f;
	int rc = harness_recv_frame(t, &f, TOOLS_IO_MS);

	ck_assert_msg(rc == 1, "expected a close, got %d (%s)", rc,
		      rc == 0 ? "a frame" : harness_last_error());
}

static void expect_silence(struct harness_tls *t, int ms)
{
	struct harness_frame f;

	ck_assert_int_eq(harness_recv_frame(t, &f, ms), -1);
}

/* ---- sluice-echo: answers --------------------------------------------- */

START_TEST(echo_answers_sizes_identically)
{
	static const uint32_t sizes[] = { 0, 1, 16 * 1024, 1024 * 1024 };
	struct harness_tls *t;
	uint8_t *payload;
	struct fx fx;
	size_t i, j;

	fx_up(&fx, NULL, 0);
	t = plain(&fx);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		payload = malloc(sizes[i] + 1);
		ck_assert_ptr_nonnull(payload);
		for (j = 0; j < sizes[i]; j++)
			payload[j] = (uint8_t)(j * 31 + i);
		ck_assert(harness_send_frame(t, "hdr", 3, payload, sizes[i]) == 0);
		expect_frame(t, "hdr", 3, payload, sizes[i]);
		ck_assert(harness_send_frame(t, NULL, 0, payload, sizes[i]) == 0);
		expect_frame(t, NULL, 0, payload, sizes[i]);
		free(payload);
	}
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

/* "prefix0007": payloads that say which request they are. */
static int numbered(char *out, size_t len, const char *prefix, int i)
{
	return snprintf(out, len, "%s%04d", prefix, i);
}

/* All frames in one write, so the echo sees them back to back. */
static void send_numbered(struct harness_tls *t, const char *prefix, int n)
{
	uint8_t *buf = malloc((size_t)n * 64);
	size_t len = 0;
	char text[32];
	int i, plen;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < n; i++) {
		plen = numbered(text, sizeof(text), prefix, i);
		harness_frame_prefix(buf + len, 0, (uint32_t)(6 + plen));
		memcpy(buf + len + 6, text, (size_t)plen);
		len += 6 + (size_t)plen;
	}
	ck_assert_msg(harness_tls_send(t, buf, len) == 0, "%s", harness_last_error());
	free(buf);
}

static void expect_numbered(struct harness_tls *t, const char *prefix, int n)
{
	char text[32];
	int i;

	for (i = 0; i < n; i++) {
		numbered(text, sizeof(text), prefix, i);
		expect_text(t, "", text);
	}
}

START_TEST(echo_keeps_order_of_1000_pipelined)
{
	struct harness_tls *t;
	struct fx fx;

	fx_up(&fx, NULL, 0);
	t = plain(&fx);
	send_numbered(t, "request ", 1000);
	expect_numbered(t, "request ", 1000);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_random_delay_keeps_connection_order)
{
	struct harness_tls *t;
	struct fx fx;

	fx_up(&fx, "-r 0:30", 0);
	t = plain(&fx);
	send_numbered(t, "slow ", 300);
	expect_numbered(t, "slow ", 300);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_fixed_delay_is_per_frame_not_cumulative)
{
	struct harness_tls *t;
	struct fx fx;
	int64_t start;

	fx_up(&fx, "--delay 150", 0);
	t = plain(&fx);
	start = fixture_mono_ms();
	send_numbered(t, "d", 3);
	expect_numbered(t, "d", 3);
	/* Three frames arriving together leave together, after one delay. */
	ck_assert_int_ge(fixture_mono_ms() - start, 145);
	ck_assert_int_lt(fixture_mono_ms() - start, 3 * 150 + 1000);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

/* One trial: A pipelines 8 frames, B (started later) sends one. Returns 1
 * when B's answer came while A still waited for some of its own. */
static int race_trial(const struct fx *fx)
{
	struct harness_tls *a = plain(fx), *b = plain(fx);
	struct pollfd pfd[2];
	struct harness_frame f;
	int64_t deadline = fixture_mono_ms() + TOOLS_IO_MS;
	int a_got = 0, b_got = 0, overtaken = 0;
	char want[16];

	send_numbered(a, "A", 8);
	send_text(b, "", "B0");
	while ((a_got < 8 || !b_got) && fixture_mono_ms() < deadline) {
		pfd[0] = (struct pollfd){ .fd = harness_tls_fd(a), .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = harness_tls_fd(b), .events = POLLIN };
		ck_assert_int_ge(poll(pfd, 2, TOOLS_IO_MS), 0);
		/* A first: B only counts as overtaking when A is truly behind. */
		while (a_got < 8 && harness_recv_frame(a, &f, 0) == 0) {
			numbered(want, sizeof(want), "A", a_got++);
			ck_assert_str_eq((char *)f.payload, want);
			harness_frame_free(&f);
		}
		if (!b_got && (pfd[1].revents & POLLIN)) {
			ck_assert_int_eq(harness_recv_frame(b, &f, TOOLS_IO_MS), 0);
			ck_assert_str_eq((char *)f.payload, "B0");
			harness_frame_free(&f);
			b_got = 1;
			overtaken = a_got < 8;
		}
	}
	ck_assert_msg(a_got == 8 && b_got, "answers missing: A %d, B %d", a_got, b_got);
	harness_tls_close(a);
	harness_tls_close(b);
	return overtaken;
}

START_TEST(echo_random_delay_lets_connections_finish_out_of_order)
{
	struct fx fx;
	int trial, seen = 0;

	/* With 8 random delays against one, B overtakes A in ~8 of 9 trials;
	 * ten trials make a false failure a one-in-a-billion event. */
	fx_up(&fx, "--random-delay 0:200", 0);
	for (trial = 0; trial < 10 && !seen; trial++)
		seen = race_trial(&fx);
	ck_assert_msg(seen, "a later, faster connection never finished first");
	fx_down(&fx);
}
END_TEST

/* ---- sluice-echo: QUIT -------------------------------------------------- */

static void check_quit(const char *extra)
{
	struct harness_tls *t;
	struct harness_frame f;
	uint8_t buf[64];
	size_t len = 0;
	struct fx fx;

	fx_up(&fx, extra, 0);
	t = plain(&fx);
	/* a, QUIT, b in one write: b comes after QUIT and must be ignored. */
	harness_frame_prefix(buf, 0, 7);
	buf[6] = 'a';
	harness_frame_prefix(buf + 7, 4, 10);
	memcpy(buf + 13, "QUIT", 4);
	harness_frame_prefix(buf + 17, 0, 7);
	buf[23] = 'b';
	len = 24;
	ck_assert(harness_tls_send(t, buf, len) == 0);
	expect_text(t, "", "a");
	ck_assert_int_eq(harness_recv_frame(t, &f, TOOLS_IO_MS), 0);
	ck_assert(harness_frame_is_quit(&f));
	ck_assert_uint_eq(f.payload_len, 0);
	harness_frame_free(&f);
	expect_closed(t);
	harness_tls_close(t);
	fx_down(&fx);
}

START_TEST(echo_answers_quit_after_earlier_answers_then_closes)
{
	check_quit(NULL);
}
END_TEST

START_TEST(echo_delayed_answers_precede_quit)
{
	check_quit("--delay 100");
}
END_TEST

static void check_half_close(const char *extra)
{
	struct harness_tls *t;
	struct fx fx;

	fx_up(&fx, extra, 0);
	t = plain(&fx);
	send_numbered(t, "h", 3);
	ck_assert_int_eq(shutdown(harness_tls_fd(t), SHUT_WR), 0);
	expect_numbered(t, "h", 3);
	expect_closed(t);
	harness_tls_close(t);
	fx_down(&fx);
}

START_TEST(echo_answers_what_came_before_a_half_close)
{
	check_half_close(NULL);
	check_half_close("--delay 50");
}
END_TEST

/* ---- sluice-echo: trace ----------------------------------------------- */

/* Polls until needle occurs want times in path; asserts exactly that. */
static void wait_count(const char *path, const char *needle, int want)
{
	(void)harness_wait_count(path, needle, want, NULL, TOOLS_IO_MS);
	ck_assert_int_eq(harness_count_log(path, needle), want);
}

START_TEST(echo_trace_records_accepts_frames_and_closes)
{
	struct harness_trace_frame frames[8];
	struct harness_tls *a, *b;
	int ca, cb, n;
	struct fx fx;

	fx_up(&fx, NULL, 1);
	a = plain(&fx);
	b = plain(&fx);
	send_text(a, "h", "alpha-1");
	expect_text(a, "h", "alpha-1");
	send_text(b, "", "bravo-1");
	expect_text(b, "", "bravo-1");
	send_text(a, "", "alpha-2");
	expect_text(a, "", "alpha-2");
	send_text(a, "", "");
	expect_text(a, "", "");
	harness_tls_close(a);
	harness_tls_close(b);
	wait_count(fx.trace, "close ", 2);

	ck_assert_int_eq(harness_trace_connections(fx.trace), 2);
	ck_assert_int_eq(harness_trace_max_open(fx.trace), 2);
	ca = harness_trace_conn_of(fx.trace, "alpha", 5);
	cb = harness_trace_conn_of(fx.trace, "bravo-1", 7);
	ck_assert_int_gt(ca, 0);
	ck_assert_int_gt(cb, 0);
	ck_assert_int_ne(ca, cb);
	ck_assert_int_eq(harness_trace_conn_of(fx.trace, "charlie", 7), -1);
	n = harness_trace_frames(fx.trace, ca, frames, 8);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(frames[0].total_len, 6 + 1 + 7);
	ck_assert(frames[0].prefix_len == 7 && memcmp(frames[0].prefix, "alpha-1", 7) == 0);
	ck_assert(frames[1].prefix_len == 7 && memcmp(frames[1].prefix, "alpha-2", 7) == 0);
	ck_assert_uint_eq(frames[2].prefix_len, 0);
	ck_assert_uint_eq(frames[2].total_len, 6);
	ck_assert_int_eq(harness_trace_frames(fx.trace, 0, frames, 8), 4);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_trace_prefix_is_first_32_payload_bytes)
{
	struct harness_trace_frame fr;
	struct harness_tls *t;
	char payload[100];
	struct fx fx;

	memset(payload, 'z', sizeof(payload));
	memcpy(payload, "long-payload", 12);
	fx_up(&fx, NULL, 1);
	t = plain(&fx);
	ck_assert(harness_send_frame(t, "hh", 2, payload, sizeof(payload)) == 0);
	expect_frame(t, "hh", 2, payload, sizeof(payload));
	ck_assert_int_eq(harness_trace_frames(fx.trace, 0, &fr, 1), 1);
	ck_assert_uint_eq(fr.prefix_len, 32);
	ck_assert_uint_eq(fr.total_len, 6 + 2 + sizeof(payload));
	ck_assert(memcmp(fr.prefix, payload, 32) == 0);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_serves_100_simultaneous_connections)
{
	struct harness_tls *t[100];
	char text[32];
	struct fx fx;
	int i;

	fx_up(&fx, NULL, 1);
	for (i = 0; i < 100; i++)
		t[i] = plain(&fx);
	for (i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "conn %d", i);
		send_text(t[i], "", text);
	}
	for (i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "conn %d", i);
		expect_text(t[i], "", text);
	}
	for (i = 0; i < 100; i++)
		harness_tls_close(t[i]);
	wait_count(fx.trace, "close ", 100);
	ck_assert_int_eq(harness_trace_max_open(fx.trace), 100);
	fx_down(&fx);
}
END_TEST

/* ---- sluice-echo: faults and bad input -------------------------------- */

START_TEST(echo_close_after_drops_nth_frame_and_closes)
{
	struct harness_tls *t;
	struct fx fx;

	fx_up(&fx, "--close-after 3", 0);
	t = plain(&fx);
	send_numbered(t, "f", 5);
	expect_numbered(t, "f", 2);
	expect_closed(t);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_close_after_zero_closes_at_accept)
{
	struct harness_tls *t;
	struct fx fx;

	fx_up(&fx, "--close-after 0", 0);
	t = plain(&fx);
	expect_closed(t);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_garbage_after_sends_invalid_prefix_in_place)
{
	static const uint8_t garbage[6] = { 0, 0, 0, 0, 0, 3 };
	uint8_t want[64], got[64];
	struct harness_tls *t;
	size_t have = 0;
	ssize_t n;
	struct fx fx;

	fx_up(&fx, "--garbage-after 2 --delay 10", 0);
	t = plain(&fx);
	send_text(t, "", "one");
	send_text(t, "", "two");
	send_text(t, "", "three");
	harness_frame_prefix(want, 0, 9);
	memcpy(want + 6, "one", 3);
	memcpy(want + 9, garbage, 6);
	harness_frame_prefix(want + 15, 0, 11);
	memcpy(want + 21, "three", 5);
	while (have < 26) {
		n = harness_tls_recv_raw(t, got + have, sizeof(got) - have, TOOLS_IO_MS);
		ck_assert_msg(n > 0, "after %zu bytes: %s", have, harness_last_error());
		have += (size_t)n;
	}
	ck_assert_uint_eq(have, 26);
	ck_assert(memcmp(got, want, 26) == 0);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_stall_after_stops_reading)
{
	const size_t big = 64u * 1024 * 1024;
	struct harness_tls *t, *other;
	uint8_t *junk;
	size_t sent = 0;
	struct fx fx;

	fx_up(&fx, "--stall-after 2", 0);
	t = plain(&fx);
	send_numbered(t, "s", 2);
	expect_numbered(t, "s", 2);
	send_text(t, "", "never answered");
	expect_silence(t, 300);
	/* Nothing is read any more, so the socket buffers fill and stay full. */
	junk = calloc(1, big);
	ck_assert_ptr_nonnull(junk);
	ck_assert_int_eq(harness_tls_send_some(t, junk, big, 500, &sent), -1);
	ck_assert_uint_lt(sent, big);
	free(junk);
	ck_assert_int_eq(harness_tls_wait_closed(t, 200), -1);
	/* The stall is per connection. */
	other = plain(&fx);
	send_text(other, "", "fresh");
	expect_text(other, "", "fresh");
	harness_tls_close(other);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_stops_reading_while_its_answers_are_not_read)
{
	const uint32_t flen = 64 * 1024, nframes = 1536;
	size_t sent = 0, i, done;
	struct harness_frame f;
	struct harness_tls *t;
	uint8_t *buf;
	struct fx fx;

	fx_up(&fx, NULL, 0);
	t = plain(&fx);
	buf = malloc((size_t)flen * nframes);
	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < nframes; i++) {
		harness_frame_prefix(buf + i * flen, 0, flen);
		memset(buf + i * flen + 6, (int)(i & 0xff), flen - 6);
	}
	/* 96 MiB without reading: the echo stops reading once ~8 MiB of its
	 * answers wait, so the sender gets stuck (after ~15 MiB with the socket
	 * buffers) well before half of it. */
	ck_assert_int_eq(harness_tls_send_some(t, buf, (size_t)flen * nframes, 1000, &sent), -1);
	ck_assert_uint_lt(sent, (size_t)flen * nframes / 2);
	/* Reading resumes it: the rest goes through and comes back intact. */
	ck_assert_msg(harness_tls_send(t, buf + sent, (size_t)flen * nframes - sent) == 0, "%s",
		      harness_last_error());
	for (done = 0; done < nframes; done++) {
		ck_assert_msg(harness_recv_frame(t, &f, TOOLS_IO_MS) == 0, "frame %zu: %s", done,
			      harness_last_error());
		ck_assert_uint_eq(f.payload_len, flen - 6);
		ck_assert_uint_eq(f.payload[0], done & 0xff);
		ck_assert_uint_eq(f.payload[flen - 7], done & 0xff);
		harness_frame_free(&f);
	}
	free(buf);
	harness_tls_close(t);
	fx_down(&fx);
}
END_TEST

static void send_prefix(struct harness_tls *t, uint16_t hlen, uint32_t total)
{
	uint8_t p[6];

	harness_frame_prefix(p, hlen, total);
	ck_assert(harness_tls_send(t, p, sizeof(p)) == 0);
}

START_TEST(echo_invalid_frames_close_the_connection)
{
	struct harness_tls *t;
	uint8_t *max;
	struct fx fx;

	fx_up(&fx, "--max-frame 1KiB", 0);
	/* header_len past the frame, after one good frame that is answered. */
	t = plain(&fx);
	send_text(t, "", "ok");
	send_prefix(t, 10, 12);
	expect_text(t, "", "ok");
	expect_closed(t);
	harness_tls_close(t);
	/* total_len shorter than the prefix. */
	t = plain(&fx);
	send_prefix(t, 0, 3);
	expect_closed(t);
	harness_tls_close(t);
	/* Over --max-frame: refused on the prefix alone. */
	t = plain(&fx);
	send_prefix(t, 0, 1025);
	expect_closed(t);
	harness_tls_close(t);
	/* Exactly --max-frame is fine, and the echo still serves. */
	t = plain(&fx);
	max = calloc(1, 1024 - 6);
	ck_assert_ptr_nonnull(max);
	ck_assert(harness_send_frame(t, NULL, 0, max, 1024 - 6) == 0);
	expect_frame(t, NULL, 0, max, 1024 - 6);
	free(max);
	harness_tls_close(t);
	ck_assert_int_ge(harness_count_log(fx.echo.log, "invalid frame"), 3);
	fx_down(&fx);
}
END_TEST

START_TEST(echo_exits_zero_on_sigint_with_open_connections)
{
	struct harness_tls *t;
	struct fx fx;
	int status = -1;

	fx_up(&fx, "-r 500:500", 0);
	t = plain(&fx);
	send_text(t, "", "pending");
	ck_assert_int_eq(harness_signal(&fx.echo, SIGINT), 0);
	ck_assert_int_eq(harness_wait_exit(&fx.echo, T_EXIT_MS, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(harness_tls_wait_closed(t, TOOLS_IO_MS), 0);
	harness_tls_close(t);
	harness_rmdir(fx.dir);
}
END_TEST

START_TEST(echo_rejects_bad_options_with_status_2)
{
	static const char *const bad[] = { "--delay x", "-r 5:1", "--max-frame 3",
					   "--max-frame 2GiB", "--garbage-after 0", "--bogus",
					   "-d 1 -r 1:2", "extra" };
	char dir[PATH_MAX], log[PATH_MAX + 16], path[PATH_MAX], line[256];
	char *argv[8], *save = NULL, *w;
	struct harness_proc p;
	const char *env = getenv("SLUICE_ECHO");
	size_t i;
	int argc, status;

	ck_assert(harness_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(log, sizeof(log), "%s/bad.log", dir);
	snprintf(path, sizeof(path), "%s", env != NULL ? env : "./tools/sluice-echo");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "%s", bad[i]);
		argc = 0;
		argv[argc++] = path;
		for (w = strtok_r(line, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
			argv[argc++] = w;
		argv[argc] = NULL;
		ck_assert(harness_spawn(&p, log, argv) == 0);
		ck_assert_int_eq(harness_wait_exit(&p, T_EXIT_MS, &status), 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: status 0x%x",
			      bad[i], status);
	}
	harness_rmdir(dir);
}
END_TEST

/* ---- harness ---------------------------------------------------------- */

START_TEST(harness_log_clean_flags_crit_and_sanitizers)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], why[256];

	ck_assert(harness_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/x.log", dir);
	ck_assert_int_eq(harness_log_clean(path, why, sizeof(why)), 0);
	ck_assert(harness_write_file(path, "[info] started\n[warn] slow backend\n") == 0);
	ck_assert_int_eq(harness_log_clean(path, why, sizeof(why)), 0);
	ck_assert(harness_write_file(path, "[info] ok\n2026 sluice[1]: [crit] broken queue\n"
				     "[info] after\n") == 0);
	ck_assert_int_eq(harness_log_clean(path, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "[crit] broken queue"));
	ck_assert_ptr_null(strstr(why, "after"));
	ck_assert(harness_write_file(path, "==1==ERROR: AddressSanitizer: heap-use-after-free") == 0);
	ck_assert_int_eq(harness_log_clean(path, why, sizeof(why)), -1);
	ck_assert(harness_write_file(path, "x.c:3:5: runtime error: signed overflow\n") == 0);
	ck_assert_int_eq(harness_log_clean(path, why, sizeof(why)), -1);
	harness_rmdir(dir);
}
END_TEST

START_TEST(harness_files_and_logs)
{
	char dir[PATH_MAX], sub[PATH_MAX + 16], path[PATH_MAX + 32];
	struct stat st;
	int64_t start;
	char *text;
	size_t len;

	ck_assert(harness_tmpdir(dir, sizeof(dir)) == 0);
	ck_assert_ptr_nonnull(strstr(dir, "sluice-test-"));
	snprintf(sub, sizeof(sub), "%s/a", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b.log", dir);
	ck_assert(harness_write_file(path, "one\ntwo two\nthree\n") == 0);
	text = harness_read_file(path, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, 18);
	free(text);
	ck_assert_int_eq(harness_count_log(path, "two"), 2);
	ck_assert_int_eq(harness_count_log(path, "four"), 0);
	ck_assert_int_eq(harness_wait_log(path, "three", 100), 0);
	start = fixture_mono_ms();
	ck_assert_int_eq(harness_wait_log(path, "four", 100), -1);
	ck_assert_int_lt(fixture_mono_ms() - start, 1000);
	harness_rmdir(dir);
	ck_assert_int_eq(stat(dir, &st), -1);
}
END_TEST

START_TEST(harness_free_ports_are_distinct_and_free)
{
	uint16_t ports[50];
	int i, j;

	for (i = 0; i < 50; i++) {
		ports[i] = harness_free_port();
		ck_assert_int_ge(ports[i], 20000);
		ck_assert_int_le(ports[i], 32767);
		for (j = 0; j < i; j++)
			ck_assert_int_ne(ports[i], ports[j]);
	}
	ck_assert_int_eq(harness_wait_port(ports[0], 100), -1);
}
END_TEST

START_TEST(harness_processes_spawn_wait_and_kill)
{
	char dir[PATH_MAX], log[PATH_MAX + 16];
	char *quick[] = { (char *)"/bin/sh", (char *)"-c", (char *)"echo started; exit 3", NULL };
	char *slow[] = { (char *)"/bin/sleep", (char *)"30", NULL };
	char *missing[] = { (char *)"/nonexistent/sluice-tool", NULL };
	struct harness_proc p;
	int64_t start;
	int status;

	ck_assert(harness_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(log, sizeof(log), "%s/p.log", dir);
	ck_assert(harness_spawn(&p, log, quick) == 0);
	ck_assert_int_eq(harness_wait_ready(&p, "started", T_EXIT_MS), 0);
	ck_assert_int_eq(harness_wait_exit(&p, T_EXIT_MS, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	/* A process that dies without the line fails the wait at once. */
	ck_assert(harness_spawn(&p, log, quick) == 0);
	start = fixture_mono_ms();
	ck_assert_int_eq(harness_wait_ready(&p, "never printed", 10000), -1);
	ck_assert_int_lt(fixture_mono_ms() - start, 5000);

	ck_assert(harness_spawn(&p, log, slow) == 0);
	ck_assert_int_eq(harness_wait_exit(&p, 50, &status), -1);
	ck_assert_int_eq(harness_alive(&p), 1);
	harness_kill(&p);
	harness_kill(&p);
	ck_assert_int_eq(harness_alive(&p), 0);
	ck_assert_int_eq(harness_signal(&p, SIGTERM), -1);

	ck_assert(harness_spawn(&p, log, missing) == 0);
	ck_assert_int_eq(harness_wait_exit(&p, T_EXIT_MS, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127);
	ck_assert_int_ge(harness_count_log(log, "exec failed"), 1);
	harness_rmdir(dir);
}
END_TEST

/* ---- an in-test TLS byte echo, for the TLS client and sluice-client ---- */

enum tls_mode {
	TLS_ECHO,               /* echo every byte */
	TLS_SILENT,             /* read, never answer */
	TLS_ECHO_ONCE,          /* echo one read, then close_notify and close */
	TLS_QUIT_FIRST,         /* send QUIT, echo frames until the client's
				 * QUIT, then close_notify: a draining proxy */
};

#define TLS_MAX_CONNS 64

/* The server; lives on the test's stack. */
struct tls_srv {
	SSL_CTX *ctx;
	int lfd;
	int stop[2];
	uint16_t port;
	enum tls_mode mode;
	pthread_t acceptor;
	pthread_t workers[TLS_MAX_CONNS];
	int nworkers;
	char dir[PATH_MAX];
	char crt[PATH_MAX + 16];
};

struct tls_job {
	struct tls_srv *srv;
	int fd;
};

/* Echoes whole frames until a QUIT frame; 1 when it came, 0 need more. */
static int echo_until_quit(SSL *ssl, uint8_t *buf, size_t *len)
{
	size_t off = 0, total;
	int quit = 0;

	while (!quit && *len - off >= 6) {
		total = (size_t)buf[off + 2] << 24 | (size_t)buf[off + 3] << 16 |
			(size_t)buf[off + 4] << 8 | buf[off + 5];
		if (total < 6 || *len - off < total)
			break;
		quit = total >= 10 && buf[off + 1] == 4 && memcmp(buf + off + 6, "QUIT", 4) == 0;
		if (!quit && SSL_write(ssl, buf + off, (int)total) != (int)total)
			return 1;
		off += total;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	return quit;
}

static void tls_serve_quit_first(SSL *ssl)
{
	static const uint8_t quit[10] = { 0, 4, 0, 0, 0, 10, 'Q', 'U', 'I', 'T' };
	uint8_t buf[65536];
	size_t len = 0;
	int n;

	if (SSL_write(ssl, quit, sizeof(quit)) != sizeof(quit))
		return;
	while (len < sizeof(buf) && (n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len))) > 0) {
		len += (size_t)n;
		if (echo_until_quit(ssl, buf, &len))
			break;
	}
	(void)SSL_shutdown(ssl);
}

static void tls_serve(struct tls_srv *srv, SSL *ssl)
{
	uint8_t buf[65536];
	int n;

	if (srv->mode == TLS_QUIT_FIRST) {
		tls_serve_quit_first(ssl);
		return;
	}
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
		if (srv->mode != TLS_SILENT && SSL_write(ssl, buf, n) != n)
			return;
		if (srv->mode == TLS_ECHO_ONCE)
			break;
	}
	/* Best effort: the client may be gone already. */
	if (n > 0 || SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN)
		(void)SSL_shutdown(ssl);
}

static void *tls_worker(void *arg)
{
	struct tls_job *job = arg;
	struct timeval tv = { .tv_sec = 10 };
	SSL *ssl = SSL_new(job->srv->ctx);

	/* Bounded: a client that vanishes cannot hold the thread forever. */
	if (setsockopt(job->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	    setsockopt(job->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
	    ssl != NULL && SSL_set_fd(ssl, job->fd) == 1 && SSL_accept(ssl) == 1)
		tls_serve(job->srv, ssl);
	SSL_free(ssl);
	close(job->fd);
	free(job);
	ERR_clear_error();
	return NULL;
}

static void *tls_acceptor(void *arg)
{
	struct tls_srv *srv = arg;
	struct pollfd pfd[2] = { { .fd = srv->lfd, .events = POLLIN },
				 { .fd = srv->stop[0], .events = POLLIN } };
	int64_t deadline = fixture_mono_ms() + T_CASE_TIMEOUT_S * 1000;
	struct tls_job *job;
	int fd;

	while (srv->nworkers < TLS_MAX_CONNS && fixture_mono_ms() < deadline) {
		if (poll(pfd, 2, 100) < 0 || (pfd[1].revents & POLLIN))
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept(srv->lfd, NULL, NULL);
		job = fd >= 0 ? malloc(sizeof(*job)) : NULL;
		if (job == NULL) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		job->srv = srv;
		job->fd = fd;
		if (pthread_create(&srv->workers[srv->nworkers], NULL, tls_worker, job) != 0) {
			close(fd);
			free(job);
			continue;
		}
		srv->nworkers++;
	}
	return NULL;
}

static void tls_srv_start(struct tls_srv *srv, enum tls_mode mode)
{
	char key[PATH_MAX + 16];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1;

	memset(srv, 0, sizeof(*srv));
	srv->mode = mode;
	ck_assert(harness_tmpdir(srv->dir, sizeof(srv->dir)) == 0);
	ck_assert_int_eq(testcerts_write(srv->dir, "server", "localhost", 1), 0);
	snprintf(srv->crt, sizeof(srv->crt), "%s/server.crt", srv->dir);
	snprintf(key, sizeof(key), "%s/server.key", srv->dir);
	srv->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(srv->ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(srv->ctx, srv->crt), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(srv->ctx, key, SSL_FILETYPE_PEM), 1);
	srv->port = harness_free_port();
	sin.sin_port = htons(srv->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(srv->lfd, 0);
	ck_assert_int_eq(setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(srv->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(srv->lfd, 128), 0);
	ck_assert_int_eq(pipe(srv->stop), 0);
	ck_assert_int_eq(pthread_create(&srv->acceptor, NULL, tls_acceptor, srv), 0);
}

static void tls_srv_stop(struct tls_srv *srv)
{
	int i;

	ck_assert_int_eq(write(srv->stop[1], "x", 1), 1);
	ck_assert_int_eq(pthread_join(srv->acceptor, NULL), 0);
	for (i = 0; i < srv->nworkers; i++)
		ck_assert_int_eq(pthread_join(srv->workers[i], NULL), 0);
	close(srv->lfd);
	close(srv->stop[0]);
	close(srv->stop[1]);
	SSL_CTX_free(srv->ctx);
	harness_rmdir(srv->dir);
}

START_TEST(harness_tls_client_round_trip_and_fingerprint)
{
	char want[65], got[65];
	struct harness_tls *t;
	struct tls_srv srv;
	X509 *cert;

	tls_srv_start(&srv, TLS_ECHO);
	t = harness_tls_connect(srv.port, "localhost", TOOLS_IO_MS);
	ck_assert_msg(t != NULL, "%s", harness_last_error());
	ck_assert_ptr_nonnull(harness_tls_ssl(t));
	send_text(t, "H", "over TLS");
	expect_text(t, "H", "over TLS");
	send_numbered(t, "tls ", 200);
	expect_numbered(t, "tls ", 200);
	ck_assert_int_eq(testcerts_fingerprint(srv.crt, want), 0);
	ck_assert_int_eq(harness_tls_peer_fingerprint(t, got), 0);
	ck_assert_str_eq(got, want);
	cert = harness_tls_peer_cert(t);
	ck_assert_ptr_nonnull(cert);
	X509_free(cert);
	expect_silence(t, 100);
	harness_tls_close(t);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(harness_tls_client_verifies_against_ca)
{
	struct harness_tls_opts o = { .sni = "localhost", .alpn = "sluice/1" };
	struct harness_tls *t;
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_ECHO);
	t = harness_tls_connect_ca(srv.port, "localhost", srv.crt, TOOLS_IO_MS);
	ck_assert_msg(t != NULL, "%s", harness_last_error());
	harness_tls_close(t);
	t = harness_tls_connect_ca(srv.port, "other.example", srv.crt, TOOLS_IO_MS);
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(strstr(harness_last_error(), "verify"));
	o.ca_file = srv.crt;
	o.min_version = TLS1_2_VERSION;
	o.max_version = TLS1_2_VERSION;
	t = harness_tls_connect_opts(srv.port, &o, TOOLS_IO_MS);
	ck_assert_msg(t != NULL, "%s", harness_last_error());
	ck_assert_int_eq(SSL_version(harness_tls_ssl(t)), TLS1_2_VERSION);
	harness_tls_close(t);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(harness_tls_client_sees_close_notify)
{
	struct harness_tls *t;
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_ECHO_ONCE);
	t = harness_tls_connect(srv.port, NULL, TOOLS_IO_MS);
	ck_assert_msg(t != NULL, "%s", harness_last_error());
	send_text(t, "", "once");
	expect_text(t, "", "once");
	expect_closed(t);
	ck_assert_int_eq(harness_tls_got_close_notify(t), 1);
	harness_tls_close(t);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(harness_tls_connect_fails_fast_when_refused)
{
	uint16_t port = harness_free_port();
	int64_t start = fixture_mono_ms();

	ck_assert_ptr_null(harness_tls_connect(port, NULL, TOOLS_IO_MS));
	ck_assert_int_lt(fixture_mono_ms() - start, 1000);
	ck_assert_ptr_null(harness_plain_connect(port, TOOLS_IO_MS));
	ck_assert_int_eq(harness_tcp_connect(port), -1);
}
END_TEST

/* ---- sluice-client ---------------------------------------------------- */

/* Runs sluice-client with args (space separated) and returns its exit
 * status; its output is in dir/client.log. */
static int run_client(const char *dir, const char *args, char *log, size_t loglen)
{
	char path[PATH_MAX], line[1024], why[512];
	char *argv[40], *save = NULL, *w;
	struct harness_proc p;
	int argc = 0, status = -1;

	snprintf(log, loglen, "%s/client.log", dir);
	unlink(log);
	harness_tool_path("sluice-client", path, sizeof(path));
	snprintf(line, sizeof(line), "%s", args);
	argv[argc++] = path;
	for (w = strtok_r(line, " ", &save); w != NULL && argc < 39; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	ck_assert_msg(harness_spawn(&p, log, argv) == 0, "%s", harness_last_error());
	ck_assert_msg(harness_wait_exit(&p, 30000, &status) == 0, "%s", harness_last_error());
	ck_assert_msg(WIFEXITED(status), "sluice-client died: 0x%x", status);
	ck_assert_msg(harness_log_clean(log, why, sizeof(why)) == 0, "%s", why);
	return WEXITSTATUS(status);
}

START_TEST(client_prints_each_request_and_response)
{
	char args[512], log[PATH_MAX + 16];
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_ECHO);
	snprintf(args, sizeof(args), "127.0.0.1:%u", (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 0);
	ck_assert_int_eq(harness_count_log(log, "-> request 1: 24 bytes payload "
					   "\"hello from sluice-client\""), 1);
	ck_assert_int_eq(harness_count_log(log, "<- response 1: header \"\" payload "
					   "\"hello from sluice-client\" (30 bytes, "), 1);
	ck_assert_int_eq(harness_count_log(log, "not verified"), 1);
	snprintf(args, sizeof(args), "--header H --quit --verify -n 2 -P 2 127.0.0.1:%u a bb",
		 (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 0);
	ck_assert_int_eq(harness_count_log(log, "<- response 4: header \"H\" payload \"bb\""), 1);
	ck_assert_int_eq(harness_count_log(log, "<- QUIT"), 1);
	ck_assert_int_eq(harness_count_log(log, "requests 4, responses 4, errors 0, mismatches 0"),
			 1);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(client_shows_err_frames_and_counts_them)
{
	char args[512], log[PATH_MAX + 16];
	struct tls_srv srv;

	/* The byte echo returns an ERR frame when sent one. */
	tls_srv_start(&srv, TLS_ECHO);
	snprintf(args, sizeof(args), "--header ERR 127.0.0.1:%u UNAVAILABLE no backend",
		 (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 1);
	ck_assert_int_eq(harness_count_log(log, "<- response 1: ERR UNAVAILABLE ("), 1);
	ck_assert_int_eq(harness_count_log(log, "<- response 2: ERR no ("), 1);
	ck_assert_int_eq(harness_count_log(log, "errors 3, mismatches 0"), 1);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(client_answers_a_server_quit)
{
	char args[512], log[PATH_MAX + 16];
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_QUIT_FIRST);
	/* One request goes out before the server's QUIT is read; the other
	 * four are never sent, so they count as errors. */
	snprintf(args, sizeof(args), "-n 5 127.0.0.1:%u", (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 1);
	ck_assert_int_eq(harness_count_log(log, "server sent QUIT; 4 requests not sent"), 1);
	ck_assert_int_eq(harness_count_log(log, "-> QUIT"), 1);
	ck_assert_int_eq(harness_count_log(log, "requests 1, responses 1, errors 4"), 1);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(client_load_mode_verifies_every_response)
{
	char args[512], log[PATH_MAX + 16];
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_ECHO);
	snprintf(args, sizeof(args), "-C 4 -P 32 -n 5000 -s 64 -q --verify 127.0.0.1:%u",
		 (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 0);
	ck_assert_int_eq(harness_count_log(log, "requests 20000, responses 20000, errors 0, "
					   "mismatches 0"), 1);
	snprintf(args, sizeof(args), "-C 2 -P 4 -n 10 -s 300000 -q --verify --quit "
		 "127.0.0.1:%u", (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 0);
	ck_assert_int_eq(harness_count_log(log, "responses 20, errors 0, mismatches 0"), 1);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(client_checks_the_certificate_with_ca)
{
	char args[PATH_MAX + 512], log[PATH_MAX + 16];
	struct tls_srv srv;

	tls_srv_start(&srv, TLS_ECHO);
	snprintf(args, sizeof(args), "-q --ca %s --sni localhost 127.0.0.1:%u", srv.crt,
		 (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 0);
	snprintf(args, sizeof(args), "-q --ca %s --sni wrong.example 127.0.0.1:%u", srv.crt,
		 (unsigned)srv.port);
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 1);
	ck_assert_int_ge(harness_count_log(log, "certificate"), 1);
	tls_srv_stop(&srv);
}
END_TEST

START_TEST(client_times_out_instead_of_hanging)
{
	char args[512], log[PATH_MAX + 16];
	struct tls_srv srv;
	int64_t start;

	tls_srv_start(&srv, TLS_SILENT);
	snprintf(args, sizeof(args), "-q --timeout 300 127.0.0.1:%u", (unsigned)srv.port);
	start = fixture_mono_ms();
	ck_assert_int_eq(run_client(srv.dir, args, log, sizeof(log)), 1);
	ck_assert_int_lt(fixture_mono_ms() - start, 5000);
	ck_assert_int_eq(harness_count_log(log, "timeout"), 1);
	ck_assert_int_eq(run_client(srv.dir, "--bogus", log, sizeof(log)), 2);
	ck_assert_int_eq(run_client(srv.dir, "-q", log, sizeof(log)), 2);
	tls_srv_stop(&srv);
}
END_TEST

/* ---- sluice-bench ----------------------------------------------------- */

/* Runs sluice-bench with args (space separated) and checks its exit status;
 * returns its JSON object (malloc'd), cut from dir/bench.log, which also
 * holds its stderr. */
static char *run_bench(const char *dir, const char *args, int want_status)
{
	char path[PATH_MAX], line[1024], log[PATH_MAX + 16], why[512];
	char *argv[40], *save = NULL, *w, *text, *json, *end;
	struct harness_proc p;
	int argc = 0, status = -1;

	snprintf(log, sizeof(log), "%s/bench.log", dir);
	unlink(log);
	harness_tool_path("sluice-bench", path, sizeof(path));
	snprintf(line, sizeof(line), "%s", args);
	argv[argc++] = path;
	for (w = strtok_r(line, " ", &save); w != NULL && argc < 39; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	ck_assert_msg(harness_spawn(&p, log, argv) == 0, "%s", harness_last_error());
	/* Runs take a few seconds; the bound is for a stuck one. */
	if (harness_wait_exit(&p, 30000, &status) < 0) {
		harness_kill(&p);
		ck_abort_msg("sluice-bench %s: still running after 30 s", args);
	}
	text = harness_read_file(log, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == want_status,
		      "sluice-bench %s: status 0x%x, want exit %d; output:\n%s", args, status,
		      want_status, text);
	ck_assert_msg(harness_log_clean(log, why, sizeof(why)) == 0, "%s", why);
	json = strstr(text, "{\"tool\":\"sluice-bench\"");
	ck_assert_msg(json != NULL, "no JSON from sluice-bench %s:\n%s", args, text);
	end = strchr(json, '\n');
	json = strndup(json, end != NULL ? (size_t)(end - json) : strlen(json));
	ck_assert_ptr_nonnull(json);
	free(text);
	return json;
}

/* The number after "key": in the JSON (keys are unique in sluice-bench's
 * output, "p99" included: "p999" is another key). */
static double json_num(const char *json, const char *key)
{
	char needle[64];
	const char *at;
	char *end;
	double v;

	snprintf(needle, sizeof(needle), "\"%s\":", key);
	at = strstr(json, needle);
	ck_assert_msg(at != NULL, "no %s in %s", key, json);
	v = strtod(at + strlen(needle), &end);
	ck_assert_msg(end != at + strlen(needle), "%s is not a number in %s", key, json);
	return v;
}

/* What every successful run shows: answers, none wrong, ordered
 * percentiles. */
static void expect_clean_run(const char *json)
{
	double p50 = json_num(json, "p50"), p99 = json_num(json, "p99");

	ck_assert_msg(json_num(json, "requests") > 0, "no requests: %s", json);
	ck_assert_msg(json_num(json, "errors") == 0, "errors: %s", json);
	ck_assert_msg(json_num(json, "mismatches") == 0, "mismatches: %s", json);
	ck_assert_msg(p50 > 0 && p50 <= p99 && p99 <= json_num(json, "p999"),
		      "percentiles out of order: %s", json);
}

START_TEST(bench_plain_run_against_echo)
{
	char args[256];
	struct fx fx;
	char *json;

	fx_up(&fx, NULL, 0);
	snprintf(args, sizeof(args), "--plain --json -d 1 -w 0.2 -c 4 -P 8 -s 200 127.0.0.1:%u",
		 (unsigned)fx.port);
	json = run_bench(fx.dir, args, 0);
	expect_clean_run(json);
	/* Every measured answer is one latency sample. */
	ck_assert_msg(json_num(json, "samples") == json_num(json, "requests"), "%s", json);
	ck_assert_msg(json_num(json, "bytes_in") == json_num(json, "requests") * (6 + 16 + 200),
		      "%s", json);
	ck_assert_msg(json_num(json, "handshakes") == 0, "%s", json);
	free(json);
	fx_down(&fx);
}
END_TEST

START_TEST(bench_rate_limit_holds_the_target)
{
	double rate;
	char args[256];
	struct fx fx;
	char *json;

	fx_up(&fx, NULL, 0);
	/* 500/s over 2 s: an open loop keeps its schedule even when the
	 * machine is busy (late requests go out at once, and count their
	 * lateness as latency), so ±30% is a wide margin. */
	snprintf(args, sizeof(args), "--plain --json -R 500 -d 2 -w 0.5 -c 4 127.0.0.1:%u",
		 (unsigned)fx.port);
	json = run_bench(fx.dir, args, 0);
	expect_clean_run(json);
	rate = json_num(json, "requests_per_s");
	ck_assert_msg(rate >= 350 && rate <= 650, "achieved %.1f/s for 500/s: %s", rate, json);
	ck_assert_msg(json_num(json, "rate_target") == 500, "%s", json);
	free(json);
	fx_down(&fx);
}
END_TEST

START_TEST(bench_counts_wrong_answers_and_fails)
{
	char args[256], log[PATH_MAX + 16];
	struct fx fx;
	char *json;

	/* The 3rd answer of every connection is an invalid prefix. */
	fx_up(&fx, "--garbage-after 3", 0);
	snprintf(args, sizeof(args), "--plain --json -d 1 -w 0 -c 2 127.0.0.1:%u",
		 (unsigned)fx.port);
	json = run_bench(fx.dir, args, 1);
	ck_assert_msg(json_num(json, "mismatches") >= 1, "%s", json);
	ck_assert_msg(json_num(json, "length") >= 1, "%s", json);
	/* The answers before the garbage were right. */
	ck_assert_msg(json_num(json, "requests") >= 2, "%s", json);
	free(json);
	snprintf(log, sizeof(log), "%s/bench.log", fx.dir);
	ck_assert_int_ge(harness_count_log(log, "invalid frame prefix"), 1);
	fx_down(&fx);
}
END_TEST

START_TEST(bench_handshakes_and_resumption_through_sluice)
{
	const struct fixture_opts o = { .level = "info" };
	struct fixture fx;
	char args[256];
	char *json;

	fixture_up(&fx, &o);
	/* Closed loop over TLS. */
	snprintf(args, sizeof(args), "--json --sni localhost -d 1 -w 0.2 -c 4 -P 4 127.0.0.1:%u",
		 (unsigned)fx.port);
	json = run_bench(fx.dir, args, 0);
	expect_clean_run(json);
	ck_assert_msg(strstr(json, "\"tls\":true") != NULL, "%s", json);
	free(json);
	/* Full handshakes: one request per connection, nothing resumed. */
	snprintf(args, sizeof(args), "--json --sni localhost --handshake -d 1 -w 0.2 -c 4 "
		 "127.0.0.1:%u", (unsigned)fx.port);
	json = run_bench(fx.dir, args, 0);
	expect_clean_run(json);
	ck_assert_msg(json_num(json, "handshakes") > 0, "%s", json);
	/* At the window's edges a connection's handshake and its answer may
	 * fall on either side: at most one per connection apart. */
	ck_assert_msg(fabs(json_num(json, "handshakes") - json_num(json, "requests")) <= 4, "%s",
		      json);
	ck_assert_msg(json_num(json, "resumed") == 0, "%s", json);
	free(json);
	/* Resumption: sluice issues tickets by default, so after each slot's
	 * first connection nearly every handshake resumes. */
	snprintf(args, sizeof(args), "--json --sni localhost --resume -d 1 -w 0.2 -c 4 "
		 "127.0.0.1:%u", (unsigned)fx.port);
	json = run_bench(fx.dir, args, 0);
	expect_clean_run(json);
	ck_assert_msg(json_num(json, "handshakes") > 0, "%s", json);
	ck_assert_msg(json_num(json, "resumed") > 0, "%s", json);
	ck_assert_msg(json_num(json, "resumption_rate") >= 0.5, "%s", json);
	free(json);
	fixture_down(&fx);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static TCase *tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, T_CASE_TIMEOUT_S);
	return tc;
}

static Suite *tools_suite(void)
{
	Suite *s = suite_create("tools");
	TCase *echo = tcase("echo"), *faults = tcase("echo faults");
	TCase *harness = tcase("harness"), *client = tcase("sluice-client");
	TCase *bench = tcase("sluice-bench");

	tcase_add_test(echo, echo_answers_sizes_identically);
	tcase_add_test(echo, echo_keeps_order_of_1000_pipelined);
	tcase_add_test(echo, echo_random_delay_keeps_connection_order);
	tcase_add_test(echo, echo_fixed_delay_is_per_frame_not_cumulative);
	tcase_add_test(echo, echo_random_delay_lets_connections_finish_out_of_order);
	tcase_add_test(echo, echo_answers_quit_after_earlier_answers_then_closes);
	tcase_add_test(echo, echo_delayed_answers_precede_quit);
	tcase_add_test(echo, echo_answers_what_came_before_a_half_close);
	tcase_add_test(echo, echo_trace_records_accepts_frames_and_closes);
	tcase_add_test(echo, echo_trace_prefix_is_first_32_payload_bytes);
	tcase_add_test(echo, echo_serves_100_simultaneous_connections);
	tcase_add_test(faults, echo_close_after_drops_nth_frame_and_closes);
	tcase_add_test(faults, echo_close_after_zero_closes_at_accept);
	tcase_add_test(faults, echo_garbage_after_sends_invalid_prefix_in_place);
	tcase_add_test(faults, echo_stall_after_stops_reading);
	tcase_add_test(faults, echo_stops_reading_while_its_answers_are_not_read);
	tcase_add_test(faults, echo_invalid_frames_close_the_connection);
	tcase_add_test(faults, echo_exits_zero_on_sigint_with_open_connections);
	tcase_add_test(faults, echo_rejects_bad_options_with_status_2);
	tcase_add_test(harness, harness_log_clean_flags_crit_and_sanitizers);
	tcase_add_test(harness, harness_files_and_logs);
	tcase_add_test(harness, harness_free_ports_are_distinct_and_free);
	tcase_add_test(harness, harness_processes_spawn_wait_and_kill);
	tcase_add_test(harness, harness_tls_client_round_trip_and_fingerprint);
	tcase_add_test(harness, harness_tls_client_verifies_against_ca);
	tcase_add_test(harness, harness_tls_client_sees_close_notify);
	tcase_add_test(harness, harness_tls_connect_fails_fast_when_refused);
	tcase_add_test(client, client_prints_each_request_and_response);
	tcase_add_test(client, client_shows_err_frames_and_counts_them);
	tcase_add_test(client, client_answers_a_server_quit);
	tcase_add_test(client, client_load_mode_verifies_every_response);
	tcase_add_test(client, client_checks_the_certificate_with_ca);
	tcase_add_test(client, client_times_out_instead_of_hanging);
	suite_add_tcase(s, echo);
	suite_add_tcase(s, faults);
	suite_add_tcase(s, harness);
	tcase_add_test(bench, bench_plain_run_against_echo);
	tcase_add_test(bench, bench_rate_limit_holds_the_target);
	tcase_add_test(bench, bench_counts_wrong_answers_and_fails);
	tcase_add_test(bench, bench_handshakes_and_resumption_through_sluice);
	suite_add_tcase(s, client);
	suite_add_tcase(s, bench);
	return s;
}

int main(void)
{
	return fixture_run_suite(tools_suite());
}
