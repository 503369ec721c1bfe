/*
 * metrics — the Prometheus text exposition (format 0.0.4) of every
 * worker's counters and request-duration histogram. Workers write their
 * own counters with relaxed atomic stores; a scrape reads them with relaxed
 * loads and sums, so scraping costs the request path nothing.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <sluice/health.h>
#include <sluice/histogram.h>
#include <sluice/log.h>
#include <sluice/metrics.h>
#include <sluice/pool.h>
#include <sluice/resolve.h>
#include <sluice/session.h>
#include <sluice/upstream.h>
#include <sluice/worker.h>

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define METRICS_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define METRICS_STAT(field) offsetof(struct loop_stats, field)

/* ---- the loop_stats counters, as a table ----------------------------- */

/* One series of a family: a counter of struct loop_stats. */
struct metrics_series {
	const char *label_value;      /* NULL when the family has no label */
	size_t offset;                /* of a uint64_t in struct loop_stats */
};

#define METRICS_MAX_SERIES 14

/* sluice_tls_client_cert_failures_total below lists every reason. */
_Static_assert(TLS_CERT_FAILURE_COUNT == 7, "a client certificate failure reason without a series");

struct metrics_family {
	const char *name;
	const char *type;             /* "counter" or "gauge" */
	const char *help;
	const char *label;            /* the label's name, or NULL */
	unsigned n_series;
	struct metrics_series series[METRICS_MAX_SERIES];
};

/* The order here is the order of the exposition (docs/OPERATIONS.md lists
 * the same). */
static const struct metrics_family metrics_families[] = {
	{ "sluice_connections_active", "gauge",
	  "Client connections open now, TLS handshakes under way included.", NULL, 1,
	  { { NULL, METRICS_STAT(connections_active) } } },
	{ "sluice_connections_total", "counter",
	  "Client connections accepted (not counting refused ones).", NULL, 1,
	  { { NULL, METRICS_STAT(connections_total) } } },
	{ "sluice_connections_refused_total", "counter",
	  "Client connections closed at accept: past limits.max_connections or "
	  "max_connections_per_address, or from outside proxy_trusted.", NULL, 1,
	  { { NULL, METRICS_STAT(connections_refused) } } },
	{ "sluice_proxy_protocol_errors_total", "counter",
	  "Connections closed for a PROXY protocol header that was invalid, cut short or late, "
	  "or refused from outside proxy_trusted.", NULL, 1,
	  { { NULL, METRICS_STAT(proxy_protocol_errors) } } },
	{ "sluice_connections_closed_total", "counter",
	  "Client connections closed, by the reason they ended (refused: at accept, past max_connections).",
	  "reason", 14,
	  { { "client_quit", METRICS_STAT(connections_closed[SESSION_CLOSE_CLIENT_QUIT]) },
	    { "proxy_quit", METRICS_STAT(connections_closed[SESSION_CLOSE_PROXY_QUIT]) },
	    { "idle", METRICS_STAT(connections_closed[SESSION_CLOSE_IDLE]) },
	    { "protocol_error", METRICS_STAT(connections_closed[SESSION_CLOSE_PROTOCOL]) },
	    { "client_closed", METRICS_STAT(connections_closed[SESSION_CLOSE_CLIENT_CLOSED]) },
	    { "reset", METRICS_STAT(connections_closed[SESSION_CLOSE_RESET]) },
	    { "no_hello", METRICS_STAT(connections_closed[SESSION_CLOSE_NO_HELLO]) },
	    { "handshake_failed", METRICS_STAT(connections_closed[SESSION_CLOSE_HANDSHAKE]) },
	    { "handshake_timeout", METRICS_STAT(connections_closed[SESSION_CLOSE_HANDSHAKE_TIMEOUT]) },
	    { "buffer_limit", METRICS_STAT(connections_closed[SESSION_CLOSE_BUFFER_LIMIT]) },
	    { "drain_timeout", METRICS_STAT(connections_closed[SESSION_CLOSE_DRAIN_TIMEOUT]) },
	    { "aborted", METRICS_STAT(connections_closed[SESSION_CLOSE_ABORTED]) },
	    { "internal_error", METRICS_STAT(connections_closed[SESSION_CLOSE_INTERNAL]) },
	    { "refused", METRICS_STAT(connections_refused) } } },
	{ "sluice_tls_handshake_failures_total", "counter",
	  "Client TLS handshakes that failed (bad ClientHello, no common cipher, peer gone).", NULL, 1,
	  { { NULL, METRICS_STAT(handshake_failures) } } },
	{ "sluice_tls_handshakes_total", "counter",
	  "Client TLS handshakes completed, full or resumed (session ticket or id).", "resumed", 2,
	  { { "false", METRICS_STAT(handshakes[0]) },
	    { "true", METRICS_STAT(handshakes[1]) } } },
	{ "sluice_tls_client_cert_failures_total", "counter",
	  "Client TLS handshakes refused over the client certificate (mTLS), by reason.", "reason", 7,
	  { { "no_certificate", METRICS_STAT(client_cert_failures[TLS_CERT_NO_CERTIFICATE]) },
	    { "expired", METRICS_STAT(client_cert_failures[TLS_CERT_EXPIRED]) },
	    { "not_yet_valid", METRICS_STAT(client_cert_failures[TLS_CERT_NOT_YET_VALID]) },
	    { "unknown_ca", METRICS_STAT(client_cert_failures[TLS_CERT_UNKNOWN_CA]) },
	    { "revoked", METRICS_STAT(client_cert_failures[TLS_CERT_REVOKED]) },
	    { "bad_signature", METRICS_STAT(client_cert_failures[TLS_CERT_BAD_SIGNATURE]) },
	    { "other", METRICS_STAT(client_cert_failures[TLS_CERT_OTHER]) } } },
	{ "sluice_frames_received_total", "counter",
	  "Request frames received from clients and submitted to a backend (QUIT not counted).", NULL, 1,
	  { { NULL, METRICS_STAT(frames_received) } } },
	{ "sluice_frames_sent_total", "counter",
	  "Response frames queued to clients: backend answers and sluice's own ERR frames.", NULL, 1,
	  { { NULL, METRICS_STAT(frames_sent) } } },
	{ "sluice_bytes_received_total", "counter",
	  "Bytes of the request frames counted in sluice_frames_received_total, 6-byte prefix included.",
	  NULL, 1, { { NULL, METRICS_STAT(bytes_received) } } },
	{ "sluice_bytes_sent_total", "counter",
	  "Bytes of the response frames counted in sluice_frames_sent_total, 6-byte prefix included.",
	  NULL, 1, { { NULL, METRICS_STAT(bytes_sent) } } },
	{ "sluice_protocol_errors_total", "counter",
	  "Invalid or oversized frames from clients (answered ERR PROTOCOL, then closed).", NULL, 1,
	  { { NULL, METRICS_STAT(protocol_errors) } } },
	{ "sluice_errors_total", "counter",
	  "ERR responses sluice generated for requests, by code.", "code", 3,
	  { { "BUSY", METRICS_STAT(errors_busy) },
	    { "UNAVAILABLE", METRICS_STAT(errors_unavailable) },
	    { "TIMEOUT", METRICS_STAT(errors_timeout) } } },
	{ "sluice_timeouts_total", "counter",
	  "Timeouts that expired, by kind.", "kind", 6,
	  { { "handshake", METRICS_STAT(timeouts_handshake) },
	    { "idle", METRICS_STAT(timeouts_idle) },
	    { "connect", METRICS_STAT(timeouts_connect) },
	    { "queue", METRICS_STAT(timeouts_queue) },
	    { "request", METRICS_STAT(timeouts_request) },
	    { "drain", METRICS_STAT(timeouts_drain) } } },
	{ "sluice_requests_pending", "gauge",
	  "Requests received and not yet answered: waiting for a backend connection or written to one.",
	  NULL, 1, { { NULL, METRICS_STAT(requests_pending) } } },
};

/* ---- text helpers -------------------------------------------------------- */

static int
metrics_header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0 ? -1 : 0;
}

/* A label value, escaped as the format wants: \\, \" and \n. */
static int
metrics_escape(struct evbuffer *out, const char *value)
{
	const char *run = value;
	const char *p;

	for (p = value; *p != '\0'; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

		if (esc == NULL)
			continue;
		if (evbuffer_add(out, run, (size_t)(p - run)) < 0 || evbuffer_add(out, esc, 2) < 0)
			return -1;
		run = p + 1;
	}
	return evbuffer_add(out, run, (size_t)(p - run));
}

/* `name{label="value"} n` or, without a label, `name n`. */
static int
metrics_sample(struct evbuffer *out, const char *name, const char *label, const char *value, uint64_t n)
{
	if (label == NULL)
		return evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, n) < 0 ? -1 : 0;
	if (evbuffer_add_printf(out, "%s{%s=\"", name, label) < 0 || metrics_escape(out, value) < 0 ||
	    evbuffer_add_printf(out, "\"} %" PRIu64 "\n", n) < 0)
		return -1;
	return 0;
}

/* Microseconds as seconds, exactly and without trailing zeros: 100 is
 * "0.0001", 2500000 is "2.5", 10000000 is "10". */
static void
metrics_seconds(char *buf, size_t len, uint64_t us)
{
	char frac[8];
	size_t n;

	snprintf(frac, sizeof(frac), "%06" PRIu64, us % 1000000);
	for (n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
		frac[n - 1] = '\0';
	if (n == 0)
		snprintf(buf, len, "%" PRIu64, us / 1000000);
	else
		snprintf(buf, len, "%" PRIu64 ".%s", us / 1000000, frac);
}

/* ---- worker counters and the histogram ----------------------------------- */

static uint64_t
metrics_sum(struct worker *const *workers, unsigned n_workers, size_t offset)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n_workers; i++) {
		const uint64_t *field;

		if (workers[i] == NULL)
			continue;
		field = (const uint64_t *)(const void *)((const char *)&workers[i]->loop.stats + offset);
		sum += METRICS_LOAD(*field);
	}
	return sum;
}

static int
metrics_render_family(struct evbuffer *out, const struct metrics_family *f, struct worker *const *workers,
		      unsigned n_workers)
{
	if (metrics_header(out, f->name, f->type, f->help) < 0)
		return -1;
	for (unsigned i = 0; i < f->n_series; i++) {
		uint64_t n = metrics_sum(workers, n_workers, f->series[i].offset);

		if (metrics_sample(out, f->name, f->label, f->series[i].label_value, n) < 0)
			return -1;
	}
	return 0;
}

/* Buckets are summed per bucket, and _count is the +Inf bucket rather than
 * the workers' own count: read without a lock, the two could disagree by a
 * request in flight, and Prometheus wants them equal. */
static int
metrics_render_histogram(struct evbuffer *out, struct worker *const *workers, unsigned n_workers)
{
	static const char name[] = "sluice_request_duration_seconds";
	uint64_t buckets[HISTOGRAM_BUCKETS] = { 0 };
	uint64_t sum_us = 0, cumulative = 0;
	char le[32];

	for (unsigned i = 0; i < n_workers; i++) {
		const struct histogram *h;

		if (workers[i] == NULL)
			continue;
		h = &workers[i]->loop.stats.duration;
		for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++)
			buckets[b] += METRICS_LOAD(h->buckets[b]);
		sum_us += METRICS_LOAD(h->sum_us);
	}
	if (metrics_header(out, name, "histogram",
			   "Time from a request's last byte received to its response queued to the client.") < 0)
		return -1;
	for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
		cumulative += buckets[b];
		if (b < HISTOGRAM_BUCKETS - 1)
			metrics_seconds(le, sizeof(le), histogram_bounds_us[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if (evbuffer_add_printf(out, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, cumulative) < 0)
			return -1;
	}
	metrics_seconds(le, sizeof(le), sum_us);
	if (evbuffer_add_printf(out, "%s_sum %s\n%s_count %" PRIu64 "\n", name, le, name, cumulative) < 0)
		return -1;
	return 0;
}

/* ---- backend servers, summed over workers -------------------------------- */

/* One (backend, server) pair with its counters summed over every worker
 * (and every pool of that backend: a removed one still draining too). */
struct metrics_server {
	char *backend;
	char *server;
	uint64_t connections[UPSTREAM_STATE_COUNT];
	uint64_t errors;
	uint64_t up;                    /* 1 when up in at least one worker */
	uint64_t ejections;
	uint64_t checks[HEALTH_RESULT_COUNT];
};

struct metrics_servers {
	struct metrics_server *v;
	size_t n;
	size_t cap;
};

static struct metrics_server *
metrics_servers_find(struct metrics_servers *set, const char *backend, const char *server)
{
	struct metrics_server *s;

	for (size_t i = 0; i < set->n; i++) {
		if (strcmp(set->v[i].backend, backend) == 0 && strcmp(set->v[i].server, server) == 0)
			return &set->v[i];
	}
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 8;
		struct metrics_server *v = realloc(set->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		set->v = v;
		set->cap = cap;
	}
	s = &set->v[set->n];
	memset(s, 0, sizeof(*s));
	/* Copies: the pool may be reconfigured or freed once the lock goes. */
	s->backend = strdup(backend);
	s->server = strdup(server);
	if (s->backend == NULL || s->server == NULL) {
		free(s->backend);
		free(s->server);
		return NULL;
	}
	set->n++;
	return s;
}

/* A retired server (draining after a reload) reads down. */
static int
metrics_servers_add_server(struct metrics_servers *set, const struct pool *p,
			   const struct pool_server *srv, bool retired)
{
	struct metrics_server *s = metrics_servers_find(set, p->name, srv->target.addr.text);

	if (s == NULL)
		return -1;
	for (unsigned st = 0; st < UPSTREAM_STATE_COUNT; st++)
		s->connections[st] += METRICS_LOAD(srv->target.stats.connections[st]);
	s->errors += METRICS_LOAD(srv->target.stats.errors);
	if (!retired)
		s->up |= METRICS_LOAD(srv->health.stats.up);
	s->ejections += METRICS_LOAD(srv->health.stats.ejections);
	for (unsigned r = 0; r < HEALTH_RESULT_COUNT; r++)
		s->checks[r] += METRICS_LOAD(srv->health.stats.checks[r]);
	return 0;
}

/* Servers a reload removed stay visible while their connections drain. */
static int
metrics_servers_add_pool(struct metrics_servers *set, const struct pool *p)
{
	const struct pool_server *srv;

	for (unsigned j = 0; j < p->n_servers; j++) {
		if (metrics_servers_add_server(set, p, p->servers[j], false) < 0)
			return -1;
	}
	TAILQ_FOREACH(srv, &p->retired, link) {
		if (metrics_servers_add_server(set, p, srv, true) < 0)
			return -1;
	}
	return 0;
}

/* The pools' shape (servers, removed pools) changes only under the
 * structure lock; their counters are read like every other counter. */
static int
metrics_servers_add_worker(struct metrics_servers *set, struct worker *w)
{
	const struct pool *p;
	int rc = 0;

	if (pthread_mutex_lock(&w->loop.structure_lock) != 0)
		return -1;
	for (unsigned i = 0; i < w->n_pools && rc == 0; i++) {
		if (w->pools[i] != NULL)
			rc = metrics_servers_add_pool(set, w->pools[i]);
	}
	TAILQ_FOREACH(p, &w->removed_pools, link) {
		if (rc == 0)
			rc = metrics_servers_add_pool(set, p);
	}
	if (pthread_mutex_unlock(&w->loop.structure_lock) != 0)
		rc = -1;
	return rc;
}

static int
metrics_servers_cmp(const void *a, const void *b)
{
	const struct metrics_server *x = a, *y = b;
	int c = strcmp(x->backend, y->backend);

	return c != 0 ? c : strcmp(x->server, y->server);
}

static void
metrics_servers_free(struct metrics_servers *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].backend);
		free(set->v[i].server);
	}
	free(set->v);
}

/* `name{backend="b",server="s"` then, when state is not NULL,
 * `,LABEL="st"` (LABEL is state unless given); then `} n`. */
static int
metrics_server_sample_as(struct evbuffer *out, const char *name, const struct metrics_server *s,
			 const char *label, const char *state, uint64_t n)
{
	if (evbuffer_add_printf(out, "%s{backend=\"", name) < 0 || metrics_escape(out, s->backend) < 0 ||
	    evbuffer_add_printf(out, "\",server=\"") < 0 || metrics_escape(out, s->server) < 0)
		return -1;
	if (state != NULL && (evbuffer_add_printf(out, "\",%s=\"", label) < 0 || metrics_escape(out, state) < 0))
		return -1;
	return evbuffer_add_printf(out, "\"} %" PRIu64 "\n", n) < 0 ? -1 : 0;
}

static int
metrics_server_sample(struct evbuffer *out, const char *name, const struct metrics_server *s,
		      const char *state, uint64_t n)
{
	return metrics_server_sample_as(out, name, s, "state", state, n);
}

/* SPEC §7: health checks and ejections (docs/OPERATIONS.md). */
static int
metrics_render_health(struct evbuffer *out, const struct metrics_servers *set)
{
	static const char up[] = "sluice_backend_server_up";
	static const char ejections[] = "sluice_backend_ejections_total";
	static const char checks[] = "sluice_health_checks_total";
	size_t i;

	if (metrics_header(out, up, "gauge",
			   "1 when the server takes new requests in at least one worker: connects, passes health checks, not ejected.") < 0)
		return -1;
	for (i = 0; i < set->n; i++) {
		if (metrics_server_sample(out, up, &set->v[i], NULL, set->v[i].up) < 0)
			return -1;
	}
	if (metrics_header(out, ejections, "counter", "Passive ejections of the server, summed over workers.") < 0)
		return -1;
	for (i = 0; i < set->n; i++) {
		if (metrics_server_sample(out, ejections, &set->v[i], NULL, set->v[i].ejections) < 0)
			return -1;
	}
	if (metrics_header(out, checks, "counter", "Health check probes by result, summed over workers.") < 0)
		return -1;
	for (i = 0; i < set->n; i++) {
		for (unsigned r = 0; r < HEALTH_RESULT_COUNT; r++) {
			if (metrics_server_sample_as(out, checks, &set->v[i], "result", health_result_name(r),
						     set->v[i].checks[r]) < 0)
				return -1;
		}
	}
	return 0;
}

static int
metrics_render_servers(struct evbuffer *out, const struct metrics_servers *set)
{
	static const char conns[] = "sluice_backend_connections";
	static const char errors[] = "sluice_backend_errors_total";

	if (metrics_header(out, conns, "gauge",
			   "Backend connections by state, per server, summed over workers.") < 0)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		for (unsigned st = 0; st < UPSTREAM_STATE_COUNT; st++) {
			if (metrics_server_sample(out, conns, &set->v[i], upstream_state_name(st),
						  set->v[i].connections[st]) < 0)
				return -1;
		}
	}
	if (metrics_header(out, errors, "counter",
			   "Backend connection failures: refused or timed-out connects, closes, request timeouts, malformed frames.") < 0)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		if (metrics_server_sample(out, errors, &set->v[i], NULL, set->v[i].errors) < 0)
			return -1;
	}
	return metrics_render_health(out, set);
}

static int
metrics_render_backends(struct evbuffer *out, struct worker *const *workers, unsigned n_workers)
{
	struct metrics_servers set = { NULL, 0, 0 };
	int rc = 0;

	for (unsigned i = 0; i < n_workers && rc == 0; i++) {
		if (workers[i] != NULL)
			rc = metrics_servers_add_worker(&set, workers[i]);
	}
	if (rc == 0) {
		if (set.n > 1)
			qsort(set.v, set.n, sizeof(*set.v), metrics_servers_cmp);
		rc = metrics_render_servers(out, &set);
	}
	metrics_servers_free(&set);
	return rc;
}

/* ---- DNS lookups of backend servers, per backend, summed over workers ----- */

struct metrics_dns {
	char *backend;
	uint64_t counts[RESOLVE_RESULT_COUNT];
};

struct metrics_dns_set {
	struct metrics_dns *v;
	size_t n;
};

/* resolve_counts_fn */
static int
metrics_dns_add(void *arg, const char *backend, const uint64_t counts[RESOLVE_RESULT_COUNT])
{
	struct metrics_dns_set *set = arg;
	struct metrics_dns *d = NULL, *v;

	for (size_t i = 0; i < set->n && d == NULL; i++)
		d = strcmp(set->v[i].backend, backend) == 0 ? &set->v[i] : NULL;
	if (d == NULL) {
		v = realloc(set->v, (set->n + 1) * sizeof(*v));
		if (v == NULL)
			return -1;
		set->v = v;
		d = &v[set->n];
		memset(d, 0, sizeof(*d));
		if ((d->backend = strdup(backend)) == NULL)
			return -1;
		set->n++;
	}
	for (unsigned r = 0; r < RESOLVE_RESULT_COUNT; r++)
		d->counts[r] += counts[r];
	return 0;
}

static int
metrics_dns_cmp(const void *a, const void *b)
{
	return strcmp(((const struct metrics_dns *)a)->backend, ((const struct metrics_dns *)b)->backend);
}

static int
metrics_dns_render_set(struct evbuffer *out, const struct metrics_dns_set *set)
{
	static const char name[] = "sluice_dns_resolutions_total";

	if (metrics_header(out, name, "counter",
			   "Lookups of backend servers given by DNS name, by outcome (ok, error, empty), summed over workers.") < 0)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		for (unsigned r = 0; r < RESOLVE_RESULT_COUNT; r++) {
			if (evbuffer_add_printf(out, "%s{backend=\"", name) < 0 ||
			    metrics_escape(out, set->v[i].backend) < 0 ||
			    evbuffer_add_printf(out, "\",result=\"%s\"} %" PRIu64 "\n", resolve_result_name(r),
						set->v[i].counts[r]) < 0)
				return -1;
		}
	}
	return 0;
}

static int
metrics_render_dns(struct evbuffer *out, struct worker *const *workers, unsigned n_workers)
{
	struct metrics_dns_set set = { NULL, 0 };
	int rc = 0;

	for (unsigned i = 0; i < n_workers && rc == 0; i++) {
		if (workers[i] == NULL || workers[i]->resolve == NULL ||
		    pthread_mutex_lock(&workers[i]->loop.structure_lock) != 0)
			continue;
		rc = resolve_each_backend(workers[i]->resolve, metrics_dns_add, &set);
		pthread_mutex_unlock(&workers[i]->loop.structure_lock);
	}
	if (rc == 0 && set.n > 1)
		qsort(set.v, set.n, sizeof(*set.v), metrics_dns_cmp);
	if (rc == 0)
		rc = metrics_dns_render_set(out, &set);
	for (size_t i = 0; i < set.n; i++)
		free(set.v[i].backend);
	free(set.v);
	return rc;
}

/* ---- process-wide --------------------------------------------------------- */

static int
metrics_render_process(struct evbuffer *out, unsigned n_workers)
{
	if (metrics_header(out, "sluice_build_info", "gauge", "Always 1; the version is in the label.") < 0 ||
	    metrics_sample(out, "sluice_build_info", "version", SLUICE_VERSION, 1) < 0 ||
	    metrics_header(out, "sluice_workers", "gauge", "Worker threads serving traffic.") < 0 ||
	    metrics_sample(out, "sluice_workers", NULL, NULL, n_workers) < 0)
		return -1;
	return 0;
}

static int
metrics_render_reloads(struct evbuffer *out, const struct metrics_global *global)
{
	static const char name[] = "sluice_reloads_total";
	uint64_t ok = global != NULL ? global->reloads_success : 0;
	uint64_t failed = global != NULL ? global->reloads_failure : 0;

	if (metrics_header(out, name, "counter",
			   "Configuration reloads (SIGHUP) applied, or rejected with the old configuration kept.") < 0 ||
	    metrics_sample(out, name, "result", "success", ok) < 0 ||
	    metrics_sample(out, name, "result", "failure", failed) < 0)
		return -1;
	return 0;
}

/* The log's own losses: lines a rate limit summarised instead of printing,
 * and lines stderr did not take in time. */
static int
metrics_render_log(struct evbuffer *out)
{
	static const char suppressed[] = "sluice_log_lines_suppressed_total";
	static const char dropped[] = "sluice_log_lines_dropped_total";

	if (metrics_header(out, suppressed, "counter",
			   "Log lines a client could cause that the rate limit counted instead of printing.") < 0 ||
	    metrics_sample(out, suppressed, NULL, NULL, log_lines_suppressed_total()) < 0 ||
	    metrics_header(out, dropped, "counter",
			   "Log lines lost because stderr was not read fast enough (the log queue was full).") < 0 ||
	    metrics_sample(out, dropped, NULL, NULL, log_lines_dropped_total()) < 0)
		return -1;
	return 0;
}

int
metrics_render(struct evbuffer *out, struct worker *const *workers, unsigned n_workers,
	       const struct metrics_global *global)
{
	if (metrics_render_process(out, n_workers) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(metrics_families) / sizeof(metrics_families[0]); i++) {
		if (metrics_render_family(out, &metrics_families[i], workers, n_workers) < 0)
			return -1;
	}
	if (metrics_render_histogram(out, workers, n_workers) < 0 ||
	    metrics_render_backends(out, workers, n_workers) < 0 ||
	    metrics_render_dns(out, workers, n_workers) < 0 ||
	    metrics_render_reloads(out, global) < 0 ||
	    metrics_render_log(out) < 0)
		return -1;
	return 0;
}
