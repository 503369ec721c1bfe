/*
 * check_dns — backends given by DNS name (SPEC §8) through the real sluice
 * binary, against tests/dnsd (a DNS server whose zone file the test
 * rewrites; it reads it for every query) and two sluice-echo backends on
 * the same port of 127.0.0.2 and 127.0.0.3, so that the name alone says
 * which one serves (their --trace files count the frames each got):
 *
 *   - the name's address at start gets the traffic;
 *   - a zone change under steady traffic moves it to the new address with
 *     every request answered, and the old address's connections get QUIT
 *     and close (the time from the change to the first request served by
 *     the new address goes to stderr);
 *   - requests written to an address that leaves the answer still get
 *     their answers, in order, before that connection's QUIT;
 *   - a name with two addresses spreads the traffic over both, and every
 *     worker opens `connections` to each address;
 *   - SERVFAIL, NXDOMAIN and a nameserver that does not answer keep the
 *     last good set, counted by outcome and logged once per change;
 *   - a name that does not resolve at start is no configuration error:
 *     ERR UNAVAILABLE until it does, then served;
 *   - resolver.hosts_file, and a reload that changes it;
 *   - a reload with the nameserver silent keeps the resolved set (no
 *     reconnection at all).
 */
#include <check.h>
#include <limits.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../fixture.h"
#include "../harness.h"

#define T_START_MS 15000
/* The interval the tests resolve at: a zone change shows within it. */
#define T_INTERVAL "200ms"
/* Requests of the client that keeps sending while the zone changes. */
#define T_MOVE_MAX 20000
/* A payload prefix ("dns") in hex, as sluice-echo traces frames. */
#define T_PAYLOAD_HEX " 646e73"

struct dns_env {
	struct fixture fx;          /* sluice, two echos on one port of .2 and .3 */
	struct harness_proc dnsd;
	uint16_t dns_port;
	char zone[PATH_MAX + 32];
	char queries[PATH_MAX + 32];
	char server[2][128];        /* the metrics label of each echo's address */
	unsigned workers;           /* sluice's workers [1] */
};

/* Replaces the zone atomically: dnsd never reads half a file. */
static void
dns_zone(struct dns_env *e, const char *text)
{
	char tmp[PATH_MAX + 48];

	snprintf(tmp, sizeof(tmp), "%s.new", e->zone);
	ck_assert_int_eq(harness_write_file(tmp, text), 0);
	ck_assert_int_eq(rename(tmp, e->zone), 0);
}

static void
dns_start_dnsd(struct dns_env *e)
{
	const char *dir = getenv("SLUICE_BUILDDIR");
	char path[PATH_MAX], port[8], log[PATH_MAX + 32];
	char *argv[] = { path, "-p", port, "-z", e->zone, "-l", e->queries, NULL };

	snprintf(path, sizeof(path), "%s/tests/dnsd", dir != NULL ? dir : ".");
	snprintf(port, sizeof(port), "%u", (unsigned)e->dns_port);
	snprintf(log, sizeof(log), "%s/dnsd.log", e->fx.dir);
	ck_assert_int_eq(harness_spawn(&e->dnsd, log, argv), 0);
	ck_assert_msg(harness_wait_ready(&e->dnsd, "dnsd: listening", T_IO_MS) == 0, "dnsd: %s",
		      harness_last_error());
}

/* The folder, the echos on 127.0.0.2 (with more args, or NULL) and
 * 127.0.0.3 (one port), dnsd with zone, no sluice yet. */
static void
dns_setup_echo(struct dns_env *e, const char *zone, const char *echo0_args)
{
	struct fixture_opts o = { .n_echos = 2, .start_echos_later = 1, .admin = 1 };
	char args[128];

	memset(e, 0, sizeof(*e));
	fixture_prepare(&e->fx, &o);
	e->fx.echo_port[1] = e->fx.echo_port[0];
	snprintf(args, sizeof(args), "-a 127.0.0.2 %s", echo0_args ? echo0_args : "");
	fixture_start_echo(&e->fx, 0, args);
	fixture_start_echo(&e->fx, 1, "-a 127.0.0.3");
	for (int i = 0; i < 2; i++)
		snprintf(e->server[i], sizeof(e->server[i]), "app.test:%u/127.0.0.%d:%u",
			 (unsigned)e->fx.echo_port[0], i + 2, (unsigned)e->fx.echo_port[0]);
	e->dns_port = harness_free_port();
	ck_assert_uint_ne(e->dns_port, 0);
	snprintf(e->zone, sizeof(e->zone), "%s/zone", e->fx.dir);
	snprintf(e->queries, sizeof(e->queries), "%s/queries.log", e->fx.dir);
	dns_zone(e, zone);
	dns_start_dnsd(e);
}

static void
dns_setup(struct dns_env *e, const char *zone)
{
	dns_setup_echo(e, zone, NULL);
}

/* The configuration: backend app is app.test:PORT; resolver is the YAML
 * of the resolver: section (NULL: dnsd as the one nameserver). */
static void
dns_write_config(struct dns_env *e, const char *resolver, const char *backend_extra)
{
	char text[4096], ns[128];

	snprintf(ns, sizeof(ns), "resolver:\n  nameservers: [\"127.0.0.1:%u\"]\n", (unsigned)e->dns_port);
	snprintf(text, sizeof(text),
		 "workers: %u\n"
		 "listen:\n"
		 "  - address: 127.0.0.1:%u\n"
		 "    backend: app\n"
		 "    tls:\n"
		 "      certificates:\n"
		 "        - cert: server.crt\n"
		 "          key: server.key\n"
		 "backends:\n"
		 "  app:\n"
		 "    servers:\n"
		 "      - address: app.test:%u\n"
		 "    connections: 2\n"
		 "    connect_timeout: 1s\n"
		 "    resolve_interval: " T_INTERVAL "\n"
		 "%s"
		 "%s"
		 "shutdown:\n"
		 "  grace_timeout: 2s\n"
		 "admin:\n"
		 "  address: 127.0.0.1:%u\n"
		 "log:\n"
		 "  level: debug\n",
		 e->workers ? e->workers : 1, (unsigned)e->fx.port, (unsigned)e->fx.echo_port[0], backend_extra ? backend_extra : "",
		 resolver ? resolver : ns, (unsigned)e->fx.admin_port);
	fixture_write_text(&e->fx, text);
}

static void
dns_down(struct dns_env *e)
{
	harness_kill(&e->dnsd);
	fixture_down(&e->fx);
}

/* Frames of this test's payloads echo i received. */
static int
dns_served(const struct dns_env *e, int i)
{
	return harness_count_log(e->fx.trace[i], T_PAYLOAD_HEX);
}

/* "sluice_backend_connections{...,state="connected"}" of echo i. */
static void
dns_connected_series(const struct dns_env *e, int i, char *out, size_t len)
{
	snprintf(out, len, "sluice_backend_connections{backend=\"app\",server=\"%s\",state=\"connected\"}",
		 e->server[i]);
}

/* Polls /metrics until series (absent until the name resolves) reaches
 * want: equal, or at least want. */
static void
dns_wait_series(const struct dns_env *e, const char *series, double want, int at_least)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	double got;

	for (;;) {
		char *text = fixture_scrape(&e->fx);

		got = fixture_series_value(text, series);
		free(text);
		if (at_least ? got >= want : got == want)
			return;
		ck_assert_msg(fixture_mono_ms() < deadline, "%s is %g after %d ms, expected %s%g", series, got,
			      T_IO_MS, at_least ? "at least " : "", want);
		usleep(20 * 1000);
	}
}

static void
dns_wait_connected(const struct dns_env *e, int i, double want)
{
	char series[256];

	dns_connected_series(e, i, series, sizeof(series));
	dns_wait_series(e, series, want, 0);
}

static double
dns_lookups(const struct dns_env *e, const char *result)
{
	char series[128];
	char *text = fixture_scrape(&e->fx);
	double v;

	snprintf(series, sizeof(series), "sluice_dns_resolutions_total{backend=\"app\",result=\"%s\"}", result);
	v = fixture_series_value(text, series);
	free(text);
	return v;
}

static void
dns_wait_lookups(const struct dns_env *e, const char *result, double at_least)
{
	char series[128];

	snprintf(series, sizeof(series), "sluice_dns_resolutions_total{backend=\"app\",result=\"%s\"}", result);
	dns_wait_series(e, series, at_least, 1);
}

/* One request and its echo; fails on an ERR. */
static void
dns_round_trip(struct harness_tls *t, unsigned n)
{
	char payload[32];

	snprintf(payload, sizeof(payload), "dns-%u", n);
	fixture_round_trip(t, payload);
}

START_TEST(test_name_resolves_at_start)
{
	struct dns_env e;
	struct harness_tls *t;

	dns_setup(&e, "ttl 1\napp.test A 127.0.0.2\n");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 10; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0), 10);
	ck_assert_int_eq(dns_served(&e, 1), 0);
	ck_assert_double_ge(dns_lookups(&e, "ok"), 1);
	ck_assert_int_ge(harness_count_log(e.queries, "app.test A NOERROR 1"), 1);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* The zone moves app.test from .2 to .3 while one client keeps sending:
 * every request is answered by an echo, .3 takes over within a few
 * intervals, and .2's connections are retired with QUIT and close. */
START_TEST(test_zone_change_moves_traffic)
{
	struct dns_env e;
	struct harness_tls *t;
	int64_t changed, moved = -1, deadline;
	unsigned n = 0;

	dns_setup(&e, "app.test A 127.0.0.2\n");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	t = fixture_connect(&e.fx);
	for (; n < 20; n++)
		dns_round_trip(t, n);
	dns_zone(&e, "app.test A 127.0.0.3\n");
	changed = fixture_mono_ms();
	deadline = changed + T_IO_MS;
	while (moved < 0 && n < T_MOVE_MAX && fixture_mono_ms() < deadline) {
		dns_round_trip(t, n++);
		if (dns_served(&e, 1) > 0)
			moved = fixture_mono_ms();
	}
	ck_assert_msg(moved >= 0, "no request reached 127.0.0.3 within %d ms (%u sent)", T_IO_MS, n);
	fprintf(stderr, "check_dns: DNS change to first request served by the new address: %lld ms "
		"(resolve_interval " T_INTERVAL ", %u requests before it)\n", (long long)(moved - changed), n);
	for (unsigned i = 0; i < 20; i++)
		dns_round_trip(t, n++);
	/* .2's two connections get QUIT (a frame with an empty payload in
	 * its trace) and close. */
	ck_assert_int_eq(harness_wait_count(e.fx.trace[0], "close ", 2, NULL, T_IO_MS), 2);
	ck_assert_int_eq(harness_count_log(e.fx.trace[0], " 10 -"), 2);
	ck_assert_int_eq(dns_served(&e, 0) + dns_served(&e, 1), (int)n);
	dns_wait_connected(&e, 1, 2);
	ck_assert_double_eq(fixture_metric(&e.fx, "sluice_requests_pending"), 0);
	fixture_wait_log_count(&e.fx, "resolves to 127.0.0.3:", 1);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* Requests written to the old address when it leaves the answer still
 * get their answers (the echo there holds each for 600 ms, longer than
 * a lookup takes), in order; QUIT comes after them, and the client's next
 * request goes to the new address. */
START_TEST(test_gone_address_delivers_outstanding)
{
	struct dns_env e;
	struct harness_tls *t;
	char payload[32];

	dns_setup_echo(&e, "app.test A 127.0.0.2\n", "-d 600");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 10; i++) {
		snprintf(payload, sizeof(payload), "dns-%u", i);
		ck_assert_int_eq(harness_send_frame(t, NULL, 0, payload, (uint32_t)strlen(payload)), 0);
	}
	ck_assert_int_eq(harness_wait_count(e.fx.trace[0], T_PAYLOAD_HEX, 10, NULL, T_IO_MS), 10);
	dns_zone(&e, "app.test A 127.0.0.3\n");
	fixture_wait_log_count(&e.fx, "resolves to 127.0.0.3:", 1);
	/* The idle connection may be gone already, not the one answering. */
	ck_assert_int_le(harness_count_log(e.fx.trace[0], "close "), 1);
	for (unsigned i = 0; i < 10; i++) {
		snprintf(payload, sizeof(payload), "dns-%u", i);
		fixture_expect_frame(t, payload, (uint32_t)strlen(payload));
	}
	dns_round_trip(t, 10);
	ck_assert_int_eq(dns_served(&e, 1), 1);
	ck_assert_int_eq(harness_wait_count(e.fx.trace[0], "close ", 2, NULL, T_IO_MS), 2);
	ck_assert_int_eq(harness_count_log(e.fx.trace[0], " 10 -"), 2);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

START_TEST(test_two_addresses_share_traffic)
{
	struct dns_env e;
	struct harness_tls *t;

	dns_setup(&e, "app.test A 127.0.0.2\napp.test A 127.0.0.3\n");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	dns_wait_connected(&e, 1, 2);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 40; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0) + dns_served(&e, 1), 40);
	ck_assert_int_ge(dns_served(&e, 0), 10);
	ck_assert_int_ge(dns_served(&e, 1), 10);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* A probe's payload ("probe") in hex, as sluice-echo traces frames. */
#define T_PROBE_HEX " 70726f6265"

/* Health checks on addresses that come and go: probes flow to the
 * name's address, the address that leaves the answer drains (its
 * probes and requests answered, then QUIT) while the new one is probed
 * and up, and no client sees an error or a probe's answer. */
START_TEST(test_health_checks_follow_the_answer)
{
	struct dns_env e;
	struct harness_tls *t;
	char up[256];
	unsigned n = 0;

	dns_setup(&e, "app.test A 127.0.0.2\n");
	dns_write_config(&e, NULL, "    health_check: {interval: 100ms, timeout: 100ms, payload: probe, rise: 1, fall: 2}\n");
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	snprintf(up, sizeof(up), "sluice_backend_server_up{backend=\"app\",server=\"%s\"}", e.server[0]);
	dns_wait_series(&e, up, 1, 0);
	ck_assert_int_ge(harness_wait_count(e.fx.trace[0], T_PROBE_HEX, 3, NULL, T_IO_MS), 3);
	t = fixture_connect(&e.fx);
	for (; n < 20; n++)
		dns_round_trip(t, n);
	dns_zone(&e, "app.test A 127.0.0.3\n");
	while (dns_served(&e, 1) == 0 && n < T_MOVE_MAX)
		dns_round_trip(t, n++);
	ck_assert_int_ge(harness_wait_count(e.fx.trace[1], T_PROBE_HEX, 3, NULL, T_IO_MS), 3);
	snprintf(up, sizeof(up), "sluice_backend_server_up{backend=\"app\",server=\"%s\"}", e.server[1]);
	dns_wait_series(&e, up, 1, 0);
	ck_assert_int_eq(harness_wait_count(e.fx.trace[0], "close ", 2, NULL, T_IO_MS), 2);
	for (unsigned i = 0; i < 20; i++)
		dns_round_trip(t, n++);
	ck_assert_int_eq(dns_served(&e, 0) + dns_served(&e, 1), (int)n);
	ck_assert_double_eq(fixture_metric(&e.fx, "sluice_errors_total{code=\"UNAVAILABLE\"}"), 0);
	ck_assert_double_eq(fixture_metric(&e.fx, "sluice_errors_total{code=\"TIMEOUT\"}"), 0);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* Connections multiply: every worker resolves the name itself and opens
 * `connections` to each address it resolves to. */
START_TEST(test_workers_times_addresses)
{
	struct dns_env e;
	struct harness_tls *t;

	dns_setup(&e, "app.test A 127.0.0.2\napp.test A 127.0.0.3\n");
	e.workers = 2;
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 4);
	dns_wait_connected(&e, 1, 4);
	ck_assert_int_eq(harness_wait_count(e.fx.trace[0], "accept ", 4, NULL, T_IO_MS), 4);
	ck_assert_int_eq(harness_wait_count(e.fx.trace[1], "accept ", 4, NULL, T_IO_MS), 4);
	ck_assert_int_ge(harness_count_log(e.queries, "app.test A NOERROR 2"), 2);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 10; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0) + dns_served(&e, 1), 10);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* A name may turn into up to 64 servers, each with its connections: the
 * descriptor budget counts them all. 10000 clients, 2 workers x 64
 * addresses x 2 connections, the admin endpoint's 16 and 64 of sluice's
 * own make 10336 (10084 if the name counted as one server). */
START_TEST(test_descriptors_count_every_address)
{
	struct dns_env e;
	struct rlimit lim, low;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	ck_assert_msg(lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= 10336,
		      "the hard descriptor limit (%llu) is below the 10336 this test needs",
		      (unsigned long long)lim.rlim_max);
	dns_setup(&e, "app.test A 127.0.0.2\n");
	e.workers = 2;
	dns_write_config(&e, NULL, NULL);
	low = lim;
	low.rlim_cur = 128;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	fixture_spawn_sluice(&e.fx);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	ck_assert_int_eq(harness_wait_count(e.fx.log, "file descriptor limit raised to 10336 ", 1,
					    &e.fx.sluice, T_IO_MS), 1);
	dns_wait_connected(&e, 0, 4);
	dns_down(&e);
}
END_TEST

/* SERVFAIL, NXDOMAIN, then a nameserver that does not answer: the set of
 * the last good answer stays, each lookup is counted, and the log says so
 * once per change of outcome, not at every lookup. */
START_TEST(test_failures_keep_last_good_set)
{
	struct dns_env e;
	struct harness_tls *t;
	unsigned n = 0;
	double errors;

	dns_setup(&e, "app.test A 127.0.0.2\n");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	t = fixture_connect(&e.fx);
	dns_zone(&e, "app.test SERVFAIL\n");
	dns_wait_lookups(&e, "error", 3);
	fixture_wait_log_count(&e.fx, "cannot resolve app.test", 1);
	for (; n < 5; n++)
		dns_round_trip(t, n);
	dns_zone(&e, "app.test NXDOMAIN\n");
	dns_wait_lookups(&e, "empty", 3);
	fixture_wait_log_count(&e.fx, "cannot resolve app.test", 2);
	for (; n < 10; n++)
		dns_round_trip(t, n);
	/* Silent: every lookup times out (2 tries of 2 s). */
	errors = dns_lookups(&e, "error");
	ck_assert_int_eq(harness_signal(&e.dnsd, SIGSTOP), 0);
	dns_wait_lookups(&e, "error", errors + 1);
	fixture_wait_log_count(&e.fx, "cannot resolve app.test", 3);
	for (; n < 15; n++)
		dns_round_trip(t, n);
	ck_assert_int_eq(dns_served(&e, 0), 15);
	ck_assert_int_eq(harness_count_log(e.fx.trace[0], "close "), 0);
	dns_wait_connected(&e, 0, 2);
	ck_assert_int_eq(harness_signal(&e.dnsd, SIGCONT), 0);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* A name that does not resolve at start: the file is valid (-t), sluice
 * runs, requests get ERR UNAVAILABLE; once the zone has the name they are
 * served. */
START_TEST(test_unresolved_at_start)
{
	struct dns_env e;
	struct harness_tls *t;
	const char *bin = getenv("SLUICE_BIN");
	char check_log[PATH_MAX + 32];
	struct harness_proc check;
	int status = -1;

	dns_setup(&e, "other.test A 127.0.0.3\n");
	dns_write_config(&e, NULL, NULL);
	{
		char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-t", "-c", e.fx.conf, NULL };

		memset(&check, 0, sizeof(check));
		snprintf(check_log, sizeof(check_log), "%s/check.log", e.fx.dir);
		ck_assert_int_eq(harness_spawn(&check, check_log, argv), 0);
		ck_assert_int_eq(harness_wait_exit(&check, T_IO_MS, &status), 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sluice -t: status 0x%x", status);
	}
	fixture_spawn_sluice(&e.fx);
	dns_wait_lookups(&e, "empty", 1);
	fixture_wait_log_count(&e.fx, "cannot resolve app.test", 1);
	t = fixture_connect(&e.fx);
	ck_assert_int_eq(harness_send_frame(t, NULL, 0, "dns-0", 5), 0);
	fixture_expect_err(t, "UNAVAILABLE");
	dns_zone(&e, "app.test A 127.0.0.2\n");
	dns_wait_connected(&e, 0, 2);
	for (unsigned i = 1; i < 6; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0), 5);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* resolver.hosts_file without nameservers; a reload reads it again. */
START_TEST(test_hosts_file)
{
	struct dns_env e;
	struct harness_tls *t;
	char hosts[PATH_MAX + 32], resolver[PATH_MAX + 64];

	dns_setup(&e, "");
	snprintf(hosts, sizeof(hosts), "%s/hosts", e.fx.dir);
	ck_assert_int_eq(harness_write_file(hosts, "# test\n127.0.0.3 app.test\n"), 0);
	snprintf(resolver, sizeof(resolver), "resolver:\n  hosts_file: %s\n", hosts);
	dns_write_config(&e, resolver, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 1, 2);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 5; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 1), 5);
	ck_assert_int_eq(harness_write_file(hosts, "127.0.0.2 app.test\n"), 0);
	fixture_hup(&e.fx, 1);
	dns_wait_connected(&e, 0, 2);
	harness_tls_close(t);
	t = fixture_connect(&e.fx);
	for (unsigned i = 5; i < 10; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0), 5);
	ck_assert_int_eq(harness_count_log(e.queries, "app.test"), 0);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* A reload while the nameserver is silent: the resolved set stays, so
 * the connections to .2 are not touched at all. */
START_TEST(test_reload_keeps_resolved_set)
{
	struct dns_env e;
	struct harness_tls *t;

	dns_setup(&e, "app.test A 127.0.0.2\n");
	dns_write_config(&e, NULL, NULL);
	fixture_spawn_sluice(&e.fx);
	dns_wait_connected(&e, 0, 2);
	ck_assert_int_eq(harness_signal(&e.dnsd, SIGSTOP), 0);
	dns_write_config(&e, NULL, "    request_timeout: 20s\n");
	fixture_hup(&e.fx, 1);
	t = fixture_connect(&e.fx);
	for (unsigned i = 0; i < 5; i++)
		dns_round_trip(t, i);
	ck_assert_int_eq(dns_served(&e, 0), 5);
	ck_assert_int_eq(harness_count_log(e.fx.trace[0], "accept "), 2);
	ck_assert_int_eq(harness_count_log(e.fx.trace[0], "close "), 0);
	ck_assert_int_eq(harness_signal(&e.dnsd, SIGCONT), 0);
	harness_tls_close(t);
	dns_down(&e);
}
END_TEST

/* One case per test, so that CK_RUN_CASE runs one. */
static void
dns_add(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

static Suite *
dns_suite(void)
{
	Suite *s = suite_create("dns");

	dns_add(s, "start", test_name_resolves_at_start);
	dns_add(s, "move", test_zone_change_moves_traffic);
	dns_add(s, "drain", test_gone_address_delivers_outstanding);
	dns_add(s, "two", test_two_addresses_share_traffic);
	dns_add(s, "workers", test_workers_times_addresses);
	dns_add(s, "descriptors", test_descriptors_count_every_address);
	dns_add(s, "health", test_health_checks_follow_the_answer);
	dns_add(s, "failures", test_failures_keep_last_good_set);
	dns_add(s, "unresolved", test_unresolved_at_start);
	dns_add(s, "hosts", test_hosts_file);
	dns_add(s, "reload", test_reload_keeps_resolved_set);
	return s;
}

int
main(void)
{
	fixture_set_deadlines(T_START_MS, 20000);
	return fixture_run_suite(dns_suite());
}
