/*
 * harness — the library integration tests use to start real processes on
 * 127.0.0.1 and talk to them over TLS or plain TCP, always with a deadline:
 * every wait is a poll loop bounded in time, never a sleep standing in for a
 * condition. See harness.h for the contract of each function.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#define HARNESS_POLL_STEP_US 2000
/* harness_wait_count's pace: each count reads the whole file. */
#define HARNESS_COUNT_STEP_US 10000
#define HARNESS_SEND_TIMEOUT_MS 10000
#define HARNESS_ECHO_READY_MS 5000
#define HARNESS_PORT_LO 20000
#define HARNESS_PORT_HI 32767
#define HARNESS_MAX_PROCS 256
#define HARNESS_MAX_ARGS 64
#define HARNESS_READ_CHUNK 65536
/* Bytes buffered while a send waits to write; past it the send stops reading
 * and simply waits, as a client with a full buffer would. */
#define HARNESS_MAX_BUFFERED (256u * 1024 * 1024)

static __thread char harness_err[512];

static void herr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void herr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(harness_err, sizeof(harness_err), fmt, ap);
	va_end(ap);
}

const char *harness_last_error(void)
{
	return harness_err;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline, 0 when it has passed. */
static int left_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left <= 0 ? 0 : (left > INT_MAX ? INT_MAX : (int)left);
}

static void poll_step(void)
{
	(void)usleep(HARNESS_POLL_STEP_US);
}

/* ---- files ------------------------------------------------------------ */

int harness_tmpdir(char *out, size_t len)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(out, len, "%s/sluice-test-XXXXXX", base);
	if (n < 0 || (size_t)n >= len) {
		herr("tmpdir: path too long");
		return -1;
	}
	if (mkdtemp(out) == NULL) {
		herr("mkdtemp %s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "harness: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

void harness_rmdir(const char *dir)
{
	if (dir == NULL || dir[0] == '\0')
		return;
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		fprintf(stderr, "harness: cannot walk %s: %s\n", dir, strerror(errno));
}

int harness_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	size_t len = strlen(text);

	if (f == NULL) {
		herr("open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fwrite(text, 1, len, f) != len) {
		herr("write %s: %s", path, strerror(errno));
		(void)fclose(f);
		return -1;
	}
	if (fclose(f) == EOF) {
		herr("close %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

char *harness_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t have = 0, cap = 4096;
	char *buf, *bigger;
	ssize_t n;

	if (fd < 0) {
		herr("open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	while (buf != NULL) {
		if (have + 1 >= cap) {
			bigger = realloc(buf, cap * 2);
			if (bigger == NULL)
				break;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + have, cap - have - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				break;
			close(fd);
			buf[have] = '\0';
			if (len != NULL)
				*len = have;
			return buf;
		}
		have += (size_t)n;
	}
	herr("read %s: %s", path, buf == NULL ? "out of memory" : strerror(errno));
	free(buf);
	close(fd);
	return NULL;
}

const char *harness_tool_path(const char *name, char *out, size_t len)
{
	const char *echo = getenv("SLUICE_ECHO");
	const char *slash = echo != NULL ? strrchr(echo, '/') : NULL;

	if (slash != NULL)
		snprintf(out, len, "%.*s/%s", (int)(slash - echo), echo, name);
	else
		snprintf(out, len, "./tools/%s", name);
	return out;
}

/* ---- ports ------------------------------------------------------------ */

static pthread_mutex_t port_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t port_used[(HARNESS_PORT_HI + 1) / 8];
static unsigned port_next;

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* Binds the way the servers do (SO_REUSEADDR): a port in TIME_WAIT is free
 * for them, one with a listener is not. */
static int port_is_free(uint16_t port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, ok;

	if (fd < 0)
		return 0;
	ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	     bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

uint16_t harness_free_port(void)
{
	const unsigned span = HARNESS_PORT_HI - HARNESS_PORT_LO + 1;
	uint16_t found = 0;
	unsigned i, port;

	if (pthread_mutex_lock(&port_lock) != 0)
		return 0;
	/* Different processes (parallel test programs, Check's forked tests)
	 * start at different places, so they rarely race for one port. */
	if (port_next == 0)
		port_next = (unsigned)(getpid() * 7919u + (unsigned)now_ms()) % span;
	for (i = 0; i < span && found == 0; i++) {
		port = HARNESS_PORT_LO + (port_next + i) % span;
		if (port_used[port / 8] & (1u << (port % 8)))
			continue;
		port_used[port / 8] |= (uint8_t)(1u << (port % 8));
		if (port_is_free((uint16_t)port))
			found = (uint16_t)port;
	}
	port_next = (port_next + i) % span;
	(void)pthread_mutex_unlock(&port_lock);
	if (found == 0)
		herr("no free port in %d-%d", HARNESS_PORT_LO, HARNESS_PORT_HI);
	return found;
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0) {
		herr("socket: %s", strerror(errno));
		return -1;
	}
	/* Tests measure latency and ordering: no Nagle delays. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		herr("TCP_NODELAY: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	do {
		rc = poll(&pfd, 1, left_ms(deadline));
	} while (rc < 0 && errno == EINTR && left_ms(deadline) > 0);
	if (rc < 0) {
		herr("poll: %s", strerror(errno));
		return -1;
	}
	if (rc == 0) {
		herr("timed out");
		return -1;
	}
	return 0;
}

/* Non-blocking connect with a deadline. fd or -1. */
static int connect_deadline(uint16_t port, int64_t deadline)
{
	struct sockaddr_in sin = loopback(port);
	int fd = tcp_socket();
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		herr("connect 127.0.0.1:%u: %s", (unsigned)port, strerror(errno));
		goto fail;
	}
	if (wait_fd(fd, POLLOUT, deadline) < 0) {
		herr("connect 127.0.0.1:%u: timed out", (unsigned)port);
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		herr("connect 127.0.0.1:%u: %s", (unsigned)port, strerror(err ? err : errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int harness_wait_port(uint16_t port, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int fd;

	for (;;) {
		fd = connect_deadline(port, deadline);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (left_ms(deadline) == 0) {
			herr("port %u not open after %d ms", (unsigned)port, timeout_ms);
			return -1;
		}
		poll_step();
	}
}

int harness_tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		herr("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		herr("connect 127.0.0.1:%u: %s", (unsigned)port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int harness_tcp_connect_nowait(uint16_t port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		herr("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		herr("connect 127.0.0.1:%u: %s", (unsigned)port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

long harness_proc_status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* ---- processes -------------------------------------------------------- */

/* Every live child, so that they die with the test process whatever way it
 * ends: atexit for exit(), PR_SET_PDEATHSIG for a SIGKILL from Check. */
static struct {
	pid_t pid;
	pid_t owner;            /* the process that spawned it */
} procs[HARNESS_MAX_PROCS];
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void procs_kill_all(void)
{
	pid_t self = getpid();
	int i, st;

	for (i = 0; i < HARNESS_MAX_PROCS; i++) {
		if (procs[i].pid <= 0 || procs[i].owner != self)
			continue;
		/* Either may be gone already; waitpid settles it. */
		(void)kill(-procs[i].pid, SIGKILL);
		(void)kill(procs[i].pid, SIGKILL);
		while (waitpid(procs[i].pid, &st, 0) < 0 && errno == EINTR)
			;
		procs[i].pid = 0;
	}
}

static void procs_init(void)
{
	if (atexit(procs_kill_all) != 0)
		fprintf(stderr, "harness: atexit failed; children may outlive a failed test\n");
}

static void procs_track(pid_t pid, int on)
{
	int i;

	if (pthread_mutex_lock(&proc_lock) != 0)
		return;
	for (i = 0; i < HARNESS_MAX_PROCS; i++) {
		if (on && procs[i].pid <= 0) {
			procs[i].pid = pid;
			procs[i].owner = getpid();
			break;
		}
		if (!on && procs[i].pid == pid) {
			procs[i].pid = 0;
			break;
		}
	}
	(void)pthread_mutex_unlock(&proc_lock);
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void child_exec(int log_fd, int null_fd, pid_t parent, char *const argv[])
{
	static const char msg[] = "harness: exec failed\n";

	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
		_exit(126);
	/* Inherited sockets would keep test connections half-alive. */
	if (close_range(3, ~0u, 0) < 0) {
		int fd;

		for (fd = 3; fd < 4096; fd++)
			close(fd);
	}
	execv(argv[0], argv);
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(127);
	_exit(127);
}

int harness_spawn(struct harness_proc *p, const char *log_path, char *const argv[])
{
	pid_t parent = getpid();
	struct stat st;
	int log_fd, null_fd;

	memset(p, 0, sizeof(*p));
	if (pthread_once(&proc_once, procs_init) != 0) {
		herr("spawn: pthread_once failed");
		return -1;
	}
	snprintf(p->log, sizeof(p->log), "%s", log_path);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log_fd < 0 || null_fd < 0 || fstat(log_fd, &st) < 0) {
		herr("spawn %s: cannot open %s: %s", argv[0], log_path, strerror(errno));
		goto fail;
	}
	p->log_offset = st.st_size;
	p->pid = fork();
	if (p->pid < 0) {
		herr("fork: %s", strerror(errno));
		p->pid = 0;
		goto fail;
	}
	if (p->pid == 0)
		child_exec(log_fd, null_fd, parent, argv);
	/* Also here, so a kill of the group right after spawn cannot miss. */
	(void)setpgid(p->pid, p->pid);
	procs_track(p->pid, 1);
	close(log_fd);
	close(null_fd);
	return 0;
fail:
	if (log_fd >= 0)
		close(log_fd);
	if (null_fd >= 0)
		close(null_fd);
	return -1;
}

static void proc_reaped(struct harness_proc *p, int status)
{
	procs_track(p->pid, 0);
	p->status = status;
	p->reaped = 1;
	p->pid = 0;
}

int harness_signal(struct harness_proc *p, int sig)
{
	if (p->reaped || p->pid <= 0) {
		herr("signal: process already gone");
		return -1;
	}
	if (kill(p->pid, sig) < 0) {
		herr("kill %d: %s", (int)p->pid, strerror(errno));
		return -1;
	}
	return 0;
}

/* 1 reaped now or before, 0 still running, -1 error. */
static int proc_poll(struct harness_proc *p)
{
	int status;
	pid_t r;

	if (p->reaped)
		return 1;
	if (p->pid <= 0) {
		herr("process was never started");
		return -1;
	}
	r = waitpid(p->pid, &status, WNOHANG);
	if (r < 0 && errno != EINTR) {
		herr("waitpid %d: %s", (int)p->pid, strerror(errno));
		return -1;
	}
	if (r == p->pid) {
		proc_reaped(p, status);
		return 1;
	}
	return 0;
}

int harness_wait_exit(struct harness_proc *p, int timeout_ms, int *status)
{
	int64_t deadline = now_ms() + timeout_ms;
	int rc;

	while ((rc = proc_poll(p)) == 0) {
		if (left_ms(deadline) == 0) {
			herr("process %d still running after %d ms", (int)p->pid, timeout_ms);
			return -1;
		}
		poll_step();
	}
	if (rc < 0)
		return -1;
	if (status != NULL)
		*status = p->status;
	return 0;
}

int harness_alive(struct harness_proc *p)
{
	return proc_poll(p) == 0;
}

void harness_kill(struct harness_proc *p)
{
	int status;

	if (p->reaped || p->pid <= 0)
		return;
	/* Either may be gone already; waitpid settles it. */
	(void)kill(-p->pid, SIGKILL);
	(void)kill(p->pid, SIGKILL);
	while (waitpid(p->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0;
			break;
		}
	}
	proc_reaped(p, status);
}

/* ---- logs ------------------------------------------------------------- */

/* Looks for needle in path from *pos on; moves *pos so that the next call
 * rescans only the tail that could hold a needle cut in two. 1 found, 0 not
 * (yet). */
static int log_scan(const char *path, const char *needle, off_t *pos)
{
	size_t nlen = strlen(needle);
	char buf[HARNESS_READ_CHUNK];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	off_t at = *pos;

	if (fd < 0)
		return 0;
	while ((n = pread(fd, buf, sizeof(buf), at)) > 0) {
		if (memmem(buf, (size_t)n, needle, nlen) != NULL) {
			close(fd);
			return 1;
		}
		if ((size_t)n < nlen)
			break;
		at += n - (ssize_t)(nlen - 1);
		if ((size_t)n < sizeof(buf))
			break;
	}
	*pos = at;
	close(fd);
	return 0;
}

int harness_wait_log(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	off_t pos = 0;

	while (!log_scan(path, needle, &pos)) {
		if (left_ms(deadline) == 0) {
			herr("'%s' not in %s after %d ms", needle, path, timeout_ms);
			return -1;
		}
		poll_step();
	}
	return 0;
}

int harness_wait_ready(struct harness_proc *p, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	off_t pos = p->log_offset;

	while (!log_scan(p->log, needle, &pos)) {
		if (!harness_alive(p)) {
			if (log_scan(p->log, needle, &pos))
				return 0;
			herr("process exited (status 0x%x) before logging '%s'; see %s",
			     (unsigned)p->status, needle, p->log);
			return -1;
		}
		if (left_ms(deadline) == 0) {
			herr("'%s' not in %s after %d ms", needle, p->log, timeout_ms);
			return -1;
		}
		poll_step();
	}
	return 0;
}

int harness_count_log(const char *path, const char *needle)
{
	size_t len, nlen = strlen(needle);
	char *text = harness_read_file(path, &len);
	const char *at, *end;
	int count = 0;

	if (text == NULL || nlen == 0) {
		free(text);
		return 0;
	}
	end = text + len;
	for (at = text; (at = memmem(at, (size_t)(end - at), needle, nlen)) != NULL; at += nlen)
		count++;
	free(text);
	return count;
}

int harness_wait_count(const char *path, const char *needle, int n, struct harness_proc *p,
		       int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int count;

	while ((count = harness_count_log(path, needle)) < n) {
		if (p != NULL && !harness_alive(p)) {
			count = harness_count_log(path, needle);
			if (count < n)
				herr("process exited (status 0x%x) with '%s' %d times in %s, not %d",
				     (unsigned)p->status, needle, count, path, n);
			return count;
		}
		if (left_ms(deadline) == 0) {
			herr("'%s' %d times in %s after %d ms, not %d", needle, count, path, timeout_ms, n);
			return count;
		}
		(void)usleep(HARNESS_COUNT_STEP_US);
	}
	return count;
}

int harness_log_clean(const char *path, char *why, size_t len)
{
	static const char *const bad[] = {
		"[crit]", "AddressSanitizer", "LeakSanitizer", "runtime error:",
		"Segmentation fault", "Assertion", "stack smashing",
	};
	size_t size, i;
	char *text = harness_read_file(path, &size);
	char *line, *next;

	if (text == NULL)
		return 0;
	for (line = text; line < text + size; line = next) {
		next = memchr(line, '\n', (size_t)(text + size - line));
		next = next == NULL ? text + size : next + 1;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (memmem(line, (size_t)(next - line), bad[i], strlen(bad[i])) == NULL)
				continue;
			snprintf(why, len, "%s: %.*s", path, (int)(next - line - (next[-1] == '\n')),
				 line);
			herr("%s", why);
			free(text);
			return -1;
		}
	}
	free(text);
	return 0;
}

/* ---- sluice-echo ------------------------------------------------------ */

int harness_start_echo(struct harness_proc *p, const char *dir, uint16_t port,
		       const char *extra_args)
{
	char path[PATH_MAX], log[PATH_MAX], portstr[8], extra[1024];
	char *argv[HARNESS_MAX_ARGS + 1];
	char *save = NULL, *word;
	const char *env = getenv("SLUICE_ECHO");
	int argc = 0;

	snprintf(path, sizeof(path), "%s", env != NULL && env[0] ? env : "./tools/sluice-echo");
	snprintf(log, sizeof(log), "%s/echo-%u.log", dir, (unsigned)port);
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	snprintf(extra, sizeof(extra), "%s", extra_args != NULL ? extra_args : "");
	argv[argc++] = path;
	argv[argc++] = (char *)"-a";
	argv[argc++] = (char *)"127.0.0.1";
	argv[argc++] = (char *)"-p";
	argv[argc++] = portstr;
	for (word = strtok_r(extra, " ", &save); word != NULL; word = strtok_r(NULL, " ", &save)) {
		if (argc == HARNESS_MAX_ARGS) {
			herr("start_echo: too many arguments");
			return -1;
		}
		argv[argc++] = word;
	}
	argv[argc] = NULL;
	if (harness_spawn(p, log, argv) < 0)
		return -1;
	if (harness_wait_ready(p, "sluice-echo: listening on", HARNESS_ECHO_READY_MS) < 0) {
		harness_kill(p);
		return -1;
	}
	return 0;
}

/* ---- frames ----------------------------------------------------------- */

void harness_frame_prefix(uint8_t out[6], uint16_t header_len, uint32_t total_len)
{
	out[0] = (uint8_t)(header_len >> 8);
	out[1] = (uint8_t)header_len;
	out[2] = (uint8_t)(total_len >> 24);
	out[3] = (uint8_t)(total_len >> 16);
	out[4] = (uint8_t)(total_len >> 8);
	out[5] = (uint8_t)total_len;
}

void harness_frame_free(struct harness_frame *f)
{
	if (f == NULL)
		return;
	free(f->header);
	free(f->payload);
	memset(f, 0, sizeof(*f));
}

int harness_frame_is_err(const struct harness_frame *f, const char *code)
{
	size_t clen;

	if (f->header_len != 3 || memcmp(f->header, "ERR", 3) != 0)
		return 0;
	if (code == NULL)
		return 1;
	clen = strlen(code);
	return f->payload_len >= clen && memcmp(f->payload, code, clen) == 0 &&
	       (f->payload_len == clen || f->payload[clen] == ' ');
}

int harness_frame_is_quit(const struct harness_frame *f)
{
	return f->header_len == 4 && memcmp(f->header, "QUIT", 4) == 0;
}

/* ---- client connections ----------------------------------------------- */

/* One client connection; owned by the test, freed by harness_tls_close. */
struct harness_tls {
	int fd;
	SSL *ssl;               /* NULL: plain TCP */
	uint8_t *rbuf;          /* received bytes; rbuf[roff..rlen) not yet */
	size_t roff;            /* handed out (an offset, not a memmove per */
	size_t rlen;            /* frame: long pipelines stay linear) */
	size_t rcap;
	unsigned eof:1;         /* the peer closed (FIN or close_notify) */
	unsigned close_notify:1;
	unsigned broken:1;      /* reset or TLS error: no close_notify back */
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static SSL_CTX *tls_shared_ctx;

/* A peer that goes away while a test writes must fail the write, not kill
 * the test with SIGPIPE (OpenSSL writes with plain write(2)). */
static void tls_init_once(void)
{
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fprintf(stderr, "harness: cannot ignore SIGPIPE\n");
	tls_shared_ctx = SSL_CTX_new(TLS_client_method());
	if (tls_shared_ctx != NULL)
		SSL_CTX_set_verify(tls_shared_ctx, SSL_VERIFY_NONE, NULL);
}

static void tls_error(const char *what, SSL *ssl)
{
	unsigned long e = ERR_get_error();
	long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char text[256] = "";

	if (e != 0)
		ERR_error_string_n(e, text, sizeof(text));
	else if (errno != 0)
		snprintf(text, sizeof(text), "%s", strerror(errno));
	else
		snprintf(text, sizeof(text), "connection closed");
	if (verify != X509_V_OK)
		herr("%s: %s (verify: %s)", what, text, X509_verify_cert_error_string(verify));
	else
		herr("%s: %s", what, text);
	ERR_clear_error();
}

static int tls_alpn_wire(const char *list, unsigned char *out, size_t cap, unsigned *len)
{
	const char *at = list;
	size_t n = 0, w;

	while (*at != '\0') {
		w = strcspn(at, ",");
		if (w == 0 || w > 255 || n + 1 + w > cap)
			return -1;
		out[n++] = (unsigned char)w;
		memcpy(out + n, at, w);
		n += w;
		at += w + (at[w] == ',');
	}
	*len = (unsigned)n;
	return 0;
}

static int tls_ctx_load(SSL_CTX *ctx, const struct harness_tls_opts *o)
{
	if (o->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
			return -1;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (o->cert_file != NULL &&
	    (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, o->key_file != NULL ? o->key_file : o->cert_file,
					 SSL_FILETYPE_PEM) != 1))
		return -1;
	if (o->min_version != 0 && SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1)
		return -1;
	if (o->max_version != 0 && SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1)
		return -1;
	return 0;
}

/* The shared context when nothing is asked for, else one of its own. */
static SSL_CTX *tls_ctx_for(const struct harness_tls_opts *o)
{
	SSL_CTX *ctx;

	if (o->ca_file == NULL && o->cert_file == NULL && o->min_version == 0 &&
	    o->max_version == 0) {
		if (tls_shared_ctx == NULL || SSL_CTX_up_ref(tls_shared_ctx) != 1) {
			tls_error("SSL_CTX_new", NULL);
			return NULL;
		}
		return tls_shared_ctx;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || tls_ctx_load(ctx, o) < 0) {
		tls_error("client TLS context", NULL);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int tls_ssl_setup(SSL *ssl, int fd, const struct harness_tls_opts *o)
{
	unsigned char alpn[256];
	unsigned alpn_len;

	/* Partial writes let send_some report progress; moving buffers let a
	 * retried write resume from a new pointer into the same data. */
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_set_fd(ssl, fd) != 1)
		return -1;
	if (o->sni != NULL && SSL_set_tlsext_host_name(ssl, o->sni) != 1)
		return -1;
	if (o->sni != NULL && o->ca_file != NULL && SSL_set1_host(ssl, o->sni) != 1)
		return -1;
	if (o->alpn != NULL && (tls_alpn_wire(o->alpn, alpn, sizeof(alpn), &alpn_len) < 0 ||
				SSL_set_alpn_protos(ssl, alpn, alpn_len) != 0))
		return -1;
	if (o->session != NULL && SSL_set_session(ssl, o->session) != 1)
		return -1;
	if (o->sigalgs != NULL && SSL_set1_sigalgs_list(ssl, o->sigalgs) != 1)
		return -1;
	if (o->status_request && SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp) != 1)
		return -1;
	return 0;
}

/* Waits for what the last SSL call asked for. 0 to retry, -1 to give up. */
static int tls_wait(struct harness_tls *t, int rc, int64_t deadline, const char *what)
{
	int err = SSL_get_error(t->ssl, rc);

	if (err == SSL_ERROR_WANT_READ)
		return wait_fd(t->fd, POLLIN, deadline);
	if (err == SSL_ERROR_WANT_WRITE)
		return wait_fd(t->fd, POLLOUT, deadline);
	t->broken = 1;
	tls_error(what, t->ssl);
	return -1;
}

static struct harness_tls *conn_new(int fd)
{
	struct harness_tls *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		herr("out of memory");
		close(fd);
		return NULL;
	}
	t->fd = fd;
	return t;
}

struct harness_tls *harness_tls_connect_opts(uint16_t port, const struct harness_tls_opts *o,
					     int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct harness_tls *t;
	SSL_CTX *ctx;
	int fd, rc;

	if (pthread_once(&tls_once, tls_init_once) != 0) {
		herr("pthread_once failed");
		return NULL;
	}
	fd = connect_deadline(port, deadline);
	if (fd < 0)
		return NULL;
	t = conn_new(fd);
	if (t == NULL)
		return NULL;
	ctx = tls_ctx_for(o);
	t->ssl = ctx != NULL ? SSL_new(ctx) : NULL;
	SSL_CTX_free(ctx);
	if (t->ssl == NULL || tls_ssl_setup(t->ssl, fd, o) < 0) {
		if (ctx != NULL)
			tls_error("client TLS setup", NULL);
		t->broken = 1;
		harness_tls_close(t);
		return NULL;
	}
	while ((rc = SSL_connect(t->ssl)) != 1) {
		if (tls_wait(t, rc, deadline, "TLS handshake") < 0) {
			t->broken = 1;
			harness_tls_close(t);
			return NULL;
		}
	}
	return t;
}

struct harness_tls *harness_tls_connect(uint16_t port, const char *sni, int timeout_ms)
{
	struct harness_tls_opts o = { .sni = sni };

	return harness_tls_connect_opts(port, &o, timeout_ms);
}

struct harness_tls *harness_tls_connect_ca(uint16_t port, const char *sni,
					   const char *ca_file, int timeout_ms)
{
	struct harness_tls_opts o = { .sni = sni, .ca_file = ca_file };

	return harness_tls_connect_opts(port, &o, timeout_ms);
}

struct harness_tls *harness_plain_connect(uint16_t port, int timeout_ms)
{
	int fd;

	if (pthread_once(&tls_once, tls_init_once) != 0) {
		herr("pthread_once failed");
		return NULL;
	}
	fd = connect_deadline(port, now_ms() + timeout_ms);
	return fd < 0 ? NULL : conn_new(fd);
}

static size_t rbuf_have(const struct harness_tls *t)
{
	return t->rlen - t->roff;
}

/* Room for one more read in rbuf. Moves the unread bytes to the front once
 * at least half the buffer has been handed out. */
static int rbuf_reserve(struct harness_tls *t, size_t more)
{
	size_t cap = t->rcap ? t->rcap : HARNESS_READ_CHUNK;
	uint8_t *bigger;

	if (t->roff > 0 && t->roff >= rbuf_have(t)) {
		memmove(t->rbuf, t->rbuf + t->roff, rbuf_have(t));
		t->rlen -= t->roff;
		t->roff = 0;
	}

	while (cap - t->rlen < more)
		cap *= 2;
	if (cap == t->rcap)
		return 0;
	bigger = realloc(t->rbuf, cap);
	if (bigger == NULL) {
		herr("out of memory buffering input");
		return -1;
	}
	t->rbuf = bigger;
	t->rcap = cap;
	return 0;
}

/* One read attempt: >0 bytes appended, 0 would block (*events says on
 * what), -1 closed or failed (eof/broken tell which). */
static int conn_read_once(struct harness_tls *t, short *events)
{
	ssize_t n;
	int rc, err;

	if (rbuf_reserve(t, HARNESS_READ_CHUNK) < 0)
		return -1;
	*events = POLLIN;
	if (t->ssl == NULL) {
		n = recv(t->fd, t->rbuf + t->rlen, HARNESS_READ_CHUNK, 0);
		if (n > 0) {
			t->rlen += (size_t)n;
			return 1;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n == 0)
			t->eof = 1;
		else
			t->broken = 1;
		herr("%s", n == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	rc = SSL_read(t->ssl, t->rbuf + t->rlen, HARNESS_READ_CHUNK);
	if (rc > 0) {
		t->rlen += (size_t)rc;
		return 1;
	}
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	if (err == SSL_ERROR_ZERO_RETURN) {
		t->eof = t->close_notify = 1;
		herr("connection closed (close_notify)");
		return -1;
	}
	/* OpenSSL 3 reports a FIN without close_notify as an SSL error. */
	if ((err == SSL_ERROR_SSL &&
	     ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
	    (err == SSL_ERROR_SYSCALL && errno == 0)) {
		t->eof = 1;
		t->broken = 1;
		ERR_clear_error();
		herr("connection closed without close_notify");
		return -1;
	}
	t->broken = 1;
	tls_error("TLS read", t->ssl);
	return -1;
}

/* Reads until at least one more byte is buffered. 0, or -1 (closed: see
 * t->eof; timeout; error). */
static int conn_fill(struct harness_tls *t, int64_t deadline)
{
	short events;
	int rc;

	if (t->eof) {
		herr("connection closed");
		return -1;
	}
	for (;;) {
		rc = conn_read_once(t, &events);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
		if (wait_fd(t->fd, events, deadline) < 0)
			return -1;
	}
}

/* One write attempt: bytes written, 0 would block (*events), -1 failed. */
static ssize_t conn_write_once(struct harness_tls *t, const uint8_t *buf, size_t len,
			       short *events)
{
	ssize_t n;
	int rc, err;

	*events = POLLOUT;
	if (t->ssl == NULL) {
		n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		t->broken = 1;
		herr("send: %s", strerror(errno));
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	rc = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (rc > 0)
		return rc;
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	t->broken = 1;
	tls_error("TLS write", t->ssl);
	return -1;
}

/* Buffers whatever has arrived without waiting, so a peer answering a long
 * pipeline never blocks on a client that is still writing it. */
static int conn_drain_input(struct harness_tls *t)
{
	short events;
	int rc;

	while (!t->eof && rbuf_have(t) < HARNESS_MAX_BUFFERED) {
		rc = conn_read_once(t, &events);
		if (rc == 0)
			return 0;
		if (rc < 0)
			return t->eof ? 0 : -1;
	}
	return 0;
}

static int conn_send(struct harness_tls *t, const void *buf, size_t len, int64_t deadline,
		     size_t *sent, int read_too)
{
	const uint8_t *at = buf;
	struct pollfd pfd = { .fd = t->fd };
	ssize_t n;

	*sent = 0;
	while (*sent < len) {
		n = conn_write_once(t, at + *sent, len - *sent, &pfd.events);
		if (n < 0)
			return -1;
		*sent += (size_t)n;
		if (n > 0)
			continue;
		if (read_too && !t->eof && rbuf_have(t) < HARNESS_MAX_BUFFERED)
			pfd.events |= POLLIN;
		if (left_ms(deadline) == 0 || poll(&pfd, 1, left_ms(deadline)) == 0) {
			herr("send timed out after %zu of %zu bytes", *sent, len);
			return -1;
		}
		if ((pfd.revents & POLLIN) && read_too && conn_drain_input(t) < 0)
			return -1;
	}
	return 0;
}

int harness_tls_send(struct harness_tls *t, const void *buf, size_t len)
{
	size_t sent;

	return conn_send(t, buf, len, now_ms() + HARNESS_SEND_TIMEOUT_MS, &sent, 1);
}

int harness_tls_send_some(struct harness_tls *t, const void *buf, size_t len,
			  int timeout_ms, size_t *sent)
{
	return conn_send(t, buf, len, now_ms() + timeout_ms, sent, 0);
}

int harness_send_frame(struct harness_tls *t, const void *hdr, uint16_t hlen,
		       const void *payload, uint32_t plen)
{
	uint64_t total = (uint64_t)6 + hlen + plen;
	uint8_t *frame;
	int rc;

	if (total > UINT32_MAX) {
		herr("send_frame: frame too large");
		return -1;
	}
	frame = malloc((size_t)total);
	if (frame == NULL) {
		herr("send_frame: out of memory");
		return -1;
	}
	/* One buffer, one write: a frame is never split by the harness. */
	harness_frame_prefix(frame, hlen, (uint32_t)total);
	if (hlen > 0)
		memcpy(frame + 6, hdr, hlen);
	if (plen > 0)
		memcpy(frame + 6 + hlen, payload, plen);
	rc = harness_tls_send(t, frame, (size_t)total);
	free(frame);
	return rc;
}

static uint8_t *dup_bytes(const uint8_t *src, size_t len)
{
	uint8_t *out = malloc(len + 1);

	if (out == NULL)
		return NULL;
	if (len > 0)
		memcpy(out, src, len);
	out[len] = '\0';
	return out;
}

static void rbuf_consume(struct harness_tls *t, size_t n)
{
	t->roff += n;
	if (t->roff == t->rlen)
		t->roff = t->rlen = 0;
}

/* A whole frame at the front of rbuf: 1 taken, 0 need more, -1 invalid. */
static int frame_take(struct harness_tls *t, struct harness_frame *f)
{
	const uint8_t *p;
	uint16_t hlen;
	uint32_t total;

	if (rbuf_have(t) < 6)
		return 0;
	p = t->rbuf + t->roff;
	hlen = (uint16_t)(p[0] << 8 | p[1]);
	total = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
	if (total < 6 || hlen > total - 6 || total > HARNESS_MAX_FRAME) {
		herr("invalid frame from peer: header_len %u, total_len %u", (unsigned)hlen,
		     (unsigned)total);
		return -1;
	}
	if (rbuf_have(t) < total)
		return 0;
	f->header_len = hlen;
	f->payload_len = total - 6 - hlen;
	f->header = dup_bytes(p + 6, hlen);
	f->payload = dup_bytes(p + 6 + hlen, f->payload_len);
	if (f->header == NULL || f->payload == NULL) {
		harness_frame_free(f);
		herr("out of memory receiving a frame");
		return -1;
	}
	rbuf_consume(t, total);
	return 1;
}

int harness_recv_frame(struct harness_tls *t, struct harness_frame *f, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int rc;

	memset(f, 0, sizeof(*f));
	for (;;) {
		rc = frame_take(t, f);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
		if (conn_fill(t, deadline) == 0)
			continue;
		if (!t->eof)
			return -1;
		if (rbuf_have(t) == 0)
			return 1;
		herr("connection closed inside a frame (%zu bytes pending)", rbuf_have(t));
		return -1;
	}
}

ssize_t harness_tls_recv_raw(struct harness_tls *t, void *buf, size_t len, int timeout_ms)
{
	size_t n;

	if (rbuf_have(t) == 0 && conn_fill(t, now_ms() + timeout_ms) < 0)
		return t->eof && rbuf_have(t) == 0 ? 0 : -1;
	n = rbuf_have(t) < len ? rbuf_have(t) : len;
	memcpy(buf, t->rbuf + t->roff, n);
	rbuf_consume(t, n);
	return (ssize_t)n;
}

int harness_tls_wait_closed(struct harness_tls *t, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		t->roff = t->rlen = 0;
		if (conn_fill(t, deadline) == 0)
			continue;
		if (t->eof || t->broken)
			return 0;
		return -1;
	}
}

int harness_tls_got_close_notify(const struct harness_tls *t)
{
	return t->close_notify;
}

static void conn_free(struct harness_tls *t)
{
	if (t->fd >= 0)
		close(t->fd);
	SSL_free(t->ssl);
	free(t->rbuf);
	free(t);
}

void harness_tls_close(struct harness_tls *t)
{
	if (t == NULL)
		return;
	/* One non-blocking attempt: close_notify is courtesy, not a wait. */
	if (t->ssl != NULL && !t->broken && SSL_is_init_finished(t->ssl)) {
		ERR_clear_error();
		if (SSL_shutdown(t->ssl) < 0)
			ERR_clear_error();
	}
	conn_free(t);
}

void harness_tls_abort(struct harness_tls *t)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (t == NULL)
		return;
	if (setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		fprintf(stderr, "harness: SO_LINGER: %s\n", strerror(errno));
	conn_free(t);
}

int harness_tls_fd(const struct harness_tls *t)
{
	return t->fd;
}

SSL *harness_tls_ssl(const struct harness_tls *t)
{
	return t->ssl;
}

X509 *harness_tls_peer_cert(const struct harness_tls *t)
{
	return t->ssl != NULL ? SSL_get1_peer_certificate(t->ssl) : NULL;
}

int harness_tls_peer_fingerprint(const struct harness_tls *t, char out_hex[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	X509 *cert = harness_tls_peer_cert(t);

	if (cert == NULL) {
		herr("no peer certificate");
		return -1;
	}
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
		X509_free(cert);
		tls_error("X509_digest", NULL);
		return -1;
	}
	X509_free(cert);
	for (i = 0; i < len; i++) {
		out_hex[2 * i] = hex[md[i] >> 4];
		out_hex[2 * i + 1] = hex[md[i] & 15];
	}
	out_hex[2 * len] = '\0';
	return 0;
}

long harness_tls_ocsp(const struct harness_tls *t, const unsigned char **der)
{
	unsigned char *resp = NULL;
	long len;

	*der = NULL;
	if (t->ssl == NULL)
		return 0;
	len = SSL_get_tlsext_status_ocsp_resp(t->ssl, &resp);
	if (len <= 0 || resp == NULL)
		return 0;
	*der = resp;
	return len;
}

SSL_SESSION *harness_tls_session(const struct harness_tls *t)
{
	return t->ssl != NULL ? SSL_get1_session(t->ssl) : NULL;
}

/* ---- sluice-echo --trace files ---------------------------------------- */

struct trace_line {
	char kind;              /* 'a'ccept, 'f'rame, 'c'lose, 0: other */
	int conn;
	uint32_t total_len;
	uint8_t prefix[32];
	size_t prefix_len;
};

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void trace_parse(const char *line, struct trace_line *tl)
{
	char kind[16], hex[80] = "";
	unsigned long len = 0;
	int conn, n, hi, lo;
	size_t i;

	memset(tl, 0, sizeof(*tl));
	n = sscanf(line, "%15s %d %lu %79s", kind, &conn, &len, hex);
	if (n < 2)
		return;
	tl->conn = conn;
	if (strcmp(kind, "accept") == 0 || strcmp(kind, "close") == 0) {
		tl->kind = kind[0];
		return;
	}
	if (strcmp(kind, "frame") != 0 || n < 4)
		return;
	tl->kind = 'f';
	tl->total_len = (uint32_t)len;
	for (i = 0; i < sizeof(tl->prefix) && hex[2 * i] && hex[2 * i + 1]; i++) {
		hi = hex_value(hex[2 * i]);
		lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			break;
		tl->prefix[i] = (uint8_t)(hi << 4 | lo);
	}
	tl->prefix_len = i;
}

typedef int (*trace_visit)(const struct trace_line *tl, void *arg);

/* Calls visit for each line until it returns non-zero. -1 when unreadable. */
static int trace_walk(const char *path, trace_visit visit, void *arg)
{
	char *text = harness_read_file(path, NULL);
	char *line, *save = NULL;
	struct trace_line tl;

	if (text == NULL)
		return -1;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		trace_parse(line, &tl);
		if (tl.kind != 0 && visit(&tl, arg) != 0)
			break;
	}
	free(text);
	return 0;
}

struct trace_open {
	int open;
	int max;
	int accepts;
};

static int visit_open(const struct trace_line *tl, void *arg)
{
	struct trace_open *o = arg;

	if (tl->kind == 'a') {
		o->accepts++;
		if (++o->open > o->max)
			o->max = o->open;
	} else if (tl->kind == 'c') {
		o->open--;
	}
	return 0;
}

int harness_trace_max_open(const char *trace_path)
{
	struct trace_open o = { 0, 0, 0 };

	return trace_walk(trace_path, visit_open, &o) < 0 ? -1 : o.max;
}

int harness_trace_connections(const char *trace_path)
{
	struct trace_open o = { 0, 0, 0 };

	return trace_walk(trace_path, visit_open, &o) < 0 ? -1 : o.accepts;
}

struct trace_find {
	const void *prefix;
	size_t len;
	int conn;
};

static int visit_find(const struct trace_line *tl, void *arg)
{
	struct trace_find *f = arg;

	if (tl->kind != 'f' || tl->prefix_len < f->len || memcmp(tl->prefix, f->prefix, f->len))
		return 0;
	f->conn = tl->conn;
	return 1;
}

int harness_trace_conn_of(const char *trace_path, const void *prefix, size_t len)
{
	struct trace_find f = { prefix, len > 32 ? 32 : len, -1 };

	if (trace_walk(trace_path, visit_find, &f) < 0)
		return -1;
	return f.conn;
}

struct trace_list {
	int conn;
	struct harness_trace_frame *out;
	int max;
	int count;
};

static int visit_list(const struct trace_line *tl, void *arg)
{
	struct trace_list *l = arg;
	struct harness_trace_frame *f;

	if (tl->kind != 'f' || (l->conn != 0 && tl->conn != l->conn))
		return 0;
	if (l->count < l->max) {
		f = &l->out[l->count];
		f->conn = tl->conn;
		f->total_len = tl->total_len;
		memcpy(f->prefix, tl->prefix, sizeof(f->prefix));
		f->prefix_len = tl->prefix_len;
	}
	l->count++;
	return 0;
}

int harness_trace_frames(const char *trace_path, int conn,
			 struct harness_trace_frame *out, int max)
{
	struct trace_list l = { conn, out, max, 0 };

	if (trace_walk(trace_path, visit_list, &l) < 0)
		return -1;
	return l.count;
}
