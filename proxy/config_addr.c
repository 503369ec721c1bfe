/*
 * config_addr — parses "host:port" and "[v6]:port" numerically (only
 * "localhost" is taken as a name; backend servers may name a host for the
 * resolver) and compares parsed addresses.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <sluice/config_addr.h>
#include <sluice/config_types.h>

/* Decimal digits only, 1 to 65535: no sign, no spaces, no 0x. At most
 * five of them, so the value cannot overflow. */
static int
config_addr_port(const char *text, in_port_t *port, const char **why)
{
	size_t n = strlen(text);
	unsigned v = 0;

	if (n == 0) {
		*why = "missing port (expected host:port)";
		return -1;
	}
	if (n <= 5 && strspn(text, "0123456789") == n) {
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (unsigned)(text[i] - '0');
	}
	if (v < 1 || v > 65535) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	*port = htons((uint16_t)v);
	return 0;
}

static int
config_addr_v6(const char *text, struct config_addr *a, const char **why)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	const char *close = strchr(text, ']');
	char host[INET6_ADDRSTRLEN + 1];
	size_t n;

	if (close == NULL || close[1] != ':') {
		*why = close == NULL ? "missing ']'" : "missing port (expected [v6]:port)";
		return -1;
	}
	n = (size_t)(close - text - 1);
	if (n == 0 || n >= sizeof(host)) {
		*why = "not a numeric IPv6 address";
		return -1;
	}
	memcpy(host, text + 1, n);
	host[n] = '\0';
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
		*why = "not a numeric IPv6 address";
		return -1;
	}
	sin6->sin6_family = AF_INET6;
	a->len = sizeof(*sin6);
	return config_addr_port(close + 2, &sin6->sin6_port, why);
}

/* "localhost" is the one name accepted here, as 127.0.0.1: a listener or
 * the admin endpoint binds once, so an address that changes with the
 * resolver has no place there (servers: config_addr_parse_server). */
static int
config_addr_v4(const char *text, struct config_addr *a, const char **why)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	const char *colon = strrchr(text, ':');
	char host[INET_ADDRSTRLEN + 16];
	size_t n;

	if (colon == NULL) {
		*why = "missing port (expected host:port)";
		return -1;
	}
	n = (size_t)(colon - text);
	if (memchr(text, ':', n) != NULL) {
		*why = "IPv6 addresses go in brackets, e.g. [::1]:8443";
		return -1;
	}
	if (n == 0) {
		*why = "missing host (use 0.0.0.0 or [::] for every address)";
		return -1;
	}
	if (n >= sizeof(host)) {
		*why = "not a numeric IPv4 address";
		return -1;
	}
	memcpy(host, text, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		*why = "not a numeric IPv4 address (host names are not resolved)";
		return -1;
	}
	sin->sin_family = AF_INET;
	a->len = sizeof(*sin);
	return config_addr_port(colon + 1, &sin->sin_port, why);
}

int
config_addr_parse(const char *text, struct config_addr *a, const char **why)
{
	int rc;

	memset(&a->ss, 0, sizeof(a->ss));
	rc = text[0] == '[' ? config_addr_v6(text, a, why) : config_addr_v4(text, a, why);
	if (rc < 0)
		a->len = 0;
	return rc;
}

/* RFC 1123 host names: labels of letters, digits and '-' (not at either
 * end), 1 to 63 bytes, at most 253 in all; the last label not all digits,
 * so that a mistyped IPv4 address ("10.0.0.300") is not taken for a name. */
static bool
config_addr_valid_name(const char *host, size_t n)
{
	size_t label = 0, last = 0;
	bool digits_only = true;

	if (n == 0 || n > 253 || host[n - 1] == '.' || host[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '.') {
			if (label == 0 || host[i - 1] == '-')
				return false;
			label = 0;
			last = i + 1;
			digits_only = true;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!isdigit(c))
			digits_only = false;
		if (++label > 63)
			return false;
	}
	return host[n - 1] != '-' && !digits_only && last < n;
}

int
config_addr_parse_server(const char *text, struct config_addr *a, const char **why)
{
	const char *colon = strrchr(text, ':');
	const char *numeric_why = NULL;
	in_port_t port;
	size_t n;

	a->host = NULL;
	if (config_addr_parse(text, a, &numeric_why) == 0)
		return 0;
	*why = numeric_why;
	if (text[0] == '[' || colon == NULL)
		return -1;
	n = (size_t)(colon - text);
	if (n == 0 || memchr(text, ':', n) != NULL)
		return -1;
	if (strspn(text, "0123456789.") == n) {
		/* A numeric host: its own problem (a bad port) or a bad address. */
		struct in_addr v4;
		char host[INET_ADDRSTRLEN + 16];

		if (n < sizeof(host)) {
			memcpy(host, text, n);
			host[n] = '\0';
		}
		if (n >= sizeof(host) || inet_pton(AF_INET, host, &v4) != 1)
			*why = "not a valid IPv4 address";
		return -1;
	}
	if (!config_addr_valid_name(text, n)) {
		*why = "neither a numeric address nor a valid host name";
		return -1;
	}
	if (config_addr_port(colon + 1, &port, why) < 0)
		return -1;
	a->host = strndup(text, n);
	if (a->host == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (char *p = a->host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	a->port = ntohs(port);
	a->len = 0;
	return 0;
}

void
config_addr_format(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		snprintf(out, len, "unknown");
	}
}

bool
config_addr_equal(const struct config_addr *a, const struct config_addr *b)
{
	if (a->text == NULL || b->text == NULL)
		return false;
	if (a->host != NULL || b->host != NULL)
		return a->host != NULL && b->host != NULL && a->port == b->port &&
		       strcmp(a->host, b->host) == 0;
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
}
