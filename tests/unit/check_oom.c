/*
 * check_oom — every allocation on sluice's data path fails once, in turn
 * (docs/TESTING.md, "Out-of-memory testing").
 *
 * The machinery is fuzz_session's (tests/fuzz/fuzz_session.c): a real
 * worker whose loop this process drives, plain clients handed to
 * session_attach, a fake backend on 127.0.0.1. Each test here is one
 * script of its steps, run over and over: first with the 1st allocation
 * from the start of the script failing, then the 2nd, and so on, until a
 * run makes fewer allocations than the one to fail. An allocation is
 * libevent's (event_set_mem_functions) or sluice's own malloc, calloc,
 * realloc or strdup (the program is linked with --wrap for those; see
 * tests/fuzz/oom.h); the harness's own never fail.
 *
 * After every run fuzz_session checks what it checks after any input:
 * no session, request, pending count, pause-list entry or gauge left, every
 * connection of the pool listed and counted once, and, for scripts that
 * only send and echo, that a client still connected got every answer (its
 * echo or an ERR) in order. A broken invariant aborts; under
 * AddressSanitizer a use after free or a leak fails the test too.
 *
 * SLUICE_OOM_AT=n runs only the nth failure point of each script and says
 * what the run did (SLUICE_FUZZ_TRACE, SLUICE_FUZZ_LOG=debug add more);
 * SLUICE_OOM_SCRIPT=name runs only that script.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fuzz/fuzz.h"
#include "../fuzz/fuzz_session.h"
#include "../fuzz/oom.h"

/* No script here makes more allocations than this in a run. */
#define OOM_MAX_POINTS 5000ul

/* ---- scripts ---------------------------------------------------------- */

struct script {
	const char *name;
	uint8_t buf[32768];
	size_t len;
};

static void
put(struct script *sc, const void *p, size_t n)
{
	ck_assert_uint_le(sc->len + n, sizeof(sc->buf));
	memcpy(sc->buf + sc->len, p, n);
	sc->len += n;
}

static void
begin(struct script *sc, const char *name, uint8_t flags)
{
	sc->name = name;
	sc->len = 0;
	put(sc, &flags, 1);
}

static void
step(struct script *sc, enum op op, unsigned arg, const void *data, size_t len)
{
	uint8_t tag[3] = { (uint8_t)(op | arg << 4), (uint8_t)(len >> 8), (uint8_t)len };

	put(sc, tag, sizeof(tag));
	if (len > 0)
		put(sc, data, len);
}

static void
op(struct script *sc, enum op o, unsigned arg)
{
	step(sc, o, arg, NULL, 0);
}

static void
loop(struct script *sc)
{
	op(sc, OP_LOOP, 15);
}

/* The v1 frame header/payload into out; returns its length. */
static size_t
frame(uint8_t *out, const char *header, const char *payload)
{
	size_t hl = strlen(header), pl = strlen(payload), total = 6 + hl + pl;

	out[0] = (uint8_t)(hl >> 8);
	out[1] = (uint8_t)hl;
	out[2] = (uint8_t)(total >> 24);
	out[3] = (uint8_t)(total >> 16);
	out[4] = (uint8_t)(total >> 8);
	out[5] = (uint8_t)total;
	memcpy(out + 6, header, hl);
	memcpy(out + 6 + hl, payload, pl);
	return total;
}

/* Requests "get keyA" ... for each character of keys, then a QUIT if
 * quit, sent by client idx. */
static void
requests(struct script *sc, unsigned idx, const char *keys, int quit)
{
	uint8_t data[512];
	size_t n = 0;
	char payload[8];

	for (const char *k = keys; *k != '\0'; k++) {
		snprintf(payload, sizeof(payload), "key%c", *k);
		n += frame(data + n, "get", payload);
	}
	if (quit)
		n += frame(data + n, "QUIT", "");
	step(sc, OP_CLIENT, idx, data, n);
}

/* A request waits in the pool's queue (both connections closed by the
 * backend, in backoff) until queue_timeout: ERR BUSY from pool_tick. */
static void
script_queue_timeout_busy(struct script *sc)
{
	begin(sc, "queue-timeout-busy", 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	loop(sc);
	requests(sc, 0, "ab", 0);
	loop(sc);
	op(sc, OP_TICK, 0);
	loop(sc);
}

/* Written requests whose connection the backend closes: ERR UNAVAILABLE
 * (upstream_fail_requests); then the connection comes back and serves. */
static void
script_written_unavailable(struct script *sc)
{
	begin(sc, "written-unavailable", 0);
	requests(sc, 0, "abc", 0);
	loop(sc);
	op(sc, OP_BACKEND_CLOSE, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	loop(sc);
	op(sc, OP_TIMERS, 1);
	loop(sc);
	requests(sc, 0, "d", 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* An answer parked behind an earlier unanswered request: each client has
 * a request on its own connection; the pool shrinks, one connection
 * retires, and the next request of the client on it waits (a retiring
 * connection takes nothing new) until queue_timeout answers it ERR BUSY
 * while its first request is still out (session_respond holds it in its
 * request); then the backend answers everything. */
static void
script_parked_answer(struct script *sc)
{
	begin(sc, "parked-answer", 0);
	requests(sc, 0, "a", 0);
	requests(sc, 1, "b", 0);
	loop(sc);
	op(sc, OP_RESIZE, 1);
	loop(sc);
	requests(sc, 0, "c", 0);
	requests(sc, 1, "d", 0);
	loop(sc);
	op(sc, OP_TICK, 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* A reload shrinks the pool (pool_reconfigure; a connection with requests
 * on it retires with QUIT, pool_collect frees it and rebuilds the list),
 * then grows it back (upstream_new, pool_rebuild_all). */
static void
script_resize(struct script *sc)
{
	begin(sc, "resize", 0);
	requests(sc, 0, "ab", 0);
	requests(sc, 1, "c", 0);
	loop(sc);
	op(sc, OP_RESIZE, 1);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
	op(sc, OP_RESIZE, 0);
	loop(sc);
	requests(sc, 0, "d", 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* Clients leave with requests in flight: one with requests written (their
 * answers are discarded when they come), one with requests waiting in the
 * pool's queue (pool_cancel). */
static void
script_client_leaves(struct script *sc)
{
	begin(sc, "client-leaves", 0);
	requests(sc, 1, "ab", 0);
	loop(sc);
	op(sc, OP_BACKEND_CLOSE, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	loop(sc);
	requests(sc, 0, "cd", 0);
	loop(sc);
	op(sc, OP_CLIENT_CLOSE, 0);
	op(sc, OP_CLIENT_CLOSE, 1);
	loop(sc);
	op(sc, OP_TIMERS, 1);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* Only sends and echoes, in reads of 7 bytes (frames split over evbuffer
 * chains: requests and answers move with evbuffer_remove_buffer, which
 * copies the chain it splits): each answer must be the echo or an ERR. */
static void
script_clean_pipelined(struct script *sc)
{
	begin(sc, "clean-pipelined", 2);
	requests(sc, 0, "abcdef", 1);
	requests(sc, 1, "gh", 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* A session that must be closed for want of memory when libevent's timer
 * heap is full: the client sent a request and QUIT (its idle timer is off
 * the heap), the heap is filled, and from the backend closing the
 * connection on, three allocations fail in a row: the ERR UNAVAILABLE for
 * the request (the session is killed and freed from its timer, whose
 * arming needs the heap to grow) and whatever follows. */
static void
script_kill_full_timer_heap(struct script *sc)
{
	static const uint8_t first[1] = { 0 };

	begin(sc, "kill-full-timer-heap", 0);
	requests(sc, 0, "a", 1);
	loop(sc);
	op(sc, OP_FILL_TIMERS, 0);
	step(sc, OP_OOM, 2, first, sizeof(first));
	op(sc, OP_BACKEND_CLOSE, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	loop(sc);
	op(sc, OP_TIMERS, 1);
	loop(sc);
}

/* Connections fail while libevent's timer heap is full: arming their
 * reconnection (backoff) needs it to grow. */
static void
script_backoff_full_timer_heap(struct script *sc)
{
	begin(sc, "backoff-full-timer-heap", 0);
	op(sc, OP_FILL_TIMERS, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	op(sc, OP_BACKEND_CLOSE, 0);
	loop(sc);
	op(sc, OP_TIMERS, 1);
	loop(sc);
	requests(sc, 0, "a", 0);
	loop(sc);
	op(sc, OP_ECHO, 0);
	loop(sc);
}

/* ---- the sweep ----------------------------------------------------------- */

static const char *current_script = "";
static unsigned long current_point;

/* A broken invariant aborts (or a sanitizer ends the process): say which
 * failure point it was. Only async-signal-safe calls. */
static void
say_where(void)
{
	char line[160];
	int n = current_point > 0 ?
		snprintf(line, sizeof(line), "check_oom: script %s, allocation %lu failing\n",
			 current_script, current_point) :
		snprintf(line, sizeof(line), "check_oom: script %s, with the failures it arms itself\n",
			 current_script);

	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nothing more to say */
	}
}

static void
on_abort(int sig)
{
	say_where();
	signal(sig, SIG_DFL);
	raise(sig);
}

extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void
setup_once(void)
{
	static int done;
	int argc = 1;
	char *args[] = { (char *)"check_oom", NULL };
	char **argv = args;

	if (done)
		return;
	done = 1;
	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	if (__sanitizer_set_death_callback != NULL)
		__sanitizer_set_death_callback(say_where);
	ck_assert_int_eq(LLVMFuzzerInitialize(&argc, &argv), 0);
}

/* Whether the script has OP_OOM steps of its own (fuzz_session's input
 * format: a flags byte, then tag, 2-byte length, data). */
static bool
arms_itself(const struct script *sc)
{
	size_t off = 1;

	while (off + 3 <= sc->len) {
		size_t len = (size_t)sc->buf[off + 1] << 8 | sc->buf[off + 2];

		if ((sc->buf[off] & 15) % OP_COUNT == OP_OOM)
			return true;
		off += 3 + len;
	}
	return false;
}

/* SLUICE_OOM_SCRIPT names the only script to run. */
static bool
selected(const struct script *sc)
{
	const char *only = getenv("SLUICE_OOM_SCRIPT");

	return only == NULL || *only == '\0' || strcmp(only, sc->name) == 0;
}

/* Runs the script with allocation 1, 2, ... failing until a run does not
 * get that far (and past the number a run without failures makes: a
 * failure may make a run shorter); returns how many points failed an
 * allocation. */
static unsigned long
sweep(const struct script *sc, unsigned burst)
{
	const char *only = getenv("SLUICE_OOM_AT");
	unsigned long first = 1, last = OOM_MAX_POINTS, n, hit = 0, total = 0;

	if (!selected(sc))
		return 1;
	setup_once();
	current_script = sc->name;
	if (only != NULL && *only != '\0')
		first = last = strtoul(only, NULL, 10);
	/* Once without failures: the script itself passes, and the
	 * allocations it makes are counted. */
	current_point = 0;
	oom_arm(ULONG_MAX, 1);
	LLVMFuzzerTestOneInput(sc->buf, sc->len);
	total = oom_seen();
	ck_assert_uint_eq(oom_failed(), 0);
	for (n = first; n <= last; n++) {
		current_point = n;
		oom_arm(n, burst);
		LLVMFuzzerTestOneInput(sc->buf, sc->len);
		if (only != NULL && *only != '\0')
			fprintf(stderr, "check_oom: %s: allocation %lu of %lu %s\n", sc->name, n, oom_seen(),
				oom_failed() > 0 ? "failed" : "not reached");
		if (oom_failed() == 0 && n > total)
			break;
		hit += oom_failed() > 0;
	}
	ck_assert_msg(n <= last || first == last, "%s: still failing allocations after %lu points", sc->name,
		      last);
	ck_assert_uint_eq(oom_wraps_libc(), 1);
	printf("check_oom: %s: %lu allocation points swept%s (%lu allocations in a run without failures)\n",
	       sc->name, hit, burst > 1 ? " (bursts of 3)" : "", total);
	fflush(stdout);
	return hit;
}

#define SWEEP_TEST(fn)                          \
	START_TEST(test_##fn)                   \
	{                                       \
		struct script sc;               \
					        \
		fn(&sc);                        \
		ck_assert_uint_gt(sweep(&sc, 1), 0); \
		ck_assert_uint_gt(sweep(&sc, 3), 0); \
	}                                       \
	END_TEST

SWEEP_TEST(script_queue_timeout_busy)
SWEEP_TEST(script_written_unavailable)
SWEEP_TEST(script_parked_answer)
SWEEP_TEST(script_resize)
SWEEP_TEST(script_client_leaves)
SWEEP_TEST(script_clean_pipelined)
SWEEP_TEST(script_backoff_full_timer_heap)

/* The script arms its own failures: run once, as it is. */
START_TEST(test_script_kill_full_timer_heap)
{
	struct script sc;

	script_kill_full_timer_heap(&sc);
	if (!selected(&sc))
		return;
	setup_once();
	current_script = sc.name;
	current_point = 0;
	LLVMFuzzerTestOneInput(sc.buf, sc.len);
}
END_TEST

/* Every seed of fuzz_session's corpus, swept the same way, as it is and
 * with libevent's timer heap full from the start (every timer sluice arms
 * first may need it to grow). Seeds that arm failures themselves (oom-*)
 * run once, as they are. */
START_TEST(test_corpus_seeds)
{
	const char *srcdir = getenv("SLUICE_SRCDIR");
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent **names;
	static struct script sc;
	char fillname[300];
	unsigned long points = 0;
	int n;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/session", srcdir != NULL && *srcdir != '\0' ? srcdir : ".");
	n = scandir(dir, &names, NULL, alphasort);
	ck_assert_msg(n > 0, "%s: no seeds", dir);
	for (int i = 0; i < n; i++) {
		FILE *fp;

		if (names[i]->d_name[0] == '.') {
			free(names[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		fp = fopen(path, "rb");
		ck_assert_msg(fp != NULL, "%s: cannot open", path);
		sc.name = names[i]->d_name;
		sc.len = fread(sc.buf, 1, sizeof(sc.buf) - 3, fp);
		ck_assert_msg(feof(fp), "%s: larger than %zu bytes", path, sizeof(sc.buf) - 3);
		fclose(fp);
		if (arms_itself(&sc)) {
			if (selected(&sc)) {
				setup_once();
				current_script = sc.name;
				current_point = 0;
				LLVMFuzzerTestOneInput(sc.buf, sc.len);
			}
			free(names[i]);
			continue;
		}
		points += sweep(&sc, 1);
		if (sc.len > 0) {
			/* The flags byte, then OP_FILL_TIMERS with no data. */
			memmove(sc.buf + 4, sc.buf + 1, sc.len - 1);
			sc.buf[1] = OP_FILL_TIMERS;
			sc.buf[2] = sc.buf[3] = 0;
			sc.len += 3;
			snprintf(fillname, sizeof(fillname), "%s + full timer heap", names[i]->d_name);
			sc.name = fillname;
			points += sweep(&sc, 1);
		}
		free(names[i]);
	}
	free(names);
	ck_assert_uint_gt(points, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("oom");
	TCase *tc = tcase_create("sweep");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_script_queue_timeout_busy);
	tcase_add_test(tc, test_script_written_unavailable);
	tcase_add_test(tc, test_script_parked_answer);
	tcase_add_test(tc, test_script_resize);
	tcase_add_test(tc, test_script_client_leaves);
	tcase_add_test(tc, test_script_clean_pipelined);
	tcase_add_test(tc, test_script_backoff_full_timer_heap);
	tcase_add_test(tc, test_script_kill_full_timer_heap);
	tcase_add_test(tc, test_corpus_seeds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
