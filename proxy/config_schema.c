/*
 * config_schema — what a sluice.yaml may say (docs/CONFIG.md): a table of
 * keys {name, parser, offset, required} per section for config_yaml to
 * walk, the values only sluice has, bounds and defaults, and the rules
 * that tie the keys of one mapping together. Rules between sections
 * (backend references, an address used twice) are config.c's.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <yaml.h>

#include <sluice/config_addr.h>
#include <sluice/config_fleet.h>
#include <sluice/config_schema.h>
#include <sluice/config_types.h>
#include <sluice/config_yaml.h>
#include <sluice/log.h>
#include <sluice/tls_settings.h>
#include <sluice/tls_tickets.h>
#include <sluice/units.h>

#define CONFIG_SCHEMA_VERIFY_DEPTH 5
#define CONFIG_SCHEMA_MAX_FRAME UINT64_C(0xFFFFFFFF)

/*
 * Upper bounds of the counts (docs/CONFIG.md gives the reasons too). Far
 * above any sane setting, they turn a typo (an extra digit or three) into
 * an error at load rather than a daemon that tries to open a billion
 * descriptors or threads. CONFIG_SCHEMA_MAX_WORKERS, 256, is more CPUs
 * than nearly any host has.
 */
static const struct config_yaml_bound config_schema_max_workers = {
	CONFIG_SCHEMA_MAX_WORKERS,
	"more threads than CPUs only contend, and each opens its own backend connections",
};
/* With 256 workers, 262144 connections to one server: more than any
 * backend accepts. */
static const struct config_yaml_bound config_schema_max_backend_conns = {
	1024, "per server and per worker: workers multiply it",
};
/* Queued requests of one backend in one worker, each holding its frame. */
static const struct config_yaml_bound config_schema_max_pending = {
	1048576, "requests queued that long would outlast any queue_timeout",
};
/* What is left of fs.nr_open leaves room for backends and listeners. */
static const struct config_yaml_bound config_schema_max_clients = {
	1000000, "each client needs a file descriptor, and Linux allows a process "
	"at most fs.nr_open, 1048576 by default",
};
/* 5 intermediates (the default) is already a deep PKI. */
static const struct config_yaml_bound config_schema_max_verify_depth = {
	100, "OpenSSL's own limit",
};

/* The key file is checked here, so that a bad line is reported at the
 * ticket_keys key with its own line number; the keys themselves are
 * loaded again with the certificates. */
static int
config_schema_parse_ticket_keys(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field)
{
	char **dst = field;
	struct config_mark at = config_yaml_mark(node);
	char err[CONFIG_YAML_LINE];

	if (config_yaml_parse_file(y, node, kpath, field) < 0)
		return -1;
	if (tls_ticket_keys_check_file(*dst, err, sizeof(err)) < 0) {
		config_yaml_error(y, &at, kpath, "%s", err);
		return -1;
	}
	return 0;
}

static int
config_schema_parse_backend_conns(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				  void *field)
{
	return config_yaml_count_uint(y, node, kpath, &config_schema_max_backend_conns, field);
}

static int
config_schema_parse_max_pending(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field)
{
	return config_yaml_count_uint(y, node, kpath, &config_schema_max_pending, field);
}

static int
config_schema_parse_verify_depth(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				 void *field)
{
	return config_yaml_count_uint(y, node, kpath, &config_schema_max_verify_depth, field);
}

static int
config_schema_parse_max_clients(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field)
{
	return config_yaml_count(y, node, kpath, &config_schema_max_clients, field);
}

static int
config_schema_parse_min_version(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field)
{
	static const struct config_yaml_enum values[] = {
		{ "TLSv1.2", TLS1_2_VERSION },
		{ "TLSv1.3", TLS1_3_VERSION },
		{ NULL, 0 },
	};

	return config_yaml_enum(y, node, kpath, values, field);
}

static int
config_schema_parse_client_verify(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				  void *field)
{
	static const struct config_yaml_enum values[] = {
		{ "required", TLS_VERIFY_REQUIRED },
		{ "optional", TLS_VERIFY_OPTIONAL },
		{ NULL, 0 },
	};
	enum tls_client_verify *dst = field;
	int v;

	if (config_yaml_enum(y, node, kpath, values, &v) < 0)
		return -1;
	*dst = (enum tls_client_verify)v;
	return 0;
}

static int
config_schema_parse_log_level(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			      void *field)
{
	static const struct config_yaml_enum values[] = {
		{ "error", LOG_ERROR },
		{ "warn", LOG_WARN },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
		{ NULL, 0 },
	};
	enum log_level *dst = field;
	int v;

	if (config_yaml_enum(y, node, kpath, values, &v) < 0)
		return -1;
	*dst = (enum log_level)v;
	return 0;
}

/* "auto" is stored as 0 and resolved by config_workers(). */
static int
config_schema_parse_workers(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    void *field)
{
	unsigned *dst = field;
	uint64_t v;

	if (node->type == YAML_SCALAR_NODE &&
	    strcmp((const char *)node->data.scalar.value, "auto") == 0) {
		*dst = 0;
		return 0;
	}
	if (node->type == YAML_SCALAR_NODE &&
	    config_yaml_number((const char *)node->data.scalar.value, &v) < 0) {
		struct config_mark at = config_yaml_mark(node);

		config_yaml_error(y, &at, kpath,
				  "expected auto or a number of threads, found \"%s\"",
				  (const char *)node->data.scalar.value);
		return -1;
	}
	return config_yaml_count_uint(y, node, kpath, &config_schema_max_workers, dst);
}

/* ---- addresses --------------------------------------------------------- */

static int
config_schema_parse_address(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    void *field)
{
	return config_yaml_parse_addr(y, node, kpath, field, config_addr_parse);
}

/* ---- lists --------------------------------------------------------------- */

/* Needs the whole tls section: fills alpn and n_alpn. */
static int
config_schema_parse_alpn(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			 void *field)
{
	struct tls_settings *tls = field;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	tls->alpn = config_yaml_seq_alloc(y, node, kpath, sizeof(char *), "protocol", &n);
	if (tls->alpn == NULL)
		return -1;
	tls->n_alpn = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_yaml_seq_item(y, node, i);
		struct config_mark at = config_yaml_mark(item);

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		if (config_yaml_parse_string(y, item, ipath, &tls->alpn[i]) < 0)
			continue;
		if (strlen(tls->alpn[i]) > 255)
			config_yaml_error(y, &at, ipath, "a protocol name is at most 255 bytes");
	}
	return 0;
}

/* ---- where TLS problems point ------------------------------------------- */

/* The key a problem found while building a listener's TLS context names
 * (tls_settings.h), and where its value's mark is kept: in the certificates[] entry
 * or in the tls: section. */
struct config_schema_tls_key {
	const char *name;         /* NULL: the entry or section as a whole */
	bool in_cert;
	size_t mark;              /* offset in struct config_cert_marks or config_tls_marks */
};

static const struct config_schema_tls_key config_schema_tls_key_of[TLS_KEY_COUNT] = {
	[TLS_KEY_NONE] = { NULL, false, 0 },
	[TLS_KEY_CERT] = { "cert", true, offsetof(struct config_cert_marks, cert) },
	[TLS_KEY_KEY] = { "key", true, offsetof(struct config_cert_marks, key) },
	[TLS_KEY_OCSP] = { "ocsp", true, offsetof(struct config_cert_marks, ocsp) },
	[TLS_KEY_CIPHERS] = { "ciphers", false, offsetof(struct config_tls_marks, ciphers) },
	[TLS_KEY_CIPHERSUITES] = { "ciphersuites", false, offsetof(struct config_tls_marks, ciphersuites) },
	[TLS_KEY_ALPN] = { "alpn", false, offsetof(struct config_tls_marks, alpn) },
	[TLS_KEY_CLIENT_CA] = { "client_ca", false, offsetof(struct config_tls_marks, client_ca) },
	[TLS_KEY_CRL] = { "crl", false, offsetof(struct config_tls_marks, crl) },
	[TLS_KEY_TICKET_KEYS] = { "ticket_keys", false, offsetof(struct config_tls_marks, ticket_keys) },
};

/* The mark of w's key in owner, a config_cert_marks or config_tls_marks. */
static const struct config_mark *
config_schema_tls_mark_at(const void *owner, const struct config_schema_tls_key *w)
{
	return (const struct config_mark *)((const char *)owner + w->mark);
}

/* Keeps where the values of a certificates[] entry (in_cert: owner is its
 * config_cert_marks) or of a tls: section (its config_tls_marks) were
 * written, for config_schema_tls_where. */
static void
config_schema_keep_tls_marks(void *owner, bool in_cert, const struct config_yaml_seen *seen,
			     const struct config_yaml_key *keys)
{
	for (size_t k = 0; k < TLS_KEY_COUNT; k++) {
		const struct config_schema_tls_key *w = &config_schema_tls_key_of[k];
		const struct config_mark *at;

		if (w->name == NULL || w->in_cert != in_cert)
			continue;
		at = config_yaml_seen_at(seen, keys, w->name);
		if (at != NULL)
			memcpy((char *)owner + w->mark, at, sizeof(*at));
	}
}

/* ---- sections ------------------------------------------------------------ */

static const struct config_yaml_key config_schema_cert_keys[] = {
	{ "cert", config_yaml_parse_path, offsetof(struct tls_cert_files, cert), true },
	{ "key", config_yaml_parse_path, offsetof(struct tls_cert_files, key), true },
	{ "ocsp", config_yaml_parse_file, offsetof(struct tls_cert_files, ocsp), false },
	{ NULL, NULL, 0, false },
};

/* Needs the whole listener: fills tls.certs, tls.n_certs and tls_at.certs. */
static int
config_schema_parse_certificates(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				 void *field)
{
	struct config_listener *l = field;
	struct tls_settings *tls = &l->tls;
	struct config_yaml_seen seen;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	tls->certs = config_yaml_seq_alloc(y, node, kpath, sizeof(*tls->certs), "certificate", &n);
	if (tls->certs == NULL)
		return -1;
	l->tls_at.certs = calloc(n, sizeof(*l->tls_at.certs));
	if (l->tls_at.certs == NULL) {
		free(tls->certs);
		tls->certs = NULL;
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	tls->n_certs = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_yaml_seq_item(y, node, i);
		struct config_cert_marks *marks = &l->tls_at.certs[i];

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		marks->entry = config_yaml_mark(item);
		if (config_yaml_walk(y, item, ipath, config_schema_cert_keys, &tls->certs[i],
				     &seen) == 0)
			config_schema_keep_tls_marks(marks, true, &seen, config_schema_cert_keys);
	}
	return 0;
}

/* Offsets into struct config_listener: the values go to its tls settings,
 * and the certificates' marks to tls_at beside them. */
#define CONFIG_SCHEMA_TLS_FIELD(name) offsetof(struct config_listener, tls.name)
static const struct config_yaml_key config_schema_tls_keys[] = {
	{ "certificates", config_schema_parse_certificates, 0, true },
	{ "min_version", config_schema_parse_min_version, CONFIG_SCHEMA_TLS_FIELD(min_version), false },
	{ "ciphers", config_yaml_parse_string, CONFIG_SCHEMA_TLS_FIELD(ciphers), false },
	{ "ciphersuites", config_yaml_parse_string, CONFIG_SCHEMA_TLS_FIELD(ciphersuites), false },
	{ "sni_required", config_yaml_parse_bool, CONFIG_SCHEMA_TLS_FIELD(sni_required), false },
	{ "alpn", config_schema_parse_alpn, offsetof(struct config_listener, tls), false },
	{ "alpn_required", config_yaml_parse_bool, CONFIG_SCHEMA_TLS_FIELD(alpn_required), false },
	{ "client_ca", config_yaml_parse_path, CONFIG_SCHEMA_TLS_FIELD(client_ca), false },
	{ "client_verify", config_schema_parse_client_verify, CONFIG_SCHEMA_TLS_FIELD(client_verify), false },
	{ "verify_depth", config_schema_parse_verify_depth, CONFIG_SCHEMA_TLS_FIELD(verify_depth), false },
	{ "crl", config_yaml_parse_file, CONFIG_SCHEMA_TLS_FIELD(crl), false },
	{ "session_tickets", config_yaml_parse_bool, CONFIG_SCHEMA_TLS_FIELD(session_tickets), false },
	{ "ticket_keys", config_schema_parse_ticket_keys, CONFIG_SCHEMA_TLS_FIELD(ticket_keys), false },
	{ NULL, NULL, 0, false },
};

/* A key that only means something with client_ca (client_verify, crl,
 * verify_depth) is an error without it, rather than silently ignored. */
static void
config_schema_needs_client_ca(struct config_yaml *y, const struct tls_settings *tls,
			      const char *kpath, const struct config_yaml_seen *seen, const char *key,
			      const char *why)
{
	const struct config_mark *at = config_yaml_seen_at(seen, config_schema_tls_keys, key);
	char child[CONFIG_YAML_KPATH];

	if (at == NULL || tls->client_ca != NULL ||
	    config_yaml_seen_at(seen, config_schema_tls_keys, "client_ca") != NULL)
		return;
	config_yaml_child_path(child, sizeof(child), kpath, key);
	config_yaml_error(y, at, child, "needs client_ca, %s", why);
}

static void
config_schema_check_tls(struct config_yaml *y, struct tls_settings *tls, const char *kpath,
			const struct config_yaml_seen *seen)
{
	const struct config_yaml_key *table = config_schema_tls_keys;
	const struct config_mark *verify = config_yaml_seen_at(seen, table, "client_verify");
	const struct config_mark *alpn_req = config_yaml_seen_at(seen, table, "alpn_required");
	const struct config_mark *keys = config_yaml_seen_at(seen, table, "ticket_keys");
	char child[CONFIG_YAML_KPATH];

	config_schema_needs_client_ca(y, tls, kpath, seen, "client_verify",
				      "the CA file that client certificates are checked against");
	config_schema_needs_client_ca(y, tls, kpath, seen, "crl",
				      "the CA file whose client certificates it revokes");
	config_schema_needs_client_ca(y, tls, kpath, seen, "verify_depth",
				      "the CA file that client certificate chains lead to");
	if (verify == NULL && tls->client_ca != NULL)
		tls->client_verify = TLS_VERIFY_REQUIRED;
	if (alpn_req != NULL && tls->alpn_required && tls->n_alpn == 0 &&
	    !config_yaml_seen_at(seen, table, "alpn")) {
		config_yaml_child_path(child, sizeof(child), kpath, "alpn_required");
		config_yaml_error(y, alpn_req, child,
				  "needs alpn, the list of protocols to accept");
	}
	if (keys != NULL && !tls->session_tickets) {
		config_yaml_child_path(child, sizeof(child), kpath, "ticket_keys");
		config_yaml_error(y, keys, child, "has no use with session_tickets: false");
	}
}

/* Needs the whole listener: fills tls and tls_at. */
static int
config_schema_parse_tls(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			void *field)
{
	struct config_listener *l = field;
	struct config_yaml_seen seen;

	unsigned before = y->n_errors;

	l->tls_at.section = config_yaml_mark(node);
	if (config_yaml_walk(y, node, kpath, config_schema_tls_keys, l, &seen) == 0) {
		config_schema_keep_tls_marks(&l->tls_at, false, &seen, config_schema_tls_keys);
		config_schema_check_tls(y, &l->tls, kpath, &seen);
	}
	/* A half-parsed section (a NULL in the ALPN list, a default where a
	 * value was refused) must not reach OpenSSL. */
	l->tls_at.failed = y->n_errors != before;
	return l->tls_at.failed ? -1 : 0;
}

static const struct config_yaml_key config_schema_listener_keys[] = {
	{ "address", config_schema_parse_address, offsetof(struct config_listener, addr), true },
	{ "backend", config_yaml_parse_string, offsetof(struct config_listener, backend_name), true },
	{ "tls", config_schema_parse_tls, 0, true },
	{ "routes", config_fleet_parse_routes, 0, false },
	{ "proxy_protocol", config_fleet_parse_proxy_protocol, offsetof(struct config_listener, proxy_protocol), false },
	{ "proxy_trusted", config_fleet_parse_proxy_trusted, 0, false },
	{ NULL, NULL, 0, false },
};

static void
config_schema_listener_init(struct config_listener *l)
{
	l->tls.min_version = TLS1_2_VERSION;
	l->tls.session_tickets = true;
	l->tls.client_verify = TLS_VERIFY_NONE;
	l->tls.verify_depth = CONFIG_SCHEMA_VERIFY_DEPTH;
}

/* Needs the whole struct config: fills listeners and n_listeners. */
static int
config_schema_parse_listen(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field)
{
	struct config *cfg = field;
	struct config_yaml_seen seen;
	const struct config_mark *at;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	cfg->listeners = config_yaml_seq_alloc(y, node, kpath, sizeof(*cfg->listeners),
					       "listener", &n);
	if (cfg->listeners == NULL)
		return -1;
	cfg->n_listeners = n;
	for (size_t i = 0; i < n; i++) {
		struct config_listener *l = &cfg->listeners[i];
		yaml_node_t *item = config_yaml_seq_item(y, node, i);

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		config_schema_listener_init(l);
		l->mark = config_yaml_mark(item);
		if (config_yaml_walk(y, item, ipath, config_schema_listener_keys, l, &seen) < 0)
			continue;
		at = config_yaml_seen_at(&seen, config_schema_listener_keys, "backend");
		if (at != NULL)
			l->backend_mark = *at;
		config_fleet_check_listener(y, l, ipath, config_yaml_seen_at(&seen,
					    config_schema_listener_keys, "proxy_protocol"));
	}
	return 0;
}

static const struct config_yaml_key config_schema_server_keys[] = {
	{ "address", config_fleet_parse_server_address, offsetof(struct config_server, addr), true },
	{ NULL, NULL, 0, false },
};

/* Needs the whole backend: fills servers and n_servers. */
static int
config_schema_parse_servers(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    void *field)
{
	struct config_backend *b = field;
	struct config_yaml_seen seen;
	char ipath[CONFIG_YAML_KPATH];
	size_t n;

	b->servers = config_yaml_seq_alloc(y, node, kpath, sizeof(*b->servers), "server", &n);
	if (b->servers == NULL)
		return -1;
	b->n_servers = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_yaml_seq_item(y, node, i);

		config_yaml_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		b->servers[i].mark = config_yaml_mark(item);
		config_yaml_walk(y, item, ipath, config_schema_server_keys, &b->servers[i], &seen);
		if (b->servers[i].addr.host != NULL)
			b->has_names = true;
	}
	return 0;
}

static const struct config_yaml_key config_schema_backend_keys[] = {
	{ "servers", config_schema_parse_servers, 0, true },
	{ "connections", config_schema_parse_backend_conns, offsetof(struct config_backend, connections), false },
	{ "connect_timeout", config_yaml_parse_duration, offsetof(struct config_backend, connect_timeout_ms), false },
	{ "queue_timeout", config_yaml_parse_duration, offsetof(struct config_backend, queue_timeout_ms), false },
	{ "request_timeout", config_yaml_parse_duration, offsetof(struct config_backend, request_timeout_ms), false },
	{ "max_pending", config_schema_parse_max_pending, offsetof(struct config_backend, max_pending), false },
	{ "resolve_interval", config_yaml_parse_duration, offsetof(struct config_backend, resolve_interval_ms), false },
	{ "health_check", config_fleet_parse_health, offsetof(struct config_backend, health), false },
	{ "eject_after", config_fleet_parse_eject_after, offsetof(struct config_backend, eject_after), false },
	{ "eject_time", config_fleet_parse_eject_time, offsetof(struct config_backend, eject_time_ms), false },
	{ "max_ejected_percent", config_fleet_parse_percent, offsetof(struct config_backend, max_ejected_percent), false },
	{ NULL, NULL, 0, false },
};

static void
config_schema_backend_init(struct config_backend *b)
{
	b->connections = 4;
	b->connect_timeout_ms = 2000;
	b->queue_timeout_ms = 5000;
	b->request_timeout_ms = 30000;
	b->max_pending = 4096;
	config_fleet_backend_defaults(b);
}

/* The same server twice would share one metrics label and double its
 * share of the load without saying so. */
static void
config_schema_check_servers(struct config_yaml *y, struct config_backend *b, const char *kpath)
{
	char ipath[CONFIG_YAML_KPATH];

	for (size_t i = 0; i < b->n_servers; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!config_addr_equal(&b->servers[i].addr, &b->servers[j].addr))
				continue;
			config_yaml_pathf(ipath, sizeof(ipath), "%s.servers[%zu].address",
					  kpath, i);
			config_yaml_error(y, &b->servers[i].addr.mark, ipath,
					  "%s is already listed as servers[%zu]",
					  b->servers[i].addr.text, j);
			break;
		}
	}
}

/* Backend names end up in logs and metric labels: keep them plain. */
static int
config_schema_backend_name_ok(const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return 0;
	}
	return 1;
}

static struct config_backend *
config_schema_find_backend(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (cfg->backends[i].name != NULL && strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	}
	return NULL;
}

static void
config_schema_parse_backend_pair(struct config_yaml *y, yaml_node_pair_t *pair,
				 const char *kpath, struct config *cfg)
{
	yaml_node_t *key = config_yaml_node(y, pair->key);
	struct config_mark at = config_yaml_mark(key);
	struct config_backend *b, *first;
	struct config_yaml_seen seen;
	const char *name = config_yaml_scalar(y, key, kpath);
	char child[CONFIG_YAML_KPATH];

	if (name == NULL)
		return;
	config_yaml_child_path(child, sizeof(child), kpath, name);
	if (!config_schema_backend_name_ok(name)) {
		config_yaml_error(y, &at, child, "a backend name uses only letters, "
				  "digits, '_', '-' and '.'");
		return;
	}
	first = config_schema_find_backend(cfg, name);
	if (first != NULL) {
		config_yaml_error(y, &at, child, "duplicate key (first set at line %u)",
				  first->mark.line);
		return;
	}
	b = &cfg->backends[cfg->n_backends++];
	config_schema_backend_init(b);
	b->mark = at;
	b->name = strdup(name);
	if (b->name == NULL) {
		config_yaml_oom(y, key, child);
		return;
	}
	if (config_yaml_walk(y, config_yaml_node(y, pair->value), child, config_schema_backend_keys,
			     b, &seen) == 0)
		config_schema_check_servers(y, b, child);
}

/* Needs the whole struct config: fills backends and n_backends. */
static int
config_schema_parse_backends(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			     void *field)
{
	struct config *cfg = field;
	struct config_mark at = config_yaml_mark(node);
	size_t n;

	if (config_yaml_expect(y, node, YAML_MAPPING_NODE, kpath) < 0)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n == 0) {
		config_yaml_error(y, &at, kpath, "must define at least one backend");
		return -1;
	}
	cfg->backends = calloc(n, sizeof(*cfg->backends));
	if (cfg->backends == NULL) {
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		config_schema_parse_backend_pair(y, &node->data.mapping.pairs.start[i], kpath, cfg);
	return 0;
}

static const struct config_yaml_key config_schema_limits_keys[] = {
	{ "max_connections", config_schema_parse_max_clients, offsetof(struct config_limits, max_connections), false },
	{ "max_frame_size", config_yaml_parse_size, offsetof(struct config_limits, max_frame_size), false },
	{ "client_buffer", config_yaml_parse_size, offsetof(struct config_limits, client_buffer), false },
	{ "handshake_timeout", config_yaml_parse_duration, offsetof(struct config_limits, handshake_timeout_ms), false },
	{ "idle_timeout", config_yaml_parse_duration, offsetof(struct config_limits, idle_timeout_ms), false },
	{ "max_connections_per_address", config_fleet_parse_per_address, offsetof(struct config_limits, max_connections_per_address), false },
	{ NULL, NULL, 0, false },
};

static void
config_schema_check_frame_size(struct config_yaml *y, const struct config_limits *lim,
			       const struct config_mark *at)
{
	char size[32];

	units_format_size(lim->max_frame_size, size, sizeof(size));
	if (lim->max_frame_size < 6)
		config_yaml_error(y, at, "limits.max_frame_size", "%s is too small: the "
				  "6-byte frame prefix alone needs 6B", size);
	else if (lim->max_frame_size > CONFIG_SCHEMA_MAX_FRAME)
		config_yaml_error(y, at, "limits.max_frame_size", "%s is too large: "
				  "total_len is a 32-bit field, so at most 4294967295B "
				  "(4GiB - 1)", size);
}

/* A client must be able to have at least one whole frame in flight, or its
 * first large request would stall it for good. */
static void
config_schema_check_client_buffer(struct config_yaml *y, const struct config_limits *lim,
				  const struct config_mark *frame_at,
				  const struct config_mark *buffer_at)
{
	char frame[32], buffer[32];

	if (lim->client_buffer >= lim->max_frame_size)
		return;
	units_format_size(lim->max_frame_size, frame, sizeof(frame));
	units_format_size(lim->client_buffer, buffer, sizeof(buffer));
	if (buffer_at != NULL)
		config_yaml_error(y, buffer_at, "limits.client_buffer", "%s is smaller than "
				  "max_frame_size (%s): a client must be able to hold one "
				  "whole frame in its buffer", buffer, frame);
	else
		config_yaml_error(y, frame_at, "limits.max_frame_size", "%s is larger than "
				  "client_buffer (%s by default): raise limits.client_buffer "
				  "to at least %s so a client can hold one whole frame",
				  frame, buffer, frame);
}

static int
config_schema_parse_limits(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field)
{
	struct config_limits *lim = field;
	const struct config_mark *frame_at, *buffer_at;
	struct config_yaml_seen seen;
	unsigned before = y->n_errors;

	if (config_yaml_walk(y, node, kpath, config_schema_limits_keys, lim, &seen) < 0)
		return -1;
	if (y->n_errors != before)
		return -1;  /* a size failed to parse: comparing defaults would mislead */
	frame_at = config_yaml_seen_at(&seen, config_schema_limits_keys, "max_frame_size");
	buffer_at = config_yaml_seen_at(&seen, config_schema_limits_keys, "client_buffer");
	if (frame_at != NULL)
		config_schema_check_frame_size(y, lim, frame_at);
	if (y->n_errors == before && (frame_at != NULL || buffer_at != NULL))
		config_schema_check_client_buffer(y, lim, frame_at, buffer_at);
	return 0;
}

static const struct config_yaml_key config_schema_shutdown_keys[] = {
	{ "grace_timeout", config_yaml_parse_duration0, offsetof(struct config, grace_timeout_ms), false },
	{ "delay", config_yaml_parse_duration0, offsetof(struct config, shutdown_delay_ms), false },
	{ NULL, NULL, 0, false },
};

static const struct config_yaml_key config_schema_admin_keys[] = {
	{ "address", config_schema_parse_address, offsetof(struct config, admin_addr), true },
	{ NULL, NULL, 0, false },
};

static const struct config_yaml_key config_schema_log_keys[] = {
	{ "level", config_schema_parse_log_level, offsetof(struct config, log_level), false },
	{ NULL, NULL, 0, false },
};

/* shutdown:, admin: and log: keep their few fields directly in struct
 * config, so their tables' offsets are into struct config. */
static int
config_schema_parse_shutdown(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			     void *field)
{
	struct config_yaml_seen seen;

	return config_yaml_walk(y, node, kpath, config_schema_shutdown_keys, field, &seen);
}

static int
config_schema_parse_admin(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			  void *field)
{
	struct config *cfg = field;
	struct config_yaml_seen seen;

	if (config_yaml_walk(y, node, kpath, config_schema_admin_keys, cfg, &seen) < 0)
		return -1;
	cfg->has_admin = cfg->admin_addr.text != NULL;
	return 0;
}

static int
config_schema_parse_log(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			void *field)
{
	struct config_yaml_seen seen;

	return config_yaml_walk(y, node, kpath, config_schema_log_keys, field, &seen);
}

static const struct config_yaml_key config_schema_top_keys[] = {
	{ "workers", config_schema_parse_workers, offsetof(struct config, workers), false },
	{ "user", config_yaml_parse_string, offsetof(struct config, user), false },
	{ "group", config_yaml_parse_string, offsetof(struct config, group), false },
	{ "listen", config_schema_parse_listen, 0, true },
	{ "backends", config_schema_parse_backends, 0, true },
	{ "resolver", config_fleet_parse_resolver, 0, false },
	{ "limits", config_schema_parse_limits, offsetof(struct config, limits), false },
	{ "shutdown", config_schema_parse_shutdown, 0, false },
	{ "admin", config_schema_parse_admin, 0, false },
	{ "log", config_schema_parse_log, 0, false },
	{ NULL, NULL, 0, false },
};

/* ---- the whole file --------------------------------------------------------- */

/* group: alone would change only the group of a process that keeps
 * running as root (process_drop_privileges keeps the uid it has): an
 * operator who wrote it meant to give up root, so say it cannot be done
 * that way instead of doing half of it. */
static void
config_schema_check_identity(struct config_yaml *y, const struct config_yaml_seen *seen)
{
	const struct config_mark *group;

	group = config_yaml_seen_at(seen, config_schema_top_keys, "group");
	if (group == NULL || config_yaml_seen_at(seen, config_schema_top_keys, "user") != NULL)
		return;
	config_yaml_error(y, group, "group", "needs user: without it sluice would go on "
			  "running as root with only its group changed");
}

void
config_schema_apply(struct config_yaml *y, yaml_node_t *root, struct config *cfg)
{
	struct config_yaml_seen seen;
	struct config_mark at;

	if (root == NULL) {
		config_yaml_error(y, NULL, NULL, "the file is empty: it needs at least "
				  "listen: and backends:");
		return;
	}
	at = config_yaml_mark(root);
	if (root->type != YAML_MAPPING_NODE) {
		config_yaml_error(y, &at, NULL, "the file must be a mapping of keys "
				  "(listen:, backends:, ...), found %s",
				  config_yaml_type_name(root));
		return;
	}
	config_yaml_walk(y, root, "", config_schema_top_keys, cfg, &seen);
	config_schema_check_identity(y, &seen);
}

/* ---- for the snapshot ---------------------------------------------------------- */

void
config_schema_defaults(struct config *cfg)
{
	cfg->workers = 0;
	cfg->limits.max_connections = 10000;
	cfg->limits.max_frame_size = UINT64_C(1) << 20;
	cfg->limits.client_buffer = UINT64_C(4) << 20;
	cfg->limits.handshake_timeout_ms = 10000;
	cfg->limits.idle_timeout_ms = 300000;
	cfg->grace_timeout_ms = 5000;
	cfg->log_level = LOG_INFO;
}

const struct config_mark *
config_schema_tls_where(const struct config_listener *l, size_t i, long cert, enum tls_key key,
			char *kpath, size_t len)
{
	const struct config_tls_marks *marks = &l->tls_at;
	bool in_cert = cert >= 0 && (size_t)cert < l->tls.n_certs;
	const void *owner = in_cert ? (const void *)&marks->certs[cert] : (const void *)marks;
	const struct config_mark *at = in_cert ? &marks->certs[cert].entry : &marks->section;
	const struct config_schema_tls_key *w = NULL;
	char base[CONFIG_YAML_KPATH];

	if (in_cert)
		config_yaml_pathf(base, sizeof(base), "listen[%zu].tls.certificates[%ld]", i, cert);
	else
		config_yaml_pathf(base, sizeof(base), "listen[%zu].tls", i);
	config_yaml_pathf(kpath, len, "%s", base);
	if ((unsigned)key < TLS_KEY_COUNT)
		w = &config_schema_tls_key_of[key];
	/* A default value (no mark) has no line of its own: the entry's. */
	if (w != NULL && w->name != NULL && w->in_cert == in_cert &&
	    config_schema_tls_mark_at(owner, w)->line != 0) {
		config_yaml_child_path(kpath, len, base, w->name);
		at = config_schema_tls_mark_at(owner, w);
	}
	return at;
}

static void
config_schema_clear_tls(struct tls_settings *tls, struct config_tls_marks *marks)
{
	free(marks->certs);
	for (size_t i = 0; i < tls->n_certs; i++) {
		free(tls->certs[i].cert);
		free(tls->certs[i].key);
		free(tls->certs[i].ocsp);
	}
	free(tls->certs);
	for (size_t i = 0; i < tls->n_alpn; i++)
		free(tls->alpn[i]);
	free(tls->alpn);
	free(tls->ciphers);
	free(tls->ciphersuites);
	free(tls->client_ca);
	free(tls->crl);
	free(tls->ticket_keys);
}

void
config_schema_clear(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		free(l->addr.text);
		free(l->backend_name);
		config_schema_clear_tls(&l->tls, &l->tls_at);
		config_fleet_clear_listener(l);
	}
	free(cfg->listeners);
	cfg->listeners = NULL;
	cfg->n_listeners = 0;
	for (size_t i = 0; i < cfg->n_backends; i++) {
		struct config_backend *b = &cfg->backends[i];

		config_fleet_clear_backend(b);
		for (size_t s = 0; s < b->n_servers; s++)
			free(b->servers[s].addr.text);
		free(b->servers);
		free(b->name);
	}
	free(cfg->backends);
	cfg->backends = NULL;
	cfg->n_backends = 0;
	config_fleet_clear(cfg);
	free(cfg->admin_addr.text);
	cfg->admin_addr.text = NULL;
	free(cfg->user);
	cfg->user = NULL;
	free(cfg->group);
	cfg->group = NULL;
}
