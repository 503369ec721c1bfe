/*
 * check_pool — the pool's placement, fairness and timeouts, without a
 * socket: proxy/pool.c linked with tests/unit/fake_upstream.c, clients that
 * are bare pool_client records, and a clock the test sets (loop->now_us,
 * the now_ms handed to pool_tick). Each test states the promise of SPEC §1,
 * §2 or §4 it checks.
 */
#include <arpa/inet.h>
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/config.h>
#include <sluice/loop.h>
#include <sluice/pool.h>
#include <sluice/request.h>
#include <sluice/upstream.h>

#include "../fixture.h"
#include "fake_upstream.h"

#define MAX_SERVERS 3
#define MAX_ERRORS 64

/* A client as the pool sees it: its placement record, what the pool told
 * it (resumed, errors sluice answered with), its requests in order. */
struct tclient {
	struct pool_client pc;
	const char *name;
	unsigned resumed;
	unsigned n_errors;
	enum frame_err_code errors[MAX_ERRORS];
	uint32_t error_ids[MAX_ERRORS];  /* the request each error answered */
	unsigned resume_order;           /* when it was last resumed (t_resumes) */
};

static struct loop *t_loop;
static struct config t_cfg;
static struct config_backend t_be;
static struct config_server t_servers[MAX_SERVERS];
static struct pool *t_p;
static unsigned t_resumes;

static struct tclient *
tclient_of(struct pool_client *pc)
{
	return (struct tclient *)pc;
}

static void
t_resume(struct pool_client *pc)
{
	tclient_of(pc)->resumed++;
	tclient_of(pc)->resume_order = ++t_resumes;
}

/* sluice answers req itself: noted, and the request ends here. */
static void
t_respond_error(struct request *req, enum frame_err_code code, const char *message)
{
	struct tclient *c = tclient_of(pool_client_of(req->client));

	(void)message;
	ck_assert_uint_lt(c->n_errors, MAX_ERRORS);
	c->errors[c->n_errors] = code;
	c->error_ids[c->n_errors++] = req->len;
	request_free(&t_loop->requests, req);
}

static const struct pool_client_ops t_ops = { .resume = t_resume };
static const struct request_client_ops t_req_ops = { .respond_error = t_respond_error };

static void
tclient_init(struct tclient *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	pool_client_init(&c->pc, &t_req_ops, &t_ops);
	c->name = name;
}

/* The clock both the worker's batch time and the tick read. */
static void
t_clock_ms(uint64_t ms)
{
	t_loop->now_us = ms * 1000;
}

/* A pool of n servers x conns connections, every one connected. */
static void
t_setup(unsigned n, unsigned conns, unsigned max_pending)
{
	t_loop = calloc(1, sizeof(*t_loop));
	ck_assert_ptr_nonnull(t_loop);
	pthread_mutex_init(&t_loop->structure_lock, NULL);
	t_clock_ms(1000000);
	memset(&t_cfg, 0, sizeof(t_cfg));
	t_cfg.refs = 1;   /* the test's: the snapshot is never freed */
	t_cfg.grace_timeout_ms = 5000;
	memset(&t_be, 0, sizeof(t_be));
	t_be.name = "app";
	t_be.servers = t_servers;
	t_be.n_servers = n;
	t_be.connections = conns;
	t_be.queue_timeout_ms = 5000;
	t_be.request_timeout_ms = 30000;
	t_be.max_pending = max_pending;
	t_cfg.backends = &t_be;
	t_cfg.n_backends = 1;
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_in *in = (struct sockaddr_in *)&t_servers[i].addr.ss;
		static char text[MAX_SERVERS][32];

		memset(&t_servers[i], 0, sizeof(t_servers[i]));
		snprintf(text[i], sizeof(text[i]), "127.0.0.1:%u", 9000 + i);
		t_servers[i].addr.text = text[i];
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)(9000 + i));
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		t_servers[i].addr.len = sizeof(*in);
	}
	fake_initial_state = UPSTREAM_CONNECTED;
	t_p = pool_new(t_loop, &t_cfg, &t_be);
	ck_assert_ptr_nonnull(t_p);
	t_resumes = 0;
}

/* Every request is answered or errored by now: nothing is left pending. */
static void
t_teardown(void)
{
	ck_assert_uint_eq(t_p->pending, 0);
	ck_assert_uint_eq(t_loop->stats.requests_pending, 0);
	pool_free(t_p);
	request_cache_clear(&t_loop->requests);
	pthread_mutex_destroy(&t_loop->structure_lock);
	free(t_loop);
}

/* The connection j of server i. */
static struct upstream *
t_conn(unsigned i, unsigned j)
{
	return t_p->servers[i]->ups[j];
}

/* Client c sends request `id` (frame length id, id >= 6): placed, its
 * bytes moved at once (one request per run). Returns the request. */
static struct request *
t_send(struct tclient *c, uint32_t id)
{
	struct evbuffer *src = evbuffer_new();
	struct fstream_run run = POOL_RUN_INIT;
	struct request *req = request_new(&t_loop->requests);
	static const uint8_t zeros[256];

	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(req);
	ck_assert_uint_le(id, sizeof(zeros));
	req->client = &c->pc.rc;
	req->len = id;
	ck_assert_int_eq(evbuffer_add(src, zeros, id), 0);
	pool_place(t_p, req, src, &run);
	fstream_run_flush(&run, src);
	ck_assert_uint_eq(evbuffer_get_length(src), 0);
	evbuffer_free(src);
	return req;
}

/* u's backend answers its oldest request, which must be `id`. */
static void
t_answer(struct upstream *u, uint32_t id)
{
	struct request *req = fake_answer(u);

	ck_assert_uint_eq(req->len, id);
	request_free(&t_loop->requests, req);
}

/* The connection req went to. */
static struct upstream *
t_on(const struct request *req)
{
	ck_assert_int_eq(req->state, REQUEST_WRITTEN);
	return req->upstream;
}

/* ---- placement ------------------------------------------------------------- */

/* SPEC §2: least outstanding requests, ties by round robin. Four clients
 * with nothing outstanding on 2 x 2 idle connections take one connection
 * each; a fifth goes to one of them, and once one connection has fewer
 * outstanding than the others it is the one chosen. */
START_TEST(test_least_outstanding_round_robin)
{
	struct tclient c[6];
	struct upstream *seen[4];

	t_setup(2, 2, 100);
	for (int i = 0; i < 6; i++)
		tclient_init(&c[i], "c");
	for (int i = 0; i < 4; i++) {
		seen[i] = t_on(t_send(&c[i], 10 + (uint32_t)i));
		for (int j = 0; j < i; j++)
			ck_assert_ptr_ne(seen[i], seen[j]);
	}
	/* All four at 1: the fifth makes one of them 2. Answering another
	 * one leaves it the only one at 0: the next client goes there. */
	t_send(&c[4], 20);
	for (int i = 0; i < 4; i++) {
		if (seen[i]->outstanding == 1) {
			t_answer(seen[i], 10 + (uint32_t)i);
			ck_assert_ptr_eq(t_on(t_send(&c[5], 21)), seen[i]);
			break;
		}
	}
	for (int i = 0; i < 4; i++) {
		struct request *r;

		while ((r = TAILQ_FIRST(&seen[i]->fifo)) != NULL)
			t_answer(seen[i], r->len);
	}
	t_teardown();
}
END_TEST

/* SPEC §1 execution order: while a client has requests outstanding on a
 * connection, its next requests go to that same one, even when another
 * is idle; once all are answered it may be placed anywhere. */
START_TEST(test_sticky_while_outstanding)
{
	struct tclient a, b;
	struct upstream *u;

	t_setup(1, 2, 100);
	tclient_init(&a, "a");
	tclient_init(&b, "b");
	u = t_on(t_send(&a, 10));
	for (uint32_t id = 11; id < 15; id++)
		ck_assert_ptr_eq(t_on(t_send(&a, id)), u);
	ck_assert_ptr_eq(a.pc.sticky, u);
	ck_assert_uint_eq(a.pc.n_sticky, 5);
	/* b goes to the idle one. */
	ck_assert_ptr_ne(t_on(t_send(&b, 30)), u);
	for (uint32_t id = 10; id < 15; id++)
		t_answer(u, id);
	ck_assert_ptr_null(a.pc.sticky);
	t_answer(t_conn(0, 0) == u ? t_conn(0, 1) : t_conn(0, 0), 30);
	/* The wire carries each request's bytes, in order. */
	ck_assert_uint_eq(evbuffer_get_length(fake_wire(u)), 10 + 11 + 12 + 13 + 14);
	t_teardown();
}
END_TEST

/* A burst for one connection moves in one run: pool_place only queues the
 * bytes, fstream_run_flush moves them all; a request for another connection
 * flushes the run first, so each connection's wire holds its own frames. */
START_TEST(test_run_moves_a_burst_once)
{
	struct tclient a, b;
	struct evbuffer *src = evbuffer_new();
	struct fstream_run run = POOL_RUN_INIT;
	static const uint8_t bytes[64];
	struct request *r[4];
	struct upstream *ua, *ub;

	t_setup(1, 2, 100);
	tclient_init(&a, "a");
	tclient_init(&b, "b");
	ck_assert_int_eq(evbuffer_add(src, bytes, 10 + 11 + 12 + 13), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = request_new(&t_loop->requests);
		r[i]->client = i < 3 ? &a.pc.rc : &b.pc.rc;
		r[i]->len = 10 + (uint32_t)i;
	}
	pool_place(t_p, r[0], src, &run);
	pool_place(t_p, r[1], src, &run);
	pool_place(t_p, r[2], src, &run);
	ua = t_on(r[0]);
	ck_assert_uint_eq(run.len, 33);
	ck_assert_uint_eq(evbuffer_get_length(fake_wire(ua)), 0);
	pool_place(t_p, r[3], src, &run);   /* another client, another connection */
	ub = t_on(r[3]);
	ck_assert_ptr_ne(ua, ub);
	ck_assert_uint_eq(evbuffer_get_length(fake_wire(ua)), 33);
	fstream_run_flush(&run, src);
	ck_assert_uint_eq(evbuffer_get_length(fake_wire(ub)), 13);
	ck_assert_uint_eq(evbuffer_get_length(src), 0);
	evbuffer_free(src);
	for (int i = 0; i < 3; i++)
		t_answer(ua, 10 + (uint32_t)i);
	t_answer(ub, 13);
	t_teardown();
}
END_TEST

/* ---- fairness ---------------------------------------------------------------- */

/* SPEC §4 fairness: client H pipelines until the pool holds max_pending
 * (8) on its connection; it is congested. Client L, with nothing in the
 * pool, is not: an idle connection takes its request at once. A client
 * with something in the pool is congested like H. */
START_TEST(test_idle_connection_despite_max_pending)
{
	struct tclient h, l, m;
	struct upstream *uh;
	uint32_t id;

	t_setup(1, 2, 8);
	tclient_init(&h, "h");
	tclient_init(&l, "l");
	tclient_init(&m, "m");
	uh = t_on(t_send(&h, 10));
	for (id = 11; id < 18; id++)
		t_send(&h, id);
	ck_assert_uint_eq(t_p->pending, 8);
	ck_assert(pool_congested(t_p, &h.pc));
	ck_assert(!pool_congested(t_p, &l.pc));
	ck_assert_ptr_ne(t_on(t_send(&l, 40)), uh);
	/* Now both connections are busy: m, with nothing in the pool, waits. */
	ck_assert(pool_congested(t_p, &m.pc));
	ck_assert(pool_congested(t_p, &l.pc));
	t_answer(t_conn(0, 0) == uh ? t_conn(0, 1) : t_conn(0, 0), 40);
	for (id = 10; id < 18; id++)
		t_answer(uh, id);
	t_teardown();
}
END_TEST

/* Paused clients resume with those that have nothing in the pool first:
 * H (paused first, requests outstanding) must not be resumed ahead of L
 * and M (paused after, nothing outstanding), or it refills the pool first
 * every time it drains. Resuming happens once pending falls to three
 * quarters of max_pending. */
START_TEST(test_wake_order_favours_idle_clients)
{
	struct tclient h, l, m;
	struct upstream *uh;
	uint32_t id;

	t_setup(1, 1, 8);
	tclient_init(&h, "h");
	tclient_init(&l, "l");
	tclient_init(&m, "m");
	uh = t_on(t_send(&h, 10));
	for (id = 11; id < 18; id++)
		t_send(&h, id);
	ck_assert(pool_congested(t_p, &h.pc));
	pool_pause(t_p, &h.pc);
	ck_assert(pool_congested(t_p, &l.pc));
	pool_pause(t_p, &l.pc);
	pool_pause(t_p, &m.pc);
	t_answer(uh, 10);
	ck_assert_uint_eq(h.resumed + l.resumed + m.resumed, 0);   /* 7 > 6 */
	t_answer(uh, 11);                                         /* 6: wake */
	ck_assert_uint_eq(h.resumed, 1);
	ck_assert_uint_eq(l.resumed, 1);
	ck_assert_uint_eq(m.resumed, 1);
	ck_assert_uint_lt(l.resume_order, h.resume_order);
	ck_assert_uint_lt(m.resume_order, h.resume_order);
	ck_assert(!pool_client_paused(&h.pc));
	for (id = 12; id < 18; id++)
		t_answer(uh, id);
	t_teardown();
}
END_TEST

/* ---- timeouts, with the test's clock ---------------------------------------- */

/* queue_timeout: a request that waited 5 s for a connection is answered
 * ERR BUSY; one that waited less is not, and is written once a
 * connection can take it. */
START_TEST(test_queue_timeout)
{
	struct tclient a, b;
	struct upstream *u;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	tclient_init(&b, "b");
	u = t_conn(0, 0);
	fake_set_congested(u, true);
	t_clock_ms(1000000);
	t_send(&a, 10);
	t_clock_ms(1003000);
	t_send(&b, 20);
	ck_assert_uint_eq(t_p->n_waiting, 2);
	pool_tick(t_p, 1004999);
	ck_assert_uint_eq(a.n_errors, 0);
	pool_tick(t_p, 1005000);
	ck_assert_uint_eq(a.n_errors, 1);
	ck_assert_int_eq(a.errors[0], FRAME_ERR_BUSY);
	ck_assert_uint_eq(b.n_errors, 0);
	ck_assert_uint_eq(t_loop->stats.timeouts_queue, 1);
	fake_set_congested(u, false);
	ck_assert_uint_eq(t_p->n_waiting, 0);
	t_answer(u, 20);
	t_teardown();
}
END_TEST

/* SPEC §1 execution order with ERR BUSY: client A's r1 and r2 wait, r2
 * queued 2 s after r1. When r1 has waited queue_timeout, r2 is answered
 * ERR BUSY with it, though it waited less: written later, r2 would have
 * been executed while r1, sent before it, never was. Client B's request,
 * queued between them, keeps waiting and is written when the connection
 * drains. */
START_TEST(test_busy_takes_later_requests_along)
{
	struct tclient a, b;
	struct upstream *u;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	tclient_init(&b, "b");
	u = t_conn(0, 0);
	fake_set_congested(u, true);
	t_clock_ms(1000000);
	t_send(&a, 10);
	t_clock_ms(1001000);
	t_send(&b, 30);
	t_clock_ms(1002000);
	t_send(&a, 11);
	pool_tick(t_p, 1005000);
	ck_assert_uint_eq(a.n_errors, 2);
	ck_assert_uint_eq(a.error_ids[0], 10);
	ck_assert_uint_eq(a.error_ids[1], 11);
	ck_assert_int_eq(a.errors[1], FRAME_ERR_BUSY);
	ck_assert_uint_eq(a.pc.n_waiting, 0);
	ck_assert_uint_eq(b.n_errors, 0);
	fake_set_congested(u, false);
	ck_assert_uint_eq(evbuffer_get_length(fake_wire(u)), 30);
	t_answer(u, 30);
	t_teardown();
}
END_TEST

/* request_timeout: the head of a connection's FIFO unanswered for 30 s
 * fails that connection: the head ERR TIMEOUT, the others written on it
 * ERR UNAVAILABLE. */
START_TEST(test_request_timeout)
{
	struct tclient a;
	struct upstream *u;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	t_clock_ms(1000000);
	u = t_on(t_send(&a, 10));
	t_clock_ms(1010000);
	t_send(&a, 11);
	pool_tick(t_p, 1029999);
	ck_assert_uint_eq(a.n_errors, 0);
	pool_tick(t_p, 1030000);
	ck_assert_uint_eq(a.n_errors, 2);
	ck_assert_int_eq(a.errors[0], FRAME_ERR_TIMEOUT);
	ck_assert_int_eq(a.errors[1], FRAME_ERR_UNAVAILABLE);
	ck_assert_int_eq(u->state, UPSTREAM_BACKOFF);
	ck_assert_ptr_null(a.pc.sticky);
	t_teardown();
}
END_TEST

/* Found by reading upstream_tick: the tick compared the now_ms it read
 * once with the write time of requests written during the same tick. Here
 * client A's r1 is on connection 0, which a reload retires, so A's r2
 * waits; at the tick r1 times out, connection 0 fails, and r2 is written
 * on connection 1 with the clock as it is by then (5 ms after the tick's
 * now). Connection 1 is ticked next: its head was written "in the future",
 * and the unsigned difference wrapped to an age of centuries: a healthy
 * connection failed with ERR TIMEOUT, one after another. */
START_TEST(test_request_written_during_tick_not_timed_out)
{
	struct tclient a;
	struct upstream *u0, *u1;

	t_setup(1, 2, 100);
	t_be.queue_timeout_ms = 60000;
	tclient_init(&a, "a");
	u0 = t_conn(0, 0);
	u1 = t_conn(0, 1);
	t_clock_ms(1000000);
	t_p->rr = 0;
	ck_assert_ptr_eq(t_on(t_send(&a, 10)), u0);
	upstream_retire(u0);
	ck_assert_int_eq(u0->state, UPSTREAM_RETIRING);
	t_clock_ms(1020000);
	t_send(&a, 11);
	ck_assert_uint_eq(a.pc.n_waiting, 1);
	/* The tick's now is 1030000; what it writes is stamped 1030005. */
	t_clock_ms(1030005);
	pool_tick(t_p, 1030000);
	ck_assert_uint_eq(a.n_errors, 1);
	ck_assert_int_eq(a.errors[0], FRAME_ERR_TIMEOUT);
	ck_assert_ptr_eq(t_on(TAILQ_FIRST(&u1->fifo)), u1);
	ck_assert_int_eq(u1->state, UPSTREAM_CONNECTED);
	t_answer(u1, 11);
	t_teardown();
}
END_TEST

/* ---- failing and retiring connections ---------------------------------------- */

/* A connection fails: its written requests are answered ERR UNAVAILABLE
 * (never replayed), its clients are free to go elsewhere, and a client's
 * request that waited for it (its sticky connection was retiring) goes to
 * a live one at once instead of waiting for queue_timeout. */
START_TEST(test_failed_connection_frees_its_clients)
{
	struct tclient a, b;
	struct upstream *u0, *u1;

	t_setup(1, 2, 100);
	tclient_init(&a, "a");
	tclient_init(&b, "b");
	t_p->rr = 0;
	u0 = t_on(t_send(&a, 10));
	u1 = u0 == t_conn(0, 0) ? t_conn(0, 1) : t_conn(0, 0);
	ck_assert_ptr_eq(t_on(t_send(&b, 20)), u1);
	fake_fail(u0);
	ck_assert_uint_eq(a.n_errors, 1);
	ck_assert_int_eq(a.errors[0], FRAME_ERR_UNAVAILABLE);
	ck_assert_ptr_null(a.pc.sticky);
	ck_assert_ptr_eq(t_on(t_send(&a, 11)), u1);
	t_answer(u1, 20);
	t_answer(u1, 11);
	t_teardown();
}
END_TEST

/* Every server down: a new request is answered ERR UNAVAILABLE at once,
 * and requests that waited are answered when the last connection fails;
 * a server that comes back takes requests again. */
START_TEST(test_all_down_unavailable)
{
	struct tclient a;
	struct upstream *u;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	u = t_conn(0, 0);
	fake_set_congested(u, true);
	t_send(&a, 10);
	ck_assert_uint_eq(t_p->n_waiting, 1);
	u->state = UPSTREAM_CONNECTING;
	u->congested = 0;
	fake_fail(u);   /* a failed connect: the server is down */
	ck_assert(t_p->servers[0]->down);
	ck_assert_uint_eq(a.n_errors, 1);
	t_send(&a, 11);
	ck_assert_uint_eq(a.n_errors, 2);
	ck_assert_int_eq(a.errors[1], FRAME_ERR_UNAVAILABLE);
	fake_connect(u);
	ck_assert(!t_p->servers[0]->down);
	t_answer(t_on(t_send(&a, 12)), 12);
	t_teardown();
}
END_TEST

/* A backend with no server at all (a name that resolves to nothing yet,
 * or no longer): requests get ERR UNAVAILABLE at once, none waits; once a
 * server is given again, they are served. */
START_TEST(test_no_server_unavailable)
{
	struct tclient a;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	t_be.n_servers = 0;
	ck_assert_int_eq(pool_reconfigure(t_p, &t_cfg, &t_be), 0);
	ck_assert_uint_eq(t_p->n_servers, 0);
	ck_assert_uint_eq(t_p->n_all, 0);
	t_send(&a, 10);
	ck_assert_uint_eq(a.n_errors, 1);
	ck_assert_int_eq(a.errors[0], FRAME_ERR_UNAVAILABLE);
	ck_assert_uint_eq(t_p->n_waiting, 0);
	t_be.n_servers = 1;
	ck_assert_int_eq(pool_reconfigure(t_p, &t_cfg, &t_be), 0);
	t_answer(t_on(t_send(&a, 11)), 11);
	ck_assert_uint_eq(a.n_errors, 1);
	t_teardown();
}
END_TEST

/* A client leaves with a request waiting: pool_cancel takes it out; the
 * pending count and the client's record end consistent. */
START_TEST(test_cancel_waiting)
{
	struct tclient a;
	struct upstream *u;
	struct request *r;

	t_setup(1, 1, 100);
	tclient_init(&a, "a");
	u = t_conn(0, 0);
	fake_set_congested(u, true);
	r = t_send(&a, 10);
	ck_assert_int_eq(r->state, REQUEST_WAITING);
	pool_cancel(t_p, r);
	ck_assert_int_eq(r->state, REQUEST_UNLINKED);
	ck_assert_uint_eq(a.pc.n_waiting, 0);
	ck_assert_uint_eq(t_p->n_waiting, 0);
	request_free(&t_loop->requests, r);
	fake_set_congested(u, false);
	t_teardown();
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *place = tcase_create("placement");
	TCase *fair = tcase_create("fairness");
	TCase *time = tcase_create("timeouts");
	TCase *fail = tcase_create("failures");

	tcase_add_test(place, test_least_outstanding_round_robin);
	tcase_add_test(place, test_sticky_while_outstanding);
	tcase_add_test(place, test_run_moves_a_burst_once);
	suite_add_tcase(s, place);
	tcase_add_test(fair, test_idle_connection_despite_max_pending);
	tcase_add_test(fair, test_wake_order_favours_idle_clients);
	suite_add_tcase(s, fair);
	tcase_add_test(time, test_queue_timeout);
	tcase_add_test(time, test_busy_takes_later_requests_along);
	tcase_add_test(time, test_request_timeout);
	tcase_add_test(time, test_request_written_during_tick_not_timed_out);
	suite_add_tcase(s, time);
	tcase_add_test(fail, test_failed_connection_frees_its_clients);
	tcase_add_test(fail, test_all_down_unavailable);
	tcase_add_test(fail, test_cancel_waiting);
	tcase_add_test(fail, test_no_server_unavailable);
	suite_add_tcase(s, fail);
	return s;
}

int
main(void)
{
	return fixture_run_suite(pool_suite());
}
