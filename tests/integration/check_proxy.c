/*
 * check_proxy — integration tests of the real sluice binary: generated
 * certificates, real sluice-echo backends on 127.0.0.1, and a real OpenSSL
 * client. Every test stops sluice with SIGTERM, expects exit status 0, and
 * fails if sluice's log shows a crash, a sanitizer report or a [crit] line.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

#define T_EXIT_MS 10000

/* ---- echo through sluice ---------------------------------------------- */

START_TEST(test_echo_sizes)
{
	static const uint32_t sizes[] = { 0, 1, 16 * 1024, 1024 * 1024 - 64 };
	struct fixture fx;
	struct fixture_opts o = { 0 };
	struct harness_tls *t;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = malloc(sizes[i] + 1);

		ck_assert_ptr_nonnull(p);
		for (uint32_t j = 0; j < sizes[i]; j++)
			p[j] = (uint8_t)(j * 31 + i);
		ck_assert_int_eq(harness_send_frame(t, NULL, 0, p, sizes[i]), 0);
		fixture_expect_frame(t, p, sizes[i]);
		free(p);
	}
	/* A header travels too, byte for byte. */
	{
		struct harness_frame f;

		ck_assert_int_eq(harness_send_frame(t, "hdr", 3, "body", 4), 0);
		ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
		ck_assert_uint_eq(f.header_len, 3);
		ck_assert_str_eq((char *)f.header, "hdr");
		ck_assert_str_eq((char *)f.payload, "body");
		harness_frame_free(&f);
	}
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* 50 clients × 200 pipelined requests, unique payloads, two backends with
 * random delays: each client gets exactly its own responses, in order, and
 * every request reached a backend once. Both servers take a share (SPEC §2:
 * least outstanding across servers and connections); with 50 clients placed
 * over 8 connections, 10% each is far below what balancing gives. */
START_TEST(test_many_clients_pipelined_in_order)
{
	enum { CLIENTS = 50, REQS = 200 };
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .echo_args = "-r 0:3", .connections = 4 };
	struct harness_tls *t[CLIENTS];
	char payload[64];

	fixture_up(&fx, &o);
	for (int c = 0; c < CLIENTS; c++)
		t[c] = fixture_connect(&fx);
	/* Interleave the clients' sends so their requests share connections. */
	for (int r = 0; r < REQS; r++) {
		for (int c = 0; c < CLIENTS; c++) {
			int n = snprintf(payload, sizeof(payload), "client %d request %d", c, r);
			ck_assert_int_eq(harness_send_frame(t[c], NULL, 0, payload, (uint32_t)n), 0);
		}
	}
	for (int c = 0; c < CLIENTS; c++) {
		for (int r = 0; r < REQS; r++) {
			int n = snprintf(payload, sizeof(payload), "client %d request %d", c, r);
			fixture_expect_frame(t[c], payload, (uint32_t)n);
		}
		harness_tls_close(t[c]);
	}
	{
		int n0 = harness_trace_frames(fx.trace[0], 0, NULL, 0);
		int n1 = harness_trace_frames(fx.trace[1], 0, NULL, 0);

		ck_assert_msg(n0 + n1 == CLIENTS * REQS, "the backends saw %d + %d frames, sent %d", n0, n1,
			      CLIENTS * REQS);
		ck_assert_msg(n0 >= CLIENTS * REQS / 10 && n1 >= CLIENTS * REQS / 10,
			      "one server took almost nothing: %d and %d frames", n0, n1);
	}
	fixture_down(&fx);
}
END_TEST

/* A client's pipelined burst reaches the backend on one connection, in the
 * order sent (SPEC §1 "Execution order"), even while another client loads
 * the other connections. The property only holds while the client has
 * requests outstanding (one with nothing outstanding may legally move), so
 * the backend is stopped while both bursts go in: each client's first
 * request stays unanswered until every request has been placed (the
 * pending gauge says so), whatever the timing. Each burst is one write. */
START_TEST(test_burst_stays_on_one_connection)
{
	enum { REQS = 100 };
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .connections = 4 };
	struct harness_tls *a, *b;
	struct harness_trace_frame frames[4 * REQS];
	uint8_t burst_a[REQS * 16], burst_b[REQS * 16];
	size_t len_a = 0, len_b = 0;
	char payload[32];
	int conn_a, conn_b, n, seen = 0;
	int64_t deadline;
	double pending = -1;

	fixture_up(&fx, &o);
	/* The whole pool is connected: A and B then have four to choose from. */
	deadline = fixture_mono_ms() + T_IO_MS;
	while (harness_trace_connections(fx.trace[0]) < 4 && fixture_mono_ms() < deadline)
		usleep(2000);
	ck_assert_int_eq(harness_trace_connections(fx.trace[0]), 4);
	a = fixture_connect(&fx);
	b = fixture_connect(&fx);
	for (int r = 0; r < REQS; r++) {
		n = snprintf(payload, sizeof(payload), "A%04d", r);
		harness_frame_prefix(burst_a + len_a, 0, (uint32_t)(6 + n));
		memcpy(burst_a + len_a + 6, payload, (size_t)n);
		len_a += 6 + (size_t)n;
		n = snprintf(payload, sizeof(payload), "B%04d", r);
		harness_frame_prefix(burst_b + len_b, 0, (uint32_t)(6 + n));
		memcpy(burst_b + len_b + 6, payload, (size_t)n);
		len_b += 6 + (size_t)n;
	}
	fixture_stop_echo(&fx, 0);
	ck_assert_int_eq(harness_tls_send(a, burst_a, len_a), 0);
	ck_assert_int_eq(harness_tls_send(b, burst_b, len_b), 0);
	deadline = fixture_mono_ms() + T_IO_MS;
	while ((pending = fixture_metric(&fx, "sluice_requests_pending")) < 2 * REQS &&
	       fixture_mono_ms() < deadline)
		usleep(5000);
	ck_assert_msg(pending == 2 * REQS, "sluice took %.0f of the %d requests", pending, 2 * REQS);
	fixture_cont_echo(&fx, 0);
	for (int r = 0; r < REQS; r++) {
		n = snprintf(payload, sizeof(payload), "A%04d", r);
		fixture_expect_frame(a, payload, (uint32_t)n);
		n = snprintf(payload, sizeof(payload), "B%04d", r);
		fixture_expect_frame(b, payload, (uint32_t)n);
	}
	/* Every request reached the backend exactly once... */
	ck_assert_int_eq(harness_trace_frames(fx.trace[0], 0, NULL, 0), 2 * REQS);
	/* ... and all of A's on one connection, in the order sent. */
	conn_a = harness_trace_conn_of(fx.trace[0], "A0000", 5);
	ck_assert_int_gt(conn_a, 0);
	n = harness_trace_frames(fx.trace[0], conn_a, frames, 4 * REQS);
	ck_assert_int_ge(n, REQS);
	ck_assert_int_le(n, 4 * REQS);
	for (int i = 0; i < n; i++) {
		if (frames[i].prefix[0] != 'A')
			continue;
		snprintf(payload, sizeof(payload), "A%04d", seen);
		ck_assert_msg(memcmp(frames[i].prefix, payload, 5) == 0,
			      "request %d of client A reached the backend out of order", seen);
		seen++;
	}
	ck_assert_msg(seen == REQS, "only %d of client A's %d requests went on its first connection",
		      seen, REQS);
	/* B, whose requests arrived while A's were outstanding, likewise. */
	conn_b = harness_trace_conn_of(fx.trace[0], "B0000", 5);
	ck_assert_int_gt(conn_b, 0);
	n = harness_trace_frames(fx.trace[0], conn_b, frames, 4 * REQS);
	seen = 0;
	for (int i = 0; i < n && i < 4 * REQS; i++) {
		if (frames[i].prefix[0] != 'B')
			continue;
		snprintf(payload, sizeof(payload), "B%04d", seen);
		ck_assert_msg(memcmp(frames[i].prefix, payload, 5) == 0,
			      "request %d of client B reached the backend out of order", seen);
		seen++;
	}
	ck_assert_msg(seen == REQS, "only %d of client B's %d requests went on its first connection",
		      seen, REQS);
	harness_tls_close(a);
	harness_tls_close(b);
	fixture_down(&fx);
}
END_TEST

/* 100 clients; the backend never sees more than `connections`. */
START_TEST(test_pool_bounds_backend_connections)
{
	enum { CLIENTS = 100 };
	struct fixture fx;
	struct fixture_opts o = { .connections = 3 };
	struct harness_tls *t[CLIENTS];
	char payload[32];

	fixture_up(&fx, &o);
	for (int c = 0; c < CLIENTS; c++) {
		int n;

		t[c] = fixture_connect(&fx);
		n = snprintf(payload, sizeof(payload), "c%d", c);
		ck_assert_int_eq(harness_send_frame(t[c], NULL, 0, payload, (uint32_t)n), 0);
	}
	for (int c = 0; c < CLIENTS; c++) {
		int n = snprintf(payload, sizeof(payload), "c%d", c);

		fixture_expect_frame(t[c], payload, (uint32_t)n);
		harness_tls_close(t[c]);
	}
	ck_assert_int_eq(harness_trace_connections(fx.trace[0]), 3);
	ck_assert_int_le(harness_trace_max_open(fx.trace[0]), 3);
	fixture_down(&fx);
}
END_TEST

/* One client of the least-outstanding test, on its own thread: a request,
 * its answer, the next request, while the shared budget lasts. It never
 * calls ck_assert (Check's assertions belong to the test's thread): the
 * test reads its counts once it is joined. */
struct lo_client {
	struct harness_tls *t;
	int id;
	atomic_int *left;        /* requests still to send, all clients together */
	int answered;            /* with its own payload */
	char why[256];           /* the first problem */
	pthread_t thread;
};

static void *
lo_client_run(void *arg)
{
	struct lo_client *c = arg;
	char payload[48];

	for (int r = 0; atomic_fetch_sub(c->left, 1) > 0; r++) {
		struct harness_frame f;
		int n = snprintf(payload, sizeof(payload), "lo client %d request %d", c->id, r);

		if (harness_send_frame(c->t, NULL, 0, payload, (uint32_t)n) != 0) {
			snprintf(c->why, sizeof(c->why), "request %d: send: %s", r, harness_last_error());
			return NULL;
		}
		if (harness_recv_frame(c->t, &f, T_IO_MS) != 0) {
			snprintf(c->why, sizeof(c->why), "request %d: recv: %s", r, harness_last_error());
			return NULL;
		}
		if (f.header_len != 0 || f.payload_len != (uint32_t)n || memcmp(f.payload, payload, (size_t)n) != 0) {
			snprintf(c->why, sizeof(c->why), "request %d: got header '%.8s' payload '%.60s'", r,
				 f.header, f.payload);
			harness_frame_free(&f);
			return NULL;
		}
		harness_frame_free(&f);
		c->answered++;
	}
	return NULL;
}

/* Least outstanding requests (SPEC §2): one server answers after 200 ms,
 * the other at once, two connections each. Four clients send 400 requests
 * in all, each one request at a time (a client with nothing outstanding may
 * go anywhere). With no more clients than connections, some connection
 * always has nothing outstanding, so a slow connection never takes a
 * second request while it holds one: each takes at most one per 200 ms,
 * and the clients it does not hold run on the fast server, which takes
 * nearly everything. Round robin or a random pick would send the slow
 * server about half (and take about 10 s). Asserted: the fast server took
 * at least 75%, and the slow one no more than its two connections can
 * have held one at a time in the time it all took. */
START_TEST(test_least_outstanding_prefers_fast_server)
{
	enum { CLIENTS = 4, TOTAL = 400, DELAY_MS = 200, CONNS = 2 };
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .echo_args_of = { "-d 200", NULL }, .connections = CONNS };
	struct lo_client c[CLIENTS];
	atomic_int left;
	int64_t deadline, t0, elapsed;
	int slow, fast, answered = 0;

	fixture_up(&fx, &o);
	/* The whole pool is up, so the slow server's connections compete. */
	deadline = fixture_mono_ms() + T_IO_MS;
	while ((harness_trace_connections(fx.trace[0]) < CONNS ||
		harness_trace_connections(fx.trace[1]) < CONNS) && fixture_mono_ms() < deadline)
		usleep(2000);
	ck_assert_int_eq(harness_trace_connections(fx.trace[0]), CONNS);
	ck_assert_int_eq(harness_trace_connections(fx.trace[1]), CONNS);
	memset(c, 0, sizeof(c));
	atomic_init(&left, TOTAL);
	for (int i = 0; i < CLIENTS; i++) {
		c[i].t = fixture_connect(&fx);
		c[i].id = i;
		c[i].left = &left;
	}
	t0 = fixture_mono_ms();
	for (int i = 0; i < CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&c[i].thread, NULL, lo_client_run, &c[i]), 0);
	for (int i = 0; i < CLIENTS; i++)
		ck_assert_int_eq(pthread_join(c[i].thread, NULL), 0);
	elapsed = fixture_mono_ms() - t0;
	for (int i = 0; i < CLIENTS; i++) {
		ck_assert_msg(c[i].why[0] == '\0', "client %d: %s", i, c[i].why);
		answered += c[i].answered;
		harness_tls_close(c[i].t);
	}
	ck_assert_int_eq(answered, TOTAL);
	slow = harness_trace_frames(fx.trace[0], 0, NULL, 0);
	fast = harness_trace_frames(fx.trace[1], 0, NULL, 0);
	fprintf(stderr, "least outstanding: %d requests in %lld ms; slow server %d, fast server %d\n", TOTAL,
		(long long)elapsed, slow, fast);
	ck_assert_msg(slow + fast == TOTAL, "the backends saw %d + %d frames, sent %d", slow, fast, TOTAL);
	ck_assert_msg(fast * 4 >= TOTAL * 3, "the fast server took only %d of %d requests (slow: %d, %lld ms)",
		      fast, TOTAL, slow, (long long)elapsed);
	ck_assert_msg(slow <= CONNS * (elapsed / DELAY_MS + 1),
		      "the slow server took %d requests in %lld ms: more than one at a time per connection",
		      slow, (long long)elapsed);
	fixture_down(&fx);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

/* Each malformed prefix: earlier requests are answered, then ERR PROTOCOL,
 * then QUIT, close_notify and close; other clients are unaffected. */
static const struct {
	uint16_t header_len;
	uint32_t total_len;
} bad_prefixes[] = {
	{ 0, 5 },                  /* shorter than the prefix */
	{ 10, 12 },                /* header larger than the frame */
	{ 0, 1024 * 1024 + 1 },    /* one byte over max_frame_size */
	{ 0, 0xFFFFFFFFu },        /* 4 GiB: nothing may be allocated */
};

START_TEST(test_malformed_frames)
{
	struct fixture fx;
	struct fixture_opts o = { 0 };
	struct harness_tls *bystander, *t;
	uint8_t prefix[6];

	fixture_up(&fx, &o);
	bystander = fixture_connect(&fx);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "before", 6), 0);
	harness_frame_prefix(prefix, bad_prefixes[_i].header_len, bad_prefixes[_i].total_len);
	ck_assert_int_eq(harness_tls_send(t, prefix, sizeof(prefix)), 0);
	fixture_expect_frame(t, "before", 6);
	fixture_expect_err(t, "PROTOCOL");
	fixture_expect_quit(t);
	fixture_expect_closed_with_notify(t);
	harness_tls_close(t);

	ck_assert_int_eq(harness_send_frame(bystander, NULL, 0, "still fine", 10), 0);
	fixture_expect_frame(bystander, "still fine", 10);
	harness_tls_close(bystander);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "protocol error", T_IO_MS), 0);
	fixture_down(&fx);
}
END_TEST

START_TEST(test_garbage_instead_of_client_hello)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: sluice\r\n\r\n";
	struct fixture fx;
	struct fixture_opts o = { 0 };
	struct harness_tls *plain, *t;
	char buf[256];

	fixture_up(&fx, &o);
	plain = harness_plain_connect(fx.port, T_IO_MS);
	ck_assert_ptr_nonnull(plain);
	ck_assert_int_eq(harness_tls_send(plain, junk, sizeof(junk) - 1), 0);
	/* sluice may answer with a TLS alert; then it must close. */
	while (harness_tls_recv_raw(plain, buf, sizeof(buf), T_IO_MS) > 0)
		;
	ck_assert_int_eq(harness_tls_wait_closed(plain, T_IO_MS), 0);
	harness_tls_close(plain);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "TLS handshake failed", T_IO_MS), 0);

	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "after junk", 10), 0);
	fixture_expect_frame(t, "after junk", 10);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- QUIT --------------------------------------------------------------- */

START_TEST(test_client_quit)
{
	struct fixture fx;
	struct fixture_opts o = { .echo_args = "-d 50" };
	struct harness_tls *t;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "one", 3), 0);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "two", 3), 0);
	ck_assert_int_eq(harness_send_frame(t, "QUIT", 4, NULL, 0), 0);
	/* Sent after QUIT: never answered. */
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "ignored", 7), 0);
	fixture_expect_frame(t, "one", 3);
	fixture_expect_frame(t, "two", 3);
	fixture_expect_quit(t);
	fixture_expect_closed_with_notify(t);
	harness_tls_close(t);
	ck_assert_int_eq(harness_trace_conn_of(fx.trace[0], "ignored", 7), -1);
	fixture_down(&fx);
}
END_TEST

/* ---- backend faults ------------------------------------------------------ */

/* No backend: ERR UNAVAILABLE (never a hang); the backend comes up: the
 * same client is served again. */
START_TEST(test_backend_down_then_recovers)
{
	struct fixture fx;
	struct fixture_opts o = { .start_echos_later = 1 };
	struct harness_tls *t;
	struct harness_frame f;
	int64_t deadline;
	int ok = 0;

	fixture_up(&fx, &o);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "is down", T_IO_MS), 0);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "anyone?", 7), 0);
	fixture_expect_err(t, "UNAVAILABLE");

	fixture_start_echo(&fx, 0, NULL);
	deadline = fixture_mono_ms() + 15000;
	while (!ok && fixture_mono_ms() < deadline) {
		ck_assert_int_eq(harness_send_frame(t, NULL, 0, "back?", 5), 0);
		ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
		ok = !harness_frame_is_err(&f, NULL);
		if (!ok)
			ck_assert_msg(harness_frame_is_err(&f, "UNAVAILABLE") || harness_frame_is_err(&f, "BUSY"),
				      "unexpected answer '%s'", f.payload);
		else
			ck_assert_str_eq((char *)f.payload, "back?");
		harness_frame_free(&f);
		if (!ok)
			usleep(50 * 1000);   /* pacing a retry loop, not waiting for a condition */
	}
	ck_assert_msg(ok, "sluice did not recover within 15 s of the backend starting");
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "is up again", T_IO_MS), 0);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* The backend closes its connection on the third request: requests written
 * by then get exactly one ERR UNAVAILABLE each (never a replay), the others
 * are answered normally, and the client stays usable on a new connection. */
START_TEST(test_backend_dies_with_requests_written)
{
	struct fixture fx;
	struct fixture_opts o = { .echo_args = "--close-after 3", .connections = 1 };
	struct harness_tls *t;
	struct harness_frame f;
	char payload[16];
	int answered = 0, unavailable = 0;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	for (int i = 0; i < 5; i++) {
		int n = snprintf(payload, sizeof(payload), "r%d", i);
		ck_assert_int_eq(harness_send_frame(t, NULL, 0, payload, (uint32_t)n), 0);
	}
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
		if (harness_frame_is_err(&f, "UNAVAILABLE")) {
			unavailable++;
		} else {
			/* Answers keep their order and their own payload. */
			snprintf(payload, sizeof(payload), "r%d", i);
			ck_assert_str_eq((char *)f.payload, payload);
			answered++;
		}
		harness_frame_free(&f);
	}
	/* r0 and r1 answered; r2 was written when the connection closed; r3
	 * and r4 too, unless they arrived after the failure and went to the
	 * new connection (no more than two frames on it: it closes on 3). */
	ck_assert_int_ge(answered, 2);
	ck_assert_int_ge(unavailable, 1);
	ck_assert_int_eq(answered + unavailable, 5);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "answered ERR UNAVAILABLE", T_IO_MS), 0);
	/* No request reached the backend twice. */
	for (int i = 0; i < 5; i++) {
		struct harness_trace_frame frames[16];
		int n = harness_trace_frames(fx.trace[0], 0, frames, 16), seen = 0;

		snprintf(payload, sizeof(payload), "r%d", i);
		for (int j = 0; j < n && j < 16; j++)
			seen += frames[j].prefix_len == strlen(payload) &&
				memcmp(frames[j].prefix, payload, frames[j].prefix_len) == 0;
		ck_assert_int_le(seen, 1);
	}
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* A backend answering with a malformed frame loses that connection only. */
START_TEST(test_backend_malformed_response)
{
	struct fixture fx;
	struct fixture_opts o = { .echo_args = "--garbage-after 2", .connections = 1 };
	struct harness_tls *t;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "ok", 2), 0);
	fixture_expect_frame(t, "ok", 2);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "bad", 3), 0);
	fixture_expect_err(t, "UNAVAILABLE");
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "malformed frame from the backend", T_IO_MS), 0);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- command line --------------------------------------------------------- */

static int
run_sluice(const char *dir, char *const extra[], char *out, size_t outlen)
{
	char log[PATH_MAX + 32];
	const char *bin = getenv("SLUICE_BIN");
	char *argv[8] = { (char *)(bin ? bin : "./proxy/sluice") };
	struct harness_proc p;
	char *text;
	int status = -1;

	for (int i = 0; extra[i] != NULL && i < 6; i++)
		argv[i + 1] = extra[i];
	snprintf(log, sizeof(log), "%s/cli-%d.log", dir, (int)fixture_mono_ms());
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(harness_spawn(&p, log, argv), 0);
	ck_assert_int_eq(harness_wait_exit(&p, T_EXIT_MS, &status), 0);
	text = harness_read_file(log, NULL);
	ck_assert_ptr_nonnull(text);
	snprintf(out, outlen, "%s", text);
	free(text);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_command_line)
{
	char dir[PATH_MAX], conf[PATH_MAX + 32], bad[PATH_MAX + 32], out[4096];
	char *test_ok[] = { "-t", "-c", conf, NULL };
	char *test_bad[] = { "-t", "-c", bad, NULL };
	char *version[] = { "-V", NULL };
	char *help[] = { "-h", NULL };
	char *usage[] = { "--bogus", NULL };

	ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
	ck_assert_int_eq(testcerts_write(dir, "server", "localhost", 1), 0);
	snprintf(conf, sizeof(conf), "%s/ok.yaml", dir);
	snprintf(bad, sizeof(bad), "%s/bad.yaml", dir);
	ck_assert_int_eq(harness_write_file(conf,
		"listen:\n  - address: 127.0.0.1:1\n    backend: b\n    tls:\n      certificates:\n"
		"        - cert: server.crt\n          key: server.key\n"
		"backends:\n  b:\n    servers:\n      - address: 127.0.0.1:2\n"), 0);
	ck_assert_int_eq(harness_write_file(bad,
		"listen:\n  - address: 127.0.0.1:1\n    backend: nope\n    tls:\n      certificates:\n"
		"        - cert: server.crt\n          key: server.key\n"
		"backends:\n  b:\n    servers:\n      - address: 127.0.0.1:2\n    conections: 3\n"), 0);

	ck_assert_int_eq(run_sluice(dir, test_ok, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "configuration OK"));
	ck_assert_int_eq(run_sluice(dir, test_bad, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "bad.yaml:3:") != NULL && strstr(out, "nope") != NULL,
		      "undefined backend not reported with its location: %s", out);
	ck_assert_msg(strstr(out, "bad.yaml:12:") != NULL && strstr(out, "conections") != NULL,
		      "unknown key not reported with its location: %s", out);
	ck_assert_int_eq(run_sluice(dir, version, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "sluice "));
	ck_assert_int_eq(run_sluice(dir, help, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "usage:"));
	ck_assert_int_eq(run_sluice(dir, usage, out, sizeof(out)), 2);
	harness_rmdir(dir);
}
END_TEST

/* The signals that stop sluice gracefully (SPEC §6), one per loop run. */
static const struct {
	int sig;
	const char *name;
} stop_signals[] = {
	{ SIGTERM, "SIGTERM" },
	{ SIGINT, "SIGINT" },
	{ SIGQUIT, "SIGQUIT" },
};

/* SIGTERM, SIGINT or SIGQUIT with a request in flight: it is answered,
 * then QUIT; the client answers QUIT and is closed; sluice then exits 0 on
 * its own — no second signal, no grace period running out. */
START_TEST(test_stop_signal_drains)
{
	struct fixture fx;
	struct fixture_opts o = { .echo_args = "-d 300", .grace = "5s" };
	struct harness_tls *t;
	char line[64];

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "in flight", 9), 0);
	/* Wait until the request reached the backend, then stop sluice. */
	{
		int64_t deadline = fixture_mono_ms() + T_IO_MS;

		while (harness_trace_conn_of(fx.trace[0], "in flight", 9) < 0 && fixture_mono_ms() < deadline)
			usleep(5000);
		ck_assert_int_gt(harness_trace_conn_of(fx.trace[0], "in flight", 9), 0);
	}
	ck_assert_int_eq(harness_signal(&fx.sluice, stop_signals[_i].sig), 0);
	{
		struct harness_frame f;
		int got_quit = 0, got_resp = 0;

		/* QUIT may come before or after the response (both are allowed). */
		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
			if (harness_frame_is_quit(&f))
				got_quit++;
			else if (f.payload_len == 9 && memcmp(f.payload, "in flight", 9) == 0)
				got_resp++;
			harness_frame_free(&f);
		}
		ck_assert_int_eq(got_quit, 1);
		ck_assert_int_eq(got_resp, 1);
	}
	ck_assert_int_eq(harness_send_frame(t, "QUIT", 4, NULL, 0), 0);
	fixture_expect_closed_with_notify(t);
	harness_tls_close(t);
	/* Exit status 0 and a clean log, without fixture_down's SIGTERM. */
	fixture_wait_exit(&fx);
	snprintf(line, sizeof(line), "%s received: stopping gracefully", stop_signals[_i].name);
	ck_assert_msg(harness_count_log(fx.sluice.log, line) == 1, "no '%s' in the log", line);
	ck_assert_int_eq(harness_count_log(fx.sluice.log, "received again"), 0);
	ck_assert_int_eq(harness_count_log(fx.sluice.log, "grace period over"), 0);
	ck_assert_int_eq(harness_wait_count(fx.sluice.log, "sluice stopped", 1, &fx.sluice, T_IO_MS), 1);
	fixture_cleanup(&fx);
}
END_TEST

/* Regression: after logging "sluice stopped", sluice freed its signal
 * events, which gave SIGTERM, SIGINT, SIGQUIT and SIGHUP back their
 * default action; one arriving in that moment killed it (exit status 143
 * instead of 0: the drain test's teardown hit it once in five runs).
 * Here SIGHUPs (ignored while draining) keep coming from the SIGTERM on
 * until sluice is gone: it must still exit 0. Repeated, as the window is
 * short (the unfixed sluice failed about one round in four). */
START_TEST(test_late_signal_during_exit)
{
	for (int round = 0; round < 20; round++) {
		struct fixture fx;
		struct fixture_opts o = { .untraced = 1 };
		int status = -1, n_hups = 0;
		int64_t deadline;

		fixture_up(&fx, &o);
		ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
		deadline = fixture_mono_ms() + T_IO_MS;
		while (harness_wait_exit(&fx.sluice, 0, &status) < 0) {
			ck_assert_msg(fixture_mono_ms() < deadline, "sluice did not exit after SIGTERM");
			if (fx.sluice.pid > 0 && kill(fx.sluice.pid, SIGHUP) == 0)
				n_hups++;
		}
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "round %d: sluice exit status 0x%x after %d SIGHUPs during its exit",
			      round, status, n_hups);
		fixture_cleanup(&fx);
	}
}
END_TEST

/* workers: 2 — two threads, each with its own listening socket
 * (SO_REUSEPORT) and its own pool: the backend sees workers × connections;
 * every client is served; a reload reaches both workers (the pool of each
 * grows) and is reported once; SIGTERM drains both and sluice exits 0. */
START_TEST(test_two_workers)
{
	struct fixture fx;
	struct fixture_opts o = { .workers = "2", .connections = 2 };
	struct harness_tls *t[20];
	char payload[32];
	int64_t deadline;

	fixture_up(&fx, &o);
	deadline = fixture_mono_ms() + T_IO_MS;
	while (harness_trace_connections(fx.trace[0]) < 4 && fixture_mono_ms() < deadline)
		usleep(2000);
	ck_assert_int_eq(harness_trace_connections(fx.trace[0]), 4);
	for (int c = 0; c < 20; c++) {
		t[c] = fixture_connect(&fx);
		snprintf(payload, sizeof(payload), "client %d", c);
		fixture_round_trip(t[c], payload);
	}
	o.connections = 3;
	fixture_write_config(&fx, &o);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "configuration reloaded", T_IO_MS), 0);
	deadline = fixture_mono_ms() + T_IO_MS;
	while (harness_trace_connections(fx.trace[0]) < 6 && fixture_mono_ms() < deadline)
		usleep(2000);
	ck_assert_int_eq(harness_trace_connections(fx.trace[0]), 6);
	ck_assert_int_eq(harness_wait_count(fx.sluice.log, "configuration reloaded", 1, &fx.sluice, T_IO_MS), 1);
	for (int c = 0; c < 20; c++) {
		snprintf(payload, sizeof(payload), "client %d again", c);
		fixture_round_trip(t[c], payload);
		harness_tls_close(t[c]);
	}
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	fixture_wait_exit(&fx);
	ck_assert_int_eq(harness_wait_count(fx.sluice.log, "worker 0: draining", 1, &fx.sluice, T_IO_MS), 1);
	ck_assert_int_eq(harness_wait_count(fx.sluice.log, "worker 1: draining", 1, &fx.sluice, T_IO_MS), 1);
	fixture_cleanup(&fx);
}
END_TEST

/* workers: 2, the reload and shutdown paths with clients on both workers:
 * a reload adds a listener, and both workers serve it (each has its own
 * SO_REUSEPORT socket for it, bound by the main thread); 20 clients of
 * the new listener each have a request in flight at the backend when
 * SIGTERM comes: each gets its answer and QUIT, answers QUIT and sees
 * close_notify; both workers log their share of the drain, and sluice
 * exits 0 by itself. */
#define TWO_WORKERS_CLIENTS 20

static unsigned
two_workers_drained(const char *log, unsigned worker)
{
	char needle[48];
	char *text = harness_read_file(log, NULL), *at;
	unsigned n = 0;

	ck_assert_ptr_nonnull(text);
	snprintf(needle, sizeof(needle), "worker %u: draining ", worker);
	at = strstr(text, needle);
	ck_assert_msg(at != NULL, "no \"%s\" in %s", needle, log);
	ck_assert_int_eq(sscanf(at + strlen(needle), "%u", &n), 1);
	free(text);
	return n;
}

START_TEST(test_two_workers_reload_and_drain)
{
	struct fixture fx;
	struct fixture_opts o = { .workers = "2", .echo_args = "-d 400", .second_port = 1 };
	struct harness_tls *t[TWO_WORKERS_CLIENTS];
	char payload[32];
	int64_t deadline;
	unsigned d0, d1;

	fixture_up(&fx, &o);
	ck_assert_ptr_null(harness_tls_connect(fx.port2, "localhost", 500));
	o.listeners = 3;
	fixture_write_config(&fx, &o);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "configuration reloaded", T_IO_MS), 0);
	for (int c = 0; c < TWO_WORKERS_CLIENTS; c++) {
		t[c] = fixture_connect_port(fx.port2);
		snprintf(payload, sizeof(payload), "in flight %02d", c);
		ck_assert_int_eq(harness_send_frame(t[c], NULL, 0, payload, strlen(payload)), 0);
	}
	/* Every request reached the backend, whose answers take 400 ms. */
	deadline = fixture_mono_ms() + T_IO_MS;
	for (int c = 0; c < TWO_WORKERS_CLIENTS; c++) {
		snprintf(payload, sizeof(payload), "in flight %02d", c);
		while (harness_trace_conn_of(fx.trace[0], payload, strlen(payload)) < 0 &&
		       fixture_mono_ms() < deadline)
			usleep(5000);   /* polling period */
		ck_assert_int_ge(harness_trace_conn_of(fx.trace[0], payload, strlen(payload)), 0);
	}
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	for (int c = 0; c < TWO_WORKERS_CLIENTS; c++) {
		struct harness_frame f;
		int got_quit = 0, got_resp = 0;

		snprintf(payload, sizeof(payload), "in flight %02d", c);
		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(harness_recv_frame(t[c], &f, T_IO_MS), 0);
			if (harness_frame_is_quit(&f))
				got_quit++;
			else if (f.payload_len == strlen(payload) && memcmp(f.payload, payload, f.payload_len) == 0)
				got_resp++;
			harness_frame_free(&f);
		}
		ck_assert_msg(got_quit == 1 && got_resp == 1, "client %d: %d answers, %d QUIT", c,
			      got_resp, got_quit);
		ck_assert_int_eq(harness_send_frame(t[c], "QUIT", 4, NULL, 0), 0);
		fixture_expect_closed_with_notify(t[c]);
		harness_tls_close(t[c]);
	}
	fixture_wait_exit(&fx);
	d0 = two_workers_drained(fx.sluice.log, 0);
	d1 = two_workers_drained(fx.sluice.log, 1);
	ck_assert_msg(d0 > 0 && d1 > 0 && d0 + d1 == TWO_WORKERS_CLIENTS,
		      "workers drained %u and %u of the %d clients of the new listener", d0, d1,
		      TWO_WORKERS_CLIENTS);
	fixture_cleanup(&fx);
}
END_TEST

/* A "Key: a b c d" line of /proc/PID/status or /proc/PID/limits. */
static char *
proc_line(pid_t pid, const char *file, const char *key, char *out, size_t len)
{
	char path[64];
	char *text, *at, *end;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	text = harness_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	at = strstr(text, key);
	ck_assert_msg(at != NULL, "%s has no '%s'", path, key);
	end = strchr(at, '\n');
	if (end != NULL)
		*end = '\0';
	snprintf(out, len, "%s", at);
	free(text);
	return out;
}

/* user/group: started as root, sluice binds and reads its keys, then runs
 * as nobody/nogroup for good, with core dumps off. A reload then reads the
 * files as that user: an unreadable key is a rejected reload (the old
 * configuration stays), a readable one applies. Not root: asking for
 * another user is refused at start. */
START_TEST(test_privilege_drop)
{
	struct fixture fx;
	struct fixture_opts o = { .top = "user: nobody\ngroup: nogroup\n", .level = "info" };
	char line[256], path[PATH_MAX + 32];

	if (geteuid() != 0) {
		char dir[PATH_MAX], conf[PATH_MAX + 32], out[4096];
		char *args[] = { "-c", conf, NULL };

		ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
		ck_assert_int_eq(testcerts_write(dir, "server", "localhost", 1), 0);
		snprintf(conf, sizeof(conf), "%s/s.yaml", dir);
		ck_assert_int_eq(harness_write_file(conf,
			"user: nobody\nlisten:\n  - address: 127.0.0.1:1\n    backend: b\n    tls:\n"
			"      certificates:\n        - cert: server.crt\n          key: server.key\n"
			"backends:\n  b:\n    servers:\n      - address: 127.0.0.1:2\n"), 0);
		ck_assert_int_eq(run_sluice(dir, args, out, sizeof(out)), 1);
		ck_assert_ptr_nonnull(strstr(out, "not running as root"));
		harness_rmdir(dir);
		return;
	}
	fixture_up(&fx, &o);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "running as uid 65534", T_IO_MS), 0);
	proc_line(fx.sluice.pid, "status", "Uid:", line, sizeof(line));
	ck_assert_msg(strcmp(line, "Uid:\t65534\t65534\t65534\t65534") == 0, "%s", line);
	proc_line(fx.sluice.pid, "limits", "Max core file size", line, sizeof(line));
	ck_assert_msg(strstr(line, " 0 ") != NULL, "%s", line);
	{
		struct harness_tls *t = fixture_connect(&fx);

		fixture_round_trip(t, "served as nobody");
		harness_tls_close(t);
	}
	/* The key is root's (0600): the reload cannot read it. */
	ck_assert_int_eq(chmod(fx.dir, 0755), 0);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "reload rejected", T_IO_MS), 0);
	ck_assert_int_ge(harness_wait_count(fx.sluice.log, "cannot load private key", 1, &fx.sluice, T_IO_MS), 1);
	snprintf(path, sizeof(path), "%s/server.key", fx.dir);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "configuration reloaded", T_IO_MS), 0);
	{
		struct harness_tls *t = fixture_connect(&fx);

		fixture_round_trip(t, "after the reload");
		harness_tls_close(t);
	}
	fixture_down(&fx);
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("integration");
	TCase *exit_tc = tcase_create("exit");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_echo_sizes);
	tcase_add_test(tc, test_many_clients_pipelined_in_order);
	tcase_add_test(tc, test_burst_stays_on_one_connection);
	tcase_add_test(tc, test_pool_bounds_backend_connections);
	tcase_add_test(tc, test_least_outstanding_prefers_fast_server);
	tcase_add_loop_test(tc, test_malformed_frames, 0,
			    (int)(sizeof(bad_prefixes) / sizeof(bad_prefixes[0])));
	tcase_add_test(tc, test_garbage_instead_of_client_hello);
	tcase_add_test(tc, test_client_quit);
	tcase_add_test(tc, test_backend_down_then_recovers);
	tcase_add_test(tc, test_backend_dies_with_requests_written);
	tcase_add_test(tc, test_backend_malformed_response);
	tcase_add_test(tc, test_command_line);
	tcase_add_loop_test(tc, test_stop_signal_drains, 0,
			    (int)(sizeof(stop_signals) / sizeof(stop_signals[0])));
	tcase_add_test(tc, test_two_workers);
	tcase_add_test(tc, test_two_workers_reload_and_drain);
	tcase_add_test(tc, test_privilege_drop);
	suite_add_tcase(s, tc);

	tcase_set_timeout(exit_tc, 120);
	tcase_add_test(exit_tc, test_late_signal_during_exit);
	suite_add_tcase(s, exit_tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(proxy_suite());
}
