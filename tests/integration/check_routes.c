/*
 * check_routes — listen[].routes (SPEC §8) through the real binary: two
 * sluice-echo backends, "app" (echo 0, the listener's backend) and
 * "admin" (echo 1), behind one listener whose routes pick by exact server
 * name, wildcard name, ALPN, and both; a client that matches none stays on
 * app. Which backend served a request is read from the echos' traces. A
 * reload that moves a route sends new clients the new way while a client
 * already placed stays where it was.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../fixture.h"
#include "../harness.h"

#define ECHO_APP 0
#define ECHO_ADMIN 1

/* One listener (ALPN sluice/1 and sluice/2) with these routes (lines
 * under "routes:"), two workers, backends app and admin; routes NULL:
 * neither routes nor backend admin. */
static void
routes_conf(const struct fixture *fx, const char *routes, char *out, size_t len)
{
	char admin[128];
	int n;

	snprintf(admin, sizeof(admin),
		 "  admin:\n    servers:\n      - address: 127.0.0.1:%u\n    connections: 1\n",
		 fx->echo_port[ECHO_ADMIN]);
	n = snprintf(out, len,
		     "workers: 2\n"
		     "listen:\n"
		     "  - address: 127.0.0.1:%u\n"
		     "    backend: app\n"
		     "    tls:\n"
		     "      certificates:\n"
		     "        - cert: server.crt\n"
		     "          key: server.key\n"
		     "      alpn: [sluice/1, sluice/2]\n"
		     "%s%s"
		     "backends:\n"
		     "  app:\n    servers:\n      - address: 127.0.0.1:%u\n    connections: 1\n"
		     "%s"
		     "shutdown:\n  grace_timeout: 2s\n"
		     "log:\n  level: debug\n",
		     fx->port, routes ? "    routes:\n" : "", routes ? routes : "", fx->echo_port[ECHO_APP],
		     routes ? admin : "");
	ck_assert_msg(n > 0 && (size_t)n < len, "configuration text too long");
}

static void
routes_up(struct fixture *fx, const char *routes)
{
	const struct fixture_opts o = { .n_echos = 2 };
	char text[4096];

	fixture_prepare(fx, &o);
	routes_conf(fx, routes, text, sizeof(text));
	fixture_start_text(fx, text);
}

static struct harness_tls *
connect_as(const struct fixture *fx, const char *sni, const char *alpn)
{
	const struct harness_tls_opts o = { .sni = sni, .alpn = alpn };
	struct harness_tls *t = harness_tls_connect_opts(fx->port, &o, T_IO_MS);

	ck_assert_msg(t != NULL, "connect (sni %s, alpn %s): %s", sni ? sni : "none",
		      alpn ? alpn : "none", harness_last_error());
	return t;
}

/* The echo that received the request whose payload is text; fails unless
 * exactly one did. */
static int
served_by(const struct fixture *fx, const char *text)
{
	int app = harness_trace_conn_of(fx->trace[ECHO_APP], text, strlen(text));
	int admin = harness_trace_conn_of(fx->trace[ECHO_ADMIN], text, strlen(text));

	ck_assert_msg((app >= 0) != (admin >= 0), "%s reached app: %s, admin: %s", text,
		      app >= 0 ? "yes" : "no", admin >= 0 ? "yes" : "no");
	return app >= 0 ? ECHO_APP : ECHO_ADMIN;
}

/* A round trip of text on t, then the backend that answered it. */
static int
round_trip_on(const struct fixture *fx, struct harness_tls *t, const char *text)
{
	fixture_round_trip(t, text);
	return served_by(fx, text);
}

struct route_case {
	const char *sni;
	const char *alpn;
	int echo;
};

/* Routes in order: an exact name, a wildcard, a name with a protocol,
 * then a protocol alone. */
static const char routes_all[] =
	"      - {sni: exact.example.com, backend: admin}\n"
	"      - {sni: \"*.wild.example\", backend: admin}\n"
	"      - {sni: both.example.com, alpn: sluice/1, backend: admin}\n"
	"      - {alpn: sluice/2, backend: admin}\n";

static const struct route_case route_cases[] = {
	{ "exact.example.com", NULL, ECHO_ADMIN },
	{ "EXACT.Example.COM", "sluice/1", ECHO_ADMIN },
	{ "other.example.com", "sluice/1", ECHO_APP },
	{ "a.wild.example", NULL, ECHO_ADMIN },
	{ "wild.example", NULL, ECHO_APP },
	{ "a.b.wild.example", "sluice/1", ECHO_APP },
	{ "both.example.com", "sluice/1", ECHO_ADMIN },
	{ "both.example.com", NULL, ECHO_APP },
	{ "localhost", "sluice/2", ECHO_ADMIN },
	{ NULL, "sluice/2", ECHO_ADMIN },
	{ NULL, "sluice/1", ECHO_APP },
	{ NULL, NULL, ECHO_APP },
};

/* Every client lands on the backend of the first route that matches its
 * name and protocol, else on the listener's, and stays there for all its
 * requests. Against a sluice that ignores routes, every client reaches
 * app. */
START_TEST(test_routes_by_name_and_alpn)
{
	struct fixture fx;
	const int n = (int)(sizeof(route_cases) / sizeof(route_cases[0]));

	routes_up(&fx, routes_all);
	for (int i = 0; i < n; i++) {
		const struct route_case *c = &route_cases[i];
		struct harness_tls *t = connect_as(&fx, c->sni, c->alpn);
		char text[64];

		for (int k = 0; k < 3; k++) {
			snprintf(text, sizeof(text), "route-%d-%d", i, k);
			ck_assert_msg(round_trip_on(&fx, t, text) == c->echo,
				      "client %d (sni %s, alpn %s): request %d went to %s", i,
				      c->sni ? c->sni : "none", c->alpn ? c->alpn : "none", k,
				      c->echo == ECHO_APP ? "admin, not app" : "app, not admin");
		}
		harness_tls_close(t);
	}
	ck_assert_int_ge(fixture_count_log(&fx, "routed to backend admin"), 6);
	fixture_down(&fx);
}
END_TEST

/* A reload that points a route elsewhere: clients that come after it go
 * the new way, a client placed before it stays on its backend for every
 * later request (SPEC §8). */
START_TEST(test_routes_reload_keeps_placed_clients)
{
	struct fixture fx;
	char text[4096];
	struct harness_tls *before, *after;

	routes_up(&fx, "      - {sni: moved.example, backend: admin}\n");
	before = connect_as(&fx, "moved.example", NULL);
	ck_assert_int_eq(round_trip_on(&fx, before, "before-1"), ECHO_ADMIN);

	routes_conf(&fx, "      - {sni: moved.example, backend: app}\n"
		    "      - {sni: new.example, backend: admin}\n", text, sizeof(text));
	fixture_write_text(&fx, text);
	fixture_hup(&fx, 1);

	after = connect_as(&fx, "moved.example", NULL);
	ck_assert_int_eq(round_trip_on(&fx, after, "after-1"), ECHO_APP);
	ck_assert_int_eq(round_trip_on(&fx, before, "before-2"), ECHO_ADMIN);
	harness_tls_close(after);
	after = connect_as(&fx, "new.example", NULL);
	ck_assert_int_eq(round_trip_on(&fx, after, "after-2"), ECHO_ADMIN);
	ck_assert_int_eq(round_trip_on(&fx, before, "before-3"), ECHO_ADMIN);
	harness_tls_close(after);
	harness_tls_close(before);
	fixture_down(&fx);
}
END_TEST

/* A reload that removes the routed backend altogether: the client placed
 * on it keeps being served by it (its pool drains only once unused), and
 * sluice then lets it go without a complaint. */
START_TEST(test_routes_reload_removes_backend)
{
	struct fixture fx;
	char text[4096];
	struct harness_tls *placed;

	routes_up(&fx, "      - {sni: gone.example, backend: admin}\n");
	placed = connect_as(&fx, "gone.example", NULL);
	ck_assert_int_eq(round_trip_on(&fx, placed, "placed-1"), ECHO_ADMIN);

	/* The same file without the route and without backend admin. */
	routes_conf(&fx, NULL, text, sizeof(text));
	fixture_write_text(&fx, text);
	fixture_hup(&fx, 1);

	ck_assert_int_eq(round_trip_on(&fx, placed, "placed-2"), ECHO_ADMIN);
	{
		struct harness_tls *t = connect_as(&fx, "gone.example", NULL);

		ck_assert_int_eq(round_trip_on(&fx, t, "newcomer"), ECHO_APP);
		harness_tls_close(t);
	}
	ck_assert_int_eq(harness_send_frame(placed, "QUIT", 4, NULL, 0), 0);
	fixture_expect_quit(placed);
	harness_tls_close(placed);
	/* Its last user gone, the removed backend's pool drains: QUIT to
	 * echo admin, whose connections then close. */
	ck_assert_int_eq(harness_wait_count(fx.trace[ECHO_ADMIN], "close ", 2, &fx.sluice, T_IO_MS), 2);
	fixture_down(&fx);
}
END_TEST

static Suite *
routes_suite(void)
{
	Suite *s = suite_create("routes");
	TCase *tc = tcase_create("integration");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_routes_by_name_and_alpn);
	tcase_add_test(tc, test_routes_reload_keeps_placed_clients);
	tcase_add_test(tc, test_routes_reload_removes_backend);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(routes_suite());
}
