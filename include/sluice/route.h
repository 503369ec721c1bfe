/*
 * route — which backend a client goes to on a listener with routes
 * (SPEC §8): the first of listen[].routes whose server name and ALPN
 * protocol match the client's, decided once its TLS handshake is done.
 * Pure functions over the configuration; the session applies the answer.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include <sluice/config_types.h>

/* Whether a client's server name matches pattern (lower-case, as the
 * configuration stores it): exactly, ignoring case, or for "*.example.com"
 * a name of exactly one more label, as certificate wildcards match:
 * "a.example.com" does, "example.com" and "a.b.example.com" do not. A
 * client without a name (NULL) matches no pattern. */
bool route_sni_matches(const char *pattern, const char *sni);

/* The first route of lc that matches: its sni (when it has one) matches
 * the client's server name, and its alpn (when it has one) is the
 * protocol negotiated, alpn_len bytes (not NUL-terminated; NULL or 0 when
 * none was). NULL when none does: the client stays on lc->backend. */
const struct config_route *route_match(const struct config_listener *lc, const char *sni,
				       const unsigned char *alpn, size_t alpn_len);

#endif
