/*
 * check_health — active health checks and passive ejection (SPEC §8
 * "Health") through the real binary, two sluice-echo servers behind it: a
 * stalled server is marked down within fall × interval and its clients'
 * new requests go to the other; it comes back after rise good probes; a
 * server answering garbage is ejected for eject_time, at most
 * max_ejected_percent of the servers at once; ERR BUSY never counts; probe
 * answers never reach a client.
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fixture.h"
#include "../harness.h"

#define HC_CHECKS "    health_check:\n      interval: 200ms\n      timeout: 100ms\n      fall: 3\n      rise: 2\n"

/* sluice_NAME{backend="app",server="127.0.0.1:PORT"[,result="R"]} */
static const char *
hc_series(char *out, size_t len, const struct fixture *fx, const char *name, int i, const char *result)
{
	if (result != NULL)
		snprintf(out, len, "%s{backend=\"app\",server=\"127.0.0.1:%u\",result=\"%s\"}", name,
			 fx->echo_port[i], result);
	else
		snprintf(out, len, "%s{backend=\"app\",server=\"127.0.0.1:%u\"}", name, fx->echo_port[i]);
	return out;
}

static void
hc_wait_up(const struct fixture *fx, int i, int up)
{
	char s[160];

	fixture_wait_metric(fx, hc_series(s, sizeof(s), fx, "sluice_backend_server_up", i, NULL), up,
			    FIXTURE_METRIC_EQUAL);
}

/* The log line of a state change of echo i ("marked down", ...). */
static const char *
hc_line(char *out, size_t len, const struct fixture *fx, int i, const char *what)
{
	snprintf(out, len, "server 127.0.0.1:%u %s", fx->echo_port[i], what);
	return out;
}

/* One request; 1 when echoed, 0 when answered ERR UNAVAILABLE. */
static int
hc_request(struct harness_tls *t, const char *text)
{
	struct harness_frame f;
	int echoed;

	ck_assert_int_eq(harness_send_frame(t, NULL, 0, text, (uint32_t)strlen(text)), 0);
	ck_assert_msg(harness_recv_frame(t, &f, T_IO_MS) == 0, "answer to %s: %s", text, harness_last_error());
	echoed = f.header_len == 0 && strcmp((const char *)f.payload, text) == 0;
	ck_assert_msg(echoed || harness_frame_is_err(&f, "UNAVAILABLE"), "unexpected answer to %s", text);
	harness_frame_free(&f);
	return echoed;
}

/* Whether a loop of requests may go on: paced (2 ms), so that it spans the
 * reconnection backoff of a failed connection rather than only its first
 * few milliseconds; bounded by the deadline. */
static int
hc_before(int64_t deadline)
{
	usleep(2000);
	return fixture_mono_ms() < deadline;
}

/* n requests in a row on t, each echoed (and none an error). */
static void
hc_round_trips(struct harness_tls *t, const char *tag, int n)
{
	char text[64];

	for (int k = 0; k < n; k++) {
		snprintf(text, sizeof(text), "%s %d", tag, k);
		fixture_round_trip(t, text);
	}
}

/* Requests tagged tag until echo i has seen one (it takes requests), at
 * most n; each must be echoed. */
static void
hc_until_served_by(struct fixture *fx, struct harness_tls *t, int i, const char *tag, int n)
{
	char text[64];
	int k;

	for (k = 0; k < n && harness_trace_conn_of(fx->trace[i], tag, strlen(tag)) < 0; k++) {
		snprintf(text, sizeof(text), "%s %d", tag, k);
		fixture_round_trip(t, text);
	}
	ck_assert_msg(harness_trace_conn_of(fx->trace[i], tag, strlen(tag)) >= 0,
		      "echo %d got none of %d requests", i, n);
}

/* (a) and (b): echo 0 stops (SIGSTOP: its connections stay open, nothing
 * is answered). It is marked down after fall = 3 failed probes, each
 * interval (200 ms) at most, so within about 600 ms plus the tick and the
 * probe timeout; then every new request goes to echo 1, at once and
 * without an error. (Requests written to echo 0 before, none here, would
 * wait for its answers: up to request_timeout, then ERR TIMEOUT.) After
 * SIGCONT, rise = 2 good probes bring it back, and it takes requests again. */
START_TEST(test_stalled_server_down_then_up)
{
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .admin = 1, .backend_extra = HC_CHECKS };
	struct harness_tls *t;
	char s[160], line[96];
	int64_t t0, down_ms, up_ms;

	fixture_up(&fx, &o);
	hc_wait_up(&fx, 0, 1);
	fixture_wait_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_health_checks_total", 0, "ok"), 2,
			    FIXTURE_METRIC_AT_LEAST);
	t = fixture_connect(&fx);
	hc_round_trips(t, "before", 4);

	t0 = fixture_mono_ms();
	fixture_stop_echo(&fx, 0);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 0, "marked down"), T_IO_MS), 0);
	down_ms = fixture_mono_ms() - t0;
	fprintf(stderr, "check_health: stalled server marked down after %lld ms\n", (long long)down_ms);
	ck_assert_msg(down_ms >= 300 && down_ms <= 1500, "marked down after %lld ms (fall 3 x interval 200 ms)",
		      (long long)down_ms);
	hc_wait_up(&fx, 0, 0);
	hc_wait_up(&fx, 1, 1);
	t0 = fixture_mono_ms();
	hc_round_trips(t, "while down", 20);
	ck_assert_msg(fixture_mono_ms() - t0 < 2000, "20 requests took %lld ms", (long long)(fixture_mono_ms() - t0));
	ck_assert_int_eq(fixture_count_log(&fx, hc_line(line, sizeof(line), &fx, 1, "marked down")), 0);

	t0 = fixture_mono_ms();
	fixture_cont_echo(&fx, 0);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 0, "marked up"), T_IO_MS), 0);
	up_ms = fixture_mono_ms() - t0;
	fprintf(stderr, "check_health: server marked up %lld ms after it answered again\n", (long long)up_ms);
	ck_assert_msg(up_ms <= 1500, "marked up after %lld ms (rise 2 x interval 200 ms)", (long long)up_ms);
	hc_wait_up(&fx, 0, 1);
	hc_until_served_by(&fx, t, 0, "after up", 50);
	fixture_wait_log_count(&fx, hc_line(line, sizeof(line), &fx, 0, "marked down"), 1);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* (c): echo 0 answers every first frame of a connection with an invalid
 * one, so each request placed on it fails its connection: ERR UNAVAILABLE.
 * After eject_after = 3 of them it is ejected (1 s): every request then
 * goes to echo 1. Restarted without garbage, it is tried again when the
 * ejection is over and takes requests. */
START_TEST(test_garbage_server_ejected_then_back)
{
	struct fixture fx;
	struct fixture_opts o = {
		.n_echos = 2, .admin = 1, .echo_args_of = { "--garbage-after 1", NULL },
		.backend_extra = "    eject_after: 3\n    eject_time: 1s\n",
	};
	struct harness_tls *t;
	char s[160], line[96], text[32];
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	int failed = 0, k;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	for (k = 0; hc_before(deadline) && failed < 3; k++) {
		snprintf(text, sizeof(text), "garbage %d", k);
		failed += !hc_request(t, text);
	}
	ck_assert_int_eq(failed, 3);
	fixture_wait_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_backend_ejections_total", 0, NULL), 1,
			    FIXTURE_METRIC_COUNTER);
	hc_round_trips(t, "ejected", 20);
	hc_wait_up(&fx, 0, 0);

	harness_kill(&fx.echo[0]);
	fixture_start_echo(&fx, 0, NULL);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 0, "back from ejection"), T_IO_MS), 0);
	hc_until_served_by(&fx, t, 0, "back", 100);
	hc_wait_up(&fx, 0, 1);
	ck_assert_int_eq(fixture_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_backend_ejections_total", 0, NULL)), 1);
	ck_assert_int_eq(fixture_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_backend_ejections_total", 1, NULL)), 0);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* (d): both servers answer garbage; with max_ejected_percent 50 (the
 * default) one of the two may be ejected, never both: the other keeps
 * failing requests but stays in. */
START_TEST(test_max_ejected_percent)
{
	struct fixture fx;
	struct fixture_opts o = {
		.n_echos = 2, .admin = 1, .echo_args = "--garbage-after 1",
		.backend_extra = "    eject_after: 2\n    eject_time: 30s\n",
	};
	struct harness_tls *t;
	char s0[160], s1[160], text[32];
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	int failed = 0;

	fixture_up(&fx, &o);
	t = fixture_connect(&fx);
	for (int k = 0; hc_before(deadline) && failed < 12; k++) {
		snprintf(text, sizeof(text), "both %d", k);
		failed += !hc_request(t, text);
	}
	ck_assert_int_eq(failed, 12);
	fixture_wait_log_count(&fx, "ejected for", 1);
	hc_series(s0, sizeof(s0), &fx, "sluice_backend_ejections_total", 0, NULL);
	hc_series(s1, sizeof(s1), &fx, "sluice_backend_ejections_total", 1, NULL);
	ck_assert_int_eq(fixture_metric(&fx, s0) + fixture_metric(&fx, s1), 1);
	hc_series(s0, sizeof(s0), &fx, "sluice_backend_server_up", 0, NULL);
	hc_series(s1, sizeof(s1), &fx, "sluice_backend_server_up", 1, NULL);
	ck_assert_int_eq(fixture_metric(&fx, s0) + fixture_metric(&fx, s1), 1);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* (e): ERR BUSY is the pool's answer, not the server's: client A congests
 * the only connection (its server stopped), client B's requests wait
 * queue_timeout and get ERR BUSY, and with eject_after 1 nothing is
 * ejected. */
START_TEST(test_busy_never_counts)
{
	struct fixture fx;
	struct fixture_opts o = {
		.admin = 1, .connections = 1, .limits = "  client_buffer: 64MiB\n",
		.backend_extra = "    queue_timeout: 100ms\n    eject_after: 1\n",
	};
	struct harness_tls *a, *b;
	const uint32_t len = 64 * 1024;
	uint8_t *frame = calloc(1, len);
	char s[160], text[32];
	size_t sent;
	int k;

	ck_assert_ptr_nonnull(frame);
	harness_frame_prefix(frame, 0, len);
	fixture_up(&fx, &o);
	a = fixture_connect(&fx);
	b = fixture_connect(&fx);
	fixture_round_trip(b, "B before");
	fixture_stop_echo(&fx, 0);
	for (k = 0; k < 2048 && harness_tls_send_some(a, frame, len, 1000, &sent) == 0; k++)
		;
	ck_assert_msg(k < 2048, "A sent 128 MiB into a stopped backend");
	for (k = 0; k < 5; k++) {
		snprintf(text, sizeof(text), "B %d", k);
		ck_assert_int_eq(harness_send_frame(b, NULL, 0, text, (uint32_t)strlen(text)), 0);
		fixture_expect_err(b, "BUSY");
	}
	harness_tls_abort(a);
	fixture_cont_echo(&fx, 0);
	fixture_round_trip(b, "B after");
	ck_assert_int_eq(fixture_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_backend_ejections_total", 0, NULL)), 0);
	ck_assert_int_eq(fixture_count_log(&fx, "ejected for"), 0);
	free(frame);
	harness_tls_close(b);
	fixture_down(&fx);
}
END_TEST

/* (f): probes share the connections clients use; their answers are
 * swallowed. A client pipelining 64 requests at a time for over a second
 * (several probe intervals) gets exactly its own answers, in order. */
START_TEST(test_probe_answers_never_reach_clients)
{
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .admin = 1, .connections = 1, .backend_extra = HC_CHECKS };
	struct harness_tls *t;
	struct harness_frame f;
	char s[160], text[32];
	int64_t until;
	int sent = 0, got = 0;

	fixture_up(&fx, &o);
	fixture_wait_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_health_checks_total", 0, "ok"), 1,
			    FIXTURE_METRIC_AT_LEAST);
	t = fixture_connect(&fx);
	until = fixture_mono_ms() + 1200;
	while (fixture_mono_ms() < until && sent < 200000) {
		for (int k = 0; k < 64; k++, sent++) {
			snprintf(text, sizeof(text), "pipelined %d", sent);
			ck_assert_int_eq(harness_send_frame(t, NULL, 0, text, (uint32_t)strlen(text)), 0);
		}
		for (; got < sent; got++) {
			snprintf(text, sizeof(text), "pipelined %d", got);
			ck_assert_msg(harness_recv_frame(t, &f, T_IO_MS) == 0, "answer %d: %s", got, harness_last_error());
			ck_assert_msg(f.header_len == 0 && strcmp((const char *)f.payload, text) == 0,
				      "answer %d is not its own (header %u bytes)", got, f.header_len);
			harness_frame_free(&f);
		}
	}
	fixture_wait_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_health_checks_total", 0, "ok"), 6,
			    FIXTURE_METRIC_AT_LEAST);
	ck_assert_int_eq(fixture_metric(&fx, hc_series(s, sizeof(s), &fx, "sluice_health_checks_total", 0, "fail")), 0);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* A reload keeps a server's health (same address), and one that turns
 * checks off brings a server they had marked down back up: nothing else
 * ever would. */
START_TEST(test_reload_turns_checks_off)
{
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .admin = 1, .backend_extra = HC_CHECKS };
	char line[96];

	fixture_up(&fx, &o);
	hc_wait_up(&fx, 0, 1);
	fixture_stop_echo(&fx, 0);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 0, "marked down"), T_IO_MS), 0);
	hc_wait_up(&fx, 0, 0);
	fixture_write_config(&fx, &o);
	fixture_hup(&fx, 1);
	hc_wait_up(&fx, 0, 0);
	o.backend_extra = NULL;
	fixture_write_config(&fx, &o);
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, hc_line(line, sizeof(line), &fx, 0, "marked up: health checks are off"), 1);
	hc_wait_up(&fx, 0, 1);
	fixture_cont_echo(&fx, 0);
	fixture_down(&fx);
}
END_TEST

/* Polls GET /readyz until it answers status with a body starting with
 * prefix (FIXTURE_IO_MS). */
static void
hc_wait_ready(const struct fixture *fx, int status, const char *prefix)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	struct fixture_http_response r;
	char last[128];
	int done;

	do {
		fixture_http_request(fx->admin_port, "GET", "/readyz", &r);
		done = r.status == status && strncmp(r.body, prefix, strlen(prefix)) == 0;
		snprintf(last, sizeof(last), "%d %.*s", r.status, (int)strcspn(r.body, "\n"), r.body);
		fixture_http_free(&r);
	} while (!done && fixture_mono_ms() < deadline && usleep(20000) == 0);
	ck_assert_msg(done, "/readyz: %s, expected %d %s", last, status, prefix);
}

/* /readyz follows health checks through pool_server_up: one server marked
 * down leaves sluice ready, both make it unready, and an answer from one
 * (rise probes) makes it ready again. */
START_TEST(test_readyz_follows_health)
{
	struct fixture fx;
	struct fixture_opts o = { .n_echos = 2, .admin = 1, .backend_extra = HC_CHECKS };
	char line[96];

	fixture_up(&fx, &o);
	hc_wait_ready(&fx, 200, "ready");
	fixture_stop_echo(&fx, 0);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 0, "marked down"), T_IO_MS), 0);
	hc_wait_ready(&fx, 200, "ready");
	fixture_stop_echo(&fx, 1);
	ck_assert_int_eq(harness_wait_log(fx.log, hc_line(line, sizeof(line), &fx, 1, "marked down"), T_IO_MS), 0);
	hc_wait_ready(&fx, 503, "backend app: no server up");
	fixture_cont_echo(&fx, 1);
	hc_wait_ready(&fx, 200, "ready");
	fixture_cont_echo(&fx, 0);
	fixture_down(&fx);
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("health");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stalled_server_down_then_up);
	tcase_add_test(tc, test_garbage_server_ejected_then_back);
	tcase_add_test(tc, test_max_ejected_percent);
	tcase_add_test(tc, test_busy_never_counts);
	tcase_add_test(tc, test_probe_answers_never_reach_clients);
	tcase_add_test(tc, test_reload_turns_checks_off);
	tcase_add_test(tc, test_readyz_follows_health);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(health_suite());
}
