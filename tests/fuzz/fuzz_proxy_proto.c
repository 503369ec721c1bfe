/*
 * fuzz_proxy_proto — the PROXY protocol parser (proxy_proto_parse) on
 * arbitrary bytes, judged at every length the way admit.c feeds it as
 * bytes arrive: a verdict on a prefix never contradicts the one on the
 * whole (NEED_MORE asks for more than it has and no more than the header
 * turns out to be; a header found is found again, the same, with bytes
 * after it; a beginning found invalid stays invalid), and what it reports
 * stays inside the bytes and the bounds of the spec.
 *
 * Input: byte 0 picks the mode (low 2 bits: 0 and 3 any, 1 v1, 2 v2);
 * the rest is what the client sent.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <sluice/proxy_proto.h>

#include "fuzz.h"

const char fuzz_target_name[] = "proxy_proto";

static void
check_done(const struct proxy_proto_result *r, size_t len)
{
	FUZZ_ASSERT(r->len > 0 && r->len <= len, "DONE with length %zu of %zu bytes", r->len, len);
	FUZZ_ASSERT(r->version == 1 || r->version == 2, "DONE with version %d", r->version);
	FUZZ_ASSERT(r->version != 1 || r->len <= PROXY_PROTO_V1_MAX, "v1 header of %zu bytes", r->len);
	FUZZ_ASSERT(r->version != 2 || (r->len >= PROXY_PROTO_V2_FIXED && r->len <= PROXY_PROTO_MAX),
		    "v2 header of %zu bytes", r->len);
	if (r->has_addr) {
		int fam = r->src.ss_family;
		FUZZ_ASSERT((fam == AF_INET || fam == AF_INET6) && r->dst.ss_family == fam,
			    "address families %d/%d", fam, r->dst.ss_family);
		FUZZ_ASSERT(r->addr_len == (fam == AF_INET ? sizeof(struct sockaddr_in)
							   : sizeof(struct sockaddr_in6)),
			    "address length %u", (unsigned)r->addr_len);
	}
}

static int
same_result(const struct proxy_proto_result *a, const struct proxy_proto_result *b)
{
	return a->len == b->len && a->version == b->version && a->has_addr == b->has_addr &&
	       (!a->has_addr || (a->addr_len == b->addr_len && memcmp(&a->src, &b->src, a->addr_len) == 0 &&
				 memcmp(&a->dst, &b->dst, a->addr_len) == 0));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum proxy_proto_mode modes[4] = {
		PROXY_PROTO_MODE_ANY, PROXY_PROTO_MODE_V1, PROXY_PROTO_MODE_V2, PROXY_PROTO_MODE_ANY,
	};
	struct proxy_proto_result whole, part;
	enum proxy_proto_status ws, ps;
	enum proxy_proto_mode mode;

	if (size < 1)
		return 0;
	mode = modes[data[0] & 3];
	data++;
	size--;
	ws = proxy_proto_parse(data, size, mode, &whole);
	if (ws == PROXY_PROTO_DONE)
		check_done(&whole, size);
	else if (ws == PROXY_PROTO_INVALID)
		FUZZ_ASSERT(whole.reason != NULL && whole.reason[0] != '\0', "INVALID without a reason");
	else
		FUZZ_ASSERT(whole.len > size, "NEED_MORE asks for %zu with %zu", whole.len, size);
	for (size_t n = 0; n < size; n++) {
		ps = proxy_proto_parse(data, n, mode, &part);
		switch (ps) {
		case PROXY_PROTO_NEED_MORE:
			FUZZ_ASSERT(part.len > n, "NEED_MORE at %zu asks for %zu", n, part.len);
			FUZZ_ASSERT(ws != PROXY_PROTO_DONE || part.len <= whole.len,
				    "NEED_MORE at %zu asks for %zu past the header's %zu", n, part.len, whole.len);
			break;
		case PROXY_PROTO_INVALID:
			FUZZ_ASSERT(ws == PROXY_PROTO_INVALID, "invalid at %zu bytes, not with %zu", n, size);
			break;
		case PROXY_PROTO_DONE:
			check_done(&part, n);
			FUZZ_ASSERT(ws == PROXY_PROTO_DONE && same_result(&part, &whole),
				    "a header at %zu bytes is not the same with %zu", n, size);
			break;
		}
	}
	return 0;
}
