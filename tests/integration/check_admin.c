/*
 * check_admin — integration tests of the admin endpoint through the real
 * binary: /healthz while serving and while draining, and /metrics counters
 * that move by exactly what the tests send (frames, bytes, connections,
 * refusals, handshake and protocol errors, backend failures, reloads).
 * Every test stops sluice with SIGTERM, expects exit 0 and a clean log.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sluice/admin.h>

#include "../fixture.h"
#include "../harness.h"

/* ---- scraping --------------------------------------------------------------- */

static void
backend_series(const struct fixture *fx, const char *name, const char *state, char *out, size_t len)
{
	if (state != NULL)
		snprintf(out, len, "%s{backend=\"app\",server=\"127.0.0.1:%u\",state=\"%s\"}", name,
			 fx->echo_port[0], state);
	else
		snprintf(out, len, "%s{backend=\"app\",server=\"127.0.0.1:%u\"}", name, fx->echo_port[0]);
}

static void
wait_backend_connected(const struct fixture *fx, unsigned want)
{
	char series[256];

	backend_series(fx, "sluice_backend_connections", "connected", series, sizeof(series));
	fixture_wait_metric(fx, series, want, FIXTURE_METRIC_EQUAL);
}

/* ---- /healthz ------------------------------------------------------------------ */

/* 200 while serving; after SIGTERM with a client still connected (sluice
 * waits for its QUIT), 503 — and /metrics still answers — until the
 * client quits and sluice exits 0 without waiting for the grace period. */
START_TEST(test_healthz_serving_then_draining)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct fixture_http_response r;
	struct harness_tls *t;
	struct harness_frame f;

	fixture_up(&fx, &o);
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "serving\n");
	fixture_http_free(&r);

	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "hello", 5), 0);
	ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
	ck_assert_str_eq((char *)f.payload, "hello");
	harness_frame_free(&f);
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);

	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	/* The QUIT comes after sluice marked itself draining. */
	ck_assert_msg(harness_recv_frame(t, &f, T_IO_MS) == 0, "recv: %s", harness_last_error());
	ck_assert_msg(harness_frame_is_quit(&f), "expected QUIT, got header '%s'", f.header);
	harness_frame_free(&f);
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "draining\n");
	fixture_http_free(&r);
	ck_assert(fixture_metric(&fx, "sluice_connections_active") == 1);
	ck_assert(harness_alive(&fx.sluice));

	ck_assert_int_eq(harness_send_frame(t, "QUIT", 4, NULL, 0), 0);
	ck_assert_int_eq(harness_tls_wait_closed(t, T_IO_MS), 0);
	harness_tls_close(t);
	fixture_wait_exit(&fx);
	ck_assert_int_eq(harness_count_log(fx.sluice.log, "grace period over"), 0);
	fixture_cleanup(&fx);
}
END_TEST

/* ---- HTTP errors ------------------------------------------------------------- */

START_TEST(test_http_errors)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct fixture_http_response r;

	fixture_up(&fx, &o);
	fixture_http_request(fx.admin_port, "GET", "/nope", &r);
	ck_assert_int_eq(r.status, 404);
	fixture_http_free(&r);
	fixture_http_request(fx.admin_port, "GET", "/metricsx", &r);
	ck_assert_int_eq(r.status, 404);
	fixture_http_free(&r);
	fixture_http_request(fx.admin_port, "POST", "/metrics", &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_msg(strstr(r.head, "\r\nAllow: GET, HEAD") != NULL, "405 without Allow: %s", r.head);
	fixture_http_free(&r);
	fixture_http_request(fx.admin_port, "PUT", "/healthz", &r);
	ck_assert_int_eq(r.status, 405);
	fixture_http_free(&r);
	fixture_http_request(fx.admin_port, "OPTIONS", "/metrics", &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_msg(strstr(r.head, "\r\nAllow: GET, HEAD") != NULL, "405 without Allow: %s", r.head);
	fixture_http_free(&r);
	/* A POST with a body is refused the same way. */
	fixture_http_raw(fx.admin_port, "POST /healthz HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", &r);
	ck_assert_int_eq(r.status, 405);
	fixture_http_free(&r);
	/* A query string does not change the path. */
	fixture_http_request(fx.admin_port, "GET", "/metrics?name[]=x", &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);
	fixture_http_request(fx.admin_port, "HEAD", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "");
	fixture_http_free(&r);
	/* Garbage instead of HTTP: an error answer or a close, and the
	 * endpoint goes on serving. */
	{
		int fd = harness_tcp_connect(fx.admin_port);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(send(fd, "\x16\x03\x01\x00\x05hello\r\n\r\n", 14, MSG_NOSIGNAL), 14);
		close(fd);
	}
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);
	fixture_down(&fx);
}
END_TEST

/* Every family SPEC §7 names is declared with its type, and every series
 * of the labelled ones is there from the start: each state of
 * sluice_backend_connections (the pool's connections, all connected once it
 * is up, counted in exactly one state each), both results of
 * sluice_reloads_total, every kind of sluice_timeouts_total and every code
 * of sluice_errors_total, all at zero. */
START_TEST(test_metrics_families_declared)
{
	static const char *const states[] = { "connecting", "connected", "retiring", "quit_sent",
					      "backoff", "closed" };
	static const char *const zero_series[] = {
		"sluice_reloads_total{result=\"success\"}",
		"sluice_reloads_total{result=\"failure\"}",
		"sluice_timeouts_total{kind=\"handshake\"}",
		"sluice_timeouts_total{kind=\"idle\"}",
		"sluice_timeouts_total{kind=\"connect\"}",
		"sluice_timeouts_total{kind=\"queue\"}",
		"sluice_timeouts_total{kind=\"request\"}",
		"sluice_errors_total{code=\"BUSY\"}",
		"sluice_errors_total{code=\"UNAVAILABLE\"}",
		"sluice_errors_total{code=\"TIMEOUT\"}",
	};
	static const char *const types[] = {
		"# TYPE sluice_connections_active gauge",
		"# TYPE sluice_connections_total counter",
		"# TYPE sluice_connections_refused_total counter",
		"# TYPE sluice_tls_handshake_failures_total counter",
		"# TYPE sluice_frames_received_total counter",
		"# TYPE sluice_frames_sent_total counter",
		"# TYPE sluice_bytes_received_total counter",
		"# TYPE sluice_bytes_sent_total counter",
		"# TYPE sluice_protocol_errors_total counter",
		"# TYPE sluice_requests_pending gauge",
		"# TYPE sluice_backend_connections gauge",
		"# TYPE sluice_backend_errors_total counter",
		"# TYPE sluice_request_duration_seconds histogram",
		"# TYPE sluice_reloads_total counter",
		"# TYPE sluice_errors_total counter",
		"# TYPE sluice_timeouts_total counter",
		"# TYPE sluice_workers gauge",
		"# TYPE sluice_build_info gauge",
	};
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	char *text, series[256];
	double conns = 0;

	fixture_up(&fx, &o);
	wait_backend_connected(&fx, 2);
	text = fixture_scrape(&fx);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		ck_assert_msg(strstr(text, types[i]) != NULL, "missing '%s'", types[i]);
	ck_assert(fixture_series_value(text, "sluice_workers") == 1);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		double v;

		backend_series(&fx, "sluice_backend_connections", states[i], series, sizeof(series));
		v = fixture_series_value(text, series);
		ck_assert_msg(v >= 0, "missing %s", series);
		ck_assert_msg(v == (strcmp(states[i], "connected") == 0 ? 2 : 0), "%s %.0f", series, v);
		conns += v;
	}
	ck_assert_msg(conns == 2, "the pool's 2 connections are counted %.0f times", conns);
	backend_series(&fx, "sluice_backend_errors_total", NULL, series, sizeof(series));
	ck_assert_msg(fixture_series_value(text, series) == 0, "missing or not 0: %s", series);
	for (size_t i = 0; i < sizeof(zero_series) / sizeof(zero_series[0]); i++)
		ck_assert_msg(fixture_series_value(text, zero_series[i]) == 0, "missing or not 0: %s",
			      zero_series[i]);
	free(text);
	fixture_down(&fx);
}
END_TEST

/* ---- counters move by exactly what was sent -------------------------------- */

enum { TRAFFIC_CONNS = 3, TRAFFIC_REQS = 37, TRAFFIC_POOL = 2 };

/* Request i: a 3-byte header on every fourth, payloads of varied sizes. */
static uint16_t
req_hlen(int i)
{
	return i % 4 == 0 ? 3 : 0;
}

static uint32_t
req_plen(int i)
{
	return (uint32_t)(1 + (i * 977) % 3000);
}

struct counters {
	double frames_rx, frames_tx, bytes_rx, bytes_tx, conns, active, count, inf, sum, pending;
};

static void
read_counters(const struct fixture *fx, struct counters *c)
{
	char *text = fixture_scrape(fx);

	c->frames_rx = fixture_series_value(text, "sluice_frames_received_total");
	c->frames_tx = fixture_series_value(text, "sluice_frames_sent_total");
	c->bytes_rx = fixture_series_value(text, "sluice_bytes_received_total");
	c->bytes_tx = fixture_series_value(text, "sluice_bytes_sent_total");
	c->conns = fixture_series_value(text, "sluice_connections_total");
	c->active = fixture_series_value(text, "sluice_connections_active");
	c->count = fixture_series_value(text, "sluice_request_duration_seconds_count");
	c->inf = fixture_series_value(text, "sluice_request_duration_seconds_bucket{le=\"+Inf\"}");
	c->sum = fixture_series_value(text, "sluice_request_duration_seconds_sum");
	c->pending = fixture_series_value(text, "sluice_requests_pending");
	free(text);
	ck_assert(c->frames_rx >= 0 && c->frames_tx >= 0 && c->bytes_rx >= 0 && c->bytes_tx >= 0 &&
		  c->conns >= 0 && c->active >= 0 && c->count >= 0 && c->inf >= 0 && c->sum >= 0 &&
		  c->pending >= 0);
}

/* 37 requests over 3 connections, pipelined, each echoed byte for byte. */
static double
send_traffic(struct harness_tls *t[TRAFFIC_CONNS])
{
	double bytes = 0;
	char *payload = malloc(4096);

	ck_assert_ptr_nonnull(payload);
	for (int i = 0; i < TRAFFIC_REQS; i++) {
		memset(payload, 'a' + i % 26, req_plen(i));
		ck_assert_int_eq(harness_send_frame(t[i % TRAFFIC_CONNS], "hdr", req_hlen(i), payload,
						    req_plen(i)), 0);
		bytes += 6 + req_hlen(i) + req_plen(i);
	}
	for (int i = 0; i < TRAFFIC_REQS; i++) {
		struct harness_frame f;

		ck_assert_msg(harness_recv_frame(t[i % TRAFFIC_CONNS], &f, T_IO_MS) == 0, "recv %d: %s", i,
			      harness_last_error());
		ck_assert_msg(!harness_frame_is_err(&f, NULL), "request %d answered ERR %s", i, f.payload);
		ck_assert_uint_eq(f.header_len, req_hlen(i));
		ck_assert_uint_eq(f.payload_len, req_plen(i));
		ck_assert_int_eq(f.payload[0], 'a' + i % 26);
		harness_frame_free(&f);
	}
	free(payload);
	return bytes;
}

START_TEST(test_metrics_traffic_deltas)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s",
				  .connections = TRAFFIC_POOL };
	struct harness_tls *t[TRAFFIC_CONNS];
	struct counters a, b;
	char series[256];
	double bytes;

	fixture_up(&fx, &o);
	wait_backend_connected(&fx, TRAFFIC_POOL);
	read_counters(&fx, &a);
	ck_assert(a.active == 0);
	for (int c = 0; c < TRAFFIC_CONNS; c++)
		t[c] = fixture_connect(&fx);
	bytes = send_traffic(t);
	/* The pending gauge drops just after the response is queued. */
	fixture_wait_metric(&fx, "sluice_requests_pending", 0, FIXTURE_METRIC_EQUAL);
	read_counters(&fx, &b);

	ck_assert_msg(b.frames_rx - a.frames_rx == TRAFFIC_REQS, "frames received +%.0f",
		      b.frames_rx - a.frames_rx);
	ck_assert_msg(b.frames_tx - a.frames_tx == TRAFFIC_REQS, "frames sent +%.0f", b.frames_tx - a.frames_tx);
	ck_assert_msg(b.bytes_rx - a.bytes_rx == bytes, "bytes received +%.0f, sent %.0f",
		      b.bytes_rx - a.bytes_rx, bytes);
	ck_assert_msg(b.bytes_tx - a.bytes_tx == bytes, "bytes sent +%.0f, expected %.0f",
		      b.bytes_tx - a.bytes_tx, bytes);
	ck_assert_msg(b.conns - a.conns == TRAFFIC_CONNS, "connections +%.0f", b.conns - a.conns);
	ck_assert_msg(b.active == a.active + TRAFFIC_CONNS, "active %.0f", b.active);
	ck_assert_msg(b.count - a.count == TRAFFIC_REQS, "histogram count +%.0f", b.count - a.count);
	ck_assert(b.inf - a.inf == TRAFFIC_REQS);
	ck_assert(b.sum > a.sum);
	backend_series(&fx, "sluice_backend_connections", "connected", series, sizeof(series));
	ck_assert(fixture_metric(&fx, series) == TRAFFIC_POOL);
	backend_series(&fx, "sluice_backend_errors_total", NULL, series, sizeof(series));
	ck_assert(fixture_metric(&fx, series) == 0);

	for (int c = 0; c < TRAFFIC_CONNS; c++)
		harness_tls_close(t[c]);
	fixture_wait_metric(&fx, "sluice_connections_active", a.active, FIXTURE_METRIC_EQUAL);
	ck_assert(fixture_metric(&fx, "sluice_connections_total") == b.conns);
	fixture_down(&fx);
}
END_TEST

/* A prefix with total_len 3: ERR PROTOCOL, QUIT, close; one protocol error,
 * no request counted, the ERR counted as a frame sent. */
START_TEST(test_metrics_protocol_error)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct harness_tls *t;
	struct harness_frame f;
	uint8_t prefix[6];
	double errors, rx, tx;

	fixture_up(&fx, &o);
	errors = fixture_metric(&fx, "sluice_protocol_errors_total");
	rx = fixture_metric(&fx, "sluice_frames_received_total");
	tx = fixture_metric(&fx, "sluice_frames_sent_total");
	t = fixture_connect(&fx);
	harness_frame_prefix(prefix, 0, 3);
	ck_assert_int_eq(harness_tls_send(t, prefix, sizeof(prefix)), 0);
	ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
	ck_assert(harness_frame_is_err(&f, "PROTOCOL"));
	harness_frame_free(&f);
	ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
	ck_assert(harness_frame_is_quit(&f));
	harness_frame_free(&f);
	ck_assert_int_eq(harness_tls_wait_closed(t, T_IO_MS), 0);
	harness_tls_close(t);

	ck_assert(fixture_metric(&fx, "sluice_protocol_errors_total") == errors + 1);
	ck_assert(fixture_metric(&fx, "sluice_frames_received_total") == rx);
	ck_assert(fixture_metric(&fx, "sluice_frames_sent_total") == tx + 1);
	fixture_wait_metric(&fx, "sluice_connections_active", 0, FIXTURE_METRIC_EQUAL);
	fixture_down(&fx);
}
END_TEST

/* Garbage instead of a ClientHello: one handshake failure; the
 * connection was accepted (counted) and is gone. */
START_TEST(test_metrics_handshake_failure)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: sluice\r\n\r\n";
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct harness_tls *plain;
	double failures, total;
	char buf[256];

	fixture_up(&fx, &o);
	failures = fixture_metric(&fx, "sluice_tls_handshake_failures_total");
	total = fixture_metric(&fx, "sluice_connections_total");
	plain = harness_plain_connect(fx.port, T_IO_MS);
	ck_assert_ptr_nonnull(plain);
	ck_assert_int_eq(harness_tls_send(plain, junk, sizeof(junk) - 1), 0);
	for (int i = 0; i < 64 && harness_tls_recv_raw(plain, buf, sizeof(buf), T_IO_MS) > 0; i++)
		;
	ck_assert_int_eq(harness_tls_wait_closed(plain, T_IO_MS), 0);
	harness_tls_close(plain);

	fixture_wait_metric(&fx, "sluice_tls_handshake_failures_total", failures + 1,
			    FIXTURE_METRIC_COUNTER);
	ck_assert(fixture_metric(&fx, "sluice_connections_total") == total + 1);
	fixture_wait_metric(&fx, "sluice_connections_active", 0, FIXTURE_METRIC_EQUAL);
	/* Still exactly one once things settle. */
	ck_assert(fixture_metric(&fx, "sluice_tls_handshake_failures_total") == failures + 1);
	fixture_down(&fx);
}
END_TEST

/* max_connections 2: the third connection is refused and counted, not
 * accepted as a session. */
START_TEST(test_metrics_connections_refused)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s",
				  .limits = "  max_connections: 2\n" };
	struct harness_tls *a, *b, *c;
	struct harness_frame f;
	double refused, total;

	fixture_up(&fx, &o);
	refused = fixture_metric(&fx, "sluice_connections_refused_total");
	total = fixture_metric(&fx, "sluice_connections_total");
	a = fixture_connect(&fx);
	b = fixture_connect(&fx);
	c = harness_tls_connect(fx.port, "localhost", T_IO_MS);
	ck_assert_msg(c == NULL, "a third connection was served past max_connections 2");
	fixture_wait_metric(&fx, "sluice_connections_refused_total", refused + 1,
			    FIXTURE_METRIC_COUNTER);
	ck_assert(fixture_metric(&fx, "sluice_connections_total") == total + 2);
	ck_assert(fixture_metric(&fx, "sluice_connections_active") == 2);
	/* The two admitted clients are unaffected. */
	ck_assert_int_eq(harness_send_frame(a, NULL, 0, "a", 1), 0);
	ck_assert_int_eq(harness_recv_frame(a, &f, T_IO_MS), 0);
	harness_frame_free(&f);
	harness_tls_close(a);
	harness_tls_close(b);
	fixture_down(&fx);
}
END_TEST

/* The backend dies: its errors counter grows and its connections leave the
 * connected state. */
START_TEST(test_metrics_backend_errors)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s", .connections = 2 };
	char errors[256], connected[256];
	double before, after;

	fixture_up(&fx, &o);
	wait_backend_connected(&fx, 2);
	backend_series(&fx, "sluice_backend_errors_total", NULL, errors, sizeof(errors));
	backend_series(&fx, "sluice_backend_connections", "connected", connected, sizeof(connected));
	before = fixture_metric(&fx, errors);
	harness_kill(&fx.echo[0]);
	fixture_wait_metric(&fx, connected, 0, FIXTURE_METRIC_EQUAL);
	/* At least one failure per connection (the close), then failed
	 * reconnects while the backend stays down. */
	after = fixture_wait_metric(&fx, errors, before + 2, FIXTURE_METRIC_AT_LEAST);
	ck_assert_msg(after >= before + 2, "backend errors %.0f -> %.0f", before, after);
	ck_assert_int_eq(harness_wait_log(fx.sluice.log, "is down", T_IO_MS), 0);
	fixture_down(&fx);
}
END_TEST

/* An invalid file and SIGHUP: one failed reload, the old configuration
 * serves on; a valid one again: one successful reload. */
START_TEST(test_metrics_reload_failure)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct harness_tls *t;
	struct harness_frame f;
	char *good;

	fixture_up(&fx, &o);
	ck_assert(fixture_metric(&fx, "sluice_reloads_total{result=\"failure\"}") == 0);
	good = harness_read_file(fx.conf, NULL);
	ck_assert_ptr_nonnull(good);
	ck_assert_int_eq(harness_write_file(fx.conf, "listen: [\nbackends: {}\n"), 0);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	fixture_wait_metric(&fx, "sluice_reloads_total{result=\"failure\"}", 1, FIXTURE_METRIC_COUNTER);
	ck_assert(fixture_metric(&fx, "sluice_reloads_total{result=\"success\"}") == 0);
	t = fixture_connect(&fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "still", 5), 0);
	ck_assert_int_eq(harness_recv_frame(t, &f, T_IO_MS), 0);
	ck_assert_str_eq((char *)f.payload, "still");
	harness_frame_free(&f);
	harness_tls_close(t);

	ck_assert_int_eq(harness_write_file(fx.conf, good), 0);
	free(good);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGHUP), 0);
	fixture_wait_metric(&fx, "sluice_reloads_total{result=\"success\"}", 1, FIXTURE_METRIC_COUNTER);
	ck_assert(fixture_metric(&fx, "sluice_reloads_total{result=\"failure\"}") == 1);
	fixture_down(&fx);
}
END_TEST


/* ---- the endpoint's own bounds (SPEC §7) ---------------------------------- */

/* How long test_admin_connection_bound watches sluice's descriptors for
 * more than the bound's worth of growth once the bound is reached. */
#define T_WATCH_MS 1500
/* Slack on ADMIN_DEADLINE_MS for the event loop and this test's pace. */
#define T_DEADLINE_SLACK_MS 2500

/* Connections past the bound took a descriptor each: ADMIN_MAX_CONNECTIONS
 * + 8 idle connections held open grew sluice's descriptors by all 24.
 * Now sluice accepts ADMIN_MAX_CONNECTIONS of them and leaves the rest in
 * the kernel's backlog, TLS clients are served meanwhile, and once the
 * held ones reach their deadline the endpoint takes the waiting ones and
 * answers a scrape that queued behind them. */
START_TEST(test_admin_connection_bound)
{
	enum { HELD = ADMIN_MAX_CONNECTIONS + 8 };
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct fixture_http_response r;
	struct harness_tls *t;
	int held[HELD], base, now, peak;
	int64_t deadline, t0;

	fixture_up(&fx, &o);
	wait_backend_connected(&fx, 2);
	/* A first scrape, so that nothing the endpoint sets up lazily is
	 * counted as growth. Its connection is gone once /healthz answers
	 * on a fresh one and the count settles. */
	free(fixture_scrape(&fx));
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);
	/* The answer reached us just before sluice closed the descriptor:
	 * the count settles when two reads 50 ms apart agree. */
	deadline = fixture_mono_ms() + T_IO_MS;
	base = fixture_open_fds(&fx);
	do {
		struct pollfd none = { .fd = -1 };

		now = base;
		(void)poll(&none, 0, 50);
		base = fixture_open_fds(&fx);
	} while (base != now && fixture_mono_ms() < deadline);

	for (int i = 0; i < HELD; i++) {
		/* The kernel completes each handshake whether or not sluice
		 * accepts: the backlog (128) has room for all. */
		held[i] = harness_tcp_connect(fx.admin_port);
		ck_assert_msg(held[i] >= 0, "connect %d: %s", i, harness_last_error());
	}
	deadline = fixture_mono_ms() + T_IO_MS;
	peak = now = fixture_open_fds(&fx);
	while (now < base + ADMIN_MAX_CONNECTIONS && fixture_mono_ms() < deadline) {
		struct pollfd none = { .fd = -1 };

		(void)poll(&none, 0, 10);
		now = fixture_open_fds(&fx);
		peak = now > peak ? now : peak;
	}
	ck_assert_msg(now >= base + ADMIN_MAX_CONNECTIONS,
		      "sluice took %d descriptors for %d admin connections (bound %d)", now - base, HELD,
		      ADMIN_MAX_CONNECTIONS);
	/* The bound is reached; nothing more may come, however long one
	 * watches (the deadline, 10 s, is far off). */
	deadline = fixture_mono_ms() + T_WATCH_MS;
	while (fixture_mono_ms() < deadline) {
		struct pollfd none = { .fd = -1 };

		(void)poll(&none, 0, 10);
		now = fixture_open_fds(&fx);
		peak = now > peak ? now : peak;
	}
	ck_assert_msg(peak <= base + ADMIN_MAX_CONNECTIONS,
		      "%d admin connections held open grew sluice's descriptors by %d (bound %d)", HELD,
		      peak - base, ADMIN_MAX_CONNECTIONS);

	t = fixture_connect(&fx);
	fixture_round_trip(t, "served while the admin endpoint is full");
	harness_tls_close(t);

	/* Queued behind the 8 waiting ones, a scrape is answered once the
	 * first ADMIN_MAX_CONNECTIONS have had their deadline. */
	t0 = fixture_mono_ms();
	fixture_http_raw_within(fx.admin_port, "GET /healthz HTTP/1.0\r\n\r\n",
				ADMIN_DEADLINE_MS + T_DEADLINE_SLACK_MS, &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);
	ck_assert_int_ge(harness_wait_count(fx.log, "without completing a request", ADMIN_MAX_CONNECTIONS, &fx.sluice, T_IO_MS), ADMIN_MAX_CONNECTIONS);
	ck_assert_msg(fixture_mono_ms() - t0 <= ADMIN_DEADLINE_MS + T_DEADLINE_SLACK_MS,
		      "the waiting scrape took %" PRId64 " ms", fixture_mono_ms() - t0);
	for (int i = 0; i < HELD; i++)
		close(held[i]);
	fixture_down(&fx);
}
END_TEST

/* A slow-loris scraper sending its request head a byte every 300 ms was
 * kept open as long as it kept sending: every byte restarted the
 * inactivity timeout (8 KiB of headers would take 40 minutes). Now it is
 * closed ADMIN_DEADLINE_MS after it connected, and the endpoint serves on. */
START_TEST(test_admin_dribble_deadline)
{
	static const char head[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .grace = "3s" };
	struct fixture_http_response r;
	int64_t t0, give_up, elapsed;
	size_t sent = 0;
	int fd, closed = 0;

	fixture_up(&fx, &o);
	fd = harness_tcp_connect(fx.admin_port);
	ck_assert_msg(fd >= 0, "connect: %s", harness_last_error());
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	t0 = fixture_mono_ms();
	give_up = t0 + ADMIN_DEADLINE_MS + T_DEADLINE_SLACK_MS;
	while (!closed && fixture_mono_ms() < give_up) {
		char byte = sent < sizeof(head) - 1 ? head[sent] : 'a';
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[256];
		ssize_t n;

		if (send(fd, &byte, 1, MSG_NOSIGNAL) != 1) {
			ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
			closed = 1;
			break;
		}
		sent++;
		/* Paces the bytes; a close from sluice ends the wait at once. */
		if (poll(&p, 1, 300) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		ck_assert_msg(n <= 0, "answered an incomplete request: %.*s", (int)n, buf);
		if (n == 0 || errno != EAGAIN)
			closed = 1;
	}
	elapsed = fixture_mono_ms() - t0;
	close(fd);
	ck_assert_msg(closed, "a dribbling admin client was still open after %" PRId64 " ms (%zu bytes)",
		      elapsed, sent);
	/* Not cut by the inactivity timeout: it never went quiet. */
	ck_assert_msg(elapsed >= ADMIN_DEADLINE_MS - 500, "closed after %" PRId64 " ms", elapsed);
	ck_assert_int_eq(harness_wait_count(fx.log, "without completing a request", 1, &fx.sluice, T_IO_MS), 1);
	fixture_http_request(fx.admin_port, "GET", "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	fixture_http_free(&r);
	fixture_down(&fx);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("integration");
	TCase *bounds = tcase_create("bounds");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_healthz_serving_then_draining);
	tcase_add_test(tc, test_http_errors);
	tcase_add_test(tc, test_metrics_families_declared);
	tcase_add_test(tc, test_metrics_traffic_deltas);
	tcase_add_test(tc, test_metrics_protocol_error);
	tcase_add_test(tc, test_metrics_handshake_failure);
	tcase_add_test(tc, test_metrics_connections_refused);
	tcase_add_test(tc, test_metrics_backend_errors);
	tcase_add_test(tc, test_metrics_reload_failure);
	suite_add_tcase(s, tc);

	/* Apart, for their length: each waits out the admin deadline. */
	tcase_set_timeout(bounds, 120);
	tcase_add_test(bounds, test_admin_connection_bound);
	tcase_add_test(bounds, test_admin_dribble_deadline);
	suite_add_tcase(s, bounds);
	return s;
}

int
main(void)
{
	return fixture_run_suite(admin_suite());
}
