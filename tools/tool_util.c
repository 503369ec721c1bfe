/*
 * tool_util — argument parsing and growable buffers for the command-line
 * tools (see tool_util.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "tool_util.h"

int
tool_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull would take "-1", " 5" and "+5". */
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
tool_split_target(char *arg, const char **host, const char **port)
{
	char *colon;

	if (arg[0] == '[') {
		colon = strstr(arg, "]:");
		if (colon == NULL)
			return -1;
		*colon = '\0';
		*host = arg + 1;
		*port = colon + 2;
	} else {
		colon = strrchr(arg, ':');
		if (colon == NULL)
			return -1;
		*colon = '\0';
		*host = arg;
		*port = colon + 1;
	}
	return (*host)[0] != '\0' && (*port)[0] != '\0' ? 0 : -1;
}

int
tool_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int
tool_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first)
{
	size_t n = *cap ? *cap : first;
	uint8_t *bigger;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return 0;
	bigger = realloc(*buf, n);
	if (bigger == NULL)
		return -1;
	*buf = bigger;
	*cap = n;
	return 0;
}
