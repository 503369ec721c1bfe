/*
 * check_ready — the fleet probes and the stop of SPEC §7–§8 through the
 * real binary: /livez while the workers turn, and 503 naming the worker
 * whose loop is held (SLUICE_TEST_STALL_FILE); /readyz 200 with backends
 * up, 503 "backend app: no server up" once its only echo is gone and 200
 * again when it returns; shutdown.delay: /readyz 503 at once after
 * SIGTERM while old and new clients are served, QUIT only once the delay
 * has passed, and a second signal ending it at once. The times a client
 * sees are printed to the test's log (docs/OPERATIONS.md quotes them).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/probes.h>

#include "../fixture.h"
#include "../harness.h"

#define POLL_US (20 * 1000)

/* GET path until it answers status with a body that starts with prefix,
 * within timeout_ms; the body goes to out. Returns the milliseconds it
 * took. */
static int64_t
wait_probe(const struct fixture *fx, const char *path, int status, const char *prefix, int timeout_ms,
	   char *out, size_t len)
{
	int64_t start = fixture_mono_ms();
	struct fixture_http_response r;

	for (;;) {
		int done;

		fixture_http_request(fx->admin_port, "GET", path, &r);
		done = r.status == status && strncmp(r.body, prefix, strlen(prefix)) == 0;
		snprintf(out, len, "%d %.*s", r.status, (int)strcspn(r.body, "\n"), r.body);
		fixture_http_free(&r);
		if (done)
			return fixture_mono_ms() - start;
		ck_assert_msg(fixture_mono_ms() - start < timeout_ms,
			      "GET %s: still '%s' after %d ms, expected %d %s...", path, out, timeout_ms,
			      status, prefix);
		usleep(POLL_US);
	}
}

static void
expect_probe(const struct fixture *fx, const char *path, int status, const char *body)
{
	struct fixture_http_response r;

	fixture_http_request(fx->admin_port, "GET", path, &r);
	ck_assert_msg(r.status == status && strcmp(r.body, body) == 0, "GET %s: %d '%s', expected %d '%s'",
		      path, r.status, r.body, status, body);
	fixture_http_free(&r);
}

/* ---- /livez ------------------------------------------------------------------ */

/* Starts sluice with SLUICE_TEST_STALL_FILE=dir/stall in its environment
 * only (put back at once: CK_FORK=no runs every test in one process). */
static void
start_with_stall_file(struct fixture *fx, const struct fixture_opts *o, char *stall, size_t len)
{
	snprintf(stall, len, "%s/stall", fx->dir);
	ck_assert_int_eq(setenv("SLUICE_TEST_STALL_FILE", stall, 1), 0);
	fixture_start_sluice(fx, o);
	unsetenv("SLUICE_TEST_STALL_FILE");
}

/* 200 while both workers turn; with worker 0 held in a callback, 503
 * naming it once PROBES_STUCK_MS have passed, and 200 again once it is
 * let go. Against a /livez that answers 200 whatever the workers do (or
 * none at all), the wait for 503 fails. */
START_TEST(test_livez_names_a_stuck_worker)
{
	struct fixture fx;
	const struct fixture_opts o = { .admin = 1, .untraced = 1, .workers = "2" };
	char stall[PATH_MAX + 16], body[256];
	int64_t took;

	fixture_prepare(&fx, &o);
	start_with_stall_file(&fx, &o, stall, sizeof(stall));
	expect_probe(&fx, "/livez", 200, "live\n");
	expect_probe(&fx, "/readyz", 200, "ready\n");

	ck_assert_int_eq(harness_write_file(stall, "held\n"), 0);
	took = wait_probe(&fx, "/livez", 503, "worker 0: event loop stuck for ", PROBES_STUCK_MS + T_IO_MS,
			  body, sizeof(body));
	printf("livez: 503 '%s' %" PRId64 " ms after worker 0 was held\n", body, took);
	ck_assert_msg(took >= PROBES_STUCK_MS - 200, "503 after %" PRId64 " ms only", took);
	ck_assert_int_eq(unlink(stall), 0);
	took = wait_probe(&fx, "/livez", 200, "live\n", T_IO_MS, body, sizeof(body));
	printf("livez: 200 again %" PRId64 " ms after worker 0 was let go\n", took);
	fixture_down(&fx);
}
END_TEST

/* ---- /readyz ------------------------------------------------------------------ */

/* 200 with the backend's server up; its only echo gone (every connection
 * fails), 503 with the backend named; the echo back, 200 again. */
START_TEST(test_readyz_follows_the_backend)
{
	struct fixture fx;
	const struct fixture_opts o = { .admin = 1, .untraced = 1, .workers = "2" };
	char body[256];
	int64_t took;

	fixture_up(&fx, &o);
	expect_probe(&fx, "/readyz", 200, "ready\n");
	harness_kill(&fx.echo[0]);
	took = wait_probe(&fx, "/readyz", 503, "backend app: no server up\n", T_IO_MS, body, sizeof(body));
	printf("readyz: 503 %" PRId64 " ms after the backend died\n", took);
	/* Not stuck, only unready. */
	expect_probe(&fx, "/livez", 200, "live\n");
	expect_probe(&fx, "/healthz", 200, "serving\n");
	fixture_start_echo(&fx, 0, NULL);
	/* Reconnects back off up to UPSTREAM_BACKOFF_MAX_MS. */
	took = wait_probe(&fx, "/readyz", 200, "ready\n", T_IO_MS, body, sizeof(body));
	printf("readyz: 200 %" PRId64 " ms after the backend returned\n", took);
	fixture_down(&fx);
}
END_TEST

/* ---- shutdown.delay ---------------------------------------------------------- */

#define DELAY_MS 2000

static struct harness_tls *
connected(const struct fixture *fx, const char *text)
{
	struct harness_tls *t = fixture_connect(fx);

	ck_assert_msg(t != NULL, "connect: %s", harness_last_error());
	fixture_round_trip(t, text);
	return t;
}

/* After SIGTERM with shutdown.delay 2s: /readyz 503 "shutdown delay" at
 * once and /healthz still 200; a client connected before and one that
 * connects during the delay are both served (full round trips), and
 * neither gets QUIT before the delay has passed; then both get it, the
 * probes say draining, and sluice exits 0 once they quit. Against a
 * sluice without the delay, the QUIT comes at once (or /readyz stays
 * 200). */
START_TEST(test_shutdown_delay_serves_then_drains)
{
	struct fixture fx;
	const struct fixture_opts o = { .admin = 1, .untraced = 1, .workers = "2", .delay = "2s",
					.grace = "5s" };
	struct harness_tls *old, *fresh;
	struct harness_frame f;
	int64_t t0, unready, quit_old, quit_fresh;
	char body[256];

	fixture_up(&fx, &o);
	old = connected(&fx, "before");
	t0 = fixture_mono_ms();
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	unready = wait_probe(&fx, "/readyz", 503, "shutdown delay\n", T_IO_MS, body, sizeof(body));
	expect_probe(&fx, "/healthz", 200, "serving\n");
	fixture_wait_log_count(&fx, "shutdown: not ready; draining in 2s", 1);

	fresh = connected(&fx, "during");
	fixture_round_trip(old, "still-before");
	ck_assert_msg(fixture_mono_ms() - t0 < DELAY_MS, "the round trips took the whole delay: no proof");

	/* The QUIT, and nothing before it: every request was answered. */
	ck_assert_msg(harness_recv_frame(old, &f, DELAY_MS + T_IO_MS) == 0, "recv: %s", harness_last_error());
	quit_old = fixture_mono_ms() - t0;
	ck_assert(harness_frame_is_quit(&f));
	harness_frame_free(&f);
	fixture_expect_quit(fresh);
	quit_fresh = fixture_mono_ms() - t0;
	printf("shutdown.delay %d ms: /readyz 503 %" PRId64 " ms after SIGTERM; QUIT reached the old client "
	       "after %" PRId64 " ms, the one that came during the delay after %" PRId64 " ms\n",
	       DELAY_MS, unready, quit_old, quit_fresh);
	ck_assert_msg(quit_old >= DELAY_MS, "QUIT after %" PRId64 " ms, before the delay", quit_old);
	ck_assert_msg(unready < DELAY_MS / 2, "/readyz 503 only after %" PRId64 " ms", unready);

	expect_probe(&fx, "/readyz", 503, "draining\n");
	expect_probe(&fx, "/healthz", 503, "draining\n");
	/* Draining: the listener is closed to newcomers. */
	ck_assert_int_lt(harness_tcp_connect(fx.port), 0);
	fixture_round_trip(old, "after-quit");
	ck_assert_int_eq(harness_send_frame(old, "QUIT", 4, NULL, 0), 0);
	ck_assert_int_eq(harness_send_frame(fresh, "QUIT", 4, NULL, 0), 0);
	ck_assert_int_eq(harness_tls_wait_closed(old, T_IO_MS), 0);
	ck_assert_int_eq(harness_tls_wait_closed(fresh, T_IO_MS), 0);
	harness_tls_close(old);
	harness_tls_close(fresh);
	fixture_wait_exit(&fx);
	ck_assert_int_eq(fixture_count_log(&fx, "shutdown: delay over; stopping gracefully"), 1);
	ck_assert_int_eq(fixture_count_log(&fx, "grace period over"), 0);
	fixture_cleanup(&fx);
}
END_TEST

/* A second stop signal during the delay exits at once (SPEC §6), not
 * after the 60 s of the delay. */
START_TEST(test_shutdown_delay_second_signal)
{
	struct fixture fx;
	const struct fixture_opts o = { .admin = 1, .untraced = 1, .delay = "60s" };
	char body[256];
	int status = -1;
	int64_t t0;

	fixture_up(&fx, &o);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	(void)wait_probe(&fx, "/readyz", 503, "shutdown delay\n", T_IO_MS, body, sizeof(body));
	t0 = fixture_mono_ms();
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGINT), 0);
	ck_assert_int_eq(harness_wait_exit(&fx.sluice, T_IO_MS, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
	printf("shutdown.delay 60s: a second signal exited in %" PRId64 " ms\n", fixture_mono_ms() - t0);
	ck_assert_int_eq(fixture_count_log(&fx, "received again: exiting now"), 1);
	fixture_cleanup(&fx);
}
END_TEST

static Suite *
ready_suite(void)
{
	Suite *s = suite_create("ready");
	TCase *tc = tcase_create("integration");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_livez_names_a_stuck_worker);
	tcase_add_test(tc, test_readyz_follows_the_backend);
	tcase_add_test(tc, test_shutdown_delay_serves_then_drains);
	tcase_add_test(tc, test_shutdown_delay_second_signal);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(ready_suite());
}
