/*
 * check_route — listen[].routes matching (SPEC §8) on hand-made listener
 * configurations: exact and wildcard server names (one label, any case),
 * ALPN, both together, the first match winning, and clients without a
 * name or a protocol falling through to the listener's backend.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/route.h>

#include "../fixture.h"

struct sni_case {
	const char *pattern;
	const char *sni;
	bool matches;
};

static const struct sni_case sni_cases[] = {
	{ "api.example.com", "api.example.com", true },
	{ "api.example.com", "API.Example.COM", true },
	{ "api.example.com", "api.example.com.", false },
	{ "api.example.com", "xapi.example.com", false },
	{ "api.example.com", "example.com", false },
	{ "api.example.com", NULL, false },
	{ "*.example.com", "a.example.com", true },
	{ "*.example.com", "A.EXAMPLE.com", true },
	{ "*.example.com", "example.com", false },
	{ "*.example.com", "a.b.example.com", false },
	{ "*.example.com", ".example.com", false },
	{ "*.example.com", "a.example.org", false },
	{ "*.example.com", "aexample.com", false },
	{ "*.example.com", "*.example.com", true },
	{ "*.example.com", NULL, false },
};

START_TEST(test_sni)
{
	const struct sni_case *c = &sni_cases[_i];

	ck_assert_msg(route_sni_matches(c->pattern, c->sni) == c->matches, "%s against %s: expected %s",
		      c->sni ? c->sni : "(no name)", c->pattern, c->matches ? "a match" : "none");
}
END_TEST

/* The routes of one listener: exact name, wildcard, ALPN only, name and
 * ALPN together, in this order. */
static struct config_route routes[] = {
	{ .sni = "admin.example.com", .alpn = "sluice/2", .backend_name = "admin2" },
	{ .sni = "admin.example.com", .backend_name = "admin" },
	{ .sni = "*.tenants.example", .backend_name = "tenants" },
	{ .alpn = "sluice/2", .backend_name = "v2" },
};

static const struct config_listener listener = {
	.backend_name = "app",
	.routes = routes,
	.n_routes = sizeof(routes) / sizeof(routes[0]),
};

/* The backend a client with this name and protocol is placed on. */
static const char *
placed(const char *sni, const char *alpn)
{
	const struct config_route *r = route_match(&listener, sni, (const unsigned char *)alpn,
						   alpn ? strlen(alpn) : 0);

	return r != NULL ? r->backend_name : listener.backend_name;
}

START_TEST(test_match)
{
	ck_assert_str_eq(placed("admin.example.com", NULL), "admin");
	ck_assert_str_eq(placed("Admin.Example.Com", "sluice/1"), "admin");
	/* The first route that matches wins, even where a later one would. */
	ck_assert_str_eq(placed("admin.example.com", "sluice/2"), "admin2");
	ck_assert_str_eq(placed("a.tenants.example", NULL), "tenants");
	ck_assert_str_eq(placed("a.tenants.example", "sluice/2"), "tenants");
	ck_assert_str_eq(placed("x.a.tenants.example", "sluice/2"), "v2");
	ck_assert_str_eq(placed(NULL, "sluice/2"), "v2");
	/* A protocol is compared whole: a prefix of it is another one. */
	ck_assert_str_eq(placed(NULL, "sluice/"), "app");
	ck_assert_str_eq(placed(NULL, "sluice/22"), "app");
	ck_assert_str_eq(placed("tenants.example", NULL), "app");
	ck_assert_str_eq(placed(NULL, NULL), "app");
	ck_assert_str_eq(placed("other.example.com", "sluice/1"), "app");
}
END_TEST

START_TEST(test_no_routes)
{
	const struct config_listener plain = { .backend_name = "app" };

	ck_assert_ptr_null(route_match(&plain, "admin.example.com", (const unsigned char *)"h2", 2));
}
END_TEST

static Suite *
route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("match");

	tcase_add_loop_test(tc, test_sni, 0, (int)(sizeof(sni_cases) / sizeof(sni_cases[0])));
	tcase_add_test(tc, test_match);
	tcase_add_test(tc, test_no_routes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(route_suite());
}
