/*
 * sluice-bench — a load generator for the sluice frame protocol over TLS (or
 * plain TCP with --plain), for measuring sluice and its peers on one's own
 * deployment: requests/s, MB/s, handshakes/s and latency percentiles, with
 * every response checked byte for byte against its request.
 *
 * Shape: -t threads (default 1), each an epoll loop over its share of the
 * connections (edge-triggered, non-blocking sockets, OpenSSL on the fd).
 *
 *   fill:   top a connection's pipeline up to -P requests; frames are built
 *           into one buffer and written by one SSL_write (one TLS record for
 *           a small batch)
 *   read:   SSL_read until it would block; cut whole frames out of the
 *           buffer; check each against the request it answers (bench_frame)
 *   record: latency from the send (closed loop) or from the intended send
 *           time (-R, open loop: no coordinated omission) into the thread's
 *           histogram (bench_hist); the threads' histograms are merged at
 *           the end
 *
 * Requests are regenerated from (connection, sequence) to be checked, so
 * nothing is kept per request but its send time. Only responses that arrive
 * inside the measurement window (after -w warm-up, for -d seconds) count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench_frame.h"
#include "bench_hist.h"
#include "tool_util.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define BENCH_MAX_CONNS 100000u
#define BENCH_MAX_THREADS 64u
#define BENCH_MAX_DEPTH 4096u
#define BENCH_MAX_PAYLOAD (64u * 1024 * 1024)
#define BENCH_MAX_SECONDS 86400.0
#define BENCH_READ_CHUNK (64 * 1024)
/* An answer we did not ask for (ERR) may be longer than our frames. */
#define BENCH_MAX_FOREIGN_FRAME (64u * 1024 + 6)
/* Connections being set up at once: 5,000 simultaneous SYNs would overflow
 * accept backlogs and measure the kernel's retransmission timer. */
#define BENCH_MAX_SETUPS 256u
#define BENCH_TICK_MS 50
#define BENCH_DEFAULT_TIMEOUT_MS 10000
#define BENCH_REPORTS 20              /* problems described on stderr per run */
#define NS_PER_S INT64_C(1000000000)
#define BENCH_MAX_PIDS 64

struct bench_opts {
	const char *host;
	const char *port;
	unsigned conns;              /* -c */
	unsigned threads;            /* -t */
	unsigned depth;              /* -P: requests in flight per connection */
	uint16_t header_len;         /* -H */
	uint32_t payload_len;        /* -s */
	double duration;             /* -d, seconds measured */
	double warmup;               /* -w, seconds before */
	uint64_t rate;               /* -R: requests/s in all; 0 = closed loop */
	uint64_t max_requests;       /* -n: 0 = only the duration bounds the run */
	unsigned idle;               /* --idle N (connections) */
	double hold;                 /* --hold: seconds the idle connections stay */
	int timeout_ms;
	const char *sni;
	const char *ca;
	const char *cipher;
	const char *groups;
	const char *alpn;
	int min_version;             /* 0, TLS1_2_VERSION or TLS1_3_VERSION */
	int max_version;
	unsigned handshake:1;        /* connect, one request, close; again */
	unsigned resume:1;           /* ... resuming the previous session */
	unsigned plain:1;            /* no TLS */
	unsigned json:1;
	unsigned quiet:1;
	pid_t cpu_pids[BENCH_MAX_PIDS]; /* --cpu-pid: the server's processes */
	unsigned ncpu_pids;
};

/* Counters of one thread; summed by main at the end. */
struct bench_stats {
	uint64_t sent;               /* requests written, all phases */
	uint64_t answered;           /* correct answers, all phases */
	uint64_t measured;           /* correct answers inside the window */
	uint64_t bytes_in;           /* response bytes inside the window */
	uint64_t bytes_out;          /* request bytes built inside the window */
	uint64_t handshakes;         /* completed inside the window */
	uint64_t resumed;            /* of which resumed a session */
	uint64_t verdicts[BENCH_VERDICTS];
	uint64_t conn_errors;        /* connect, TLS or I/O failures */
	uint64_t timeouts;           /* no progress within --timeout */
	uint64_t unanswered;         /* requests in flight on a failed connection */
	int64_t last_ns;             /* last measured answer */
	int64_t cpu_ns;              /* this thread's CPU time inside the window */
};

enum conn_state {
	CONN_IDLE,                   /* not started */
	CONN_CONNECTING,
	CONN_HANDSHAKING,
	CONN_RUNNING,
	CONN_DONE,                   /* closed for good */
};

struct bench_thread;

/* One connection slot; owned by its thread's array. In handshake mode the
 * slot opens connection after connection. */
struct bench_conn {
	struct bench_thread *th;     /* not owned */
	uint32_t id;                 /* 1-based, global: stamped in requests */
	int fd;
	SSL *ssl;
	SSL_SESSION *session;        /* --resume: the last resumable session */
	enum conn_state state;
	uint64_t next_seq;           /* next request to build */
	uint64_t next_ack;           /* request the next answer belongs to */
	uint64_t quota;              /* requests this connection may still build */
	int64_t *sent_ns;            /* ring of depth send times (closed loop) */
	int64_t cycle_ns;            /* handshake mode: when this connect began */
	int64_t progress_ns;         /* last byte in or out, or the start */
	uint8_t *wbuf;               /* built frames not yet written */
	size_t woff, wlen, wcap;
	uint8_t *rbuf;               /* bytes read, not yet checked */
	size_t roff, rlen, rcap;
	unsigned setup:1;            /* counted in th->setups */
	unsigned ready:1;            /* --idle: answered its one request */
	unsigned server_quit:1;      /* the server sent QUIT: no more requests */
};

/* What every thread reads; built by main before the threads start. */
struct bench_run {
	const struct bench_opts *o;
	struct bench_pattern pat;
	SSL_CTX *ctx;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *verify_name;
	unsigned verify_ip:1;
	int64_t t0;                  /* threads start */
	int64_t t_measure;           /* t0 + warm-up */
	int64_t t_end;               /* t_measure + duration */
	atomic_uint ready;           /* --idle: connections established and answered */
	atomic_uint failed;          /* --idle: connections that gave up */
	atomic_int release;          /* --idle: close everything now */
	atomic_int reports;          /* problems described so far */
	atomic_int tls_noted;        /* tls_version/tls_cipher are set */
	atomic_uint finished;        /* threads that have returned */
	double server_cpu_s;         /* --cpu-pid: CPU inside the window, -1 unknown */
	const char *tls_version;
	const char *tls_cipher;
};

/* One thread and its share of the connections. */
struct bench_thread {
	struct bench_run *run;       /* not owned */
	unsigned index;
	pthread_t tid;
	int epfd;
	int tfd;                     /* -R: timerfd for the next send */
	struct bench_conn *conns;
	unsigned nconns;
	unsigned next_start;         /* conns[] not yet started from here on */
	unsigned setups;             /* connecting or handshaking */
	unsigned open;               /* not CONN_DONE */
	int64_t cpu_start;
	int64_t timer_due;           /* armed -R deadline, 0 if none */
	unsigned stopping:1;         /* window over: drain and close */
	unsigned measuring:1;
	unsigned measured:1;         /* cpu_ns taken */
	struct bench_stats st;
	struct hist hist;
};

static atomic_int bench_interrupted;

static int64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- problems --------------------------------------------------------- */

static void bench_report(struct bench_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The first few problems of a run are described; the rest only counted, so
 * a broken proxy does not drown the summary. */
static void bench_report(struct bench_run *run, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (atomic_fetch_add(&run->reports, 1) >= BENCH_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice-bench: %s\n", line);
}

static const char *ssl_reason(void)
{
	static __thread char text[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(text, sizeof(text), "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(e, text, sizeof(text));
	ERR_clear_error();
	return text;
}

/* ---- connection life -------------------------------------------------- */

static uint64_t conn_inflight(const struct bench_conn *c)
{
	return c->next_seq - c->next_ack;
}

static void conn_setup_done(struct bench_conn *c)
{
	if (c->setup) {
		c->setup = 0;
		c->th->setups--;
	}
}

/* Closes the socket; with close_notify when clean (the server then sees an
 * orderly TLS close, not a truncation). */
static void conn_close_socket(struct bench_conn *c, int clean)
{
	if (c->ssl != NULL) {
		if (clean && SSL_is_init_finished(c->ssl))
			(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		/* Closing removes the fd from the epoll set. */
		(void)close(c->fd);
		c->fd = -1;
	}
	c->woff = c->wlen = c->roff = c->rlen = 0;
	conn_setup_done(c);
}

static void conn_finish(struct bench_conn *c, int clean)
{
	conn_close_socket(c, clean);
	if (c->state != CONN_DONE) {
		c->state = CONN_DONE;
		c->th->open--;
	}
}

static void conn_fail(struct bench_conn *c, int timeout, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The connection is lost: its requests in flight are errors, the slot is
 * done (a benchmark that reconnects behind a failing proxy would hide it). */
static void conn_fail(struct bench_conn *c, int timeout, const char *fmt, ...)
{
	struct bench_thread *th = c->th;
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (timeout)
		th->st.timeouts++;
	else
		th->st.conn_errors++;
	th->st.unanswered += conn_inflight(c);
	bench_report(th->run, "connection %u: %s (%" PRIu64 " requests unanswered)", c->id, why,
		     conn_inflight(c));
	if (th->run->o->idle > 0 && !c->ready)
		atomic_fetch_add(&th->run->failed, 1);
	c->next_ack = c->next_seq;
	conn_finish(c, 0);
}

static int conn_start(struct bench_conn *c, int64_t now)
{
	const struct bench_run *run = c->th->run;
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(c, 0, "socket: %s", strerror(errno));
		return -1;
	}
	/* Batches are written whole; Nagle would only hold back the next one. */
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		conn_fail(c, 0, "TCP_NODELAY: %s", strerror(errno));
		return -1;
	}
	if (connect(c->fd, (const struct sockaddr *)&run->addr, run->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		conn_fail(c, 0, "connect: %s", strerror(errno));
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
	ev.data.ptr = c;
	if (epoll_ctl(c->th->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_fail(c, 0, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	if (!c->setup) {
		c->setup = 1;
		c->th->setups++;
	}
	c->state = CONN_CONNECTING;
	c->cycle_ns = c->progress_ns = now;
	return 0;
}

static int conn_tls_setup(struct bench_conn *c)
{
	const struct bench_run *run = c->th->run;
	const struct bench_opts *o = run->o;

	c->ssl = SSL_new(run->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	SSL_set_connect_state(c->ssl);
	if (o->sni != NULL && SSL_set_tlsext_host_name(c->ssl, o->sni) != 1)
		return -1;
	if (c->session != NULL && SSL_set_session(c->ssl, c->session) != 1)
		return -1;
	if (o->ca == NULL)
		return 0;
	if (run->verify_ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), run->verify_name) == 1 ?
		       0 : -1;
	return SSL_set1_host(c->ssl, run->verify_name) == 1 ? 0 : -1;
}

static void conn_note_tls(struct bench_conn *c)
{
	struct bench_run *run = c->th->run;
	int expected = 0;

	if (c->ssl == NULL || !atomic_compare_exchange_strong(&run->tls_noted, &expected, 1))
		return;
	/* Both are OpenSSL's static strings. */
	run->tls_version = SSL_get_version(c->ssl);
	run->tls_cipher = SSL_get_cipher_name(c->ssl);
}

/* 1 connected, 0 not yet, -1 failed. */
static int conn_connected(struct bench_conn *c)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int), plen = sizeof(peer);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err != 0) {
		conn_fail(c, 0, "connect: %s", strerror(err));
		return -1;
	}
	/* An event left over from the slot's previous socket (handshake mode)
	 * can arrive before this one is connected. */
	if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0)
		return 0;
	if (c->th->run->o->plain)
		return 1;
	if (conn_tls_setup(c) < 0) {
		conn_fail(c, 0, "TLS setup: %s", ssl_reason());
		return -1;
	}
	c->state = CONN_HANDSHAKING;
	return 1;
}

/* 1 done, 0 not yet, -1 failed. */
static int conn_handshake(struct bench_conn *c)
{
	long verify;
	int rc, err;

	ERR_clear_error();
	errno = 0;
	rc = SSL_connect(c->ssl);
	if (rc == 1)
		return 1;
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	verify = SSL_get_verify_result(c->ssl);
	if (verify != X509_V_OK)
		conn_fail(c, 0, "TLS handshake: certificate: %s",
			  X509_verify_cert_error_string(verify));
	else
		conn_fail(c, 0, "TLS handshake: %s", ssl_reason());
	return -1;
}

/* ---- I/O -------------------------------------------------------------- */

enum io_result { IO_DONE, IO_AGAIN, IO_EOF, IO_FAIL };

static enum io_result io_ssl_error(struct bench_conn *c, int rc)
{
	int err = SSL_get_error(c->ssl, rc);

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return IO_AGAIN;
	if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0))
		return IO_EOF;
	return IO_FAIL;
}

static enum io_result io_read(struct bench_conn *c, uint8_t *buf, size_t len, size_t *got)
{
	ssize_t n;
	int rc;

	if (c->ssl == NULL) {
		n = read(c->fd, buf, len);
		if (n > 0) {
			*got = (size_t)n;
			return IO_DONE;
		}
		if (n == 0)
			return IO_EOF;
		return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_FAIL;
	}
	ERR_clear_error();
	errno = 0;
	rc = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (rc > 0) {
		*got = (size_t)rc;
		return IO_DONE;
	}
	return io_ssl_error(c, rc);
}

static enum io_result io_write(struct bench_conn *c, const uint8_t *buf, size_t len, size_t *put)
{
	ssize_t n;
	int rc;

	if (c->ssl == NULL) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0) {
			*put = (size_t)n;
			return IO_DONE;
		}
		return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_FAIL;
	}
	ERR_clear_error();
	errno = 0;
	rc = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (rc > 0) {
		*put = (size_t)rc;
		return IO_DONE;
	}
	return io_ssl_error(c, rc);
}

/* Writes what is built. 0 written or would block, -1 failed. */
static int conn_flush(struct bench_conn *c, int64_t now)
{
	enum io_result r;
	size_t put;

	while (c->woff < c->wlen) {
		r = io_write(c, c->wbuf + c->woff, c->wlen - c->woff, &put);
		if (r == IO_AGAIN)
			return 0;
		if (r != IO_DONE) {
			conn_fail(c, 0, "write: %s", c->ssl ? ssl_reason() : strerror(errno));
			return -1;
		}
		c->woff += put;
		c->progress_ns = now;
	}
	c->woff = c->wlen = 0;
	return 0;
}

/* ---- requests --------------------------------------------------------- */

/* -R: when request seq of this connection is due. Connection i of C sends
 * requests i, i + C, i + 2C, ... of one schedule of evenly spaced sends. */
static int64_t conn_intended(const struct bench_conn *c, uint64_t seq)
{
	const struct bench_run *run = c->th->run;
	unsigned __int128 slot = (unsigned __int128)(c->id - 1) + (unsigned __int128)seq * run->o->conns;

	return run->t0 + (int64_t)(slot * (unsigned __int128)NS_PER_S / run->o->rate);
}

static int conn_may_send(const struct bench_conn *c)
{
	const struct bench_thread *th = c->th;

	return !th->stopping && !c->server_quit && c->quota > 0 && c->state == CONN_RUNNING &&
	       conn_inflight(c) < th->run->o->depth;
}

/* Builds one request at the end of wbuf. */
static int conn_build(struct bench_conn *c, int64_t stamp_ns, int64_t now)
{
	struct bench_thread *th = c->th;
	const struct bench_pattern *pat = &th->run->pat;

	if (c->woff > 0 && c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (tool_buf_reserve(&c->wbuf, &c->wcap, c->wlen + pat->frame_len, BENCH_READ_CHUNK) < 0)
		return -1;
	bench_frame_build(pat, c->id, c->next_seq, c->wbuf + c->wlen);
	c->wlen += pat->frame_len;
	c->sent_ns[c->next_seq % th->run->o->depth] = stamp_ns;
	c->next_seq++;
	/* -n counts the measured requests: warm-up ones are free. */
	if (now >= th->run->t_measure)
		c->quota--;
	th->st.sent++;
	if (th->measuring)
		th->st.bytes_out += pat->frame_len;
	if (conn_inflight(c) == 1)
		c->progress_ns = now;
	return 0;
}

/* Tops the pipeline up: in the closed loop to depth at once, with -R the
 * requests that are due. */
static int conn_fill(struct bench_conn *c, int64_t now)
{
	int open_loop = c->th->run->o->rate > 0 && !c->th->run->o->handshake;
	int64_t due;

	while (conn_may_send(c)) {
		due = open_loop ? conn_intended(c, c->next_seq) : now;
		if (due > now)
			break;
		if (conn_build(c, due, now) < 0) {
			conn_fail(c, 0, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* ---- responses -------------------------------------------------------- */

static int in_window(const struct bench_thread *th, int64_t now)
{
	return now >= th->run->t_measure && now < th->run->t_end;
}

static void conn_count_answer(struct bench_conn *c, size_t len, int64_t now)
{
	struct bench_thread *th = c->th;
	const struct bench_opts *o = th->run->o;
	int64_t from;

	th->st.answered++;
	if (!in_window(th, now))
		return;
	if (o->handshake)
		from = c->cycle_ns;
	else
		from = c->sent_ns[c->next_ack % o->depth];
	hist_record(&th->hist, now > from ? (uint64_t)(now - from) : 0);
	th->st.measured++;
	th->st.bytes_in += len;
	th->st.last_ns = now;
}

static void conn_count_wrong(struct bench_conn *c, enum bench_verdict v, uint64_t got)
{
	struct bench_thread *th = c->th;

	th->st.verdicts[v]++;
	if (v == BENCH_BAD_ORDER || v == BENCH_BAD_CONN)
		bench_report(th->run, "connection %u: request %" PRIu64 ": %s (the answer to "
			     "request %" PRIu64 ")", c->id, c->next_ack, bench_verdict_string(v), got);
	else
		bench_report(th->run, "connection %u: request %" PRIu64 ": %s", c->id, c->next_ack,
			     bench_verdict_string(v));
}

static void conn_cycle_done(struct bench_conn *c, int64_t now);

/* One whole frame from the server. 0, or -1 when the connection is gone. */
static int conn_answer(struct bench_conn *c, const uint8_t *frame, size_t len, int64_t now)
{
	enum bench_verdict v;
	uint64_t got = 0;

	v = bench_frame_check(&c->th->run->pat, c->id, c->next_ack, frame, len, &got);
	if (v == BENCH_QUIT_FRAME) {
		/* Not an answer: the server is closing; finish what is in flight. */
		c->server_quit = 1;
		c->th->st.verdicts[v]++;
		return 0;
	}
	if (conn_inflight(c) == 0) {
		c->th->st.verdicts[BENCH_BAD_ORDER]++;
		conn_fail(c, 0, "an answer without a request");
		return -1;
	}
	if (v == BENCH_OK)
		conn_count_answer(c, len, now);
	else
		conn_count_wrong(c, v, got);
	c->next_ack++;
	if (c->th->run->o->handshake && conn_inflight(c) == 0) {
		conn_cycle_done(c, now);
		return -1;
	}
	if (c->th->run->o->idle > 0 && !c->ready && conn_inflight(c) == 0) {
		c->ready = 1;
		atomic_fetch_add(&c->th->run->ready, 1);
	}
	return 0;
}

/* Checks every whole frame in rbuf. 0, or -1 when the connection is gone. */
static int conn_parse(struct bench_conn *c, int64_t now)
{
	uint32_t max = (uint32_t)c->th->run->pat.frame_len;
	uint16_t hlen;
	uint32_t total;

	if (max < BENCH_MAX_FOREIGN_FRAME)
		max = BENCH_MAX_FOREIGN_FRAME;
	while (c->rlen - c->roff >= 6) {
		if (bench_frame_prefix(c->rbuf + c->roff, max, &hlen, &total) < 0) {
			c->th->st.verdicts[BENCH_BAD_LENGTH]++;
			conn_fail(c, 0, "invalid frame prefix from the server");
			return -1;
		}
		if (c->rlen - c->roff < total)
			break;
		c->roff += total;
		if (conn_answer(c, c->rbuf + c->roff - total, total, now) < 0)
			return -1;
	}
	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	return 0;
}

/* Room for one more read: compacts, or grows for a frame bigger than the
 * buffer. */
static int conn_read_room(struct bench_conn *c)
{
	size_t need = BENCH_READ_CHUNK;

	if (c->roff > 0 && c->rcap - c->rlen < BENCH_READ_CHUNK) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->th->run->pat.frame_len > need)
		need = c->th->run->pat.frame_len;
	return tool_buf_reserve(&c->rbuf, &c->rcap, c->rlen + need, BENCH_READ_CHUNK);
}

static int conn_eof(struct bench_conn *c, enum io_result r)
{
	if (c->server_quit && conn_inflight(c) == 0) {
		conn_finish(c, r == IO_EOF);
		return -1;
	}
	if (r == IO_EOF)
		conn_fail(c, 0, "the server closed the connection");
	else
		conn_fail(c, 0, "read: %s", c->ssl ? ssl_reason() : strerror(errno));
	return -1;
}

/* Reads until the socket is empty. 0, or -1 when the connection is gone. */
static int conn_read(struct bench_conn *c, int64_t *now)
{
	enum io_result r;
	size_t got;

	for (;;) {
		if (conn_read_room(c) < 0) {
			conn_fail(c, 0, "out of memory");
			return -1;
		}
		r = io_read(c, c->rbuf + c->rlen, c->rcap - c->rlen, &got);
		if (r == IO_AGAIN)
			return 0;
		if (r != IO_DONE)
			return conn_eof(c, r);
		*now = now_ns();
		c->progress_ns = *now;
		c->rlen += got;
		if (conn_parse(c, *now) < 0)
			return -1;
	}
}

/* ---- the loop --------------------------------------------------------- */

/* Established: count the handshake, note what was negotiated. */
static void conn_established(struct bench_conn *c, int64_t now)
{
	conn_setup_done(c);
	c->state = CONN_RUNNING;
	c->progress_ns = now;
	conn_note_tls(c);
}

static int conn_may_start_again(const struct bench_conn *c)
{
	return !c->th->stopping && !c->server_quit && c->quota > 0 &&
	       !atomic_load(&bench_interrupted);
}

/* Handshake mode: one connection served its request; count it, keep the
 * session for --resume, and start the next one. */
static void conn_cycle_done(struct bench_conn *c, int64_t now)
{
	struct bench_thread *th = c->th;
	SSL_SESSION *s;

	if (in_window(th, now)) {
		th->st.handshakes++;
		if (c->ssl != NULL && SSL_session_reused(c->ssl))
			th->st.resumed++;
	}
	if (th->run->o->resume && c->ssl != NULL) {
		s = SSL_get1_session(c->ssl);
		if (s != NULL && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(c->session);
			c->session = s;
		} else {
			SSL_SESSION_free(s);
		}
	}
	conn_close_socket(c, 1);
	c->state = CONN_IDLE;
	if (conn_may_start_again(c))
		(void)conn_start(c, now);
	else
		conn_finish(c, 1);
}

/* Done when the window is over and nothing is in flight, or when the
 * server said QUIT and answered everything. */
static void conn_maybe_close(struct bench_conn *c)
{
	if (c->state == CONN_RUNNING && conn_inflight(c) == 0 &&
	    (c->th->stopping || c->server_quit || (c->quota == 0 && c->th->run->o->idle == 0)))
		conn_finish(c, 1);
}

static void conn_pump(struct bench_conn *c, int64_t now)
{
	if (conn_read(c, &now) < 0 || conn_fill(c, now) < 0 || conn_flush(c, now) < 0)
		return;
	conn_maybe_close(c);
}

/* Everything a socket event can move: set-up, then the request pump. */
static void conn_drive(struct bench_conn *c, int64_t now)
{
	if (c->state == CONN_CONNECTING) {
		if (conn_connected(c) <= 0)
			return;
		if (c->state == CONN_CONNECTING)
			conn_established(c, now);
	}
	if (c->state == CONN_HANDSHAKING) {
		if (conn_handshake(c) <= 0)
			return;
		conn_established(c, now);
	}
	if (c->state == CONN_RUNNING)
		conn_pump(c, now);
}

static void thread_start_more(struct bench_thread *th, int64_t now)
{
	struct bench_conn *c;

	while (th->next_start < th->nconns && th->setups < BENCH_MAX_SETUPS && !th->stopping) {
		c = &th->conns[th->next_start++];
		if (conn_start(c, now) < 0)
			continue;
		conn_drive(c, now);
	}
}

/* A connection that makes no progress for --timeout fails; so does one
 * still being set up. */
static void thread_check_timeouts(struct bench_thread *th, int64_t now)
{
	int64_t limit = (int64_t)th->run->o->timeout_ms * 1000000;
	struct bench_conn *c;
	unsigned i;

	for (i = 0; i < th->nconns; i++) {
		c = &th->conns[i];
		if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKING) {
			if (now - c->progress_ns > limit)
				conn_fail(c, 1, "no connection within %d ms", th->run->o->timeout_ms);
		} else if (c->state == CONN_RUNNING && conn_inflight(c) > 0 &&
			   now - c->progress_ns > limit) {
			conn_fail(c, 1, "no answer within %d ms", th->run->o->timeout_ms);
		}
	}
}

/* The window is over (or the run interrupted, or --idle released): stop
 * sending; connections close once their answers are in. */
static void thread_stop(struct bench_thread *th)
{
	struct bench_conn *c;
	unsigned i;

	th->stopping = 1;
	for (i = 0; i < th->nconns; i++) {
		c = &th->conns[i];
		if (c->state == CONN_IDLE)
			conn_finish(c, 1);
		else if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKING)
			conn_finish(c, 0);   /* a cycle cut short is not an error */
		else
			conn_maybe_close(c);
	}
}

static void thread_phase(struct bench_thread *th, int64_t now)
{
	const struct bench_run *run = th->run;

	if (!th->measuring && !th->measured && now >= run->t_measure) {
		th->measuring = 1;
		th->cpu_start = thread_cpu_ns();
	}
	if (th->stopping)
		return;
	if (now >= run->t_end || atomic_load(&bench_interrupted) ||
	    (run->o->idle > 0 && atomic_load(&th->run->release))) {
		if (th->measuring) {
			th->st.cpu_ns = thread_cpu_ns() - th->cpu_start;
			th->measuring = 0;
			th->measured = 1;
		}
		thread_stop(th);
	}
}

/* -R: sends what is due and arms the timer for the next due request. */
static void thread_open_loop(struct bench_thread *th, int64_t now)
{
	struct itimerspec its;
	struct bench_conn *c;
	int64_t next = INT64_MAX, due;
	unsigned i;

	for (i = 0; i < th->nconns; i++) {
		c = &th->conns[i];
		if (!conn_may_send(c))
			continue;
		if (conn_intended(c, c->next_seq) <= now) {
			if (conn_fill(c, now) < 0 || conn_flush(c, now) < 0)
				continue;
		}
		if (!conn_may_send(c))
			continue;
		due = conn_intended(c, c->next_seq);
		if (due < next)
			next = due;
	}
	if (next == INT64_MAX || next == th->timer_due)
		return;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = next / NS_PER_S;
	its.it_value.tv_nsec = next % NS_PER_S;
	if (timerfd_settime(th->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		th->timer_due = next;
}

static void thread_events(struct bench_thread *th, struct epoll_event *evs, int n)
{
	uint64_t expirations;
	int64_t now = now_ns();
	int i;

	for (i = 0; i < n; i++) {
		if (evs[i].data.ptr == NULL) {
			/* The timer: cleared here, served by thread_open_loop. */
			if (read(th->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
				bench_report(th->run, "timerfd: %s", strerror(errno));
			th->timer_due = 0;
			continue;
		}
		conn_drive(evs[i].data.ptr, now);
	}
}

static void *thread_main(void *arg)
{
	struct bench_thread *th = arg;
	const struct bench_opts *o = th->run->o;
	struct epoll_event evs[256];
	int64_t now, last_tick = 0;
	int n;

	while (th->open > 0) {
		now = now_ns();
		thread_phase(th, now);
		thread_start_more(th, now);
		if (o->rate > 0 && !o->handshake && !th->stopping)
			thread_open_loop(th, now);
		if (now - last_tick >= BENCH_TICK_MS * 1000000) {
			thread_check_timeouts(th, now);
			last_tick = now;
		}
		if (th->open == 0)
			break;
		n = epoll_wait(th->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), BENCH_TICK_MS);
		if (n < 0 && errno != EINTR) {
			bench_report(th->run, "epoll_wait: %s", strerror(errno));
			break;
		}
		if (n > 0)
			thread_events(th, evs, n);
	}
	if (th->measuring)
		th->st.cpu_ns = thread_cpu_ns() - th->cpu_start;
	atomic_fetch_add(&th->run->finished, 1);
	return NULL;
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-bench [options] HOST:PORT\n"
		"Load generator for the sluice frame protocol over TLS; checks every answer\n"
		"byte for byte and reports rates and latency percentiles.\n"
		"Load:\n"
		"  -c, --connections N   connections (default 10)\n"
		"  -P, --pipeline N      requests in flight per connection (default 1)\n"
		"  -s, --size BYTES      payload size (default 64)\n"
		"  -H, --header BYTES    header size (default 16)\n"
		"  -d, --duration SECS   measured time (default 10)\n"
		"  -w, --warmup SECS     load before measuring, not counted (default 1)\n"
		"  -R, --rate N          open loop: N requests/s in all, latency counted from\n"
		"                        each request's intended send time (default: closed loop)\n"
		"  -n, --requests N      stop after N requests in all (after the warm-up)\n"
		"  -t, --threads N       threads, each an event loop (default 1)\n"
		"      --handshake       connect, handshake, one request, close; over again\n"
		"      --resume          like --handshake, resuming the previous TLS session\n"
		"      --idle N          open N connections, one request each, then hold them\n"
		"      --hold SECS       how long --idle holds them (default 10)\n"
		"      --timeout MS      a connection without progress for MS fails (default %d)\n"
		"TLS:\n"
		"      --plain           no TLS: the frame protocol over TCP\n"
		"      --sni NAME        server name (default: HOST unless an address)\n"
		"      --ca FILE         verify the server against FILE (default: no verification)\n"
		"      --tls12, --tls13  only this version\n"
		"      --cipher LIST     TLS 1.3 suites (TLS_...) or a TLS 1.2 cipher list\n"
		"      --groups LIST     key exchange groups, e.g. X25519:P-256\n"
		"      --alpn PROTO      offer this ALPN protocol\n"
		"Output:\n"
		"      --json            one JSON object instead of the table\n"
		"      --cpu-pid PIDS    also report the CPU time these processes (comma-\n"
		"                        separated: the server under test) spend in the window\n"
		"  -q, --quiet           no warnings\n"
		"  -h, --help, -V, --version\n"
		"Exit status: 0 every answer correct, 1 errors or wrong answers, 2 usage.\n",
		BENCH_DEFAULT_TIMEOUT_MS);
}

static int parse_seconds(const char *text, double min, double *out)
{
	char *end;
	double v;

	if ((text[0] < '0' || text[0] > '9') && text[0] != '.')
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || *end != '\0' || v < min || v > BENCH_MAX_SECONDS)
		return -1;
	*out = v;
	return 0;
}

/* --cpu-pid 12,34: the processes whose CPU time the window is charged. */
static int parse_pids(struct bench_opts *o, const char *arg)
{
	char buf[1024], *tok, *save = NULL;
	uint64_t v;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (o->ncpu_pids == BENCH_MAX_PIDS || tool_parse_u64(tok, 1, INT_MAX, &v) < 0)
			return -1;
		o->cpu_pids[o->ncpu_pids++] = (pid_t)v;
	}
	return o->ncpu_pids > 0 ? 0 : -1;
}

enum {
	OPT_HANDSHAKE = 256,
	OPT_RESUME,
	OPT_IDLE,
	OPT_HOLD,
	OPT_TIMEOUT,
	OPT_PLAIN,
	OPT_SNI,
	OPT_CA,
	OPT_TLS12,
	OPT_TLS13,
	OPT_CIPHER,
	OPT_GROUPS,
	OPT_ALPN,
	OPT_JSON,
	OPT_CPU_PID,
};

static int parse_count(struct bench_opts *o, int ch, const char *arg)
{
	uint64_t v;

	switch (ch) {
	case 'c':
	case 'P':
	case 't':
	case OPT_IDLE: {
		uint64_t max = ch == 'P' ? BENCH_MAX_DEPTH :
			       ch == 't' ? BENCH_MAX_THREADS : BENCH_MAX_CONNS;

		if (tool_parse_u64(arg, 1, max, &v) < 0)
			return -1;
		*(ch == 'c' ? &o->conns : ch == 'P' ? &o->depth :
		  ch == 't' ? &o->threads : &o->idle) = (unsigned)v;
		return 0;
	}
	case 's':
		if (tool_parse_u64(arg, 0, BENCH_MAX_PAYLOAD, &v) < 0)
			return -1;
		o->payload_len = (uint32_t)v;
		return 0;
	case 'H':
		if (tool_parse_u64(arg, 0, 65535, &v) < 0)
			return -1;
		o->header_len = (uint16_t)v;
		return 0;
	case 'R':
		return tool_parse_u64(arg, 1, UINT64_C(100000000), &o->rate);
	case 'n':
		return tool_parse_u64(arg, 1, UINT64_C(1) << 48, &o->max_requests);
	case OPT_TIMEOUT:
		if (tool_parse_u64(arg, 1, 3600000, &v) < 0)
			return -1;
		o->timeout_ms = (int)v;
		return 0;
	}
	return -1;
}

static int parse_one(struct bench_opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 'd':
		return parse_seconds(arg, 0.001, &o->duration);
	case 'w':
		return parse_seconds(arg, 0, &o->warmup);
	case OPT_HOLD:
		return parse_seconds(arg, 0, &o->hold);
	case OPT_HANDSHAKE:
		o->handshake = 1;
		return 0;
	case OPT_RESUME:
		o->handshake = o->resume = 1;
		return 0;
	case OPT_PLAIN:
		o->plain = 1;
		return 0;
	case OPT_TLS12:
	case OPT_TLS13:
		o->min_version = o->max_version = ch == OPT_TLS12 ? TLS1_2_VERSION : TLS1_3_VERSION;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_CPU_PID:
		return parse_pids(o, arg);
	case 'q':
		o->quiet = 1;
		return 0;
	case OPT_SNI:
	case OPT_CA:
	case OPT_CIPHER:
	case OPT_GROUPS:
	case OPT_ALPN:
		*(ch == OPT_SNI ? &o->sni : ch == OPT_CA ? &o->ca : ch == OPT_CIPHER ? &o->cipher :
		  ch == OPT_GROUPS ? &o->groups : &o->alpn) = arg;
		return ch == OPT_ALPN && (strlen(arg) == 0 || strlen(arg) > 255) ? -1 : 0;
	}
	return parse_count(o, ch, arg);
}

/* Rules between options. 0, or -1 after saying why. */
static int check_opts(struct bench_opts *o)
{
	const char *why = NULL;

	if (o->plain && (o->resume || o->sni || o->ca || o->cipher || o->groups || o->alpn ||
			 o->min_version))
		why = "--plain excludes the TLS options";
	else if (o->handshake && (o->rate > 0 || o->depth > 1))
		why = "--handshake and --resume send one request per connection (no -R, -P)";
	else if (o->idle > 0 && (o->handshake || o->rate > 0))
		why = "--idle excludes --handshake, --resume and -R";
	else if (o->rate > 0 && o->rate < o->conns)
		why = "-R must be at least the number of connections";
	if (why != NULL) {
		fprintf(stderr, "sluice-bench: %s\n", why);
		return -1;
	}
	if (o->idle > 0) {
		o->conns = o->idle;
		o->depth = 1;
	}
	return 0;
}

/* -1: exit 2; 1: exit 0 (help, version); 0: run. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longs[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "pipeline", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 's' },
		{ "header", required_argument, NULL, 'H' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'R' },
		{ "requests", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "handshake", no_argument, NULL, OPT_HANDSHAKE },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "idle", required_argument, NULL, OPT_IDLE },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "plain", no_argument, NULL, OPT_PLAIN },
		{ "sni", required_argument, NULL, OPT_SNI },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "tls12", no_argument, NULL, OPT_TLS12 },
		{ "tls13", no_argument, NULL, OPT_TLS13 },
		{ "cipher", required_argument, NULL, OPT_CIPHER },
		{ "groups", required_argument, NULL, OPT_GROUPS },
		{ "alpn", required_argument, NULL, OPT_ALPN },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "cpu-pid", required_argument, NULL, OPT_CPU_PID },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:P:s:H:d:w:R:n:t:qhV", longs, NULL)) != -1) {
		if (ch == 'h' || ch == 'V') {
			if (ch == 'h')
				usage(stdout);
			else
				printf("sluice-bench %s\n", SLUICE_VERSION);
			return 1;
		}
		if (ch == '?' || parse_one(o, ch, optarg) < 0) {
			if (ch != '?')
				fprintf(stderr, "sluice-bench: invalid value '%s'\n", optarg);
			usage(stderr);
			return -1;
		}
	}
	if (optind + 1 != argc || tool_split_target(argv[optind], &o->host, &o->port) < 0) {
		fprintf(stderr, "sluice-bench: expected HOST:PORT\n");
		usage(stderr);
		return -1;
	}
	return check_opts(o);
}

/* ---- set-up ----------------------------------------------------------- */

static int run_resolve(struct bench_run *run)
{
	const struct bench_opts *o = run->o;
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "sluice-bench: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
		return -1;
	}
	memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
	run->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ALPN's wire format: a length byte, then the name. */
static int ctx_alpn(SSL_CTX *ctx, const char *proto)
{
	unsigned char wire[256];
	size_t len = strlen(proto);

	wire[0] = (unsigned char)len;
	memcpy(wire + 1, proto, len);
	/* The one OpenSSL call that returns 0 on success. */
	return SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)len + 1) == 0 ? 0 : -1;
}

static int ctx_ciphers(SSL_CTX *ctx, const char *list)
{
	if (strncmp(list, "TLS_", 4) == 0)
		return SSL_CTX_set_ciphersuites(ctx, list) == 1 ? 0 : -1;
	return SSL_CTX_set_cipher_list(ctx, list) == 1 ? 0 : -1;
}

static int ctx_accept_any(X509_STORE_CTX *store, void *arg)
{
	(void)store;
	(void)arg;
	return 1;
}

static int ctx_options(SSL_CTX *ctx, const struct bench_opts *o)
{
	/* Partial writes: a batch may go out over several calls; moving
	 * buffer: a batch may grow (and move) while its start waits. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o->min_version && (SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1 ||
			       SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1))
		return -1;
	if (o->cipher != NULL && ctx_ciphers(ctx, o->cipher) < 0)
		return -1;
	if (o->groups != NULL && SSL_CTX_set1_groups_list(ctx, o->groups) != 1)
		return -1;
	if (o->alpn != NULL && ctx_alpn(ctx, o->alpn) < 0)
		return -1;
	if (o->ca == NULL) {
		/* Not verifying: skip X509_verify_cert altogether (SSL_VERIFY_NONE
		 * alone still builds and checks the chain, a good part of a
		 * client's handshake under OpenSSL 3.0). */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_cert_verify_callback(ctx, ctx_accept_any, NULL);
		return 0;
	}
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
		return -1;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

static int run_tls(struct bench_run *run, struct bench_opts *o)
{
	if (o->plain)
		return 0;
	if (o->sni == NULL && !tool_is_ip(o->host))
		o->sni = o->host;
	run->verify_name = o->sni != NULL ? o->sni : o->host;
	run->verify_ip = o->sni == NULL;
	run->ctx = SSL_CTX_new(TLS_client_method());
	if (run->ctx == NULL || ctx_options(run->ctx, o) < 0) {
		fprintf(stderr, "sluice-bench: TLS set-up: %s\n", ssl_reason());
		return -1;
	}
	if (o->ca == NULL && !o->quiet && !o->json)
		fprintf(stderr, "sluice-bench: the server's certificate is not verified (--ca)\n");
	return 0;
}

/* Each connection holds a descriptor; 5,000 idle ones need more than the
 * usual soft limit of 1,024. */
static int raise_fd_limit(unsigned conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		fprintf(stderr, "sluice-bench: %u connections need %lu descriptors; the hard "
			"limit is %lu\n", conns, (unsigned long)want, (unsigned long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

static int thread_init(struct bench_thread *th, struct bench_run *run, unsigned index)
{
	struct epoll_event ev;

	th->run = run;
	th->index = index;
	th->tfd = -1;
	hist_init(&th->hist);
	th->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (th->epfd < 0)
		return -1;
	if (run->o->rate == 0)
		return 0;
	th->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (th->tfd < 0)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	return epoll_ctl(th->epfd, EPOLL_CTL_ADD, th->tfd, &ev);
}

/* Connection i goes to thread i % threads; -n is shared out evenly. */
static int threads_assign(struct bench_thread *ths, const struct bench_opts *o)
{
	unsigned i, t, k;
	struct bench_conn *c;
	uint64_t quota;

	for (t = 0; t < o->threads; t++) {
		ths[t].nconns = o->conns / o->threads + (t < o->conns % o->threads);
		ths[t].conns = calloc(ths[t].nconns ? ths[t].nconns : 1, sizeof(struct bench_conn));
		if (ths[t].conns == NULL)
			return -1;
		ths[t].open = ths[t].nconns;
	}
	for (i = 0; i < o->conns; i++) {
		t = i % o->threads;
		k = i / o->threads;
		c = &ths[t].conns[k];
		c->th = &ths[t];
		c->id = i + 1;
		c->fd = -1;
		quota = o->max_requests ? o->max_requests / o->conns +
					   (i < o->max_requests % o->conns) : UINT64_MAX;
		c->quota = o->idle ? 1 : quota;
		c->sent_ns = calloc(o->depth, sizeof(*c->sent_ns));
		if (c->sent_ns == NULL)
			return -1;
		if (c->quota == 0) {
			c->state = CONN_DONE;
			ths[t].open--;
		}
	}
	return 0;
}

static void threads_free(struct bench_thread *ths, unsigned n)
{
	struct bench_conn *c;
	unsigned t, i;

	for (t = 0; t < n; t++) {
		for (i = 0; ths[t].conns != NULL && i < ths[t].nconns; i++) {
			c = &ths[t].conns[i];
			conn_close_socket(c, 0);
			SSL_SESSION_free(c->session);
			free(c->sent_ns);
			free(c->wbuf);
			free(c->rbuf);
		}
		free(ths[t].conns);
		if (ths[t].epfd >= 0)
			(void)close(ths[t].epfd);
		if (ths[t].tfd >= 0)
			(void)close(ths[t].tfd);
	}
}

/* ---- running ---------------------------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&bench_interrupted, 1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	(void)nanosleep(&ts, NULL);
}

/* --idle: waits until every connection answered (or failed), says so on
 * stderr for whoever measures the server's memory, holds, releases. */
static void idle_supervise(struct bench_run *run)
{
	const struct bench_opts *o = run->o;
	unsigned done, last = 0;
	int64_t progress = now_ns(), until;

	for (;;) {
		done = atomic_load(&run->ready) + atomic_load(&run->failed);
		if (done >= o->idle || atomic_load(&bench_interrupted))
			break;
		if (done != last) {
			last = done;
			progress = now_ns();
		} else if (now_ns() - progress > (int64_t)o->timeout_ms * 1000000) {
			break;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "sluice-bench: %u idle connections ready (%u failed)\n",
		atomic_load(&run->ready), atomic_load(&run->failed));
	fflush(stderr);
	until = now_ns() + (int64_t)(o->hold * 1e9);
	while (now_ns() < until && !atomic_load(&bench_interrupted))
		sleep_ms(20);
	atomic_store(&run->release, 1);
}

static void run_times(struct bench_run *run)
{
	const struct bench_opts *o = run->o;

	run->t0 = now_ns();
	if (o->idle > 0) {
		run->t_measure = run->t0;
		run->t_end = INT64_MAX;
		return;
	}
	run->t_measure = run->t0 + (int64_t)(o->warmup * 1e9);
	run->t_end = run->t_measure + (int64_t)(o->duration * 1e9);
}

/* utime + stime of a process, its finished threads included, in clock
 * ticks. */
static int proc_cpu_ticks(pid_t pid, uint64_t *ticks)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL;
	(void)fclose(f);
	/* The command name may hold spaces: fields count from its ')'. */
	p = ok ? strrchr(line, ')') : NULL;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) != 2)
		return -1;
	*ticks = ut + st;
	return 0;
}

static int server_cpu_ticks(const struct bench_opts *o, uint64_t *sum)
{
	uint64_t t;
	unsigned i;

	*sum = 0;
	for (i = 0; i < o->ncpu_pids; i++) {
		if (proc_cpu_ticks(o->cpu_pids[i], &t) < 0)
			return -1;
		*sum += t;
	}
	return 0;
}

/* Sleeps until `until` or until every thread has returned. */
static void wait_until(struct bench_run *run, int64_t until)
{
	int64_t left;

	while (atomic_load(&run->finished) < run->o->threads && (left = until - now_ns()) > 0)
		sleep_ms(left > 5000000 ? 5 : 1);
}

/* --cpu-pid: the server's CPU time from the window's start to its end (or
 * to the threads' end, when -n or a signal ends the run early). */
static void server_cpu_watch(struct bench_run *run)
{
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t a, b;
	int ok;

	run->server_cpu_s = -1;
	wait_until(run, run->t_measure);
	ok = server_cpu_ticks(run->o, &a) == 0;
	wait_until(run, run->t_end);
	if (ok && server_cpu_ticks(run->o, &b) == 0 && hz > 0 && b >= a)
		run->server_cpu_s = (double)(b - a) / (double)hz;
}

/* Starts the threads and waits for them. Returns the number started. */
static unsigned run_threads(struct bench_run *run, struct bench_thread *ths)
{
	const struct bench_opts *o = run->o;
	unsigned started, i;
	int rc;

	run_times(run);
	for (started = 0; started < o->threads; started++) {
		rc = pthread_create(&ths[started].tid, NULL, thread_main, &ths[started]);
		if (rc != 0) {
			fprintf(stderr, "sluice-bench: pthread_create: %s\n", strerror(rc));
			atomic_store(&bench_interrupted, 1);
			break;
		}
	}
	if (o->idle > 0 && started == o->threads)
		idle_supervise(run);
	else if (o->ncpu_pids > 0 && started == o->threads)
		server_cpu_watch(run);
	for (i = 0; i < started; i++)
		if ((rc = pthread_join(ths[i].tid, NULL)) != 0)
			fprintf(stderr, "sluice-bench: pthread_join: %s\n", strerror(rc));
	return started;
}

/* ---- results ---------------------------------------------------------- */

/* Every thread's counters and histogram, summed. */
struct bench_totals {
	struct bench_stats st;
	struct hist hist;
	double window_s;             /* the measured time */
	uint64_t errors;
	uint64_t mismatches;
};

static void totals_sum(struct bench_totals *t, const struct bench_run *run,
		       const struct bench_thread *ths, unsigned n)
{
	const struct bench_opts *o = run->o;
	int64_t end = run->t_end, last = 0;
	unsigned i, v;

	memset(t, 0, sizeof(*t));
	hist_init(&t->hist);
	for (i = 0; i < n; i++) {
		const struct bench_stats *s = &ths[i].st;

		t->st.sent += s->sent;
		t->st.answered += s->answered;
		t->st.measured += s->measured;
		t->st.bytes_in += s->bytes_in;
		t->st.bytes_out += s->bytes_out;
		t->st.handshakes += s->handshakes;
		t->st.resumed += s->resumed;
		for (v = 0; v < BENCH_VERDICTS; v++)
			t->st.verdicts[v] += s->verdicts[v];
		t->st.conn_errors += s->conn_errors;
		t->st.timeouts += s->timeouts;
		t->st.unanswered += s->unanswered;
		t->st.cpu_ns += s->cpu_ns;
		if (s->last_ns > last)
			last = s->last_ns;
		hist_merge(&t->hist, &ths[i].hist);
	}
	/* Ended early (-n, a signal): the window closes with the last answer. */
	if ((o->max_requests > 0 || atomic_load(&bench_interrupted)) && last < end)
		end = last;
	t->window_s = o->idle == 0 && end > run->t_measure ? (end - run->t_measure) / 1e9 : 0;
	t->errors = t->st.verdicts[BENCH_ERR_FRAME] + t->st.verdicts[BENCH_QUIT_FRAME] +
		    t->st.conn_errors + t->st.timeouts + t->st.unanswered;
	for (v = BENCH_BAD_LENGTH; v < BENCH_VERDICTS; v++)
		t->mismatches += t->st.verdicts[v];
}

static double per_s(uint64_t n, double secs)
{
	return secs > 0 ? (double)n / secs : 0.0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static const char *run_mode(const struct bench_opts *o)
{
	if (o->idle)
		return "idle";
	if (o->resume)
		return "resume";
	if (o->handshake)
		return "handshake";
	return o->rate ? "open-loop" : "closed-loop";
}

/* Host names go into JSON as they are: only quotes, backslashes and control
 * bytes need care. */
static void json_string(const char *s)
{
	putchar('"');
	for (; s != NULL && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json_latency(const struct hist *h)
{
	printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
	       "\"min\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"samples\":%" PRIu64 "},",
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	       us(hist_percentile(h, 99.9)), h->total ? us(h->min) : 0.0, us(h->max),
	       hist_mean(h) / 1000.0, h->total);
}

static void print_json_problems(const struct bench_totals *t)
{
	const uint64_t *v = t->st.verdicts;

	printf("\"errors\":%" PRIu64 ",\"error_detail\":{\"err_answers\":%" PRIu64
	       ",\"server_quit\":%" PRIu64 ",\"connection_errors\":%" PRIu64 ",\"timeouts\":%"
	       PRIu64 ",\"unanswered\":%" PRIu64 "},", t->errors, v[BENCH_ERR_FRAME],
	       v[BENCH_QUIT_FRAME], t->st.conn_errors, t->st.timeouts, t->st.unanswered);
	printf("\"mismatches\":%" PRIu64 ",\"mismatch_detail\":{\"length\":%" PRIu64 ",\"order\":%"
	       PRIu64 ",\"connection\":%" PRIu64 ",\"header\":%" PRIu64 ",\"payload\":%" PRIu64
	       "},", t->mismatches, v[BENCH_BAD_LENGTH], v[BENCH_BAD_ORDER], v[BENCH_BAD_CONN],
	       v[BENCH_BAD_HEADER], v[BENCH_BAD_PAYLOAD]);
}

/* --cpu-pid: the server's CPU per unit of work (null without it). */
static void print_json_server(const struct bench_run *run, const struct bench_totals *t)
{
	const struct bench_stats *s = &t->st;
	double c = run->server_cpu_s * 1e6;

	if (run->o->ncpu_pids == 0 || run->server_cpu_s < 0 || t->window_s <= 0) {
		printf("\"server_cpu_s\":null}\n");
		return;
	}
	printf("\"server_cpu_s\":%.3f,\"server_core_share\":%.3f,\"server_cpu_us_per_request\":"
	       "%.3f,\"server_cpu_us_per_mb\":%.1f,\"server_cpu_us_per_handshake\":%.1f}\n",
	       run->server_cpu_s, run->server_cpu_s / t->window_s,
	       s->measured ? c / (double)s->measured : 0.0,
	       s->bytes_in ? c / (s->bytes_in / 1e6) : 0.0,
	       s->handshakes ? c / (double)s->handshakes : 0.0);
}

static void print_json(const struct bench_run *run, const struct bench_totals *t)
{
	const struct bench_opts *o = run->o;
	const struct bench_stats *s = &t->st;
	double cpu_s = s->cpu_ns / 1e9;

	printf("{\"tool\":\"sluice-bench\",\"version\":\"%s\",\"target\":", SLUICE_VERSION);
	json_string(o->host);
	printf(",\"port\":");
	json_string(o->port);
	printf(",\"tls\":%s,\"tls_version\":", o->plain ? "false" : "true");
	json_string(run->tls_version ? run->tls_version : "");
	printf(",\"cipher\":");
	json_string(run->tls_cipher ? run->tls_cipher : "");
	printf(",\"mode\":\"%s\",\"connections\":%u,\"pipeline\":%u,\"threads\":%u,"
	       "\"header_size\":%u,\"payload_size\":%u,\"frame_size\":%zu,\"rate_target\":%" PRIu64
	       ",\"duration_s\":%.3f,\"warmup_s\":%.3f,\"window_s\":%.3f,", run_mode(o), o->conns,
	       o->depth, o->threads, (unsigned)o->header_len, (unsigned)o->payload_len,
	       run->pat.frame_len, o->rate, o->duration, o->warmup, t->window_s);
	printf("\"requests\":%" PRIu64 ",\"requests_per_s\":%.1f,\"bytes_in\":%" PRIu64
	       ",\"bytes_out\":%" PRIu64 ",\"mb_per_s\":%.3f,\"handshakes\":%" PRIu64
	       ",\"handshakes_per_s\":%.1f,\"resumed\":%" PRIu64 ",\"resumption_rate\":%.4f,",
	       s->measured, per_s(s->measured, t->window_s), s->bytes_in, s->bytes_out,
	       per_s(s->bytes_in, t->window_s) / 1e6, s->handshakes,
	       per_s(s->handshakes, t->window_s), s->resumed,
	       s->handshakes ? (double)s->resumed / (double)s->handshakes : 0.0);
	print_json_latency(&t->hist);
	print_json_problems(t);
	printf("\"sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"idle_ready\":%u,"
	       "\"idle_failed\":%u,\"cpu_s\":%.3f,\"cpu_core_share\":%.3f,"
	       "\"cpu_us_per_request\":%.2f,", s->sent, s->answered, atomic_load(&run->ready),
	       atomic_load(&run->failed), cpu_s, t->window_s > 0 ? cpu_s / t->window_s : 0.0,
	       s->measured ? s->cpu_ns / 1e3 / (double)s->measured : 0.0);
	print_json_server(run, t);
}

static void print_table_rates(const struct bench_opts *o, const struct bench_totals *t)
{
	const struct bench_stats *s = &t->st;

	printf("  %-12s %14s %14s\n", "", "in window", "per second");
	printf("  %-12s %14" PRIu64 " %14.1f\n", "requests", s->measured,
	       per_s(s->measured, t->window_s));
	printf("  %-12s %14.2f %14.2f\n", "MB answered", s->bytes_in / 1e6,
	       per_s(s->bytes_in, t->window_s) / 1e6);
	if (o->handshake)
		printf("  %-12s %14" PRIu64 " %14.1f   resumed %.1f%%\n", "handshakes",
		       s->handshakes, per_s(s->handshakes, t->window_s),
		       s->handshakes ? 100.0 * (double)s->resumed / (double)s->handshakes : 0.0);
}

static void print_table_latency(const struct bench_opts *o, const struct hist *h)
{
	printf("  latency (us, %s)\n", o->rate ? "from the intended send time" :
	       o->handshake ? "connect to answer" : "write to answer");
	printf("  %10s %10s %10s %10s %10s %10s\n", "p50", "p90", "p99", "p99.9", "max", "mean");
	printf("  %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", us(hist_percentile(h, 50)),
	       us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	       us(hist_percentile(h, 99.9)), us(h->max), hist_mean(h) / 1000.0);
}

static void print_table(const struct bench_run *run, const struct bench_totals *t)
{
	const struct bench_opts *o = run->o;
	const struct bench_stats *s = &t->st;
	double cpu_s = s->cpu_ns / 1e9;

	printf("sluice-bench %s: %s:%s, %s %s\n", SLUICE_VERSION, o->host, o->port,
	       o->plain ? "plain TCP" : run->tls_version ? run->tls_version : "TLS",
	       run->tls_cipher ? run->tls_cipher : "");
	printf("  %s, %u connections x pipeline %u, %u thread%s, frames of %zu bytes "
	       "(header %u, payload %u)\n", run_mode(o), o->conns, o->depth, o->threads,
	       o->threads == 1 ? "" : "s", run->pat.frame_len, (unsigned)o->header_len,
	       (unsigned)o->payload_len);
	if (o->idle) {
		printf("  idle connections: %u ready, %u failed\n", atomic_load(&run->ready),
		       atomic_load(&run->failed));
	} else {
		printf("  measured %.2f s after %.2f s of warm-up\n", t->window_s, o->warmup);
		print_table_rates(o, t);
		print_table_latency(o, &t->hist);
	}
	printf("  errors %" PRIu64 " (ERR answers %" PRIu64 ", connections lost %" PRIu64
	       ", timeouts %" PRIu64 ", unanswered %" PRIu64 "), wrong answers %" PRIu64 "\n",
	       t->errors, s->verdicts[BENCH_ERR_FRAME], s->conn_errors, s->timeouts,
	       s->unanswered, t->mismatches);
	if (t->window_s > 0)
		printf("  sluice-bench's own CPU: %.2f s, %.0f%% of one core, %.2f us per request\n",
		       cpu_s, 100.0 * cpu_s / t->window_s,
		       s->measured ? s->cpu_ns / 1e3 / (double)s->measured : 0.0);
	if (t->window_s > 0 && o->ncpu_pids > 0 && run->server_cpu_s >= 0)
		printf("  the server's CPU (--cpu-pid): %.2f s, %.0f%% of one core, %.2f us per "
		       "request\n", run->server_cpu_s, 100.0 * run->server_cpu_s / t->window_s,
		       s->measured ? run->server_cpu_s * 1e6 / (double)s->measured : 0.0);
}

/* ---- main ------------------------------------------------------------- */

static int run_init(struct bench_run *run, struct bench_opts *o)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0)
		return -1;
	run->o = o;
	if (run_resolve(run) < 0 || run_tls(run, o) < 0 || raise_fd_limit(o->conns) < 0)
		return -1;
	if (bench_pattern_init(&run->pat, o->header_len, o->payload_len, UINT64_C(0x5111CE)) < 0) {
		fprintf(stderr, "sluice-bench: out of memory\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench_opts o = {
		.conns = 10, .threads = 1, .depth = 1, .header_len = 16, .payload_len = 64,
		.duration = 10, .warmup = 1, .hold = 10, .timeout_ms = BENCH_DEFAULT_TIMEOUT_MS,
	};
	static struct bench_run run;
	static struct bench_totals totals;
	struct bench_thread *ths = NULL;
	unsigned i, started = 0;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 2 : 0;
	if (o.threads > o.conns)
		o.threads = o.conns;
	rc = run_init(&run, &o);
	if (rc == 0) {
		ths = calloc(o.threads, sizeof(*ths));
		rc = ths == NULL ? -1 : 0;
		for (i = 0; rc == 0 && i < o.threads; i++)
			ths[i].epfd = ths[i].tfd = -1;
		for (i = 0; rc == 0 && i < o.threads; i++)
			rc = thread_init(&ths[i], &run, i);
		if (rc == 0)
			rc = threads_assign(ths, &o);
		if (rc < 0)
			fprintf(stderr, "sluice-bench: set-up: %s\n", strerror(errno));
	}
	if (rc == 0)
		started = run_threads(&run, ths);
	if (started > 0) {
		totals_sum(&totals, &run, ths, started);
		if (o.json)
			print_json(&run, &totals);
		else
			print_table(&run, &totals);
	}
	if (ths != NULL)
		threads_free(ths, o.threads);
	free(ths);
	bench_pattern_free(&run.pat);
	SSL_CTX_free(run.ctx);
	if (rc < 0 || started < o.threads)
		return 1;
	return totals.errors > 0 || totals.mismatches > 0 ? 1 : 0;
}
