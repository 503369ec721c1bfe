/*
 * check_security — what docs/SECURITY.md promises about a listener with
 * the default TLS settings, through the real sluice binary:
 *
 *   - the protocol floor: SSLv3, TLS 1.0 and 1.1 refused, TLS 1.2 and 1.3
 *     served, TLS_FALLBACK_SCSV honoured;
 *   - the cipher policy: every TLS 1.2 suite this OpenSSL knows, and every
 *     code point of the assigned TLS 1.2 ranges, offered one at a time:
 *     only the six documented ECDHE + AEAD suites are accepted; TLS 1.3
 *     suites and key exchange groups likewise;
 *   - no compression, secure renegotiation advertised, client-initiated
 *     renegotiation refused, TLS 1.3 key updates honoured, no 0-RTT;
 *   - abuse that must stay bounded and never touch an established client:
 *     handshake floods (500 half-open connections), oversized ClientHello
 *     records, records dribbled one byte per TCP segment by 20 clients at
 *     once, garbage after the handshake.
 *
 * Three kinds of client: the harness's OpenSSL client; one of this file's
 * own (sc_*) when a test needs any cipher at security level 0, a PSK
 * callback, a huge extension or a BIO that writes one byte per send(); and
 * raw ClientHellos built byte by byte here (hello_*), which offer what no
 * OpenSSL build will (SSLv3, RC4, export and NULL code points,
 * compression) and read the server's first answer exactly. sluice serves
 * an ECDSA and an RSA certificate for one name, so that suites of both
 * signature kinds can be accepted.
 *
 * Every test stops sluice with SIGTERM and expects exit status 0 and a log
 * without a crash, a sanitizer report or a [crit] line (fixture_down).
 * Measured figures (memory per half-open connection, latency of the
 * established client during a flood) go to stderr.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

#define T_START_MS 15000
#define T_EXIT_MS 20000
/* Closing a refused handshake "promptly": far below the 30 s
 * handshake_timeout these tests configure, so only the refusal can have
 * closed it. */
#define T_PROMPT_MS 2000
/* TLS record content types and the handshake type of a ServerHello. */
#define REC_ALERT 21
#define REC_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define HS_SERVER_HELLO 2
/* TLS alert descriptions the tests expect (RFC 8446 §6, RFC 7507). */
#define ALERT_HANDSHAKE_FAILURE 40
#define ALERT_RECORD_OVERFLOW 22
#define ALERT_ILLEGAL_PARAMETER 47
#define ALERT_PROTOCOL_VERSION 70
#define ALERT_INAPPROPRIATE_FALLBACK 86
#define SSL3_VERSION_WIRE 0x0300
/* A GREASE extension type (RFC 8701): every server must ignore it, so it
 * can pad a ClientHello to any size without changing its meaning. */
#define EXT_GREASE 0x0a0a
/* The bound on sluice's resident memory growth in the abuse tests. */
#define RSS_GROWTH_KIB (32L * 1024)
/* ... after a sequence of connections that each left again, and while
 * 20 clients dribble their records (their TLS state and buffers take
 * some 55 KiB each: a copy of each one-byte segment kept would not fit). */
#define RSS_LEFTOVER_KIB (4L * 1024)
/* The slowest round trip an established client may see during an abuse
 * test (not asserted under valgrind, which slows sluice 20-50 times). */
#define T_BYSTANDER_MS 1000

/* The TLS 1.2 suites sluice accepts by default (docs/CONFIG.md): ECDHE key
 * exchange, AEAD ciphers, nothing else. */
static const struct {
	uint16_t code;
	const char *name;
} allowed_suites[] = {
	{ 0xc02b, "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ 0xc02f, "ECDHE-RSA-AES128-GCM-SHA256" },
	{ 0xc02c, "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ 0xc030, "ECDHE-RSA-AES256-GCM-SHA384" },
	{ 0xcca9, "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ 0xcca8, "ECDHE-RSA-CHACHA20-POLY1305" },
};
#define N_ALLOWED (sizeof(allowed_suites) / sizeof(allowed_suites[0]))

static int
allowed_index_of_code(unsigned code)
{
	for (size_t i = 0; i < N_ALLOWED; i++) {
		if (allowed_suites[i].code == code)
			return (int)i;
	}
	return -1;
}

static int
allowed_index_of_name(const char *name)
{
	for (size_t i = 0; i < N_ALLOWED; i++) {
		if (strcmp(allowed_suites[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

/* ---- sluice -------------------------------------------------------------- */

/* Like fixture_up, with a second certificate for "localhost": RSA next to
 * the fixture's ECDSA one, so that ECDHE-RSA suites can be served too.
 * Every TLS setting is left at its default. */
static void
sec_up(struct fixture *fx, const struct fixture_opts *o)
{
	static const char *const rsa_cert[] = { "server-rsa", NULL };
	const struct testcerts_spec rsa = { .cn = "localhost", .san = "DNS:localhost" };
	struct fixture_opts with_rsa = *o;

	with_rsa.more_certs = rsa_cert;
	fixture_prepare(fx, &with_rsa);
	ck_assert_int_eq(testcerts_make(fx->dir, "server-rsa", &rsa), 0);
	fixture_start_sluice(fx, &with_rsa);
}

/* ---- sluice's memory ----------------------------------------------------- */

/* VmRSS once it has not changed for 200 ms (sluice has finished with
 * what it was sent), or after 5 s of changes. */
static long
rss_settled_kib(const struct fixture *fx)
{
	int64_t deadline = fixture_mono_ms() + 5000, same_since = fixture_mono_ms();
	long v = fixture_rss_kib(fx), w;

	while (fixture_mono_ms() - same_since < 200 && fixture_mono_ms() < deadline) {
		usleep(20 * 1000);   /* sampling period */
		w = fixture_rss_kib(fx);
		if (w != v) {
			v = w;
			same_since = fixture_mono_ms();
		}
	}
	return v;
}

/* Asserts that sluice's resident memory grew by less than limit_kib while
 * it took what. Not when instrumented: ASan's quarantine keeps every
 * freed block (up to 256 MiB), so the resident size grows with the number
 * of frees, and valgrind's own memory is in the process; the plain build
 * is the one that measures sluice. */
static void
expect_rss_growth_below(const struct fixture *fx, long growth_kib, long limit_kib, const char *what)
{
	const char *under = fixture_instrumented(fx, FIXTURE_ASAN | FIXTURE_VALGRIND);

	if (under != NULL) {
		fprintf(stderr, "check_security: (%s: %ld KiB under %s, not asserted)\n", what, growth_kib,
			under);
		return;
	}
	ck_assert_msg(growth_kib < limit_kib, "sluice's VmRSS grew by %ld KiB (limit %ld KiB) for %s",
		      growth_kib, limit_kib, what);
}

/* ---- raw sockets ----------------------------------------------------------- */

static int
ms_left(int64_t deadline)
{
	int64_t left = deadline - fixture_mono_ms();

	return left > 0 ? (int)left : 0;
}

/* Waits for events on fd. 0 ready, -1 on timeout. */
static int
fd_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do {
		rc = poll(&p, 1, ms_left(deadline));
	} while (rc < 0 && errno == EINTR);
	return rc > 0 ? 0 : -1;
}

/* A non-blocking TCP connection to 127.0.0.1:port. */
static int
raw_connect(uint16_t port)
{
	int fd = harness_tcp_connect(port);
	int flags;

	ck_assert_msg(fd >= 0, "connect to %u: %s", port, harness_last_error());
	flags = fcntl(fd, F_GETFL);
	ck_assert_int_ge(flags, 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
	return fd;
}

/* Sends all of buf. 0, or -1 when the peer went away (errno says how). */
static int
raw_send(int fd, const void *buf, size_t len)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ck_assert_msg(fd_wait(fd, POLLOUT, deadline) == 0, "raw send timed out");
			continue;
		}
		return -1;
	}
	return 0;
}

/* Reads and discards until the peer closes (FIN or reset). Milliseconds
 * it took, or -1 on timeout. */
static int64_t
raw_wait_closed(int fd, int timeout_ms)
{
	int64_t start = fixture_mono_ms(), deadline = start + timeout_ms;
	uint8_t sink[16384];
	ssize_t n;

	for (;;) {
		n = recv(fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return fixture_mono_ms() - start;
		if (n < 0 && fd_wait(fd, POLLIN, deadline) < 0)
			return -1;
	}
}

/* close() with SO_LINGER 0: no TIME_WAIT left behind by hundreds of probes. */
static void
raw_abort(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		fprintf(stderr, "check_security: SO_LINGER: %s\n", strerror(errno));
	close(fd);
}

/* ---- bytes ------------------------------------------------------------------ */

/* A growable byte string; owned by its user, freed with bytes_free. */
struct bytes {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void
bytes_put(struct bytes *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *q;

		while (cap < b->len + len)
			cap *= 2;
		q = realloc(b->p, cap);
		ck_assert_ptr_nonnull(q);
		b->p = q;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void
bytes_u8(struct bytes *b, unsigned v)
{
	uint8_t x = (uint8_t)v;

	bytes_put(b, &x, 1);
}

static void
bytes_u16(struct bytes *b, unsigned v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	bytes_put(b, x, sizeof(x));
}

/* Opens a big-endian length field of n bytes; bytes_close fills it in
 * once what it measures has been written. Returns its offset. */
static size_t
bytes_open(struct bytes *b, int n)
{
	size_t at = b->len;

	for (int i = 0; i < n; i++)
		bytes_u8(b, 0);
	return at;
}

static void
bytes_close(struct bytes *b, size_t at, int n)
{
	size_t len = b->len - at - (size_t)n;

	ck_assert_msg(len < ((size_t)1 << (8 * n)), "%zu bytes do not fit a %d-byte length", len, n);
	for (int i = 0; i < n; i++)
		b->p[at + (size_t)i] = (uint8_t)(len >> (8 * (n - 1 - i)));
}

static void
bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- raw ClientHellos ------------------------------------------------------------ */

/* What hello_message writes; zero fields take the default in brackets. */
struct hello {
	uint16_t version;             /* client_version [TLS 1.2] */
	const uint16_t *suites;       /* cipher suites offered */
	size_t n_suites;
	const uint8_t *comp;          /* compression methods [null only] */
	size_t n_comp;
	unsigned no_extensions:1;     /* an SSLv3-style hello: none at all */
	unsigned renegotiation_info:1; /* the empty renegotiation_info (RFC 5746) */
	size_t grease_len;            /* data bytes of a GREASE extension (pads it) */
};

/* A ClientHello handshake message as a TLS 1.2 client writes it: SNI
 * localhost, groups X25519/P-256/P-384, uncompressed points, ECDSA, PSS and
 * PKCS#1 signatures (so either certificate can be chosen). */
static void
hello_message(const struct hello *h, struct bytes *b)
{
	static const uint16_t groups[] = { 0x001d, 0x0017, 0x0018 };
	static const uint16_t sigalgs[] = { 0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501 };
	static const uint8_t null_only[] = { 0 };
	const uint8_t *comp = h->n_comp ? h->comp : null_only;
	size_t n_comp = h->n_comp ? h->n_comp : 1;
	uint8_t random[32];
	size_t msg, at, ext, e, list;

	ck_assert_int_eq(RAND_bytes(random, sizeof(random)), 1);
	bytes_u8(b, HS_CLIENT_HELLO);
	msg = bytes_open(b, 3);
	bytes_u16(b, h->version ? h->version : TLS1_2_VERSION);
	bytes_put(b, random, sizeof(random));
	bytes_u8(b, 0);                          /* no session id */
	at = bytes_open(b, 2);
	for (size_t i = 0; i < h->n_suites; i++)
		bytes_u16(b, h->suites[i]);
	bytes_close(b, at, 2);
	bytes_u8(b, (unsigned)n_comp);
	bytes_put(b, comp, n_comp);
	if (!h->no_extensions) {
		ext = bytes_open(b, 2);
		bytes_u16(b, TLSEXT_TYPE_server_name);
		e = bytes_open(b, 2);
		list = bytes_open(b, 2);
		bytes_u8(b, TLSEXT_NAMETYPE_host_name);
		at = bytes_open(b, 2);
		bytes_put(b, "localhost", 9);
		bytes_close(b, at, 2);
		bytes_close(b, list, 2);
		bytes_close(b, e, 2);
		bytes_u16(b, TLSEXT_TYPE_supported_groups);
		e = bytes_open(b, 2);
		list = bytes_open(b, 2);
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			bytes_u16(b, groups[i]);
		bytes_close(b, list, 2);
		bytes_close(b, e, 2);
		bytes_u16(b, TLSEXT_TYPE_ec_point_formats);
		bytes_u16(b, 2);
		bytes_u8(b, 1);
		bytes_u8(b, TLSEXT_ECPOINTFORMAT_uncompressed);
		bytes_u16(b, TLSEXT_TYPE_signature_algorithms);
		e = bytes_open(b, 2);
		list = bytes_open(b, 2);
		for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
			bytes_u16(b, sigalgs[i]);
		bytes_close(b, list, 2);
		bytes_close(b, e, 2);
		if (h->renegotiation_info) {
			bytes_u16(b, TLSEXT_TYPE_renegotiate);
			bytes_u16(b, 1);
			bytes_u8(b, 0);          /* empty: an initial handshake */
		}
		if (h->grease_len > 0) {
			bytes_u16(b, EXT_GREASE);
			e = bytes_open(b, 2);
			for (size_t i = 0; i < h->grease_len; i++)
				bytes_u8(b, 0);
			bytes_close(b, e, 2);
		}
		bytes_close(b, ext, 2);
	}
	bytes_close(b, msg, 3);
}

/* One TLS record of type around data, whatever its length (up to the
 * 16-bit field's 65535: the oversized tests want more than TLS allows). */
static void
record_put(struct bytes *out, unsigned type, unsigned version, const uint8_t *data, size_t len)
{
	ck_assert_uint_le(len, 0xffff);
	bytes_u8(out, type);
	bytes_u16(out, version);
	bytes_u16(out, (unsigned)len);
	bytes_put(out, data, len);
}

/* sluice's first answer to a ClientHello. */
struct answer {
	enum { ANS_CLOSED, ANS_ALERT, ANS_SERVER_HELLO } kind;
	uint8_t level;          /* ANS_ALERT: 2 fatal */
	uint8_t alert;          /* ANS_ALERT: its description */
	uint16_t version;       /* ANS_SERVER_HELLO: server_version */
	uint16_t suite;         /* ANS_SERVER_HELLO: the suite chosen */
	uint8_t comp;           /* ANS_SERVER_HELLO: the compression method chosen */
	int renegotiation_info; /* ANS_SERVER_HELLO: an empty renegotiation_info */
};

static const char *
answer_desc(const struct answer *a, char *out, size_t len)
{
	switch (a->kind) {
	case ANS_CLOSED:
		snprintf(out, len, "the connection closed");
		break;
	case ANS_ALERT:
		snprintf(out, len, "alert level %u description %u", a->level, a->alert);
		break;
	case ANS_SERVER_HELLO:
		snprintf(out, len, "ServerHello version 0x%04x suite 0x%04x compression %u", a->version,
			 a->suite, a->comp);
		break;
	}
	return out;
}

/* Reads bytes [0, n) of the server's first record. 0, or 1 when the
 * connection ended first. Asserts on timeout. */
static int
answer_fill(int fd, struct bytes *in, size_t n, int64_t deadline)
{
	uint8_t buf[4096];
	ssize_t got;

	while (in->len < n) {
		got = recv(fd, buf, sizeof(buf), 0);
		if (got > 0) {
			bytes_put(in, buf, (size_t)got);
			continue;
		}
		if (got == 0 || (errno != EAGAIN && errno != EINTR))
			return 1;
		ck_assert_msg(fd_wait(fd, POLLIN, deadline) == 0, "no answer to a ClientHello within %d ms",
			      T_IO_MS);
	}
	return 0;
}

/* The ServerHello at the start of a handshake record's body p[0..len). */
static void
answer_parse_hello(const uint8_t *p, size_t len, struct answer *a)
{
	size_t at, end, ext_end;

	ck_assert_msg(len >= 4 && p[0] == HS_SERVER_HELLO, "a handshake record that is no ServerHello");
	end = 4 + ((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
	ck_assert_msg(end <= len && end >= 4 + 2 + 32 + 1, "a truncated ServerHello");
	a->kind = ANS_SERVER_HELLO;
	a->version = (uint16_t)(p[4] << 8 | p[5]);
	at = 4 + 2 + 32;
	at += 1 + p[at];                          /* session id */
	ck_assert_msg(at + 3 <= end, "a truncated ServerHello");
	a->suite = (uint16_t)(p[at] << 8 | p[at + 1]);
	a->comp = p[at + 2];
	at += 3;
	if (at + 2 > end)
		return;                           /* no extensions */
	ext_end = at + 2 + ((size_t)p[at] << 8 | p[at + 1]);
	ck_assert_msg(ext_end <= end, "ServerHello extensions overrun the message");
	for (at += 2; at + 4 <= ext_end;) {
		unsigned type = (unsigned)(p[at] << 8 | p[at + 1]);
		size_t elen = (size_t)p[at + 2] << 8 | p[at + 3];

		ck_assert_msg(at + 4 + elen <= ext_end, "a ServerHello extension overruns the list");
		if (type == TLSEXT_TYPE_renegotiate && elen == 1 && p[at + 4] == 0)
			a->renegotiation_info = 1;
		at += 4 + elen;
	}
}

/* Reads the first record sluice sends back: an alert, a ServerHello, or
 * nothing before the connection ends. */
static void
answer_read(int fd, struct answer *a)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	struct bytes in = { 0 };
	size_t body;

	memset(a, 0, sizeof(*a));
	a->kind = ANS_CLOSED;
	if (answer_fill(fd, &in, 5, deadline) != 0)
		goto out;
	body = (size_t)in.p[3] << 8 | in.p[4];
	ck_assert_msg(body <= 16384 + 2048, "a record of %zu bytes from sluice", body);
	if (answer_fill(fd, &in, 5 + body, deadline) != 0)
		goto out;
	if (in.p[0] == REC_ALERT) {
		ck_assert_uint_eq(body, 2);
		a->kind = ANS_ALERT;
		a->level = in.p[5];
		a->alert = in.p[6];
	} else {
		ck_assert_msg(in.p[0] == REC_HANDSHAKE, "sluice answered with a record of type %u", in.p[0]);
		answer_parse_hello(in.p + 5, body, a);
	}
out:
	bytes_free(&in);
}

/* Sends the hello h in one record on a new connection and reads sluice's
 * first answer into a. */
static void
hello_probe(uint16_t port, const struct hello *h, struct answer *a)
{
	struct bytes msg = { 0 }, rec = { 0 };
	unsigned rv = h->version == SSL3_VERSION_WIRE ? SSL3_VERSION_WIRE : TLS1_VERSION;
	int fd = raw_connect(port);

	hello_message(h, &msg);
	record_put(&rec, REC_HANDSHAKE, rv, msg.p, msg.len);
	ck_assert_msg(raw_send(fd, rec.p, rec.len) == 0, "send a ClientHello: %s", strerror(errno));
	answer_read(fd, a);
	raw_abort(fd);
	bytes_free(&msg);
	bytes_free(&rec);
}

/* The hello is refused with a fatal alert (its description returned). */
static unsigned
expect_hello_refused(uint16_t port, const struct hello *h, const char *what)
{
	struct answer a;
	char d[128];

	hello_probe(port, h, &a);
	ck_assert_msg(a.kind == ANS_ALERT && a.level == 2, "%s: expected a fatal alert, got %s", what,
		      answer_desc(&a, d, sizeof(d)));
	return a.alert;
}

/* ---- an OpenSSL client of this file's own ------------------------------------------------ */

/* One client connection: any cipher, optionally a BIO that sends one byte
 * per send(), optionally paced. Owned by the test, freed by sc_free. */
struct sc {
	int fd;
	SSL *ssl;
	uint64_t sends;       /* send() calls of the one-byte BIO */
	uint64_t sent;        /* bytes those calls carried */
	unsigned paced:1;     /* the one-byte BIO sends only what budget allows */
	unsigned budget;      /* bytes it may still send, when paced */
	int want;             /* SSL_get_error of the last SSL call that could not finish */
	struct bytes in;      /* decrypted bytes; in.p[in_off..] not yet taken */
	size_t in_off;
};

struct sc_opts {
	const char *ciphers;  /* TLS 1.2 cipher list for this connection, or NULL */
	const char *suites;   /* TLS 1.3 suites, or NULL */
	const char *groups;   /* key exchange groups, or NULL */
	unsigned one_byte:1;  /* every write goes out one byte per TCP segment */
	unsigned psk:1;       /* a PSK callback, so that PSK suites are offered */
};

static BIO_METHOD *onebyte_method;

/* Writes exactly one byte per call: with TCP_NODELAY on the socket, each
 * becomes a TCP segment of its own, so every TLS record reaches sluice
 * split at every offset. A paced connection sends only while its budget
 * lasts, then asks to be called again (OpenSSL's SSL_ERROR_WANT_WRITE):
 * several of them, given a byte each in turn, dribble at once. */
static int
onebyte_write(BIO *b, const char *buf, int len)
{
	struct sc *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (c->paced && c->budget == 0) {
		BIO_set_retry_write(b);
		return -1;
	}
	n = send(c->fd, buf, 1, MSG_NOSIGNAL);
	if (n == 1) {
		c->sends++;
		c->sent++;
		if (c->paced)
			c->budget--;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return -1;
}

static int
onebyte_read(BIO *b, char *buf, int len)
{
	struct sc *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	n = recv(c->fd, buf, (size_t)len, 0);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EINTR)
		BIO_set_retry_read(b);
	return -1;
}

static long
onebyte_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
onebyte_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO *
onebyte_bio(struct sc *c)
{
	BIO *b;

	if (onebyte_method == NULL) {
		onebyte_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "one byte");
		ck_assert_ptr_nonnull(onebyte_method);
		ck_assert(BIO_meth_set_write(onebyte_method, onebyte_write) == 1 &&
			  BIO_meth_set_read(onebyte_method, onebyte_read) == 1 &&
			  BIO_meth_set_ctrl(onebyte_method, onebyte_ctrl) == 1 &&
			  BIO_meth_set_create(onebyte_method, onebyte_create) == 1);
	}
	b = BIO_new(onebyte_method);
	ck_assert_ptr_nonnull(b);
	BIO_set_data(b, c);
	return b;
}

static unsigned int
sc_psk_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity,
	  unsigned char *psk, unsigned int max_psk)
{
	(void)ssl, (void)hint;
	if (max_identity < 16 || max_psk < 16)
		return 0;
	snprintf(identity, max_identity, "check_security");
	memset(psk, 0x5a, 16);
	return 16;
}

/* A client context for versions [min, max] that can offer anything this
 * OpenSSL has: security level 0, every cipher, no certificate checks. */
static SSL_CTX *
sc_ctx(int min_version, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"), 1);
	SSL_CTX_set_security_level(ctx, 0);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, min_version), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	return ctx;
}

/* close_notify (one attempt, best effort), close, free. Without
 * close_notify OpenSSL marks the session not resumable. */
static void
sc_free(struct sc *c)
{
	if (c == NULL)
		return;
	if (SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
	}
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	bytes_free(&c->in);
	free(c);
}

/* Waits for what the last SSL call on c asked for. 0 to retry, -1 not. */
static int
sc_wait(struct sc *c, int rc, int64_t deadline)
{
	int err = SSL_get_error(c->ssl, rc);

	if (err == SSL_ERROR_WANT_READ)
		return fd_wait(c->fd, POLLIN, deadline);
	if (err == SSL_ERROR_WANT_WRITE)
		return fd_wait(c->fd, POLLOUT, deadline);
	return -1;
}

/* OpenSSL's first queued error as the reason code and text, then clears
 * the queue. */
static int
sc_error(char *why, size_t len)
{
	unsigned long e = ERR_peek_error();

	if (e != 0)
		ERR_error_string_n(e, why, len);
	else
		snprintf(why, len, "connection closed or timed out");
	ERR_clear_error();
	return e != 0 ? ERR_GET_REASON(e) : 0;
}

/* A TCP connection to port with an SSL from ctx set up as o says, its
 * handshake not begun (SSL_connect drives it). */
static struct sc *
sc_start(SSL_CTX *ctx, uint16_t port, const struct sc_opts *o)
{
	struct sc *c = calloc(1, sizeof(*c));
	int one = 1;

	ck_assert_ptr_nonnull(c);
	c->fd = raw_connect(port);
	c->ssl = SSL_new(ctx);
	ck_assert_ptr_nonnull(c->ssl);
	ck_assert_int_eq(SSL_set_tlsext_host_name(c->ssl, "localhost"), 1);
	if (o->ciphers != NULL)
		ck_assert_int_eq(SSL_set_cipher_list(c->ssl, o->ciphers), 1);
	if (o->suites != NULL)
		ck_assert_int_eq(SSL_set_ciphersuites(c->ssl, o->suites), 1);
	if (o->groups != NULL)
		ck_assert_int_eq(SSL_set1_groups_list(c->ssl, o->groups), 1);
	/* The cipher list may carry its own @SECLEVEL; ours is always 0. */
	SSL_set_security_level(c->ssl, 0);
	if (o->psk)
		SSL_set_psk_client_callback(c->ssl, sc_psk_cb);
	if (o->one_byte) {
		BIO *b = onebyte_bio(c);

		ck_assert_int_eq(setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
		SSL_set_bio(c->ssl, b, b);
	} else {
		ck_assert_int_eq(SSL_set_fd(c->ssl, c->fd), 1);
	}
	SSL_set_connect_state(c->ssl);
	return c;
}

/* A TLS connection to port from ctx; NULL when the handshake fails, with
 * OpenSSL's reason code in *reason (0 when none) and its text in why. */
static struct sc *
sc_connect(SSL_CTX *ctx, uint16_t port, const struct sc_opts *o, int *reason, char *why, size_t len)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	struct sc *c = sc_start(ctx, port, o);
	int rc;

	ERR_clear_error();
	while ((rc = SSL_connect(c->ssl)) != 1) {
		if (sc_wait(c, rc, deadline) < 0) {
			*reason = sc_error(why, len);
			sc_free(c);
			return NULL;
		}
	}
	*reason = 0;
	snprintf(why, len, "ok");
	return c;
}

/* Sends all of buf (SSL_write without partial writes takes it all or
 * asks to be called again with the same arguments). 0 or -1. */
static int
sc_send(struct sc *c, const void *buf, size_t len)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	int rc;

	ck_assert_uint_le(len, INT_MAX);
	ERR_clear_error();
	while ((rc = SSL_write(c->ssl, buf, (int)len)) <= 0) {
		if (sc_wait(c, rc, deadline) < 0)
			return -1;
	}
	return 0;
}

/* Takes one frame (see harness_recv_frame) from what has arrived, without
 * waiting: 0 ok, 1 close_notify came between frames, 2 not yet (c->want
 * says what SSL_read waits for), -1 otherwise. */
static int
sc_try_frame(struct sc *c, struct harness_frame *f)
{
	uint8_t buf[16384];
	const uint8_t *p;
	uint32_t total;
	int rc, err;

	memset(f, 0, sizeof(*f));
	for (;;) {
		size_t have = c->in.len - c->in_off;

		p = c->in.p + c->in_off;
		if (have >= 6) {
			total = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
			f->header_len = (uint16_t)(p[0] << 8 | p[1]);
			if (total < 6u + f->header_len || total > HARNESS_MAX_FRAME)
				return -1;
			if (have >= total) {
				f->payload_len = total - 6 - f->header_len;
				f->header = calloc(1, (size_t)f->header_len + 1);
				f->payload = calloc(1, (size_t)f->payload_len + 1);
				ck_assert(f->header != NULL && f->payload != NULL);
				memcpy(f->header, p + 6, f->header_len);
				memcpy(f->payload, p + 6 + f->header_len, f->payload_len);
				c->in_off += total;
				return 0;
			}
		}
		ERR_clear_error();
		rc = SSL_read(c->ssl, buf, sizeof(buf));
		if (rc > 0) {
			bytes_put(&c->in, buf, (size_t)rc);
			continue;
		}
		err = SSL_get_error(c->ssl, rc);
		if (err == SSL_ERROR_ZERO_RETURN)
			return have == 0 ? 1 : -1;
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return -1;
		c->want = err;
		return 2;
	}
}

/* Receives one frame: 0 ok, 1 close_notify came between frames, -1
 * otherwise. */
static int
sc_recv_frame(struct sc *c, struct harness_frame *f)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	int rc;

	while ((rc = sc_try_frame(c, f)) == 2) {
		if (fd_wait(c->fd, c->want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline) < 0)
			return -1;
	}
	return rc;
}

/* Sends text as a frame's payload and expects it back. */
static void
sc_round_trip(struct sc *c, const char *text)
{
	uint32_t len = (uint32_t)strlen(text);
	struct bytes out = { 0 };
	struct harness_frame f;
	uint8_t prefix[6];
	char d[160];

	harness_frame_prefix(prefix, 0, 6 + len);
	bytes_put(&out, prefix, sizeof(prefix));
	bytes_put(&out, text, len);
	ck_assert_msg(sc_send(c, out.p, out.len) == 0, "send '%s' failed", text);
	bytes_free(&out);
	ck_assert_msg(sc_recv_frame(c, &f) == 0, "no answer to '%s'", text);
	ck_assert_msg(f.header_len == 0 && f.payload_len == len && memcmp(f.payload, text, len) == 0,
		      "'%s' answered by %s", text, fixture_frame_desc(&f, d, sizeof(d)));
	harness_frame_free(&f);
}

/* ---- an established client that keeps doing round trips ------------------------------- */

/* Runs in a thread of its own during a flood: round trips one after the
 * other on a connection made before the flood, each timed. Check's
 * assertions stay in the test's thread: failures are reported in why. */
struct bystander {
	struct harness_tls *t;
	/* shared with the test's thread through __atomic loads and stores */
	int stop;
	unsigned trips;        /* round trips completed and checked */
	int64_t max_ms;        /* the slowest of them */
	int done;
	/* written by the thread before done */
	int64_t total_ms;
	int failed;
	char why[512];
};

static void *
bystander_run(void *arg)
{
	struct bystander *b = arg;
	struct harness_frame f;
	char text[64];
	unsigned n = 0;
	int len;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		int64_t t0 = fixture_mono_ms(), dt;

		len = snprintf(text, sizeof(text), "bystander %u", n);
		if (harness_send_frame(b->t, NULL, 0, text, (uint32_t)len) < 0 ||
		    harness_recv_frame(b->t, &f, T_IO_MS) != 0) {
			snprintf(b->why, sizeof(b->why), "round trip %u: %s", n, harness_last_error());
			b->failed = 1;
			break;
		}
		if (f.header_len != 0 || f.payload_len != (uint32_t)len ||
		    memcmp(f.payload, text, (size_t)len) != 0) {
			snprintf(b->why, sizeof(b->why), "round trip %u: another answer", n);
			harness_frame_free(&f);
			b->failed = 1;
			break;
		}
		harness_frame_free(&f);
		dt = fixture_mono_ms() - t0;
		b->total_ms += dt;
		if (dt > __atomic_load_n(&b->max_ms, __ATOMIC_RELAXED))
			__atomic_store_n(&b->max_ms, dt, __ATOMIC_RELAXED);
		__atomic_store_n(&b->trips, ++n, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Polls until the bystander has done `more` further round trips. */
static void
bystander_wait_trips(struct bystander *b, unsigned more)
{
	unsigned want = __atomic_load_n(&b->trips, __ATOMIC_ACQUIRE) + more;
	int64_t deadline = fixture_mono_ms() + T_IO_MS;

	while (__atomic_load_n(&b->trips, __ATOMIC_ACQUIRE) < want &&
	       !__atomic_load_n(&b->done, __ATOMIC_ACQUIRE) && fixture_mono_ms() < deadline)
		usleep(5 * 1000);   /* polling period */
	ck_assert_msg(__atomic_load_n(&b->trips, __ATOMIC_ACQUIRE) >= want,
		      "the established client stopped making progress (%u round trips): %s",
		      __atomic_load_n(&b->trips, __ATOMIC_ACQUIRE), b->failed ? b->why : "stuck");
}

static void
bystander_stop(struct bystander *b, pthread_t th)
{
	__atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(!b->failed, "the established client: %s", b->why);
}

/* ---- 1. protocol versions -------------------------------------------------------- */

/* The protocol floor with the default min_version: a raw SSLv3 hello (no
 * OpenSSL build offers SSLv3 any more), TLS 1.0 and 1.1 hellos, raw and
 * from OpenSSL at security level 0, are refused with a fatal alert —
 * protocol_version for TLS 1.0 and 1.1 — and counted as failed
 * handshakes; TLS 1.2 and 1.3 are served. A TLS 1.2 hello carrying
 * TLS_FALLBACK_SCSV (RFC 7507) is refused with inappropriate_fallback:
 * sluice speaks TLS 1.3, so a client that fell back was downgraded. */
START_TEST(test_protocol_floor)
{
	static const uint16_t old_suites[] = { 0xc013, 0xc014, 0x002f, 0x0035, 0x000a, 0x0005 };
	static const uint16_t fallback[] = { 0xc02b, 0xc02f, 0x5600 };
	static const uint16_t modern[] = { 0xc02b, 0xc02f };
	static const struct {
		int version;
		const char *name;
	} refused[] = { { TLS1_VERSION, "TLSv1" }, { TLS1_1_VERSION, "TLSv1.1" } };
	static const struct {
		int version;
		const char *name;
	} served[] = { { TLS1_2_VERSION, "TLSv1.2" }, { TLS1_3_VERSION, "TLSv1.3" } };
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1 };
	struct hello h = { .suites = old_suites, .n_suites = 6 };
	struct answer a;
	unsigned alert;
	char why[256], d[128];
	int reason;

	sec_up(&fx, &o);

	h.version = SSL3_VERSION_WIRE;
	h.no_extensions = 1;
	alert = expect_hello_refused(fx.port, &h, "SSLv3 ClientHello");
	ck_assert_msg(alert == ALERT_HANDSHAKE_FAILURE || alert == ALERT_PROTOCOL_VERSION,
		      "SSLv3 refused with alert %u", alert);
	fprintf(stderr, "check_security: SSLv3 ClientHello refused with alert %u\n", alert);
	h.no_extensions = 0;
	h.version = TLS1_VERSION;
	ck_assert_uint_eq(expect_hello_refused(fx.port, &h, "TLS 1.0 ClientHello"), ALERT_PROTOCOL_VERSION);
	h.version = TLS1_1_VERSION;
	ck_assert_uint_eq(expect_hello_refused(fx.port, &h, "TLS 1.1 ClientHello"), ALERT_PROTOCOL_VERSION);
	h = (struct hello){ .suites = fallback, .n_suites = 3 };
	ck_assert_uint_eq(expect_hello_refused(fx.port, &h, "TLS_FALLBACK_SCSV"),
			  ALERT_INAPPROPRIATE_FALLBACK);
	fixture_wait_metric(&fx, "sluice_tls_handshake_failures_total", 4, FIXTURE_METRIC_COUNTER);

	/* OpenSSL itself at TLS 1.0 and 1.1: the hello reaches sluice (it is
	 * counted) and comes back refused with protocol_version. */
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		SSL_CTX *ctx = sc_ctx(refused[i].version, refused[i].version);
		struct sc_opts so = { 0 };
		struct sc *c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));

		ck_assert_msg(c == NULL, "a %s client was served", refused[i].name);
		ck_assert_msg(reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, "%s client: %s",
			      refused[i].name, why);
		SSL_CTX_free(ctx);
		fixture_wait_metric(&fx, "sluice_tls_handshake_failures_total", 4.0 + (double)i + 1,
				    FIXTURE_METRIC_COUNTER);
	}

	/* TLS 1.2 and 1.3 are served, and carry frames. */
	h = (struct hello){ .suites = modern, .n_suites = 2 };
	hello_probe(fx.port, &h, &a);
	ck_assert_msg(a.kind == ANS_SERVER_HELLO && a.version == TLS1_2_VERSION,
		      "a TLS 1.2 hello got %s", answer_desc(&a, d, sizeof(d)));
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
		struct harness_tls_opts ho = { .sni = "localhost", .min_version = served[i].version,
					       .max_version = served[i].version };
		struct harness_tls *t = harness_tls_connect_opts(fx.port, &ho, T_IO_MS);

		ck_assert_msg(t != NULL, "%s: %s", served[i].name, harness_last_error());
		ck_assert_str_eq(SSL_get_version(harness_tls_ssl(t)), served[i].name);
		fixture_round_trip(t, served[i].name);
		harness_tls_close(t);
	}
	/* The raw probe above left after the ServerHello: one more failure. */
	fixture_wait_metric(&fx, "sluice_tls_handshake_failures_total", 7, FIXTURE_METRIC_COUNTER);
	fixture_down(&fx);
}
END_TEST

/* ---- 2. cipher suites -------------------------------------------------------------- */

/* What a connection that negotiated an allowed suite must show: ECDHE,
 * AEAD, the certificate its suite signs with, no compression, secure
 * renegotiation, and frames going through. */
static void
expect_good_session(struct sc *c, const char *name)
{
	const SSL_CIPHER *cur = SSL_get_current_cipher(c->ssl);
	X509 *peer = SSL_get1_peer_certificate(c->ssl);
	int want_key;

	ck_assert_ptr_nonnull(cur);
	ck_assert_str_eq(SSL_CIPHER_get_name(cur), name);
	ck_assert_msg(SSL_CIPHER_get_kx_nid(cur) == NID_kx_ecdhe, "%s: not ECDHE key exchange", name);
	ck_assert_msg(SSL_CIPHER_is_aead(cur), "%s: not an AEAD cipher", name);
	ck_assert_ptr_null(SSL_get_current_compression(c->ssl));
	ck_assert_ptr_null(SSL_get_current_expansion(c->ssl));
	ck_assert_int_eq(SSL_get_secure_renegotiation_support(c->ssl), 1);
	ck_assert_ptr_nonnull(peer);
	want_key = SSL_CIPHER_get_auth_nid(cur) == NID_auth_rsa ? EVP_PKEY_RSA : EVP_PKEY_EC;
	ck_assert_msg(EVP_PKEY_get_base_id(X509_get0_pubkey(peer)) == want_key,
		      "%s served with the wrong certificate", name);
	X509_free(peer);
	sc_round_trip(c, name);
}

/* Every TLS 1.2 suite this OpenSSL knows (ALL:COMPLEMENTOFALL at
 * security level 0: NULL, anonymous, static RSA, CBC, DHE, PSK, CAMELLIA,
 * ARIA...), offered alone by a real client: sluice completes a handshake
 * for exactly the six documented ECDHE + AEAD suites (each with the
 * matching certificate, no compression, secure renegotiation) and refuses
 * every other one with a handshake_failure alert. Suites this client
 * cannot offer at all (SRP without a password) are listed; the code point
 * sweep below covers them. */
START_TEST(test_cipher_suites_openssl)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	SSL_CTX *ctx;
	STACK_OF(SSL_CIPHER) *all;
	int accepted[N_ALLOWED] = { 0 };
	int n_known = 0, n_accepted = 0, n_refused = 0, n_unofferable = 0, reason;
	char unofferable[2048] = "", why[256];

	sec_up(&fx, &o);
	ctx = sc_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
	all = SSL_CTX_get_ciphers(ctx);
	ck_assert_ptr_nonnull(all);
	for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
		const SSL_CIPHER *ci = sk_SSL_CIPHER_value(all, i);
		const char *name = SSL_CIPHER_get_name(ci);
		struct sc_opts so = { .ciphers = name, .psk = 1 };
		struct sc *c;
		int k;

		/* TLS 1.3 suites (0x13xx) have a test of their own. */
		if ((SSL_CIPHER_get_protocol_id(ci) & 0xff00) == 0x1300)
			continue;
		n_known++;
		c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));
		if (c != NULL) {
			k = allowed_index_of_name(name);
			ck_assert_msg(k >= 0, "sluice accepted %s", name);
			expect_good_session(c, name);
			accepted[k]++;
			n_accepted++;
			sc_free(c);
		} else if (reason == SSL_R_NO_CIPHERS_AVAILABLE) {
			n_unofferable++;
			snprintf(unofferable + strlen(unofferable), sizeof(unofferable) - strlen(unofferable),
				 " %s", name);
		} else {
			ck_assert_msg(allowed_index_of_name(name) < 0, "sluice refused %s: %s", name, why);
			ck_assert_msg(reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE,
				      "%s: expected a handshake_failure alert, got: %s", name, why);
			n_refused++;
		}
	}
	SSL_CTX_free(ctx);
	fprintf(stderr, "check_security: %d TLS 1.2 suites known to %s: %d accepted, %d refused, "
		"%d not offerable by this client:%s\n", n_known, OpenSSL_version(OPENSSL_VERSION),
		n_accepted, n_refused, n_unofferable, unofferable);
	for (size_t k = 0; k < N_ALLOWED; k++)
		ck_assert_msg(accepted[k] == 1, "%s was not accepted", allowed_suites[k].name);
	/* Only SRP needs what a test client cannot make up. */
	ck_assert_msg(n_unofferable == 0 || strstr(unofferable, "SRP") != NULL,
		      "suites not offered:%s", unofferable);
	ck_assert_int_gt(n_refused, 50);
	fixture_down(&fx);
}
END_TEST

/* The code point ranges a TLS 1.2 sweep covers: every suite IANA has
 * assigned for TLS 1.2 and below lies in one of them (RC4, DES, 3DES,
 * export, NULL, anonymous, GOST, SRP, PSK, ECDHE_PSK...), with TLS 1.3
 * suites and the SCSVs among them, whether or not OpenSSL implements it. */
static const struct {
	unsigned lo, hi;
} sweep_ranges[] = {
	{ 0x0000, 0x00ff }, { 0x1300, 0x130f }, { 0x5600, 0x5600 }, { 0xc000, 0xc0ff },
	{ 0xc100, 0xc10f }, { 0xcca0, 0xccaf }, { 0xd000, 0xd00f }, { 0xff80, 0xff8f },
};

/* Each code point of sweep_ranges alone in a raw TLS 1.2 ClientHello:
 * sluice answers a ServerHello choosing that suite for exactly the six
 * allowed ones, and a fatal alert for every other, so RC4, 3DES, export,
 * NULL and anonymous suites are refused even though no OpenSSL client
 * could offer them. */
START_TEST(test_cipher_suites_code_points)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	int accepted[N_ALLOWED] = { 0 };
	unsigned n = 0, n_refused = 0;
	struct answer a;
	int64_t start;
	char d[128];

	sec_up(&fx, &o);
	start = fixture_mono_ms();
	for (size_t r = 0; r < sizeof(sweep_ranges) / sizeof(sweep_ranges[0]); r++) {
		for (unsigned cp = sweep_ranges[r].lo; cp <= sweep_ranges[r].hi; cp++) {
			uint16_t suite = (uint16_t)cp;
			struct hello h = { .suites = &suite, .n_suites = 1 };
			int k = allowed_index_of_code(cp);

			hello_probe(fx.port, &h, &a);
			n++;
			if (k >= 0) {
				ck_assert_msg(a.kind == ANS_SERVER_HELLO && a.suite == cp && a.comp == 0,
					      "suite 0x%04x: %s", cp, answer_desc(&a, d, sizeof(d)));
				accepted[k]++;
			} else {
				ck_assert_msg(a.kind == ANS_ALERT && a.level == 2,
					      "suite 0x%04x: expected a fatal alert, got %s", cp,
					      answer_desc(&a, d, sizeof(d)));
				n_refused++;
			}
		}
	}
	fprintf(stderr, "check_security: %u cipher suite code points offered one at a time in %lld ms: "
		"%u refused, %zu accepted\n", n, (long long)(fixture_mono_ms() - start), n_refused,
		N_ALLOWED);
	for (size_t k = 0; k < N_ALLOWED; k++)
		ck_assert_int_eq(accepted[k], 1);
	fixture_down(&fx);
}
END_TEST

/* TLS 1.3: the suites this OpenSSL knows, one at a time: exactly OpenSSL's
 * default three (AES-GCM and ChaCha20-Poly1305) are served; the CCM ones,
 * off by default, are refused. Key exchange groups, in TLS 1.3 and 1.2: a
 * client offering only X25519, P-256 or P-384 gets that group; one
 * offering only P-521 or finite-field groups is refused. */
START_TEST(test_tls13_suites_and_groups)
{
	static const struct {
		const char *name;
		int served;
	} suites[] = {
		{ "TLS_AES_128_GCM_SHA256", 1 },  { "TLS_AES_256_GCM_SHA384", 1 },
		{ "TLS_CHACHA20_POLY1305_SHA256", 1 }, { "TLS_AES_128_CCM_SHA256", 0 },
		{ "TLS_AES_128_CCM_8_SHA256", 0 },
	};
	static const struct {
		const char *name;
		int nid;               /* NID_undef: refused */
	} groups[] = {
		{ "X25519", NID_X25519 }, { "P-256", NID_X9_62_prime256v1 }, { "P-384", NID_secp384r1 },
		{ "P-521", NID_undef }, { "ffdhe2048", NID_undef }, { "ffdhe3072", NID_undef },
	};
	static const int versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	char why[256];
	int reason;

	sec_up(&fx, &o);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		SSL_CTX *ctx = sc_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
		struct sc_opts so = { .suites = suites[i].name };
		struct sc *c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));

		if (suites[i].served) {
			ck_assert_msg(c != NULL, "%s refused: %s", suites[i].name, why);
			ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)), suites[i].name);
			ck_assert_ptr_null(SSL_get_current_compression(c->ssl));
			sc_round_trip(c, suites[i].name);
		} else {
			ck_assert_msg(c == NULL, "%s served", suites[i].name);
			ck_assert_msg(reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, "%s: %s", suites[i].name,
				      why);
		}
		sc_free(c);
		SSL_CTX_free(ctx);
	}
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
			SSL_CTX *ctx = sc_ctx(versions[v], versions[v]);
			struct sc_opts so = { .groups = groups[i].name };
			struct sc *c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));

			if (groups[i].nid != NID_undef) {
				ck_assert_msg(c != NULL, "group %s refused: %s", groups[i].name, why);
				ck_assert_int_eq(SSL_get_negotiated_group(c->ssl), groups[i].nid);
				sc_round_trip(c, groups[i].name);
			} else {
				ck_assert_msg(c == NULL, "group %s served (version 0x%x)", groups[i].name,
					      versions[v]);
			}
			sc_free(c);
			SSL_CTX_free(ctx);
		}
	}
	fixture_down(&fx);
}
END_TEST

/* ---- 3. compression and renegotiation ---------------------------------------------------- */

/* No compression (CRIME): a hello offering DEFLATE before null gets null;
 * one offering DEFLATE alone is refused. Secure renegotiation (RFC 5746)
 * is advertised — an empty renegotiation_info in the ServerHello — to
 * clients that signal it by extension or by the SCSV, and never
 * unsolicited; OpenSSL clients of TLS 1.2 and 1.3 see no compression. */
START_TEST(test_compression_and_secure_renegotiation)
{
	static const uint16_t suites[] = { 0xc02b, 0xc02f };
	static const uint16_t with_scsv[] = { 0xc02b, 0xc02f, 0x00ff };
	static const uint8_t deflate_null[] = { 1, 0 };
	static const uint8_t deflate[] = { 1 };
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct hello h = { .suites = suites, .n_suites = 2, .comp = deflate_null, .n_comp = 2 };
	struct answer a;
	char d[128], why[256];
	int reason;

	sec_up(&fx, &o);
	hello_probe(fx.port, &h, &a);
	ck_assert_msg(a.kind == ANS_SERVER_HELLO && a.comp == 0, "DEFLATE offered: %s",
		      answer_desc(&a, d, sizeof(d)));
	ck_assert_int_eq(a.renegotiation_info, 0);
	h.comp = deflate;
	h.n_comp = 1;
	(void)expect_hello_refused(fx.port, &h, "DEFLATE only");

	h = (struct hello){ .suites = suites, .n_suites = 2, .renegotiation_info = 1 };
	hello_probe(fx.port, &h, &a);
	ck_assert_msg(a.kind == ANS_SERVER_HELLO && a.renegotiation_info,
		      "renegotiation_info offered: %s, renegotiation_info %d",
		      answer_desc(&a, d, sizeof(d)), a.renegotiation_info);
	h = (struct hello){ .suites = with_scsv, .n_suites = 3 };
	hello_probe(fx.port, &h, &a);
	ck_assert_msg(a.kind == ANS_SERVER_HELLO && a.renegotiation_info,
		      "TLS_EMPTY_RENEGOTIATION_INFO_SCSV offered: %s, renegotiation_info %d",
		      answer_desc(&a, d, sizeof(d)), a.renegotiation_info);

	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		SSL_CTX *ctx = sc_ctx(versions[v], versions[v]);
		struct sc_opts so = { 0 };
		struct sc *c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));

		ck_assert_msg(c != NULL, "version 0x%x: %s", versions[v], why);
		ck_assert_ptr_null(SSL_get_current_compression(c->ssl));
		ck_assert_ptr_null(SSL_get_current_expansion(c->ssl));
		if (versions[v] == TLS1_2_VERSION)
			ck_assert_int_eq(SSL_get_secure_renegotiation_support(c->ssl), 1);
		sc_round_trip(c, "no compression");
		sc_free(c);
		SSL_CTX_free(ctx);
	}
	fixture_down(&fx);
}
END_TEST

/* Runs the renegotiation a client asked for (SSL_renegotiate) to its end.
 * 0 when it completed, else OpenSSL's reason code (why: its text). */
static int
renegotiate(struct harness_tls *t, char *why, size_t len)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	SSL *ssl = harness_tls_ssl(t);
	int rc, err;

	ERR_clear_error();
	while ((rc = SSL_do_handshake(ssl)) != 1) {
		err = SSL_get_error(ssl, rc);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			if (fd_wait(harness_tls_fd(t), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline) == 0)
				continue;
			snprintf(why, len, "timed out");
			return -1;
		}
		return sc_error(why, len);
	}
	snprintf(why, len, "completed");
	return 0;
}

#define RENEGOTIATIONS 20

/* Client-initiated renegotiation (the renegotiation DoS; CVE-2009-3555's
 * stage) is refused: sluice (SSL_OP_NO_RENEGOTIATION) answers the TLS 1.2
 * client's new ClientHello with a no_renegotiation alert, which an OpenSSL
 * client turns into a fatal error (SSL_R_NO_RENEGOTIATION) and a fatal
 * alert of its own; sluice then closes the connection at once, logging it
 * as a connection error. Twenty such clients in a row leave an established
 * client untouched and sluice's memory where it was. */
START_TEST(test_renegotiation_refused)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct harness_tls_opts ho = { .sni = "localhost", .min_version = TLS1_2_VERSION,
				       .max_version = TLS1_2_VERSION };
	struct harness_tls *bystander, *t;
	long rss0, rss1;
	int64_t closed_ms, worst = 0;
	int errors0;
	char why[256];

	sec_up(&fx, &o);
	bystander = fixture_connect(&fx);
	fixture_round_trip(bystander, "bystander before");
	errors0 = fixture_count_log(&fx, "closed (reset)");
	rss0 = fixture_rss_kib(&fx);
	for (int i = 0; i < RENEGOTIATIONS; i++) {
		t = harness_tls_connect_opts(fx.port, &ho, T_IO_MS);
		ck_assert_msg(t != NULL, "connect: %s", harness_last_error());
		ck_assert_int_eq(SSL_get_secure_renegotiation_support(harness_tls_ssl(t)), 1);
		fixture_round_trip(t, "before renegotiating");
		ck_assert_int_eq(SSL_renegotiate(harness_tls_ssl(t)), 1);
		ck_assert_msg(renegotiate(t, why, sizeof(why)) == SSL_R_NO_RENEGOTIATION,
			      "renegotiation %d: expected sluice's no_renegotiation alert, got: %s", i, why);
		closed_ms = raw_wait_closed(harness_tls_fd(t), T_PROMPT_MS);
		ck_assert_msg(closed_ms >= 0, "sluice kept the connection open after a refused renegotiation");
		if (closed_ms > worst)
			worst = closed_ms;
		harness_tls_abort(t);
		fixture_round_trip(bystander, "bystander during");
	}
	fixture_wait_log_count(&fx, "closed (reset)", errors0 + RENEGOTIATIONS);
	rss1 = fixture_rss_kib(&fx);
	fprintf(stderr, "check_security: %d renegotiations refused, each connection closed within %lld ms; "
		"sluice VmRSS %ld -> %ld KiB\n", RENEGOTIATIONS, (long long)worst, rss0, rss1);
	expect_rss_growth_below(&fx, rss1 - rss0, RSS_LEFTOVER_KIB, "20 refused renegotiations");
	fixture_round_trip(bystander, "bystander after");
	harness_tls_close(bystander);
	t = fixture_connect(&fx);
	fixture_round_trip(t, "a new client");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

#define KEY_UPDATES 200

/* TLS 1.3 key updates (RFC 8446 §4.6.3), which replace renegotiation
 * there: 200 of them from the client, alternately asking sluice to update
 * its own keys too, each followed by a round trip: all honoured, and the
 * connection keeps working. */
START_TEST(test_tls13_key_update)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct harness_tls_opts ho = { .sni = "localhost", .min_version = TLS1_3_VERSION,
				       .max_version = TLS1_3_VERSION };
	struct harness_tls *t;
	SSL *ssl;
	char text[32];

	sec_up(&fx, &o);
	t = harness_tls_connect_opts(fx.port, &ho, T_IO_MS);
	ck_assert_msg(t != NULL, "connect: %s", harness_last_error());
	ssl = harness_tls_ssl(t);
	fixture_round_trip(t, "before any key update");
	for (int i = 0; i < KEY_UPDATES; i++) {
		ck_assert_int_eq(SSL_key_update(ssl, i % 2 ? SSL_KEY_UPDATE_REQUESTED
						     : SSL_KEY_UPDATE_NOT_REQUESTED), 1);
		snprintf(text, sizeof(text), "after key update %d", i);
		fixture_round_trip(t, text);
		ck_assert_int_eq(SSL_get_key_update_type(ssl), SSL_KEY_UPDATE_NONE);
	}
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* TLS 1.3 early data (0-RTT) can be replayed by anyone who recorded it,
 * and sluice's requests are not idempotent: the session tickets sluice
 * issues never allow it (max_early_data 0), so no client can even try. */
START_TEST(test_no_early_data)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct harness_tls_opts ho = { .sni = "localhost", .min_version = TLS1_3_VERSION,
				       .max_version = TLS1_3_VERSION };
	struct harness_tls *t;
	SSL_SESSION *session;

	sec_up(&fx, &o);
	t = harness_tls_connect_opts(fx.port, &ho, T_IO_MS);
	ck_assert_msg(t != NULL, "connect: %s", harness_last_error());
	fixture_round_trip(t, "a ticket comes with the answer");
	session = harness_tls_session(t);
	ck_assert_ptr_nonnull(session);
	ck_assert_msg(SSL_SESSION_is_resumable(session), "no resumable session");
	ck_assert_uint_eq(SSL_SESSION_get_max_early_data(session), 0);
	SSL_SESSION_free(session);
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- the private key in sluice's memory -------------------------------------------------- */

/* Occurrences of needle in sluice's memory, read through /proc/PID/mem
 * mapping by mapping (from /proc/PID/smaps): in mappings excluded from core
 * dumps (VmFlags "dd": OpenSSL's secure heap is one) and elsewhere.
 * Mappings over 256 MiB are reservations (ASan's shadow), not data, and
 * are skipped. -1 when sluice's memory cannot be read (no CAP_SYS_PTRACE:
 * sluice is not dumpable). */
static int
memory_count(pid_t pid, const uint8_t *needle, size_t len, int *in_dontdump, int *elsewhere)
{
	enum { CHUNK = 1 << 20 };
	char path[64], line[512];
	unsigned long start = 0, end = 0;
	int readable = 0, mem;
	uint8_t *buf;
	FILE *smaps;

	*in_dontdump = *elsewhere = 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	smaps = fopen(path, "r");
	buf = malloc(CHUNK + len);
	ck_assert(smaps != NULL && buf != NULL);
	while (fgets(line, sizeof(line), smaps) != NULL) {
		unsigned long a, b;
		char perms[8];

		/* A mapping's first line; sscanf may assign before it fails on
		 * a field line ("FilePmdMapped:" starts with a hex digit). */
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
			start = a;
			end = b;
			readable = perms[0] == 'r';
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) != 0 || !readable || end - start > (256ul << 20))
			continue;
		/* The whole mapping, in chunks that overlap by len - 1 bytes
		 * so that no occurrence is cut in two. */
		for (unsigned long at = start; at < end; at += CHUNK) {
			size_t want = end - at < CHUNK + len - 1 ? end - at : CHUNK + len - 1;
			ssize_t got = pread(mem, buf, want, (off_t)at);
			const uint8_t *p = buf, *hit;

			if (got <= 0)
				break;            /* guard pages, vvar: nothing to read */
			while ((size_t)(buf + got - p) >= len && (hit = memmem(p, (size_t)(buf + got - p),
									   needle, len)) != NULL) {
				if (hit - buf < CHUNK)
					(*(strstr(line, " dd") != NULL ? in_dontdump : elsewhere))++;
				p = hit + 1;
			}
		}
	}
	fclose(smaps);
	free(buf);
	close(mem);
	return 0;
}

/* The private scalar of the EC key in path, 32 bytes, big-endian (as in
 * the DER of the key) and little-endian (as in BIGNUM limbs on x86-64). */
static void
ec_private_scalar(const char *path, uint8_t be[32], uint8_t le[32])
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	BIGNUM *d = NULL;

	ck_assert_msg(key != NULL, "cannot read %s", path);
	fclose(f);
	ck_assert_int_eq(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	ck_assert_int_eq(BN_bn2binpad(d, be, 32), 32);
	ck_assert_int_eq(BN_bn2lebinpad(d, le, 32), 32);
	BN_clear_free(d);
	EVP_PKEY_free(key);
}

/* Where sluice keeps its private key once it serves: the key OpenSSL uses
 * (its scalar as BIGNUM limbs) lives in OpenSSL's secure heap — a mapping
 * excluded from core dumps, locked in memory where RLIMIT_MEMLOCK allows —
 * and nowhere else. The key's DER (the scalar big-endian) that OpenSSL's
 * PEM decoder leaves in freed, uncleansed heap blocks is counted and
 * printed, not asserted: OpenSSL 3.0 does that in any program that reads
 * a PEM key (docs/SECURITY.md, "Known limits"). Skipped, with a message,
 * where this test may not read sluice's memory. */
START_TEST(test_private_key_in_secure_heap)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct harness_tls *t;
	uint8_t be[32], le[32];
	char path[PATH_MAX + 32];
	int limbs_secure, limbs_elsewhere, der_secure, der_elsewhere;

	sec_up(&fx, &o);
	snprintf(path, sizeof(path), "%s/server.key", fx.dir);
	ec_private_scalar(path, be, le);
	t = fixture_connect(&fx);           /* the ECDSA key signs this one */
	fixture_round_trip(t, "signed with the key");
	harness_tls_close(t);
	if (memory_count(fx.sluice.pid, le, sizeof(le), &limbs_secure, &limbs_elsewhere) < 0 ||
	    memory_count(fx.sluice.pid, be, sizeof(be), &der_secure, &der_elsewhere) < 0) {
		fprintf(stderr, "check_security: cannot read sluice's memory (%s): key placement not checked\n",
			strerror(errno));
		fixture_down(&fx);
		return;
	}
	OPENSSL_cleanse(be, sizeof(be));
	OPENSSL_cleanse(le, sizeof(le));
	fprintf(stderr, "check_security: the ECDSA private scalar in sluice's memory: as BIGNUM limbs "
		"%d time(s) in the secure heap, %d elsewhere; big-endian (its DER) %d time(s) outside "
		"the secure heap; VmLck %ld KiB\n", limbs_secure, limbs_elsewhere, der_elsewhere,
		harness_proc_status_kib(fx.sluice.pid, "VmLck"));
	ck_assert_msg(limbs_secure >= 1, "the private key is not in OpenSSL's secure heap");
	ck_assert_msg(limbs_elsewhere == 0, "a copy of the private key lives outside the secure heap");
	fixture_down(&fx);
}
END_TEST

/* ---- 4. handshake floods ------------------------------------------------------------ */

#define FLOOD_N 500

static int
grease_add(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char **out,
	   size_t *outlen, X509 *x, size_t chainidx, int *al, void *add_arg)
{
	size_t len = *(const size_t *)add_arg;
	unsigned char *data = calloc(1, len);

	(void)s, (void)ext_type, (void)context, (void)x, (void)chainidx, (void)al;
	if (data == NULL)
		return -1;
	*out = data;
	*outlen = len;
	return 1;
}

static void
grease_free(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char *out,
	    void *add_arg)
{
	(void)s, (void)ext_type, (void)context, (void)add_arg;
	free((void *)out);
}

/* A client context whose ClientHello carries *grease_len bytes of GREASE
 * extension (grease_len must outlive it). */
static SSL_CTX *
grease_ctx(const size_t *grease_len)
{
	SSL_CTX *ctx = sc_ctx(TLS1_2_VERSION, TLS1_3_VERSION);

	ck_assert_int_eq(SSL_CTX_add_custom_ext(ctx, EXT_GREASE, SSL_EXT_CLIENT_HELLO, grease_add,
						grease_free, (void *)grease_len, NULL, NULL), 1);
	return ctx;
}

/* A whole ClientHello as an OpenSSL client sends it first (TLS 1.3 with
 * TLS 1.2 allowed; grease_len > 0 adds a GREASE extension that big), made
 * through memory BIOs: the records, as they would go on the wire. */
static void
openssl_hello(size_t grease_len, struct bytes *out)
{
	SSL_CTX *ctx = grease_len > 0 ? grease_ctx(&grease_len) : sc_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc;

	ck_assert(ssl != NULL && rb != NULL && wb != NULL);
	SSL_set_bio(ssl, rb, wb);
	ck_assert_int_eq(SSL_set_tlsext_host_name(ssl, "localhost"), 1);
	rc = SSL_connect(ssl);
	ck_assert_int_eq(SSL_get_error(ssl, rc), SSL_ERROR_WANT_READ);
	len = BIO_get_mem_data(wb, &data);
	ck_assert_int_gt(len, 5);
	bytes_put(out, data, (size_t)len);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* The flood's connections come in three kinds, a third of the flood each:
 * connected and silent; 100 bytes of a ClientHello record announcing more
 * (a slowloris of the handshake); a whole ClientHello, after which the
 * client never answers sluice's flight (sluice has done its ECDHE and
 * signature, and holds the handshake state). */
enum flood_kind { FLOOD_SILENT, FLOOD_PARTIAL, FLOOD_HELLO, FLOOD_KINDS };

static const char *const flood_kind_name[FLOOD_KINDS] = { "silent", "partial record",
							 "whole ClientHello" };

static enum flood_kind
flood_kind_of(int i)
{
	return (enum flood_kind)(i * FLOOD_KINDS / FLOOD_N);
}

static int
flood_open(uint16_t port, enum flood_kind kind, const struct bytes *hello)
{
	int fd = raw_connect(port);

	switch (kind) {
	case FLOOD_SILENT:
	case FLOOD_KINDS:
		break;
	case FLOOD_PARTIAL:
		ck_assert_int_eq(raw_send(fd, hello->p, 100), 0);
		break;
	case FLOOD_HELLO:
		ck_assert_int_eq(raw_send(fd, hello->p, hello->len), 0);
		break;
	}
	return fd;
}

/* Regression: sluice listened with a backlog of 1024, but libevent's
 * evconnlistener_new, given -1, called listen() again with 128, so a burst
 * of more than about 128 connections not yet accepted had its SYNs dropped
 * (retried a second later). With sluice stopped, BACKLOG_BURST connects
 * must all complete in the kernel within half a second: well under the
 * 1 s SYN retransmission that a dropped SYN would wait for. */
#define BACKLOG_BURST 600

START_TEST(test_listen_backlog_not_128)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct pollfd pfd[BACKLOG_BURST];
	int n_done = 0, n_connected = 0;
	int64_t deadline;

	sec_up(&fx, &o);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGSTOP), 0);
	for (int i = 0; i < BACKLOG_BURST; i++) {
		pfd[i] = (struct pollfd){ .fd = harness_tcp_connect_nowait(fx.port), .events = POLLOUT };
		ck_assert_msg(pfd[i].fd >= 0, "%s", harness_last_error());
	}
	deadline = fixture_mono_ms() + 500;
	while (n_done < BACKLOG_BURST && fixture_mono_ms() < deadline) {
		ck_assert_int_ge(poll(pfd, BACKLOG_BURST, 50), 0);
		for (int i = 0; i < BACKLOG_BURST; i++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			ck_assert_int_eq(getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
			n_connected += err == 0;
			n_done++;
			pfd[i].events = 0;
			pfd[i].fd = -pfd[i].fd - 1;  /* poll skips negative fds */
		}
	}
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGCONT), 0);
	for (int i = 0; i < BACKLOG_BURST; i++)
		close(pfd[i].fd < 0 ? -pfd[i].fd - 1 : pfd[i].fd);
	ck_assert_msg(n_connected == BACKLOG_BURST,
		      "%d of %d connections completed while sluice was stopped: the listen "
		      "backlog is smaller than LISTENER_BACKLOG", n_connected, BACKLOG_BURST);
	fixture_down(&fx);
}
END_TEST

/* Opens the FLOOD_N connections, noting when each connected, in batches
 * that sluice has accepted before the next begins: a batch stays below the
 * listen backlog, so the kernel never drops a SYN (a dropped SYN is
 * retried a second later, which would blur every timing measured here).
 * With rss (may be NULL), sluice's VmRSS once each kind is all in: whole
 * ClientHellos are then answered too (sluice_connections_total counts
 * accepts only), so rss waits for sluice to stop growing. */
#define FLOOD_BATCH 100

static void
flood_open_all(const struct fixture *fx, const struct bytes *hello, int fds[FLOOD_N],
	       int64_t opened[FLOOD_N], long rss[FLOOD_KINDS])
{
	double total0 = fixture_metric(fx, "sluice_connections_total");

	for (int i = 0; i < FLOOD_N; i++) {
		enum flood_kind kind = flood_kind_of(i);
		int last_of_kind = i + 1 == FLOOD_N || flood_kind_of(i + 1) != kind;

		fds[i] = flood_open(fx->port, kind, hello);
		opened[i] = fixture_mono_ms();
		if ((i + 1) % FLOOD_BATCH == 0 || last_of_kind)
			fixture_wait_metric(fx, "sluice_connections_total", total0 + i + 1,
					    FIXTURE_METRIC_COUNTER);
		if (rss != NULL && last_of_kind)
			rss[kind] = rss_settled_kib(fx);
	}
}

/* Polls until sluice_connections_active reaches want. */
static void
wait_active(const struct fixture *fx, double want)
{
	fixture_wait_metric(fx, "sluice_connections_active", want, FIXTURE_METRIC_EQUAL);
}

/* After a burst of clients, most of whom have left, sluice's resident
 * memory follows the clients still there, not the burst's peak: each
 * handshake used some 45 KiB for a moment and each client keeps some
 * 15 KiB, so the survivors hold blocks all over a heap that glibc would
 * only give back from its top (worker_trim_after_burst). 1000 clients
 * connect and do a round trip, 950 leave: the memory sluice gained must
 * fall to half its peak within 5 s (unfixed, it kept all of it). Plain builds only (ASan and
 * valgrind keep freed memory on purpose). */
#define BURST_N 1000
#define BURST_KEEP_EVERY 20

START_TEST(test_memory_returned_after_burst)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1 };
	static struct harness_tls *t[BURST_N];
	const char *under;
	long rss0, peak, rss;
	int64_t deadline;

	sec_up(&fx, &o);
	under = fixture_instrumented(&fx, FIXTURE_ASAN | FIXTURE_VALGRIND);
	for (int i = 0; i < 20; i++) {
		t[0] = fixture_connect(&fx);
		fixture_round_trip(t[0], "warm-up");
		harness_tls_close(t[0]);
	}
	wait_active(&fx, 0);
	rss0 = rss_settled_kib(&fx);
	for (int i = 0; i < BURST_N; i++) {
		t[i] = fixture_connect(&fx);
		fixture_round_trip(t[i], "burst");
	}
	peak = rss_settled_kib(&fx);
	for (int i = 0; i < BURST_N; i++) {
		if (i % BURST_KEEP_EVERY != 0) {
			harness_tls_close(t[i]);
			t[i] = NULL;
		}
	}
	wait_active(&fx, BURST_N / BURST_KEEP_EVERY);
	deadline = fixture_mono_ms() + 5000;
	while ((rss = fixture_rss_kib(&fx)) - rss0 > (peak - rss0) / 2 && fixture_mono_ms() < deadline)
		usleep(50 * 1000);   /* sampling period */
	fprintf(stderr, "check_security: burst of %d clients: sluice VmRSS %ld -> %ld KiB at the peak "
		"(%.1f KiB each), %ld KiB with %d left%s%s\n", BURST_N, rss0, peak,
		(double)(peak - rss0) / BURST_N, rss, BURST_N / BURST_KEEP_EVERY,
		under != NULL ? " under " : "", under != NULL ? under : "");
	if (under == NULL)
		ck_assert_msg(rss - rss0 <= (peak - rss0) / 2,
			      "sluice kept %ld of the %ld KiB the burst took, with %d of %d clients left",
			      rss - rss0, peak - rss0, BURST_N / BURST_KEEP_EVERY, BURST_N);
	for (int i = 0; i < BURST_N; i += BURST_KEEP_EVERY)
		fixture_round_trip(t[i], "still here");
	for (int i = 0; i < BURST_N; i += BURST_KEEP_EVERY)
		harness_tls_close(t[i]);
	fixture_down(&fx);
}
END_TEST

/* 500 half-open connections (see flood_open) while an established client
 * does round trips without a pause: each of its round trips takes under a
 * second throughout, sluice's resident memory grows by less than 32 MiB
 * with all 500 held (the figure per connection is printed), and once they
 * leave, sluice serves new clients as before. handshake_timeout is 30 s
 * here so that all 500 are held at once. */
START_TEST(test_handshake_flood)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .limits = "  handshake_timeout: 30s\n" };
	struct bystander b;
	struct bytes hello = { 0 };
	struct harness_tls *t;
	pthread_t th;
	int fds[FLOOD_N];
	int64_t opened[FLOOD_N];
	long rss0, rss1, rss[FLOOD_KINDS];
	const char *under;
	int64_t start, opened_ms;
	unsigned trips0, trips;

	sec_up(&fx, &o);
	under = fixture_instrumented(&fx, FIXTURE_ASAN | FIXTURE_VALGRIND);
	openssl_hello(0, &hello);
	/* Warm up: what the first handshakes allocate once (OpenSSL's
	 * tables, the session cache) is not the flood's. */
	for (int i = 0; i < 20; i++) {
		t = fixture_connect(&fx);
		fixture_round_trip(t, "warm-up");
		harness_tls_close(t);
	}
	memset(&b, 0, sizeof(b));
	b.t = fixture_connect(&fx);
	fixture_round_trip(b.t, "bystander before");
	wait_active(&fx, 1);
	rss0 = fixture_rss_kib(&fx);
	ck_assert_int_eq(pthread_create(&th, NULL, bystander_run, &b), 0);
	bystander_wait_trips(&b, 10);
	trips0 = __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE);

	start = fixture_mono_ms();
	flood_open_all(&fx, &hello, fds, opened, rss);
	opened_ms = fixture_mono_ms() - start;
	wait_active(&fx, FLOOD_N + 1);
	bystander_wait_trips(&b, 50);   /* with all 500 held */
	rss1 = fixture_rss_kib(&fx);
	trips = __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE) - trips0;
	bystander_stop(&b, th);
	fprintf(stderr, "check_security: handshake flood: %d half-open connections opened in %lld ms; "
		"sluice VmRSS %ld -> %ld KiB (+%ld KiB, %.1f KiB per connection)%s%s; the established "
		"client did %u round trips meanwhile, slowest %lld ms, mean %.2f ms\n",
		FLOOD_N, (long long)opened_ms, rss0, rss1, rss1 - rss0, (double)(rss1 - rss0) / FLOOD_N,
		under != NULL ? " under " : "", under != NULL ? under : "", trips, (long long)b.max_ms,
		(double)b.total_ms / __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE));
	for (int k = 0; k < FLOOD_KINDS; k++) {
		long before = k == 0 ? rss0 : rss[k - 1];
		int n = FLOOD_N * (k + 1) / FLOOD_KINDS - FLOOD_N * k / FLOOD_KINDS;

		fprintf(stderr, "check_security: handshake flood: %d %s connections: +%ld KiB, %.1f KiB each\n",
			n, flood_kind_name[k], rss[k] - before, (double)(rss[k] - before) / n);
	}
	/* Under valgrind every handshake of the flood takes sluice 20-50 times
	 * longer: the established client's latency there is valgrind's. */
	if (under == NULL || strcmp(under, "valgrind") != 0)
		ck_assert_msg(b.max_ms < T_BYSTANDER_MS, "a round trip of the established client took "
			      "%lld ms (limit %d ms)", (long long)b.max_ms, T_BYSTANDER_MS);
	expect_rss_growth_below(&fx, rss1 - rss0, RSS_GROWTH_KIB, "500 half-open connections");

	for (int i = 0; i < FLOOD_N; i++)
		raw_abort(fds[i]);
	wait_active(&fx, 1);
	fixture_round_trip(b.t, "bystander after");
	harness_tls_close(b.t);
	t = fixture_connect(&fx);
	fixture_round_trip(t, "a new client");
	harness_tls_close(t);
	bytes_free(&hello);
	fixture_down(&fx);
}
END_TEST

/* handshake_timeout: 1s against the same 500 half-open connections: each
 * is closed by sluice no sooner than 0.9 s and no later than 5 s after it
 * connected, every one is counted in sluice_timeouts_total{kind=
 * "handshake"} (and none as a failed handshake) and logged (a few lines,
 * the rest summarised, SPEC §10: all out once sluice has exited), and the
 * client established before the flood — older than the timeout — still
 * works. */
START_TEST(test_handshake_flood_timeout)
{
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .limits = "  handshake_timeout: 1s\n" };
	struct bytes hello = { 0 };
	struct harness_tls *bystander, *t;
	struct pollfd pfd[FLOOD_N];
	int fds[FLOOD_N];
	int64_t opened[FLOOD_N], closed[FLOOD_N], deadline, first = INT64_MAX, last = 0;
	uint8_t sink[16384];
	int n_open = FLOOD_N;

	sec_up(&fx, &o);
	openssl_hello(0, &hello);
	bystander = fixture_connect(&fx);
	fixture_round_trip(bystander, "bystander before");
	flood_open_all(&fx, &hello, fds, opened, NULL);
	for (int i = 0; i < FLOOD_N; i++) {
		pfd[i].fd = fds[i];
		pfd[i].events = POLLIN;
		closed[i] = -1;
	}
	deadline = opened[FLOOD_N - 1] + 1000 + 4000;
	while (n_open > 0 && fixture_mono_ms() < deadline) {
		int rc = poll(pfd, FLOOD_N, ms_left(deadline));

		ck_assert_msg(rc >= 0 || errno == EINTR, "poll: %s", strerror(errno));
		for (int i = 0; rc > 0 && i < FLOOD_N; i++) {
			ssize_t n;

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = recv(pfd[i].fd, sink, sizeof(sink), 0);   /* sluice's flight, or the end */
			if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
				continue;
			closed[i] = fixture_mono_ms();
			close(pfd[i].fd);
			pfd[i].fd = -1;
			n_open--;
		}
	}
	for (int i = 0; i < FLOOD_N; i++) {
		int64_t after = closed[i] - opened[i];

		ck_assert_msg(closed[i] >= 0, "connection %d (%s) still open 5 s after the last one "
			      "connected; %d of %d open", i, flood_kind_name[flood_kind_of(i)], n_open, FLOOD_N);
		ck_assert_msg(after >= 900, "connection %d (%s) closed after %lld ms, before the timeout",
			      i, flood_kind_name[flood_kind_of(i)], (long long)after);
		if (after < first)
			first = after;
		if (after > last)
			last = after;
	}
	fprintf(stderr, "check_security: handshake_timeout 1s: %d half-open connections opened in %lld ms, "
		"each closed %lld to %lld ms after it connected\n", FLOOD_N,
		(long long)(opened[FLOOD_N - 1] - opened[0]), (long long)first, (long long)last);
	fixture_wait_metric(&fx, "sluice_timeouts_total{kind=\"handshake\"}", FLOOD_N,
			    FIXTURE_METRIC_COUNTER);
	ck_assert_int_eq(fixture_metric(&fx, "sluice_tls_handshake_failures_total"), 0);
	wait_active(&fx, 1);
	fixture_round_trip(bystander, "bystander after");
	harness_tls_close(bystander);
	t = fixture_connect(&fx);
	fixture_round_trip(t, "a new client");
	harness_tls_close(t);
	bytes_free(&hello);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	fixture_wait_exit(&fx);
	ck_assert_int_eq(fixture_log_limited(fx.log, "TLS handshake not completed", "TLS handshakes timed out",
					     NULL, NULL), FLOOD_N);
	fixture_cleanup(&fx);
}
END_TEST

/* ---- 5. oversized ClientHellos ------------------------------------------------------------ */

/* The oversized inputs, and how sluice (OpenSSL) answers each. */
enum oversized {
	BIG_RECORD_18K,      /* a real ClientHello padded to 18 KiB in one record */
	BIG_RECORD_HEADER,   /* a record header announcing 65535 bytes, then 1 KiB */
	BIG_HANDSHAKE_16M,   /* a handshake header announcing a 16 MiB ClientHello */
	BIG_HELLO_FRAGMENTED /* a real 40 KiB ClientHello, split into records as TLS allows */
};

static const char *const oversized_name[] = {
	"an 18 KiB record holding a padded ClientHello",
	"a record header announcing 65535 bytes, then 1 KiB",
	"a handshake header announcing a 16 MiB ClientHello",
	"a 40 KiB ClientHello in records of at most 16 KiB",
};

#define OVERSIZED_TRIES 20

/* The bytes case k sends. */
static void
oversized_bytes(enum oversized k, struct bytes *out)
{
	static const uint16_t suites[] = { 0xc02b, 0xc02f };
	struct hello h = { .suites = suites, .n_suites = 2 };
	struct bytes msg = { 0 };
	size_t base;

	switch (k) {
	case BIG_RECORD_18K:
		hello_message(&h, &msg);
		base = msg.len;
		bytes_free(&msg);
		h.grease_len = 18 * 1024 - base - 4;   /* - the extension's own header */
		hello_message(&h, &msg);
		ck_assert_uint_eq(msg.len, 18 * 1024);
		record_put(out, REC_HANDSHAKE, TLS1_VERSION, msg.p, msg.len);
		break;
	case BIG_RECORD_HEADER:
		bytes_u8(out, REC_HANDSHAKE);
		bytes_u16(out, TLS1_VERSION);
		bytes_u16(out, 0xffff);
		for (int i = 0; i < 1024; i++)
			bytes_u8(out, i == 0 ? HS_CLIENT_HELLO : 0);
		break;
	case BIG_HANDSHAKE_16M:
		/* A message of 2^24 - 1 bytes, its first record full. */
		bytes_u8(&msg, HS_CLIENT_HELLO);
		bytes_u8(&msg, 0xff);
		bytes_u16(&msg, 0xffff);
		bytes_u16(&msg, TLS1_2_VERSION);
		while (msg.len < 16384)
			bytes_u8(&msg, 0);
		record_put(out, REC_HANDSHAKE, TLS1_VERSION, msg.p, msg.len);
		break;
	case BIG_HELLO_FRAGMENTED:
		ck_abort_msg("case %d is a real client, not bytes", (int)k);
		break;
	}
	bytes_free(&msg);
}

/* One try of a refused case: the answer is a fatal alert (the reason
 * below) sent at once, and the connection closes promptly. Returns the
 * milliseconds from the send to the close. */
static int64_t
oversized_refused(const struct fixture *fx, enum oversized k, const struct bytes *b)
{
	static const uint8_t want[] = {
		[BIG_RECORD_18K] = ALERT_RECORD_OVERFLOW,
		[BIG_RECORD_HEADER] = ALERT_RECORD_OVERFLOW,
		[BIG_HANDSHAKE_16M] = ALERT_ILLEGAL_PARAMETER,
	};
	int fd = raw_connect(fx->port);
	int64_t t0 = fixture_mono_ms(), closed;
	struct answer a;
	char d[128];

	/* sluice may refuse before it has read it all; a reset then is fine. */
	(void)raw_send(fd, b->p, b->len);
	answer_read(fd, &a);
	ck_assert_msg(a.kind == ANS_ALERT && a.level == 2 && a.alert == want[k],
		      "%s: expected fatal alert %u, got %s", oversized_name[k], want[k],
		      answer_desc(&a, d, sizeof(d)));
	closed = raw_wait_closed(fd, T_PROMPT_MS);
	ck_assert_msg(closed >= 0, "%s: the connection was not closed within %d ms", oversized_name[k],
		      T_PROMPT_MS);
	close(fd);
	return fixture_mono_ms() - t0;
}

/* Oversized ClientHellos, each 20 times, handshake_timeout 30 s:
 *   - a record longer than TLS's 16 KiB (+ 2 KiB) limit, whole or only
 *     announced, is refused with record_overflow as soon as its header
 *     is read, without waiting for (or buffering) the rest;
 *   - a handshake header announcing a 16 MiB ClientHello is refused with
 *     illegal_parameter after the first record (OpenSSL caps a ClientHello
 *     at 128 KiB), the rest never awaited;
 *   - a 40 KiB ClientHello split into records of at most 16 KiB is legal
 *     TLS (RFC 8446 §5.1: handshake messages may span records) and is
 *     served, its memory returned after the handshake.
 * An established client keeps working, and sluice's resident memory after
 * the 20 tries is within 4 MiB of before. */
START_TEST(test_oversized_client_hello)
{
	enum oversized k = (enum oversized)_i;
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1, .limits = "  handshake_timeout: 30s\n" };
	struct harness_tls *bystander;
	struct bytes b = { 0 };
	long rss0, rss1;
	int64_t worst = 0, ms;
	int reason;
	char why[256];

	sec_up(&fx, &o);
	bystander = fixture_connect(&fx);
	fixture_round_trip(bystander, "bystander before");
	rss0 = fixture_rss_kib(&fx);
	if (k != BIG_HELLO_FRAGMENTED)
		oversized_bytes(k, &b);
	for (int i = 0; i < OVERSIZED_TRIES; i++) {
		if (k == BIG_HELLO_FRAGMENTED) {
			size_t grease = 40 * 1024;
			SSL_CTX *ctx = grease_ctx(&grease);
			struct sc_opts so = { 0 };
			struct sc *c;

			ms = fixture_mono_ms();
			c = sc_connect(ctx, fx.port, &so, &reason, why, sizeof(why));
			ck_assert_msg(c != NULL, "%s: %s", oversized_name[k], why);
			ms = fixture_mono_ms() - ms;
			sc_round_trip(c, "a big hello");
			sc_free(c);
			SSL_CTX_free(ctx);
		} else {
			ms = oversized_refused(&fx, k, &b);
		}
		if (ms > worst)
			worst = ms;
		fixture_round_trip(bystander, "bystander during");
	}
	if (k != BIG_HELLO_FRAGMENTED)
		fixture_wait_metric(&fx, "sluice_tls_handshake_failures_total", OVERSIZED_TRIES,
				    FIXTURE_METRIC_COUNTER);
	rss1 = fixture_rss_kib(&fx);
	fprintf(stderr, "check_security: %s: %s %d times, slowest %lld ms; sluice VmRSS %ld -> %ld KiB\n",
		oversized_name[k], k == BIG_HELLO_FRAGMENTED ? "served" : "refused and closed",
		OVERSIZED_TRIES, (long long)worst, rss0, rss1);
	expect_rss_growth_below(&fx, rss1 - rss0, RSS_LEFTOVER_KIB, oversized_name[k]);
	fixture_round_trip(bystander, "bystander after");
	harness_tls_close(bystander);
	bytes_free(&b);
	fixture_down(&fx);
}
END_TEST

/* ---- 6. records split byte by byte ------------------------------------------------------ */

#define DRIBBLE_FRAMES 24
/* Clients dribbling at once, one byte each in turn. */
#define DRIBBLERS 20

/* Where a dribbling client is in its session. */
enum dribble_step {
	DR_HANDSHAKE,     /* SSL_connect, one byte per turn */
	DR_REQUESTS,      /* the pipelined requests, one byte per turn, once all handshakes are done */
	DR_ANSWERS,       /* reading their answers */
	DR_QUIT,          /* the QUIT frame, one byte per turn */
	DR_QUIT_ANSWER,   /* reading sluice's QUIT */
	DR_CLOSE,         /* reading close_notify */
	DR_DONE
};

static const char *const dribble_step_name[] = { "handshake", "requests", "answers", "QUIT",
						 "QUIT's answer", "close_notify", "done" };

struct dribbler {
	struct sc *c;
	enum dribble_step step;
	int answers;               /* answers received and checked */
	int64_t handshake_ms;      /* from the first byte to SSL_connect's success */
};

/* What every dribbler sends after its handshake: request i of the
 * DRIBBLE_FRAMES carries lens[i] bytes (1 to about 1,000) of
 * dribble_payload(i); all are written at once (pipelined), so they travel
 * in one TLS record; then the QUIT frame. */
static void
dribble_payload(int i, uint32_t len, uint8_t *payload)
{
	for (uint32_t j = 0; j < len; j++)
		payload[j] = (uint8_t)('a' + (i + (int)j) % 26);
}

static void
dribble_requests(struct bytes *requests, struct bytes *quit, uint32_t lens[DRIBBLE_FRAMES])
{
	uint8_t prefix[6], payload[1100];

	for (int i = 0; i < DRIBBLE_FRAMES; i++) {
		lens[i] = 1 + (uint32_t)(i * 43) % 1024;
		dribble_payload(i, lens[i], payload);
		harness_frame_prefix(prefix, 0, 6 + lens[i]);
		bytes_put(requests, prefix, sizeof(prefix));
		bytes_put(requests, payload, lens[i]);
	}
	harness_frame_prefix(prefix, 4, 10);
	bytes_put(quit, prefix, sizeof(prefix));
	bytes_put(quit, "QUIT", 4);
}

/* An SSL call of dribbler i that did not finish must be waiting for a
 * turn or for sluice, nothing else. */
static void
dribble_must_wait(const struct dribbler *d, int i, int rc)
{
	int err = SSL_get_error(d->c->ssl, rc);
	char why[256];

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	sc_error(why, sizeof(why));
	ck_abort_msg("dribbling client %d, %s: SSL error %d: %s", i, dribble_step_name[d->step], err, why);
}

/* One turn of dribbling client i: at most one byte sent (requests only
 * once go is set), whatever sluice has sent taken and checked. Returns 1
 * when it moved on (sent a byte, took an answer, finished a step), 0 when
 * it waits for sluice or for go. */
static int
dribble_turn(struct dribbler *d, int i, int version, int go, const struct bytes *requests,
	     const struct bytes *quit, const uint32_t lens[DRIBBLE_FRAMES], int64_t start)
{
	struct sc *c = d->c;
	const struct bytes *out;
	enum dribble_step step = d->step;
	uint64_t sent = c->sent;
	int answers = d->answers, rc;
	struct harness_frame f;
	uint8_t payload[1100];
	char desc[160];

	c->budget = 1;
	ERR_clear_error();
	switch (d->step) {
	case DR_HANDSHAKE:
		rc = SSL_connect(c->ssl);
		if (rc != 1) {
			dribble_must_wait(d, i, rc);
			break;
		}
		d->handshake_ms = fixture_mono_ms() - start;
		ck_assert_int_eq(SSL_version(c->ssl), version);
		d->step = DR_REQUESTS;
		break;
	case DR_REQUESTS:
	case DR_QUIT:
		if (d->step == DR_REQUESTS && !go)
			break;
		out = d->step == DR_REQUESTS ? requests : quit;
		rc = SSL_write(c->ssl, out->p, (int)out->len);
		if (rc <= 0) {
			dribble_must_wait(d, i, rc);
			break;
		}
		ck_assert_int_eq(rc, (int)out->len);
		d->step++;
		break;
	case DR_ANSWERS:
	case DR_QUIT_ANSWER:
	case DR_CLOSE:
		while (d->step == DR_ANSWERS || d->step == DR_QUIT_ANSWER || d->step == DR_CLOSE) {
			rc = sc_try_frame(c, &f);
			if (rc == 2)
				break;
			if (d->step == DR_CLOSE) {
				ck_assert_msg(rc == 1, "dribbling client %d: no close_notify after QUIT (%d)", i, rc);
				d->step = DR_DONE;
				break;
			}
			ck_assert_msg(rc == 0, "dribbling client %d: %s %d did not come (%d)", i,
				      d->step == DR_ANSWERS ? "answer" : "QUIT, after answer", d->answers, rc);
			if (d->step == DR_ANSWERS) {
				dribble_payload(d->answers, lens[d->answers], payload);
				ck_assert_msg(f.header_len == 0 && f.payload_len == lens[d->answers] &&
					      memcmp(f.payload, payload, lens[d->answers]) == 0,
					      "dribbling client %d: answer %d is %s", i, d->answers,
					      fixture_frame_desc(&f, desc, sizeof(desc)));
				if (++d->answers == DRIBBLE_FRAMES)
					d->step = DR_QUIT;
			} else {
				ck_assert_msg(harness_frame_is_quit(&f), "dribbling client %d: expected QUIT, "
					      "got %s", i, fixture_frame_desc(&f, desc, sizeof(desc)));
				d->step = DR_CLOSE;
			}
			harness_frame_free(&f);
		}
		break;
	case DR_DONE:
		break;
	}
	return c->sent != sent || d->step != step || d->answers != answers;
}

/* DRIBBLERS real clients at once (TLS 1.2, then 1.3), each sending every
 * byte in a TCP segment of its own (a BIO that sends one byte per call,
 * TCP_NODELAY), one byte per client in turn, so that all of them hold
 * records cut at every offset in sluice at the same time: the handshakes;
 * once all are done (sluice then holds DRIBBLERS + 1 connections), 24
 * pipelined requests of 1 to about 1,000 bytes written at once (12 KiB in
 * one record); the QUIT handshake. Each request is answered with its own
 * payload, in order, then QUIT and close_notify. An established client,
 * connected before, does round trips in a thread of its own all along,
 * each under T_BYSTANDER_MS; sluice's resident memory, sampled every 20 ms
 * while they dribble, grows by less than RSS_LEFTOVER_KIB. As in
 * the other abuse tests, the latency is not asserted under valgrind, nor
 * the memory under ASan or valgrind (expect_rss_growth_below). */
START_TEST(test_records_byte_by_byte)
{
	static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };
	struct fixture fx;
	struct fixture_opts o = { .admin = 1, .untraced = 1 };
	struct sc_opts so = { .one_byte = 1 };
	struct dribbler dr[DRIBBLERS];
	struct pollfd pfd[DRIBBLERS];
	struct bytes requests = { 0 }, quit = { 0 };
	struct bystander b;
	struct harness_tls *t;
	pthread_t th;
	SSL_CTX *ctx;
	struct sc *c;
	uint32_t lens[DRIBBLE_FRAMES];
	int64_t start, moved_at, sampled_at, now, all_in_ms = -1, slowest_handshake = 0, session_ms;
	long rss0, rss, rss_peak, rss_all_in = 0;
	uint64_t segments = 0;
	unsigned trips0, trips;
	const char *under;
	char why[256];
	int reason, n_done = 0, go = 0;

	sec_up(&fx, &o);
	under = fixture_instrumented(&fx, FIXTURE_ASAN | FIXTURE_VALGRIND);
	ctx = sc_ctx(versions[_i], versions[_i]);
	dribble_requests(&requests, &quit, lens);
	/* Warm up: what the first handshakes allocate once (OpenSSL's tables,
	 * the session cache) is not the dribbling's. */
	for (int i = 0; i < DRIBBLERS; i++) {
		struct sc_opts plain = { 0 };

		t = fixture_connect(&fx);
		fixture_round_trip(t, "warm-up");
		harness_tls_close(t);
		c = sc_connect(ctx, fx.port, &plain, &reason, why, sizeof(why));
		ck_assert_msg(c != NULL, "warm-up: %s", why);
		sc_round_trip(c, "warm-up");
		sc_free(c);
	}
	memset(&b, 0, sizeof(b));
	b.t = fixture_connect(&fx);
	fixture_round_trip(b.t, "bystander before");
	wait_active(&fx, 1);
	rss0 = rss_peak = fixture_rss_kib(&fx);
	ck_assert_int_eq(pthread_create(&th, NULL, bystander_run, &b), 0);
	bystander_wait_trips(&b, 10);
	trips0 = __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE);

	start = moved_at = sampled_at = fixture_mono_ms();
	for (int i = 0; i < DRIBBLERS; i++) {
		dr[i] = (struct dribbler){ .c = sc_start(ctx, fx.port, &so), .step = DR_HANDSHAKE };
		dr[i].c->paced = 1;
	}
	while (n_done < DRIBBLERS) {
		int moved = 0, n_wait = 0, all_in = 1;

		for (int i = 0; i < DRIBBLERS; i++) {
			if (dr[i].step == DR_DONE)
				continue;
			moved |= dribble_turn(&dr[i], i, versions[_i], go, &requests, &quit, lens, start);
			if (dr[i].step == DR_DONE)
				n_done++;
			else
				pfd[n_wait++] = (struct pollfd){ .fd = dr[i].c->fd, .events = POLLIN };
			all_in &= dr[i].step != DR_HANDSHAKE;
		}
		now = fixture_mono_ms();
		if (now - sampled_at >= 20) {   /* sampling period */
			rss = fixture_rss_kib(&fx);
			if (rss > rss_peak)
				rss_peak = rss;
			sampled_at = now;
		}
		if (all_in && !go) {
			/* Every handshake done, no request sent yet: all are held. */
			wait_active(&fx, DRIBBLERS + 1);
			rss_all_in = fixture_rss_kib(&fx);
			if (rss_all_in > rss_peak)
				rss_peak = rss_all_in;
			all_in_ms = fixture_mono_ms() - start;
			go = 1;
			moved = 1;
		}
		if (moved) {
			moved_at = now;
			continue;
		}
		ck_assert_msg(now - moved_at < T_IO_MS, "dribbling stalled: no client moved for %d ms "
			      "(%d of %d done)", T_IO_MS, n_done, DRIBBLERS);
		/* All wait for sluice. */
		ck_assert_msg(poll(pfd, (nfds_t)n_wait, 10) >= 0 || errno == EINTR, "poll: %s",
			      strerror(errno));
	}
	session_ms = fixture_mono_ms() - start;
	rss = fixture_rss_kib(&fx);
	if (rss > rss_peak)
		rss_peak = rss;
	trips = __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE) - trips0;
	bystander_stop(&b, th);

	for (int i = 0; i < DRIBBLERS; i++) {
		c = dr[i].c;
		ck_assert_msg(c->sends == c->sent && c->sent > requests.len,
			      "dribbling client %d: %llu bytes in %llu sends: not one byte each", i,
			      (unsigned long long)c->sent, (unsigned long long)c->sends);
		segments += c->sends;
		if (dr[i].handshake_ms > slowest_handshake)
			slowest_handshake = dr[i].handshake_ms;
		c->paced = 0;
		sc_free(c);
	}
	fprintf(stderr, "check_security: %s, %d clients at once, one byte per TCP segment: handshakes "
		"done in %lld ms (slowest %lld ms), %llu segments in all, %lld ms for the sessions; "
		"sluice VmRSS %ld KiB before, %ld with all handshakes done, %ld at most (+%ld KiB, "
		"%.1f KiB per client)%s%s; the established client did %u round trips meanwhile, "
		"slowest %lld ms, mean %.2f ms\n", versions[_i] == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3",
		DRIBBLERS, (long long)all_in_ms, (long long)slowest_handshake,
		(unsigned long long)segments, (long long)session_ms, rss0, rss_all_in, rss_peak,
		rss_peak - rss0, (double)(rss_peak - rss0) / DRIBBLERS, under != NULL ? " under " : "",
		under != NULL ? under : "", trips, (long long)b.max_ms,
		(double)b.total_ms / __atomic_load_n(&b.trips, __ATOMIC_ACQUIRE));
	ck_assert_msg(trips > 0, "the established client did no round trip while the others dribbled");
	if (under == NULL || strcmp(under, "valgrind") != 0)
		ck_assert_msg(b.max_ms < T_BYSTANDER_MS, "a round trip of the established client took "
			      "%lld ms (limit %d ms)", (long long)b.max_ms, T_BYSTANDER_MS);
	snprintf(why, sizeof(why), "%d clients dribbling", DRIBBLERS);
	expect_rss_growth_below(&fx, rss_peak - rss0, RSS_LEFTOVER_KIB, why);

	wait_active(&fx, 1);
	fixture_round_trip(b.t, "bystander after");
	harness_tls_close(b.t);
	SSL_CTX_free(ctx);
	bytes_free(&requests);
	bytes_free(&quit);
	fixture_down(&fx);
}
END_TEST

/* ---- 7. garbage after the handshake -------------------------------------------------------- */

/* Bytes that repeat nowhere nearby, from a fixed seed: the same garbage in
 * every run. */
static void
garbage_fill(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
}

/* After a round trip, bytes that are not a TLS record sluice can accept
 * go straight to the socket, under the client's TLS: 256 random bytes
 * (case 0; not even a record header), or an application_data record of
 * the right shape whose 64 bytes fail authentication (case 1: a forged
 * or corrupted record). sluice closes that connection promptly and logs
 * it (at debug level: "closed (reset)"); another established
 * client and a new one are served as before. */
START_TEST(test_garbage_after_handshake)
{
	struct fixture fx;
	struct fixture_opts o = { .untraced = 1 };
	struct harness_tls *bystander, *victim, *t;
	uint8_t junk[256];
	size_t len;
	int64_t closed;
	int errors0;

	sec_up(&fx, &o);
	bystander = fixture_connect(&fx);
	fixture_round_trip(bystander, "bystander before");
	victim = fixture_connect(&fx);
	fixture_round_trip(victim, "victim before");
	errors0 = fixture_count_log(&fx, "closed (reset)");
	garbage_fill(junk, sizeof(junk), 0x5eed1234u + (uint32_t)_i);
	if (_i == 0) {
		junk[0] = 0x99;         /* no TLS content type */
		len = sizeof(junk);
	} else {
		junk[0] = 0x17;         /* application_data, TLS 1.2, 64 bytes */
		junk[1] = 0x03;
		junk[2] = 0x03;
		junk[3] = 0x00;
		junk[4] = 64;
		len = 5 + 64;
	}
	ck_assert_int_eq(raw_send(harness_tls_fd(victim), junk, len), 0);
	closed = raw_wait_closed(harness_tls_fd(victim), T_PROMPT_MS);
	ck_assert_msg(closed >= 0, "sluice did not close a connection that sent garbage");
	fprintf(stderr, "check_security: garbage after the handshake (%s): closed in %lld ms\n",
		_i == 0 ? "random bytes" : "a forged record", (long long)closed);
	harness_tls_abort(victim);
	fixture_wait_log_count(&fx, "closed (reset)", errors0 + 1);
	fixture_round_trip(bystander, "bystander after");
	harness_tls_close(bystander);
	t = fixture_connect(&fx);
	fixture_round_trip(t, "a new client");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

static Suite *
security_suite(void)
{
	Suite *s = suite_create("security");
	TCase *policy = tcase_create("policy");
	TCase *abuse = tcase_create("abuse");
	TCase *listen = tcase_create("listen");

	tcase_set_timeout(policy, 120);
	tcase_add_test(policy, test_protocol_floor);
	tcase_add_test(policy, test_cipher_suites_openssl);
	tcase_add_test(policy, test_cipher_suites_code_points);
	tcase_add_test(policy, test_tls13_suites_and_groups);
	tcase_add_test(policy, test_compression_and_secure_renegotiation);
	tcase_add_test(policy, test_renegotiation_refused);
	tcase_add_test(policy, test_tls13_key_update);
	tcase_add_test(policy, test_no_early_data);
	tcase_add_test(policy, test_private_key_in_secure_heap);
	suite_add_tcase(s, policy);

	tcase_set_timeout(abuse, 120);
	tcase_add_test(abuse, test_handshake_flood);
	tcase_add_test(abuse, test_handshake_flood_timeout);
	tcase_add_loop_test(abuse, test_oversized_client_hello, BIG_RECORD_18K, BIG_HELLO_FRAGMENTED + 1);
	tcase_add_loop_test(abuse, test_records_byte_by_byte, 0, 2);
	tcase_add_loop_test(abuse, test_garbage_after_handshake, 0, 2);
	suite_add_tcase(s, abuse);

	tcase_set_timeout(listen, 120);
	tcase_add_test(listen, test_listen_backlog_not_128);
	tcase_add_test(listen, test_memory_returned_after_burst);
	suite_add_tcase(s, listen);
	return s;
}

int
main(void)
{
	/* A peer gone while a client of this file's own writes must fail the
	 * write, not kill the test (OpenSSL's socket BIO uses write(2)). */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return EXIT_FAILURE;
	fixture_set_deadlines(T_START_MS, T_EXIT_MS);
	return fixture_run_suite(security_suite());
}
