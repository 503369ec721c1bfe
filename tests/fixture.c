/*
 * fixture — one sluice in front of sluice-echo backends, for the
 * integration test programs: starting it all from a few options, the
 * teardown every test ends with, TLS clients and the frames they expect,
 * and an HTTP/1.0 client for the admin endpoint. Everything here fails a
 * test through Check's assertions; see fixture.h for each function.
 */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testcerts.h"

/* The largest admin response read; /metrics is a few KiB. */
#define FIXTURE_HTTP_MAX_RESPONSE (1024 * 1024)
/* The pace of the fixture's polls (scrapes, log counts). */
#define FIXTURE_POLL_US (20 * 1000)

/* sluice's deadlines to start and to exit, per program (see
 * fixture_set_deadlines). */
static int fixture_start_ms = 10000;
static int fixture_exit_ms = 10000;

int64_t
fixture_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fixture_set_deadlines(int start_ms, int exit_ms)
{
	fixture_start_ms = start_ms;
	fixture_exit_ms = exit_ms;
}

/* ---- the configuration file ------------------------------------------- */

/* The configuration file o describes, malloc'd: with more_certs it can be
 * any length. */
static char *
fixture_config_alloc(const struct fixture *fx, const struct fixture_opts *o)
{
	unsigned listeners = o->listeners ? o->listeners : 1;
	/* Every echo the fixture has, unless the file picks some. */
	unsigned servers = o->servers ? o->servers : (1u << fx->n_echos) - 1;
	const uint16_t lport[2] = { fx->port, fx->port2 };
	const char *backend = o->backend ? o->backend : "app";
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	ck_assert_msg(f != NULL, "open_memstream: %s", strerror(errno));
	fprintf(f, "%sworkers: %s\nlisten:\n", o->top ? o->top : "", o->workers ? o->workers : "1");
	for (int i = 0; i < 2; i++) {
		if (!(listeners & (1u << i)))
			continue;
		fprintf(f,
			"  - address: 127.0.0.1:%u\n"
			"    backend: %s\n"
			"    tls:\n"
			"      certificates:\n"
			"        - cert: server.crt\n"
			"          key: server.key\n",
			lport[i], backend);
		for (const char *const *c = o->more_certs; c != NULL && *c != NULL; c++)
			fprintf(f, "        - cert: %s.crt\n          key: %s.key\n", *c, *c);
	}
	fprintf(f, "backends:\n  %s:\n    servers:\n", backend);
	for (int i = 0; i < FIXTURE_MAX_ECHOS; i++) {
		if (servers & (1u << i))
			fprintf(f, "      - address: 127.0.0.1:%u\n", fx->echo_port[i]);
	}
	if (o->extra_server != 0)
		fprintf(f, "      - address: 127.0.0.1:%u\n", o->extra_server);
	fprintf(f,
		"    connections: %u\n"
		"    connect_timeout: %s\n"
		"%s"
		"limits:\n"
		"  max_frame_size: %s\n"
		"%s"
		"shutdown:\n"
		"  grace_timeout: %s\n",
		o->connections ? o->connections : 2, o->connect_timeout ? o->connect_timeout : "1s",
		o->backend_extra ? o->backend_extra : "", o->max_frame ? o->max_frame : "1MiB",
		o->limits ? o->limits : "", o->grace ? o->grace : "2s");
	if (o->delay != NULL)
		fprintf(f, "  delay: %s\n", o->delay);
	/* From the fixture, not o: a file written for a reload keeps the
	 * endpoint that fixture_up opened. */
	if (fx->admin_port != 0)
		fprintf(f, "admin:\n  address: 127.0.0.1:%u\n", fx->admin_port);
	fprintf(f, "log:\n  level: %s\n", o->level ? o->level : "debug");
	ck_assert_msg(fclose(f) == 0 && text != NULL, "configuration text: %s", strerror(errno));
	return text;
}

void
fixture_config_text(const struct fixture *fx, const struct fixture_opts *o, char *out, size_t len)
{
	char *text = fixture_config_alloc(fx, o);
	size_t n = strlen(text);

	ck_assert_msg(n < len, "configuration text longer than %zu bytes", len);
	memcpy(out, text, n + 1);
	free(text);
}

void
fixture_write_text(const struct fixture *fx, const char *text)
{
	char tmp[PATH_MAX + 48];

	snprintf(tmp, sizeof(tmp), "%s.new", fx->conf);
	ck_assert_msg(harness_write_file(tmp, text) == 0, "%s", harness_last_error());
	ck_assert_msg(rename(tmp, fx->conf) == 0, "rename %s: %s", tmp, strerror(errno));
}

void
fixture_write_config(const struct fixture *fx, const struct fixture_opts *o)
{
	char *text = fixture_config_alloc(fx, o);

	fixture_write_text(fx, text);
	free(text);
}

/* ---- processes ---------------------------------------------------------- */

void
fixture_start_echo(struct fixture *fx, int i, const char *args)
{
	char traced[PATH_MAX + 256];

	if (fx->trace[i][0] != '\0') {
		snprintf(traced, sizeof(traced), "--trace %s %s", fx->trace[i], args ? args : "");
		args = traced;
	}
	ck_assert_msg(harness_start_echo(&fx->echo[i], fx->dir, fx->echo_port[i], args) == 0,
		      "echo: %s", harness_last_error());
	fx->echo_stopped[i] = 0;
}

void
fixture_stop_echo(struct fixture *fx, int i)
{
	ck_assert_int_eq(harness_signal(&fx->echo[i], SIGSTOP), 0);
	fx->echo_stopped[i] = 1;
}

void
fixture_cont_echo(struct fixture *fx, int i)
{
	ck_assert_int_eq(harness_signal(&fx->echo[i], SIGCONT), 0);
	fx->echo_stopped[i] = 0;
}

void
fixture_check_max_read(const struct fixture *fx)
{
	const char *v = getenv("SLUICE_MAX_READ");
	char needle[96];
	char *conf;
	int quiet;

	if (v == NULL || *v == '\0')
		return;
	/* The line is a warning: a file that logs errors only hides it. */
	conf = harness_read_file(fx->conf, NULL);
	ck_assert_msg(conf != NULL, "%s", harness_last_error());
	quiet = strstr(conf, "\n  level: error\n") != NULL;
	free(conf);
	if (quiet)
		return;
	/* sluice prints the value it parsed; one it ignores fails here. */
	snprintf(needle, sizeof(needle), "SLUICE_MAX_READ=%lu: reads are capped", strtoul(v, NULL, 10));
	ck_assert_msg(harness_count_log(fx->log, needle) >= 1,
		      "SLUICE_MAX_READ=%s is set, but sluice's log has no '%s': its reads are not capped (see %s)",
		      v, needle, fx->log);
}

void
fixture_start_sluice(struct fixture *fx, const struct fixture_opts *o)
{
	char *text = fixture_config_alloc(fx, o);

	fixture_start_text(fx, text);
	free(text);
}

void
fixture_start_text(struct fixture *fx, const char *text)
{
	fixture_write_text(fx, text);
	fixture_spawn_sluice(fx);
}

void
fixture_spawn_sluice(struct fixture *fx)
{
	const char *bin = getenv("SLUICE_BIN");
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-c", fx->conf, NULL };

	ck_assert_int_eq(harness_spawn(&fx->sluice, fx->log, argv), 0);
	ck_assert_msg(harness_wait_ready(&fx->sluice, "running", fixture_start_ms) == 0,
		      "sluice did not start: %s", harness_last_error());
	fixture_check_max_read(fx);
}

static uint16_t
fixture_port(void)
{
	uint16_t port = harness_free_port();

	ck_assert_uint_ne(port, 0);
	return port;
}

void
fixture_prepare(struct fixture *fx, const struct fixture_opts *o)
{
	memset(fx, 0, sizeof(*fx));
	ck_assert_msg(harness_tmpdir(fx->dir, sizeof(fx->dir)) == 0, "%s", harness_last_error());
	ck_assert_int_eq(testcerts_write(fx->dir, "server", "localhost", 1), 0);
	snprintf(fx->conf, sizeof(fx->conf), "%s/sluice.yaml", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/sluice.log", fx->dir);
	fx->n_echos = o->n_echos ? o->n_echos : 1;
	ck_assert_int_le(fx->n_echos, FIXTURE_MAX_ECHOS);
	fx->port = fixture_port();
	if (o->second_port)
		fx->port2 = fixture_port();
	if (o->admin)
		fx->admin_port = fixture_port();
	for (int i = 0; i < fx->n_echos; i++) {
		fx->echo_port[i] = fixture_port();
		if (!o->untraced)
			snprintf(fx->trace[i], sizeof(fx->trace[i]), "%s/trace-%d.log", fx->dir, i);
		if (!o->start_echos_later)
			fixture_start_echo(fx, i, o->echo_args_of[i] ? o->echo_args_of[i] : o->echo_args);
	}
}

void
fixture_up(struct fixture *fx, const struct fixture_opts *o)
{
	fixture_prepare(fx, o);
	fixture_start_sluice(fx, o);
}

/* The echos and the folder go (the log with it). */
static void
fixture_remove(struct fixture *fx)
{
	for (int i = 0; i < fx->n_echos; i++)
		harness_kill(&fx->echo[i]);
	harness_rmdir(fx->dir);
}

static void
fixture_assert_log_clean(const struct fixture *fx)
{
	char why[1024];

	ck_assert_msg(harness_log_clean(fx->sluice.log, why, sizeof(why)) == 0, "sluice log: %s", why);
}

void
fixture_wait_exit(struct fixture *fx)
{
	int status = -1;

	ck_assert_msg(harness_wait_exit(&fx->sluice, fixture_exit_ms, &status) == 0,
		      "sluice did not exit after SIGTERM");
	/* The log first: a crash shows there better than in the status. */
	fixture_assert_log_clean(fx);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sluice exit status 0x%x", status);
}

void
fixture_cleanup(struct fixture *fx)
{
	fixture_assert_log_clean(fx);
	fixture_remove(fx);
}

void
fixture_down(struct fixture *fx)
{
	for (int i = 0; i < fx->n_echos; i++) {
		if (fx->echo_stopped[i])
			fixture_cont_echo(fx, i);
	}
	ck_assert_int_eq(harness_signal(&fx->sluice, SIGTERM), 0);
	fixture_wait_exit(fx);
	/* Only once all passed: a failing test leaves its folder to read. */
	fixture_remove(fx);
}

int
fixture_count_log(const struct fixture *fx, const char *needle)
{
	return harness_count_log(fx->log, needle);
}

void
fixture_hup(struct fixture *fx, int expect_ok)
{
	int ok = fixture_count_log(fx, FIXTURE_RELOADED);
	int rejected = fixture_count_log(fx, FIXTURE_REJECTED);
	int64_t deadline = fixture_mono_ms() + FIXTURE_RELOAD_MS;
	int ok_now, rejected_now;

	ck_assert_int_eq(harness_signal(&fx->sluice, SIGHUP), 0);
	while (fixture_count_log(fx, FIXTURE_RELOADED) == ok &&
	       fixture_count_log(fx, FIXTURE_REJECTED) == rejected && fixture_mono_ms() < deadline) {
		ck_assert_msg(harness_alive(&fx->sluice), "sluice died during a reload; see %s", fx->log);
		usleep(FIXTURE_POLL_US);
	}
	ok_now = fixture_count_log(fx, FIXTURE_RELOADED);
	rejected_now = fixture_count_log(fx, FIXTURE_REJECTED);
	ck_assert_msg(ok_now == ok + (expect_ok ? 1 : 0),
		      "reload: %d success lines, expected %d (see %s)", ok_now, ok + (expect_ok ? 1 : 0),
		      fx->log);
	ck_assert_msg(rejected_now == rejected + (expect_ok ? 0 : 1),
		      "reload: %d rejection lines, expected %d (see %s)", rejected_now,
		      rejected + (expect_ok ? 0 : 1), fx->log);
}

void
fixture_wait_log_count(struct fixture *fx, const char *needle, int n)
{
	int got = harness_wait_count(fx->log, needle, n, &fx->sluice, FIXTURE_IO_MS);

	ck_assert_msg(got >= n, "%s", harness_last_error());
	got = fixture_count_log(fx, needle);
	ck_assert_msg(got == n, "\"%s\" logged %d times, expected %d (see %s)", needle, got, n, fx->log);
}

long
fixture_log_limited(const char *path, const char *needle, const char *what, long *lines,
		    long *summarised)
{
	char *text = harness_read_file(path, NULL);
	char summary[256];
	long n_lines = 0, n_summarised = 0;

	snprintf(summary, sizeof(summary), "] %s: ... and ", what);
	for (char *line = text; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		char *at;

		if (next != NULL)
			*next = '\0';
		/* "...]: [info] WHAT: ... and N more like this": after the level. */
		if ((at = strstr(line, summary)) != NULL && strstr(at, " more like this in the last ") != NULL)
			n_summarised += strtol(at + strlen(summary), NULL, 10);
		else if (strstr(line, needle) != NULL)
			n_lines++;
		line = next ? next + 1 : NULL;
	}
	free(text);
	if (lines != NULL)
		*lines = n_lines;
	if (summarised != NULL)
		*summarised = n_summarised;
	return n_lines + n_summarised;
}

long
fixture_rss_kib(const struct fixture *fx)
{
	long v = harness_proc_status_kib(fx->sluice.pid, "VmRSS");

	ck_assert_msg(v > 0, "cannot read VmRSS of sluice (pid %d)", (int)fx->sluice.pid);
	return v;
}

const char *
fixture_instrumented(const struct fixture *fx, unsigned kinds)
{
	const char *what = NULL;
	char path[64];
	char *maps;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)fx->sluice.pid);
	maps = harness_read_file(path, NULL);
	ck_assert_msg(maps != NULL, "%s", harness_last_error());
	if ((kinds & FIXTURE_ASAN) && strstr(maps, "libasan") != NULL)
		what = "ASan";
	else if ((kinds & FIXTURE_VALGRIND) && strstr(maps, "vgpreload_memcheck") != NULL)
		what = "valgrind";
	free(maps);
	return what;
}

int
fixture_open_fds(const struct fixture *fx)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)fx->sluice.pid);
	dir = opendir(path);
	ck_assert_msg(dir != NULL, "%s: %s", path, strerror(errno));
	while ((d = readdir(dir)) != NULL)
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* ---- clients and frames -------------------------------------------------- */

struct harness_tls *
fixture_connect_port(uint16_t port)
{
	struct harness_tls *t = harness_tls_connect(port, "localhost", FIXTURE_IO_MS);

	ck_assert_msg(t != NULL, "connect to %u: %s", port, harness_last_error());
	return t;
}

struct harness_tls *
fixture_connect(const struct fixture *fx)
{
	return fixture_connect_port(fx->port);
}

const char *
fixture_frame_desc(const struct harness_frame *f, char *out, size_t len)
{
	snprintf(out, len, "header '%.8s' (%u bytes), payload '%.40s' (%u bytes)",
		 f->header ? (const char *)f->header : "", (unsigned)f->header_len,
		 f->payload ? (const char *)f->payload : "", (unsigned)f->payload_len);
	return out;
}

void
fixture_expect_frame(struct harness_tls *t, const void *payload, uint32_t len)
{
	struct harness_frame f;
	char d[160];

	ck_assert_msg(harness_recv_frame(t, &f, FIXTURE_IO_MS) == 0, "recv: %s", harness_last_error());
	/* An ERR or a QUIT fails here too: both have a header. */
	ck_assert_msg(f.header_len == 0 && f.payload_len == len &&
		      (len == 0 || memcmp(f.payload, payload, len) == 0),
		      "expected payload '%.*s', got %s", (int)len, (const char *)payload,
		      fixture_frame_desc(&f, d, sizeof(d)));
	harness_frame_free(&f);
}

void
fixture_expect_err(struct harness_tls *t, const char *code)
{
	struct harness_frame f;
	char d[160];

	ck_assert_msg(harness_recv_frame(t, &f, FIXTURE_IO_MS) == 0, "recv: %s", harness_last_error());
	ck_assert_msg(harness_frame_is_err(&f, code), "expected ERR %s, got %s", code,
		      fixture_frame_desc(&f, d, sizeof(d)));
	harness_frame_free(&f);
}

void
fixture_expect_quit(struct harness_tls *t)
{
	struct harness_frame f;
	char d[160];

	ck_assert_msg(harness_recv_frame(t, &f, FIXTURE_IO_MS) == 0, "recv: %s", harness_last_error());
	ck_assert_msg(harness_frame_is_quit(&f), "expected QUIT, got %s",
		      fixture_frame_desc(&f, d, sizeof(d)));
	harness_frame_free(&f);
}

void
fixture_expect_closed_with_notify(struct harness_tls *t)
{
	ck_assert_msg(harness_tls_wait_closed(t, FIXTURE_IO_MS) == 0, "sluice did not close the connection");
	ck_assert_msg(harness_tls_got_close_notify(t), "no TLS close_notify before the close");
}

void
fixture_round_trip(struct harness_tls *t, const char *text)
{
	ck_assert_msg(harness_send_frame(t, NULL, 0, text, (uint32_t)strlen(text)) == 0, "sending '%s': %s",
		      text, harness_last_error());
	fixture_expect_frame(t, text, (uint32_t)strlen(text));
}

/* ---- a minimal HTTP/1.0 client with deadlines --------------------------- */

static int
fixture_http_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left = deadline - fixture_mono_ms();
	int rc;

	if (left <= 0)
		return -1;
	do
		rc = poll(&pfd, 1, (int)left);
	while (rc < 0 && errno == EINTR && (left = deadline - fixture_mono_ms()) > 0);
	return rc > 0 ? 0 : -1;
}

static int
fixture_http_send_all(int fd, const char *req, size_t len, int64_t deadline)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (fixture_http_wait(fd, POLLOUT, deadline) < 0)
			return -1;
	}
	return 0;
}

/* Reads until the server closes (HTTP/1.0: the close ends the body). */
static char *
fixture_http_read_all(int fd, int64_t deadline)
{
	char *buf = malloc(FIXTURE_HTTP_MAX_RESPONSE + 1);
	size_t len = 0;

	if (buf == NULL)
		return NULL;
	while (len < FIXTURE_HTTP_MAX_RESPONSE) {
		ssize_t n = recv(fd, buf + len, FIXTURE_HTTP_MAX_RESPONSE - len, 0);

		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if ((errno != EAGAIN && errno != EINTR) || fixture_http_wait(fd, POLLIN, deadline) < 0) {
			free(buf);
			return NULL;
		}
	}
	buf[len] = '\0';
	return buf;
}

void
fixture_http_raw(uint16_t port, const char *request, struct fixture_http_response *r)
{
	fixture_http_raw_within(port, request, FIXTURE_IO_MS, r);
}

void
fixture_http_raw_within(uint16_t port, const char *request, int timeout_ms,
			struct fixture_http_response *r)
{
	int64_t deadline = fixture_mono_ms() + timeout_ms;
	int fd = harness_tcp_connect(port);
	char *sep;

	memset(r, 0, sizeof(*r));
	ck_assert_msg(fd >= 0, "admin connect: %s", harness_last_error());
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	ck_assert_msg(fixture_http_send_all(fd, request, strlen(request), deadline) == 0,
		      "admin send failed");
	r->head = fixture_http_read_all(fd, deadline);
	close(fd);
	ck_assert_msg(r->head != NULL, "no HTTP response within %d ms", timeout_ms);
	ck_assert_msg(sscanf(r->head, "HTTP/1.%*d %d", &r->status) == 1, "bad status line: %.80s", r->head);
	sep = strstr(r->head, "\r\n\r\n");
	ck_assert_msg(sep != NULL, "no end of headers: %.200s", r->head);
	*sep = '\0';
	r->body = sep + 4;
}

void
fixture_http_request(uint16_t port, const char *method, const char *path,
		     struct fixture_http_response *r)
{
	char req[512];

	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
		 method, path);
	fixture_http_raw(port, req, r);
}

void
fixture_http_free(struct fixture_http_response *r)
{
	free(r->head);
	memset(r, 0, sizeof(*r));
}

/* ---- /metrics -------------------------------------------------------------- */

char *
fixture_scrape(const struct fixture *fx)
{
	struct fixture_http_response r;
	char *body;

	fixture_http_request(fx->admin_port, "GET", "/metrics", &r);
	ck_assert_msg(r.status == 200, "/metrics answered %d", r.status);
	ck_assert_msg(strstr(r.head, "text/plain; version=0.0.4") != NULL, "content type: %s", r.head);
	body = strdup(r.body);
	ck_assert_ptr_nonnull(body);
	fixture_http_free(&r);
	return body;
}

double
fixture_series_value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *next = strchr(line, '\n');

		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
		line = next ? next + 1 : NULL;
	}
	return -1;
}

double
fixture_metric(const struct fixture *fx, const char *series)
{
	char *text = fixture_scrape(fx);
	double v = fixture_series_value(text, series);

	ck_assert_msg(v >= 0, "series %s missing from /metrics:\n%s", series, text);
	free(text);
	return v;
}

double
fixture_wait_metric(const struct fixture *fx, const char *series, double want,
		    enum fixture_metric_until until)
{
	int64_t deadline = fixture_mono_ms() + FIXTURE_IO_MS;
	double got;

	for (;;) {
		got = fixture_metric(fx, series);
		if (until == FIXTURE_METRIC_EQUAL ? got == want : got >= want)
			break;
		if (fixture_mono_ms() >= deadline)
			break;
		usleep(FIXTURE_POLL_US);
	}
	if (until == FIXTURE_METRIC_AT_LEAST)
		ck_assert_msg(got >= want, "%s is %g after %d ms, expected at least %g", series, got,
			      FIXTURE_IO_MS, want);
	else
		ck_assert_msg(got == want, "%s is %g, expected %g", series, got, want);
	return got;
}
