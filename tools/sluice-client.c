/*
 * sluice-client — a TLS client for the sluice frame protocol: sends frames,
 * prints or verifies the answers, and doubles as a load generator (several
 * connections, pipelined batches) for "requests per second through sluice".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sluice/frame.h"
#include "tool_util.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define CLIENT_DEFAULT_PAYLOAD "hello from sluice-client"
#define CLIENT_DEFAULT_TIMEOUT_MS 10000
#define CLIENT_MAX_FRAME (256u * 1024 * 1024)
#define CLIENT_MAX_CONNS 1024
#define CLIENT_MAX_DEPTH 65536
#define CLIENT_READ_CHUNK (256 * 1024)
#define CLIENT_SHOW_BYTES 60
/* After our close_notify, how long to wait for the server's: closing with
 * its bytes unread would make our kernel answer them with a reset. */
#define CLIENT_LINGER_MS 1000
#define CLIENT_MISMATCH_REPORTS 5

struct client_opts {
	const char *host;
	const char *port;
	const char *header;          /* "" by default */
	size_t header_len;
	char **payloads;             /* argv tail, or the default */
	int npayloads;
	uint64_t count;              /* rounds over the payloads (or -s frames),
				      * per connection */
	size_t size;                 /* -s: generated payload size */
	unsigned sized:1;
	unsigned quiet:1;
	unsigned verify:1;
	unsigned quit:1;
	unsigned depth;              /* frames in flight per connection */
	unsigned conns;
	const char *sni;
	const char *ca;
	int timeout_ms;
};

/* What every connection thread reads; built by main, never written after. */
struct client_shared {
	const struct client_opts *o;
	SSL_CTX *ctx;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *verify_name;     /* name or IP the certificate must match */
	unsigned verify_ip:1;
};

struct client_stats {
	uint64_t requests;
	uint64_t responses;
	uint64_t errors;
	uint64_t mismatches;
	uint64_t bytes_out;
	uint64_t bytes_in;
};

/* One request in flight: its number and when it was queued. */
struct inflight {
	uint64_t num;
	int64_t sent_ns;
};

/* One connection and its thread; owned by main's array. */
struct client_conn {
	const struct client_shared *sh;
	unsigned index;              /* 1-based, shown with -C > 1 */
	uint64_t total;              /* requests this connection sends */
	uint64_t next;               /* requests queued so far */
	int fd;
	SSL *ssl;
	uint8_t *wbuf;               /* frames not yet written */
	size_t wlen, woff, wcap;
	uint8_t *rbuf;               /* bytes read, not yet parsed */
	size_t rlen, roff, rcap;
	uint8_t *scratch;            /* an expected payload, for --verify */
	size_t scratch_cap;
	struct inflight *ring;       /* depth entries */
	unsigned head, inflight;
	int64_t progress_ns;         /* last response or write */
	struct client_stats st;      /* errors: ERR frames until conn_main ends */
	unsigned quit_sent:1;
	unsigned quit_answered:1;
	unsigned server_quit:1;
	unsigned eof:1;
	unsigned broken:1;           /* no close_notify on the way out */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void conn_say(const struct client_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One printf per line: stdio locks per call, so threads never interleave
 * inside a line. */
static void conn_say(const struct client_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->sh->o->conns > 1)
		printf("[%u] %s\n", c->index, line);
	else
		printf("%s\n", line);
}

static void conn_fail(struct client_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fatal for this connection: conn_main then counts every request not
 * answered as an error. */
static void conn_fail(struct client_conn *c, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice-client: connection %u: %s (%" PRIu64 " of %" PRIu64
		" requests unanswered)\n", c->index, why, c->total - c->st.responses, c->total);
	c->broken = 1;
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

/* Printable form of bytes, quoted and cut to CLIENT_SHOW_BYTES. */
static void show_bytes(const uint8_t *p, size_t len, char *out, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; i < len && i < CLIENT_SHOW_BYTES && n + 8 < cap; i++) {
		if (p[i] == '"' || p[i] == '\\')
			n += (size_t)snprintf(out + n, cap - n, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			out[n++] = (char)p[i];
		else
			n += (size_t)snprintf(out + n, cap - n, "\\x%02x", p[i]);
	}
	out[n] = '\0';
	if (i < len && n + 4 < cap)
		strcpy(out + n, "...");
}

/* ---- request contents ------------------------------------------------- */

/* -s payloads: "sluice c<conn> r<num> " then the alphabet over and over, so a
 * misrouted or truncated answer is obvious in a hex dump. */
static void pattern_fill(uint8_t *out, size_t size, unsigned conn, uint64_t num)
{
	static const char fill[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	char head[64];
	int n = snprintf(head, sizeof(head), "sluice c%u r%" PRIu64 " ", conn, num);
	size_t i, hl = n < 0 ? 0 : (size_t)n;

	if (hl > size)
		hl = size;
	memcpy(out, head, hl);
	for (i = hl; i < size; i++)
		out[i] = (uint8_t)fill[(i - hl) % (sizeof(fill) - 1)];
}

/* The payload of request num (1-based) on connection c. */
static const uint8_t *request_payload(struct client_conn *c, uint64_t num, uint8_t *room,
				      size_t *len)
{
	const struct client_opts *o = c->sh->o;
	const char *p;

	if (o->sized) {
		pattern_fill(room, o->size, c->index, num);
		*len = o->size;
		return room;
	}
	p = o->payloads[(num - 1) % (uint64_t)o->npayloads];
	*len = strlen(p);
	return (const uint8_t *)p;
}

static void put_prefix(uint8_t *p, uint16_t hlen, uint32_t total)
{
	p[0] = (uint8_t)(hlen >> 8);
	p[1] = (uint8_t)hlen;
	p[2] = (uint8_t)(total >> 24);
	p[3] = (uint8_t)(total >> 16);
	p[4] = (uint8_t)(total >> 8);
	p[5] = (uint8_t)total;
}

/* Appends a frame to the write buffer, leaving room for a generated payload
 * to be written in place. Returns where the payload goes, or NULL. */
static uint8_t *wbuf_frame(struct client_conn *c, const void *hdr, uint16_t hlen, size_t plen)
{
	size_t total = FRAME_PREFIX_LEN + hlen + plen;
	uint8_t *at;

	if (c->woff > 0 && c->woff == c->wlen) {
		c->woff = c->wlen = 0;
	} else if (c->woff >= CLIENT_READ_CHUNK) {
		/* Unwritten bytes may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER. */
		memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
		c->wlen -= c->woff;
		c->woff = 0;
	}
	if (tool_buf_reserve(&c->wbuf, &c->wcap, c->wlen + total, 4096) < 0)
		return NULL;
	at = c->wbuf + c->wlen;
	put_prefix(at, hlen, (uint32_t)total);
	memcpy(at + FRAME_PREFIX_LEN, hdr, hlen);
	c->wlen += total;
	c->st.bytes_out += total;
	return at + FRAME_PREFIX_LEN + hlen;
}

static int queue_request(struct client_conn *c)
{
	const struct client_opts *o = c->sh->o;
	uint64_t num = ++c->next;
	struct inflight *slot = &c->ring[(c->head + c->inflight) % o->depth];
	const uint8_t *payload;
	uint8_t *at;
	size_t plen;
	char shown[CLIENT_SHOW_BYTES * 4 + 8];

	plen = o->sized ? o->size : strlen(o->payloads[(num - 1) % (uint64_t)o->npayloads]);
	at = wbuf_frame(c, o->header, (uint16_t)o->header_len, plen);
	if (at == NULL)
		return -1;
	payload = request_payload(c, num, at, &plen);
	if (payload != at)
		memcpy(at, payload, plen);
	slot->num = num;
	slot->sent_ns = now_ns();
	if (c->inflight++ == 0)
		c->progress_ns = slot->sent_ns;
	c->st.requests++;
	if (!o->quiet) {
		show_bytes(at, plen, shown, sizeof(shown));
		if (o->header_len > 0)
			conn_say(c, "-> request %" PRIu64 ": header \"%s\", %zu bytes payload \"%s\"",
				 num, o->header, plen, shown);
		else
			conn_say(c, "-> request %" PRIu64 ": %zu bytes payload \"%s\"", num, plen,
				 shown);
	}
	return 0;
}

static int queue_quit(struct client_conn *c)
{
	if (wbuf_frame(c, FRAME_QUIT_HEADER, 4, 0) == NULL)
		return -1;
	c->quit_sent = 1;
	c->progress_ns = now_ns();
	if (!c->sh->o->quiet)
		conn_say(c, "-> QUIT");
	return 0;
}

/* Tops the pipeline up to depth, and ends it with QUIT when that is due. */
static int fill_requests(struct client_conn *c)
{
	const struct client_opts *o = c->sh->o;

	while (!c->server_quit && !c->quit_sent && c->next < c->total && c->inflight < o->depth)
		if (queue_request(c) < 0)
			return -1;
	if (c->quit_sent || (!o->quit && !c->server_quit))
		return 0;
	if (c->server_quit || c->next == c->total)
		return queue_quit(c);
	return 0;
}

/* ---- responses -------------------------------------------------------- */

static int frame_matches(struct client_conn *c, uint64_t num, const uint8_t *hdr,
			 uint16_t hlen, const uint8_t *payload, uint32_t plen)
{
	const struct client_opts *o = c->sh->o;
	const uint8_t *want;
	size_t wlen;

	if (hlen != o->header_len || memcmp(hdr, o->header, hlen) != 0)
		return 0;
	if (o->sized && tool_buf_reserve(&c->scratch, &c->scratch_cap, o->size + 1, 4096) < 0)
		return 0;
	want = request_payload(c, num, c->scratch, &wlen);
	return wlen == plen && memcmp(want, payload, plen) == 0;
}

static void show_response(struct client_conn *c, uint64_t num, const uint8_t *hdr,
			  uint16_t hlen, const uint8_t *payload, uint32_t plen, double ms)
{
	char h[CLIENT_SHOW_BYTES * 4 + 8], p[CLIENT_SHOW_BYTES * 4 + 8];
	size_t total = FRAME_PREFIX_LEN + hlen + (size_t)plen;

	show_bytes(payload, plen, p, sizeof(p));
	if (hlen == 3 && memcmp(hdr, FRAME_ERR_HEADER, 3) == 0) {
		/* The payload is "CODE message": shown bare, it reads as one. */
		conn_say(c, "<- response %" PRIu64 ": ERR %s (%zu bytes, %.2f ms)", num, p, total, ms);
		return;
	}
	show_bytes(hdr, hlen, h, sizeof(h));
	conn_say(c, "<- response %" PRIu64 ": header \"%s\" payload \"%s\" (%zu bytes, %.2f ms)",
		 num, h, p, total, ms);
}

static int handle_quit(struct client_conn *c)
{
	if (c->quit_sent) {
		c->quit_answered = 1;
		if (!c->sh->o->quiet)
			conn_say(c, "<- QUIT");
		if (c->inflight > 0) {
			conn_fail(c, "server answered QUIT before %u earlier requests", c->inflight);
			return -1;
		}
		return 0;
	}
	/* Proxy-initiated: finish what is in flight, answer QUIT, send no more. */
	c->server_quit = 1;
	if (!c->sh->o->quiet || c->next < c->total)
		fprintf(stderr, "sluice-client: connection %u: server sent QUIT; %" PRIu64
			" requests not sent\n", c->index, c->total - c->next);
	return 0;
}

static int handle_frame(struct client_conn *c, const uint8_t *f, uint16_t hlen, uint32_t total)
{
	const struct client_opts *o = c->sh->o;
	const uint8_t *hdr = f + FRAME_PREFIX_LEN, *payload = hdr + hlen;
	uint32_t plen = total - FRAME_PREFIX_LEN - hlen;
	struct inflight *slot;
	int64_t now = now_ns();

	c->st.bytes_in += total;
	if (hlen == 4 && memcmp(hdr, FRAME_QUIT_HEADER, 4) == 0)
		return handle_quit(c);
	if (c->inflight == 0) {
		conn_fail(c, "response without a request");
		return -1;
	}
	slot = &c->ring[c->head];
	c->head = (c->head + 1) % o->depth;
	c->inflight--;
	c->st.responses++;
	c->progress_ns = now;
	if (hlen == 3 && memcmp(hdr, FRAME_ERR_HEADER, 3) == 0)
		c->st.errors++;
	else if (o->verify && !frame_matches(c, slot->num, hdr, hlen, payload, plen) &&
		 ++c->st.mismatches <= CLIENT_MISMATCH_REPORTS)
		fprintf(stderr, "sluice-client: connection %u: response %" PRIu64
			" differs from its request\n", c->index, slot->num);
	if (!o->quiet)
		show_response(c, slot->num, hdr, hlen, payload, plen, (now - slot->sent_ns) / 1e6);
	return 0;
}

/* Handles every whole frame in rbuf. 0, or -1 after conn_fail. */
static int parse_frames(struct client_conn *c)
{
	const uint8_t *p;
	uint16_t hlen;
	uint32_t total;

	while (c->rlen - c->roff >= FRAME_PREFIX_LEN) {
		p = c->rbuf + c->roff;
		hlen = (uint16_t)(p[0] << 8 | p[1]);
		total = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
		if (total < FRAME_PREFIX_LEN || hlen > total - FRAME_PREFIX_LEN ||
		    total > CLIENT_MAX_FRAME) {
			conn_fail(c, "invalid frame from server (header_len %u, total_len %u)",
				  (unsigned)hlen, (unsigned)total);
			return -1;
		}
		if (c->rlen - c->roff < total)
			break;
		if (handle_frame(c, p, hlen, total) < 0)
			return -1;
		c->roff += total;
	}
	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	return 0;
}

/* ---- I/O -------------------------------------------------------------- */

/* 1 progress, 0 would block (*events), -1 failed (conn_fail done). */
static int do_write(struct client_conn *c, short *events)
{
	int rc, err;

	if (c->woff == c->wlen)
		return 0;
	ERR_clear_error();
	errno = 0;
	rc = SSL_write(c->ssl, c->wbuf + c->woff,
		       c->wlen - c->woff > INT_MAX ? INT_MAX : (int)(c->wlen - c->woff));
	if (rc > 0) {
		c->woff += (size_t)rc;
		if (c->inflight > 0)
			c->progress_ns = now_ns();
		return 1;
	}
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
		*events |= err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		return 0;
	}
	conn_fail(c, "write: %s", ssl_reason());
	return -1;
}

static int read_eof(struct client_conn *c, int clean)
{
	c->eof = 1;
	if (!clean)
		c->broken = 1;
	if (c->quit_answered || (c->server_quit && c->quit_sent && c->inflight == 0))
		return 0;
	conn_fail(c, "server closed the connection%s", clean ? "" : " without close_notify");
	return -1;
}

/* 1 progress, 0 would block (*events), -1 failed or closed early. */
static int do_read(struct client_conn *c, short *events)
{
	int rc, err;

	if (c->roff > 0 && c->rcap - c->rlen < CLIENT_READ_CHUNK) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (tool_buf_reserve(&c->rbuf, &c->rcap, c->rlen + CLIENT_READ_CHUNK, 4096) < 0) {
		conn_fail(c, "out of memory");
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	rc = SSL_read(c->ssl, c->rbuf + c->rlen, CLIENT_READ_CHUNK);
	if (rc > 0) {
		c->rlen += (size_t)rc;
		return parse_frames(c) < 0 ? -1 : 1;
	}
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*events |= err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		return 0;
	}
	if (err == SSL_ERROR_ZERO_RETURN)
		return read_eof(c, 1);
	if ((err == SSL_ERROR_SYSCALL && errno == 0) ||
	    (err == SSL_ERROR_SSL &&
	     ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		return read_eof(c, 0);
	}
	conn_fail(c, "read: %s", ssl_reason());
	return -1;
}

static int conn_finished(const struct client_conn *c)
{
	const struct client_opts *o = c->sh->o;

	if (c->woff != c->wlen)
		return 0;
	if (c->server_quit)
		return c->quit_sent && c->eof;
	if (o->quit)
		return c->quit_answered;
	return c->next == c->total && c->inflight == 0;
}

static int wait_io(struct client_conn *c, short events)
{
	const struct client_opts *o = c->sh->o;
	int64_t left = (c->progress_ns + (int64_t)o->timeout_ms * 1000000 - now_ns()) / 1000000;
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int rc;

	if (left <= 0) {
		conn_fail(c, "timeout: nothing received for %d ms", o->timeout_ms);
		return -1;
	}
	rc = poll(&pfd, 1, (int)left + 1);
	if (rc < 0 && errno != EINTR) {
		conn_fail(c, "poll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The pipeline: top up, write what goes, read what came, wait when neither
 * moved. Bounded by the timeout since the last progress. */
static int conn_pump(struct client_conn *c)
{
	short events;
	int w, r;

	c->progress_ns = now_ns();
	for (;;) {
		if (fill_requests(c) < 0) {
			conn_fail(c, "out of memory");
			return -1;
		}
		if (conn_finished(c))
			return 0;
		events = 0;
		w = do_write(c, &events);
		if (w < 0)
			return -1;
		r = c->eof ? 0 : do_read(c, &events);
		if (r < 0)
			return -1;
		if (w > 0 || r > 0 || conn_finished(c))
			continue;
		if (c->eof) {
			/* A closed socket polls readable: never spin on it. */
			conn_fail(c, "server closed the connection early");
			return -1;
		}
		if (wait_io(c, events ? events : POLLIN) < 0)
			return -1;
	}
}

/* ---- connection set-up and teardown ----------------------------------- */

/* 0 when fd is ready or the wait was interrupted (the caller retries), -1
 * past the deadline. */
static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left = (deadline_ns - now_ns()) / 1000000;
	int rc;

	if (left <= 0)
		return -1;
	rc = poll(&pfd, 1, (int)left + 1);
	return rc > 0 || (rc < 0 && errno == EINTR) ? 0 : -1;
}

static int tcp_connect(struct client_conn *c, int64_t deadline)
{
	const struct client_shared *sh = c->sh;
	int one = 1, err = 0;
	socklen_t len = sizeof(err);

	c->fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -1;
	if (connect(c->fd, (const struct sockaddr *)&sh->addr, sh->addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	if (wait_fd(c->fd, POLLOUT, deadline) < 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

static int tls_setup(struct client_conn *c)
{
	const struct client_shared *sh = c->sh;
	const char *sni = sh->o->sni;

	c->ssl = SSL_new(sh->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (sni != NULL && SSL_set_tlsext_host_name(c->ssl, sni) != 1)
		return -1;
	if (sh->o->ca == NULL)
		return 0;
	if (sh->verify_ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), sh->verify_name) == 1 ?
		       0 : -1;
	return SSL_set1_host(c->ssl, sh->verify_name) == 1 ? 0 : -1;
}

static int tls_handshake(struct client_conn *c, int64_t deadline)
{
	int rc, err;
	long verify;

	ERR_clear_error();
	while ((rc = SSL_connect(c->ssl)) != 1) {
		err = SSL_get_error(c->ssl, rc);
		if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) &&
		    wait_fd(c->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == 0)
			continue;
		verify = SSL_get_verify_result(c->ssl);
		if (verify != X509_V_OK)
			conn_fail(c, "TLS handshake: certificate: %s",
				  X509_verify_cert_error_string(verify));
		else if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			conn_fail(c, "TLS handshake: timed out");
		else
			conn_fail(c, "TLS handshake: %s", ssl_reason());
		return -1;
	}
	return 0;
}

/* close_notify, then a bounded wait for the server's, so that neither side
 * sees a reset. */
static void conn_shutdown(struct client_conn *c)
{
	int64_t deadline = now_ns() + (int64_t)CLIENT_LINGER_MS * 1000000;
	uint8_t sink[4096];
	int rc;

	if (c->ssl == NULL || c->broken || !SSL_is_init_finished(c->ssl))
		return;
	ERR_clear_error();
	if (SSL_shutdown(c->ssl) < 0 || c->eof) {
		ERR_clear_error();
		return;
	}
	for (;;) {
		rc = SSL_read(c->ssl, sink, sizeof(sink));
		if (rc > 0)
			continue;
		rc = SSL_get_error(c->ssl, rc);
		if ((rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE) ||
		    wait_fd(c->fd, rc == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) < 0)
			break;
	}
	ERR_clear_error();
}

static void conn_run(struct client_conn *c)
{
	const struct client_opts *o = c->sh->o;
	int64_t deadline = now_ns() + (int64_t)o->timeout_ms * 1000000;

	c->ring = calloc(o->depth, sizeof(*c->ring));
	if (c->ring == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	if (tcp_connect(c, deadline) < 0) {
		conn_fail(c, "connect to %s:%s: %s", o->host, o->port, strerror(errno));
		return;
	}
	if (tls_setup(c) < 0) {
		conn_fail(c, "TLS setup: %s", ssl_reason());
		return;
	}
	if (tls_handshake(c, deadline) < 0)
		return;
	if (conn_pump(c) == 0)
		conn_shutdown(c);
}

static void *conn_main(void *arg)
{
	struct client_conn *c = arg;

	conn_run(c);
	/* Whatever went wrong, a request without an answer is an error. */
	c->st.errors += c->total - c->st.responses;
	return NULL;
}

static void conn_free(struct client_conn *c)
{
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->ring);
	free(c->wbuf);
	free(c->rbuf);
	free(c->scratch);
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice-client [options] HOST:PORT [PAYLOAD ...]\n"
		"Sends one frame per PAYLOAD (default \"%s\") over TLS\n"
		"and prints each response.\n"
		"      --header TEXT       frame header (default empty)\n"
		"  -n, --count N           each connection sends the payloads N times over\n"
		"                          (with -s: N frames)\n"
		"  -s, --size BYTES        generated payloads of BYTES (\"sluice c1 r7 abc...\")\n"
		"  -P, --pipeline DEPTH    up to DEPTH requests in flight per connection\n"
		"  -C, --connections N     N connections, one thread each (load mode)\n"
		"  -q, --quiet             no per-frame lines, only the summary\n"
		"      --verify            check each response equals its request (exit 1 if not)\n"
		"      --quit              end each connection with the QUIT handshake\n"
		"      --sni NAME          server name to send (default: HOST unless an address)\n"
		"      --ca FILE           verify the server against this CA or certificate\n"
		"      --timeout MS        give up after MS without progress (default %d)\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"Exit status: 0 all answered, 1 errors, mismatches or timeouts, 2 usage.\n",
		CLIENT_DEFAULT_PAYLOAD, CLIENT_DEFAULT_TIMEOUT_MS);
}

enum {
	OPT_HEADER = 256,
	OPT_VERIFY,
	OPT_QUIT,
	OPT_SNI,
	OPT_CA,
	OPT_TIMEOUT,
};

static int parse_number_opt(struct client_opts *o, int ch, const char *arg)
{
	uint64_t v;

	switch (ch) {
	case 'n':
		if (tool_parse_u64(arg, 1, UINT64_C(1) << 40, &v) < 0)
			return -1;
		o->count = v;
		return 0;
	case 's':
		if (tool_parse_u64(arg, 0, CLIENT_MAX_FRAME - FRAME_PREFIX_LEN - 65535, &v) < 0)
			return -1;
		o->size = (size_t)v;
		o->sized = 1;
		return 0;
	case 'P':
		if (tool_parse_u64(arg, 1, CLIENT_MAX_DEPTH, &v) < 0)
			return -1;
		o->depth = (unsigned)v;
		return 0;
	case 'C':
		if (tool_parse_u64(arg, 1, CLIENT_MAX_CONNS, &v) < 0)
			return -1;
		o->conns = (unsigned)v;
		return 0;
	case OPT_TIMEOUT:
		if (tool_parse_u64(arg, 1, 3600000, &v) < 0)
			return -1;
		o->timeout_ms = (int)v;
		return 0;
	}
	return -1;
}

static int parse_one(struct client_opts *o, int ch, const char *arg)
{
	switch (ch) {
	case OPT_HEADER:
		o->header = arg;
		o->header_len = strlen(arg);
		return o->header_len <= 65535 && strcmp(arg, FRAME_QUIT_HEADER) != 0 ? 0 : -1;
	case 'q':
		o->quiet = 1;
		return 0;
	case OPT_VERIFY:
		o->verify = 1;
		return 0;
	case OPT_QUIT:
		o->quit = 1;
		return 0;
	case OPT_SNI:
		o->sni = arg;
		return 0;
	case OPT_CA:
		o->ca = arg;
		return 0;
	}
	return parse_number_opt(o, ch, arg);
}

/* -1: exit 2; 1: exit 0 (help, version); 0: run. */
static int parse_args(int argc, char **argv, struct client_opts *o)
{
	static const struct option longs[] = {
		{ "header", required_argument, NULL, OPT_HEADER },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "pipeline", required_argument, NULL, 'P' },
		{ "connections", required_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "quit", no_argument, NULL, OPT_QUIT },
		{ "sni", required_argument, NULL, OPT_SNI },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static char *default_payload[] = { (char *)CLIENT_DEFAULT_PAYLOAD };
	int ch;

	while ((ch = getopt_long(argc, argv, "n:s:P:C:qhV", longs, NULL)) != -1) {
		if (ch == 'h' || ch == 'V') {
			if (ch == 'h')
				usage(stdout);
			else
				printf("sluice-client %s\n", SLUICE_VERSION);
			return 1;
		}
		if (ch == '?' || parse_one(o, ch, optarg) < 0) {
			if (ch != '?')
				fprintf(stderr, "sluice-client: invalid value '%s'\n", optarg);
			usage(stderr);
			return -1;
		}
	}
	if (optind >= argc || tool_split_target(argv[optind], &o->host, &o->port) < 0) {
		fprintf(stderr, "sluice-client: expected HOST:PORT\n");
		usage(stderr);
		return -1;
	}
	o->payloads = optind + 1 < argc ? argv + optind + 1 : default_payload;
	o->npayloads = optind + 1 < argc ? argc - optind - 1 : 1;
	return 0;
}

/* ---- main ------------------------------------------------------------- */

static int resolve(struct client_shared *sh)
{
	const struct client_opts *o = sh->o;
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "sluice-client: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
		return -1;
	}
	memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
	sh->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int shared_init(struct client_shared *sh, struct client_opts *o)
{
	sh->o = o;
	if (o->sni == NULL && !tool_is_ip(o->host))
		o->sni = o->host;
	sh->verify_name = o->sni != NULL ? o->sni : o->host;
	sh->verify_ip = o->sni == NULL;
	if (resolve(sh) < 0)
		return -1;
	sh->ctx = SSL_CTX_new(TLS_client_method());
	if (sh->ctx == NULL) {
		fprintf(stderr, "sluice-client: SSL_CTX_new: %s\n", ssl_reason());
		return -1;
	}
	if (o->ca == NULL) {
		SSL_CTX_set_verify(sh->ctx, SSL_VERIFY_NONE, NULL);
		if (!o->quiet)
			fprintf(stderr, "sluice-client: warning: the server's certificate is not "
				"verified (use --ca FILE)\n");
		return 0;
	}
	if (SSL_CTX_load_verify_locations(sh->ctx, o->ca, NULL) != 1) {
		fprintf(stderr, "sluice-client: cannot load %s: %s\n", o->ca, ssl_reason());
		return -1;
	}
	SSL_CTX_set_verify(sh->ctx, SSL_VERIFY_PEER, NULL);
	return 0;
}

static void stats_add(struct client_stats *sum, const struct client_stats *s)
{
	sum->requests += s->requests;
	sum->responses += s->responses;
	sum->errors += s->errors;
	sum->mismatches += s->mismatches;
	sum->bytes_out += s->bytes_out;
	sum->bytes_in += s->bytes_in;
}

static void print_summary(const struct client_stats *s, double secs)
{
	if (secs <= 0)
		secs = 1e-9;
	printf("requests %" PRIu64 ", responses %" PRIu64 ", errors %" PRIu64
	       ", mismatches %" PRIu64 ", elapsed %.3f s, %.0f requests/s, %.2f MB/s\n",
	       s->requests, s->responses, s->errors, s->mismatches, secs,
	       (double)s->responses / secs, (double)(s->bytes_out + s->bytes_in) / secs / 1e6);
}

/* Starts every connection (threads when more than one) and sums them. */
static void run_all(struct client_shared *sh, struct client_conn *conns, pthread_t *tids,
		   struct client_stats *sum)
{
	const struct client_opts *o = sh->o;
	/* Every connection does the same job: -C scales the load. */
	uint64_t total = o->count * (uint64_t)(o->sized ? 1 : o->npayloads);
	unsigned i, started;
	int rc;

	for (i = 0; i < o->conns; i++) {
		conns[i].sh = sh;
		conns[i].index = i + 1;
		conns[i].total = total;
		conns[i].fd = -1;
	}
	if (o->conns == 1) {
		conn_main(&conns[0]);
		started = 1;
	} else {
		for (started = 0; started < o->conns; started++) {
			rc = pthread_create(&tids[started], NULL, conn_main, &conns[started]);
			if (rc != 0) {
				fprintf(stderr, "sluice-client: pthread_create: %s\n", strerror(rc));
				break;
			}
		}
		for (i = 0; i < started; i++)
			if ((rc = pthread_join(tids[i], NULL)) != 0)
				fprintf(stderr, "sluice-client: pthread_join: %s\n", strerror(rc));
	}
	for (i = 0; i < o->conns; i++) {
		if (i >= started)
			conns[i].st.errors += conns[i].total;
		stats_add(sum, &conns[i].st);
		conn_free(&conns[i]);
	}
}

int main(int argc, char **argv)
{
	struct client_opts o = { .header = "", .count = 1, .depth = 1, .conns = 1,
				 .timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS };
	struct client_shared sh;
	struct client_stats sum;
	struct client_conn *conns;
	pthread_t *tids;
	int64_t start;
	int rc;

	memset(&sh, 0, sizeof(sh));
	memset(&sum, 0, sizeof(sum));
	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 2 : 0;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || shared_init(&sh, &o) < 0) {
		SSL_CTX_free(sh.ctx);
		return 1;
	}
	conns = calloc(o.conns, sizeof(*conns));
	tids = calloc(o.conns, sizeof(*tids));
	if (conns == NULL || tids == NULL) {
		fprintf(stderr, "sluice-client: out of memory\n");
		free(conns);
		free(tids);
		SSL_CTX_free(sh.ctx);
		return 1;
	}
	start = now_ns();
	run_all(&sh, conns, tids, &sum);
	print_summary(&sum, (now_ns() - start) / 1e9);
	free(conns);
	free(tids);
	SSL_CTX_free(sh.ctx);
	return sum.errors > 0 || sum.mismatches > 0 ? 1 : 0;
}
