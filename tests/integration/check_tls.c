/*
 * check_tls — the TLS features of a listener through the real sluice
 * binary and a real OpenSSL client: certificates chosen by SNI (exact,
 * wildcard, default, ECDSA and RSA for one name), sni_required, the
 * default after a reload (hitch issue #276), ALPN, client certificates
 * (required, optional, CRL, verify depth, failures counted by reason),
 * resumption by session id and by ticket (across reloads, rotations on
 * reload and on schedule, and two sluice instances sharing a ticket_keys
 * file), OCSP stapling (stapled, never once expired, replaced on reload),
 * SSL_CTX reuse on reload (hitch issues #356, #374), and ALPN, SNI and
 * client-certificate policies applied by a reload (issue #4). Each test says
 * what it guards against; each fails against a sluice without the feature
 * it names.
 *
 * Every test writes its own certificates and configuration, stops sluice
 * with SIGTERM, expects exit status 0 and a log without a crash, a
 * sanitizer report or a [crit] line (fixture_down).
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include "../fixture.h"
#include "../harness.h"
#include "../testcerts.h"

#define POLL_US (20 * 1000)

/* One certificates[] entry for name.crt and name.key. */
#define CERT(name) "        - cert: " name ".crt\n          key: " name ".key\n"

/* ---- certificates -------------------------------------------------------- */

static void
make_cert(const struct fixture *fx, const char *name, const struct testcerts_spec *spec)
{
	ck_assert_msg(testcerts_make(fx->dir, name, spec) == 0, "cannot make %s", name);
}

/* A self-signed ECDSA server certificate for the names in san. */
static void
make_server(const struct fixture *fx, const char *name, const char *san)
{
	const struct testcerts_spec s = { .san = san, .ecdsa = 1 };

	make_cert(fx, name, &s);
}

static void
fingerprint_of(const struct fixture *fx, const char *name, char out[65])
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s.crt", fx->dir, name);
	ck_assert_int_eq(testcerts_fingerprint(path, out), 0);
}

static void
path_of(const struct fixture *fx, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", fx->dir, name);
}

/* ---- sluice ------------------------------------------------------------------ */

/* What a configuration file says: one or two listeners (tls2: the second,
 * on fx->port2), one echo backend, the admin endpoint when the fixture
 * has a port for it. tls and tls2 are the lines under "tls:". */
struct tls_conf {
	const char *tls;
	const char *tls2;
	unsigned workers;           /* [1] */
};

static void
conf_text(const struct fixture *fx, const struct tls_conf *c, char *out, size_t len)
{
	char second[4096] = "", admin[128] = "";
	int n;

	if (c->tls2 != NULL)
		snprintf(second, sizeof(second),
			 "  - address: 127.0.0.1:%u\n    backend: app\n    tls:\n%s", fx->port2, c->tls2);
	if (fx->admin_port != 0)
		snprintf(admin, sizeof(admin), "admin:\n  address: 127.0.0.1:%u\n", fx->admin_port);
	n = snprintf(out, len,
		     "workers: %u\n"
		     "listen:\n"
		     "  - address: 127.0.0.1:%u\n    backend: app\n    tls:\n%s"
		     "%s"
		     "backends:\n  app:\n    servers:\n      - address: 127.0.0.1:%u\n"
		     "    connections: 1\n"
		     "shutdown:\n  grace_timeout: 2s\n"
		     "%s"
		     "log:\n  level: debug\n",
		     c->workers ? c->workers : 1, fx->port, c->tls, second, fx->echo_port[0], admin);
	ck_assert_msg(n > 0 && (size_t)n < len, "configuration text too long");
}

static void
write_conf(const struct fixture *fx, const struct tls_conf *c)
{
	char text[16384];

	conf_text(fx, c, text, sizeof(text));
	fixture_write_text(fx, text);
}

static uint16_t
free_port(void)
{
	uint16_t port = harness_free_port();

	ck_assert_uint_ne(port, 0);
	return port;
}

/* The shared fixture's folder, ports and echo, without its sluice: each
 * test writes its certificates before sluice starts (start_sluice). */
static void
tls_fx_init(struct fixture *fx, int admin)
{
	memset(fx, 0, sizeof(*fx));
	ck_assert_msg(harness_tmpdir(fx->dir, sizeof(fx->dir)) == 0, "%s", harness_last_error());
	snprintf(fx->conf, sizeof(fx->conf), "%s/sluice.yaml", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/sluice.log", fx->dir);
	fx->port = free_port();
	fx->port2 = free_port();
	if (admin)
		fx->admin_port = free_port();
	fx->n_echos = 1;
	fx->echo_port[0] = free_port();
	fixture_start_echo(fx, 0, NULL);
}

/* Starts sluice, with name=value added to its environment when name is
 * set. sluice inherits the test's environment (harness_spawn execs with
 * environ: that is how tiny_reads.sh's SLUICE_MAX_READ reaches it), so the
 * variable is set for the spawn and put back at once, before any assertion
 * can end the test (CK_FORK=no runs every test in one process). */
static void
start_sluice_env(struct fixture *fx, const struct tls_conf *c, const char *name, const char *value)
{
	const char *bin = getenv("SLUICE_BIN");
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-c", fx->conf, NULL };
	char *was = NULL;
	int rc;

	write_conf(fx, c);
	if (name != NULL) {
		if (getenv(name) != NULL)
			was = strdup(getenv(name));
		ck_assert_msg(setenv(name, value, 1) == 0, "setenv %s: %s", name, strerror(errno));
	}
	rc = harness_spawn(&fx->sluice, fx->log, argv);
	if (name != NULL) {
		if (was != NULL)
			setenv(name, was, 1);
		else
			unsetenv(name);
		free(was);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(harness_wait_ready(&fx->sluice, "running", 15000) == 0,
		      "sluice did not start: %s", harness_last_error());
	fixture_check_max_read(fx);
}

static void
start_sluice(struct fixture *fx, const struct tls_conf *c)
{
	start_sluice_env(fx, c, NULL, NULL);
}

static void
reload_with(struct fixture *fx, const struct tls_conf *c)
{
	write_conf(fx, c);
	fixture_hup(fx, 1);
}

/* ---- clients ------------------------------------------------------------------ */

static struct harness_tls *
connect_opts(uint16_t port, const struct harness_tls_opts *o)
{
	struct harness_tls *t = harness_tls_connect_opts(port, o, FIXTURE_IO_MS);

	ck_assert_msg(t != NULL, "connect to %u (sni %s): %s", port, o->sni ? o->sni : "none",
		      harness_last_error());
	return t;
}

static struct harness_tls *
connect_sni(uint16_t port, const char *sni)
{
	struct harness_tls_opts o = { .sni = sni };

	return connect_opts(port, &o);
}

/* The handshake fails, or, in TLS 1.3 where a client finishes before the
 * server has checked its certificate, the first exchange does. Returns
 * the client's reason, for assertions on the alert. */
static const char *
expect_refused(uint16_t port, const struct harness_tls_opts *o)
{
	static __thread char why[512];
	struct harness_tls *t = harness_tls_connect_opts(port, o, FIXTURE_IO_MS);
	struct harness_frame f;
	int rc;

	if (t == NULL) {
		snprintf(why, sizeof(why), "%s", harness_last_error());
		return why;
	}
	rc = harness_send_frame(t, NULL, 0, "refused?", 8);
	if (rc == 0)
		rc = harness_recv_frame(t, &f, FIXTURE_IO_MS);
	snprintf(why, sizeof(why), "%s", harness_last_error());
	if (rc == 0)
		harness_frame_free(&f);
	harness_tls_abort(t);
	ck_assert_msg(rc != 0, "sluice served a client it should have refused (sni %s, cert %s)",
		      o->sni ? o->sni : "none", o->cert_file ? o->cert_file : "none");
	return why;
}

static void
expect_reason(const char *why, const char *alert)
{
	ck_assert_msg(strstr(why, alert) != NULL, "expected \"%s\" in the client's error: %s", alert, why);
}

static void
expect_cert(struct harness_tls *t, const struct fixture *fx, const char *name)
{
	char got[65], want[65];

	fingerprint_of(fx, name, want);
	ck_assert_int_eq(harness_tls_peer_fingerprint(t, got), 0);
	ck_assert_msg(strcmp(got, want) == 0, "sluice served another certificate than %s", name);
}

/* Connects with sni (NULL: none), checks the certificate and that frames
 * pass through. */
static void
expect_served(const struct fixture *fx, const char *sni, const char *name)
{
	struct harness_tls *t = connect_sni(fx->port, sni);

	expect_cert(t, fx, name);
	fixture_round_trip(t, "through sluice");
	harness_tls_close(t);
}

static void
expect_alpn(struct harness_tls *t, const char *want)
{
	const unsigned char *sel = NULL;
	unsigned len = 0;

	SSL_get0_alpn_selected(harness_tls_ssl(t), &sel, &len);
	ck_assert_msg(len == strlen(want) && (len == 0 || memcmp(sel, want, len) == 0),
		      "ALPN: expected '%s', got '%.*s'", want, (int)len, sel ? (const char *)sel : "");
}

/* A session to resume later: in TLS 1.3 the ticket comes after the
 * handshake, so one exchange first. */
static SSL_SESSION *
new_session(uint16_t port, const struct harness_tls_opts *o)
{
	struct harness_tls *t = connect_opts(port, o);
	SSL_SESSION *s;

	ck_assert(!SSL_session_reused(harness_tls_ssl(t)));
	fixture_round_trip(t, "session");
	s = harness_tls_session(t);
	ck_assert_ptr_nonnull(s);
	ck_assert_msg(SSL_SESSION_is_resumable(s), "the session cannot be resumed");
	harness_tls_close(t);
	return s;
}

/* 1 when a connection offering session resumed it. */
static int
resumes(uint16_t port, const struct harness_tls_opts *base, SSL_SESSION *session)
{
	struct harness_tls_opts o = *base;
	struct harness_tls *t;
	int reused;

	o.session = session;
	t = connect_opts(port, &o);
	fixture_round_trip(t, "resumed?");
	reused = SSL_session_reused(harness_tls_ssl(t));
	harness_tls_close(t);
	return reused;
}

/* ---- SNI ---------------------------------------------------------------------------- */

/* Certificates are chosen by the client's server name: exact names from
 * the SAN (any case), a wildcard for exactly one more label, and the first
 * certificate for no name, an unknown name, the wildcard's own parent or
 * two labels down. Fails against a sluice that serves only the first. */
START_TEST(test_sni_exact_wildcard_default)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") CERT("ab") CERT("wild") };

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	make_server(&fx, "ab", "DNS:a.test,DNS:b.test");
	make_server(&fx, "wild", "DNS:*.wild.test");
	start_sluice(&fx, &c);
	expect_served(&fx, "a.test", "ab");
	expect_served(&fx, "b.test", "ab");
	expect_served(&fx, "A.Test", "ab");
	expect_served(&fx, "x.wild.test", "wild");
	expect_served(&fx, "X.WILD.test", "wild");
	expect_served(&fx, "default.test", "def");
	expect_served(&fx, NULL, "def");
	expect_served(&fx, "unknown.test", "def");
	expect_served(&fx, "wild.test", "def");
	expect_served(&fx, "a.b.wild.test", "def");
	fixture_down(&fx);
}
END_TEST

/* A certificate without a SAN is chosen by its CN; one whose SAN has DNS
 * names is not chosen by its CN (RFC 6125). */
START_TEST(test_sni_common_name)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") CERT("cn") CERT("san") };
	const struct testcerts_spec cn = { .cn = "cn.test", .ecdsa = 1 };
	const struct testcerts_spec san = { .cn = "cn-of-san.test", .san = "DNS:san.test", .ecdsa = 1 };

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	make_cert(&fx, "cn", &cn);
	make_cert(&fx, "san", &san);
	start_sluice(&fx, &c);
	expect_served(&fx, "cn.test", "cn");
	expect_served(&fx, "san.test", "san");
	expect_served(&fx, "cn-of-san.test", "def");
	fixture_down(&fx);
}
END_TEST

/* sni_required: no server name, or one no certificate has, gets a fatal
 * unrecognized_name alert instead of the default certificate; known names
 * are served, the first certificate's too. Fails against a sluice that
 * falls back to the default. */
START_TEST(test_sni_required)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") CERT("ab")
				     "      sni_required: true\n" };
	struct harness_tls_opts none = { 0 }, unknown = { .sni = "unknown.test" };

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	make_server(&fx, "ab", "DNS:a.test,DNS:b.test");
	start_sluice(&fx, &c);
	expect_reason(expect_refused(fx.port, &none), "unrecognized name");
	expect_reason(expect_refused(fx.port, &unknown), "unrecognized name");
	expect_served(&fx, "b.test", "ab");
	expect_served(&fx, "default.test", "def");
	fixture_wait_log_count(&fx, "TLS handshake failed", 2);
	fixture_down(&fx);
}
END_TEST

/* An ECDSA and an RSA certificate for the same name: a client that only
 * accepts RSA signatures gets the RSA one, an ECDSA-only client the ECDSA
 * one, in TLS 1.3 and 1.2, for the default name and for an SNI name.
 * Fails against a sluice that keeps one certificate per name. */
START_TEST(test_ecdsa_and_rsa_for_one_name)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def-ec") CERT("dual-ec")
				     CERT("def-rsa") CERT("dual-rsa") };
	const struct testcerts_spec rsa_def = { .san = "DNS:default.test" };
	const struct testcerts_spec rsa_dual = { .san = "DNS:dual.test,DNS:*.dual.test" };
	static const char *const rsa = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256";
	static const char *const ec = "ecdsa_secp256r1_sha256";
	struct harness_tls *t;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def-ec", "DNS:default.test");
	make_server(&fx, "dual-ec", "DNS:dual.test,DNS:*.dual.test");
	make_cert(&fx, "def-rsa", &rsa_def);
	make_cert(&fx, "dual-rsa", &rsa_dual);
	start_sluice(&fx, &c);
	for (int v = 0; v < 2; v++) {
		int max = v == 0 ? 0 : TLS1_2_VERSION;
		struct harness_tls_opts o[] = {
			{ .sni = "dual.test", .sigalgs = rsa, .max_version = max },
			{ .sni = "dual.test", .sigalgs = ec, .max_version = max },
			{ .sni = "x.dual.test", .sigalgs = rsa, .max_version = max },
			{ .sni = NULL, .sigalgs = rsa, .max_version = max },
			{ .sni = NULL, .sigalgs = ec, .max_version = max },
		};
		const char *want[] = { "dual-rsa", "dual-ec", "dual-rsa", "def-rsa", "def-ec" };

		for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
			t = connect_opts(fx.port, &o[i]);
			expect_cert(t, &fx, want[i]);
			fixture_round_trip(t, "key type");
			harness_tls_close(t);
		}
	}
	fixture_down(&fx);
}
END_TEST

/* hitch issue #276: after a reload the default certificate was whichever
 * the new context list put first, not the first of the file. Here the
 * file's order is reversed by a reload: the new first certificate is the
 * default at once, and stays it over a reload that changes nothing
 * (which reuses both contexts). */
START_TEST(test_default_after_reload)
{
	struct fixture fx;
	struct tls_conf one_two = { .tls = "      certificates:\n" CERT("one") CERT("two") };
	struct tls_conf two_one = { .tls = "      certificates:\n" CERT("two") CERT("one") };

	tls_fx_init(&fx, 0);
	make_server(&fx, "one", "DNS:one.test");
	make_server(&fx, "two", "DNS:two.test");
	start_sluice(&fx, &one_two);
	expect_served(&fx, NULL, "one");
	expect_served(&fx, "two.test", "two");
	reload_with(&fx, &two_one);
	expect_served(&fx, NULL, "two");
	expect_served(&fx, "unknown.test", "two");
	expect_served(&fx, "one.test", "one");
	fixture_hup(&fx, 1);
	expect_served(&fx, NULL, "two");
	reload_with(&fx, &one_two);
	expect_served(&fx, NULL, "one");
	fixture_down(&fx);
}
END_TEST

/* ---- ALPN ------------------------------------------------------------------------------ */

/* sluice's order of preference wins; a client without overlap carries on
 * without ALPN, unless alpn_required, which refuses it with a
 * no_application_protocol alert, as it refuses a client without ALPN —
 * whichever certificate its server name picks (switching contexts keeps
 * the policy). */
START_TEST(test_alpn)
{
	struct fixture fx;
	struct tls_conf c = {
		.tls = "      certificates:\n" CERT("def") "      alpn: [sluice/2, sluice/1]\n",
		.tls2 = "      certificates:\n" CERT("def") CERT("ab")
			"      alpn: [sluice/1]\n      alpn_required: true\n",
	};
	struct harness_tls_opts both = { .sni = "default.test", .alpn = "sluice/1,sluice/2" };
	struct harness_tls_opts h2 = { .sni = "default.test", .alpn = "h2" };
	struct harness_tls_opts none = { .sni = "default.test" };
	struct harness_tls_opts ab_h2 = { .sni = "a.test", .alpn = "h2" };
	struct harness_tls_opts ab_none = { .sni = "a.test" };
	struct harness_tls_opts ab_ok = { .sni = "a.test", .alpn = "h2,sluice/1" };
	struct harness_tls *t;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	make_server(&fx, "ab", "DNS:a.test");
	start_sluice(&fx, &c);
	t = connect_opts(fx.port, &both);
	expect_alpn(t, "sluice/2");
	fixture_round_trip(t, "alpn");
	harness_tls_close(t);
	t = connect_opts(fx.port, &h2);
	expect_alpn(t, "");
	fixture_round_trip(t, "no overlap");
	harness_tls_close(t);
	t = connect_opts(fx.port, &none);
	expect_alpn(t, "");
	harness_tls_close(t);

	expect_reason(expect_refused(fx.port2, &none), "no application protocol");
	expect_reason(expect_refused(fx.port2, &h2), "no application protocol");
	expect_reason(expect_refused(fx.port2, &ab_none), "no application protocol");
	expect_reason(expect_refused(fx.port2, &ab_h2), "no application protocol");
	t = connect_opts(fx.port2, &both);
	expect_alpn(t, "sluice/1");
	fixture_round_trip(t, "required");
	harness_tls_close(t);
	t = connect_opts(fx.port2, &ab_ok);
	expect_cert(t, &fx, "ab");
	expect_alpn(t, "sluice/1");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- client certificates ----------------------------------------------------------------- */

/* A CA, a CRL of it revoking "revoked", and client certificates: good,
 * expired, not yet valid, revoked, one from a CA sluice does not know, and
 * one that names the CA as its issuer but was signed by another key. */
static void
make_clients(const struct fixture *fx)
{
	const struct testcerts_spec ca = { .cn = "client CA", .ecdsa = 1, .ca = 1 };
	const struct testcerts_spec other_ca = { .cn = "other CA", .ecdsa = 1, .ca = 1 };
	const struct testcerts_spec good = { .cn = "good client", .ecdsa = 1, .issuer = "ca" };
	const struct testcerts_spec expired = { .cn = "expired client", .ecdsa = 1, .issuer = "ca",
						.not_before = -2 * 86400, .not_after = -86400 };
	const struct testcerts_spec future = { .cn = "future client", .ecdsa = 1, .issuer = "ca",
					       .not_before = 86400, .not_after = 2 * 86400 };
	const struct testcerts_spec stranger = { .cn = "stranger", .ecdsa = 1, .issuer = "other-ca" };
	const struct testcerts_spec forged = { .cn = "forged client", .ecdsa = 1, .issuer = "ca",
					       .forged_by = "other-ca" };
	const char *const revoked[] = { "revoked", NULL };

	make_cert(fx, "ca", &ca);
	make_cert(fx, "other-ca", &other_ca);
	make_cert(fx, "good", &good);
	make_cert(fx, "revoked", &good);
	make_cert(fx, "expired", &expired);
	make_cert(fx, "future", &future);
	make_cert(fx, "stranger", &stranger);
	make_cert(fx, "forged", &forged);
	ck_assert_int_eq(testcerts_crl(fx->dir, "ca", revoked, "ca.crl"), 0);
}

struct client_files {
	char crt[PATH_MAX + 64];
	char key[PATH_MAX + 64];
};

static struct harness_tls_opts
client(const struct fixture *fx, const char *sni, const char *name, struct client_files *f)
{
	struct harness_tls_opts o = { .sni = sni };

	if (name != NULL) {
		snprintf(f->crt, sizeof(f->crt), "%s/%s.crt", fx->dir, name);
		snprintf(f->key, sizeof(f->key), "%s/%s.key", fx->dir, name);
		o.cert_file = f->crt;
		o.key_file = f->key;
	}
	return o;
}

#define FAILURES "sluice_tls_client_cert_failures_total{reason=\""

/* client_verify: required with a CRL: a valid certificate is served, on
 * the default certificate and on an SNI one; none, an expired one, one
 * not yet valid, a revoked one, a stranger's and a forged one are
 * refused, each counted under its reason and named in the log. Fails against a sluice without
 * CRL checks (the revoked client is served) or without the counters. */
START_TEST(test_client_cert_required)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") CERT("ab")
				     "      client_ca: ca.crt\n      crl: ca.crl\n" };
	struct client_files f;
	struct harness_tls_opts o;
	struct harness_tls *t;

	tls_fx_init(&fx, 1);
	make_server(&fx, "def", "DNS:default.test");
	make_server(&fx, "ab", "DNS:a.test");
	make_clients(&fx);
	start_sluice(&fx, &c);
	o = client(&fx, "default.test", "good", &f);
	t = connect_opts(fx.port, &o);
	fixture_round_trip(t, "mtls");
	harness_tls_close(t);
	o = client(&fx, "a.test", "good", &f);
	t = connect_opts(fx.port, &o);
	expect_cert(t, &fx, "ab");
	fixture_round_trip(t, "mtls by sni");
	harness_tls_close(t);

	o = client(&fx, "default.test", NULL, &f);
	expect_refused(fx.port, &o);
	o = client(&fx, "a.test", NULL, &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "no_certificate\"}", 2, FIXTURE_METRIC_COUNTER);
	o = client(&fx, "default.test", "expired", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "expired\"}", 1, FIXTURE_METRIC_COUNTER);
	o = client(&fx, "a.test", "future", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "not_yet_valid\"}", 1, FIXTURE_METRIC_COUNTER);
	o = client(&fx, "default.test", "revoked", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "revoked\"}", 1, FIXTURE_METRIC_COUNTER);
	o = client(&fx, "a.test", "stranger", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "unknown_ca\"}", 1, FIXTURE_METRIC_COUNTER);
	o = client(&fx, "default.test", "forged", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "bad_signature\"}", 1, FIXTURE_METRIC_COUNTER);
	ck_assert_int_eq(fixture_metric(&fx, FAILURES "other\"}"), 0);
	ck_assert_int_eq(fixture_metric(&fx, "sluice_tls_handshake_failures_total"), 7);
	fixture_wait_log_count(&fx, "(client certificate: revoked)", 1);
	fixture_wait_log_count(&fx, "(client certificate: no_certificate)", 2);
	fixture_down(&fx);
}
END_TEST

/* client_verify: optional: no certificate is fine, a valid one too, but
 * one that is sent must verify. */
START_TEST(test_client_cert_optional)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def")
				     "      client_ca: ca.crt\n      client_verify: optional\n" };
	struct client_files f;
	struct harness_tls_opts o;
	struct harness_tls *t;

	tls_fx_init(&fx, 1);
	make_server(&fx, "def", "DNS:default.test");
	make_clients(&fx);
	start_sluice(&fx, &c);
	o = client(&fx, "default.test", NULL, &f);
	t = connect_opts(fx.port, &o);
	fixture_round_trip(t, "anonymous");
	harness_tls_close(t);
	o = client(&fx, "default.test", "good", &f);
	t = connect_opts(fx.port, &o);
	fixture_round_trip(t, "with a certificate");
	harness_tls_close(t);
	o = client(&fx, "default.test", "stranger", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "unknown_ca\"}", 1, FIXTURE_METRIC_COUNTER);
	ck_assert_int_eq(fixture_metric(&fx, FAILURES "no_certificate\"}"), 0);
	fixture_down(&fx);
}
END_TEST

/* verify_depth: a client chain with two intermediate CAs is refused at
 * depth 1 (counted as "other") and served once a reload allows 2. */
START_TEST(test_client_verify_depth)
{
	struct fixture fx;
	struct tls_conf shallow = { .tls = "      certificates:\n" CERT("def")
					   "      client_ca: root.crt\n      verify_depth: 1\n" };
	struct tls_conf deep = { .tls = "      certificates:\n" CERT("def")
					"      client_ca: root.crt\n      verify_depth: 2\n" };
	const struct testcerts_spec root = { .cn = "root CA", .ecdsa = 1, .ca = 1 };
	const struct testcerts_spec int1 = { .cn = "intermediate 1", .ecdsa = 1, .ca = 1,
					     .issuer = "root" };
	const struct testcerts_spec int2 = { .cn = "intermediate 2", .ecdsa = 1, .ca = 1,
					     .issuer = "int1", .chain = 1 };
	const struct testcerts_spec leaf = { .cn = "deep client", .ecdsa = 1, .issuer = "int2",
					     .chain = 1 };
	struct client_files f;
	struct harness_tls_opts o;
	struct harness_tls *t;

	tls_fx_init(&fx, 1);
	make_server(&fx, "def", "DNS:default.test");
	make_cert(&fx, "root", &root);
	make_cert(&fx, "int1", &int1);
	make_cert(&fx, "int2", &int2);
	make_cert(&fx, "leaf", &leaf);
	start_sluice(&fx, &shallow);
	o = client(&fx, "default.test", "leaf", &f);
	expect_refused(fx.port, &o);
	fixture_wait_metric(&fx, FAILURES "other\"}", 1, FIXTURE_METRIC_COUNTER);
	reload_with(&fx, &deep);
	t = connect_opts(fx.port, &o);
	fixture_round_trip(t, "deep chain");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

/* ---- resumption ------------------------------------------------------------------------- */

#define TICKETS_OFF "      session_tickets: false\n"

/* session_tickets: false: sessions resume from sluice's session cache, in
 * TLS 1.2 (session id) and 1.3 (stateful tickets), on either worker (the
 * kernel spreads the 13 connections over both). Fails against a sluice
 * that drops a session from its cache when the client closes first. */
START_TEST(test_resume_by_session_id)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") TICKETS_OFF, .workers = 2 };

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	start_sluice(&fx, &c);
	for (int v = 0; v < 2; v++) {
		struct harness_tls_opts o = { .sni = "default.test",
					      .max_version = v == 0 ? TLS1_2_VERSION : 0 };
		SSL_SESSION *s = new_session(fx.port, &o);

		if (v == 0)
			ck_assert_msg(!SSL_SESSION_has_ticket(s), "a ticket although tickets are off");
		for (int i = 0; i < 12; i++)
			ck_assert_msg(resumes(fx.port, &o, s), "attempt %d (TLS 1.%d) did not resume",
				      i, v == 0 ? 2 : 3);
		SSL_SESSION_free(s);
	}
	fixture_down(&fx);
}
END_TEST

/* Session tickets, TLS 1.2 and 1.3, from the process-wide key store: two
 * workers, each accepting the other's tickets (13 connections: all on one
 * worker once in 4000 runs). Fails against a sluice whose ticket callback
 * cannot decrypt what it encrypted, or whose keys are per worker; and
 * sluice_tls_handshakes_total counts what the server did, not what the
 * client asked for (2 full, 24 resumed). */
START_TEST(test_resume_by_ticket)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def"), .workers = 2 };

	tls_fx_init(&fx, 1);
	make_server(&fx, "def", "DNS:default.test");
	start_sluice(&fx, &c);
	for (int v = 0; v < 2; v++) {
		struct harness_tls_opts o = { .sni = "default.test",
					      .max_version = v == 0 ? TLS1_2_VERSION : 0 };
		SSL_SESSION *s = new_session(fx.port, &o);

		ck_assert_msg(SSL_SESSION_has_ticket(s), "no session ticket");
		for (int i = 0; i < 12; i++)
			ck_assert_msg(resumes(fx.port, &o, s), "attempt %d (TLS 1.%d) did not resume",
				      i, v == 0 ? 2 : 3);
		SSL_SESSION_free(s);
	}
	fixture_wait_metric(&fx, "sluice_tls_handshakes_total{resumed=\"true\"}", 24,
			    FIXTURE_METRIC_COUNTER);
	ck_assert(fixture_metric(&fx, "sluice_tls_handshakes_total{resumed=\"false\"}") == 2);
	fixture_down(&fx);
}
END_TEST

/* Without ticket_keys, every reload makes a new key and keeps the two
 * before it for decryption: a ticket survives one and two rotations, not
 * three. Fails against a sluice that drops the old key at once, and
 * against one that never rotates. */
START_TEST(test_ticket_survives_rotation)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") };
	struct harness_tls_opts o = { .sni = "default.test" };
	SSL_SESSION *s;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	start_sluice(&fx, &c);
	s = new_session(fx.port, &o);
	ck_assert(resumes(fx.port, &o, s));
	fixture_hup(&fx, 1);
	ck_assert_msg(resumes(fx.port, &o, s), "a ticket from before one rotation was refused");
	fixture_hup(&fx, 1);
	ck_assert_msg(resumes(fx.port, &o, s), "a ticket from before two rotations was refused");
	fixture_hup(&fx, 1);
	ck_assert_msg(!resumes(fx.port, &o, s), "a ticket three keys old was still accepted");
	SSL_SESSION_free(s);
	fixture_down(&fx);
}
END_TEST

/* Scheduled rotations, with the period cut to ROTATE_MS. sluice logs each
 * rotation while it holds the key lock, so n lines counted before a
 * handshake mean it used a key at least n rotations new, and n lines
 * counted after it mean at most n: a ticket's age, in rotations, is known
 * from the log, never from the clock. */
#define ROTATE_MS 1000
#define ROTATED "session ticket keys rotated"

/* Polls until at least n rotations are logged (ROTATE_MS apart). */
static void
wait_rotations(struct fixture *fx, int n)
{
	int got = harness_wait_count(fx->log, ROTATED, n, &fx->sluice, FIXTURE_IO_MS);

	ck_assert_msg(got >= n, "%d scheduled rotations logged, expected %d every %d ms: %s", got, n,
		      ROTATE_MS, harness_last_error());
}

/* resumes(), and the rotations logged before (*lo) and after (*hi) it. */
static int
resumes_counted(const struct fixture *fx, const struct harness_tls_opts *o, SSL_SESSION *s,
		int *lo, int *hi)
{
	int reused;

	*lo = fixture_count_log(fx, ROTATED);
	reused = resumes(fx->port, o, s);
	*hi = fixture_count_log(fx, ROTATED);
	return reused;
}

/* Gets a ticket while no rotation is logged (its key: the one after *gen
 * rotations), waits for `age` more, and offers it. 1 when it resumed.
 * Tried again, with a new ticket, when a rotation falls inside either
 * handshake (a machine stalled for a period): 3 tries at most. The
 * ticket is left in *ticket. */
static int
resumes_after(struct fixture *fx, const struct harness_tls_opts *o, int age,
	      SSL_SESSION **ticket, int *gen)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int before = fixture_count_log(fx, ROTATED), lo, hi, reused;
		SSL_SESSION *s = new_session(fx->port, o);

		ck_assert_msg(SSL_SESSION_get_protocol_version(s) == TLS1_3_VERSION &&
			      SSL_SESSION_has_ticket(s), "no TLS 1.3 session ticket");
		if (fixture_count_log(fx, ROTATED) == before) {
			wait_rotations(fx, before + age);
			reused = resumes_counted(fx, o, s, &lo, &hi);
			if (lo == before + age && hi == lo) {
				*ticket = s;
				*gen = before;
				return reused;
			}
		}
		SSL_SESSION_free(s);
	}
	ck_abort_msg("3 tries out of 3 saw a rotation during a handshake (every %d ms; see %s)",
		     ROTATE_MS, fx->log);
	return 0;
}

/* The 12-hour timer, every ROTATE_MS (SLUICE_TICKET_ROTATE_MS): a TLS 1.3
 * ticket resumes after exactly one scheduled rotation and not after three
 * (a full handshake instead), while a ticket made after them resumes.
 * Fails against a sluice whose timer never fires or fires once (not
 * re-armed), and against one whose scheduled rotation drops the previous
 * key or never replaces the current one. */
START_TEST(test_ticket_scheduled_rotation)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") };
	struct harness_tls_opts o = { .sni = "default.test", .min_version = TLS1_3_VERSION };
	char period[32], started[128];
	SSL_SESSION *s, *fresh;
	int gen, gen2, lo, hi;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	snprintf(period, sizeof(period), "%d", ROTATE_MS);
	start_sluice_env(&fx, &c, "SLUICE_TICKET_ROTATE_MS", period);
	snprintf(started, sizeof(started), "SLUICE_TICKET_ROTATE_MS=%d: ticket keys rotate every %d ms",
		 ROTATE_MS, ROTATE_MS);
	ck_assert_msg(fixture_count_log(&fx, started) == 1, "no \"%s\" in %s", started, fx.log);

	ck_assert_msg(resumes_after(&fx, &o, 1, &s, &gen),
		      "a ticket from before one scheduled rotation was refused (see %s)", fx.log);
	wait_rotations(&fx, gen + 3);
	ck_assert_msg(!resumes_counted(&fx, &o, s, &lo, &hi),
		      "a ticket %d scheduled rotations old was still accepted", lo - gen);
	ck_assert_int_ge(lo - gen, 3);
	ck_assert_msg(resumes_after(&fx, &o, 0, &fresh, &gen2),
		      "a ticket made after %d scheduled rotations was refused", gen2);
	ck_assert_int_ge(gen2, gen + 3);
	SSL_SESSION_free(fresh);
	SSL_SESSION_free(s);
	fixture_down(&fx);
}
END_TEST

/* ticket_keys: the file's keys survive reloads (here one that rebuilds
 * the context, the certificate having changed, and three more), since
 * sluice never rotates them; the operator's rotation — a new first line,
 * the old key kept below — still resumes old tickets; removing the old key
 * ends them. Fails against a sluice whose keys belong to the SSL_CTX. */
START_TEST(test_ticket_keys_across_reloads)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") "      ticket_keys: keys\n" };
	struct harness_tls_opts o = { .sni = "default.test" };
	char keys[PATH_MAX + 64], fresh[PATH_MAX + 64], *old_text, *new_text, both[1024];
	SSL_SESSION *s;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	path_of(&fx, "keys", keys, sizeof(keys));
	path_of(&fx, "fresh", fresh, sizeof(fresh));
	ck_assert_int_eq(testcerts_ticket_keys(keys, 1), 0);
	start_sluice(&fx, &c);
	s = new_session(fx.port, &o);
	make_server(&fx, "def", "DNS:default.test");
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, "0 TLS contexts reused, 1 built", 1);
	expect_served(&fx, "default.test", "def");
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(resumes(fx.port, &o, s), "not resumed after reload %d", i + 1);
		fixture_hup(&fx, 1);
	}
	/* The operator's rotation: a new key first, the old one kept below. */
	ck_assert_int_eq(testcerts_ticket_keys(fresh, 1), 0);
	old_text = harness_read_file(keys, NULL);
	new_text = harness_read_file(fresh, NULL);
	ck_assert(old_text != NULL && new_text != NULL);
	snprintf(both, sizeof(both), "%s%s", new_text, old_text);
	ck_assert_int_eq(harness_write_file(keys, both), 0);
	fixture_hup(&fx, 1);
	ck_assert_msg(resumes(fx.port, &o, s), "the old key no longer decrypts");
	ck_assert_int_eq(harness_write_file(keys, new_text), 0);
	fixture_hup(&fx, 1);
	ck_assert_msg(!resumes(fx.port, &o, s), "a removed key still decrypts");
	free(old_text);
	free(new_text);
	SSL_SESSION_free(s);
	fixture_down(&fx);
}
END_TEST

/* Two sluice instances with the same ticket_keys file resume each other's
 * clients (HAProxy's tls-ticket-keys); with another file, they do not. */
START_TEST(test_ticket_keys_shared_by_instances)
{
	struct fixture fx, fx2;
	char text[16384], tls[PATH_MAX * 4], keys[PATH_MAX + 64], other[PATH_MAX + 64];
	struct harness_tls_opts o = { .sni = "default.test" };
	struct tls_conf c;
	SSL_SESSION *s;
	const char *bin = getenv("SLUICE_BIN");
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-c", fx2.conf, NULL };

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	path_of(&fx, "keys", keys, sizeof(keys));
	path_of(&fx, "other-keys", other, sizeof(other));
	ck_assert_int_eq(testcerts_ticket_keys(keys, 2), 0);
	ck_assert_int_eq(testcerts_ticket_keys(other, 2), 0);
	snprintf(tls, sizeof(tls), "      certificates:\n        - cert: %s/def.crt\n"
		 "          key: %s/def.key\n      ticket_keys: %s\n", fx.dir, fx.dir, keys);
	c = (struct tls_conf){ .tls = tls };
	start_sluice(&fx, &c);

	/* The second instance: its own folder and port, the same backend. */
	memset(&fx2, 0, sizeof(fx2));
	ck_assert_int_eq(harness_tmpdir(fx2.dir, sizeof(fx2.dir)), 0);
	snprintf(fx2.conf, sizeof(fx2.conf), "%s/sluice.yaml", fx2.dir);
	snprintf(fx2.log, sizeof(fx2.log), "%s/sluice.log", fx2.dir);
	fx2.port = free_port();
	fx2.echo_port[0] = fx.echo_port[0];
	conf_text(&fx2, &c, text, sizeof(text));
	fixture_write_text(&fx2, text);
	ck_assert_int_eq(harness_spawn(&fx2.sluice, fx2.log, argv), 0);
	ck_assert_msg(harness_wait_ready(&fx2.sluice, "running", 15000) == 0, "%s", harness_last_error());

	s = new_session(fx.port, &o);
	ck_assert_msg(resumes(fx2.port, &o, s), "the second instance did not resume the first's ticket");
	SSL_SESSION_free(s);
	s = new_session(fx2.port, &o);
	ck_assert_msg(resumes(fx.port, &o, s), "the first instance did not resume the second's ticket");

	snprintf(tls, sizeof(tls), "      certificates:\n        - cert: %s/def.crt\n"
		 "          key: %s/def.key\n      ticket_keys: %s\n", fx.dir, fx.dir, other);
	conf_text(&fx2, &c, text, sizeof(text));
	fixture_write_text(&fx2, text);
	fixture_hup(&fx2, 1);
	ck_assert_msg(!resumes(fx2.port, &o, s), "resumed with keys from another file");
	SSL_SESSION_free(s);
	fixture_down(&fx2);
	fixture_down(&fx);
}
END_TEST

/* A bad ticket key file is a configuration error at the ticket_keys key
 * that names the line of the key file, for `sluice -t` and for a reload
 * (which keeps the running keys: old tickets still resume). */
START_TEST(test_ticket_keys_file_error)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("def") "      ticket_keys: keys\n" };
	struct harness_tls_opts o = { .sni = "default.test" };
	struct harness_proc check = { 0 };
	char keys[PATH_MAX + 64], out[PATH_MAX + 64], want[PATH_MAX + 128], *good, bad[1024];
	const char *bin = getenv("SLUICE_BIN");
	char *argv[] = { (char *)(bin ? bin : "./proxy/sluice"), "-t", "-c", fx.conf, NULL };
	SSL_SESSION *s;
	int status = -1;

	tls_fx_init(&fx, 0);
	make_server(&fx, "def", "DNS:default.test");
	path_of(&fx, "keys", keys, sizeof(keys));
	path_of(&fx, "check.out", out, sizeof(out));
	ck_assert_int_eq(testcerts_ticket_keys(keys, 1), 0);
	start_sluice(&fx, &c);
	s = new_session(fx.port, &o);

	good = harness_read_file(keys, NULL);
	ck_assert_ptr_nonnull(good);
	snprintf(bad, sizeof(bad), "%s# a comment\nnot base64!\n", good);
	ck_assert_int_eq(harness_write_file(keys, bad), 0);
	/* the ticket_keys value is on line 9, column 20 of the file */
	snprintf(want, sizeof(want), "sluice.yaml:9:20: listen[0].tls.ticket_keys: %s:3: ", keys);
	ck_assert_int_eq(harness_spawn(&check, out, argv), 0);
	ck_assert_int_eq(harness_wait_exit(&check, 15000, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "sluice -t exit status 0x%x", status);
	ck_assert_msg(harness_count_log(out, want) == 1, "no \"%s\" in %s", want, out);
	fixture_hup(&fx, 0);
	fixture_wait_log_count(&fx, want, 1);
	ck_assert_msg(resumes(fx.port, &o, s), "the rejected reload lost the running keys");
	SSL_SESSION_free(s);
	free(good);
	fixture_down(&fx);
}
END_TEST

/* ---- OCSP stapling --------------------------------------------------------------------- */

/* A CA and, per name, an ECDSA and an RSA certificate it signed (the CA
 * in the chain file, so sluice can check the responses' CertIDs). */
static void
make_ca_servers(const struct fixture *fx)
{
	const struct testcerts_spec ca = { .cn = "server CA", .ecdsa = 1, .ca = 1 };
	const struct testcerts_spec ec = { .san = "DNS:default.test", .ecdsa = 1, .issuer = "ca",
					   .chain = 1 };
	const struct testcerts_spec rsa = { .san = "DNS:default.test", .issuer = "ca", .chain = 1 };
	const struct testcerts_spec plain = { .san = "DNS:plain.test", .ecdsa = 1, .issuer = "ca",
					      .chain = 1 };

	make_cert(fx, "ca", &ca);
	make_cert(fx, "ec", &ec);
	make_cert(fx, "rsa", &rsa);
	make_cert(fx, "plain", &plain);
}

static void
make_ocsp(const struct fixture *fx, const char *cert, long this_update, long next_update,
	  const char *out)
{
	ck_assert_int_eq(testcerts_ocsp(fx->dir, cert, "ca", V_OCSP_CERTSTATUS_GOOD, this_update, 1,
					next_update, out), 0);
}

/* The stapled response: 1 when it equals the file's bytes, 0 when none. */
static int
stapled(const struct fixture *fx, const struct harness_tls_opts *o, const char *file)
{
	struct harness_tls *t = connect_opts(fx->port, o);
	char path[PATH_MAX + 64];
	const unsigned char *der;
	size_t want_len = 0;
	char *want;
	long len = harness_tls_ocsp(t, &der);
	int same;

	path_of(fx, file, path, sizeof(path));
	want = harness_read_file(path, &want_len);
	ck_assert_ptr_nonnull(want);
	same = len > 0 && (size_t)len == want_len && memcmp(der, want, want_len) == 0;
	ck_assert_msg(len == 0 || same, "the stapled response is not %s", file);
	free(want);
	harness_tls_close(t);
	return len > 0;
}

#define OCSP_TLS "      certificates:\n" \
	"        - cert: ec.crt\n          key: ec.key\n          ocsp: ec.ocsp\n" \
	"        - cert: rsa.crt\n          key: rsa.key\n          ocsp: rsa.ocsp\n" \
	CERT("plain")

/* A client that asks gets the response of the very certificate it is
 * served (ECDSA or RSA, in TLS 1.3 and 1.2); a client that does not ask
 * gets none, nor does one served a certificate without a response. */
START_TEST(test_ocsp_stapled)
{
	struct fixture fx;
	struct tls_conf c = { .tls = OCSP_TLS };
	static const char *const rsa = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256";
	static const char *const ec = "ecdsa_secp256r1_sha256";

	tls_fx_init(&fx, 0);
	make_ca_servers(&fx);
	make_ocsp(&fx, "ec", -3600, 86400, "ec.ocsp");
	make_ocsp(&fx, "rsa", -3600, 86400, "rsa.ocsp");
	start_sluice(&fx, &c);
	for (int v = 0; v < 2; v++) {
		int max = v == 0 ? 0 : TLS1_2_VERSION;
		struct harness_tls_opts o_ec = { .sni = "default.test", .sigalgs = ec,
						 .status_request = 1, .max_version = max };
		struct harness_tls_opts o_rsa = { .sni = "default.test", .sigalgs = rsa,
						  .status_request = 1, .max_version = max };
		struct harness_tls_opts o_plain = { .sni = "plain.test", .status_request = 1,
						    .max_version = max };
		struct harness_tls_opts o_quiet = { .sni = "default.test", .max_version = max };

		ck_assert_msg(stapled(&fx, &o_ec, "ec.ocsp"), "no response stapled (ECDSA)");
		ck_assert_msg(stapled(&fx, &o_rsa, "rsa.ocsp"), "no response stapled (RSA)");
		ck_assert_msg(!stapled(&fx, &o_plain, "ec.ocsp"), "a response for another certificate");
		ck_assert_msg(!stapled(&fx, &o_quiet, "ec.ocsp"), "stapled to a client that did not ask");
	}
	fixture_down(&fx);
}
END_TEST

/* A response is stapled until its nextUpdate and never after (warned
 * about once, however many clients ask); one already expired at load is
 * loaded with a warning and never stapled. Fails against a sluice that
 * staples whatever it loaded. */
START_TEST(test_ocsp_not_stapled_once_expired)
{
	enum { LIFE_S = 8 };
	struct fixture fx;
	struct tls_conf c = { .tls = OCSP_TLS };
	struct harness_tls_opts o = { .sni = "default.test", .sigalgs = "ecdsa_secp256r1_sha256",
				      .status_request = 1 };
	time_t expiry;
	int64_t deadline;
	int still = 1;

	tls_fx_init(&fx, 0);
	make_ca_servers(&fx);
	make_ocsp(&fx, "rsa", -3600, 86400, "rsa.ocsp");
	make_ocsp(&fx, "ec", -3600, LIFE_S, "ec.ocsp");
	expiry = time(NULL) + LIFE_S;   /* no earlier than the response's nextUpdate */
	start_sluice(&fx, &c);
	if (time(NULL) < expiry - 1)
		ck_assert_msg(stapled(&fx, &o, "ec.ocsp"), "a fresh response was not stapled");
	deadline = fixture_mono_ms() + (LIFE_S + 20) * 1000;
	while (still && fixture_mono_ms() < deadline) {
		/* sluice decides after this moment: a staple then means it was
		 * still valid at a time >= before */
		time_t before = time(NULL);

		still = stapled(&fx, &o, "ec.ocsp");
		ck_assert_msg(!still || before < expiry, "stapled after its nextUpdate");
		if (still)
			usleep(200 * 1000);
	}
	ck_assert_msg(!still, "still stapled %d s after nextUpdate", 20);
	for (int i = 0; i < 3; i++)
		ck_assert(!stapled(&fx, &o, "ec.ocsp"));
	fixture_wait_log_count(&fx, "no longer stapled", 1);

	/* expired before it is loaded */
	make_ocsp(&fx, "ec", -7200, -60, "ec.ocsp");
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, "expired at", 2);
	ck_assert(!stapled(&fx, &o, "ec.ocsp"));
	fixture_down(&fx);
}
END_TEST

/* A fresh response file and a reload: the next client gets the new one
 * (the certificate's context is rebuilt with it). */
START_TEST(test_ocsp_replaced_on_reload)
{
	struct fixture fx;
	struct tls_conf c = { .tls = OCSP_TLS };
	struct harness_tls_opts o = { .sni = "default.test", .sigalgs = "ecdsa_secp256r1_sha256",
				      .status_request = 1 };
	char fresh[PATH_MAX + 64], current[PATH_MAX + 64];

	tls_fx_init(&fx, 0);
	make_ca_servers(&fx);
	make_ocsp(&fx, "ec", -7200, 86400, "ec.ocsp");
	make_ocsp(&fx, "rsa", -3600, 86400, "rsa.ocsp");
	start_sluice(&fx, &c);
	ck_assert(stapled(&fx, &o, "ec.ocsp"));
	/* a newer response, renamed over the old one as a fetch script would */
	make_ocsp(&fx, "ec", -60, 2 * 86400, "ec2.ocsp");
	path_of(&fx, "ec2.ocsp", fresh, sizeof(fresh));
	path_of(&fx, "ec.ocsp", current, sizeof(current));
	ck_assert_int_eq(rename(fresh, current), 0);
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, "1 TLS contexts reused, 1 built", 1);
	ck_assert_msg(stapled(&fx, &o, "ec.ocsp"), "the new response was not stapled");
	fixture_down(&fx);
}
END_TEST

/* ---- SSL_CTX reuse ------------------------------------------------------------------------ */

/* hitch issues #356 and #374: a reload built every context again, so
 * memory doubled with thousands of certificates. A reload that changes
 * nothing reuses all three contexts; one changed certificate rebuilds its
 * own context only (and is served at once); a changed setting rebuilds all. */
START_TEST(test_unchanged_contexts_reused)
{
	struct fixture fx;
	struct tls_conf c = { .tls = "      certificates:\n" CERT("a") CERT("b") CERT("c") };
	struct tls_conf alpn = { .tls = "      certificates:\n" CERT("a") CERT("b") CERT("c")
					"      alpn: [sluice/1]\n" };
	char before[65], after[65];

	tls_fx_init(&fx, 0);
	make_server(&fx, "a", "DNS:a.test");
	make_server(&fx, "b", "DNS:b.test");
	make_server(&fx, "c", "DNS:c.test");
	start_sluice(&fx, &c);
	fingerprint_of(&fx, "b", before);
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, "3 TLS contexts reused, 0 built", 1);
	expect_served(&fx, "b.test", "b");
	make_server(&fx, "b", "DNS:b.test");
	fingerprint_of(&fx, "b", after);
	ck_assert_str_ne(before, after);
	fixture_hup(&fx, 1);
	fixture_wait_log_count(&fx, "2 TLS contexts reused, 1 built", 1);
	expect_served(&fx, "b.test", "b");
	expect_served(&fx, "a.test", "a");
	reload_with(&fx, &alpn);
	fixture_wait_log_count(&fx, "0 TLS contexts reused, 3 built", 1);
	expect_served(&fx, "c.test", "c");
	fixture_down(&fx);
}
END_TEST

/* ---- settings applied by reload ------------------------------------------------------- */

/* Issue #4: alpn/alpn_required, sni_required and client_ca/client_verify
 * take effect on SIGHUP, by behaviour, not only as a rebuilt context. A
 * plain listener serves a client with no ALPN, no SNI and no certificate;
 * after a reload adding all four settings, a client lacking only ALPN,
 * only SNI or only a certificate is refused, one with all three is served
 * and negotiates sluice/1, and a client connected before the reload keeps
 * its session. A reload back to the plain file serves a plain client
 * again. Fails against a sluice that keeps the old policy on reload (or
 * that applies the new one to established sessions). */
START_TEST(test_tls_settings_apply_on_reload)
{
	struct fixture fx;
	struct tls_conf plain = { .tls = "      certificates:\n" CERT("srv") };
	struct tls_conf strict = { .tls = "      certificates:\n" CERT("srv")
					  "      alpn: [sluice/1]\n      alpn_required: true\n"
					  "      sni_required: true\n"
					  "      client_ca: ca.crt\n      client_verify: required\n" };
	struct client_files f;
	struct harness_tls_opts none = { 0 }, o;
	struct harness_tls *before, *t;

	tls_fx_init(&fx, 0);
	make_server(&fx, "srv", "DNS:localhost");
	make_clients(&fx);
	start_sluice(&fx, &plain);
	t = connect_opts(fx.port, &none);
	expect_cert(t, &fx, "srv");
	expect_alpn(t, "");
	fixture_round_trip(t, "plain");
	harness_tls_close(t);
	before = connect_opts(fx.port, &none);
	fixture_round_trip(before, "before the reload");

	reload_with(&fx, &strict);
	/* (a) everything but ALPN */
	o = client(&fx, "localhost", "good", &f);
	expect_reason(expect_refused(fx.port, &o), "no application protocol");
	/* (b) everything but SNI */
	o = client(&fx, NULL, "good", &f);
	o.alpn = "sluice/1";
	expect_reason(expect_refused(fx.port, &o), "unrecognized name");
	/* (c) everything but a client certificate */
	o = client(&fx, "localhost", NULL, &f);
	o.alpn = "sluice/1";
	expect_refused(fx.port, &o);
	/* (d) all of them */
	o = client(&fx, "localhost", "good", &f);
	o.alpn = "sluice/1";
	t = connect_opts(fx.port, &o);
	expect_cert(t, &fx, "srv");
	expect_alpn(t, "sluice/1");
	fixture_round_trip(t, "strict");
	harness_tls_close(t);
	/* (e) the session established before the reload keeps its settings */
	fixture_round_trip(before, "after the reload");
	expect_alpn(before, "");
	harness_tls_close(before);

	reload_with(&fx, &plain);
	t = connect_opts(fx.port, &none);
	expect_alpn(t, "");
	fixture_round_trip(t, "plain again");
	harness_tls_close(t);
	fixture_down(&fx);
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("integration");

	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_sni_exact_wildcard_default);
	tcase_add_test(tc, test_sni_common_name);
	tcase_add_test(tc, test_sni_required);
	tcase_add_test(tc, test_ecdsa_and_rsa_for_one_name);
	tcase_add_test(tc, test_default_after_reload);
	tcase_add_test(tc, test_alpn);
	tcase_add_test(tc, test_client_cert_required);
	tcase_add_test(tc, test_client_cert_optional);
	tcase_add_test(tc, test_client_verify_depth);
	tcase_add_test(tc, test_resume_by_session_id);
	tcase_add_test(tc, test_resume_by_ticket);
	tcase_add_test(tc, test_ticket_survives_rotation);
	tcase_add_test(tc, test_ticket_scheduled_rotation);
	tcase_add_test(tc, test_ticket_keys_across_reloads);
	tcase_add_test(tc, test_ticket_keys_shared_by_instances);
	tcase_add_test(tc, test_ticket_keys_file_error);
	tcase_add_test(tc, test_ocsp_stapled);
	tcase_add_test(tc, test_ocsp_not_stapled_once_expired);
	tcase_add_test(tc, test_ocsp_replaced_on_reload);
	tcase_add_test(tc, test_unchanged_contexts_reused);
	tcase_add_test(tc, test_tls_settings_apply_on_reload);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	fixture_set_deadlines(15000, 20000);
	return fixture_run_suite(tls_suite());
}
