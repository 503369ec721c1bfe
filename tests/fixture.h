/*
 * fixture — what the integration test programs share on top of the
 * harness: one sluice (fresh certificates, a YAML file written from a few
 * options) in front of one or two sluice-echo backends on 127.0.0.1, the
 * teardown every test ends with (SIGTERM, exit status 0, a log with no
 * crash, sanitizer report or [crit] line), TLS clients and the frames they
 * expect, /metrics on the admin endpoint; and the Check main() of every
 * test program, unit tests included (fixture_run_suite).
 *
 * Failures are Check assertions, so call everything from the test's own
 * thread. Every wait has a deadline (FIXTURE_IO_MS unless said otherwise).
 */
#ifndef SLUICE_FIXTURE_H
#define SLUICE_FIXTURE_H

#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"

#define FIXTURE_MAX_ECHOS 2
/* Deadline of every receive, connect and scrape made here. */
#define FIXTURE_IO_MS 10000
/* The same deadline for the test programs' own receives, connects and
 * polls. */
#define T_IO_MS FIXTURE_IO_MS

/* The test program's main(): runs the suite with CK_NORMAL output and
 * returns EXIT_SUCCESS or EXIT_FAILURE. Defined in this header rather than
 * in fixture.c because three unit test programs link libsluice.a only,
 * not libharness.a. */
static inline int
fixture_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and elapsed times. */
int64_t fixture_mono_ms(void);

/* ---- sluice and its echos ---------------------------------------------- */

/* One sluice in front of up to FIXTURE_MAX_ECHOS echo servers. Owned by the
 * test (usually on its stack), from fixture_up to fixture_down, or to
 * fixture_cleanup when the test stops sluice itself. */
struct fixture {
	char dir[PATH_MAX];                  /* temporary folder, holds all files */
	char conf[PATH_MAX + 32];            /* dir/sluice.yaml */
	char log[PATH_MAX + 32];             /* dir/sluice.log, sluice's output */
	/* echo i's --trace file; "" when untraced */
	char trace[FIXTURE_MAX_ECHOS][PATH_MAX + 32];
	uint16_t port;                       /* the TLS listener */
	uint16_t port2;                      /* a second listener's (second_port) */
	uint16_t admin_port;                 /* 0: no admin endpoint */
	uint16_t echo_port[FIXTURE_MAX_ECHOS];
	struct harness_proc echo[FIXTURE_MAX_ECHOS];
	struct harness_proc sluice;
	int n_echos;
	int echo_stopped[FIXTURE_MAX_ECHOS]; /* SIGSTOPped: SIGCONT before teardown */
};

/* What fixture_up starts and what a configuration file says. Zero (NULL)
 * fields take the default in brackets. */
struct fixture_opts {
	/* processes, read by fixture_up */
	int n_echos;                 /* echo servers [1] */
	const char *echo_args;       /* extra sluice-echo arguments, every echo */
	const char *echo_args_of[FIXTURE_MAX_ECHOS]; /* echo i's instead, when set */
	unsigned start_echos_later:1; /* the file names the echos; the test
				       * starts them (fixture_start_echo) */
	unsigned untraced:1;         /* echos without --trace files */
	unsigned admin:1;            /* an admin endpoint on a free port */
	unsigned second_port:1;      /* pick port2, for files that add a listener */
	/* the file, read by fixture_write_config too */
	const char *top;             /* YAML lines at the top level (user:, group:) */
	const char *workers;         /* workers: ["1"] */
	const char *backend;         /* the one backend's name ["app"] */
	unsigned listeners;          /* bit 0: listen on port, bit 1: on port2 [port] */
	/* more certificates every listener serves after server.crt: the
	 * basenames of NAME.crt and NAME.key in the folder, NULL-terminated */
	const char *const *more_certs;
	unsigned servers;            /* bit i: echo i is a server [every echo] */
	uint16_t extra_server;       /* one more server: a port of the test's own */
	unsigned connections;        /* per server [2] */
	const char *connect_timeout; /* backends.app.connect_timeout ["1s"] */
	const char *backend_extra;   /* YAML lines appended to the backend */
	const char *max_frame;       /* limits.max_frame_size ["1MiB"] */
	const char *limits;          /* more YAML lines under limits: */
	const char *grace;           /* shutdown.grace_timeout ["2s"] */
	const char *delay;           /* shutdown.delay [none] */
	const char *level;           /* log.level ["debug"] */
};

/* How long sluice may take to log "running" and to exit after SIGTERM in
 * fixture_up and fixture_down; 10 s each unless a program sets its own
 * (from main(), before fixture_run_suite). */
void fixture_set_deadlines(int start_ms, int exit_ms);

/* A temporary folder with a certificate for "localhost", free ports, the
 * echos, the configuration file, and sluice running. */
void fixture_up(struct fixture *fx, const struct fixture_opts *o);
/* fixture_up in two steps, for a test that adds files to the folder (more
 * certificates) before sluice reads it: the folder, its certificate, the
 * ports and the echos; then the configuration file and sluice. */
void fixture_prepare(struct fixture *fx, const struct fixture_opts *o);
void fixture_start_sluice(struct fixture *fx, const struct fixture_opts *o);
/* The same with a configuration file the test wrote as text. */
void fixture_start_text(struct fixture *fx, const char *text);
/* Starts sluice on the file already written (fx->conf) and waits until it
 * runs, like the two above. */
void fixture_spawn_sluice(struct fixture *fx);
/* When SLUICE_MAX_READ is set (tests/integration/tiny_reads.sh), asserts
 * that sluice's log says its reads are capped to that size (unless the
 * file logs errors only); nothing otherwise. fixture_up calls it; so must
 * a program that starts sluice itself, once it runs. */
void fixture_check_max_read(const struct fixture *fx);
/* Starts echo i (again) on its port, with its trace file and args. */
void fixture_start_echo(struct fixture *fx, int i, const char *args);
/* SIGSTOP / SIGCONT echo i: a backend that stalls. fixture_down resumes
 * it, so that sluice's drain does not wait on it. */
void fixture_stop_echo(struct fixture *fx, int i);
void fixture_cont_echo(struct fixture *fx, int i);

/* The configuration file o describes, as text. */
void fixture_config_text(const struct fixture *fx, const struct fixture_opts *o, char *out,
			 size_t len);
/* Replaces the configuration file atomically (written aside, renamed
 * over), as a deployment tool would: a reload never reads half a file. */
void fixture_write_text(const struct fixture *fx, const char *text);
void fixture_write_config(const struct fixture *fx, const struct fixture_opts *o);

/* What sluice logs when a reload applied, and when it was rejected. */
#define FIXTURE_RELOADED "configuration reloaded:"
#define FIXTURE_REJECTED "reload rejected:"
/* How long a reload may take (fixture_hup). */
#define FIXTURE_RELOAD_MS 20000
/* SIGHUP, and waits for its outcome (FIXTURE_RELOAD_MS), failing at once
 * if sluice dies; asserts that exactly one reload line came: applied
 * (expect_ok), or rejected. */
void fixture_hup(struct fixture *fx, int expect_ok);

/* What every test ends with: SIGCONT to stopped echos, SIGTERM, then as
 * fixture_wait_exit, then the echos and the folder go. */
void fixture_down(struct fixture *fx);
/* sluice exits (after a SIGTERM sent by the test), with status 0 and a
 * clean log. */
void fixture_wait_exit(struct fixture *fx);
/* After sluice exited: its log is clean, the echos and the folder go. */
void fixture_cleanup(struct fixture *fx);

/* Occurrences of needle in sluice's log. */
int fixture_count_log(const struct fixture *fx, const char *needle);
/* Polls until needle occurs n times in sluice's log (FIXTURE_IO_MS),
 * failing at once if sluice exits first; then asserts, counting again,
 * that it occurs exactly n times. */
void fixture_wait_log_count(struct fixture *fx, const char *needle, int n);
/* A rate-limited kind of line (SPEC §10) in the log at path: *lines (may
 * be NULL) counts the lines that contain needle, *summarised (may be NULL)
 * adds up N over the summaries "WHAT: ... and N more like this in the last
 * S s". Returns the sum: every event of the kind, once its summaries are
 * out (at the latest when sluice has exited). 0 when the log is missing. */
long fixture_log_limited(const char *path, const char *needle, const char *what, long *lines,
			 long *summarised);

/* sluice's resident memory (VmRSS) in KiB; asserts it can be read. */
long fixture_rss_kib(const struct fixture *fx);
/* The descriptors sluice has open now (/proc/PID/fd); asserts it can be
 * read. */
int fixture_open_fds(const struct fixture *fx);

/* Instrumentation sluice can run under, for fixture_instrumented. */
#define FIXTURE_ASAN 1u      /* AddressSanitizer: redzones around every block,
			      * a quarantine of freed ones */
#define FIXTURE_VALGRIND 2u  /* valgrind: its shadow memory and heap live in
			      * the process, which runs 20-50 times slower */
/* Which of the instrumentation in kinds (FIXTURE_ASAN | FIXTURE_VALGRIND)
 * sluice runs under, from the libraries it has mapped: "ASan",
 * "valgrind", or NULL for none of them (a plain build, the one whose
 * memory and latency figures are sluice's). */
const char *fixture_instrumented(const struct fixture *fx, unsigned kinds);

/* ---- clients and frames ------------------------------------------------ */

/* A TLS client (SNI localhost, no certificate checks) of fx->port, or of
 * port. */
struct harness_tls *fixture_connect(const struct fixture *fx);
struct harness_tls *fixture_connect_port(uint16_t port);

/* A short description of f for failure messages; returns out. */
const char *fixture_frame_desc(const struct harness_frame *f, char *out, size_t len);
/* The next frame has no header and exactly this payload. */
void fixture_expect_frame(struct harness_tls *t, const void *payload, uint32_t len);
/* The next frame is ERR code. */
void fixture_expect_err(struct harness_tls *t, const char *code);
/* The next frame is QUIT. */
void fixture_expect_quit(struct harness_tls *t);
/* sluice closes the connection, with a TLS close_notify first. */
void fixture_expect_closed_with_notify(struct harness_tls *t);
/* Sends text as a payload and expects it back. */
void fixture_round_trip(struct harness_tls *t, const char *text);

/* ---- the admin endpoint ------------------------------------------------ */

struct fixture_http_response {
	int status;             /* from the status line */
	char *head;             /* status line and headers, NUL-terminated; owns
				 * the buffer */
	char *body;             /* into head's buffer, after the blank line */
};

/* Sends request (a whole HTTP/1.0 request) to 127.0.0.1:port and reads the
 * response until the close; asserts that one came. */
void fixture_http_raw(uint16_t port, const char *request, struct fixture_http_response *r);
/* The same with a deadline of timeout_ms instead of FIXTURE_IO_MS. */
void fixture_http_raw_within(uint16_t port, const char *request, int timeout_ms,
			     struct fixture_http_response *r);
/* METHOD path, no body. */
void fixture_http_request(uint16_t port, const char *method, const char *path,
			  struct fixture_http_response *r);
void fixture_http_free(struct fixture_http_response *r);

/* The body of GET /metrics (malloc'd), after checking status and type. */
char *fixture_scrape(const struct fixture *fx);
/* The value of one series ("name" or "name{labels}") in a scraped text, or
 * -1 when it is absent. */
double fixture_series_value(const char *text, const char *series);
/* Scrapes once and returns the series' value; asserts it is there. */
double fixture_metric(const struct fixture *fx, const char *series);

/* What fixture_wait_metric waits for. */
enum fixture_metric_until {
	/* The value equals want: a gauge, which may pass other values, up
	 * or down, on its way. */
	FIXTURE_METRIC_EQUAL,
	/* The value reaches want and is exactly want: a counter, which can
	 * never come back from past want, so that fails at once. */
	FIXTURE_METRIC_COUNTER,
	/* The value reaches want or more. */
	FIXTURE_METRIC_AT_LEAST,
};
/* Scrapes until the series satisfies until (metrics move asynchronously:
 * a refused client may see the alert before sluice has counted it, a
 * closed connection leaves the gauges a little later), within
 * FIXTURE_IO_MS; asserts that it does and returns the last value. */
double fixture_wait_metric(const struct fixture *fx, const char *series, double want,
			   enum fixture_metric_until until);

#endif
