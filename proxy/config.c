/*
 * config — the loader: a file becomes an immutable, reference-counted
 * snapshot only if it has no problem at all. config_yaml reads it,
 * config_schema fills the structs of config_types.h section by section,
 * and this file assembles them: backend names resolved, no address used
 * twice, every listener's TLS contexts built from its tls settings.
 *
 *   config_load ─▶ config_yaml_load ─▶ config_schema_apply ─▶ resolve, check
 *                  (file, syntax)      (keys, values)          ─▶ tls_ctx_build
 *   every problem, whoever finds it ─▶ config_yaml_error ─▶ one line each
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include <sluice/config.h>
#include <sluice/config_addr.h>
#include <sluice/config_fleet.h>
#include <sluice/config_schema.h>
#include <sluice/config_types.h>
#include <sluice/config_yaml.h>
#include <sluice/tls.h>
#include <sluice/tls_settings.h>

/* ---- assembling the sections ------------------------------------------------- */

/* listen[i].backend names a key under backends:, which the schema made
 * unique; the snapshot keeps the pointer. */
static void
config_resolve_backends(struct config_yaml *y, struct config *cfg)
{
	char kpath[CONFIG_YAML_KPATH];

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		if (l->backend_name == NULL)
			continue;
		for (size_t b = 0; b < cfg->n_backends && l->backend == NULL; b++) {
			if (cfg->backends[b].name != NULL &&
			    strcmp(cfg->backends[b].name, l->backend_name) == 0)
				l->backend = &cfg->backends[b];
		}
		/* Without a backends: section, that one error says enough. */
		if (l->backend != NULL || cfg->backends == NULL)
			continue;
		config_yaml_pathf(kpath, sizeof(kpath), "listen[%zu].backend", i);
		config_yaml_error(y, &l->backend_mark, kpath,
				  "backend '%s' is not defined under backends", l->backend_name);
	}
}

/* One address, one listener: with SO_REUSEPORT (listener.c) a second
 * listener would bind it too, and the kernel would share its clients
 * between two tls: sections; the admin endpoint's bind would just fail. */
static void
config_check_addresses(struct config_yaml *y, struct config *cfg)
{
	char kpath[CONFIG_YAML_KPATH];

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_addr *a = &cfg->listeners[i].addr;

		for (size_t j = 0; j < i; j++) {
			if (!config_addr_equal(a, &cfg->listeners[j].addr))
				continue;
			config_yaml_pathf(kpath, sizeof(kpath), "listen[%zu].address", i);
			config_yaml_error(y, &a->mark, kpath, "%s is already used by listen[%zu]",
					  a->text, j);
			break;
		}
		if (cfg->has_admin && config_addr_equal(a, &cfg->admin_addr))
			config_yaml_error(y, &cfg->admin_addr.mark, "admin.address",
					  "%s is already used by listen[%zu]", a->text, i);
	}
}

/* ---- TLS contexts -------------------------------------------------------- */

/* Where tls_ctx_build's problems go: the key they name, at its value
 * (listen[0].tls.certificates[1].key, listen[0].tls.ciphers); or, for
 * what concerns no one key, the certificates[] entry or the tls: mapping. */
struct config_tls_report {
	struct config_yaml *y;
	const struct config_listener *l;
	size_t listener;
};

static void
config_tls_report(void *arg, long cert, enum tls_key key, const char *message)
{
	struct config_tls_report *r = arg;
	const struct config_mark *at;
	char kpath[CONFIG_YAML_KPATH];

	at = config_schema_tls_where(r->l, r->listener, cert, key, kpath, sizeof(kpath));
	config_yaml_error(r->y, at, kpath, "%s", message);
}

/* Every certificate is loaded (a broken second or third one is reported
 * now rather than when SNI first picks it); unchanged contexts of the
 * running snapshot are taken over instead of built again. A section that
 * did not parse cleanly (a NULL in the ALPN list, a default where a value
 * was refused) never reaches OpenSSL. */
static void
config_build_tls(struct config_yaml *y, struct config *cfg, size_t i)
{
	struct config_listener *l = &cfg->listeners[i];
	const struct tls_settings *tls = &l->tls;
	struct config_tls_report r = { y, l, i };
	unsigned built = 0, reused = 0;

	if (tls->n_certs == 0 || l->tls_at.failed)
		return;
	for (size_t c = 0; c < tls->n_certs; c++) {
		if (tls->certs[c].cert == NULL || tls->certs[c].key == NULL)
			return;  /* already reported as missing or invalid */
	}
	l->tls_ctx = tls_ctx_build(tls, config_tls_report, &r);
	if (l->tls_ctx == NULL)
		return;
	tls_ctx_counts(l->tls_ctx, &built, &reused);
	cfg->tls_built += built;
	cfg->tls_reused += reused;
}

/* ---- lifetime ------------------------------------------------------------------- */

static void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++)
		tls_ctx_free(cfg->listeners[i].tls_ctx);
	config_schema_clear(cfg);
	free(cfg->path);
	free(cfg);
}

static struct config *
config_new(const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->refs = 1;
	cfg->path = strdup(path);
	if (cfg->path == NULL) {
		free(cfg);
		return NULL;
	}
	config_schema_defaults(cfg);
	return cfg;
}

struct config *
config_load(const char *path, char **errors)
{
	struct config *cfg = config_new(path);
	struct config_yaml y;
	yaml_node_t *root = NULL;
	char *text = NULL;
	unsigned n_errors;

	if (errors != NULL)
		*errors = NULL;
	if (config_yaml_init(&y, path) < 0 || cfg == NULL) {
		config_yaml_error(&y, NULL, NULL, "cannot load: %s", strerror(errno));
	} else if (config_yaml_load(&y, &root) == 0) {
		config_schema_apply(&y, root, cfg);
		config_resolve_backends(&y, cfg);
		config_fleet_check(&y, cfg);
		config_check_addresses(&y, cfg);
		for (size_t i = 0; i < cfg->n_listeners; i++)
			config_build_tls(&y, cfg, i);
	}
	n_errors = config_yaml_finish(&y, &text);
	if (n_errors == 0) {
		free(text);
		return cfg;
	}
	if (cfg != NULL)
		config_free(cfg);
	if (errors != NULL)
		*errors = text != NULL ? text : strdup("out of memory");
	else
		free(text);
	return NULL;
}

struct config *
config_ref(struct config *cfg)
{
	__atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
	return cfg;
}

/* The last reference frees: acquire-release so the freeing thread sees every
 * write other holders made before letting go. */
void
config_unref(struct config *cfg)
{
	if (cfg == NULL)
		return;
	if (__atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

unsigned
config_workers(const struct config *cfg)
{
	long n;

	if (cfg->workers != 0)
		return cfg->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > CONFIG_SCHEMA_MAX_WORKERS ? CONFIG_SCHEMA_MAX_WORKERS : (unsigned)n;
}

/* Every key of docs/CONFIG.md is implemented; a key accepted ahead of its
 * feature would be warned about here. */
void
config_warn_unsupported(const struct config *cfg)
{
	(void)cfg;
}
