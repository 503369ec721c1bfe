/*
 * Unit tests for the PROXY protocol parser (proxy_proto.c) on headers
 * built here from proxy-protocol.txt: v1 and v2 of both families, LOCAL,
 * UNKNOWN and UNSPEC, TLVs, every truncation, the bounds and the modes;
 * and for the per-address counts (addr_limit.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <check.h>

#include <sluice/addr_limit.h>
#include <sluice/proxy_proto.h>

#include "../fixture.h"

static const uint8_t v2sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o' };

/* A v2 header in out: cmd (0 LOCAL, 1 PROXY), family/transport byte,
 * body. Returns its length. */
static size_t
v2(uint8_t *out, unsigned cmd, uint8_t famproto, const uint8_t *body, size_t n)
{
	memcpy(out, v2sig, 12);
	out[12] = (uint8_t)(0x20 | cmd);
	out[13] = famproto;
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
	if (n > 0)
		memcpy(out + 16, body, n);
	return 16 + n;
}

/* 192.0.2.7:40000 → 127.0.0.1:443 */
static const uint8_t inet_block[12] = { 192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb };

static void
assert_src4(const struct proxy_proto_result *r, const char *addr, unsigned port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&r->src;
	char text[INET_ADDRSTRLEN];

	ck_assert_int_eq(r->has_addr, 1);
	ck_assert_int_eq(in->sin_family, AF_INET);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)));
	ck_assert_str_eq(text, addr);
	ck_assert_uint_eq(ntohs(in->sin_port), port);
}

static void
assert_src6(const struct proxy_proto_result *r, const char *addr, unsigned port)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&r->src;
	char text[INET6_ADDRSTRLEN];

	ck_assert_int_eq(r->has_addr, 1);
	ck_assert_int_eq(in6->sin6_family, AF_INET6);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)));
	ck_assert_str_eq(text, addr);
	ck_assert_uint_eq(ntohs(in6->sin6_port), port);
}

/* Every proper prefix of a header asks for more, never past the header;
 * the header, followed by TLS bytes, is found at its exact length. */
static void
assert_every_prefix(const uint8_t *h, size_t hlen, enum proxy_proto_mode mode)
{
	uint8_t buf[PROXY_PROTO_MAX + sizeof(hello)];
	struct proxy_proto_result r;

	memcpy(buf, h, hlen);
	memcpy(buf + hlen, hello, sizeof(hello));
	for (size_t n = 0; n < hlen; n++) {
		ck_assert_int_eq(proxy_proto_parse(buf, n, mode, &r), PROXY_PROTO_NEED_MORE);
		ck_assert_uint_gt(r.len, n);
		ck_assert_uint_le(r.len, hlen);
	}
	for (size_t n = hlen; n <= hlen + sizeof(hello); n++) {
		ck_assert_int_eq(proxy_proto_parse(buf, n, mode, &r), PROXY_PROTO_DONE);
		ck_assert_uint_eq(r.len, hlen);
	}
}

static enum proxy_proto_status
parse_str(const char *s, enum proxy_proto_mode mode, struct proxy_proto_result *r)
{
	return proxy_proto_parse((const uint8_t *)s, strlen(s), mode, r);
}

START_TEST(test_v1_tcp4)
{
	const char *h = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n";
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_str(h, PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.version, 1);
	ck_assert_uint_eq(r.len, strlen(h));
	assert_src4(&r, "192.0.2.7", 40000);
	assert_every_prefix((const uint8_t *)h, strlen(h), PROXY_PROTO_MODE_V1);
}
END_TEST

START_TEST(test_v1_tcp6)
{
	const char *h = "PROXY TCP6 2001:db8::7 ::1 65535 0\r\n";
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_str(h, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_DONE);
	assert_src6(&r, "2001:db8::7", 65535);
	assert_every_prefix((const uint8_t *)h, strlen(h), PROXY_PROTO_MODE_ANY);
}
END_TEST

START_TEST(test_v1_unknown)
{
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_str("PROXY UNKNOWN\r\n", PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	ck_assert_uint_eq(r.len, 15);
	/* The rest of an UNKNOWN line is ignored, whatever it is. */
	ck_assert_int_eq(parse_str("PROXY UNKNOWN  anything at all\r\n", PROXY_PROTO_MODE_ANY, &r),
			 PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	ck_assert_int_eq(parse_str("PROXY UNKNOWNX\r\n", PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_INVALID);
}
END_TEST

/* The longest v1 line is 107 bytes (UNKNOWN with the longest IPv6
 * addresses); one without CRLF by then is invalid. */
START_TEST(test_v1_length_bound)
{
	const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	char buf[200];
	struct proxy_proto_result r;

	ck_assert_uint_eq(strlen(longest), PROXY_PROTO_V1_MAX);
	ck_assert_int_eq(parse_str(longest, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_DONE);
	memset(buf, '1', sizeof(buf));
	memcpy(buf, "PROXY TCP4 ", 11);
	ck_assert_int_eq(proxy_proto_parse((uint8_t *)buf, 106, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_NEED_MORE);
	ck_assert_int_eq(proxy_proto_parse((uint8_t *)buf, 107, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse((uint8_t *)buf, sizeof(buf), PROXY_PROTO_MODE_V1, &r),
			 PROXY_PROTO_INVALID);
}
END_TEST

static const char *const v1_bad[] = {
	"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\n",          /* LF without CR */
	"PROXY TCP4  192.0.2.7 127.0.0.1 40000 443\r\n",       /* two spaces */
	"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443 \r\n",       /* trailing space */
	"PROXY TCP4 192.0.2.7 127.0.0.1 40000\r\n",            /* a field short */
	"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443 1\r\n",      /* a field more */
	"PROXY TCP4 192.0.2.7 127.0.0.1 65536 443\r\n",        /* port range */
	"PROXY TCP4 192.0.2.7 127.0.0.1 040000 443\r\n",       /* leading zero */
	"PROXY TCP4 192.0.2.7 127.0.0.1 +4000 443\r\n",        /* sign */
	"PROXY TCP4 ::1 ::1 1 2\r\n",                          /* family */
	"PROXY TCP6 192.0.2.7 127.0.0.1 1 2\r\n",
	"PROXY TCP4 192.0.2.256 127.0.0.1 1 2\r\n",
	"PROXY TCP4 localhost 127.0.0.1 1 2\r\n",              /* a name */
	"PROXY UDP4 192.0.2.7 127.0.0.1 1 2\r\n",
	"PROXY tcp4 192.0.2.7 127.0.0.1 1 2\r\n",
	"PROXY \r\n",
	"PROXYTCP4 192.0.2.7 127.0.0.1 1 2\r\n",
	"proxy TCP4 192.0.2.7 127.0.0.1 1 2\r\n",
	"GET / HTTP/1.1\r\n",
};

START_TEST(test_v1_invalid)
{
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_str(v1_bad[_i], PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_INVALID);
	ck_assert_ptr_nonnull(r.reason);
}
END_TEST

START_TEST(test_v2_inet)
{
	uint8_t h[64];
	size_t n = v2(h, 1, 0x11, inet_block, sizeof(inet_block));
	struct proxy_proto_result r;

	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.version, 2);
	ck_assert_uint_eq(r.len, 28);
	assert_src4(&r, "192.0.2.7", 40000);
	assert_every_prefix(h, n, PROXY_PROTO_MODE_ANY);
}
END_TEST

START_TEST(test_v2_inet6)
{
	uint8_t body[36] = { 0x20, 0x01, 0x0d, 0xb8 };
	uint8_t h[64];
	struct proxy_proto_result r;

	body[15] = 7;
	body[31] = 1;
	body[32] = 0x9c;
	body[33] = 0x40;
	size_t n = v2(h, 1, 0x21, body, sizeof(body));
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	assert_src6(&r, "2001:db8::7", 40000);
	assert_every_prefix(h, n, PROXY_PROTO_MODE_V2);
}
END_TEST

/* LOCAL: no address, whatever the block says; UNSPEC and UNIX likewise. */
START_TEST(test_v2_no_address)
{
	uint8_t unix_block[216] = { 0 };
	uint8_t h[300];
	struct proxy_proto_result r;
	size_t n;

	n = v2(h, 0, 0x00, NULL, 0);
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	ck_assert_uint_eq(r.len, 16);
	n = v2(h, 0, 0x11, inet_block, sizeof(inet_block));
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	n = v2(h, 1, 0x00, inet_block, sizeof(inet_block));
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	n = v2(h, 1, 0x31, unix_block, sizeof(unix_block));
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_int_eq(r.has_addr, 0);
	assert_every_prefix(h, n, PROXY_PROTO_MODE_ANY);
}
END_TEST

START_TEST(test_v2_tlvs)
{
	uint8_t body[64];
	uint8_t h[128];
	struct proxy_proto_result r;
	size_t b = sizeof(inet_block);

	memcpy(body, inet_block, b);
	/* AUTHORITY "example.com", NOOP of length 0, SSL of 5 bytes. */
	body[b++] = 0x02, body[b++] = 0, body[b++] = 11;
	memcpy(body + b, "example.com", 11), b += 11;
	body[b++] = 0x04, body[b++] = 0, body[b++] = 0;
	body[b++] = 0x20, body[b++] = 0, body[b++] = 5;
	memset(body + b, 0, 5), b += 5;
	size_t n = v2(h, 1, 0x11, body, b);
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_DONE);
	ck_assert_uint_eq(r.len, n);
	assert_src4(&r, "192.0.2.7", 40000);
	assert_every_prefix(h, n, PROXY_PROTO_MODE_V2);
	/* The last TLV one byte longer than what is left of the header. */
	h[n - 6] = 6;
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	/* Two bytes after the address block: too short for a TLV header. */
	n = v2(h, 1, 0x11, body, sizeof(inet_block) + 2);
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
}
END_TEST

START_TEST(test_v2_invalid)
{
	uint8_t h[64];
	struct proxy_proto_result r;
	size_t n;

	n = v2(h, 1, 0x11, inet_block, 8);                    /* block too short */
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	n = v2(h, 1, 0x12, inet_block, sizeof(inet_block));  /* datagram */
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	n = v2(h, 1, 0x41, inet_block, sizeof(inet_block));  /* family 4 */
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	n = v2(h, 2, 0x11, inet_block, sizeof(inet_block));  /* command 2 */
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	n = v2(h, 1, 0x11, inet_block, sizeof(inet_block));
	h[12] = 0x11;                                         /* version 1 */
	ck_assert_int_eq(proxy_proto_parse(h, n, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	n = v2(h, 1, 0x11, inet_block, sizeof(inet_block));
	h[11] = 0x0b;                                         /* signature */
	ck_assert_int_eq(proxy_proto_parse(h, 12, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse(h, 11, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_NEED_MORE);
	/* Oversized: refused from the fixed part, before the bytes arrive. */
	n = v2(h, 1, 0x11, inet_block, sizeof(inet_block));
	h[14] = 0x10;
	h[15] = 0x00;
	ck_assert_int_eq(proxy_proto_parse(h, 16, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	h[14] = (PROXY_PROTO_MAX - 16) >> 8;
	h[15] = (PROXY_PROTO_MAX - 16) & 0xff;
	ck_assert_int_eq(proxy_proto_parse(h, 16, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_NEED_MORE);
	ck_assert_uint_eq(r.len, PROXY_PROTO_MAX);
}
END_TEST

START_TEST(test_modes)
{
	const char *h1 = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n";
	uint8_t h2[64];
	size_t n2 = v2(h2, 1, 0x11, inet_block, sizeof(inet_block));
	struct proxy_proto_result r;

	ck_assert_int_eq(parse_str(h1, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse(h2, n2, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse(h2, 1, PROXY_PROTO_MODE_V1, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse((const uint8_t *)h1, 1, PROXY_PROTO_MODE_V2, &r), PROXY_PROTO_INVALID);
	/* A TLS ClientHello where a header should be. */
	ck_assert_int_eq(proxy_proto_parse(hello, sizeof(hello), PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_INVALID);
	ck_assert_int_eq(proxy_proto_parse(hello, 0, PROXY_PROTO_MODE_ANY, &r), PROXY_PROTO_NEED_MORE);
	ck_assert_uint_eq(r.len, 1);
}
END_TEST

static void
sockaddr_of(struct sockaddr_storage *ss, int family, const char *text)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET)
		ck_assert_int_eq(inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr), 1);
	else
		ck_assert_int_eq(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
}

START_TEST(test_addr_limit)
{
	struct sockaddr_storage a, mapped, b;
	struct addr_limit_key ka, km, kb;

	sockaddr_of(&a, AF_INET, "192.0.2.9");
	sockaddr_of(&mapped, AF_INET6, "::ffff:192.0.2.9");
	sockaddr_of(&b, AF_INET6, "2001:db8::9");
	addr_limit_key_from(&ka, (struct sockaddr *)&a);
	addr_limit_key_from(&km, (struct sockaddr *)&mapped);
	addr_limit_key_from(&kb, (struct sockaddr *)&b);
	ck_assert_int_eq(addr_limit_take(&ka, 2), 0);
	ck_assert_int_eq(addr_limit_take(&km, 2), 0);   /* the same client */
	ck_assert_int_eq(addr_limit_take(&ka, 2), -1);
	ck_assert_int_eq(addr_limit_take(&kb, 2), 0);   /* another one */
	ck_assert_uint_eq(addr_limit_count(&ka), 2);
	addr_limit_give(&km);
	ck_assert_int_eq(addr_limit_take(&ka, 2), 0);
	addr_limit_give(&ka);
	addr_limit_give(&ka);
	addr_limit_give(&kb);
	ck_assert_uint_eq(addr_limit_count(&ka), 0);
	ck_assert_uint_eq(addr_limit_count(&kb), 0);
	addr_limit_give(&ka);                           /* never below zero */
	ck_assert_uint_eq(addr_limit_count(&ka), 0);
}
END_TEST

static Suite *
proxy_proto_suite(void)
{
	Suite *s = suite_create("proxy_proto");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_length_bound);
	tcase_add_loop_test(tc, test_v1_invalid, 0, (int)(sizeof(v1_bad) / sizeof(v1_bad[0])));
	tcase_add_test(tc, test_v2_inet);
	tcase_add_test(tc, test_v2_inet6);
	tcase_add_test(tc, test_v2_no_address);
	tcase_add_test(tc, test_v2_tlvs);
	tcase_add_test(tc, test_v2_invalid);
	tcase_add_test(tc, test_modes);
	suite_add_tcase(s, tc);
	tc = tcase_create("addr_limit");
	tcase_add_test(tc, test_addr_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(proxy_proto_suite());
}
