/*
 * route — listen[].routes (SPEC §8): matching a client's TLS server name
 * and negotiated ALPN protocol against a listener's routes, first match
 * wins. Called once per client, when its handshake completes, and only on
 * listeners that have routes.
 */
#include <string.h>
#include <strings.h>

#include <sluice/route.h>

bool
route_sni_matches(const char *pattern, const char *sni)
{
	const char *rest;

	if (sni == NULL)
		return false;
	if (pattern[0] != '*' || pattern[1] != '.')
		return strcasecmp(pattern, sni) == 0;
	/* "*.example.com": one label, not empty, then ".example.com". */
	rest = strchr(sni, '.');
	return rest != NULL && rest != sni && strcasecmp(pattern + 1, rest) == 0;
}

static bool
route_alpn_matches(const char *want, const unsigned char *alpn, size_t alpn_len)
{
	return alpn != NULL && strlen(want) == alpn_len && memcmp(want, alpn, alpn_len) == 0;
}

const struct config_route *
route_match(const struct config_listener *lc, const char *sni, const unsigned char *alpn,
	    size_t alpn_len)
{
	for (size_t i = 0; i < lc->n_routes; i++) {
		const struct config_route *r = &lc->routes[i];

		if (r->sni != NULL && !route_sni_matches(r->sni, sni))
			continue;
		if (r->alpn != NULL && !route_alpn_matches(r->alpn, alpn, alpn_len))
			continue;
		return r;
	}
	return NULL;
}
