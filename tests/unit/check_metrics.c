/*
 * Unit tests for metrics: histogram bucketing at every bound, and the
 * Prometheus exposition of hand-built workers and pools (nothing started):
 * exact lines, sums across workers, cumulative buckets, label escaping.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include <sluice/config.h>
#include <sluice/histogram.h>
#include <sluice/metrics.h>
#include <sluice/pool.h>
#include <sluice/session.h>
#include <sluice/upstream.h>
#include <sluice/worker.h>

#include "../fixture.h"

static const uint64_t bounds_us[HISTOGRAM_BUCKETS - 1] = HISTOGRAM_BOUNDS_US;

/* ---- fakes: the fields metrics reads, nothing started ------------------- */

static struct worker *
fake_worker(unsigned id)
{
	struct worker *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	w->id = id;
	TAILQ_INIT(&w->removed_pools);
	TAILQ_INIT(&w->loop.sessions);
	ck_assert_int_eq(pthread_mutex_init(&w->loop.structure_lock, NULL), 0);
	return w;
}

/* A pool of backend `name` with one server per address, appended to the
 * worker's pools. */
static struct pool *
fake_pool(struct worker *w, const char *name, const char *const *addrs, unsigned n)
{
	struct config_backend *conf = calloc(1, sizeof(*conf));
	struct pool *p = calloc(1, sizeof(*p));

	ck_assert_ptr_nonnull(conf);
	ck_assert_ptr_nonnull(p);
	conf->name = strdup(name);
	conf->servers = calloc(n, sizeof(*conf->servers));
	conf->n_servers = n;
	conf->connections = 2;
	p->loop = &w->loop;
	p->conf = conf;
	p->name = strdup(name);
	p->servers = calloc(n, sizeof(*p->servers));
	p->n_servers = n;
	TAILQ_INIT(&p->retired);
	ck_assert(conf->name != NULL && conf->servers != NULL && p->name != NULL && p->servers != NULL);
	for (unsigned i = 0; i < n; i++) {
		conf->servers[i].addr.text = strdup(addrs[i]);
		p->servers[i] = calloc(1, sizeof(*p->servers[i]));
		ck_assert_ptr_nonnull(p->servers[i]);
		p->servers[i]->pool = p;
		p->servers[i]->target.addr.text = strdup(addrs[i]);
		ck_assert(conf->servers[i].addr.text != NULL && p->servers[i]->target.addr.text != NULL);
	}
	return p;
}

static void
fake_attach(struct worker *w, struct pool *p)
{
	struct pool **pools = realloc(w->pools, (w->n_pools + 1) * sizeof(*pools));

	ck_assert_ptr_nonnull(pools);
	w->pools = pools;
	w->pools[w->n_pools++] = p;
}

static void
fake_pool_free(struct pool *p)
{
	struct config_backend *conf = (struct config_backend *)p->conf;

	for (unsigned i = 0; i < p->n_servers; i++) {
		free(p->servers[i]->target.addr.text);
		free(p->servers[i]);
		free(conf->servers[i].addr.text);
	}
	free(p->servers);
	free(p->name);
	free(conf->servers);
	free(conf->name);
	free(conf);
	free(p);
}

static void
fake_worker_free(struct worker *w)
{
	struct pool *p;

	for (unsigned i = 0; i < w->n_pools; i++) {
		if (w->pools[i] != NULL)
			fake_pool_free(w->pools[i]);
	}
	while ((p = TAILQ_FIRST(&w->removed_pools)) != NULL) {
		TAILQ_REMOVE(&w->removed_pools, p, link);
		fake_pool_free(p);
	}
	free(w->pools);
	ck_assert_int_eq(pthread_mutex_destroy(&w->loop.structure_lock), 0);
	free(w);
}

/* ---- rendering ------------------------------------------------------------ */

/* The whole exposition as a malloc'd string that starts with '\n', so every
 * line, the first included, can be found as "\n<line>\n". */
static char *
render(struct worker *const *workers, unsigned n, const struct metrics_global *g)
{
	struct evbuffer *out = evbuffer_new();
	size_t len;
	char *text;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(metrics_render(out, workers, n, g), 0);
	len = evbuffer_get_length(out);
	text = malloc(len + 2);
	ck_assert_ptr_nonnull(text);
	text[0] = '\n';
	ck_assert_int_eq(evbuffer_remove(out, text + 1, len), (int)len);
	text[len + 1] = '\0';
	evbuffer_free(out);
	return text;
}

static int
has_line(const char *text, const char *line)
{
	char needle[512];

	snprintf(needle, sizeof(needle), "\n%s\n", line);
	return strstr(text, needle) != NULL;
}

#define ck_assert_line(text, line) \
	ck_assert_msg(has_line((text), (line)), "missing line '%s' in:%s", (line), (text))

static int
count_lines_starting(const char *text, const char *prefix)
{
	char needle[512];
	int n = 0;

	snprintf(needle, sizeof(needle), "\n%s", prefix);
	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ---- histogram ---------------------------------------------------------- */

START_TEST(test_observe_on_and_above_each_bound)
{
	for (unsigned i = 0; i < HISTOGRAM_BUCKETS - 1; i++) {
		struct histogram h;

		memset(&h, 0, sizeof(h));
		histogram_observe(&h, bounds_us[i]);
		ck_assert_msg(h.buckets[i] == 1, "%" PRIu64 " us not in bucket %u", bounds_us[i], i);
		histogram_observe(&h, bounds_us[i] + 1);
		ck_assert_msg(h.buckets[i + 1] == 1, "%" PRIu64 " us not in bucket %u", bounds_us[i] + 1, i + 1);
		ck_assert_uint_eq(h.count, 2);
		ck_assert_uint_eq(h.sum_us, 2 * bounds_us[i] + 1);
	}
}
END_TEST

START_TEST(test_observe_extremes)
{
	struct histogram h;

	memset(&h, 0, sizeof(h));
	histogram_observe(&h, 0);
	histogram_observe(&h, UINT64_MAX / 2);
	ck_assert_uint_eq(h.buckets[0], 1);
	ck_assert_uint_eq(h.buckets[HISTOGRAM_BUCKETS - 1], 1);
	ck_assert_uint_eq(h.count, 2);
	ck_assert_uint_eq(h.sum_us, UINT64_MAX / 2);
}
END_TEST

START_TEST(test_render_histogram_cumulative_in_seconds)
{
	struct worker *w[2] = { fake_worker(0), fake_worker(1) };
	char *text;

	histogram_observe(&w[0]->loop.stats.duration, 100);      /* le 0.0001 */
	histogram_observe(&w[0]->loop.stats.duration, 101);      /* le 0.00025 */
	histogram_observe(&w[1]->loop.stats.duration, 2500000);  /* le 2.5 */
	histogram_observe(&w[1]->loop.stats.duration, 20000000); /* +Inf only */
	histogram_observe(&w[1]->loop.stats.duration, 42);       /* le 0.0001 */
	text = render(w, 2, NULL);
	ck_assert_line(text, "# HELP sluice_request_duration_seconds "
		       "Time from a request's last byte received to its response queued to the client.");
	ck_assert_line(text, "# TYPE sluice_request_duration_seconds histogram");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.0001\"} 2");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.00025\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.0005\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.001\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.0025\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.005\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.01\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.025\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.05\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.1\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.25\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.5\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"1\"} 3");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"2.5\"} 4");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"5\"} 4");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"10\"} 4");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"+Inf\"} 5");
	/* 100 + 101 + 2500000 + 20000000 + 42 us */
	ck_assert_line(text, "sluice_request_duration_seconds_sum 22.500243");
	ck_assert_line(text, "sluice_request_duration_seconds_count 5");
	ck_assert_int_eq(count_lines_starting(text, "sluice_request_duration_seconds_bucket{"),
			 HISTOGRAM_BUCKETS);
	free(text);
	fake_worker_free(w[0]);
	fake_worker_free(w[1]);
}
END_TEST

START_TEST(test_render_histogram_empty)
{
	struct worker *w = fake_worker(0);
	char *text = render(&w, 1, NULL);

	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"0.0001\"} 0");
	ck_assert_line(text, "sluice_request_duration_seconds_bucket{le=\"+Inf\"} 0");
	ck_assert_line(text, "sluice_request_duration_seconds_sum 0");
	ck_assert_line(text, "sluice_request_duration_seconds_count 0");
	free(text);
	fake_worker_free(w);
}
END_TEST

/* ---- worker counters ----------------------------------------------------- */

static void
fill_stats(struct loop_stats *st, uint64_t base)
{
	st->connections_active = base + 1;
	st->connections_total = base + 2;
	st->connections_refused = base + 3;
	st->handshake_failures = base + 4;
	st->frames_received = base + 5;
	st->frames_sent = base + 6;
	st->bytes_received = base + 7;
	st->bytes_sent = base + 8;
	st->protocol_errors = base + 9;
	st->errors_busy = base + 10;
	st->errors_unavailable = base + 11;
	st->errors_timeout = base + 12;
	st->timeouts_handshake = base + 13;
	st->timeouts_idle = base + 14;
	st->timeouts_connect = base + 15;
	st->timeouts_queue = base + 16;
	st->timeouts_request = base + 17;
	st->requests_pending = base + 18;
	for (unsigned i = 0; i < TLS_CERT_FAILURE_COUNT; i++)
		st->client_cert_failures[i] = base + 19 + i;
	st->timeouts_drain = base + 19 + TLS_CERT_FAILURE_COUNT;
	for (unsigned i = 0; i < SESSION_CLOSE_COUNT; i++)
		st->connections_closed[i] = base + 100 + i;
}

START_TEST(test_render_counters_summed_over_workers)
{
	struct worker *w[3] = { fake_worker(0), NULL, fake_worker(2) };
	char *text;

	/* Worker 0 holds 1..18, worker 2 holds 1001..1018: each sum is
	 * 1000 + 2k; the NULL slot (a worker not created) is skipped. */
	fill_stats(&w[0]->loop.stats, 0);
	fill_stats(&w[2]->loop.stats, 1000);
	w[2]->loop.stats.bytes_received = 5000000000ull;   /* past 32 bits */
	text = render(w, 3, NULL);
	ck_assert_line(text, "# TYPE sluice_connections_active gauge");
	ck_assert_line(text, "sluice_connections_active 1002");
	ck_assert_line(text, "# TYPE sluice_connections_total counter");
	ck_assert_line(text, "sluice_connections_total 1004");
	ck_assert_line(text, "sluice_connections_refused_total 1006");
	ck_assert_line(text, "# TYPE sluice_connections_closed_total counter");
	ck_assert_line(text, "sluice_connections_closed_total{reason=\"client_quit\"} 1200");
	ck_assert_line(text, "sluice_connections_closed_total{reason=\"buffer_limit\"} 1218");
	ck_assert_line(text, "sluice_connections_closed_total{reason=\"internal_error\"} 1224");
	ck_assert_line(text, "sluice_connections_closed_total{reason=\"refused\"} 1006");
	ck_assert_line(text, "sluice_tls_handshake_failures_total 1008");
	ck_assert_line(text, "# TYPE sluice_tls_client_cert_failures_total counter");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"no_certificate\"} 1038");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"expired\"} 1040");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"not_yet_valid\"} 1042");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"unknown_ca\"} 1044");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"revoked\"} 1046");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"bad_signature\"} 1048");
	ck_assert_line(text, "sluice_tls_client_cert_failures_total{reason=\"other\"} 1050");
	ck_assert_line(text, "sluice_frames_received_total 1010");
	ck_assert_line(text, "sluice_frames_sent_total 1012");
	ck_assert_line(text, "sluice_bytes_received_total 5000000007");
	ck_assert_line(text, "sluice_bytes_sent_total 1016");
	ck_assert_line(text, "sluice_protocol_errors_total 1018");
	ck_assert_line(text, "# TYPE sluice_errors_total counter");
	ck_assert_line(text, "sluice_errors_total{code=\"BUSY\"} 1020");
	ck_assert_line(text, "sluice_errors_total{code=\"UNAVAILABLE\"} 1022");
	ck_assert_line(text, "sluice_errors_total{code=\"TIMEOUT\"} 1024");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"handshake\"} 1026");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"idle\"} 1028");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"connect\"} 1030");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"queue\"} 1032");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"request\"} 1034");
	ck_assert_line(text, "sluice_timeouts_total{kind=\"drain\"} 1052");
	ck_assert_line(text, "# TYPE sluice_requests_pending gauge");
	ck_assert_line(text, "sluice_requests_pending 1036");
	ck_assert_line(text, "# TYPE sluice_workers gauge");
	ck_assert_line(text, "sluice_workers 3");
	ck_assert_line(text, "sluice_build_info{version=\"" SLUICE_VERSION "\"} 1");
	free(text);
	fake_worker_free(w[0]);
	fake_worker_free(w[2]);
}
END_TEST

START_TEST(test_render_reloads)
{
	struct metrics_global g = { .reloads_success = 4, .reloads_failure = 2 };
	char *text = render(NULL, 0, &g);

	ck_assert_line(text, "# TYPE sluice_reloads_total counter");
	ck_assert_line(text, "sluice_reloads_total{result=\"success\"} 4");
	ck_assert_line(text, "sluice_reloads_total{result=\"failure\"} 2");
	free(text);
	/* No global counters (not started yet): zeros, not a crash. */
	text = render(NULL, 0, NULL);
	ck_assert_line(text, "sluice_reloads_total{result=\"success\"} 0");
	ck_assert_line(text, "sluice_reloads_total{result=\"failure\"} 0");
	ck_assert_line(text, "sluice_connections_total 0");
	ck_assert_line(text, "sluice_workers 0");
	free(text);
}
END_TEST

/* ---- backends -------------------------------------------------------------- */

START_TEST(test_render_backends_summed_by_server)
{
	static const char *const addrs[] = { "127.0.0.1:9001", "127.0.0.1:9000" };
	static const char *const other[] = { "[::1]:7000" };
	struct worker *w[2] = { fake_worker(0), fake_worker(1) };
	struct pool *p0 = fake_pool(w[0], "app", addrs, 2);
	struct pool *p1 = fake_pool(w[1], "app", addrs, 2);
	struct pool *removed = fake_pool(w[1], "app", addrs + 1, 1);
	char *text;

	fake_attach(w[0], p0);
	fake_attach(w[0], NULL);   /* a pool that could not be made */
	fake_attach(w[0], fake_pool(w[0], "cache", other, 1));
	fake_attach(w[1], p1);
	/* A backend removed by a reload, then added again: the old pool
	 * drains while the new one serves; both count. */
	TAILQ_INSERT_TAIL(&w[1]->removed_pools, removed, link);
	p0->servers[0]->target.stats.connections[UPSTREAM_CONNECTED] = 2;
	p0->servers[0]->target.stats.errors = 3;
	p1->servers[0]->target.stats.connections[UPSTREAM_CONNECTED] = 1;
	p1->servers[0]->target.stats.connections[UPSTREAM_BACKOFF] = 1;
	p1->servers[0]->target.stats.errors = 4;
	p0->servers[1]->target.stats.connections[UPSTREAM_CONNECTING] = 2;
	p1->servers[1]->target.stats.connections[UPSTREAM_CONNECTED] = 2;
	removed->servers[0]->target.stats.connections[UPSTREAM_QUIT_SENT] = 1;
	removed->servers[0]->target.stats.errors = 10;
	text = render(w, 2, NULL);

	ck_assert_line(text, "# TYPE sluice_backend_connections gauge");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9001\",state=\"connected\"} 3");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9001\",state=\"backoff\"} 1");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9001\",state=\"connecting\"} 0");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9000\",state=\"connecting\"} 2");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9000\",state=\"connected\"} 2");
	ck_assert_line(text, "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9000\",state=\"quit_sent\"} 1");
	ck_assert_line(text, "sluice_backend_connections{backend=\"cache\",server=\"[::1]:7000\",state=\"closed\"} 0");
	ck_assert_line(text, "# TYPE sluice_backend_errors_total counter");
	ck_assert_line(text, "sluice_backend_errors_total{backend=\"app\",server=\"127.0.0.1:9001\"} 7");
	ck_assert_line(text, "sluice_backend_errors_total{backend=\"app\",server=\"127.0.0.1:9000\"} 10");
	ck_assert_line(text, "sluice_backend_errors_total{backend=\"cache\",server=\"[::1]:7000\"} 0");
	/* Every state of every (backend, server), once: 3 pairs. */
	for (unsigned st = 0; st < UPSTREAM_STATE_COUNT; st++) {
		char prefix[128];

		snprintf(prefix, sizeof(prefix), "sluice_backend_connections{backend=\"app\",server=\"127.0.0.1:9000\",state=\"%s\"} ",
			 upstream_state_name(st));
		ck_assert_int_eq(count_lines_starting(text, prefix), 1);
	}
	ck_assert_int_eq(count_lines_starting(text, "sluice_backend_connections{"), 3 * UPSTREAM_STATE_COUNT);
	ck_assert_int_eq(count_lines_starting(text, "sluice_backend_errors_total{"), 3);
	free(text);
	fake_worker_free(w[0]);
	fake_worker_free(w[1]);
}
END_TEST

/* Sorted by backend then server, whatever order workers list them in. */
START_TEST(test_render_backends_stable_order)
{
	static const char *const ab[] = { "b:2", "a:1" };
	static const char *const ba[] = { "a:1", "b:2" };
	struct worker *w[2] = { fake_worker(0), fake_worker(1) };
	char *first, *second;
	const char *x, *y, *z;

	fake_attach(w[0], fake_pool(w[0], "zeta", ab, 2));
	fake_attach(w[0], fake_pool(w[0], "alpha", ab, 2));
	fake_attach(w[1], fake_pool(w[1], "alpha", ba, 2));
	first = render(w, 2, NULL);
	second = render(w, 2, NULL);
	ck_assert_str_eq(first, second);
	x = strstr(first, "sluice_backend_errors_total{backend=\"alpha\",server=\"a:1\"}");
	y = strstr(first, "sluice_backend_errors_total{backend=\"alpha\",server=\"b:2\"}");
	z = strstr(first, "sluice_backend_errors_total{backend=\"zeta\",server=\"a:1\"}");
	ck_assert(x != NULL && y != NULL && z != NULL);
	ck_assert(x < y && y < z);
	free(first);
	free(second);
	fake_worker_free(w[0]);
	fake_worker_free(w[1]);
}
END_TEST

START_TEST(test_render_label_escaping)
{
	static const char *const addrs[] = { "host\"x\":1" };
	struct worker *w = fake_worker(0);
	char *text;

	fake_attach(w, fake_pool(w, "we\\ird\nname", addrs, 1));
	w->pools[0]->servers[0]->target.stats.errors = 5;
	text = render(&w, 1, NULL);
	ck_assert_line(text, "sluice_backend_errors_total{backend=\"we\\\\ird\\nname\",server=\"host\\\"x\\\":1\"} 5");
	ck_assert_line(text, "sluice_backend_connections{backend=\"we\\\\ird\\nname\",server=\"host\\\"x\\\":1\",state=\"connected\"} 0");
	free(text);
	fake_worker_free(w);
}
END_TEST

/* ---- the format as a whole ------------------------------------------------- */

/* The family a sample belongs to: its name, minus a histogram suffix. */
static void
family_of(const char *line, char *out, size_t len, const char *text)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	size_t n = strcspn(line, "{ ");
	char type_line[256];

	snprintf(out, len, "%.*s", (int)n, line);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]), ol = strlen(out);

		if (ol > sl && strcmp(out + ol - sl, suffixes[i]) == 0) {
			out[ol - sl] = '\0';
			snprintf(type_line, sizeof(type_line), "\n# TYPE %s histogram\n", out);
			if (strstr(text, type_line) != NULL)
				return;
			out[ol - sl] = suffixes[i][0];
		}
	}
}

/* Every sample follows its family's # HELP and # TYPE; counters end in
 * _total; every family is declared once; the text ends with a newline. */
START_TEST(test_render_every_sample_has_help_and_type)
{
	static const char *const addrs[] = { "127.0.0.1:9000" };
	struct worker *w = fake_worker(0);
	struct metrics_global g = { 1, 1 };
	char *text, *copy, *save = NULL;
	char family[128], current[128] = "", needle[192];
	int samples = 0;

	fake_attach(w, fake_pool(w, "app", addrs, 1));
	fill_stats(&w->loop.stats, 0);
	histogram_observe(&w->loop.stats.duration, 300);
	text = render(&w, 1, &g);
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	copy = strdup(text + 1);
	ck_assert_ptr_nonnull(copy);
	for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			snprintf(current, sizeof(current), "%.*s", (int)strcspn(line + 7, " "), line + 7);
			snprintf(needle, sizeof(needle), "\n# HELP %s ", current);
			ck_assert_msg(strstr(strstr(text, needle) + 1, needle) == NULL, "%s declared twice", current);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_msg(strncmp(line + 7, current, strlen(current)) == 0, "TYPE without HELP: %s", line);
			if (strstr(line, " counter") != NULL)
				ck_assert_msg(strstr(current, "_total") == current + strlen(current) - 6,
					      "counter %s does not end in _total", current);
			continue;
		}
		ck_assert_msg(line[0] != '#', "unexpected comment: %s", line);
		family_of(line, family, sizeof(family), text);
		ck_assert_msg(strcmp(family, current) == 0, "sample '%s' outside its family (%s)", line, current);
		samples++;
	}
	/* 2 process + 43 worker (TLS handshakes: 2, PROXY protocol errors: 1)
	 * + 19 histogram + 7 backend + 5 health + 2 reload + 2 log */
	ck_assert_int_eq(samples, 2 + 43 + 19 + 7 + 5 + 2 + 2);
	ck_assert_ptr_nonnull(strstr(text, "\nsluice_log_lines_suppressed_total 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nsluice_log_lines_dropped_total 0\n"));
	free(copy);
	free(text);
	fake_worker_free(w);
}
END_TEST

START_TEST(test_render_failure_is_reported)
{
	struct evbuffer *out = evbuffer_new();

	/* A frozen buffer refuses appends, as one that ran out of memory. */
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(evbuffer_freeze(out, 0), 0);
	ck_assert_int_eq(metrics_render(out, NULL, 0, NULL), -1);
	evbuffer_free(out);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *hist = tcase_create("histogram");
	TCase *text = tcase_create("exposition");

	tcase_add_test(hist, test_observe_on_and_above_each_bound);
	tcase_add_test(hist, test_observe_extremes);
	tcase_add_test(hist, test_render_histogram_cumulative_in_seconds);
	tcase_add_test(hist, test_render_histogram_empty);
	tcase_add_test(text, test_render_counters_summed_over_workers);
	tcase_add_test(text, test_render_reloads);
	tcase_add_test(text, test_render_backends_summed_by_server);
	tcase_add_test(text, test_render_backends_stable_order);
	tcase_add_test(text, test_render_label_escaping);
	tcase_add_test(text, test_render_every_sample_has_help_and_type);
	tcase_add_test(text, test_render_failure_is_reported);
	suite_add_tcase(s, hist);
	suite_add_tcase(s, text);
	return s;
}

int
main(void)
{
	return fixture_run_suite(metrics_suite());
}
