/*
 * check_probes — the decisions behind /livez and /readyz on hand-made
 * workers and pools, with a clock the test sets: a heartbeat older than
 * PROBES_STUCK_MS fails /livez naming the worker, a finished worker does
 * not count; a backend that some worker sees with no server up fails
 * /readyz naming it, routed backends included.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/config.h>
#include <sluice/pool.h>
#include <sluice/probes.h>
#include <sluice/worker.h>

#include "../fixture.h"

#define T_WORKERS 2

static struct worker t_workers[T_WORKERS];
static struct worker *t_list[T_WORKERS];
/* Per worker, the pools of backends "app" and "admin", same index. */
static struct pool t_pools[T_WORKERS][2];
static struct pool *t_pool_list[T_WORKERS][2];

static void
setup(void)
{
	static const char *const names[2] = { "app", "admin" };

	memset(t_workers, 0, sizeof(t_workers));
	memset(t_pools, 0, sizeof(t_pools));
	for (unsigned i = 0; i < T_WORKERS; i++) {
		struct worker *w = &t_workers[i];

		w->id = i;
		ck_assert_int_eq(pthread_mutex_init(&w->loop.structure_lock, NULL), 0);
		for (unsigned b = 0; b < 2; b++) {
			t_pools[i][b].name = (char *)names[b];
			t_pools[i][b].servers_up = 1;
			t_pool_list[i][b] = &t_pools[i][b];
		}
		w->pools = t_pool_list[i];
		w->n_pools = 2;
		t_list[i] = w;
	}
}

static void
teardown(void)
{
	for (unsigned i = 0; i < T_WORKERS; i++)
		pthread_mutex_destroy(&t_workers[i].loop.structure_lock);
}

START_TEST(test_stuck)
{
	ck_assert(!probes_stuck(10000, 10000));
	ck_assert(!probes_stuck(10000, 10000 - PROBES_STUCK_MS));
	ck_assert(probes_stuck(10000, 10000 - PROBES_STUCK_MS - 1));
	/* A beat taken after the caller read its clock is fresh. */
	ck_assert(!probes_stuck(10000, 10050));
}
END_TEST

START_TEST(test_live)
{
	char why[128] = "";
	const uint64_t now = 1000000;

	t_workers[0].heartbeat_ms = now - 100;
	t_workers[1].heartbeat_ms = now - 40;
	ck_assert_int_eq(probes_live(t_list, T_WORKERS, now, why, sizeof(why)), 1);
	t_workers[1].heartbeat_ms = now - 7300;
	ck_assert_int_eq(probes_live(t_list, T_WORKERS, now, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "worker 1: event loop stuck for 7.3 s");
	/* Done draining: its loop has ended for good, and rightly. */
	t_workers[1].finished = 1;
	ck_assert_int_eq(probes_live(t_list, T_WORKERS, now, why, sizeof(why)), 1);
}
END_TEST

static struct config_route t_routes[] = {
	{ .sni = "admin.example.com", .backend_name = "admin" },
};

START_TEST(test_ready)
{
	struct config_listener lc = { .backend_name = "app" };
	struct config cfg = { .listeners = &lc, .n_listeners = 1 };
	char why[128] = "";

	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 1);
	/* A backend no listener uses is not asked about. */
	t_pools[0][1].servers_up = 0;
	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 1);
	/* A routed backend is. */
	lc.routes = t_routes;
	lc.n_routes = 1;
	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "backend admin: no server up");
	t_pools[0][1].servers_up = 2;
	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 1);
	/* One worker without a server up is enough: its clients would get
	 * ERR UNAVAILABLE. */
	t_pools[1][0].servers_up = 0;
	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 0);
	ck_assert_str_eq(why, "backend app: no server up");
	/* A worker without a pool of that name (a reload under way) gives
	 * no verdict. */
	t_pools[1][0].servers_up = 1;
	t_workers[1].n_pools = 1;
	t_pools[1][0].name = "renamed";
	ck_assert_int_eq(probes_ready(t_list, T_WORKERS, &cfg, why, sizeof(why)), 1);
}
END_TEST

static Suite *
probes_suite(void)
{
	Suite *s = suite_create("probes");
	TCase *tc = tcase_create("decisions");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stuck);
	tcase_add_test(tc, test_live);
	tcase_add_test(tc, test_ready);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(probes_suite());
}
