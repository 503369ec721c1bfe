/*
 * check_config — the YAML loader: one table row per error class (with the
 * line, column and key path it must name), every key of SPEC §5 parsed to
 * the value it says, the defaults, relative paths, reference counting, and
 * that the TLS keys change what a handshake does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <check.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include <sluice/config.h>
#include <sluice/config_addr.h>
#include <sluice/config_yaml.h>
#include <sluice/tls.h>

#include "../fixture.h"
#include "../testcerts.h"

/* Made once per run (unchecked fixture): certificates are slow to make. */
static char tmpdir[512];

/* ---- helpers ----------------------------------------------------------- */

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_msg(fp != NULL, "cannot create %s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, fp) >= 0 || text[0] == '\0', 1);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Copies text into out with every "{dir}" replaced by the test folder. */
static void
expand(char *out, size_t len, const char *text)
{
	size_t n = 0, dlen = strlen(tmpdir);

	while (*text != '\0' && n + 1 < len) {
		if (strncmp(text, "{dir}", 5) == 0 && n + dlen + 1 < len) {
			memcpy(out + n, tmpdir, dlen);
			n += dlen;
			text += 5;
		} else {
			out[n++] = *text++;
		}
	}
	out[n] = '\0';
}

/* Writes {dir}/name with text ({dir} expanded) and returns its path. */
static const char *
write_config(const char *name, const char *text)
{
	static char path[PATH_MAX];
	static char body[16384];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	expand(body, sizeof(body), text);
	write_file(path, body);
	return path;
}

static struct config *
load_ok(const char *text)
{
	char *errors = NULL;
	struct config *cfg = config_load(write_config("ok.yaml", text), &errors);

	ck_assert_msg(cfg != NULL, "unexpected errors:\n%s", errors ? errors : "(none)");
	ck_assert_ptr_null(errors);
	return cfg;
}

/* Loads text, which must fail, and returns the error text (to free). */
static char *
load_bad(const char *text)
{
	char *errors = NULL;
	struct config *cfg = config_load(write_config("t.yaml", text), &errors);

	ck_assert_msg(cfg == NULL, "loaded a configuration that should fail");
	ck_assert_ptr_nonnull(errors);
	return errors;
}

static void
assert_contains(const char *haystack, const char *needle_raw)
{
	char needle[4096];

	expand(needle, sizeof(needle), needle_raw);
	ck_assert_msg(strstr(haystack, needle) != NULL,
		      "expected \"%s\" in:\n%s", needle, haystack);
}

static unsigned
count_lines(const char *text)
{
	unsigned n = 1;

	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

static void
copy_file(const char *from, const char *to)
{
	char src[PATH_MAX], dst[PATH_MAX], buf[8192];
	FILE *in, *out;
	size_t n;

	snprintf(src, sizeof(src), "%s/%s", tmpdir, from);
	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, to);
	in = fopen(src, "r");
	out = fopen(dst, "w");
	ck_assert(in != NULL && out != NULL);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

static void
remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	struct stat st;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void
make_dir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(path, 0700), 0);
}

static void
append_file(const char *from, const char *to)
{
	char src[PATH_MAX], dst[PATH_MAX], buf[8192];
	FILE *in, *out;
	size_t n;

	snprintf(src, sizeof(src), "%s/%s", tmpdir, from);
	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, to);
	in = fopen(src, "r");
	out = fopen(dst, "a");
	ck_assert(in != NULL && out != NULL);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/* What the TLS keys point at: the SPEC example's server.ocsp (a good
 * response for the self-signed demo certificate), path.pem (a CA and its
 * CRL: client_ca and crl both name it) and path (ticket keys); and
 * broken variants for the error rows. */
static void
make_tls_files(const char *demo)
{
	char path[PATH_MAX];
	const struct testcerts_spec ca = { .cn = "test CA", .ecdsa = 1, .ca = 1 };
	const struct testcerts_spec leaf = { .san = "DNS:leaf.test", .ecdsa = 1, .issuer = "ca" };
	const struct testcerts_spec chained = { .san = "DNS:leaf.test", .ecdsa = 1, .issuer = "ca",
						.chain = 1 };

	ck_assert_int_eq(testcerts_ocsp(demo, "server", "server", V_OCSP_CERTSTATUS_GOOD, -3600, 1,
					7 * 86400, "../../server.ocsp"), 0);
	ck_assert_int_eq(testcerts_crl(tmpdir, "client", NULL, "client.crl"), 0);
	copy_file("client.crt", "path.pem");
	append_file("client.crl", "path.pem");
	snprintf(path, sizeof(path), "%s/path", tmpdir);
	ck_assert_int_eq(testcerts_ticket_keys(path, 2), 0);
	write_config("badkeys", "# two keys\n\nbm90IGEga2V5\n");
	write_config("nokeys", "# nothing but comments\n\n");
	/* one key, then the same key again (the name repeats) */
	snprintf(path, sizeof(path), "%s/dupkeys", tmpdir);
	ck_assert_int_eq(testcerts_ticket_keys(path, 1), 0);
	append_file("dupkeys", "dupkeys.tmp");
	append_file("dupkeys.tmp", "dupkeys");
	ck_assert_int_eq(testcerts_make(tmpdir, "ca", &ca), 0);
	ck_assert_int_eq(testcerts_make(tmpdir, "leaf", &leaf), 0);
	ck_assert_int_eq(testcerts_make(tmpdir, "chained", &chained), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "leaf", "ca", V_OCSP_CERTSTATUS_GOOD, -3600, 1,
					86400, "leaf.ocsp"), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "chained", "ca", V_OCSP_CERTSTATUS_GOOD, -3600, 1,
					86400, "chained.ocsp"), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "chained", "ca", V_OCSP_CERTSTATUS_REVOKED, -3600, 1,
					86400, "revoked.ocsp"), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "chained", "ca", V_OCSP_CERTSTATUS_GOOD, 86400, 1,
					2 * 86400, "future.ocsp"), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "chained", "ca", V_OCSP_CERTSTATUS_GOOD, -3600, 0, 0,
					"forever.ocsp"), 0);
	ck_assert_int_eq(testcerts_ocsp(tmpdir, "good", "good", V_OCSP_CERTSTATUS_GOOD, -3600, 1,
					86400, "good.ocsp"), 0);
}

static void
setup_files(void)
{
	const char *base = getenv("TMPDIR");
	char demo[PATH_MAX];

	snprintf(tmpdir, sizeof(tmpdir), "%s/sluice-config-XXXXXX",
		 base != NULL && base[0] != '\0' ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(testcerts_write(tmpdir, "good", "localhost", 1), 0);
	ck_assert_int_eq(testcerts_write(tmpdir, "other", "other.test", 1), 0);
	ck_assert_int_eq(testcerts_write(tmpdir, "rsa", "rsa.test", 0), 0);
	ck_assert_int_eq(testcerts_write(tmpdir, "client", "client.test", 1), 0);
	make_dir("config");
	make_dir("config/demo");
	snprintf(demo, sizeof(demo), "%s/config/demo", tmpdir);
	ck_assert_int_eq(testcerts_write(demo, "server", "localhost", 1), 0);
	write_config("garbage.pem", "this is not a PEM file\n");
	make_tls_files(demo);
	make_dir("sub");
}

static void
teardown_files(void)
{
	remove_tree(tmpdir);
}

/* ---- error table ----------------------------------------------------------- */

/* A valid file in three pieces, so rows can slip keys in between:
 * lines 1-3 listener head, 4-7 tls, 8-11 backends. */
#define LHEAD "listen:\n  - address: 127.0.0.1:8443\n    backend: app\n"
#define LTLS "    tls:\n      certificates:\n        - cert: good.crt\n" \
	     "          key: good.key\n"
#define BACK "backends:\n  app:\n    servers:\n      - address: 127.0.0.1:9000\n"
#define VALID LHEAD LTLS BACK

struct error_row {
	const char *yaml;
	const char *expect;      /* substring of the errors, {dir} expanded */
	const char *expect2;     /* a second line that must be there too, or NULL */
};

static const struct error_row error_rows[] = {
	/* unknown keys, at every level */
	{ "bogus: 1\n" VALID, "t.yaml:1:1: bogus: unknown key (expected one of: workers, user, group, listen,", NULL },
	{ LHEAD "    port: 1\n" LTLS BACK, "t.yaml:4:5: listen[0].port: unknown key", NULL },
	{ LHEAD LTLS "      ocsp_stapling: true\n" BACK, "t.yaml:8:7: listen[0].tls.ocsp_stapling: unknown key", NULL },
	{ LHEAD LTLS "          chain: x.pem\n" BACK, "t.yaml:8:11: listen[0].tls.certificates[0].chain: unknown key", NULL },
	{ VALID "    weight: 3\n", "t.yaml:12:5: backends.app.weight: unknown key", NULL },
	{ VALID "        weight: 3\n", "t.yaml:12:9: backends.app.servers[0].weight: unknown key", NULL },
	{ VALID "limits:\n  max_conns: 5\n", "t.yaml:13:3: limits.max_conns: unknown key", NULL },
	{ VALID "shutdown:\n  grace: 5s\n", "t.yaml:13:3: shutdown.grace: unknown key", NULL },
	{ VALID "admin:\n  address: 127.0.0.1:9100\n  path: /m\n", "t.yaml:14:3: admin.path: unknown key", NULL },
	{ VALID "log:\n  lvl: info\n", "t.yaml:13:3: log.lvl: unknown key", NULL },
	/* duplicate keys */
	{ LHEAD "    backend: app\n" LTLS BACK, "t.yaml:4:5: listen[0].backend: duplicate key (first set at line 3)", NULL },
	{ VALID "  app:\n    servers:\n      - address: 127.0.0.1:9001\n", "t.yaml:12:3: backends.app: duplicate key (first set at line 9)", NULL },
	{ VALID "workers: 2\nworkers: 3\n", "t.yaml:13:1: workers: duplicate key (first set at line 12)", NULL },
	{ VALID "limits:\n  idle_timeout: 1m\nlimits:\n  idle_timeout: 2m\n", "t.yaml:14:1: limits: duplicate key (first set at line 12)", NULL },
	/* wrong node types */
	{ "listen:\n  address: 127.0.0.1:8443\n" BACK, "t.yaml:2:3: listen: expected a sequence, found a mapping", NULL },
	{ LHEAD "    tls: yes\n" BACK, "t.yaml:4:10: listen[0].tls: expected a mapping, found a scalar", NULL },
	{ "listen:\n  - address: [127.0.0.1, 8443]\n    backend: app\n" LTLS BACK, "t.yaml:2:14: listen[0].address: expected a scalar, found a sequence", NULL },
	{ LHEAD LTLS "      alpn: sluice/1\n" BACK, "t.yaml:8:13: listen[0].tls.alpn: expected a sequence, found a scalar", NULL },
	{ LHEAD LTLS "      alpn: [{a: b}]\n" BACK, "t.yaml:8:14: listen[0].tls.alpn[0]: expected a scalar, found a mapping", NULL },
	{ LHEAD LTLS "backends:\n  - app\n", "t.yaml:9:3: backends: expected a mapping, found a sequence", NULL },
	{ LHEAD "    tls:\n" BACK, "listen[0].tls: expected a mapping, found an empty value", NULL },
	{ VALID "limits: 5\n", "t.yaml:12:9: limits: expected a mapping, found a scalar", NULL },
	{ VALID "workers: [1]\n", "t.yaml:12:10: workers: expected a scalar, found a sequence", NULL },
	{ "- listen\n- backends\n", "t.yaml:1:1: the file must be a mapping of keys (listen:, backends:, ...), found a sequence", NULL },
	{ "[a]: b\n" VALID, "t.yaml:1:1: expected a scalar, found a sequence", NULL },
	/* missing required keys, at every level */
	{ BACK, "t.yaml:1:1: listen: missing required key", NULL },
	{ LHEAD LTLS, "t.yaml:1:1: backends: missing required key", NULL },
	{ "listen:\n  - backend: app\n" LTLS BACK, "t.yaml:2:5: listen[0].address: missing required key", NULL },
	{ "listen:\n  - address: 127.0.0.1:8443\n" LTLS BACK, "t.yaml:2:5: listen[0].backend: missing required key", NULL },
	{ LHEAD BACK, "t.yaml:2:5: listen[0].tls: missing required key", NULL },
	{ LHEAD "    tls:\n      min_version: TLSv1.2\n" BACK, "t.yaml:5:7: listen[0].tls.certificates: missing required key", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n" BACK, "t.yaml:6:11: listen[0].tls.certificates[0].key: missing required key", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - key: good.key\n" BACK, "t.yaml:6:11: listen[0].tls.certificates[0].cert: missing required key", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    connections: 2\n", "t.yaml:10:5: backends.app.servers: missing required key", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - {}\n", "t.yaml:11:9: backends.app.servers[0].address: missing required key", NULL },
	{ VALID "admin: {}\n", "t.yaml:12:8: admin.address: missing required key", NULL },
	/* empty collections */
	{ "listen: []\n" BACK, "t.yaml:1:9: listen: must list at least one listener", NULL },
	{ LHEAD "    tls:\n      certificates: []\n" BACK, "t.yaml:5:21: listen[0].tls.certificates: must list at least one certificate", NULL },
	{ LHEAD LTLS "backends: {}\n", "t.yaml:8:11: backends: must define at least one backend", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers: []\n", "t.yaml:10:14: backends.app.servers: must list at least one server", NULL },
	{ LHEAD LTLS "      alpn: []\n" BACK, "t.yaml:8:13: listen[0].tls.alpn: must list at least one protocol", NULL },
	/* durations */
	{ VALID "    connect_timeout: 5\n", "t.yaml:12:22: backends.app.connect_timeout: invalid duration \"5\"", NULL },
	{ VALID "    queue_timeout: 1.5s\n", "t.yaml:12:20: backends.app.queue_timeout: invalid duration \"1.5s\"", NULL },
	{ VALID "    request_timeout: 0s\n", "t.yaml:12:22: backends.app.request_timeout: must be greater than 0", NULL },
	{ VALID "limits:\n  idle_timeout: 8761h\n", "t.yaml:13:17: limits.idle_timeout: 8761h is too long: at most 8760h", NULL },
	{ VALID "limits:\n  handshake_timeout: -1s\n", "t.yaml:13:22: limits.handshake_timeout: invalid duration \"-1s\"", NULL },
	{ VALID "shutdown:\n  grace_timeout: 5 seconds\n", "t.yaml:13:18: shutdown.grace_timeout: invalid duration \"5 seconds\"", NULL },
	/* sizes */
	{ VALID "limits:\n  max_frame_size: 1MB\n", "t.yaml:13:19: limits.max_frame_size: invalid size \"1MB\"", NULL },
	{ VALID "limits:\n  client_buffer: 4096\n", "t.yaml:13:18: limits.client_buffer: invalid size \"4096\"", NULL },
	{ VALID "limits:\n  max_frame_size: 5B\n", "t.yaml:13:19: limits.max_frame_size: 5B is too small", NULL },
	{ VALID "limits:\n  max_frame_size: 4GiB\n  client_buffer: 8GiB\n", "t.yaml:13:19: limits.max_frame_size: 4GiB is too large", NULL },
	{ VALID "limits:\n  max_frame_size: 2MiB\n  client_buffer: 1MiB\n", "t.yaml:14:18: limits.client_buffer: 1MiB is smaller than max_frame_size (2MiB)", NULL },
	{ VALID "limits:\n  max_frame_size: 8MiB\n", "t.yaml:13:19: limits.max_frame_size: 8MiB is larger than client_buffer (4MiB by default)", NULL },
	/* counts */
	{ VALID "    connections: 0\n", "t.yaml:12:18: backends.app.connections: must be at least 1", NULL },
	{ VALID "    max_pending: -5\n", "t.yaml:12:18: backends.app.max_pending: expected a whole number from 1 to 1048576, found \"-5\"", NULL },
	{ VALID "    max_pending: 99999999999999999999\n", "t.yaml:12:18: backends.app.max_pending: expected a whole number from 1 to 1048576, found", NULL },
	{ VALID "limits:\n  max_connections: 1e4\n", "t.yaml:13:20: limits.max_connections: expected a whole number", NULL },
	{ VALID "workers: 0\n", "t.yaml:12:10: workers: must be at least 1", NULL },
	{ VALID "workers: many\n", "t.yaml:12:10: workers: expected auto or a number of threads, found \"many\"", NULL },
	/* Found by fuzz_config: a value folded over a blank line, and a key
	 * with a line break, stay on their one error line, escaped. */
	{ VALID "workers: 7\n\n 7\n", "t.yaml:12:10: workers: expected auto or a number of threads, found \"7\\n7\"", NULL },
	{ VALID "\"a\\nb\": 1\n", "t.yaml:12:1: a\\nb: unknown key", NULL },
	/* upper bounds: one past each, and what it says */
	{ VALID "workers: 257\n", "t.yaml:12:10: workers: 257 is too many: at most 256 (more threads than CPUs only contend", NULL },
	{ VALID "    connections: 1025\n", "t.yaml:12:18: backends.app.connections: 1025 is too many: at most 1024 (per server and per worker", NULL },
	{ VALID "    max_pending: 1048577\n", "t.yaml:12:18: backends.app.max_pending: 1048577 is too many: at most 1048576 (requests queued that long", NULL },
	{ VALID "    max_pending: 4294967296\n", "t.yaml:12:18: backends.app.max_pending: 4294967296 is too many: at most 1048576", NULL },
	{ VALID "limits:\n  max_connections: 1000001\n", "t.yaml:13:20: limits.max_connections: 1000001 is too many: at most 1000000 (each client needs a file descriptor", NULL },
	{ VALID "limits:\n  max_connections: 2000000000\n", "t.yaml:13:20: limits.max_connections: 2000000000 is too many: at most 1000000", NULL },
	/* addresses */
	{ "listen:\n  - address: example.com:8443\n    backend: app\n" LTLS BACK, "t.yaml:2:14: listen[0].address: invalid address \"example.com:8443\": not a numeric IPv4 address", NULL },
	{ "listen:\n  - address: 127.0.0.1:0\n    backend: app\n" LTLS BACK, "t.yaml:2:14: listen[0].address: invalid address \"127.0.0.1:0\": port must be a number from 1 to 65535", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - address: 127.0.0.1:65536\n", "t.yaml:11:18: backends.app.servers[0].address: invalid address \"127.0.0.1:65536\": port must be", NULL },
	{ "listen:\n  - address: 127.0.0.1\n    backend: app\n" LTLS BACK, "listen[0].address: invalid address \"127.0.0.1\": missing port", NULL },
	{ "listen:\n  - address: ::1:8443\n    backend: app\n" LTLS BACK, "listen[0].address: invalid address \"::1:8443\": IPv6 addresses go in brackets", NULL },
	{ "listen:\n  - address: \"[::1]\"\n    backend: app\n" LTLS BACK, "listen[0].address: invalid address \"[::1]\": missing port", NULL },
	{ "listen:\n  - address: \"[::g]:1\"\n    backend: app\n" LTLS BACK, "not a numeric IPv6 address", NULL },
	{ "listen:\n  - address: :8443\n    backend: app\n" LTLS BACK, "invalid address \":8443\": missing host", NULL },
	{ VALID "admin:\n  address: 127.0.0.1:http\n", "t.yaml:13:12: admin.address: invalid address", NULL },
	/* enumerations and booleans */
	{ LHEAD LTLS "      min_version: TLSv1.1\n" BACK, "t.yaml:8:20: listen[0].tls.min_version: expected TLSv1.2 | TLSv1.3, found \"TLSv1.1\"", NULL },
	{ LHEAD LTLS "      client_ca: good.crt\n      client_verify: maybe\n" BACK, "t.yaml:9:22: listen[0].tls.client_verify: expected required | optional, found \"maybe\"", NULL },
	{ VALID "log:\n  level: verbose\n", "t.yaml:13:10: log.level: expected error | warn | info | debug, found \"verbose\"", NULL },
	{ LHEAD LTLS "      session_tickets: yes\n" BACK, "t.yaml:8:24: listen[0].tls.session_tickets: expected true or false, found \"yes\"", NULL },
	{ LHEAD LTLS "      sni_required: 1\n" BACK, "listen[0].tls.sni_required: expected true or false", NULL },
	{ LHEAD LTLS "      client_ca: good.crt\n      verify_depth: 0\n" BACK, "t.yaml:9:21: listen[0].tls.verify_depth: must be at least 1", NULL },
	{ LHEAD LTLS "      client_ca: good.crt\n      verify_depth: 101\n" BACK, "t.yaml:9:21: listen[0].tls.verify_depth: 101 is too many: at most 100 (OpenSSL's own limit)", NULL },
	{ LHEAD LTLS "      client_ca: good.crt\n      verify_depth: deep\n" BACK, "t.yaml:9:21: listen[0].tls.verify_depth: expected a whole number from 1 to 100, found \"deep\"", NULL },
	/* strings */
	{ "listen:\n  - address: 127.0.0.1:8443\n    backend: \"\"\n" LTLS BACK, "t.yaml:3:14: listen[0].backend: must not be empty", NULL },
	{ "listen:\n  - address: 127.0.0.1:8443\n    backend: \"a\\0b\"\n" LTLS BACK, "t.yaml:3:14: listen[0].backend: contains a NUL character", NULL },
	{ LHEAD LTLS "backends:\n  my app:\n    servers:\n      - address: 127.0.0.1:9000\n", "t.yaml:9:3: backends.my app: a backend name uses only", NULL },
	{ LHEAD LTLS "      alpn: [\"\"]\n" BACK, "t.yaml:8:14: listen[0].tls.alpn[0]: must not be empty", NULL },
	/* SPEC §8 */
	{ LHEAD LTLS "    routes:\n      - {sni: \"a.*.example\", backend: app}\n" BACK, "t.yaml:9:15: listen[0].routes[0].sni: \"a.*.example\": '*' may only be the whole first label", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: \"*.\", backend: app}\n" BACK, "listen[0].routes[0].sni: \"*.\": a wildcard needs a domain", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: \"a..b\", backend: app}\n" BACK, "listen[0].routes[0].sni: \"a..b\": a server name has no empty label", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: \"a b\", backend: app}\n" BACK, "listen[0].routes[0].sni: \"a b\": a server name uses letters", NULL },
	{ LHEAD LTLS "    routes:\n      - {backend: app}\n" BACK, "t.yaml:9:9: listen[0].routes[0]: a route needs sni, alpn or both", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: a.example}\n" BACK, "t.yaml:9:9: listen[0].routes[0].backend: missing required key", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: a.example, backend: nope}\n" BACK, "t.yaml:9:35: listen[0].routes[0].backend: backend 'nope' is not defined under backends", NULL },
	{ LHEAD LTLS "    routes:\n      - {alpn: h2, backend: app}\n" BACK, "t.yaml:9:9: listen[0].routes[0].alpn: \"h2\" is not in this listener's tls.alpn", NULL },
	{ LHEAD LTLS "    routes:\n      - {sni: a.example, backend: app, weight: 2}\n" BACK, "listen[0].routes[0].weight: unknown key", NULL },
	{ LHEAD LTLS "    routes: []\n" BACK, "t.yaml:8:13: listen[0].routes: must list at least one route", NULL },
	{ LHEAD LTLS "    proxy_protocol: v3\n" BACK, "t.yaml:8:21: listen[0].proxy_protocol: expected off | v1 | v2 | any, found \"v3\"", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n" BACK, "t.yaml:8:21: listen[0].proxy_protocol: needs proxy_trusted", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n    proxy_trusted: [10.1.0.0/8]\n" BACK, "t.yaml:9:21: listen[0].proxy_trusted[0]: \"10.1.0.0/8\": has bits set past its prefix length", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n    proxy_trusted: [10.0.0.0/33]\n" BACK, "listen[0].proxy_trusted[0]: \"10.0.0.0/33\": the prefix length is a number from 0 to 32", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n    proxy_trusted: [\"::/129\"]\n" BACK, "the prefix length is a number from 0 to 128", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n    proxy_trusted: [lb.example]\n" BACK, "listen[0].proxy_trusted[0]: \"lb.example\": not a numeric IPv4 or IPv6 network", NULL },
	{ LHEAD LTLS "    proxy_protocol: v2\n    proxy_trusted: 10.0.0.0/8\n" BACK, "listen[0].proxy_trusted: expected a sequence, found a scalar", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - address: app..internal:9000\n", "t.yaml:11:18: backends.app.servers[0].address: invalid address \"app..internal:9000\": neither a numeric address nor a valid host name", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - address: 10.0.0.300:9000\n", "backends.app.servers[0].address: invalid address \"10.0.0.300:9000\": not a valid IPv4 address", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - address: app.internal\n", "backends.app.servers[0].address: invalid address \"app.internal\": missing port", NULL },
	{ LHEAD LTLS "backends:\n  app:\n    servers:\n      - address: a.example:9000\n      - address: A.example:9000\n", "t.yaml:12:18: backends.app.servers[1].address: A.example:9000 is already listed as servers[0]", NULL },
	{ VALID "    resolve_interval: 0s\n", "t.yaml:12:23: backends.app.resolve_interval: must be greater than 0", NULL },
	{ VALID "    health_check: {interval: 1s, timeout: 2s}\n", "t.yaml:12:43: backends.app.health_check.timeout: timeout (2s) is longer than interval (1s)", NULL },
	{ VALID "    health_check: {timeout: 3s}\n", "backends.app.health_check.timeout: timeout (3s) is longer than interval (2s)", NULL },
	{ VALID "    health_check: {header: QUIT}\n", "t.yaml:12:28: backends.app.health_check.header: QUIT is the control frame", NULL },
	{ VALID "    health_check: {rise: 0}\n", "t.yaml:12:26: backends.app.health_check.rise: must be at least 1", NULL },
	{ VALID "    health_check: {fall: 1001}\n", "backends.app.health_check.fall: 1001 is too many: at most 1000", NULL },
	{ VALID "    health_check: {every: 1s}\n", "backends.app.health_check.every: unknown key", NULL },
	{ VALID "    health_check: true\n", "backends.app.health_check: expected a mapping, found a scalar", NULL },
	{ VALID "    health_check: {payload: \"0123456789\"}\nlimits:\n  max_frame_size: 16B\n  client_buffer: 1KiB\n", "t.yaml:9:3: backends.app.health_check: the probe frame (20 bytes) is larger than limits.max_frame_size (16B)", NULL },
	{ VALID "    eject_after: 0\n", "t.yaml:12:18: backends.app.eject_after: must be at least 1", NULL },
	{ VALID "    eject_time: 0s\n", "backends.app.eject_time: must be greater than 0", NULL },
	{ VALID "    eject_time: 6m\n", "t.yaml:12:17: backends.app.eject_time: at most 5m", NULL },
	{ VALID "    max_ejected_percent: 101\n", "t.yaml:12:26: backends.app.max_ejected_percent: 101 is too many: at most 100", NULL },
	{ VALID "    max_ejected_percent: half\n", "backends.app.max_ejected_percent: expected a whole number from 1 to 100", NULL },
	{ VALID "resolver: {}\n", "t.yaml:12:11: resolver: needs nameservers, hosts_file or both", NULL },
	{ VALID "resolver:\n  nameservers: [ns.example:53]\n", "t.yaml:13:17: resolver.nameservers[0]: invalid nameserver \"ns.example:53\"", NULL },
	{ VALID "resolver:\n  nameservers: []\n", "resolver.nameservers: must list at least one nameserver", NULL },
	{ VALID "resolver:\n  hosts_file: {dir}/missing-hosts\n", "resolver.hosts_file: ", NULL },
	{ VALID "resolver:\n  search: [example]\n", "t.yaml:13:3: resolver.search: unknown key", NULL },
	{ VALID "limits:\n  max_connections_per_address: 0\n", "t.yaml:13:32: limits.max_connections_per_address: must be at least 1", NULL },
	{ VALID "shutdown:\n  delay: soon\n", "t.yaml:13:10: shutdown.delay: invalid duration \"soon\"", NULL },
	/* cross-references and conflicts */
	{ "listen:\n  - address: 127.0.0.1:8443\n    backend: nope\n" LTLS BACK, "t.yaml:3:14: listen[0].backend: backend 'nope' is not defined under backends", NULL },
	{ LHEAD LTLS "  - address: 127.0.0.1:8443\n    backend: app\n" LTLS BACK, "t.yaml:8:14: listen[1].address: 127.0.0.1:8443 is already used by listen[0]", NULL },
	{ "listen:\n  - address: \"[::1]:8443\"\n    backend: app\n" LTLS "  - address: \"[0:0::1]:8443\"\n    backend: app\n" LTLS BACK, "t.yaml:8:14: listen[1].address: [0:0::1]:8443 is already used by listen[0]", NULL },
	{ VALID "admin:\n  address: 127.0.0.1:8443\n", "t.yaml:13:12: admin.address: 127.0.0.1:8443 is already used by listen[0]", NULL },
	{ VALID "group: sluice\n", "t.yaml:12:8: group: needs user: without it sluice would go on running as root", NULL },
	{ VALID "      - address: 127.0.0.1:9000\n", "t.yaml:12:18: backends.app.servers[1].address: 127.0.0.1:9000 is already listed as servers[0]", NULL },
	{ LHEAD LTLS "      client_verify: optional\n" BACK, "t.yaml:8:22: listen[0].tls.client_verify: needs client_ca", NULL },
	{ LHEAD LTLS "      crl: path.pem\n" BACK, "t.yaml:8:12: listen[0].tls.crl: needs client_ca", NULL },
	{ LHEAD LTLS "      verify_depth: 3\n" BACK, "t.yaml:8:21: listen[0].tls.verify_depth: needs client_ca", NULL },
	{ LHEAD LTLS "      session_tickets: false\n      ticket_keys: path\n" BACK,
	  "t.yaml:9:20: listen[0].tls.ticket_keys: has no use with session_tickets: false", NULL },
	{ LHEAD LTLS "      alpn_required: true\n" BACK, "t.yaml:8:22: listen[0].tls.alpn_required: needs alpn", NULL },
	/* certificates and keys */
	{ LHEAD "    tls:\n      certificates:\n        - cert: missing.crt\n          key: good.key\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/missing.crt: No such file or directory", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n          key: missing.key\n" BACK,
	  "t.yaml:7:16: listen[0].tls.certificates[0].key: cannot load private key from {dir}/missing.key: No such file or directory", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n          key: other.key\n" BACK,
	  "t.yaml:7:16: listen[0].tls.certificates[0].key: private key {dir}/other.key does not match certificate {dir}/good.crt", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n          key: rsa.key\n" BACK,
	  "t.yaml:7:16: listen[0].tls.certificates[0].key: private key {dir}/rsa.key does not match certificate {dir}/good.crt", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: garbage.pem\n          key: good.key\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/garbage.pem: no start line", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n          key: garbage.pem\n" BACK,
	  "t.yaml:7:16: listen[0].tls.certificates[0].key: cannot load private key from {dir}/garbage.pem: ", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.key\n          key: good.key\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/good.key: no start line", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: {dir}\n          key: good.key\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}: Is a directory", NULL },
	{ LHEAD LTLS "        - cert: other.crt\n          key: good.key\n" BACK,
	  "t.yaml:9:16: listen[0].tls.certificates[1].key: private key {dir}/good.key does not match certificate {dir}/other.crt", NULL },
	{ LHEAD LTLS "          ocsp: missing.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: cannot read {dir}/missing.ocsp: No such file or directory", NULL },
	{ LHEAD LTLS "      crl: missing.pem\n" BACK, "t.yaml:8:12: listen[0].tls.crl: cannot read {dir}/missing.pem", NULL },
	{ LHEAD LTLS "      ticket_keys: /nonexistent/keys\n" BACK, "t.yaml:8:20: listen[0].tls.ticket_keys: cannot read /nonexistent/keys", NULL },
	/* ticket key files: the line inside the file, at the ticket_keys key */
	{ LHEAD LTLS "      ticket_keys: badkeys\n" BACK, "t.yaml:8:20: listen[0].tls.ticket_keys: {dir}/badkeys:3: expected 80 bytes (16-byte name, 32-byte HMAC key, 32-byte AES key)", NULL },
	{ LHEAD LTLS "      ticket_keys: nokeys\n" BACK, "t.yaml:8:20: listen[0].tls.ticket_keys: {dir}/nokeys: no key", NULL },
	{ LHEAD LTLS "      ticket_keys: dupkeys\n" BACK, "t.yaml:8:20: listen[0].tls.ticket_keys: {dir}/dupkeys:2: the key name repeats the key of line 1", NULL },
	{ LHEAD LTLS "      ticket_keys: good.crt\n" BACK, "t.yaml:8:20: listen[0].tls.ticket_keys: {dir}/good.crt:1: expected one base64 key of 80 bytes", NULL },
	/* CRLs and client CAs */
	{ LHEAD LTLS "      client_ca: good.crt\n      crl: good.crt\n" BACK, "t.yaml:9:12: listen[0].tls.crl: cannot load CRL file {dir}/good.crt: no CRL in it", NULL },
	{ LHEAD LTLS "      client_ca: client.crl\n" BACK, "t.yaml:8:18: listen[0].tls.client_ca: cannot load client CA file {dir}/client.crl: no certificate in it", NULL },
	/* OCSP responses, checked against their certificate */
	{ LHEAD LTLS "          ocsp: garbage.pem\n" BACK, "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/garbage.pem is not a DER OCSP response", NULL },
	{ LHEAD LTLS "          ocsp: leaf.ocsp\n" BACK, "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/leaf.ocsp is not about this certificate", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: leaf.crt\n          key: leaf.key\n          ocsp: leaf.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/leaf.ocsp cannot be checked: the certificate's issuer is not in its chain file", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: chained.crt\n          key: chained.key\n          ocsp: leaf.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/leaf.ocsp is not about this certificate", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: chained.crt\n          key: chained.key\n          ocsp: revoked.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/revoked.ocsp says the certificate is revoked", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: chained.crt\n          key: chained.key\n          ocsp: future.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/future.ocsp has a thisUpdate in the future", NULL },
	{ LHEAD "    tls:\n      certificates:\n        - cert: chained.crt\n          key: chained.key\n          ocsp: forever.ocsp\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/forever.ocsp has no nextUpdate", NULL },
	{ LHEAD LTLS "          ocsp: good.crt\n" BACK, "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/good.crt is not a DER OCSP response", NULL },
	/* several certificates: one per key type and name set */
	{ LHEAD LTLS "        - cert: good.crt\n          key: good.key\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[1].cert: certificates[0] already serves the same names with a ECDSA key", NULL },
	{ LHEAD LTLS "      client_ca: missing.pem\n" BACK, "t.yaml:8:18: listen[0].tls.client_ca: cannot load client CA file {dir}/missing.pem: No such file or directory", NULL },
	{ LHEAD LTLS "      client_ca: garbage.pem\n" BACK, "t.yaml:8:18: listen[0].tls.client_ca: cannot load client CA file {dir}/garbage.pem: no certificate in it", NULL },
	{ LHEAD LTLS "      ciphers: NOPE\n" BACK, "t.yaml:8:16: listen[0].tls.ciphers: invalid cipher list \"NOPE\": no cipher match", NULL },
	{ LHEAD LTLS "      ciphersuites: TLS_NOPE\n" BACK, "t.yaml:8:21: listen[0].tls.ciphersuites: invalid cipher suite list \"TLS_NOPE\": no cipher match", NULL },
	/* TLS problems found together: each one at its own key */
	{ LHEAD "    tls:\n      certificates:\n        - cert: missing.crt\n          key: missing.key\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/missing.crt",
	  "t.yaml:7:16: listen[0].tls.certificates[0].key: cannot load private key from {dir}/missing.key" },
	{ LHEAD LTLS "      ciphers: NOPE\n      ciphersuites: TLS_NOPE\n" BACK,
	  "t.yaml:8:16: listen[0].tls.ciphers: invalid cipher list \"NOPE\"",
	  "t.yaml:9:21: listen[0].tls.ciphersuites: invalid cipher suite list \"TLS_NOPE\"" },
	{ LHEAD "    tls:\n      certificates:\n        - cert: missing.crt\n          key: good.key\n      ciphers: NOPE\n" BACK,
	  "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/missing.crt",
	  "t.yaml:8:16: listen[0].tls.ciphers: invalid cipher list \"NOPE\"" },
	{ LHEAD LTLS "      client_ca: missing.pem\n      crl: good.crt\n" BACK,
	  "t.yaml:8:18: listen[0].tls.client_ca: cannot load client CA file {dir}/missing.pem",
	  "t.yaml:9:12: listen[0].tls.crl: cannot load CRL file {dir}/good.crt: no CRL in it" },
	{ LHEAD LTLS "        - cert: other.crt\n          key: good.key\n      client_ca: garbage.pem\n" BACK,
	  "t.yaml:9:16: listen[0].tls.certificates[1].key: private key {dir}/good.key does not match certificate {dir}/other.crt",
	  "t.yaml:10:18: listen[0].tls.client_ca: cannot load client CA file {dir}/garbage.pem" },
	{ LHEAD "    tls:\n      certificates:\n        - cert: good.crt\n          key: good.key\n          ocsp: leaf.ocsp\n"
	  "      ticket_keys: path\n      ciphersuites: TLS_NOPE\n" BACK,
	  "t.yaml:8:17: listen[0].tls.certificates[0].ocsp: OCSP response {dir}/leaf.ocsp is not about this certificate",
	  "t.yaml:10:21: listen[0].tls.ciphersuites: invalid cipher suite list \"TLS_NOPE\"" },
	/* the file itself */
	{ "listen: [\n", "t.yaml:2:1: syntax error: did not find expected node content (while parsing a flow node at line 2, column 1)", NULL },
	{ "listen:\n\t- address: x\n", "t.yaml:2:1: syntax error: found character that cannot start any token", NULL },
	{ "a: b\n c: d\n", "t.yaml:2:3: syntax error: mapping values are not allowed in this context", NULL },
	{ "listen: *nope\n", "t.yaml:1:9: syntax error: found undefined alias", NULL },
	{ "", "t.yaml: the file is empty: it needs at least listen: and backends:", NULL },
	{ "# only a comment\n\n", "t.yaml: the file is empty", NULL },
	{ "---\n", "t.yaml: the file is empty", NULL },
	{ VALID "---\nworkers: 2\n", "t.yaml:13:1: only one YAML document is allowed per file", NULL },
	{ "a: \xc3\x28\n", "t.yaml: syntax error: invalid", NULL },
	/* several errors in one file: all reported */
	{ "listen:\n  - address: 127.0.0.1:99999\n    backend: nope\n" LTLS BACK "limits:\n  max_frame_size: 1XB\n",
	  "t.yaml:2:14: listen[0].address: invalid address", "t.yaml:13:19: limits.max_frame_size: invalid size \"1XB\"" },
};

START_TEST(test_error_row)
{
	const struct error_row *row = &error_rows[_i];
	char *errors = load_bad(row->yaml);

	assert_contains(errors, row->expect);
	if (row->expect2 != NULL)
		assert_contains(errors, row->expect2);
	free(errors);
}
END_TEST

/* Every line is an error of its own, each with the file's path first. */
START_TEST(test_multiple_errors)
{
	char *errors = load_bad("bogus: 1\n"
				"listen:\n  - address: 127.0.0.1:0\n    backend: nope\n"
				LTLS BACK
				"    connections: 0\n"
				"limits:\n  max_frame_size: 1XB\n");
	char *line, *save = NULL;
	unsigned n = 0;

	ck_assert_uint_eq(count_lines(errors), 5);
	assert_contains(errors, "t.yaml:1:1: bogus: unknown key");
	assert_contains(errors, "t.yaml:3:14: listen[0].address: invalid address");
	assert_contains(errors, "t.yaml:13:18: backends.app.connections: must be at least 1");
	assert_contains(errors, "t.yaml:15:19: limits.max_frame_size: invalid size");
	assert_contains(errors, "t.yaml:4:14: listen[0].backend: backend 'nope' is not defined");
	for (line = strtok_r(errors, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++)
		ck_assert_msg(strncmp(line, tmpdir, strlen(tmpdir)) == 0, "line: %s", line);
	ck_assert_uint_eq(n, 5);
	free(errors);
}
END_TEST

/* Every TLS problem of a listener at once, each once, each at the key
 * that set the file or value concerned (not at the tls: section). */
START_TEST(test_tls_every_error)
{
	char *errors = load_bad(LHEAD "    tls:\n      certificates:\n"
				"        - cert: missing.crt\n"             /* 6 */
				"          key: missing.key\n"              /* 7 */
				"        - cert: good.crt\n"                /* 8 */
				"          key: other.key\n"                /* 9 */
				"        - cert: chained.crt\n"             /* 10 */
				"          key: chained.key\n"
				"          ocsp: revoked.ocsp\n"            /* 12 */
				"      ciphers: NOPE\n"                     /* 13 */
				"      ciphersuites: TLS_NOPE\n"
				"      client_ca: client.crl\n"             /* 15 */
				"      crl: good.crt\n" BACK);

	assert_contains(errors, "t.yaml:6:17: listen[0].tls.certificates[0].cert: cannot load certificate chain from {dir}/missing.crt: No such file or directory");
	assert_contains(errors, "t.yaml:7:16: listen[0].tls.certificates[0].key: cannot load private key from {dir}/missing.key: No such file or directory");
	assert_contains(errors, "t.yaml:9:16: listen[0].tls.certificates[1].key: private key {dir}/other.key does not match certificate {dir}/good.crt");
	assert_contains(errors, "t.yaml:12:17: listen[0].tls.certificates[2].ocsp: OCSP response {dir}/revoked.ocsp says the certificate is revoked");
	assert_contains(errors, "t.yaml:13:16: listen[0].tls.ciphers: invalid cipher list \"NOPE\": no cipher match");
	assert_contains(errors, "t.yaml:14:21: listen[0].tls.ciphersuites: invalid cipher suite list \"TLS_NOPE\": no cipher match");
	assert_contains(errors, "t.yaml:15:18: listen[0].tls.client_ca: cannot load client CA file {dir}/client.crl: no certificate in it");
	assert_contains(errors, "t.yaml:16:12: listen[0].tls.crl: cannot load CRL file {dir}/good.crt: no CRL in it");
	ck_assert_msg(count_lines(errors) == 8, "expected 8 lines, got:\n%s", errors);
	free(errors);
}
END_TEST

/* A flood of mistakes is cut short rather than printed in full. */
START_TEST(test_too_many_errors)
{
	char text[8192] = VALID;
	char *errors;

	for (int i = 0; i < 80; i++) {
		char line[32];

		snprintf(line, sizeof(line), "bogus%d: 1\n", i);
		strcat(text, line);
	}
	errors = load_bad(text);
	ck_assert_uint_eq(count_lines(errors), 51);
	assert_contains(errors, "t.yaml: too many errors, stopping here");
	free(errors);
}
END_TEST

START_TEST(test_unreadable_file)
{
	char *errors = NULL;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
	ck_assert_ptr_null(config_load(path, &errors));
	ck_assert_ptr_nonnull(errors);
	ck_assert_str_eq(strstr(errors, "does-not-exist.yaml"),
			 "does-not-exist.yaml: cannot open: No such file or directory");
	free(errors);

	ck_assert_ptr_null(config_load(tmpdir, &errors));
	assert_contains(errors, "{dir}: cannot open: Is a directory");
	free(errors);

	/* errors may be NULL when the caller only wants yes or no */
	ck_assert_ptr_null(config_load(path, NULL));
}
END_TEST

/* ---- happy paths -------------------------------------------------------------- */

/* SPEC §5 as written, with real cipher names instead of "...". */
static const char spec_example[] =
	"workers: auto                 # worker threads; auto = CPUs\n"
	"user: sluice                  # optional: drop privileges after binding\n"
	"group: sluice\n"
	"listen:\n"
	"  - address: 127.0.0.1:8443   # host:port, [v6]:port\n"
	"    backend: app\n"
	"    tls:\n"
	"      certificates:           # first is the default; others chosen by SNI\n"
	"        - cert: config/demo/server.crt   # PEM, leaf first then chain\n"
	"          key: config/demo/server.key\n"
	"          ocsp: server.ocsp   # optional DER OCSP response to staple\n"
	"      min_version: TLSv1.2    # TLSv1.2 | TLSv1.3\n"
	"      ciphers: \"ECDHE-ECDSA-AES256-GCM-SHA384\"\n"
	"      ciphersuites: \"TLS_AES_256_GCM_SHA384\"\n"
	"      sni_required: false     # refuse handshakes without a known name\n"
	"      alpn: [sluice/1]        # optional\n"
	"      alpn_required: false\n"
	"      client_ca: path.pem     # optional: verify client certs (mTLS)\n"
	"      client_verify: required # required | optional (with client_ca)\n"
	"      crl: path.pem           # optional\n"
	"      session_tickets: true\n"
	"      ticket_keys: path       # optional shared key file; rotated otherwise\n"
	"    routes:                   # optional (§8): first match wins, else `backend`\n"
	"      - {sni: \"*.admin.example\", alpn: sluice/1, backend: admin}\n"
	"    proxy_protocol: off       # off | v1 | v2 | any (§8)\n"
	"    proxy_trusted: [10.0.0.0/8]\n"
	"backends:\n"
	"  app:\n"
	"    servers:\n"
	"      - address: 127.0.0.1:9000\n"
	"    connections: 4            # per server, per worker\n"
	"    connect_timeout: 2s\n"
	"    queue_timeout: 5s         # waiting for a backend connection\n"
	"    request_timeout: 30s      # from the write to the response\n"
	"    max_pending: 4096         # queued requests before backpressure\n"
	"    resolve_interval: 10s     # for servers given by DNS name (§8)\n"
	"    health_check: {interval: 2s, timeout: 1s, header: PING, payload: \"\", rise: 2, fall: 3}\n"
	"    eject_after: 5            # consecutive UNAVAILABLE/TIMEOUT (§8); optional\n"
	"    eject_time: 10s\n"
	"    max_ejected_percent: 50\n"
	"  admin:                      # not in SPEC §5, whose route names it\n"
	"    servers: [{address: admin.internal:9000}]\n"
	"resolver:                     # optional (§8): else the system's configuration\n"
	"  nameservers: [127.0.0.1:53]\n"
	"  hosts_file: /etc/hosts\n"
	"limits:\n"
	"  max_connections: 10000\n"
	"  max_frame_size: 1MiB\n"
	"  client_buffer: 4MiB         # in-flight requests + unread responses, per client\n"
	"  handshake_timeout: 10s\n"
	"  idle_timeout: 5m\n"
	"  max_connections_per_address: 100   # optional (§8)\n"
	"shutdown:\n"
	"  grace_timeout: 5s\n"
	"  delay: 0s                   # keep serving, unready, before draining (§8)\n"
	"admin:\n"
	"  address: 127.0.0.1:9100     # optional: GET /metrics, GET /healthz\n"
	"log:\n"
	"  level: info                 # error | warn | info | debug\n";

static void
assert_path(const char *got, const char *rel)
{
	char want[PATH_MAX];

	ck_assert_ptr_nonnull(got);
	snprintf(want, sizeof(want), "%s/%s", tmpdir, rel);
	ck_assert_str_eq(got, want);
}

static void
assert_ipv4(const struct config_addr *a, const char *text, const char *ip, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	struct in_addr want;

	ck_assert_str_eq(a->text, text);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(inet_pton(AF_INET, ip, &want), 1);
	ck_assert_uint_eq(sin->sin_addr.s_addr, want.s_addr);
	ck_assert_uint_eq(ntohs(sin->sin_port), port);
}

START_TEST(test_spec_example)
{
	struct config *cfg = load_ok(spec_example);
	const struct config_listener *l;
	const struct tls_settings *tls;
	const struct config_backend *b;

	ck_assert_int_eq(cfg->refs, 1);
	assert_path(cfg->path, "ok.yaml");
	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_str_eq(cfg->user, "sluice");
	ck_assert_str_eq(cfg->group, "sluice");
	ck_assert_uint_eq(cfg->n_listeners, 1);
	l = &cfg->listeners[0];
	assert_ipv4(&l->addr, "127.0.0.1:8443", "127.0.0.1", 8443);
	ck_assert_uint_eq(l->addr.mark.line, 5);
	ck_assert_uint_eq(l->addr.mark.column, 14);
	ck_assert_uint_eq(l->mark.line, 5);
	ck_assert_str_eq(l->backend_name, "app");
	ck_assert_ptr_eq(l->backend, &cfg->backends[0]);
	ck_assert_ptr_nonnull(l->tls_ctx);

	tls = &l->tls;
	ck_assert_uint_eq(tls->n_certs, 1);
	assert_path(tls->certs[0].cert, "config/demo/server.crt");
	assert_path(tls->certs[0].key, "config/demo/server.key");
	assert_path(tls->certs[0].ocsp, "server.ocsp");
	ck_assert_uint_eq(l->tls_at.certs[0].entry.line, 9);
	ck_assert_uint_eq(l->tls_at.certs[0].entry.column, 11);
	ck_assert_int_eq(tls->min_version, TLS1_2_VERSION);
	ck_assert_str_eq(tls->ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
	ck_assert_str_eq(tls->ciphersuites, "TLS_AES_256_GCM_SHA384");
	ck_assert(!tls->sni_required);
	ck_assert_uint_eq(tls->n_alpn, 1);
	ck_assert_str_eq(tls->alpn[0], "sluice/1");
	ck_assert(!tls->alpn_required);
	assert_path(tls->client_ca, "path.pem");
	ck_assert_int_eq(tls->client_verify, TLS_VERIFY_REQUIRED);
	assert_path(tls->crl, "path.pem");
	ck_assert(tls->session_tickets);
	assert_path(tls->ticket_keys, "path");

	ck_assert_uint_eq(l->n_routes, 1);
	ck_assert_str_eq(l->routes[0].sni, "*.admin.example");
	ck_assert_str_eq(l->routes[0].alpn, "sluice/1");
	ck_assert_ptr_eq(l->routes[0].backend, &cfg->backends[1]);
	ck_assert_int_eq(l->proxy_protocol, CONFIG_PROXY_OFF);
	ck_assert_uint_eq(l->n_proxy_trusted, 1);
	ck_assert_int_eq(l->proxy_trusted[0].family, AF_INET);
	ck_assert_uint_eq(l->proxy_trusted[0].prefix, 8);
	ck_assert_uint_eq(l->proxy_trusted[0].addr[0], 10);

	ck_assert_uint_eq(cfg->n_backends, 2);
	b = &cfg->backends[0];
	ck_assert_str_eq(b->name, "app");
	ck_assert_uint_eq(b->mark.line, 28);
	ck_assert_uint_eq(b->n_servers, 1);
	assert_ipv4(&b->servers[0].addr, "127.0.0.1:9000", "127.0.0.1", 9000);
	ck_assert_uint_eq(b->servers[0].mark.line, 30);
	ck_assert(!b->has_names);
	ck_assert_uint_eq(b->resolve_interval_ms, 10000);
	ck_assert(b->health.enabled);
	ck_assert_uint_eq(b->health.interval_ms, 2000);
	ck_assert_uint_eq(b->health.timeout_ms, 1000);
	ck_assert_str_eq(b->health.header, "PING");
	ck_assert_str_eq(b->health.payload, "");
	ck_assert_uint_eq(b->health.rise, 2);
	ck_assert_uint_eq(b->health.fall, 3);
	ck_assert_uint_eq(b->eject_after, 5);
	ck_assert_uint_eq(b->eject_time_ms, 10000);
	ck_assert_uint_eq(b->max_ejected_percent, 50);
	ck_assert(cfg->backends[1].has_names);
	ck_assert_str_eq(cfg->backends[1].servers[0].addr.host, "admin.internal");
	ck_assert_uint_eq(cfg->backends[1].servers[0].addr.port, 9000);
	ck_assert_uint_eq(cfg->backends[1].servers[0].addr.len, 0);
	ck_assert(!cfg->backends[1].health.enabled);
	ck_assert(cfg->resolver.configured);
	ck_assert_uint_eq(cfg->resolver.n_nameservers, 1);
	assert_ipv4(&cfg->resolver.nameservers[0], "127.0.0.1:53", "127.0.0.1", 53);
	ck_assert_str_eq(cfg->resolver.hosts_file, "/etc/hosts");
	ck_assert_uint_eq(cfg->limits.max_connections_per_address, 100);
	ck_assert_uint_eq(cfg->shutdown_delay_ms, 0);
	ck_assert_uint_eq(b->connections, 4);
	ck_assert_uint_eq(b->connect_timeout_ms, 2000);
	ck_assert_uint_eq(b->queue_timeout_ms, 5000);
	ck_assert_uint_eq(b->request_timeout_ms, 30000);
	ck_assert_uint_eq(b->max_pending, 4096);

	ck_assert_uint_eq(cfg->limits.max_connections, 10000);
	ck_assert_uint_eq(cfg->limits.max_frame_size, 1048576);
	ck_assert_uint_eq(cfg->limits.client_buffer, 4194304);
	ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 300000);
	ck_assert_uint_eq(cfg->grace_timeout_ms, 5000);
	ck_assert(cfg->has_admin);
	assert_ipv4(&cfg->admin_addr, "127.0.0.1:9100", "127.0.0.1", 9100);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	config_unref(cfg);
}
END_TEST

/* Every key set to something other than its default, so a key that is
 * parsed into the wrong field (or not at all) shows. */
START_TEST(test_every_key_changes_its_field)
{
	struct config *cfg = load_ok(
		"workers: 3\n"
		"listen:\n"
		"  - address: \"[::1]:8443\"\n"
		"    backend: b2\n"
		"    tls:\n"
		"      certificates:\n"
		"        - {cert: good.crt, key: good.key}\n"
		"        - {cert: {dir}/rsa.crt, key: ./rsa.key}\n"
		"      min_version: TLSv1.3\n"
		"      sni_required: true\n"
		"      alpn: [sluice/2, sluice/1]\n"
		"      alpn_required: true\n"
		"      client_ca: client.crt\n"
		"      client_verify: optional\n"
		"      session_tickets: false\n"
		"  - address: localhost:8444\n"
		"    backend: b1\n"
		"    tls:\n"
		"      certificates:\n"
		"        - {cert: rsa.crt, key: rsa.key}\n"
		"      client_ca: client.crt\n"
		"backends:\n"
		"  b1:\n"
		"    servers:\n"
		"      - address: 10.0.0.1:1\n"
		"      - address: \"[2001:db8::1]:65535\"\n"
		"  b2:\n"
		"    servers: [{address: 10.0.0.2:9000}]\n"
		"    connections: 1\n"
		"    connect_timeout: 250ms\n"
		"    queue_timeout: 1s\n"
		"    request_timeout: 2m\n"
		"    max_pending: 7\n"
		"limits:\n"
		"  max_connections: 12\n"
		"  max_frame_size: 6B\n"
		"  client_buffer: 1KiB\n"
		"  handshake_timeout: 1h\n"
		"  idle_timeout: 90s\n"
		"shutdown:\n"
		"  grace_timeout: 0s\n"
		"admin:\n"
		"  address: \"[::]:9100\"\n"
		"log:\n"
		"  level: debug\n");
	const struct config_listener *l0 = &cfg->listeners[0], *l1 = &cfg->listeners[1];
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l0->addr.ss;
	struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;

	ck_assert_uint_eq(cfg->workers, 3);
	ck_assert_uint_eq(config_workers(cfg), 3);
	ck_assert_ptr_null(cfg->user);
	ck_assert_uint_eq(cfg->n_listeners, 2);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(l0->addr.len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(memcmp(&sin6->sin6_addr, &loop6, sizeof(loop6)), 0);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 8443);
	ck_assert_ptr_eq(l0->backend, &cfg->backends[1]);
	ck_assert_uint_eq(l0->tls.n_certs, 2);
	assert_path(l0->tls.certs[1].cert, "rsa.crt");
	assert_path(l0->tls.certs[1].key, "rsa.key");
	ck_assert_int_eq(l0->tls.min_version, TLS1_3_VERSION);
	ck_assert(l0->tls.sni_required);
	ck_assert_uint_eq(l0->tls.n_alpn, 2);
	ck_assert_str_eq(l0->tls.alpn[0], "sluice/2");
	ck_assert_str_eq(l0->tls.alpn[1], "sluice/1");
	ck_assert(l0->tls.alpn_required);
	ck_assert_int_eq(l0->tls.client_verify, TLS_VERIFY_OPTIONAL);
	ck_assert(!l0->tls.session_tickets);
	/* client_ca alone means required */
	ck_assert_int_eq(l1->tls.client_verify, TLS_VERIFY_REQUIRED);
	assert_ipv4(&l1->addr, "localhost:8444", "127.0.0.1", 8444);
	ck_assert_ptr_eq(l1->backend, &cfg->backends[0]);

	ck_assert_str_eq(cfg->backends[0].name, "b1");
	ck_assert_uint_eq(cfg->backends[0].n_servers, 2);
	ck_assert_str_eq(cfg->backends[0].servers[1].addr.text, "[2001:db8::1]:65535");
	ck_assert_uint_eq(cfg->backends[0].connections, 4);
	ck_assert_str_eq(cfg->backends[1].name, "b2");
	ck_assert_uint_eq(cfg->backends[1].connections, 1);
	ck_assert_uint_eq(cfg->backends[1].connect_timeout_ms, 250);
	ck_assert_uint_eq(cfg->backends[1].queue_timeout_ms, 1000);
	ck_assert_uint_eq(cfg->backends[1].request_timeout_ms, 120000);
	ck_assert_uint_eq(cfg->backends[1].max_pending, 7);
	ck_assert_uint_eq(cfg->limits.max_connections, 12);
	ck_assert_uint_eq(cfg->limits.max_frame_size, 6);
	ck_assert_uint_eq(cfg->limits.client_buffer, 1024);
	ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 90000);
	ck_assert_uint_eq(cfg->grace_timeout_ms, 0);
	ck_assert(cfg->has_admin);
	ck_assert_str_eq(cfg->admin_addr.text, "[::]:9100");
	ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
	config_unref(cfg);
}
END_TEST

/* The keys of SPEC §8, each away from its default. */
START_TEST(test_fleet_keys)
{
	struct config *cfg = load_ok(
		"listen:\n"
		"  - address: 127.0.0.1:8443\n"
		"    backend: b1\n"
		"    tls:\n"
		"      certificates: [{cert: good.crt, key: good.key}]\n"
		"      alpn: [h2, sluice/1]\n"
		"    routes:\n"
		"      - {sni: Exact.Example, backend: b2}\n"
		"      - {sni: \"*.wild.example\", alpn: h2, backend: b2}\n"
		"      - {alpn: sluice/1, backend: b1}\n"
		"    proxy_protocol: any\n"
		"    proxy_trusted: [127.0.0.1, 10.0.0.0/8, \"fd00::/8\", \"[::1]/128\", 0.0.0.0/0]\n"
		"  - address: 127.0.0.1:8444\n"
		"    backend: b2\n"
		"    tls:\n"
		"      certificates: [{cert: good.crt, key: good.key}]\n"
		"    proxy_protocol: v1\n"
		"    proxy_trusted: [192.168.0.0/16]\n"
		"backends:\n"
		"  b1:\n"
		"    servers:\n"
		"      - address: App-1.Internal:9000\n"
		"      - address: 10.0.0.1:9000\n"
		"      - address: localhost:9001\n"
		"    resolve_interval: 250ms\n"
		"    health_check: {interval: 500ms, timeout: 500ms, header: HC, payload: ping me, rise: 1, fall: 7}\n"
		"    eject_after: 3\n"
		"    eject_time: 5m\n"
		"    max_ejected_percent: 0\n"
		"  b2:\n"
		"    servers: [{address: 10.0.0.2:9000}]\n"
		"    health_check: {}\n"
		"    max_ejected_percent: 100\n"
		"resolver: {nameservers: [\"127.0.0.1:5353\", \"[::1]:53\"]}\n"
		"limits:\n"
		"  max_connections_per_address: 1\n"
		"shutdown:\n"
		"  delay: 1500ms\n");
	const struct config_listener *l0 = &cfg->listeners[0], *l1 = &cfg->listeners[1];
	const struct config_backend *b1 = &cfg->backends[0], *b2 = &cfg->backends[1];

	ck_assert_uint_eq(l0->n_routes, 3);
	ck_assert_str_eq(l0->routes[0].sni, "exact.example");
	ck_assert_ptr_null(l0->routes[0].alpn);
	ck_assert_ptr_eq(l0->routes[0].backend, b2);
	ck_assert_str_eq(l0->routes[1].sni, "*.wild.example");
	ck_assert_str_eq(l0->routes[1].alpn, "h2");
	ck_assert_ptr_null(l0->routes[2].sni);
	ck_assert_ptr_eq(l0->routes[2].backend, b1);
	ck_assert_int_eq(l0->proxy_protocol, CONFIG_PROXY_ANY);
	ck_assert_int_eq(l1->proxy_protocol, CONFIG_PROXY_V1);
	ck_assert_uint_eq(l1->n_routes, 0);
	ck_assert_uint_eq(l0->n_proxy_trusted, 5);
	ck_assert_int_eq(l0->proxy_trusted[0].family, AF_INET);
	ck_assert_uint_eq(l0->proxy_trusted[0].prefix, 32);
	ck_assert_uint_eq(l0->proxy_trusted[0].addr[3], 1);
	ck_assert_int_eq(l0->proxy_trusted[2].family, AF_INET6);
	ck_assert_uint_eq(l0->proxy_trusted[2].prefix, 8);
	ck_assert_uint_eq(l0->proxy_trusted[2].addr[0], 0xfd);
	ck_assert_uint_eq(l0->proxy_trusted[3].prefix, 128);
	ck_assert_uint_eq(l0->proxy_trusted[3].addr[15], 1);
	ck_assert_uint_eq(l0->proxy_trusted[4].prefix, 0);

	ck_assert(b1->has_names);
	ck_assert_str_eq(b1->servers[0].addr.host, "app-1.internal");
	ck_assert_uint_eq(b1->servers[0].addr.port, 9000);
	ck_assert_str_eq(b1->servers[0].addr.text, "App-1.Internal:9000");
	ck_assert_ptr_null(b1->servers[1].addr.host);
	ck_assert_ptr_null(b1->servers[2].addr.host);  /* localhost stays numeric */
	assert_ipv4(&b1->servers[2].addr, "localhost:9001", "127.0.0.1", 9001);
	ck_assert_uint_eq(b1->resolve_interval_ms, 250);
	ck_assert(b1->health.enabled);
	ck_assert_uint_eq(b1->health.interval_ms, 500);
	ck_assert_uint_eq(b1->health.timeout_ms, 500);
	ck_assert_str_eq(b1->health.header, "HC");
	ck_assert_str_eq(b1->health.payload, "ping me");
	ck_assert_uint_eq(b1->health.rise, 1);
	ck_assert_uint_eq(b1->health.fall, 7);
	ck_assert_uint_eq(b1->eject_after, 3);
	ck_assert_uint_eq(b1->eject_time_ms, 300000);
	ck_assert_uint_eq(b1->max_ejected_percent, 0);
	ck_assert(!b2->has_names);
	ck_assert(b2->health.enabled);  /* {} turns it on with every default */
	ck_assert_uint_eq(b2->health.interval_ms, 2000);
	ck_assert_uint_eq(b2->health.timeout_ms, 1000);
	ck_assert_str_eq(b2->health.header, "PING");
	ck_assert_str_eq(b2->health.payload, "");
	ck_assert_uint_eq(b2->health.rise, 2);
	ck_assert_uint_eq(b2->health.fall, 3);
	ck_assert_uint_eq(b2->max_ejected_percent, 100);
	ck_assert(cfg->resolver.configured);
	ck_assert_uint_eq(cfg->resolver.n_nameservers, 2);
	assert_ipv4(&cfg->resolver.nameservers[0], "127.0.0.1:5353", "127.0.0.1", 5353);
	ck_assert_int_eq(cfg->resolver.nameservers[1].ss.ss_family, AF_INET6);
	ck_assert_ptr_null(cfg->resolver.hosts_file);
	ck_assert_uint_eq(cfg->limits.max_connections_per_address, 1);
	ck_assert_uint_eq(cfg->shutdown_delay_ms, 1500);
	config_unref(cfg);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *cfg = load_ok(VALID);
	const struct tls_settings *tls = &cfg->listeners[0].tls;
	const struct config_backend *b = &cfg->backends[0];

	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_ptr_null(cfg->user);
	ck_assert_ptr_null(cfg->group);
	ck_assert_int_eq(tls->min_version, TLS1_2_VERSION);
	ck_assert_ptr_null(tls->ciphers);
	ck_assert_ptr_null(tls->ciphersuites);
	ck_assert(!tls->sni_required);
	ck_assert_uint_eq(tls->n_alpn, 0);
	ck_assert_ptr_null(tls->alpn);
	ck_assert(!tls->alpn_required);
	ck_assert_ptr_null(tls->client_ca);
	ck_assert_int_eq(tls->client_verify, TLS_VERIFY_NONE);
	ck_assert_ptr_null(tls->crl);
	ck_assert(tls->session_tickets);
	ck_assert_ptr_null(tls->ticket_keys);
	ck_assert_uint_eq(tls->verify_depth, 5);
	ck_assert_ptr_null(tls->certs[0].ocsp);
	ck_assert_uint_eq(b->connections, 4);
	ck_assert_uint_eq(b->connect_timeout_ms, 2000);
	ck_assert_uint_eq(b->queue_timeout_ms, 5000);
	ck_assert_uint_eq(b->request_timeout_ms, 30000);
	ck_assert_uint_eq(b->max_pending, 4096);
	ck_assert_uint_eq(b->resolve_interval_ms, 10000);
	ck_assert(!b->has_names);
	ck_assert(!b->health.enabled);
	ck_assert_uint_eq(b->eject_after, 0);
	ck_assert_uint_eq(b->eject_time_ms, 10000);
	ck_assert_uint_eq(b->max_ejected_percent, 50);
	ck_assert_uint_eq(cfg->listeners[0].n_routes, 0);
	ck_assert_int_eq(cfg->listeners[0].proxy_protocol, CONFIG_PROXY_OFF);
	ck_assert_uint_eq(cfg->listeners[0].n_proxy_trusted, 0);
	ck_assert(!cfg->resolver.configured);
	ck_assert_uint_eq(cfg->limits.max_connections_per_address, 0);
	ck_assert_uint_eq(cfg->shutdown_delay_ms, 0);
	ck_assert_uint_eq(cfg->limits.max_connections, 10000);
	ck_assert_uint_eq(cfg->limits.max_frame_size, 1048576);
	ck_assert_uint_eq(cfg->limits.client_buffer, 4194304);
	ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->limits.idle_timeout_ms, 300000);
	ck_assert_uint_eq(cfg->grace_timeout_ms, 5000);
	ck_assert(!cfg->has_admin);
	ck_assert_ptr_null(cfg->admin_addr.text);
	ck_assert_int_eq(cfg->log_level, LOG_INFO);
	config_unref(cfg);
}
END_TEST

/* A bigger frame limit is fine once client_buffer follows it. */
START_TEST(test_limits_edges)
{
	struct config *cfg = load_ok(VALID "limits:\n  max_frame_size: 4194303KiB\n"
				     "  client_buffer: 4GiB\n");

	ck_assert_uint_eq(cfg->limits.max_frame_size, UINT64_C(4294966272));
	config_unref(cfg);
	cfg = load_ok(VALID "limits:\n  max_frame_size: 4294967295B\n  client_buffer: 4GiB\n");
	ck_assert_uint_eq(cfg->limits.max_frame_size, UINT64_C(0xFFFFFFFF));
	config_unref(cfg);
	cfg = load_ok(VALID "limits:\n  client_buffer: 1MiB\n");
	ck_assert_uint_eq(cfg->limits.client_buffer, 1048576);
	config_unref(cfg);
}
END_TEST

/* Each count's upper bound itself is accepted (one past it is an error
 * row). */
START_TEST(test_count_bounds)
{
	struct config *cfg = load_ok("workers: 256\n" VALID "    connections: 1024\n"
				     "    max_pending: 1048576\n"
				     "limits:\n  max_connections: 1000000\n");

	ck_assert_uint_eq(cfg->workers, 256);
	ck_assert_uint_eq(config_workers(cfg), 256);
	ck_assert_uint_eq(cfg->backends[0].connections, 1024);
	ck_assert_uint_eq(cfg->backends[0].max_pending, 1048576);
	ck_assert_uint_eq(cfg->limits.max_connections, 1000000);
	config_unref(cfg);
}
END_TEST

/* Relative paths follow the file, however it was named. */
START_TEST(test_relative_paths)
{
	char cwd[PATH_MAX], real[PATH_MAX], want[PATH_MAX * 2];
	struct config *cfg;
	char *errors = NULL;
	const char *path = write_config("sub/t.yaml",
		LHEAD "    tls:\n      certificates:\n        - cert: ../good.crt\n"
		"          key: {dir}/good.key\n" BACK);

	cfg = config_load(path, &errors);
	ck_assert_msg(cfg != NULL, "%s", errors);
	assert_path(cfg->listeners[0].tls.certs[0].cert, "sub/../good.crt");
	assert_path(cfg->listeners[0].tls.certs[0].key, "good.key");
	config_unref(cfg);

	/* from inside the folder, named without one: still absolute */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_ptr_nonnull(realpath(tmpdir, real));
	ck_assert_int_eq(chdir(tmpdir), 0);
	write_config("rel.yaml", VALID);
	cfg = config_load("rel.yaml", &errors);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(cfg != NULL, "%s", errors);
	snprintf(want, sizeof(want), "%s/good.crt", real);
	ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, want);
	ck_assert_str_eq(cfg->path, "rel.yaml");
	config_unref(cfg);

	ck_assert_int_eq(chdir(tmpdir), 0);
	cfg = config_load("./sub/../rel.yaml", &errors);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(cfg != NULL, "%s", errors);
	snprintf(want, sizeof(want), "%s/sub/../good.crt", real);
	ck_assert_str_eq(cfg->listeners[0].tls.certs[0].cert, want);
	config_unref(cfg);
}
END_TEST

/* user: alone is fine (its own group); group: needs it (the error rows). */
START_TEST(test_user_without_group)
{
	struct config *cfg = load_ok("user: nobody\n" VALID);

	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_ptr_null(cfg->group);
	config_unref(cfg);
}
END_TEST

START_TEST(test_workers_auto)
{
	struct config *cfg = load_ok("workers: auto\n" VALID);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	ck_assert_uint_eq(cfg->workers, 0);
	/* one per CPU, but never past the bound on workers: */
	ck_assert_uint_eq(config_workers(cfg), cpus < 1 ? 1 : cpus > 256 ? 256 : (unsigned)cpus);
	ck_assert_uint_ge(config_workers(cfg), 1);
	config_unref(cfg);
}
END_TEST

START_TEST(test_refcount)
{
	struct config *cfg = load_ok(VALID);

	ck_assert_int_eq(cfg->refs, 1);
	ck_assert_ptr_eq(config_ref(cfg), cfg);
	ck_assert_int_eq(cfg->refs, 2);
	config_unref(cfg);
	ck_assert_int_eq(cfg->refs, 1);
	/* still whole: a holder may keep using it */
	ck_assert_str_eq(cfg->backends[0].name, "app");
	config_unref(cfg);   /* frees: ASan reports a leak or double free */
	config_unref(NULL);
}
END_TEST

/* Captures what fn logs on stderr (log.c writes there). */
static char *
capture_stderr(void (*fn)(const struct config *), const struct config *cfg)
{
	char path[PATH_MAX];
	int saved = dup(STDERR_FILENO), fd;
	FILE *fp;
	char *text;
	long n;

	snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert(saved >= 0 && fd >= 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
	fn(cfg);
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return text;
}

START_TEST(test_warn_unsupported)
{
	/* Every key of SPEC §5 is implemented: nothing to warn about. */
	struct config *cfg = load_ok(spec_example);
	char *log = capture_stderr(config_warn_unsupported, cfg);

	ck_assert_str_eq(log, "");
	free(log);
	config_unref(cfg);

	cfg = load_ok(VALID);
	log = capture_stderr(config_warn_unsupported, cfg);
	ck_assert_str_eq(log, "");
	free(log);
	config_unref(cfg);
}
END_TEST

/* Key files written on another system: CRLF line ends, blanks around
 * the key, comments; and every TLS file key at once. */
START_TEST(test_tls_files_accepted)
{
	char path[PATH_MAX], *text;
	struct config *cfg;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/path", tmpdir);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	text = calloc(1, 4096);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_gt(fread(text, 1, 4095, fp), 100);
	fclose(fp);
	text[strcspn(text, "\n")] = '\0';
	snprintf(path, sizeof(path), "# made elsewhere\r\n\r\n  %s \r\n", text);
	write_config("crlf.keys", path);
	free(text);
	static const char yaml[] = LHEAD "    tls:\n      certificates:\n"
		"        - {cert: chained.crt, key: chained.key, ocsp: chained.ocsp}\n"
		"        - {cert: good.crt, key: good.key, ocsp: good.ocsp}\n"
		"      client_ca: path.pem\n      crl: path.pem\n      verify_depth: 2\n"
		"      ticket_keys: crlf.keys\n      sni_required: true\n" BACK;
	struct config *again;

	cfg = load_ok(yaml);
	ck_assert_uint_eq(cfg->listeners[0].tls.verify_depth, 2);
	ck_assert_uint_eq(cfg->tls_built, 2);
	ck_assert_uint_eq(cfg->tls_reused, 0);
	/* the same files again while the first snapshot lives: shared */
	again = load_ok(yaml);
	ck_assert_uint_eq(again->tls_built, 0);
	ck_assert_uint_eq(again->tls_reused, 2);
	config_unref(cfg);
	config_unref(again);
	/* once both are gone, nothing is left to share */
	cfg = load_ok(yaml);
	ck_assert_uint_eq(cfg->tls_built, 2);
	config_unref(cfg);
}
END_TEST

/* ---- what the TLS keys do to a handshake ------------------------------------- */

struct client_opts {
	int max_version;             /* 0: no cap */
	const char *alpn;            /* wire format, NULL for none */
	unsigned alpn_len;
	const char *cert;            /* client certificate basename, or NULL */
};

static SSL *
client_new(const struct client_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char crt[PATH_MAX], key[PATH_MAX];
	SSL *ssl;

	ck_assert_ptr_nonnull(ctx);
	if (o->max_version != 0)
		ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, o->max_version), 1);
	if (o->alpn != NULL)
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)o->alpn,
							 o->alpn_len), 0);
	if (o->cert != NULL) {
		snprintf(crt, sizeof(crt), "%s/%s.crt", tmpdir, o->cert);
		snprintf(key, sizeof(key), "%s/%s.key", tmpdir, o->cert);
		ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	ck_assert_ptr_nonnull(ssl);
	return ssl;
}

/* Runs both ends over a BIO pair until both finish (0) or one fails (-1). */
static int
handshake(SSL *server, SSL *client)
{
	BIO *sb, *cb;

	ck_assert_int_eq(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(server, sb, sb);
	SSL_set_bio(client, cb, cb);
	SSL_set_accept_state(server);
	SSL_set_connect_state(client);
	for (int round = 0; round < 20; round++) {
		int c = SSL_do_handshake(client), s = SSL_do_handshake(server);

		if (c == 1 && s == 1)
			return 0;
		if ((c != 1 && SSL_get_error(client, c) != SSL_ERROR_WANT_READ) ||
		    (s != 1 && SSL_get_error(server, s) != SSL_ERROR_WANT_READ)) {
			ERR_clear_error();
			return -1;
		}
	}
	return -1;
}

static int
try_handshake(struct config *cfg, size_t listener, const struct client_opts *o,
	      char *alpn_out, size_t alpn_len)
{
	SSL *server = tls_ctx_new_ssl(cfg->listeners[listener].tls_ctx);
	SSL *client = client_new(o);
	const unsigned char *sel = NULL;
	unsigned sel_len = 0;
	int rc;

	ck_assert_ptr_nonnull(server);
	rc = handshake(server, client);
	if (rc == 0 && alpn_out != NULL) {
		SSL_get0_alpn_selected(client, &sel, &sel_len);
		snprintf(alpn_out, alpn_len, "%.*s", (int)sel_len, sel != NULL ? (const char *)sel : "");
	}
	SSL_free(server);
	SSL_free(client);
	return rc;
}

START_TEST(test_tls_defaults)
{
	struct config *cfg = load_ok(VALID);
	SSL *ssl = tls_ctx_new_ssl(cfg->listeners[0].tls_ctx);
	struct client_opts o = { .max_version = TLS1_2_VERSION };
	char alpn[32] = "x";

	ck_assert_ptr_nonnull(ssl);
	ck_assert_int_eq(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
	ck_assert(SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION);
	ck_assert(SSL_get_options(ssl) & SSL_OP_NO_COMPRESSION);
	ck_assert(SSL_get_options(ssl) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	ck_assert(!(SSL_get_options(ssl) & SSL_OP_NO_TICKET));
	ck_assert(SSL_get_mode(ssl) & SSL_MODE_RELEASE_BUFFERS);
	ck_assert_int_eq(SSL_get_verify_mode(ssl), SSL_VERIFY_NONE);
	SSL_free(ssl);
	/* TLS 1.2 works and picks a forward-secret AEAD suite */
	ck_assert_int_eq(try_handshake(cfg, 0, &o, alpn, sizeof(alpn)), 0);
	ck_assert_str_eq(alpn, "");
	o.max_version = 0;
	ck_assert_int_eq(try_handshake(cfg, 0, &o, NULL, 0), 0);
	config_unref(cfg);
}
END_TEST

START_TEST(test_tls_min_version_and_tickets)
{
	struct config *cfg = load_ok(LHEAD LTLS "      min_version: TLSv1.3\n"
				     "      session_tickets: false\n" BACK);
	SSL *ssl = tls_ctx_new_ssl(cfg->listeners[0].tls_ctx);
	struct client_opts o = { .max_version = TLS1_2_VERSION };

	ck_assert_int_eq(SSL_get_min_proto_version(ssl), TLS1_3_VERSION);
	ck_assert(SSL_get_options(ssl) & SSL_OP_NO_TICKET);
	SSL_free(ssl);
	ck_assert_int_eq(try_handshake(cfg, 0, &o, NULL, 0), -1);
	o.max_version = TLS1_3_VERSION;
	ck_assert_int_eq(try_handshake(cfg, 0, &o, NULL, 0), 0);
	config_unref(cfg);
}
END_TEST

START_TEST(test_tls_alpn)
{
	struct config *cfg = load_ok(
		"listen:\n"
		"  - address: 127.0.0.1:8443\n    backend: app\n" LTLS
		"      alpn: [sluice/2, sluice/1]\n"
		"  - address: 127.0.0.1:8444\n    backend: app\n" LTLS
		"      alpn: [sluice/1]\n      alpn_required: true\n" BACK);
	struct client_opts both = { .alpn = "\x08sluice/1\x08sluice/2", .alpn_len = 18 };
	struct client_opts h2 = { .alpn = "\x02h2", .alpn_len = 3 };
	struct client_opts none = { 0 };
	char sel[32];

	/* the server's order wins */
	ck_assert_int_eq(try_handshake(cfg, 0, &both, sel, sizeof(sel)), 0);
	ck_assert_str_eq(sel, "sluice/2");
	/* no overlap: carry on without ALPN unless it is required */
	ck_assert_int_eq(try_handshake(cfg, 0, &h2, sel, sizeof(sel)), 0);
	ck_assert_str_eq(sel, "");
	ck_assert_int_eq(try_handshake(cfg, 1, &h2, NULL, 0), -1);
	ck_assert_int_eq(try_handshake(cfg, 1, &none, NULL, 0), -1);
	ck_assert_int_eq(try_handshake(cfg, 1, &both, sel, sizeof(sel)), 0);
	ck_assert_str_eq(sel, "sluice/1");
	config_unref(cfg);
}
END_TEST

START_TEST(test_tls_client_ca)
{
	struct config *cfg = load_ok(
		"listen:\n"
		"  - address: 127.0.0.1:8443\n    backend: app\n" LTLS
		"      client_ca: client.crt\n"
		"  - address: 127.0.0.1:8444\n    backend: app\n" LTLS
		"      client_ca: client.crt\n      client_verify: optional\n" BACK);
	struct client_opts anon = { 0 }, with = { .cert = "client" }, stranger = { .cert = "other" };
	SSL *ssl = tls_ctx_new_ssl(cfg->listeners[0].tls_ctx);

	ck_assert_int_eq(SSL_get_verify_mode(ssl),
			 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	SSL_free(ssl);
	ck_assert_int_eq(try_handshake(cfg, 0, &with, NULL, 0), 0);
	ck_assert_int_eq(try_handshake(cfg, 0, &anon, NULL, 0), -1);
	ck_assert_int_eq(try_handshake(cfg, 0, &stranger, NULL, 0), -1);
	ck_assert_int_eq(try_handshake(cfg, 1, &anon, NULL, 0), 0);
	ck_assert_int_eq(try_handshake(cfg, 1, &with, NULL, 0), 0);
	ck_assert_int_eq(try_handshake(cfg, 1, &stranger, NULL, 0), -1);
	config_unref(cfg);
}
END_TEST

/* An RSA certificate needs the RSA suites of the default list. */
START_TEST(test_tls_rsa_certificate)
{
	struct config *cfg = load_ok(LHEAD "    tls:\n      certificates:\n"
				     "        - cert: rsa.crt\n          key: rsa.key\n" BACK);
	struct client_opts o = { .max_version = TLS1_2_VERSION };

	ck_assert_int_eq(try_handshake(cfg, 0, &o, NULL, 0), 0);
	config_unref(cfg);
}
END_TEST

/* ---- config_addr on its own ------------------------------------------------------- */

/* Each text that config_addr_parse refuses, with the reason it gives. */
static const struct {
	const char *text;
	const char *why;
} addr_rows[] = {
	{ "127.0.0.1", "missing port (expected host:port)" },
	{ "127.0.0.1:", "missing port (expected host:port)" },
	{ "127.0.0.1:0", "port must be a number from 1 to 65535" },
	{ "127.0.0.1:65536", "port must be a number from 1 to 65535" },
	{ "127.0.0.1:+80", "port must be a number from 1 to 65535" },
	{ "127.0.0.1: 80", "port must be a number from 1 to 65535" },
	{ "127.0.0.1:000080", "port must be a number from 1 to 65535" },
	{ "127.0.0.1:0x50", "port must be a number from 1 to 65535" },
	{ ":80", "missing host (use 0.0.0.0 or [::] for every address)" },
	{ "::1:80", "IPv6 addresses go in brackets, e.g. [::1]:8443" },
	{ "example.com:80", "not a numeric IPv4 address (host names are not resolved)" },
	{ "1.2.3:80", "not a numeric IPv4 address (host names are not resolved)" },
	{ "[::1]", "missing port (expected [v6]:port)" },
	{ "[::1:80", "missing ']'" },
	{ "[]:80", "not a numeric IPv6 address" },
	{ "[127.0.0.1]:80", "not a numeric IPv6 address" },
	{ "[::1]:99999", "port must be a number from 1 to 65535" },
};

START_TEST(test_addr_refused)
{
	struct config_addr a = { .len = 99 };
	const char *why = NULL;

	ck_assert_int_eq(config_addr_parse(addr_rows[_i].text, &a, &why), -1);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, addr_rows[_i].why);
	ck_assert_uint_eq(a.len, 0);
}
END_TEST

START_TEST(test_addr_parsed_and_compared)
{
	struct config_addr v4 = { .text = "127.0.0.1:80" }, local = { .text = "localhost:80" };
	struct config_addr zeros = { .text = "127.0.0.1:00080" }, other = { .text = "127.0.0.1:81" };
	struct config_addr v6 = { .text = "[::1]:80" }, v6b = { .text = "[0:0::1]:80" };
	struct config_addr unparsed = { .text = NULL };
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&v6.ss;
	const char *why = NULL;

	ck_assert_int_eq(config_addr_parse(v4.text, &v4, &why), 0);
	assert_ipv4(&v4, "127.0.0.1:80", "127.0.0.1", 80);
	ck_assert_int_eq(config_addr_parse(local.text, &local, &why), 0);
	assert_ipv4(&local, "localhost:80", "127.0.0.1", 80);
	ck_assert_int_eq(config_addr_parse(zeros.text, &zeros, &why), 0);
	assert_ipv4(&zeros, "127.0.0.1:00080", "127.0.0.1", 80);
	ck_assert_int_eq(config_addr_parse(other.text, &other, &why), 0);
	ck_assert_int_eq(config_addr_parse(v6.text, &v6, &why), 0);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(v6.len, sizeof(struct sockaddr_in6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 80);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	ck_assert_int_eq(config_addr_parse(v6b.text, &v6b, &why), 0);

	/* By value, not by text. */
	ck_assert(config_addr_equal(&v4, &local));
	ck_assert(config_addr_equal(&v4, &zeros));
	ck_assert(config_addr_equal(&v6, &v6b));
	ck_assert(!config_addr_equal(&v4, &other));
	ck_assert(!config_addr_equal(&v4, &v6));
	/* An address that was never parsed equals nothing, not even itself. */
	unparsed.ss = v4.ss;
	ck_assert(!config_addr_equal(&v4, &unparsed));
	ck_assert(!config_addr_equal(&unparsed, &unparsed));
}
END_TEST

/* ---- config_yaml on its own ------------------------------------------------------- */

/* The error list is the contract of SPEC §5: "file:line:col: key.path:
 * message", one line per problem, however odd the key or value. */
START_TEST(test_yaml_error_lines)
{
	struct config_yaml y;
	struct config_mark at = { 3, 7 };
	char *text = NULL;

	ck_assert_int_eq(config_yaml_init(&y, "conf/t.yaml"), 0);
	config_yaml_error(&y, &at, "backends.app", "bad %s", "value");
	config_yaml_error(&y, NULL, NULL, "cannot open: %s", "No such file or directory");
	config_yaml_error(&y, &at, "", "no key path");
	/* A line break, a tab, a carriage return, an escape and DEL from a
	 * key or a value: escaped, never a second line or a terminal code. */
	config_yaml_error(&y, &at, "a\nb", "found \"x\ty\rz\x1b[31m\x7f\"");
	ck_assert_uint_eq(config_yaml_finish(&y, &text), 4);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text,
			 "conf/t.yaml:3:7: backends.app: bad value\n"
			 "conf/t.yaml: cannot open: No such file or directory\n"
			 "conf/t.yaml:3:7: no key path\n"
			 "conf/t.yaml:3:7: a\\nb: found \"x\\ty\\rz\\x1b[31m\\x7f\"");
	free(text);

	/* No error, no text. */
	ck_assert_int_eq(config_yaml_init(&y, "t.yaml"), 0);
	text = (char *)"unchanged";
	ck_assert_uint_eq(config_yaml_finish(&y, &text), 0);
	ck_assert_ptr_null(text);
}
END_TEST

/* Every error is counted, but the list stops with one line saying so. */
START_TEST(test_yaml_error_cap)
{
	struct config_yaml y;
	struct config_mark at = { 1, 1 };
	char *text = NULL;
	const char *last;

	ck_assert_int_eq(config_yaml_init(&y, "t.yaml"), 0);
	for (int i = 0; i < CONFIG_YAML_MAX_ERRORS + 10; i++)
		config_yaml_error(&y, &at, "k", "error %d", i);
	ck_assert_uint_eq(config_yaml_finish(&y, &text), CONFIG_YAML_MAX_ERRORS + 10);
	ck_assert_uint_eq(count_lines(text), CONFIG_YAML_MAX_ERRORS + 1);
	last = strrchr(text, '\n');
	ck_assert_ptr_nonnull(last);
	ck_assert_str_eq(last + 1, "t.yaml: too many errors, stopping here");
	free(text);
}
END_TEST

START_TEST(test_yaml_number)
{
	static const char *const refused[] = {
		"", "-1", "+1", "1e3", "0x10", " 1", "1 ", "1_000", "18446744073709551616",
	};
	uint64_t v = 7;

	ck_assert_int_eq(config_yaml_number("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(config_yaml_number("0042", &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(config_yaml_number("18446744073709551615", &v), 0);
	ck_assert(v == UINT64_MAX);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		v = 7;
		ck_assert_msg(config_yaml_number(refused[i], &v) == -1, "accepted \"%s\"", refused[i]);
		ck_assert_uint_eq(v, 7);
	}
}
END_TEST

/* The walker with a table of its own, to show it knows no key of sluice's:
 * unknown, duplicate and missing keys, values through the table's parsers,
 * and where each value was written. */
struct yaml_toy {
	unsigned count;
	char *name;
	bool flag;
};

static const struct config_yaml_bound yaml_toy_bound = { 9, "a toy" };

static int
yaml_toy_count(struct config_yaml *y, yaml_node_t *node, const char *kpath, void *field)
{
	return config_yaml_count_uint(y, node, kpath, &yaml_toy_bound, field);
}

static const struct config_yaml_key yaml_toy_keys[] = {
	{ "count", yaml_toy_count, offsetof(struct yaml_toy, count), true },
	{ "name", config_yaml_parse_string, offsetof(struct yaml_toy, name), true },
	{ "flag", config_yaml_parse_bool, offsetof(struct yaml_toy, flag), false },
	{ NULL, NULL, 0, false },
};

START_TEST(test_yaml_walk)
{
	const char *path = write_config("toy.yaml", "count: 3\nflag: true\nsize: 1\ncount: 4\n");
	struct yaml_toy toy = { 0 };
	struct config_yaml_seen seen;
	const struct config_mark *at;
	struct config_yaml y;
	yaml_node_t *root = NULL;
	char *text = NULL;

	ck_assert_int_eq(config_yaml_init(&y, path), 0);
	ck_assert_int_eq(config_yaml_load(&y, &root), 0);
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(config_yaml_walk(&y, root, "toy", yaml_toy_keys, &toy, &seen), 0);
	ck_assert_uint_eq(toy.count, 3);
	ck_assert(toy.flag);
	ck_assert_ptr_null(toy.name);
	at = config_yaml_seen_at(&seen, yaml_toy_keys, "flag");
	ck_assert_ptr_nonnull(at);
	ck_assert_uint_eq(at->line, 2);
	ck_assert_uint_eq(at->column, 7);
	ck_assert_ptr_null(config_yaml_seen_at(&seen, yaml_toy_keys, "name"));
	ck_assert_uint_eq(config_yaml_finish(&y, &text), 3);
	assert_contains(text, "{dir}/toy.yaml:3:1: toy.size: unknown key (expected one of: count, name, flag)");
	assert_contains(text, "{dir}/toy.yaml:4:1: toy.count: duplicate key (first set at line 1)");
	assert_contains(text, "{dir}/toy.yaml:1:1: toy.name: missing required key");
	free(text);

	/* "---" alone: loaded, but no root to walk. */
	ck_assert_int_eq(config_yaml_init(&y, write_config("empty.yaml", "---\n")), 0);
	ck_assert_int_eq(config_yaml_load(&y, &root), 0);
	ck_assert_ptr_null(root);
	ck_assert_uint_eq(config_yaml_finish(&y, &text), 0);
	ck_assert_ptr_null(text);
}
END_TEST

/* ---- runner ----------------------------------------------------------------------- */

#define N_ROWS ((int)(sizeof(error_rows) / sizeof(error_rows[0])))
#define N_ADDR_ROWS ((int)(sizeof(addr_rows) / sizeof(addr_rows[0])))

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("errors");

	tcase_add_unchecked_fixture(tc, setup_files, teardown_files);
	tcase_add_loop_test(tc, test_error_row, 0, N_ROWS);
	tcase_add_test(tc, test_multiple_errors);
	tcase_add_test(tc, test_tls_every_error);
	tcase_add_test(tc, test_too_many_errors);
	tcase_add_test(tc, test_unreadable_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_unchecked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, test_spec_example);
	tcase_add_test(tc, test_every_key_changes_its_field);
	tcase_add_test(tc, test_fleet_keys);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_limits_edges);
	tcase_add_test(tc, test_count_bounds);
	tcase_add_test(tc, test_relative_paths);
	tcase_add_test(tc, test_workers_auto);
	tcase_add_test(tc, test_user_without_group);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_warn_unsupported);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, test_tls_defaults);
	tcase_add_test(tc, test_tls_min_version_and_tickets);
	tcase_add_test(tc, test_tls_alpn);
	tcase_add_test(tc, test_tls_client_ca);
	tcase_add_test(tc, test_tls_rsa_certificate);
	tcase_add_test(tc, test_tls_files_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("yaml");
	tcase_add_unchecked_fixture(tc, setup_files, teardown_files);
	tcase_add_test(tc, test_yaml_error_lines);
	tcase_add_test(tc, test_yaml_error_cap);
	tcase_add_test(tc, test_yaml_number);
	tcase_add_test(tc, test_yaml_walk);
	suite_add_tcase(s, tc);

	tc = tcase_create("addr");
	tcase_add_loop_test(tc, test_addr_refused, 0, N_ADDR_ROWS);
	tcase_add_test(tc, test_addr_parsed_and_compared);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (tls_init() < 0) {
		fprintf(stderr, "check_config: tls_init failed\n");
		return EXIT_FAILURE;
	}
	return fixture_run_suite(config_suite());
}
