/*
 * proxy_proto — judges a PROXY protocol header (v1 text, v2 binary) at the
 * front of a connection's first bytes, strictly as proxy-protocol.txt
 * describes it. No I/O and no allocation: the fuzz target and the unit
 * tests call it as proxy_accept does.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <sluice/proxy_proto.h>

static const uint8_t proxy_proto_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
static const char proxy_proto_v1_sig[] = "PROXY ";
#define PROXY_PROTO_V1_SIG_LEN (sizeof(proxy_proto_v1_sig) - 1)

/* v1's fields after "PROXY " at most: protocol, two addresses, two ports. */
#define PROXY_PROTO_V1_FIELDS 5

/* v2 address block lengths by family (§2.2). */
#define PROXY_PROTO_V2_INET_LEN 12
#define PROXY_PROTO_V2_INET6_LEN 36
#define PROXY_PROTO_V2_UNIX_LEN 216

static enum proxy_proto_status
proxy_proto_invalid(struct proxy_proto_result *out, const char *reason)
{
	out->reason = reason;
	return PROXY_PROTO_INVALID;
}

static enum proxy_proto_status
proxy_proto_need(struct proxy_proto_result *out, size_t len)
{
	out->len = len;
	return PROXY_PROTO_NEED_MORE;
}

/* A port: decimal, 0..65535, no sign, no leading zero (as a sender
 * formats it; anything else is not a header we trust). */
static int
proxy_proto_v1_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* An address of the family, numeric only (inet_pton refuses names). */
static int
proxy_proto_v1_addr(int family, const char *s, size_t n, uint16_t port, struct sockaddr_storage *ss)
{
	char text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		return inet_pton(AF_INET, text, &in->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	return inet_pton(AF_INET6, text, &in6->sin6_addr) == 1 ? 0 : -1;
}

/* Splits line[0..n) at single spaces into at most max fields; an empty
 * field (two spaces, a space at either end) makes it invalid. The last
 * field takes the rest when there are more. */
static int
proxy_proto_v1_split(const char *line, size_t n, const char **f, size_t *fl, int max)
{
	int k = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && (line[i] != ' ' || k == max - 1))
			continue;
		if (i == start)
			return -1;
		f[k] = line + start;
		fl[k] = i - start;
		k++;
		start = i + 1;
	}
	return k;
}

/* line: what follows "PROXY " up to "\r\n", excluded. */
static enum proxy_proto_status
proxy_proto_v1_fields(const char *line, size_t n, struct proxy_proto_result *out)
{
	const char *f[PROXY_PROTO_V1_FIELDS];
	size_t fl[PROXY_PROTO_V1_FIELDS];
	int k, family;
	uint16_t sport, dport;

	/* UNKNOWN: the rest of the line, whatever it is, is ignored (§2.1). */
	if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (n == 7 || line[7] == ' '))
		return PROXY_PROTO_DONE;
	k = proxy_proto_v1_split(line, n, f, fl, PROXY_PROTO_V1_FIELDS);
	if (k < 1)
		return proxy_proto_invalid(out, "v1: fields not separated by single spaces");
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return proxy_proto_invalid(out, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (k != PROXY_PROTO_V1_FIELDS || memchr(f[4], ' ', fl[4]) != NULL)
		return proxy_proto_invalid(out, "v1: not four fields after the protocol");
	if (proxy_proto_v1_port(f[3], fl[3], &sport) < 0 || proxy_proto_v1_port(f[4], fl[4], &dport) < 0)
		return proxy_proto_invalid(out, "v1: bad port");
	if (proxy_proto_v1_addr(family, f[1], fl[1], sport, &out->src) < 0 ||
	    proxy_proto_v1_addr(family, f[2], fl[2], dport, &out->dst) < 0)
		return proxy_proto_invalid(out, "v1: bad address for the protocol");
	out->has_addr = 1;
	out->addr_len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	return PROXY_PROTO_DONE;
}

static enum proxy_proto_status
proxy_proto_v1(const uint8_t *buf, size_t len, struct proxy_proto_result *out)
{
	size_t look = len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX;
	const uint8_t *lf;

	if (memcmp(buf, proxy_proto_v1_sig, look < PROXY_PROTO_V1_SIG_LEN ? look : PROXY_PROTO_V1_SIG_LEN) != 0)
		return proxy_proto_invalid(out, "v1: no \"PROXY \" signature");
	lf = memchr(buf, '\n', look);
	if (lf == NULL) {
		if (look == PROXY_PROTO_V1_MAX)
			return proxy_proto_invalid(out, "v1: no CRLF within 107 bytes");
		return proxy_proto_need(out, len + 1);
	}
	size_t end = (size_t)(lf - buf) + 1;
	if (end < PROXY_PROTO_V1_SIG_LEN + 2 || buf[end - 2] != '\r')
		return proxy_proto_invalid(out, "v1: line does not end in CRLF");
	out->version = 1;
	out->len = end;
	return proxy_proto_v1_fields((const char *)buf + PROXY_PROTO_V1_SIG_LEN,
				     end - 2 - PROXY_PROTO_V1_SIG_LEN, out);
}

/* The TLVs after the address block: each must lie inside the header. Their
 * contents are not used. */
static int
proxy_proto_v2_tlvs(const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (n < 3)
			return -1;
		size_t tlen = (size_t)p[1] << 8 | p[2];
		if (tlen > n - 3)
			return -1;
		p += 3 + tlen;
		n -= 3 + tlen;
	}
	return 0;
}

static void
proxy_proto_v2_inet(const uint8_t *a, struct proxy_proto_result *out)
{
	struct sockaddr_in *src = (struct sockaddr_in *)&out->src;
	struct sockaddr_in *dst = (struct sockaddr_in *)&out->dst;

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	src->sin_family = dst->sin_family = AF_INET;
	memcpy(&src->sin_addr, a, 4);
	memcpy(&dst->sin_addr, a + 4, 4);
	memcpy(&src->sin_port, a + 8, 2);
	memcpy(&dst->sin_port, a + 10, 2);
	out->addr_len = sizeof(*src);
	out->has_addr = 1;
}

static void
proxy_proto_v2_inet6(const uint8_t *a, struct proxy_proto_result *out)
{
	struct sockaddr_in6 *src = (struct sockaddr_in6 *)&out->src;
	struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&out->dst;

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	src->sin6_family = dst->sin6_family = AF_INET6;
	memcpy(&src->sin6_addr, a, 16);
	memcpy(&dst->sin6_addr, a + 16, 16);
	memcpy(&src->sin6_port, a + 32, 2);
	memcpy(&dst->sin6_port, a + 34, 2);
	out->addr_len = sizeof(*src);
	out->has_addr = 1;
}

/* The address block of a PROXY command: fam and proto are the two halves
 * of byte 13, n the bytes after the fixed part. */
static enum proxy_proto_status
proxy_proto_v2_addr(const uint8_t *blk, size_t n, unsigned fam, unsigned proto,
		    struct proxy_proto_result *out)
{
	static const size_t need[4] = {
		0, PROXY_PROTO_V2_INET_LEN, PROXY_PROTO_V2_INET6_LEN, PROXY_PROTO_V2_UNIX_LEN,
	};

	/* UNSPEC: whatever follows is skipped unread (§2.2). */
	if (fam == 0)
		return PROXY_PROTO_DONE;
	if (n < need[fam])
		return proxy_proto_invalid(out, "v2: length shorter than the address block");
	if (proxy_proto_v2_tlvs(blk + need[fam], n - need[fam]) < 0)
		return proxy_proto_invalid(out, "v2: a TLV runs past the header");
	/* A TCP connection whose client spoke UDP is not one we can stand in
	 * for; UNSPEC and UNIX carry no address we can use (§2.2). */
	if (proto == 2 && (fam == 1 || fam == 2))
		return proxy_proto_invalid(out, "v2: datagram transport");
	if (proto == 1 && fam == 1)
		proxy_proto_v2_inet(blk, out);
	else if (proto == 1 && fam == 2)
		proxy_proto_v2_inet6(blk, out);
	return PROXY_PROTO_DONE;
}

static enum proxy_proto_status
proxy_proto_v2(const uint8_t *buf, size_t len, struct proxy_proto_result *out)
{
	size_t look = len < sizeof(proxy_proto_v2_sig) ? len : sizeof(proxy_proto_v2_sig);

	if (memcmp(buf, proxy_proto_v2_sig, look) != 0)
		return proxy_proto_invalid(out, "v2: bad signature");
	if (len < PROXY_PROTO_V2_FIXED)
		return proxy_proto_need(out, PROXY_PROTO_V2_FIXED);
	unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
	unsigned fam = buf[13] >> 4, proto = buf[13] & 0x0f;
	size_t total = PROXY_PROTO_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);

	if (ver != 2)
		return proxy_proto_invalid(out, "v2: version is not 2");
	if (cmd > 1)
		return proxy_proto_invalid(out, "v2: command is neither LOCAL nor PROXY");
	if (fam > 3 || proto > 2)
		return proxy_proto_invalid(out, "v2: unknown address family or transport");
	if (total > PROXY_PROTO_MAX)
		return proxy_proto_invalid(out, "v2: header longer than 4096 bytes");
	if (len < total)
		return proxy_proto_need(out, total);
	out->version = 2;
	out->len = total;
	/* LOCAL: the balancer's own connection (a health check); the block
	 * is discarded and the socket's peer stands (§2.2). */
	if (cmd == 0)
		return PROXY_PROTO_DONE;
	return proxy_proto_v2_addr(buf + PROXY_PROTO_V2_FIXED, total - PROXY_PROTO_V2_FIXED, fam, proto,
				   out);
}

enum proxy_proto_status
proxy_proto_parse(const uint8_t *buf, size_t len, enum proxy_proto_mode mode,
		  struct proxy_proto_result *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return proxy_proto_need(out, 1);
	/* The first bytes tell the versions apart: 'P' against '\r'. */
	if (buf[0] == proxy_proto_v2_sig[0]) {
		if (!(mode & PROXY_PROTO_MODE_V2))
			return proxy_proto_invalid(out, "v2 header on a listener that takes v1 only");
		return proxy_proto_v2(buf, len, out);
	}
	if (buf[0] == (uint8_t)proxy_proto_v1_sig[0]) {
		if (!(mode & PROXY_PROTO_MODE_V1))
			return proxy_proto_invalid(out, "v1 header on a listener that takes v2 only");
		return proxy_proto_v1(buf, len, out);
	}
	return proxy_proto_invalid(out, "no PROXY protocol signature");
}
