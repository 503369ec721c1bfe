/*
 * config_fleet — the keys of SPEC §8: routes, PROXY protocol, servers by
 * name, health checks, ejection, the resolver. Values are checked here as
 * they are read; what depends on other sections (route backends, the
 * probe against max_frame_size) once the whole file is in.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <yaml.h>

#include <sluice/config_addr.h>
#include <sluice/config_fleet.h>
#include <sluice/config_types.h>
#include <sluice/config_yaml.h>
#include <sluice/units.h>

/* Ejections in a row multiply eject_time up to this (SPEC §8). */
#define CONFIG_FLEET_EJECT_CAP_MS (5u * 60 * 1000)
/* A probe's header travels in a 16-bit field. */
#define CONFIG_FLEET_MAX_HEADER 65535u

static const struct config_yaml_bound config_fleet_max_rise_fall = {
	1000, "a server would take longer to change state than anyone waits for",
};
static const struct config_yaml_bound config_fleet_max_eject_after = {
	1000000, "failures that many in a row mean the server is long dead",
};
/* Like max_connections: each connection is a descriptor. */
static const struct config_yaml_bound config_fleet_max_per_address = {
	1000000, "each connection needs a file descriptor, and Linux allows a process "
	"at most fs.nr_open, 1048576 by default",
};
static const struct config_yaml_bound config_fleet_max_percent = {
	100, "a percentage of the backend's servers",
};

/* ---- servers by name ----------------------------------------------------- */

int
config_fleet_parse_server_address(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				  void *field)
{
	return config_yaml_parse_addr(y, node, kpath, field, config_addr_parse_server);
}

/* ---- routes ------------------------------------------------------------ */

/* "name.example" or "*.example": what a certificate's names look like,
 * so that a route can follow the certificate an operator already has. */
static const char *
config_fleet_sni_problem(const char *sni)
{
	const char *rest = strncmp(sni, "*.", 2) == 0 ? sni + 2 : sni;

	if (*rest == '\0')
		return "a wildcard needs a domain after \"*.\"";
	if (strchr(rest, '*') != NULL)
		return "'*' may only be the whole first label, as in \"*.example.com\"";
	for (const char *p = rest; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return "a server name uses letters, digits, '-', '_' and '.'";
	}
	if (rest[0] == '.' || rest[strlen(rest) - 1] == '.' || strstr(rest, "..") != NULL)
		return "a server name has no empty label";
	return NULL;
}

static int
config_fleet_parse_sni(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       void *field)
{
	char **dst = field;
	const char *problem;
	struct config_mark at = config_yaml_mark(node);

	if (config_yaml_parse_string(y, node, kpath, dst) < 0)
		return -1;
	for (char *p = *dst; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	problem = config_fleet_sni_problem(*dst);
	if (problem != NULL) {
		config_yaml_error(y, &at, kpath, "\"%s\": %s", *dst, problem);
		return -1;
	}
	return 0;
}

static const struct config_yaml_key config_fleet_route_keys[] = {
	{ "sni", config_fleet_parse_sni, offsetof(struct config_route, sni), false },
	{ "alpn", config_yaml_parse_string, offsetof(struct config_route, alpn), false },
	{ "backend", config_yaml_parse_string, offsetof(struct config_route, backend_name), true },
	{ NULL, NULL, 0, false },
};

int
config_fleet_parse_routes(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			  void *field)
{
	struct config_listener *l = field;
	struct config_yaml_seen seen;
	const struct config_mark *at;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	l->routes = config_yaml_seq_alloc(y, node, kpath, sizeof(*l->routes), "route", &n);
	if (l->routes == NULL)
		return -1;
	l->n_routes = n;
	for (size_t i = 0; i < n; i++) {
		struct config_route *r = &l->routes[i];
		yaml_node_t *item = config_yaml_seq_item(y, node, i);

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		r->mark = config_yaml_mark(item);
		if (config_yaml_walk(y, item, ipath, config_fleet_route_keys, r, &seen) < 0)
			continue;
		at = config_yaml_seen_at(&seen, config_fleet_route_keys, "backend");
		if (at != NULL)
			r->backend_mark = *at;
		if (config_yaml_seen_at(&seen, config_fleet_route_keys, "sni") == NULL &&
		    config_yaml_seen_at(&seen, config_fleet_route_keys, "alpn") == NULL)
			config_yaml_error(y, &r->mark, ipath, "a route needs sni, alpn or both: "
					  "one without either would take every client (that is "
					  "what the listener's backend: is for)");
	}
	return 0;
}

/* ---- PROXY protocol ------------------------------------------------------ */

int
config_fleet_parse_proxy_protocol(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				  void *field)
{
	static const struct config_yaml_enum values[] = {
		{ "off", CONFIG_PROXY_OFF },
		{ "v1", CONFIG_PROXY_V1 },
		{ "v2", CONFIG_PROXY_V2 },
		{ "any", CONFIG_PROXY_ANY },
		{ NULL, 0 },
	};
	enum config_proxy_protocol *dst = field;
	int v;

	if (config_yaml_enum(y, node, kpath, values, &v) < 0)
		return -1;
	*dst = (enum config_proxy_protocol)v;
	return 0;
}

/* The prefix length after '/', or all of the address's bits. */
static int
config_fleet_prefix(const char *slash, unsigned bits, unsigned *prefix)
{
	uint64_t v;

	if (slash == NULL) {
		*prefix = bits;
		return 0;
	}
	if (config_yaml_number(slash + 1, &v) < 0 || v > bits)
		return -1;
	*prefix = (unsigned)v;
	return 0;
}

/* Whether the bits of c->addr past its prefix are all zero. */
static bool
config_fleet_host_bits_clear(const struct config_cidr *c)
{
	unsigned bytes = c->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < bytes; i++) {
		unsigned first = i * 8;
		uint8_t keep;

		if (first + 8 <= c->prefix)
			continue;
		keep = first >= c->prefix ? 0 : (uint8_t)(0xFF << (8 - (c->prefix - first)));
		if ((c->addr[i] & (uint8_t)~keep) != 0)
			return false;
	}
	return true;
}

/* "10.0.0.0/8", "fd00::/8", "[fd00::]/8" or a bare address. */
static const char *
config_fleet_cidr(const char *text, struct config_cidr *c)
{
	char host[INET6_ADDRSTRLEN + 3];
	const char *slash = strchr(text, '/');
	size_t n = slash != NULL ? (size_t)(slash - text) : strlen(text);
	const char *h = text;

	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return "expected a network such as 10.0.0.0/8 or fd00::/8";
	memcpy(host, h, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, host, c->addr) == 1)
		c->family = AF_INET6;
	else
		return "not a numeric IPv4 or IPv6 network (expected e.g. 10.0.0.0/8)";
	if (config_fleet_prefix(slash, c->family == AF_INET ? 32 : 128, &c->prefix) < 0)
		return c->family == AF_INET ? "the prefix length is a number from 0 to 32" :
		       "the prefix length is a number from 0 to 128";
	if (!config_fleet_host_bits_clear(c))
		return "has bits set past its prefix length: write the network's first "
		       "address (10.0.0.0/8, not 10.1.2.3/8)";
	return NULL;
}

int
config_fleet_parse_proxy_trusted(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				 void *field)
{
	struct config_listener *l = field;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	l->proxy_trusted = config_yaml_seq_alloc(y, node, kpath, sizeof(*l->proxy_trusted),
						 "network", &n);
	if (l->proxy_trusted == NULL)
		return -1;
	l->n_proxy_trusted = n;
	for (size_t i = 0; i < n; i++) {
		struct config_cidr *c = &l->proxy_trusted[i];
		yaml_node_t *item = config_yaml_seq_item(y, node, i);
		const char *why;

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		c->mark = config_yaml_mark(item);
		if (config_yaml_parse_string(y, item, ipath, &c->text) < 0)
			continue;
		why = config_fleet_cidr(c->text, c);
		if (why != NULL)
			config_yaml_error(y, &c->mark, ipath, "\"%s\": %s", c->text, why);
	}
	return 0;
}

void
config_fleet_check_listener(struct config_yaml *y, const struct config_listener *l,
			    const char *kpath, const struct config_mark *proxy_at)
{
	char child[CONFIG_YAML_KPATH];

	if (l->proxy_protocol != CONFIG_PROXY_OFF && l->proxy_trusted == NULL && proxy_at != NULL) {
		config_yaml_child_path(child, sizeof(child), kpath, "proxy_protocol");
		config_yaml_error(y, proxy_at, child, "needs proxy_trusted: the networks of the "
				  "load balancers allowed to send a PROXY header (anyone else "
				  "could claim any client address)");
	}
	for (size_t i = 0; i < l->n_routes; i++) {
		const struct config_route *r = &l->routes[i];
		bool listed = false;

		if (r->alpn == NULL)
			continue;
		for (size_t a = 0; a < l->tls.n_alpn && !listed; a++)
			listed = l->tls.alpn[a] != NULL && strcmp(l->tls.alpn[a], r->alpn) == 0;
		if (listed)
			continue;
		config_yaml_pathf(child, sizeof(child), "%s.routes[%zu].alpn", kpath, i);
		config_yaml_error(y, &r->mark, child, "\"%s\" is not in this listener's tls.alpn, "
				  "so no client could ever negotiate it", r->alpn);
	}
}

/* ---- health and ejection ------------------------------------------------- */

/* Any text, the empty one included: a probe may have no payload. */
static int
config_fleet_parse_text(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			void *field)
{
	char **dst = field;
	const char *text = config_yaml_scalar(y, node, kpath);
	char *copy;

	if (text == NULL)
		return -1;
	copy = strdup(text);
	if (copy == NULL) {
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

static int
config_fleet_parse_rise_fall(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			     void *field)
{
	return config_yaml_count_uint(y, node, kpath, &config_fleet_max_rise_fall, field);
}

static const struct config_yaml_key config_fleet_health_keys[] = {
	{ "interval", config_yaml_parse_duration, offsetof(struct config_health, interval_ms), false },
	{ "timeout", config_yaml_parse_duration, offsetof(struct config_health, timeout_ms), false },
	{ "header", config_fleet_parse_text, offsetof(struct config_health, header), false },
	{ "payload", config_fleet_parse_text, offsetof(struct config_health, payload), false },
	{ "rise", config_fleet_parse_rise_fall, offsetof(struct config_health, rise), false },
	{ "fall", config_fleet_parse_rise_fall, offsetof(struct config_health, fall), false },
	{ NULL, NULL, 0, false },
};

static void
config_fleet_check_health(struct config_yaml *y, const struct config_health *h,
			  const char *kpath, const struct config_yaml_seen *seen)
{
	const struct config_yaml_key *keys = config_fleet_health_keys;
	const struct config_mark *at;
	char child[CONFIG_YAML_KPATH], timeout[32], interval[32];

	at = config_yaml_seen_at(seen, keys, "timeout");
	if (h->timeout_ms > h->interval_ms) {
		units_format_duration(h->timeout_ms, timeout, sizeof(timeout));
		units_format_duration(h->interval_ms, interval, sizeof(interval));
		config_yaml_child_path(child, sizeof(child), kpath, at != NULL ? "timeout" : "interval");
		config_yaml_error(y, at != NULL ? at : config_yaml_seen_at(seen, keys, "interval"),
				  child, "timeout (%s) is longer than interval (%s): a probe "
				  "must be judged before the next one is sent", timeout, interval);
	}
	at = config_yaml_seen_at(seen, keys, "header");
	if (at == NULL)
		return;
	config_yaml_child_path(child, sizeof(child), kpath, "header");
	if (strcmp(h->header, "QUIT") == 0)
		config_yaml_error(y, at, child, "QUIT is the control frame of the QUIT "
				  "handshake: a probe with it would close the connection");
	else if (strlen(h->header) > CONFIG_FLEET_MAX_HEADER)
		config_yaml_error(y, at, child, "a frame header is at most 65535 bytes");
}

int
config_fleet_parse_health(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			  void *field)
{
	struct config_health *h = field;
	struct config_yaml_seen seen;
	unsigned before = y->n_errors;

	h->enabled = true;
	if (config_yaml_walk(y, node, kpath, config_fleet_health_keys, h, &seen) < 0)
		return -1;
	if (y->n_errors != before)
		return -1;
	if (h->header == NULL)
		h->header = strdup("PING");
	if (h->payload == NULL)
		h->payload = strdup("");
	if (h->header == NULL || h->payload == NULL) {
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	config_fleet_check_health(y, h, kpath, &seen);
	return 0;
}

int
config_fleet_parse_eject_after(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			       void *field)
{
	return config_yaml_count_uint(y, node, kpath, &config_fleet_max_eject_after, field);
}

int
config_fleet_parse_eject_time(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			      void *field)
{
	uint64_t *ms = field;
	struct config_mark at = config_yaml_mark(node);

	if (config_yaml_parse_duration(y, node, kpath, field) < 0)
		return -1;
	if (*ms > CONFIG_FLEET_EJECT_CAP_MS) {
		config_yaml_error(y, &at, kpath, "at most 5m: ejections in a row multiply "
				  "eject_time up to 5m, and no ejection lasts longer");
		return -1;
	}
	return 0;
}

/* 0 is allowed: ejection counted and logged, never applied. */
int
config_fleet_parse_percent(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field)
{
	unsigned *dst = field;
	uint64_t v;
	const char *text;

	text = config_yaml_scalar(y, node, kpath);
	if (text == NULL)
		return -1;
	if (strcmp(text, "0") == 0) {
		*dst = 0;
		return 0;
	}
	if (config_yaml_count(y, node, kpath, &config_fleet_max_percent, &v) < 0)
		return -1;
	*dst = (unsigned)v;
	return 0;
}

int
config_fleet_parse_per_address(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			       void *field)
{
	return config_yaml_count(y, node, kpath, &config_fleet_max_per_address, field);
}

void
config_fleet_backend_defaults(struct config_backend *b)
{
	b->resolve_interval_ms = 10000;
	b->health.enabled = false;
	b->health.interval_ms = 2000;
	b->health.timeout_ms = 1000;
	b->health.rise = 2;
	b->health.fall = 3;
	b->eject_after = 0;
	b->eject_time_ms = 10000;
	b->max_ejected_percent = 50;
}

/* ---- resolver ------------------------------------------------------------- */

static int
config_fleet_parse_nameservers(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			       void *field)
{
	struct config_resolver *r = field;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	r->nameservers = config_yaml_seq_alloc(y, node, kpath, sizeof(*r->nameservers),
					       "nameserver", &n);
	if (r->nameservers == NULL)
		return -1;
	r->n_nameservers = n;
	for (size_t i = 0; i < n; i++) {
		struct config_addr *a = &r->nameservers[i];
		yaml_node_t *item = config_yaml_seq_item(y, node, i);
		const char *text, *why = NULL;

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		a->mark = config_yaml_mark(item);
		text = config_yaml_nonempty(y, item, ipath);
		if (text == NULL)
			continue;
		if (config_addr_parse(text, a, &why) < 0) {
			config_yaml_error(y, &a->mark, ipath, "invalid nameserver \"%s\": %s "
					  "(a nameserver is a numeric host:port, e.g. "
					  "127.0.0.1:53)", text, why);
			continue;
		}
		a->text = strdup(text);
		if (a->text == NULL)
			config_yaml_oom(y, item, ipath);
	}
	return 0;
}

static const struct config_yaml_key config_fleet_resolver_keys[] = {
	{ "nameservers", config_fleet_parse_nameservers, 0, false },
	{ "hosts_file", config_yaml_parse_file, offsetof(struct config_resolver, hosts_file), false },
	{ NULL, NULL, 0, false },
};

int
config_fleet_parse_resolver(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    void *field)
{
	struct config *cfg = field;
	struct config_resolver *r = &cfg->resolver;
	struct config_yaml_seen seen;
	struct config_mark at = config_yaml_mark(node);

	r->configured = true;
	if (config_yaml_walk(y, node, kpath, config_fleet_resolver_keys, r, &seen) < 0)
		return -1;
	if (seen.mask == 0)
		config_yaml_error(y, &at, kpath, "needs nameservers, hosts_file or both "
				  "(leave resolver: out to use the system's configuration)");
	return 0;
}

/* ---- between sections ------------------------------------------------------ */

static struct config_backend *
config_fleet_find_backend(struct config *cfg, const char *name)
{
	for (size_t b = 0; b < cfg->n_backends; b++) {
		if (cfg->backends[b].name != NULL && strcmp(cfg->backends[b].name, name) == 0)
			return &cfg->backends[b];
	}
	return NULL;
}

static void
config_fleet_resolve_routes(struct config_yaml *y, struct config *cfg)
{
	char kpath[CONFIG_YAML_KPATH];

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		for (size_t r = 0; r < l->n_routes; r++) {
			struct config_route *route = &l->routes[r];

			if (route->backend_name == NULL)
				continue;
			route->backend = config_fleet_find_backend(cfg, route->backend_name);
			if (route->backend != NULL || cfg->backends == NULL)
				continue;
			config_yaml_pathf(kpath, sizeof(kpath), "listen[%zu].routes[%zu].backend", i, r);
			config_yaml_error(y, &route->backend_mark, kpath,
					  "backend '%s' is not defined under backends",
					  route->backend_name);
		}
	}
}

/* A probe larger than max_frame_size would be a frame the backend is
 * entitled to refuse. */
static void
config_fleet_check_probes(struct config_yaml *y, const struct config *cfg)
{
	char kpath[CONFIG_YAML_KPATH], size[32];

	for (size_t b = 0; b < cfg->n_backends; b++) {
		const struct config_backend *be = &cfg->backends[b];
		uint64_t len;

		if (!be->health.enabled || be->name == NULL || be->health.header == NULL ||
		    be->health.payload == NULL)
			continue;  /* a health_check: that failed to parse was reported */
		len = 6 + strlen(be->health.header) + strlen(be->health.payload);
		if (len <= cfg->limits.max_frame_size)
			continue;
		units_format_size(cfg->limits.max_frame_size, size, sizeof(size));
		config_yaml_pathf(kpath, sizeof(kpath), "backends.%s.health_check", be->name);
		config_yaml_error(y, &be->mark, kpath, "the probe frame (%llu bytes) is larger "
				  "than limits.max_frame_size (%s)", (unsigned long long)len, size);
	}
}

void
config_fleet_check(struct config_yaml *y, struct config *cfg)
{
	config_fleet_resolve_routes(y, cfg);
	config_fleet_check_probes(y, cfg);
}

/* ---- freeing ------------------------------------------------------------------ */

void
config_fleet_clear_listener(struct config_listener *l)
{
	for (size_t i = 0; i < l->n_routes; i++) {
		free(l->routes[i].sni);
		free(l->routes[i].alpn);
		free(l->routes[i].backend_name);
	}
	free(l->routes);
	l->routes = NULL;
	l->n_routes = 0;
	for (size_t i = 0; i < l->n_proxy_trusted; i++)
		free(l->proxy_trusted[i].text);
	free(l->proxy_trusted);
	l->proxy_trusted = NULL;
	l->n_proxy_trusted = 0;
}

void
config_fleet_clear_backend(struct config_backend *b)
{
	for (size_t s = 0; s < b->n_servers; s++)
		free(b->servers[s].addr.host);
	free(b->health.header);
	free(b->health.payload);
	b->health.header = NULL;
	b->health.payload = NULL;
}

void
config_fleet_clear(struct config *cfg)
{
	struct config_resolver *r = &cfg->resolver;

	for (size_t i = 0; i < r->n_nameservers; i++)
		free(r->nameservers[i].text);
	free(r->nameservers);
	free(r->hosts_file);
	memset(r, 0, sizeof(*r));
}
