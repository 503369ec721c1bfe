/*
 * check_fleet — SPEC §8's PROXY protocol and per-address limit through the
 * real sluice binary, and the fleet in miniature:
 *
 *   - the test itself sends v1 and v2 headers before its TLS ClientHello
 *     (apart, in one write with it, one byte at a time); the header's
 *     client shows up in sluice's log lines; LOCAL keeps the socket's
 *     peer; a missing, garbled, late, oversized or wrong-version header
 *     closes the connection and is counted; a client outside
 *     proxy_trusted (a socket bound to 127.0.0.5) is refused;
 *   - limits.max_connections_per_address, with and without a header,
 *     across two workers: the next connection is refused, a freed slot
 *     is taken again, other addresses are unaffected;
 *   - Debian's haproxy in TCP mode with send-proxy-v2 in front of two
 *     sluice instances sharing one ticket_keys file: clients are served,
 *     each instance logs the client's own address, and a session ticket
 *     from one resumes on the other.
 *
 * Every wait polls with a deadline; every loop is bounded.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

/* The v2 signature (proxy-protocol.txt §2.2). */
static const uint8_t v2sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* How the header and the ClientHello go out. */
enum send_how {
	SEND_APART,       /* the header, then the ClientHello */
	SEND_TOGETHER,    /* both in one write */
	SEND_DRIBBLE,     /* the header one byte per write, then the ClientHello */
};

/* What a sluice of this program listens with. */
struct fleet_conf {
	const char *proxy_protocol;   /* NULL: off */
	const char *trusted;          /* proxy_trusted's flow sequence */
	const char *per_address;      /* limits.max_connections_per_address, or NULL */
	const char *ticket_keys;      /* a path, or NULL */
	const char *cert_dir;         /* where server.crt is: NULL, the folder */
	const char *handshake_timeout; /* ["5s"] */
	int workers;                  /* [2] */
};

static void
fleet_config(const struct fixture *fx, const struct fleet_conf *c)
{
	char text[16384], pp[512] = "", tk[PATH_MAX + 64] = "", lim[128] = "";
	const char *dir = c->cert_dir ? c->cert_dir : fx->dir;

	if (c->proxy_protocol != NULL)
		snprintf(pp, sizeof(pp), "    proxy_protocol: %s\n    proxy_trusted: %s\n", c->proxy_protocol,
			 c->trusted ? c->trusted : "[127.0.0.1/32]");
	if (c->ticket_keys != NULL)
		snprintf(tk, sizeof(tk), "      ticket_keys: %s\n", c->ticket_keys);
	if (c->per_address != NULL)
		snprintf(lim, sizeof(lim), "  max_connections_per_address: %s\n", c->per_address);
	snprintf(text, sizeof(text),
		 "workers: %d\n"
		 "listen:\n"
		 "  - address: 127.0.0.1:%u\n"
		 "    backend: app\n"
		 "%s"
		 "    tls:\n"
		 "      certificates:\n"
		 "        - cert: %s/server.crt\n"
		 "          key: %s/server.key\n"
		 "%s"
		 "backends:\n"
		 "  app:\n"
		 "    servers:\n"
		 "      - address: 127.0.0.1:%u\n"
		 "    connections: 2\n"
		 "    connect_timeout: 1s\n"
		 "limits:\n"
		 "  handshake_timeout: %s\n"
		 "%s"
		 "shutdown:\n"
		 "  grace_timeout: 2s\n"
		 "admin:\n"
		 "  address: 127.0.0.1:%u\n"
		 "log:\n"
		 "  level: debug\n",
		 c->workers ? c->workers : 2, fx->port, pp, dir, dir, tk, fx->echo_port[0],
		 c->handshake_timeout ? c->handshake_timeout : "5s", lim, fx->admin_port);
	fixture_write_text(fx, text);
}

static void
fleet_up(struct fixture *fx, const struct fleet_conf *c)
{
	struct fixture_opts o = { .admin = 1 };

	fixture_prepare(fx, &o);
	fleet_config(fx, c);
	fixture_spawn_sluice(fx);
}

/* ---- a client that speaks first --------------------------------------- */

/* A TCP connection from src (a 127.x address) to 127.0.0.1:port, blocking,
 * with FIXTURE_IO_MS on every read and write. */
static int
tcp_from(const char *src, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { T_IO_MS / 1000, 0 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET, src, &a.sin_addr), 1);
	ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s: %s", src, strerror(errno));
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	a.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
	return fd;
}

static uint16_t
local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* 0, or -1 once the peer has closed or reset the connection. */
static int
send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether sluice closes fd within the deadline (a read that ends or
 * fails), anything it sends on the way read and dropped. */
static int
closed_by_peer(int fd)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	char sink[4096];

	while (fixture_mono_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
	return 0;
}

static SSL_CTX *
client_ctx(void)
{
	static SSL_CTX *ctx;

	if (ctx == NULL) {
		ctx = SSL_CTX_new(TLS_client_method());
		ck_assert_ptr_nonnull(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	}
	return ctx;
}

/* TLS over fd after hdr (may be empty), sent as how says: the ClientHello
 * is made into memory first, so that it can share a write with the header.
 * NULL when the handshake fails (sluice closed the connection). */
static SSL *
tls_after(int fd, const uint8_t *hdr, size_t hlen, enum send_how how, SSL_SESSION *resume)
{
	SSL *ssl = SSL_new(client_ctx());
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	uint8_t out[8192];
	char *hello;
	long hello_len;
	int rc = 0;

	ck_assert_ptr_nonnull(ssl);
	ck_assert(rb != NULL && wb != NULL);
	SSL_set_bio(ssl, rb, wb);
	ck_assert_int_eq(SSL_set_tlsext_host_name(ssl, "localhost"), 1);
	if (resume != NULL)
		ck_assert_int_eq(SSL_set_session(ssl, resume), 1);
	ck_assert_int_eq(SSL_connect(ssl), -1);
	hello_len = BIO_get_mem_data(wb, &hello);
	ck_assert(hello_len > 0 && hlen + (size_t)hello_len <= sizeof(out));
	if (hlen > 0)
		memcpy(out, hdr, hlen);
	memcpy(out + hlen, hello, (size_t)hello_len);
	if (how == SEND_TOGETHER) {
		rc = send_all(fd, out, hlen + (size_t)hello_len);
	} else if (how == SEND_DRIBBLE) {
		for (size_t i = 0; i < hlen && rc == 0; i++) {
			rc = send_all(fd, out + i, 1);
			usleep(2000);   /* pacing, so each byte is a segment of its own */
		}
	} else if (hlen > 0) {
		rc = send_all(fd, out, hlen);
	}
	if (rc == 0 && how != SEND_TOGETHER)
		rc = send_all(fd, out + hlen, (size_t)hello_len);
	/* The rest of the handshake on the socket itself. */
	ck_assert_int_eq(SSL_set_fd(ssl, fd), 1);
	if (rc < 0 || SSL_connect(ssl) != 1) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* A frame with no header and payload text, echoed back the same. */
static void
round_trip(SSL *ssl, const char *text)
{
	uint8_t frame[256], back[256];
	size_t n = strlen(text), got = 0;

	ck_assert_uint_le(n + 6, sizeof(frame));
	harness_frame_prefix(frame, 0, (uint32_t)(n + 6));
	memcpy(frame + 6, text, n);
	ck_assert_int_eq(SSL_write(ssl, frame, (int)(n + 6)), (int)(n + 6));
	while (got < n + 6) {
		int r = SSL_read(ssl, back + got, (int)(n + 6 - got));
		ck_assert_msg(r > 0, "no answer from sluice (SSL_read %d)", SSL_get_error(ssl, r));
		got += (size_t)r;
	}
	ck_assert_int_eq(memcmp(back, frame, n + 6), 0);
}

static void
tls_close(SSL *ssl, int fd)
{
	if (ssl != NULL) {
		if (SSL_shutdown(ssl) < 0)
			ERR_clear_error();
		SSL_free(ssl);
	}
	close(fd);
}

static size_t
v1(uint8_t *out, size_t len, const char *line)
{
	size_t n = strlen(line);

	ck_assert_uint_lt(n, len);
	memcpy(out, line, n);
	return n;
}

/* A v2 PROXY header for TCP over IPv4 from src:sport (to 127.0.0.1:443). */
static size_t
v2_inet(uint8_t *out, const char *src, uint16_t sport)
{
	memcpy(out, v2sig, 12);
	out[12] = 0x21;
	out[13] = 0x11;
	out[14] = 0;
	out[15] = 12;
	ck_assert_int_eq(inet_pton(AF_INET, src, out + 16), 1);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", out + 20), 1);
	out[24] = (uint8_t)(sport >> 8);
	out[25] = (uint8_t)sport;
	out[26] = 0x01;
	out[27] = 0xbb;
	return 28;
}

/* Connects from 127.0.0.1 with hdr, completes TLS and a round trip. */
static void
served_with(const struct fixture *fx, const uint8_t *hdr, size_t hlen, enum send_how how)
{
	int fd = tcp_from("127.0.0.1", fx->port);
	SSL *ssl = tls_after(fd, hdr, hlen, how, NULL);

	ck_assert_msg(ssl != NULL, "sluice refused a client with a valid PROXY header");
	round_trip(ssl, "through the balancer");
	tls_close(ssl, fd);
}

/* Connects from src with bytes, which sluice must answer by closing. */
static void
closed_after(const struct fixture *fx, const char *src, const void *bytes, size_t len)
{
	int fd = tcp_from(src, fx->port);

	if (len > 0)
		(void)send_all(fd, bytes, len);   /* sluice may have closed already */
	ck_assert_msg(closed_by_peer(fd), "sluice kept a connection it should have closed");
	close(fd);
}

static void
wait_counter(const struct fixture *fx, const char *series, double want)
{
	fixture_wait_metric(fx, series, want, FIXTURE_METRIC_COUNTER);
}

/* ---- PROXY protocol ----------------------------------------------------- */

START_TEST(test_v1_header_gives_the_client_address)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "any" };
	uint8_t h[128];

	fleet_up(&fx, &c);
	served_with(&fx, h, v1(h, sizeof(h), "PROXY TCP4 192.0.2.1 127.0.0.1 40001 443\r\n"), SEND_APART);
	fixture_wait_log_count(&fx, "client 192.0.2.1:40001: connected", 1);
	served_with(&fx, h, v1(h, sizeof(h), "PROXY TCP6 2001:db8::2 ::1 40002 443\r\n"), SEND_TOGETHER);
	fixture_wait_log_count(&fx, "client [2001:db8::2]:40002: connected", 1);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_proxy_protocol_errors_total"), 0);
	fixture_down(&fx);
}
END_TEST

START_TEST(test_v2_header_apart_together_dribbled)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v2" };
	uint8_t h[64];

	fleet_up(&fx, &c);
	served_with(&fx, h, v2_inet(h, "192.0.2.3", 40003), SEND_APART);
	served_with(&fx, h, v2_inet(h, "192.0.2.4", 40004), SEND_TOGETHER);
	served_with(&fx, h, v2_inet(h, "192.0.2.5", 40005), SEND_DRIBBLE);
	fixture_wait_log_count(&fx, "client 192.0.2.3:40003: connected", 1);
	fixture_wait_log_count(&fx, "client 192.0.2.4:40004: connected", 1);
	fixture_wait_log_count(&fx, "client 192.0.2.5:40005: connected", 1);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_proxy_protocol_errors_total"), 0);
	fixture_down(&fx);
}
END_TEST

/* LOCAL (a balancer's own check): accepted, the socket's peer stands. */
START_TEST(test_v2_local_keeps_the_peer)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v2" };
	uint8_t h[16];
	char want[64];

	fleet_up(&fx, &c);
	memcpy(h, v2sig, 12);
	h[12] = 0x20;
	h[13] = 0x00;
	h[14] = h[15] = 0;
	int fd = tcp_from("127.0.0.1", fx.port);
	SSL *ssl = tls_after(fd, h, sizeof(h), SEND_APART, NULL);
	ck_assert_ptr_nonnull(ssl);
	round_trip(ssl, "local");
	snprintf(want, sizeof(want), "client 127.0.0.1:%u: connected", local_port(fd));
	tls_close(ssl, fd);
	fixture_wait_log_count(&fx, want, 1);
	fixture_down(&fx);
}
END_TEST

/* A missing, garbled, oversized or wrong-version header, and one cut off
 * by the client: closed, counted, logged with the balancer's address. */
START_TEST(test_bad_headers_are_closed_and_counted)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v1" };
	uint8_t h[64];
	int fd;

	fleet_up(&fx, &c);
	/* A ClientHello with no header. */
	fd = tcp_from("127.0.0.1", fx.port);
	ck_assert_ptr_null(tls_after(fd, NULL, 0, SEND_APART, NULL));
	close(fd);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 1);
	closed_after(&fx, "127.0.0.1", "GET / HTTP/1.0\r\n\r\n", 18);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 2);
	closed_after(&fx, "127.0.0.1", "PROXY TCP4 192.0.2.9 127.0.0.1 99999 443\r\n", 42);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 3);
	/* A v2 header on a listener that takes v1. */
	closed_after(&fx, "127.0.0.1", h, v2_inet(h, "192.0.2.6", 40006));
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 4);
	wait_counter(&fx, "sluice_connections_closed_total{reason=\"protocol_error\"}", 4);
	/* Half a header, then the client goes. */
	fd = tcp_from("127.0.0.1", fx.port);
	ck_assert_int_eq(send_all(fd, "PROXY TCP4 ", 11), 0);
	close(fd);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 5);
	/* The ClientHello and the GET. */
	fixture_wait_log_count(&fx, "PROXY header: no PROXY protocol signature", 2);
	fixture_wait_log_count(&fx, "PROXY header: v1: bad port", 1);
	fixture_wait_log_count(&fx, "PROXY header: v2 header on a listener that takes v1 only", 1);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_connections_total"), 0);
	/* A TCP check that connects and leaves is not an error. */
	close(tcp_from("127.0.0.1", fx.port));
	wait_counter(&fx, "sluice_connections_closed_total{reason=\"no_hello\"}", 1);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_proxy_protocol_errors_total"), 5);
	fixture_down(&fx);
}
END_TEST

START_TEST(test_oversized_v2_header)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "any" };
	uint8_t h[64];

	fleet_up(&fx, &c);
	v2_inet(h, "192.0.2.7", 40007);
	h[14] = 0xff;
	h[15] = 0xff;
	closed_after(&fx, "127.0.0.1", h, 28);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 1);
	fixture_wait_log_count(&fx, "PROXY header: v2: header longer than 4096 bytes", 1);
	fixture_down(&fx);
}
END_TEST

/* A header that never completes: closed at handshake_timeout. */
START_TEST(test_late_header_times_out)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v1", .handshake_timeout = "1s" };
	int64_t t0;
	int fd;

	fleet_up(&fx, &c);
	fd = tcp_from("127.0.0.1", fx.port);
	t0 = fixture_mono_ms();
	ck_assert_int_eq(send_all(fd, "PROXY TCP4 192.0.2.8", 20), 0);
	ck_assert_msg(closed_by_peer(fd), "a header that never ends was not cut off");
	ck_assert_int_ge(fixture_mono_ms() - t0, 900);
	close(fd);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 1);
	wait_counter(&fx, "sluice_connections_closed_total{reason=\"handshake_timeout\"}", 1);
	fixture_wait_log_count(&fx, "no complete header within handshake_timeout", 1);
	fixture_down(&fx);
}
END_TEST

/* 127.0.0.5 is not in proxy_trusted: refused, even with a good header. */
/* A reload while a header is half sent is no refusal (SPEC §6): the
 * connection finishes its header and is served under the configuration
 * now in force. Fails against a sluice that closes it. */
START_TEST(test_reload_during_header_is_served)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v1", .workers = 1 };
	static const char head[] = "PROXY TCP4 192.0.2.9 127.0.0.1 40009";
	static const uint8_t tail[] = " 443\r\n";
	SSL *ssl;
	int fd;

	fleet_up(&fx, &c);
	fd = tcp_from("127.0.0.1", fx.port);
	ck_assert_int_eq(send_all(fd, head, sizeof(head) - 1), 0);
	c.handshake_timeout = "6s";
	fleet_config(&fx, &c);
	fixture_hup(&fx, 1);
	ssl = tls_after(fd, tail, sizeof(tail) - 1, SEND_APART, NULL);
	ck_assert_msg(ssl != NULL, "the connection was closed by the reload");
	round_trip(ssl, "after the reload");
	fixture_wait_log_count(&fx, "client 192.0.2.9:40009: connected", 1);
	tls_close(ssl, fd);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_proxy_protocol_errors_total"), 0);
	fixture_down(&fx);
}
END_TEST

START_TEST(test_untrusted_source_is_refused)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v2", .trusted = "[127.0.0.1/32]" };
	uint8_t h[64];
	int fd;

	fleet_up(&fx, &c);
	fd = tcp_from("127.0.0.5", fx.port);
	ck_assert_ptr_null(tls_after(fd, h, v2_inet(h, "192.0.2.10", 40010), SEND_TOGETHER, NULL));
	close(fd);
	wait_counter(&fx, "sluice_connections_refused_total", 1);
	wait_counter(&fx, "sluice_proxy_protocol_errors_total", 1);
	fixture_wait_log_count(&fx, "client 127.0.0.5:", 1);
	fixture_wait_log_count(&fx, "not in proxy_trusted", 1);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_connections_total"), 0);
	served_with(&fx, h, v2_inet(h, "192.0.2.10", 40010), SEND_TOGETHER);
	fixture_down(&fx);
}
END_TEST

/* A graceful stop closes a connection still sending its header: it has no
 * TLS to say QUIT on, and its session would start after the drain began.
 * One worker, kept draining by an idle established client. */
START_TEST(test_drain_closes_a_waiting_header)
{
	struct fixture fx;
	struct fleet_conf c = { .proxy_protocol = "v1", .workers = 1 };
	const char *rest = "192.0.2.30 127.0.0.1 40030 443\r\n";
	uint8_t h[128];
	int idle_fd, wait_fd;
	SSL *idle;

	fleet_up(&fx, &c);
	idle_fd = tcp_from("127.0.0.1", fx.port);
	idle = tls_after(idle_fd, h, v1(h, sizeof(h), "PROXY TCP4 192.0.2.31 127.0.0.1 40031 443\r\n"),
			 SEND_TOGETHER, NULL);
	ck_assert_ptr_nonnull(idle);
	round_trip(idle, "idle");
	wait_fd = tcp_from("127.0.0.1", fx.port);
	ck_assert_int_eq(send_all(wait_fd, "PROXY TCP4 ", 11), 0);
	ck_assert_int_eq(harness_signal(&fx.sluice, SIGTERM), 0);
	fixture_wait_log_count(&fx, "draining 1 client connections", 1);
	/* The rest of the header and a ClientHello: no handshake. */
	ck_assert_ptr_null(tls_after(wait_fd, (const uint8_t *)rest, strlen(rest), SEND_TOGETHER, NULL));
	close(wait_fd);
	ck_assert_int_eq(fixture_count_log(&fx, "client 192.0.2.30:40030: connected"), 0);
	tls_close(idle, idle_fd);
	fixture_wait_exit(&fx);
	fixture_cleanup(&fx);
}
END_TEST

/* ---- the per-address limit ---------------------------------------------- */

struct limited {
	int fd;
	SSL *ssl;
};

/* A client from src (its address in a v2 header when hdr_src is set);
 * ssl NULL when refused. */
static struct limited
limited_client(const struct fixture *fx, const char *src, const char *hdr_src, uint16_t sport)
{
	struct limited l;
	uint8_t h[64];
	size_t n = hdr_src != NULL ? v2_inet(h, hdr_src, sport) : 0;

	l.fd = tcp_from(src, fx->port);
	l.ssl = tls_after(l.fd, h, n, SEND_TOGETHER, NULL);
	if (l.ssl != NULL)
		round_trip(l.ssl, "limited");
	return l;
}

/* max_connections_per_address 2, with two workers: the third from one
 * address is refused, another address is served, and a slot that frees
 * is taken again. hdr: the addresses are the header's. */
static void
per_address(int hdr)
{
	struct fixture fx;
	struct fleet_conf c = { .per_address = "2" };
	const char *a = hdr ? "192.0.2.20" : "127.0.0.8", *b = hdr ? "192.0.2.21" : "127.0.0.9";
	const char *sock_a = hdr ? "127.0.0.1" : a, *sock_b = hdr ? "127.0.0.1" : b;
	struct limited one, two, three, other, again;

	if (hdr)
		c.proxy_protocol = "v2";
	fleet_up(&fx, &c);
	one = limited_client(&fx, sock_a, hdr ? a : NULL, 41001);
	two = limited_client(&fx, sock_a, hdr ? a : NULL, 41002);
	ck_assert(one.ssl != NULL && two.ssl != NULL);
	three = limited_client(&fx, sock_a, hdr ? a : NULL, 41003);
	ck_assert_msg(three.ssl == NULL, "a third connection from %s was served", a);
	close(three.fd);
	wait_counter(&fx, "sluice_connections_refused_total", 1);
	fixture_wait_log_count(&fx, "max_connections_per_address (2) reached", 1);
	other = limited_client(&fx, sock_b, hdr ? b : NULL, 41004);
	ck_assert_msg(other.ssl != NULL, "%s was refused for %s's connections", b, a);
	/* One of a's closes: once sluice has seen it, a may connect again. */
	tls_close(one.ssl, one.fd);
	fixture_wait_metric(&fx, "sluice_connections_active", 2, FIXTURE_METRIC_EQUAL);
	again = limited_client(&fx, sock_a, hdr ? a : NULL, 41005);
	ck_assert_msg(again.ssl != NULL, "the freed slot of %s was not given back", a);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_connections_refused_total"), 1);
	tls_close(again.ssl, again.fd);
	tls_close(other.ssl, other.fd);
	tls_close(two.ssl, two.fd);
	fixture_down(&fx);
}

START_TEST(test_per_address_limit_plain)
{
	per_address(0);
}
END_TEST

START_TEST(test_per_address_limit_behind_proxy)
{
	per_address(1);
}
END_TEST

/* ---- HAProxy in front of two instances ---------------------------------- */

/* haproxy's path, or NULL: skipped only outside CI. */
static const char *
haproxy_path(void)
{
	static const char *const where[] = { "/usr/sbin/haproxy", "/usr/bin/haproxy",
					     "/usr/local/sbin/haproxy", "/usr/local/bin/haproxy" };
	const char *env = getenv("SLUICE_HAPROXY");

	if (env != NULL && access(env, X_OK) == 0)
		return env;
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		if (access(where[i], X_OK) == 0)
			return where[i];
	}
	return NULL;
}

/* The configuration docs/FLEET.md shows. */
static void
haproxy_config(const char *path, uint16_t port, uint16_t s1, uint16_t s2)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "global\n"
		 "    maxconn 256\n"
		 "\n"
		 "defaults\n"
		 "    mode tcp\n"
		 "    timeout connect 5s\n"
		 "    timeout client 60s\n"
		 "    timeout server 60s\n"
		 "\n"
		 "frontend sluice_tls\n"
		 "    bind 127.0.0.1:%u\n"
		 "    default_backend sluices\n"
		 "\n"
		 "backend sluices\n"
		 "    balance roundrobin\n"
		 "    server sluice1 127.0.0.1:%u send-proxy-v2\n"
		 "    server sluice2 127.0.0.1:%u send-proxy-v2\n",
		 port, s1, s2);
	ck_assert_int_eq(harness_write_file(path, text), 0);
}

/* The second instance: its own folder, ports and log, the first one's
 * certificate, ticket keys and echo. */
static void
second_instance(struct fixture *fx2, const struct fixture *fx, const struct fleet_conf *c)
{
	memset(fx2, 0, sizeof(*fx2));
	ck_assert_int_eq(harness_tmpdir(fx2->dir, sizeof(fx2->dir)), 0);
	snprintf(fx2->conf, sizeof(fx2->conf), "%s/sluice.yaml", fx2->dir);
	snprintf(fx2->log, sizeof(fx2->log), "%s/sluice.log", fx2->dir);
	fx2->port = harness_free_port();
	fx2->admin_port = harness_free_port();
	ck_assert(fx2->port != 0 && fx2->admin_port != 0);
	fx2->echo_port[0] = fx->echo_port[0];
	fleet_config(fx2, c);
	fixture_spawn_sluice(fx2);
}

/* What an instance logs once for each client that came through haproxy. */
#define VIA_HAPROXY ": PROXY v2 header from 127.0.0.1:"

/* Polls until haproxy accepts a connection from 127.0.0.6 (not 127.0.0.1:
 * haproxy passes the probe on, and the instances log its address). */
static void
haproxy_wait(uint16_t port)
{
	int64_t deadline = fixture_mono_ms() + T_IO_MS;
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	int ok = 0;

	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.6", &src.sin_addr), 1);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr), 1);
	dst.sin_port = htons(port);
	while (!ok && fixture_mono_ms() < deadline) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
		ok = connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0;
		close(fd);
		if (!ok)
			usleep(20 * 1000);   /* the poll period */
	}
	ck_assert_msg(ok, "haproxy did not listen on %u", port);
}

START_TEST(test_haproxy_in_front_of_two_instances)
{
	struct fixture fx, fx2;
	struct harness_proc hap = { 0 };
	char keys[PATH_MAX + 16], cfg[PATH_MAX + 16], log[PATH_MAX + 16];
	const char *bin = haproxy_path();
	struct fleet_conf c = { .proxy_protocol = "v2", .trusted = "[127.0.0.1/32]" };
	struct fixture_opts o = { .admin = 1 };
	SSL_SESSION *sess = NULL;
	uint16_t port;

	if (bin == NULL) {
		ck_assert_msg(getenv("CI") == NULL || getenv("CI")[0] == '\0',
			      "haproxy is not installed (tools/deps.sh installs it) and this is CI");
		fprintf(stderr, "check_fleet: haproxy not installed: the HAProxy test is skipped\n");
		return;
	}
	fixture_prepare(&fx, &o);
	snprintf(keys, sizeof(keys), "%s/ticket.keys", fx.dir);
	ck_assert_int_eq(testcerts_ticket_keys(keys, 2), 0);
	c.ticket_keys = keys;
	c.cert_dir = fx.dir;
	fleet_config(&fx, &c);
	fixture_spawn_sluice(&fx);
	second_instance(&fx2, &fx, &c);

	port = harness_free_port();
	ck_assert_uint_ne(port, 0);
	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", fx.dir);
	snprintf(log, sizeof(log), "%s/haproxy.log", fx.dir);
	haproxy_config(cfg, port, fx.port, fx2.port);
	char *argv[] = { (char *)bin, "-f", cfg, "-db", NULL };
	ck_assert_int_eq(harness_spawn(&hap, log, argv), 0);
	haproxy_wait(port);

	/* Round robin alternates the instances. A sluice sends no new ticket
	 * on a resumed connection (and a TLS 1.3 ticket is for one use), so:
	 * full, resume it (on the other instance), full, full, resume the
	 * last (on the first instance): each resumes a ticket of the other. */
	for (int i = 0; i < 5; i++) {
		int resume = i == 1 || i == 4;
		int fd = tcp_from("127.0.0.7", port);
		SSL *ssl = tls_after(fd, NULL, 0, SEND_APART, resume ? sess : NULL);
		ck_assert_msg(ssl != NULL, "client %d through haproxy was not served", i);
		round_trip(ssl, "via haproxy");
		ck_assert_msg(SSL_session_reused(ssl) == resume, "client %d: resumed %d, not %d", i,
			      SSL_session_reused(ssl), resume);
		SSL_SESSION_free(sess);
		sess = SSL_get1_session(ssl);
		ck_assert_ptr_nonnull(sess);
		tls_close(ssl, fd);
	}
	SSL_SESSION_free(sess);
	/* Every client line names 127.0.0.7, none haproxy's 127.0.0.1. */
	ck_assert_int_ge(harness_wait_count(fx.log, VIA_HAPROXY, 2, &fx.sluice, T_IO_MS), 2);
	ck_assert_int_ge(harness_wait_count(fx2.log, VIA_HAPROXY, 2, &fx2.sluice, T_IO_MS), 2);
	ck_assert_int_eq(fixture_count_log(&fx, "client 127.0.0.1:"), 0);
	ck_assert_int_eq(fixture_count_log(&fx2, "client 127.0.0.1:"), 0);
	fixture_wait_metric(&fx, "sluice_tls_handshakes_total{resumed=\"true\"}", 1, FIXTURE_METRIC_COUNTER);
	fixture_wait_metric(&fx2, "sluice_tls_handshakes_total{resumed=\"true\"}", 1, FIXTURE_METRIC_COUNTER);
	ck_assert_double_eq(fixture_metric(&fx, "sluice_proxy_protocol_errors_total") +
				    fixture_metric(&fx2, "sluice_proxy_protocol_errors_total"),
			    0);

	ck_assert_int_eq(harness_signal(&hap, SIGTERM), 0);
	if (harness_wait_exit(&hap, T_IO_MS, NULL) < 0)
		harness_kill(&hap);
	fixture_down(&fx2);
	fixture_down(&fx);
}
END_TEST

static Suite *
fleet_suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc = tcase_create("proxy_protocol");

	tcase_add_test(tc, test_v1_header_gives_the_client_address);
	tcase_add_test(tc, test_v2_header_apart_together_dribbled);
	tcase_add_test(tc, test_v2_local_keeps_the_peer);
	tcase_add_test(tc, test_bad_headers_are_closed_and_counted);
	tcase_add_test(tc, test_oversized_v2_header);
	tcase_add_test(tc, test_late_header_times_out);
	tcase_add_test(tc, test_untrusted_source_is_refused);
	tcase_add_test(tc, test_drain_closes_a_waiting_header);
	tcase_add_test(tc, test_reload_during_header_is_served);
	suite_add_tcase(s, tc);
	tc = tcase_create("per_address");
	tcase_add_test(tc, test_per_address_limit_plain);
	tcase_add_test(tc, test_per_address_limit_behind_proxy);
	suite_add_tcase(s, tc);
	tc = tcase_create("haproxy");
	tcase_add_test(tc, test_haproxy_in_front_of_two_instances);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* Writes to a connection sluice closed fail rather than kill. */
	signal(SIGPIPE, SIG_IGN);
	fixture_set_deadlines(15000, 10000);
	return fixture_run_suite(fleet_suite());
}
