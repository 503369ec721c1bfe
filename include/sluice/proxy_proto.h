/*
 * proxy_proto — the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) a load balancer sends before the client's bytes. Pure:
 * it judges the bytes given and says how many more it needs, how long the
 * header was, and the client's address in it. Reading them is
 * proxy_accept's.
 */
#ifndef SLUICE_PROXY_PROTO_H
#define SLUICE_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* v1's longest line, "\r\n" included (proxy-protocol.txt §2.1). */
#define PROXY_PROTO_V1_MAX 107
/* v2's fixed part: signature, version/command, family, length. */
#define PROXY_PROTO_V2_FIXED 16
/* v2 headers longer than this (TLVs and all) are refused: the length field
 * allows 64 KiB, which every waiting connection would have to hold. Load
 * balancers send a few hundred bytes at most. */
#define PROXY_PROTO_MAX 4096

/* Which versions a listener takes (bits). */
enum proxy_proto_mode {
	PROXY_PROTO_MODE_V1 = 1,
	PROXY_PROTO_MODE_V2 = 2,
	PROXY_PROTO_MODE_ANY = 3,
};

enum proxy_proto_status {
	PROXY_PROTO_NEED_MORE,         /* a valid beginning: read on */
	PROXY_PROTO_INVALID,           /* not a header this mode takes */
	PROXY_PROTO_DONE,              /* a whole header */
};

struct proxy_proto_result {
	/* DONE: the header's length, the bytes to consume (never more than
	 * given). NEED_MORE: how many bytes in all, at least, before it can
	 * say more. */
	size_t len;
	const char *reason;            /* INVALID: why, for the log */
	int version;                   /* DONE: 1 or 2 */
	/* DONE: 1 with src/dst set (TCP4/TCP6, v2 PROXY over INET/INET6);
	 * 0 for LOCAL, UNKNOWN, AF_UNSPEC and UNIX: keep the socket's peer. */
	int has_addr;
	struct sockaddr_storage src;
	struct sockaddr_storage dst;
	socklen_t addr_len;
};

/* Judges the first len bytes received on a connection. Reads only buf. */
enum proxy_proto_status proxy_proto_parse(const uint8_t *buf, size_t len, enum proxy_proto_mode mode,
					  struct proxy_proto_result *out);

#endif
