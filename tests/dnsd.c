/*
 * dnsd — a tiny authoritative UDP DNS server for the tests of backends
 * given by name: it answers A and AAAA questions from a zone file that it
 * reads again for every query (so a test rewrites the file, renamed over,
 * and the next answer follows, with no signal to race), and logs every
 * query as one line a test can count. Not installed.
 *
 * Zone file, one entry a line, '#' starts a comment:
 *     ttl 1                       TTL of the answers (default 1 s)
 *     app.test A 127.0.0.2        an address (several lines: several)
 *     app.test AAAA ::1
 *     down.test SERVFAIL          answer SERVFAIL (or REFUSED)
 *     gone.test NXDOMAIN          the name does not exist
 *     slow.test DROP              never answer (the client times out)
 *     empty.test EMPTY            the name exists with no address
 * A name may be "*": any name the file does not list. A name the file does
 * not list is NXDOMAIN; a listed name without a record of the asked type
 * gets an empty answer (NODATA).
 *
 * Query log: "NAME TYPE OUTCOME ANSWERS" (NAME lower-cased; TYPE A, AAAA
 * or the number; OUTCOME NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR,
 * DROP).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNSD_MAX_MSG 512          /* plain DNS over UDP, no EDNS */
#define DNSD_MAX_NAME 256         /* dotted, with the NUL */
#define DNSD_MAX_ANSWERS 16
#define DNSD_HEADER 12
#define DNSD_TYPE_A 1
#define DNSD_TYPE_AAAA 28
#define DNSD_CLASS_IN 1

enum dnsd_rcode {
	DNSD_NOERROR = 0,
	DNSD_FORMERR = 1,
	DNSD_SERVFAIL = 2,
	DNSD_NXDOMAIN = 3,
	DNSD_NOTIMP = 4,
	DNSD_REFUSED = 5,
	DNSD_DROP = -1,           /* no answer at all */
};

/* What the zone says about one question. */
struct dnsd_answer {
	int rcode;                /* enum dnsd_rcode */
	uint32_t ttl;
	unsigned n;               /* records of the asked type */
	uint8_t rdata[DNSD_MAX_ANSWERS][16];
	uint16_t rdlen;           /* 4 or 16 */
};

/* The question of a query, parsed. */
struct dnsd_question {
	char name[DNSD_MAX_NAME]; /* lower-cased, dotted, no final dot */
	uint16_t type;
	uint16_t class;
	size_t end;               /* offset past the question in the message */
};

static volatile sig_atomic_t dnsd_stop;

static void
dnsd_on_signal(int sig)
{
	(void)sig;
	dnsd_stop = 1;
}

/* One zone line that names qname (or "*" when wild is set) into a. */
static void
dnsd_zone_line(char *line, const struct dnsd_question *q, int wild, struct dnsd_answer *a, int *found)
{
	char *save = NULL;
	char *name = strtok_r(line, " \t\r\n", &save);
	char *kind = name ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	char *value = kind ? strtok_r(NULL, " \t\r\n", &save) : NULL;

	if (name == NULL || name[0] == '#' || kind == NULL)
		return;
	if (strcasecmp(name, "ttl") == 0) {
		a->ttl = (uint32_t)strtoul(kind, NULL, 10);
		return;
	}
	if (wild ? strcmp(name, "*") != 0 : strcasecmp(name, q->name) != 0)
		return;
	*found = 1;
	if (strcasecmp(kind, "SERVFAIL") == 0)
		a->rcode = DNSD_SERVFAIL;
	else if (strcasecmp(kind, "REFUSED") == 0)
		a->rcode = DNSD_REFUSED;
	else if (strcasecmp(kind, "NXDOMAIN") == 0)
		a->rcode = DNSD_NXDOMAIN;
	else if (strcasecmp(kind, "DROP") == 0)
		a->rcode = DNSD_DROP;
	else if (value != NULL && a->n < DNSD_MAX_ANSWERS && strcasecmp(kind, "A") == 0 &&
		 q->type == DNSD_TYPE_A && inet_pton(AF_INET, value, a->rdata[a->n]) == 1)
		a->n++;
	else if (value != NULL && a->n < DNSD_MAX_ANSWERS && strcasecmp(kind, "AAAA") == 0 &&
		 q->type == DNSD_TYPE_AAAA && inet_pton(AF_INET6, value, a->rdata[a->n]) == 1)
		a->n++;
}

/* Reads the zone for q: exact lines first, else the "*" ones. */
static void
dnsd_lookup(const char *zone, const struct dnsd_question *q, struct dnsd_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->ttl = 1;
	a->rdlen = q->type == DNSD_TYPE_AAAA ? 16 : 4;
	for (int wild = 0; wild < 2; wild++) {
		FILE *f = fopen(zone, "r");
		char line[512];
		int found = 0;

		if (f == NULL) {
			a->rcode = DNSD_SERVFAIL;
			return;
		}
		while (fgets(line, sizeof(line), f) != NULL)
			dnsd_zone_line(line, q, wild, a, &found);
		fclose(f);
		if (found)
			return;
	}
	a->rcode = DNSD_NXDOMAIN;
}

/* The question of msg: one uncompressed name, type, class. 0 or -1. */
static int
dnsd_parse_question(const uint8_t *msg, size_t len, struct dnsd_question *q)
{
	size_t at = DNSD_HEADER, out = 0;

	for (;;) {
		uint8_t label;

		if (at >= len)
			return -1;
		label = msg[at++];
		if (label == 0)
			break;
		if (label > 63 || at + label > len || out + label + 2 > sizeof(q->name))
			return -1;   /* a pointer (0xc0) has no place in a question */
		if (out > 0)
			q->name[out++] = '.';
		for (uint8_t i = 0; i < label; i++) {
			uint8_t c = msg[at++];

			if (c == '.' || c < 0x21 || c > 0x7e)
				return -1;
			q->name[out++] = (char)tolower(c);
		}
	}
	q->name[out] = '\0';
	if (at + 4 > len)
		return -1;
	q->type = (uint16_t)(msg[at] << 8 | msg[at + 1]);
	q->class = (uint16_t)(msg[at + 2] << 8 | msg[at + 3]);
	q->end = at + 4;
	return 0;
}

static void
dnsd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The reply to the query in msg (its header and question copied) into
 * out; returns its length. */
static size_t
dnsd_reply(const uint8_t *msg, const struct dnsd_question *q, const struct dnsd_answer *a,
	   uint8_t *out)
{
	size_t len = q->end;
	uint16_t n = 0;

	memcpy(out, msg, q->end);
	out[2] = (uint8_t)(0x80 | 0x04 | (msg[2] & 0x01));   /* QR, AA, RD as asked */
	out[3] = (uint8_t)a->rcode;
	for (unsigned i = 0; a->rcode == DNSD_NOERROR && i < a->n; i++) {
		if (len + 12 + a->rdlen > DNSD_MAX_MSG) {
			out[2] |= 0x02;   /* TC */
			break;
		}
		dnsd_put16(out + len, 0xc000 | DNSD_HEADER);   /* the question's name */
		dnsd_put16(out + len + 2, q->type);
		dnsd_put16(out + len + 4, DNSD_CLASS_IN);
		dnsd_put16(out + len + 6, (uint16_t)(a->ttl >> 16));
		dnsd_put16(out + len + 8, (uint16_t)a->ttl);
		dnsd_put16(out + len + 10, a->rdlen);
		memcpy(out + len + 12, a->rdata[i], a->rdlen);
		len += 12 + (size_t)a->rdlen;
		n++;
	}
	dnsd_put16(out + 4, 1);
	dnsd_put16(out + 6, n);
	dnsd_put16(out + 8, 0);
	dnsd_put16(out + 10, 0);
	return len;
}

static const char *
dnsd_rcode_name(int rcode)
{
	switch (rcode) {
	case DNSD_NOERROR: return "NOERROR";
	case DNSD_FORMERR: return "FORMERR";
	case DNSD_SERVFAIL: return "SERVFAIL";
	case DNSD_NXDOMAIN: return "NXDOMAIN";
	case DNSD_NOTIMP: return "NOTIMP";
	case DNSD_REFUSED: return "REFUSED";
	default: return "DROP";
	}
}

static void
dnsd_log(FILE *log, const struct dnsd_question *q, int rcode, unsigned n)
{
	char type[16];

	if (q->type == DNSD_TYPE_A || q->type == DNSD_TYPE_AAAA)
		snprintf(type, sizeof(type), "%s", q->type == DNSD_TYPE_A ? "A" : "AAAA");
	else
		snprintf(type, sizeof(type), "%u", (unsigned)q->type);
	fprintf(log, "%s %s %s %u\n", q->name[0] ? q->name : ".", type, dnsd_rcode_name(rcode), n);
	fflush(log);
}

/* Answers one datagram (or not: garbage and DROP get no reply). */
static void
dnsd_serve(int fd, const char *zone, FILE *log, const uint8_t *msg, size_t len,
	   const struct sockaddr *from, socklen_t fromlen)
{
	struct dnsd_question q;
	struct dnsd_answer a;
	uint8_t out[DNSD_MAX_MSG];
	size_t olen;

	memset(&q, 0, sizeof(q));
	if (len < DNSD_HEADER || (msg[2] & 0x80) != 0)
		return;   /* too short to answer, or itself an answer */
	memset(&a, 0, sizeof(a));
	if ((msg[2] & 0x78) != 0 || msg[4] != 0 || msg[5] != 1 ||
	    dnsd_parse_question(msg, len, &q) < 0 || q.class != DNSD_CLASS_IN) {
		/* Only the header comes back with FORMERR. */
		q.end = DNSD_HEADER;
		q.name[0] = '\0';
		a.rcode = DNSD_FORMERR;
	} else if (q.type != DNSD_TYPE_A && q.type != DNSD_TYPE_AAAA) {
		dnsd_lookup(zone, &q, &a);
		a.n = 0;   /* known or not, no record of other types */
	} else {
		dnsd_lookup(zone, &q, &a);
	}
	dnsd_log(log, &q, a.rcode, a.rcode == DNSD_NOERROR ? a.n : 0);
	if (a.rcode == DNSD_DROP)
		return;
	olen = dnsd_reply(msg, &q, &a, out);
	if (a.rcode == DNSD_FORMERR)
		dnsd_put16(out + 4, 0);
	if (sendto(fd, out, olen, 0, from, fromlen) < 0)
		fprintf(stderr, "dnsd: sendto: %s\n", strerror(errno));
}

static int
dnsd_bind(const char *address, uint16_t port, uint16_t *bound)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (fd < 0 || inet_pton(AF_INET, address, &sin.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		fprintf(stderr, "dnsd: cannot listen on %s:%u: %s\n", address, (unsigned)port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*bound = ntohs(sin.sin_port);
	return fd;
}

static void
dnsd_usage(FILE *to)
{
	fprintf(to, "usage: dnsd [-a ADDR] -p PORT -z ZONE_FILE -l QUERY_LOG\n"
		"  answers A/AAAA questions on UDP ADDR:PORT (default 127.0.0.1; port 0 picks one)\n"
		"  from ZONE_FILE, read again for every query; logs each query to QUERY_LOG\n");
}

int
main(int argc, char **argv)
{
	const char *address = "127.0.0.1", *zone = NULL, *log_path = NULL;
	long port = -1;
	uint16_t bound;
	FILE *log;
	int ch, fd;
	struct sigaction sa;

	while ((ch = getopt(argc, argv, "a:p:z:l:h")) != -1) {
		switch (ch) {
		case 'a': address = optarg; break;
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'z': zone = optarg; break;
		case 'l': log_path = optarg; break;
		case 'h': dnsd_usage(stdout); return 0;
		default: dnsd_usage(stderr); return 2;
		}
	}
	if (port < 0 || port > 65535 || zone == NULL || log_path == NULL || optind != argc) {
		dnsd_usage(stderr);
		return 2;
	}
	log = fopen(log_path, "a");
	if (log == NULL) {
		fprintf(stderr, "dnsd: %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	fd = dnsd_bind(address, (uint16_t)port, &bound);
	if (fd < 0)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = dnsd_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("dnsd: listening on %s:%u\n", address, (unsigned)bound);
	fflush(stdout);
	while (!dnsd_stop) {
		uint8_t msg[DNSD_MAX_MSG];
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, msg, sizeof(msg), 0, (struct sockaddr *)&from, &fromlen);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "dnsd: recvfrom: %s\n", strerror(errno));
			break;
		}
		if (n > 0)
			dnsd_serve(fd, zone, log, msg, (size_t)n, (struct sockaddr *)&from, fromlen);
	}
	close(fd);
	fclose(log);
	return 0;
}
