/*
 * tls — turns a listener's tls: section into SSL_CTXs: one per group of
 * certificates with the same names (ECDSA and RSA for one name share a
 * context and OpenSSL picks by the client's signature algorithms), each
 * set up by the same code (protocols, ciphers, ALPN, client certificates,
 * tickets, OCSP), so switching contexts never changes policy.
 *
 *   ClientHello ─▶ client_hello cb (ALPN required?) ─▶ servername cb:
 *       exact name, then "*.parent" (one label) ─▶ SSL_set_SSL_CTX(group)
 *       no name or unknown: the default (certificates[0]'s group), or a
 *       fatal unrecognized_name alert with sni_required
 *   ─▶ ALPN select, certificate by sigalgs, OCSP status cb ─▶ ...
 *
 * A group's SSL_CTX is keyed by a SHA-256 over its files' contents and the
 * section's settings; a key that the running snapshot already built is
 * taken from the registry (tls_registry.h) rather than built again.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sluice/log.h>
#include <sluice/tls.h>
#include <sluice/tls_cert.h>
#include <sluice/tls_ocsp.h>
#include <sluice/tls_policy.h>
#include <sluice/tls_registry.h>
#include <sluice/tls_settings.h>
#include <sluice/tls_tickets.h>
#include <sluice/tls_util.h>

struct tls_group {
	SSL_CTX *ctx;               /* one reference */
	unsigned char key[TLS_REGISTRY_KEY];
	unsigned registered:1;      /* counted as a user in the registry */
};

/* A name SNI may ask for and the group that serves it. */
struct tls_name {
	char *name;                 /* lowercase; a wildcard without its "*." */
	size_t group;
};

/* Owned by the configuration snapshot; immutable once built. */
struct tls_ctx {
	struct tls_group *groups;   /* groups[0] holds certificates[0]: the default */
	size_t n_groups;
	struct tls_name *exact;     /* sorted by name */
	size_t n_exact;
	struct tls_name *wild;      /* "*.example.com" as "example.com", sorted */
	size_t n_wild;
	bool sni_required;          /* unknown or missing name: alert, no default */
	unsigned built, reused;
};

/* One tls_ctx_build call. */
struct tls_build {
	const struct tls_settings *conf;
	tls_report_fn report;
	void *arg;
	struct tls_cert *certs;     /* conf->n_certs, parsed */
	size_t *group_of;           /* certificate → group */
	struct tls_policy pol;
	bool failed;
	bool section_failed;        /* stop building groups: each would say the same */
	bool policy_applied;        /* OpenSSL has judged the cipher lists */
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ssl_index = -1;     /* SSL ex_data: the tls_ctx it came from */
static int tls_init_failed;
static unsigned long tls_builds, tls_reuses;   /* atomic */

static void
tls_init_once(void)
{
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
			     OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1) {
		tls_init_failed = 1;
		return;
	}
	tls_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tls_policy_init() < 0 || tls_ssl_index < 0 || tls_tickets_init() < 0 ||
	    tls_ocsp_init() < 0)
		tls_init_failed = 1;
}

int
tls_init(void)
{
	if (pthread_once(&tls_once, tls_init_once) != 0 || tls_init_failed) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* ---- errors ------------------------------------------------------------------ */

/* Writes "<what>: <openssl reason>" into err; returns -1 for tail calls. */
static int
tls_fail(char *err, size_t errlen, const char *what)
{
	char reason[256];

	tls_util_openssl_reason(reason, sizeof(reason));
	snprintf(err, errlen, "%s: %s", what, reason);
	return -1;
}

/* ---- groups -------------------------------------------------------------------- */

/* A tls_report_fn over the build (arg): every problem reaches the
 * caller's report, and fails the build. */
static void
tls_build_report(void *arg, long cert, enum tls_key key, const char *msg)
{
	struct tls_build *b = arg;

	b->failed = true;
	if (cert == TLS_SECTION)
		b->section_failed = true;
	b->report(b->arg, cert, key, msg);
}

/* The same, typed, for this file's own calls. */
static void
tls_report(struct tls_build *b, long cert, enum tls_key key, const char *msg)
{
	tls_build_report(b, cert, key, msg);
}

/* Certificates first, each on its own: every bad one is reported. A
 * failure needs no handling here: its report failed the build. */
static void
tls_build_certs(struct tls_build *b)
{
	for (size_t i = 0; i < b->conf->n_certs; i++)
		(void)tls_cert_load(&b->conf->certs[i], (long)i, &b->certs[i], tls_build_report, b);
}

/* Equal name sets make one group, in the order of first appearance; a
 * group cannot hold two keys of one type (OpenSSL has one slot per type). */
static size_t
tls_build_groups(struct tls_build *b, size_t *first)
{
	char err[4600];
	size_t n = 0;

	for (size_t i = 0; i < b->conf->n_certs; i++) {
		const char *type = NULL;
		size_t g = 0;

		while (g < n && !tls_cert_same_names(&b->certs[first[g]], &b->certs[i]))
			g++;
		b->group_of[i] = g;
		if (g == n) {
			first[n++] = i;
			if (g > 0 && b->certs[i].n_names == 0)
				tls_report(b, (long)i, TLS_KEY_CERT, "the certificate has no DNS name "
					   "(subjectAltName or CN) that SNI could choose it by");
			continue;
		}
		for (size_t j = first[g]; j < i; j++) {
			if (b->group_of[j] != g ||
			    tls_cert_key_type(&b->certs[j], &type) != tls_cert_key_type(&b->certs[i], &type))
				continue;
			snprintf(err, sizeof(err), "certificates[%zu] already serves the same names "
				 "with a %s key: one name gets one certificate per key type", j, type);
			tls_report(b, (long)i, TLS_KEY_CERT, err);
			break;
		}
	}
	return n;
}

static int
tls_group_key(struct tls_build *b, size_t g, unsigned char key[TLS_REGISTRY_KEY])
{
	const unsigned char *digests[8];
	size_t n = 0;

	for (size_t i = 0; i < b->conf->n_certs && n < 8; i++) {
		if (b->group_of[i] == g)
			digests[n++] = b->certs[i].digest;
	}
	return tls_policy_group_key(&b->pol, digests, n, key);
}

/* One certificate and its key into ctx; the key is parsed for this only. */
static int
tls_group_use_cert(struct tls_build *b, size_t i, SSL_CTX *ctx)
{
	struct tls_cert *c = &b->certs[i];
	char what[4200], err[4600];
	EVP_PKEY *key = tls_cert_key(&b->conf->certs[i], c, err, sizeof(err));
	int ok;

	if (key == NULL) {
		tls_report(b, (long)i, TLS_KEY_KEY, err);
		return -1;
	}
	ok = SSL_CTX_use_cert_and_key(ctx, c->leaf, key, c->chain, 0) == 1;
	EVP_PKEY_free(key);
	if (!ok) {
		snprintf(what, sizeof(what), "cannot use certificate %s", b->conf->certs[i].cert);
		tls_fail(err, sizeof(err), what);
		tls_report(b, (long)i, TLS_KEY_CERT, err);
		return -1;
	}
	return 0;
}

/* The group's certificates, then their OCSP responses (the ctx takes
 * those over). */
static int
tls_group_certs(struct tls_build *b, size_t g, SSL_CTX *ctx)
{
	struct tls_ocsp *ocsp[8] = { NULL };
	size_t n = 0;

	for (size_t i = 0; i < b->conf->n_certs; i++) {
		if (b->group_of[i] == g && tls_group_use_cert(b, i, ctx) < 0)
			return -1;
	}
	/* A group holds one certificate per key type: far fewer than 8. */
	for (size_t i = 0; i < b->conf->n_certs && n < sizeof(ocsp) / sizeof(ocsp[0]); i++) {
		if (b->group_of[i] == g && b->certs[i].ocsp != NULL) {
			ocsp[n++] = b->certs[i].ocsp;
			b->certs[i].ocsp = NULL;
		}
	}
	if (tls_ocsp_attach(ctx, ocsp, n) < 0) {
		tls_report(b, TLS_SECTION, TLS_KEY_NONE, "cannot set up OCSP stapling: out of memory");
		return -1;
	}
	return 0;
}

static int tls_servername_cb(SSL *ssl, int *alert, void *arg);

static SSL_CTX *
tls_group_build(struct tls_build *b, size_t g)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char err[4600];

	if (ctx == NULL) {
		tls_fail(err, sizeof(err), "cannot create a TLS context");
		tls_report(b, TLS_SECTION, TLS_KEY_NONE, err);
		return NULL;
	}
	b->policy_applied = true;
	if (tls_policy_apply(ctx, &b->pol, tls_build_report, b) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
	if (tls_group_certs(b, g, ctx) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Takes the running snapshot's SSL_CTX when the key matches, else builds. */
static int
tls_group_make(struct tls_build *b, struct tls_ctx *t, size_t g)
{
	struct tls_group *grp = &t->groups[g];

	if (tls_group_key(b, g, grp->key) < 0) {
		tls_report(b, TLS_SECTION, TLS_KEY_NONE, "cannot digest the certificates: out of memory");
		return -1;
	}
	grp->ctx = tls_registry_get(grp->key);
	if (grp->ctx != NULL) {
		grp->registered = 1;
		t->reused++;
		return 0;
	}
	grp->ctx = tls_group_build(b, g);
	if (grp->ctx == NULL)
		return -1;
	grp->registered = tls_registry_put(grp->key, grp->ctx) == 1;
	t->built++;
	return 0;
}

/* ---- names --------------------------------------------------------------------- */

static int
tls_name_cmp(const void *a, const void *b)
{
	const struct tls_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->group < y->group ? -1 : x->group > y->group;
}

/* Sorted, and a name served by several groups goes to the first listed. */
static void
tls_names_finish(struct tls_name *v, size_t *n)
{
	size_t out = 0;

	if (*n > 1)
		qsort(v, *n, sizeof(*v), tls_name_cmp);
	for (size_t i = 0; i < *n; i++) {
		if (out > 0 && strcmp(v[out - 1].name, v[i].name) == 0)
			free(v[i].name);
		else
			v[out++] = v[i];
	}
	*n = out;
}

static int
tls_names_build(struct tls_ctx *t, const struct tls_build *b, const size_t *first)
{
	size_t total = 0;

	for (size_t g = 0; g < t->n_groups; g++)
		total += b->certs[first[g]].n_names;
	t->exact = calloc(total + 1, sizeof(*t->exact));
	t->wild = calloc(total + 1, sizeof(*t->wild));
	if (t->exact == NULL || t->wild == NULL)
		return -1;
	for (size_t g = 0; g < t->n_groups; g++) {
		const struct tls_cert *c = &b->certs[first[g]];

		for (size_t i = 0; i < c->n_names; i++) {
			bool wild = c->names[i][0] == '*';
			struct tls_name *slot = wild ? &t->wild[t->n_wild] : &t->exact[t->n_exact];

			slot->name = strdup(c->names[i] + (wild ? 2 : 0));
			slot->group = g;
			if (slot->name == NULL)
				return -1;
			if (wild)
				t->n_wild++;
			else
				t->n_exact++;
		}
	}
	tls_names_finish(t->exact, &t->n_exact);
	tls_names_finish(t->wild, &t->n_wild);
	return 0;
}

static const struct tls_name *
tls_names_find(const struct tls_name *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, v[mid].name);

		if (c == 0)
			return &v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Exact first; then "*.example.com" for "a.example.com" (one label: not
 * for "example.com" nor "a.b.example.com"). Case-insensitive. */
static const struct tls_group *
tls_lookup(const struct tls_ctx *t, const char *sni)
{
	char name[256];
	const struct tls_name *hit;
	const char *dot;

	if (tls_cert_normalize_name(sni, strlen(sni), name, sizeof(name)) < 0 || name[0] == '*')
		return NULL;
	hit = tls_names_find(t->exact, t->n_exact, name);
	if (hit != NULL)
		return &t->groups[hit->group];
	dot = strchr(name, '.');
	if (dot == NULL || dot == name || dot[1] == '\0')
		return NULL;
	hit = tls_names_find(t->wild, t->n_wild, dot + 1);
	return hit != NULL ? &t->groups[hit->group] : NULL;
}

/* Runs for every ClientHello, with or without a server name. The SSL's
 * tls_ctx (not the SSL_CTX's) holds the names: an SSL_CTX may be shared by
 * snapshots with different name tables. */
static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_ctx *t = SSL_get_ex_data(ssl, tls_ssl_index);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct tls_group *g;

	(void)arg;
	if (t == NULL)
		return SSL_TLSEXT_ERR_OK;
	g = sni != NULL ? tls_lookup(t, sni) : NULL;
	if (g == NULL) {
		if (!t->sni_required)
			return SSL_TLSEXT_ERR_OK;
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (g->ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, g->ctx) != g->ctx) {
		ERR_clear_error();
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* ---- the tls_ctx ------------------------------------------------------------------ */

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	for (size_t g = 0; g < t->n_groups; g++) {
		if (t->groups[g].registered)
			tls_registry_release(t->groups[g].key, t->groups[g].ctx);
		SSL_CTX_free(t->groups[g].ctx);
	}
	free(t->groups);
	for (size_t i = 0; t->exact != NULL && i < t->n_exact; i++)
		free(t->exact[i].name);
	for (size_t i = 0; t->wild != NULL && i < t->n_wild; i++)
		free(t->wild[i].name);
	free(t->exact);
	free(t->wild);
	free(t);
}

static struct tls_ctx *
tls_build_ctx(struct tls_build *b)
{
	size_t *first = calloc(b->conf->n_certs, sizeof(*first));
	struct tls_ctx *t = calloc(1, sizeof(*t));
	size_t n;

	if (first == NULL || t == NULL ||
	    (t->groups = calloc(b->conf->n_certs, sizeof(*t->groups))) == NULL) {
		tls_report(b, TLS_SECTION, TLS_KEY_NONE, "out of memory");
		goto fail;
	}
	t->sni_required = b->conf->sni_required;
	n = tls_build_groups(b, first);
	if (b->failed)
		goto fail;
	/* A group that failed keeps a NULL ctx, which tls_ctx_free skips. */
	for (size_t g = 0; g < n && !b->section_failed; g++) {
		t->n_groups = g + 1;
		tls_group_make(b, t, g);
	}
	if (!b->failed && tls_names_build(t, b, first) < 0)
		tls_report(b, TLS_SECTION, TLS_KEY_NONE, "out of memory");
	if (b->failed)
		goto fail;
	free(first);
	__atomic_add_fetch(&tls_builds, t->built, __ATOMIC_RELAXED);
	__atomic_add_fetch(&tls_reuses, t->reused, __ATOMIC_RELAXED);
	return t;
fail:
	free(first);
	tls_ctx_free(t);
	return NULL;
}

struct tls_ctx *
tls_ctx_build(const struct tls_settings *conf, tls_report_fn report, void *arg)
{
	struct tls_build b = { .conf = conf, .report = report, .arg = arg, };
	struct tls_ctx *t = NULL;

	if (tls_init() < 0) {
		report(arg, TLS_SECTION, TLS_KEY_NONE, "cannot initialise OpenSSL");
		return NULL;
	}
	if (conf->n_certs == 0) {
		report(arg, TLS_SECTION, TLS_KEY_NONE, "no certificate configured");
		return NULL;
	}
	/* A stale error from elsewhere must not pass for this call's reason. */
	ERR_clear_error();
	b.certs = calloc(conf->n_certs, sizeof(*b.certs));
	b.group_of = calloc(conf->n_certs, sizeof(*b.group_of));
	if (b.certs == NULL || b.group_of == NULL) {
		tls_report(&b, TLS_SECTION, TLS_KEY_NONE, "out of memory");
	} else {
		/* Failures below are in b.failed: their reports set it. */
		tls_build_certs(&b);
		(void)tls_policy_load(&b.pol, conf, tls_build_report, &b);
		if (!b.failed)
			t = tls_build_ctx(&b);
		/* Stopped before OpenSSL saw the cipher lists: check them on
		 * their own, so that one run reports their problems too. */
		if (b.failed && !b.policy_applied)
			(void)tls_policy_check(&b.pol, tls_build_report, &b);
	}
	for (size_t i = 0; b.certs != NULL && i < conf->n_certs; i++)
		tls_cert_clear(&b.certs[i]);
	free(b.certs);
	free(b.group_of);
	tls_policy_clear(&b.pol);
	ERR_clear_error();
	return t;
}

SSL *
tls_ctx_new_ssl(struct tls_ctx *t)
{
	SSL *ssl = SSL_new(t->groups[0].ctx);

	if (ssl == NULL) {
		log_openssl(LOG_ERROR, "cannot create a TLS session for a client");
		return NULL;
	}
	if (SSL_set_ex_data(ssl, tls_ssl_index, t) != 1) {
		log_openssl(LOG_ERROR, "cannot create a TLS session for a client");
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* OpenSSL drops a session from the server cache when its SSL is freed
 * before close_notify was sent (ssl_clear_bad_session): a client that
 * closes first, or just disconnects, could then never resume by session
 * id. As nginx does, a finished handshake's session is kept. */
void
tls_session_done(SSL *ssl)
{
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
}

void
tls_ctx_counts(const struct tls_ctx *t, unsigned *built, unsigned *reused)
{
	*built = t->built;
	*reused = t->reused;
}

unsigned long
tls_ctx_builds(void)
{
	return __atomic_load_n(&tls_builds, __ATOMIC_RELAXED);
}

unsigned long
tls_ctx_reuses(void)
{
	return __atomic_load_n(&tls_reuses, __ATOMIC_RELAXED);
}

/* ---- client certificate failures -------------------------------------------------- */

enum tls_cert_failure
tls_cert_failure_of(const SSL *ssl, unsigned long err)
{
	if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		return TLS_CERT_NO_CERTIFICATE;
	/* The server verifies nothing but client certificates. */
	switch (ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK) {
	case X509_V_OK:
		return TLS_CERT_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLS_CERT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_CERT_NOT_YET_VALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		return TLS_CERT_UNKNOWN_CA;
	case X509_V_ERR_CERT_REVOKED:
		return TLS_CERT_REVOKED;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
		return TLS_CERT_BAD_SIGNATURE;
	default:
		return TLS_CERT_OTHER;
	}
}

const char *
tls_cert_failure_name(enum tls_cert_failure why)
{
	static const char *const names[TLS_CERT_FAILURE_COUNT] = {
		[TLS_CERT_NO_CERTIFICATE] = "no_certificate",
		[TLS_CERT_EXPIRED] = "expired",
		[TLS_CERT_NOT_YET_VALID] = "not_yet_valid",
		[TLS_CERT_UNKNOWN_CA] = "unknown_ca",
		[TLS_CERT_REVOKED] = "revoked",
		[TLS_CERT_BAD_SIGNATURE] = "bad_signature",
		[TLS_CERT_OTHER] = "other",
	};

	return (unsigned)why < TLS_CERT_FAILURE_COUNT ? names[why] : "none";
}
