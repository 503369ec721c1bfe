/*
 * main — command line, configuration, signals, and the worker threads'
 * lifecycle. The main thread serves no traffic: it owns the signals and the
 * configuration, starts the workers and waits for them to drain.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <sluice/admin.h>
#include <sluice/clock.h>
#include <sluice/config.h>
#include <sluice/listener.h>
#include <sluice/log.h>
#include <sluice/metrics.h>
#include <sluice/probes.h>
#include <sluice/process.h>
#include <sluice/tls.h>
#include <sluice/tls_tickets.h>
#include <sluice/units.h>
#include <sluice/worker.h>

#ifndef SLUICE_SYSCONFDIR
#define SLUICE_SYSCONFDIR "/etc"
#endif
#define MAIN_DEFAULT_CONFIG SLUICE_SYSCONFDIR "/sluice/sluice.yaml"
#define MAIN_ABORT_MARGIN_MS 250u

struct main_state {
	struct event_base *base;
	struct config *cfg;
	struct worker **workers;
	unsigned n_workers;
	unsigned n_done;
	unsigned stopping:1;          /* a stop signal came */
	unsigned delaying:1;          /* ... and shutdown.delay runs: unready, serving */
	struct event *delay;          /* the end of shutdown.delay */
	struct event *grace;
	struct event *done;
	struct event *signals[4];
	unsigned n_signals;
	struct admin *admin;          /* NULL without admin.address */
	struct metrics_global global;
	struct event *reload;         /* runs a reload; SIGHUPs only request one */
	struct event *reload_done;    /* a worker applied the new snapshot */
	struct event *tickets;        /* rotates the TLS session ticket keys */
	struct config *next;          /* being applied by the workers */
	unsigned n_applied;
	unsigned reload_gen;          /* reloads handed to the workers */
	unsigned reload_requested:1;  /* SIGHUP since the last reload started */
};

static int
main_render_metrics(struct evbuffer *out, void *arg)
{
	struct main_state *m = arg;

	return metrics_render(out, m->workers, m->n_workers, &m->global);
}

static int
main_live(char *why, size_t len, void *arg)
{
	struct main_state *m = arg;

	return probes_live(m->workers, m->n_workers, clock_ms(), why, len);
}

static int
main_ready(char *why, size_t len, void *arg)
{
	struct main_state *m = arg;

	if (m->delaying) {
		snprintf(why, len, "shutdown delay");
		return 0;
	}
	return probes_ready(m->workers, m->n_workers, m->cfg, why, len);
}

static const struct admin_ops main_admin_ops = {
	.render = main_render_metrics,
	.live = main_live,
	.ready = main_ready,
};

static void
main_usage(FILE *out)
{
	fprintf(out,
		"usage: sluice [-t] [-c FILE]\n"
		"       sluice -V | -h\n"
		"\n"
		"TLS-terminating reverse proxy for a length-prefixed frame protocol.\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -t, --test         check the configuration and certificates, then exit\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"\n"
		"Signals: SIGTERM/SIGINT/SIGQUIT drain and exit (a second one exits at once);\n"
		"SIGHUP re-reads the configuration. See sluice(8).\n",
		MAIN_DEFAULT_CONFIG);
}

/* At start-up and for -t the errors are printed as they are; on reload
 * they become log lines, so they carry a time and a level. */
static struct config *
main_load(const char *path, int as_log)
{
	char *errors = NULL;
	struct config *cfg = config_load(path, &errors);
	char *line, *save = NULL;

	if (cfg != NULL)
		return cfg;
	if (!as_log) {
		fprintf(stderr, "%s\n", errors != NULL ? errors : "out of memory");
		fprintf(stderr, "sluice: configuration %s is invalid\n", path);
	} else if (errors != NULL) {
		for (line = strtok_r(errors, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
			log_error("%s", line);
	}
	free(errors);
	return NULL;
}

static const char *
main_signame(int sig)
{
	static __thread char name[16];

	snprintf(name, sizeof(name), "SIG%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	return name;
}

static void
main_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state *m = arg;

	(void)fd;
	(void)what;
	log_warn("grace period over: closing the remaining connections now");
	for (unsigned i = 0; i < m->n_workers; i++)
		worker_abort(m->workers[i]);
}

static struct timeval
main_timeval(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	return tv;
}

/* The QUIT drain of every client and backend (SPEC §3). */
static void
main_drain(struct main_state *m)
{
	/* Sessions close themselves, with close_notify, when grace_timeout
	 * passes; this later deadline only catches what is still open then. */
	struct timeval tv = main_timeval(m->cfg->grace_timeout_ms + MAIN_ABORT_MARGIN_MS);

	m->delaying = 0;
	if (m->admin != NULL)
		admin_set_draining(m->admin, 1);
	for (unsigned i = 0; i < m->n_workers; i++)
		worker_stop(m->workers[i]);
	if (evtimer_add(m->grace, &tv) < 0)
		log_error("cannot arm the grace timer");
}

static void
main_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state *m = arg;

	(void)fd;
	(void)what;
	log_info("shutdown: delay over; stopping gracefully (grace_timeout %llu ms)",
		 (unsigned long long)m->cfg->grace_timeout_ms);
	main_drain(m);
}

/* shutdown.delay (SPEC §8): /readyz says 503 at once, so that load
 * balancers stop sending clients, while listeners keep accepting and
 * serving; the drain starts when it ends. */
static int
main_delay(struct main_state *m, int sig)
{
	struct timeval tv = main_timeval(m->cfg->shutdown_delay_ms);
	char delay[32];

	if (m->cfg->shutdown_delay_ms == 0)
		return -1;
	if (evtimer_add(m->delay, &tv) < 0) {
		log_error("cannot arm the shutdown.delay timer: draining now");
		return -1;
	}
	m->delaying = 1;
	units_format_duration(m->cfg->shutdown_delay_ms, delay, sizeof(delay));
	log_info("%s received: shutdown: not ready; draining in %s (shutdown.delay), still serving until then",
		 main_signame(sig), delay);
	return 0;
}

static void
main_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct main_state *m = arg;

	(void)what;
	if (m->stopping) {
		log_warn("%s received again: exiting now without draining", main_signame((int)sig));
		/* _exit skips main's own log_stop. */
		(void)log_stop(LOG_STOP_MS);
		_exit(0);
	}
	m->stopping = 1;
	if (main_delay(m, (int)sig) == 0)
		return;
	log_info("%s received: stopping gracefully (grace_timeout %llu ms)", main_signame((int)sig),
		 (unsigned long long)m->cfg->grace_timeout_ms);
	main_drain(m);
}

/* Signals only ask for a reload: a storm of SIGHUPs while one is under way
 * makes exactly one more (hitch issue #285 lost traffic to a reload storm). */
static void
main_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct main_state *m = arg;

	(void)sig;
	(void)what;
	if (m->stopping)
		return;
	m->reload_requested = 1;
	if (m->next == NULL)
		event_active(m->reload, EV_TIMEOUT, 0);
}

static void
main_close_fds(int **fds, unsigned n_workers, size_t n_listeners)
{
	for (unsigned w = 0; w < n_workers; w++) {
		for (size_t i = 0; fds[w] != NULL && i < n_listeners; i++) {
			if (fds[w][i] >= 0)
				close(fds[w][i]);
		}
		free(fds[w]);
	}
	free(fds);
}

/* One socket per worker for every listener of next whose address the
 * running configuration does not serve yet (-1 where it does). All or
 * nothing: NULL when any bind fails. */
static int **
main_bind(struct main_state *m, const struct config *next, const struct config *running)
{
	int **fds = calloc(m->n_workers, sizeof(*fds));

	if (fds == NULL)
		return NULL;
	for (unsigned w = 0; w < m->n_workers; w++) {
		fds[w] = malloc((next->n_listeners + 1) * sizeof(**fds));
		if (fds[w] == NULL)
			goto fail;
		for (size_t i = 0; i < next->n_listeners; i++)
			fds[w][i] = -1;
	}
	for (size_t i = 0; i < next->n_listeners; i++) {
		int served = 0;

		for (size_t j = 0; running != NULL && j < running->n_listeners; j++)
			served |= config_addr_equal(&running->listeners[j].addr, &next->listeners[i].addr);
		for (unsigned w = 0; w < m->n_workers && !served; w++) {
			fds[w][i] = listener_bind(&next->listeners[i].addr);
			if (fds[w][i] < 0)
				goto fail;
		}
	}
	return fds;
fail:
	main_close_fds(fds, m->n_workers, next->n_listeners);
	return NULL;
}

static void
main_reload_failed(struct main_state *m, const char *why)
{
	m->global.reloads_failure++;
	log_error("reload rejected: %s; the running configuration stays in force", why);
}

/* Admin address changed: the new endpoint must bind before the old goes. */
static void
main_reload_admin(struct main_state *m, struct config *next)
{
	struct admin *a = NULL;

	if (m->cfg->has_admin == next->has_admin &&
	    (!next->has_admin || config_addr_equal(&m->cfg->admin_addr, &next->admin_addr)))
		return;
	if (next->has_admin) {
		a = admin_new(m->base, &next->admin_addr, &main_admin_ops, m);
		if (a == NULL) {
			log_error("reload: admin endpoint %s cannot listen; keeping the old one", next->admin_addr.text);
			return;
		}
	}
	if (m->admin != NULL)
		admin_free(m->admin);
	m->admin = a;
}

static void
main_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state *m = arg;
	struct config *next;
	int **fds;

	(void)fd;
	(void)what;
	m->reload_requested = 0;
	log_info("reloading %s", m->cfg->path);
	next = main_load(m->cfg->path, 1);
	if (next == NULL) {
		main_reload_failed(m, "the file is invalid (see above)");
		return;
	}
	/* More clients or backend connections need more descriptors: raised
	 * now, before anything of the new file applies, or refused here
	 * rather than met later as accept and connect failures. The running
	 * worker count is what a reload keeps. */
	if (process_raise_nofile(next, m->n_workers) < 0) {
		config_unref(next);
		main_reload_failed(m, "the file descriptor limit is too low for it (see above)");
		return;
	}
	fds = main_bind(m, next, m->cfg);
	if (fds == NULL) {
		config_unref(next);
		main_reload_failed(m, "a new listener cannot listen (see above)");
		return;
	}
	log_set_level(next->log_level);
	config_warn_unsupported(next);
	log_info("%u TLS contexts reused, %u built", next->tls_reused, next->tls_built);
	if (config_workers(next) != config_workers(m->cfg))
		log_warn("reload: a new workers value applies at the next restart");
	main_reload_admin(m, next);
	m->next = next;
	m->n_applied = 0;
	m->reload_gen++;
	for (unsigned w = 0; w < m->n_workers; w++)
		worker_reload(m->workers[w], next, fds[w]);
	free(fds);
}

static void
main_reload_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state *m = arg;
	int partial = 0;

	(void)fd;
	(void)what;
	/* Activations of one event can merge: count the workers that are
	 * done, each exactly once, from their own flag. */
	m->n_applied = 0;
	for (unsigned w = 0; w < m->n_workers; w++)
		m->n_applied += worker_reloads_applied(m->workers[w]) == m->reload_gen;
	if (m->next == NULL || m->n_applied < m->n_workers)
		return;
	config_unref(m->cfg);
	m->cfg = m->next;
	m->next = NULL;
	for (unsigned w = 0; w < m->n_workers; w++)
		partial |= !worker_last_reload_ok(m->workers[w]);
	if (partial) {
		/* Out of memory in a worker: counted and said, not hidden. */
		m->global.reloads_failure++;
		log_error("configuration reloaded only in part (see above): restart sluice to apply it fully");
	} else {
		m->global.reloads_success++;
		tls_tickets_rotate();
		log_info("configuration reloaded: %zu listeners, %zu backends", m->cfg->n_listeners,
			 m->cfg->n_backends);
	}
	if (m->reload_requested)
		event_active(m->reload, EV_TIMEOUT, 0);
}

static void
main_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state *m = arg;

	(void)fd;
	(void)what;
	/* The done event is shared: count finished workers, not activations. */
	m->n_done = 0;
	for (unsigned i = 0; i < m->n_workers; i++)
		m->n_done += worker_finished(m->workers[i]);
	if (m->n_done == m->n_workers)
		event_base_loopexit(m->base, NULL);
}

/* Ticket keys age out even without reloads (tls_tickets.h). */
static void
main_tickets_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	tls_tickets_rotate();
}

/* A test knob, not a tuning one: SLUICE_TICKET_ROTATE_MS=1000 rotates the
 * ticket keys every second instead of every TLS_TICKET_ROTATE_S, so
 * check_tls can watch scheduled rotations. Read once, at start-up. */
static struct timeval
main_ticket_period(void)
{
	const unsigned long max_ms = TLS_TICKET_ROTATE_S * 1000UL;
	struct timeval period = { .tv_sec = TLS_TICKET_ROTATE_S };
	const char *v = getenv("SLUICE_TICKET_ROTATE_MS");
	char *end;
	unsigned long n;

	if (v == NULL || *v == '\0')
		return period;
	errno = 0;
	n = strtoul(v, &end, 10);
	/* strtoul takes blanks, a sign and overflows; a period does not. */
	if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n == 0 || n > max_ms) {
		log_warn("SLUICE_TICKET_ROTATE_MS=%s ignored: expected 1..%lu; ticket keys rotate every %d s",
			 v, max_ms, TLS_TICKET_ROTATE_S);
		return period;
	}
	log_warn("SLUICE_TICKET_ROTATE_MS=%lu: ticket keys rotate every %lu ms (tests only); "
		 "do not use in production", n, n);
	period.tv_sec = (time_t)(n / 1000);
	period.tv_usec = (suseconds_t)(n % 1000) * 1000;
	return period;
}

static void
main_block_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		log_warn("cannot block signals for the exit: one arriving now ends sluice by it");
}

static int
main_add_signal(struct main_state *m, int sig, event_callback_fn cb)
{
	struct event *ev = evsignal_new(m->base, sig, cb, m);

	if (ev == NULL)
		goto fail;
	m->signals[m->n_signals++] = ev;
	if (event_add(ev, NULL) < 0)
		goto fail;
	return 0;
fail:
	log_error("cannot handle %s", main_signame(sig));
	return -1;
}

static int
main_start(struct main_state *m)
{
	int **fds;

	m->n_workers = config_workers(m->cfg);
	m->workers = calloc(m->n_workers, sizeof(*m->workers));
	if (m->workers == NULL)
		return -1;
	if (process_raise_nofile(m->cfg, m->n_workers) < 0)
		return -1;
	fds = main_bind(m, m->cfg, NULL);
	if (fds == NULL)
		return -1;
	/* Every socket is bound and every key read: root is no longer needed
	 * (a reload then reads the files as the new user). */
	if (process_drop_privileges(m->cfg) < 0) {
		main_close_fds(fds, m->n_workers, m->cfg->n_listeners);
		return -1;
	}
	for (unsigned i = 0; i < m->n_workers; i++) {
		m->workers[i] = worker_new(i, m->cfg, fds[i], m->done, m->reload_done);
		free(fds[i]);
		fds[i] = NULL;
		if (m->workers[i] == NULL) {
			main_close_fds(fds, m->n_workers, m->cfg->n_listeners);
			return -1;
		}
	}
	free(fds);
	for (unsigned i = 0; i < m->n_workers; i++) {
		if (worker_start(m->workers[i]) < 0)
			return -1;
	}
	return 0;
}

/* Takes over the reference on cfg. */
static int
main_run(struct config *cfg)
{
	struct main_state m = { .cfg = cfg };
	struct timeval ticket_period = main_ticket_period();
	int rc = 1;

	if (evthread_use_pthreads() < 0 || (m.base = event_base_new()) == NULL) {
		log_error("cannot create the main event loop");
		config_unref(cfg);
		return 1;
	}
	m.grace = evtimer_new(m.base, main_grace_cb, &m);
	m.delay = evtimer_new(m.base, main_delay_cb, &m);
	m.done = event_new(m.base, -1, 0, main_done_cb, &m);
	m.reload = event_new(m.base, -1, 0, main_reload_cb, &m);
	m.reload_done = event_new(m.base, -1, 0, main_reload_done_cb, &m);
	m.tickets = event_new(m.base, -1, EV_PERSIST, main_tickets_cb, NULL);
	if (m.grace == NULL || m.delay == NULL || m.done == NULL || m.reload == NULL || m.reload_done == NULL ||
	    m.tickets == NULL || event_add(m.tickets, &ticket_period) < 0 ||
	    main_add_signal(&m, SIGTERM, main_stop_cb) < 0 ||
	    main_add_signal(&m, SIGINT, main_stop_cb) < 0 ||
	    main_add_signal(&m, SIGQUIT, main_stop_cb) < 0 ||
	    main_add_signal(&m, SIGHUP, main_hup_cb) < 0)
		goto out;
	if (cfg->has_admin) {
		m.admin = admin_new(m.base, &cfg->admin_addr, &main_admin_ops, &m);
		if (m.admin == NULL)
			goto out;
	}
	if (main_start(&m) < 0) {
		log_error("sluice cannot start (see above)");
		for (unsigned i = 0; i < m.n_workers && m.workers[i] != NULL; i++)
			worker_abort(m.workers[i]);
		goto out;
	}
	log_info("sluice %s running: %zu listeners, %zu backends, %u worker(s)", SLUICE_VERSION,
		 cfg->n_listeners, cfg->n_backends, m.n_workers);
	if (event_base_dispatch(m.base) < 0)
		log_crit("the main event loop failed");
	else
		rc = 0;
out:
	for (unsigned i = 0; i < m.n_workers; i++) {
		if (m.workers != NULL && m.workers[i] != NULL) {
			worker_join(m.workers[i]);
			worker_free(m.workers[i]);
		}
	}
	free(m.workers);
	if (m.admin != NULL)
		admin_free(m.admin);
	if (rc == 0)
		log_info("sluice stopped");
	/* Freeing the signal events gives the signals back their default
	 * action, which for these is death: one arriving now would turn a
	 * clean exit into "killed by SIGTERM". Every worker is joined, so
	 * blocking them here keeps them pending until the process is gone. */
	main_block_stop_signals();
	for (unsigned i = 0; i < m.n_signals; i++)
		event_free(m.signals[i]);
	if (m.grace != NULL)
		event_free(m.grace);
	if (m.delay != NULL)
		event_free(m.delay);
	if (m.done != NULL)
		event_free(m.done);
	if (m.reload != NULL)
		event_free(m.reload);
	if (m.reload_done != NULL)
		event_free(m.reload_done);
	if (m.tickets != NULL)
		event_free(m.tickets);
	if (m.next != NULL)
		config_unref(m.next);
	config_unref(m.cfg);
	event_base_free(m.base);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = MAIN_DEFAULT_CONFIG;
	struct config *cfg;
	int test = 0, opt, rc;

	while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("sluice %s\n", SLUICE_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		return 2;
	}
	/* A client vanishing mid-write must be an error code, not a death. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || process_harden() < 0 || tls_init() < 0) {
		fprintf(stderr, "sluice: cannot initialise (SIGPIPE or OpenSSL)\n");
		return 1;
	}
	cfg = main_load(path, 0);
	if (cfg == NULL)
		return 1;
	if (test) {
		printf("configuration OK\n");
		config_unref(cfg);
		return 0;
	}
	log_set_level(cfg->log_level);
	config_warn_unsupported(cfg);
	process_tune_malloc();
	/* From here no thread that serves traffic waits on stderr; without the
	 * writer (it says why) lines are written directly, as before. */
	(void)log_start();
	/* main_run owns cfg from here. */
	rc = main_run(cfg);
	/* The last lines ("sluice stopped") and pending summaries, unless
	 * stderr has stopped taking them: exiting matters more then. */
	(void)log_stop(LOG_STOP_MS);
	return rc;
}
