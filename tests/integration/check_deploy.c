/*
 * check_deploy — deploy/kubernetes/ cannot run here (no cluster), so this
 * checks what can be checked without one: every document of every YAML
 * file parses; the Deployment's probes ask /livez and /readyz on the port
 * that admin.address of the ConfigMap's sluice.yaml listens on; its
 * container ports are the listener's and the admin endpoint's, and the
 * clients' Service points at the listener's; terminationGracePeriodSeconds
 * exceeds shutdown.delay + shutdown.grace_timeout; and the embedded
 * sluice.yaml passes `sluice -t` with test certificates and ticket keys
 * where the Secret's would be mounted.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <yaml.h>

#include <sluice/units.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

#define DEPLOY_MAX_DOCS 32
/* Where the Deployment mounts what the test puts in its own folder. */
#define DEPLOY_MOUNT "/etc/sluice/"

struct deploy_doc {
	yaml_document_t doc;
	char file[NAME_MAX + 1];
};

static struct deploy_doc deploy_docs[DEPLOY_MAX_DOCS];
static int deploy_n_docs;

/* ---- YAML ------------------------------------------------------------------- */

static yaml_node_t *
yaml_key(yaml_document_t *d, yaml_node_t *n, const char *key)
{
	if (n == NULL || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);

		if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* The node at a dotted path from n: mapping keys, or numbers indexing
 * sequences ("spec.template.spec.containers.0.ports"). */
static yaml_node_t *
yaml_at(yaml_document_t *d, yaml_node_t *n, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *part = strtok_r(buf, ".", &save); part != NULL && n != NULL;
	     part = strtok_r(NULL, ".", &save)) {
		if (n->type == YAML_SEQUENCE_NODE) {
			long i = strtol(part, NULL, 10);
			long len = n->data.sequence.items.top - n->data.sequence.items.start;

			n = i >= 0 && i < len ? yaml_document_get_node(d, n->data.sequence.items.start[i]) : NULL;
		} else {
			n = yaml_key(d, n, part);
		}
	}
	return n;
}

/* The scalar at path, or a failed assertion naming it. */
static const char *
yaml_str(yaml_document_t *d, yaml_node_t *n, const char *path, const char *what)
{
	yaml_node_t *v = yaml_at(d, n, path);

	ck_assert_msg(v != NULL && v->type == YAML_SCALAR_NODE, "%s: no scalar at %s", what, path);
	return (const char *)v->data.scalar.value;
}

/* Every document of text (name for messages), appended to deploy_docs. */
static void
yaml_load_all(const char *name, const char *text)
{
	yaml_parser_t parser;

	ck_assert(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	for (;;) {
		struct deploy_doc *dd = &deploy_docs[deploy_n_docs];

		ck_assert_int_lt(deploy_n_docs, DEPLOY_MAX_DOCS);
		ck_assert_msg(yaml_parser_load(&parser, &dd->doc), "%s: line %zu: %s", name,
			      parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
		if (yaml_document_get_root_node(&dd->doc) == NULL) {
			yaml_document_delete(&dd->doc);
			break;
		}
		snprintf(dd->file, sizeof(dd->file), "%s", name);
		deploy_n_docs++;
	}
	yaml_parser_delete(&parser);
}

/* ---- the manifests ------------------------------------------------------------ */

static void
deploy_dir(char *out, size_t len)
{
	const char *src = getenv("SLUICE_SRCDIR");

	snprintf(out, len, "%s/deploy/kubernetes", src != NULL ? src : ".");
}

static int
deploy_is_yaml(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".yaml") == 0;
}

static void
deploy_load(void)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
	DIR *dp;
	struct dirent *e;
	int files = 0;

	deploy_n_docs = 0;
	deploy_dir(dir, sizeof(dir));
	dp = opendir(dir);
	ck_assert_msg(dp != NULL, "cannot open %s", dir);
	while ((e = readdir(dp)) != NULL) {
		char *text;

		if (!deploy_is_yaml(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		text = harness_read_file(path, NULL);
		ck_assert_msg(text != NULL, "%s", harness_last_error());
		yaml_load_all(e->d_name, text);
		free(text);
		files++;
	}
	closedir(dp);
	ck_assert_int_ge(files, 4);
}

static void
deploy_free(void)
{
	for (int i = 0; i < deploy_n_docs; i++)
		yaml_document_delete(&deploy_docs[i].doc);
	deploy_n_docs = 0;
}

/* The document of this kind and metadata.name; fails when missing. */
static struct deploy_doc *
deploy_find(const char *kind, const char *name)
{
	for (int i = 0; i < deploy_n_docs; i++) {
		yaml_document_t *d = &deploy_docs[i].doc;
		yaml_node_t *root = yaml_document_get_root_node(d);
		yaml_node_t *k = yaml_at(d, root, "kind"), *n = yaml_at(d, root, "metadata.name");

		if (k != NULL && n != NULL && k->type == YAML_SCALAR_NODE && n->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, kind) == 0 &&
		    strcmp((char *)n->data.scalar.value, name) == 0)
			return &deploy_docs[i];
	}
	ck_abort_msg("no %s named %s in deploy/kubernetes", kind, name);
	return NULL;
}

/* The port of "host:port". */
static long
deploy_port_of(const char *address)
{
	const char *colon = strrchr(address, ':');

	ck_assert_msg(colon != NULL, "no port in %s", address);
	return strtol(colon + 1, NULL, 10);
}

static uint64_t
deploy_duration(yaml_document_t *d, yaml_node_t *root, const char *path)
{
	uint64_t ms = 0;

	ck_assert_msg(units_parse_duration(yaml_str(d, root, path, "sluice.yaml"), &ms) == 0, "%s", path);
	return ms;
}

/* The ConfigMap's sluice.yaml (a key with a dot: not a yaml_at path). */
static const char *
deploy_sluice_text(struct deploy_doc *cm)
{
	yaml_document_t *d = &cm->doc;
	yaml_node_t *v = yaml_key(d, yaml_at(d, yaml_document_get_root_node(d), "data"), "sluice.yaml");

	ck_assert_msg(v != NULL && v->type == YAML_SCALAR_NODE, "ConfigMap: no data of key sluice.yaml");
	return (const char *)v->data.scalar.value;
}

/* What the Deployment and the Service are checked against. */
struct deploy_sluice {
	long tls_port;
	long admin_port;
	uint64_t delay_ms;
	uint64_t grace_ms;
};

static void
deploy_read_sluice(const char *text, struct deploy_sluice *s)
{
	yaml_document_t *d;
	yaml_node_t *root;
	int at = deploy_n_docs;

	yaml_load_all("sluice.yaml", text);
	ck_assert_int_eq(deploy_n_docs, at + 1);
	d = &deploy_docs[at].doc;
	root = yaml_document_get_root_node(d);
	s->tls_port = deploy_port_of(yaml_str(d, root, "listen.0.address", "sluice.yaml"));
	s->admin_port = deploy_port_of(yaml_str(d, root, "admin.address", "sluice.yaml"));
	s->delay_ms = deploy_duration(d, root, "shutdown.delay");
	s->grace_ms = deploy_duration(d, root, "shutdown.grace_timeout");
}

/* A probe's or a Service's port: a number, or the name of one of the
 * container's ports. */
static long
deploy_container_port(yaml_document_t *d, yaml_node_t *container, const char *port)
{
	yaml_node_t *ports = yaml_key(d, container, "ports");

	if (port[0] >= '0' && port[0] <= '9')
		return strtol(port, NULL, 10);
	ck_assert_ptr_nonnull(ports);
	for (yaml_node_item_t *i = ports->data.sequence.items.start; i < ports->data.sequence.items.top; i++) {
		yaml_node_t *p = yaml_document_get_node(d, *i);

		if (strcmp(yaml_str(d, p, "name", "container port"), port) == 0)
			return strtol(yaml_str(d, p, "containerPort", "container port"), NULL, 10);
	}
	ck_abort_msg("no container port named %s", port);
	return -1;
}

static void
deploy_check_probe(yaml_document_t *d, yaml_node_t *c, const char *probe, const char *path, long port)
{
	char at[64];

	snprintf(at, sizeof(at), "%s.httpGet.path", probe);
	ck_assert_str_eq(yaml_str(d, c, at, "container"), path);
	snprintf(at, sizeof(at), "%s.httpGet.port", probe);
	ck_assert_msg(deploy_container_port(d, c, yaml_str(d, c, at, "container")) == port,
		      "%s asks a port other than admin.address's %ld", probe, port);
}

/* Every document parses; the Deployment, the Service and the ConfigMap
 * agree on ports, probes and shutdown times. */
START_TEST(test_manifests_agree)
{
	struct deploy_doc *cm, *dep, *svc;
	struct deploy_sluice s;
	yaml_document_t *d;
	yaml_node_t *spec, *c;
	long grace_s;

	deploy_load();
	(void)deploy_find("Secret", "sluice-tls");
	(void)deploy_find("Service", "app-backend");
	cm = deploy_find("ConfigMap", "sluice");
	deploy_read_sluice(deploy_sluice_text(cm), &s);

	dep = deploy_find("Deployment", "sluice");
	d = &dep->doc;
	spec = yaml_at(d, yaml_document_get_root_node(d), "spec.template.spec");
	c = yaml_at(d, spec, "containers.0");
	ck_assert_ptr_nonnull(c);
	deploy_check_probe(d, c, "livenessProbe", "/livez", s.admin_port);
	deploy_check_probe(d, c, "readinessProbe", "/readyz", s.admin_port);
	ck_assert_int_eq(deploy_container_port(d, c, "tls"), s.tls_port);
	ck_assert_int_eq(deploy_container_port(d, c, "admin"), s.admin_port);
	grace_s = strtol(yaml_str(d, spec, "terminationGracePeriodSeconds", "Deployment"), NULL, 10);
	ck_assert_msg((uint64_t)grace_s * 1000 > s.delay_ms + s.grace_ms,
		      "terminationGracePeriodSeconds %ld s does not cover shutdown.delay + grace_timeout (%llu ms)",
		      grace_s, (unsigned long long)(s.delay_ms + s.grace_ms));
	ck_assert_msg(s.delay_ms > 0, "shutdown.delay 0: pods would drain before leaving the endpoints");

	svc = deploy_find("Service", "sluice");
	ck_assert_int_eq(deploy_container_port(d, c, yaml_str(&svc->doc, yaml_document_get_root_node(&svc->doc),
							       "spec.ports.0.targetPort", "Service")),
			 s.tls_port);
	deploy_free();
}
END_TEST

/* text with every DEPLOY_MOUNT replaced by dir/, malloc'd. */
static char *
deploy_remount(const char *text, const char *dir)
{
	size_t cap = strlen(text) * 2 + strlen(dir) * 64 + 1, n = 0;
	char *out = malloc(cap);
	const char *p = text, *hit;

	ck_assert_ptr_nonnull(out);
	while ((hit = strstr(p, DEPLOY_MOUNT)) != NULL) {
		n += (size_t)snprintf(out + n, cap - n, "%.*s%s/", (int)(hit - p), p, dir);
		p = hit + strlen(DEPLOY_MOUNT);
		ck_assert_uint_lt(n, cap);
	}
	snprintf(out + n, cap - n, "%s", p);
	return out;
}

/* The ConfigMap's sluice.yaml, with a test certificate and ticket keys
 * where the Secret is mounted, passes `sluice -t`. */
START_TEST(test_configmap_passes_sluice_t)
{
	const char *bin = getenv("SLUICE_BIN");
	char dir[PATH_MAX], sub[PATH_MAX + 32], conf[PATH_MAX + 16], out[PATH_MAX + 16];
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-t", "-c", conf, NULL };
	struct harness_proc check = { 0 };
	struct deploy_doc *cm;
	char *text;
	int status = -1;

	deploy_load();
	cm = deploy_find("ConfigMap", "sluice");
	ck_assert_int_eq(harness_tmpdir(dir, sizeof(dir)), 0);
	snprintf(sub, sizeof(sub), "%s/tls", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(testcerts_write(sub, "tls", "localhost", 1), 0);
	snprintf(sub, sizeof(sub), "%s/tickets", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/tickets/ticket.keys", dir);
	ck_assert_int_eq(testcerts_ticket_keys(sub, 2), 0);
	text = deploy_remount(deploy_sluice_text(cm), dir);
	snprintf(conf, sizeof(conf), "%s/sluice.yaml", dir);
	snprintf(out, sizeof(out), "%s/check.out", dir);
	ck_assert_int_eq(harness_write_file(conf, text), 0);
	free(text);
	deploy_free();

	ck_assert_int_eq(harness_spawn(&check, out, argv), 0);
	ck_assert_int_eq(harness_wait_exit(&check, T_IO_MS, &status), 0);
	text = harness_read_file(out, NULL);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sluice -t: exit status 0x%x: %s", status,
		      text ? text : "");
	ck_assert_msg(text != NULL && strstr(text, "configuration OK") != NULL, "sluice -t said: %s",
		      text ? text : "");
	free(text);
	harness_rmdir(dir);
}
END_TEST

static Suite *
deploy_suite(void)
{
	Suite *s = suite_create("deploy");
	TCase *tc = tcase_create("kubernetes");

	tcase_add_test(tc, test_manifests_agree);
	tcase_add_test(tc, test_configmap_passes_sluice_t);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(deploy_suite());
}
