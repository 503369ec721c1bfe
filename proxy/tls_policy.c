/*
 * tls_policy — what every SSL_CTX of a listener shares, whichever
 * certificate it serves: protocols, ciphers, session cache and session id
 * context, ALPN, client certificate checks (client_ca, crl, verify depth)
 * and ticket keys. One tls_policy is read per build, and applied by the
 * same code to every group's context, so the SNI callback switching
 * contexts can never change policy. Its digest (every setting, every
 * file's bytes) is half of each context's registry key.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sluice/log.h>
#include <sluice/tls_policy.h>
#include <sluice/tls_settings.h>
#include <sluice/tls_tickets.h>
#include <sluice/tls_util.h>

#define TLS_DEFAULT_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Server-side session cache (resumption by session id, and TLS 1.3 without
 * tickets): entries per SSL_CTX, and how long a session may be resumed,
 * tickets included. */
#define TLS_SESSION_CACHE_SIZE 20480
#define TLS_SESSION_TIMEOUT_S 3600
#define TLS_POLICY_FILE_MAX (16u << 20)   /* a CA bundle or CRL file */

/*
 * Owned by the SSL_CTX (as ex_data), not by struct tls_ctx: sessions hold
 * references on the SSL_CTX, so the protocol list lives exactly as long as
 * a handshake can still ask for it, even after a reload freed the tls_ctx.
 */
struct tls_alpn {
	unsigned char *wire;        /* length-prefixed names, server preference */
	unsigned int len;
	bool required;              /* refuse clients that share no protocol */
};

static int tls_alpn_index = -1;

static void
tls_alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
	      void *argp)
{
	struct tls_alpn *alpn = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (alpn == NULL)
		return;
	free(alpn->wire);
	free(alpn);
}

int
tls_policy_init(void)
{
	tls_alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_alpn_free);
	return tls_alpn_index < 0 ? -1 : 0;
}

/* Where one build's problems go: every one is about the tls: section. */
struct tls_policy_report {
	tls_report_fn fn;
	void *arg;
};

/* Reports msg as a problem with key; -1 for tail calls. */
static int
tls_policy_problem(const struct tls_policy_report *r, enum tls_key key, const char *msg)
{
	r->fn(r->arg, TLS_SECTION, key, msg);
	return -1;
}

/* Reports "<what>: <openssl reason>"; -1 for tail calls. */
static int
tls_policy_fail(const struct tls_policy_report *r, enum tls_key key, const char *what)
{
	char reason[256], msg[4600];

	tls_util_openssl_reason(reason, sizeof(reason));
	snprintf(msg, sizeof(msg), "%s: %s", what, reason);
	return tls_policy_problem(r, key, msg);
}

/* ---- digests --------------------------------------------------------------- */

static int
tls_hash_str(EVP_MD_CTX *md, const char *s)
{
	/* NULL (the default) and "" must differ: "\x01" marks a value. */
	if (s == NULL)
		return tls_util_digest_part(md, "", 0);
	return tls_util_digest_part(md, "\x01", 1) == 0 ? tls_util_digest_part(md, s, strlen(s)) : -1;
}

static int
tls_hash_num(EVP_MD_CTX *md, long long v)
{
	return tls_util_digest_part(md, &v, sizeof(v));
}

static EVP_MD_CTX *
tls_hash_begin(const char *domain)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md != NULL && (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
			   tls_hash_str(md, domain) < 0)) {
		EVP_MD_CTX_free(md);
		md = NULL;
	}
	return md;
}

static int
tls_hash_end(EVP_MD_CTX *md, unsigned char out[TLS_DIGEST], int ok)
{
	unsigned int n = 0;

	ok = ok && md != NULL && EVP_DigestFinal_ex(md, out, &n) == 1 && n == TLS_DIGEST;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* ---- reading the section ---------------------------------------------------------- */

static int
tls_policy_read(const struct tls_policy_report *r, enum tls_key key, const char *what,
		const char *path, unsigned char **data, size_t *len)
{
	char why[256], msg[4600];

	if (tls_util_file_read(path, TLS_POLICY_FILE_MAX, data, len, why, sizeof(why)) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "cannot load %s %s: %s", what, path, why);
	return tls_policy_problem(r, key, msg);
}

/* PEM objects of one kind from memory; an empty result is an error. */
static STACK_OF(X509_INFO) *
tls_pem_infos(const unsigned char *data, size_t len)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	STACK_OF(X509_INFO) *infos = bio != NULL ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return infos;
}

/* mTLS: the CA file both verifies client chains and is advertised to
 * clients as the list of acceptable issuers. */
static int
tls_policy_ca(struct tls_policy *pol, const unsigned char *data, size_t len,
	      const struct tls_policy_report *r)
{
	const char *path = pol->conf->client_ca;
	STACK_OF(X509_INFO) *infos = tls_pem_infos(data, len);
	char what[4200], msg[4600];
	int n = 0;

	snprintf(what, sizeof(what), "cannot load client CA file %s", path);
	pol->store = X509_STORE_new();
	pol->ca_names = sk_X509_NAME_new_null();
	if (infos == NULL || pol->store == NULL || pol->ca_names == NULL) {
		sk_X509_INFO_pop_free(infos, X509_INFO_free);
		return tls_policy_fail(r, TLS_KEY_CLIENT_CA, what);
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509 *x = sk_X509_INFO_value(infos, i)->x509;
		X509_NAME *name = x != NULL ? X509_NAME_dup(X509_get_subject_name(x)) : NULL;

		if (x == NULL)
			continue;
		if (name == NULL || X509_STORE_add_cert(pol->store, x) != 1 ||
		    sk_X509_NAME_push(pol->ca_names, name) <= 0) {
			X509_NAME_free(name);
			sk_X509_INFO_pop_free(infos, X509_INFO_free);
			return tls_policy_fail(r, TLS_KEY_CLIENT_CA, what);
		}
		n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	if (n == 0) {
		snprintf(msg, sizeof(msg), "%s: no certificate in it (PEM expected)", what);
		return tls_policy_problem(r, TLS_KEY_CLIENT_CA, msg);
	}
	return 0;
}

static void
tls_crl_check_dates(const char *path, X509_CRL *crl)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

	if (next != NULL && X509_cmp_time(next, NULL) < 0)
		log_warn("crl %s has expired (its nextUpdate has passed): client certificates "
			 "it covers are refused until a fresh one is loaded", path);
	ERR_clear_error();
}

/* Revocation: every certificate of a client's chain is checked against
 * the CRLs of its issuer (CRL_CHECK_ALL), so the file needs one from each
 * CA of client_ca. Without a store (client_ca failed) the file is still
 * read and checked, so that its own problems are reported too. */
static int
tls_policy_crl(struct tls_policy *pol, const unsigned char *data, size_t len,
	       const struct tls_policy_report *r)
{
	const char *path = pol->conf->crl;
	STACK_OF(X509_INFO) *infos = tls_pem_infos(data, len);
	char what[4200], msg[4600];
	int n = 0;

	snprintf(what, sizeof(what), "cannot load CRL file %s", path);
	if (infos == NULL)
		return tls_policy_fail(r, TLS_KEY_CRL, what);
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;

		if (crl == NULL)
			continue;
		if (pol->store != NULL && X509_STORE_add_crl(pol->store, crl) != 1) {
			sk_X509_INFO_pop_free(infos, X509_INFO_free);
			return tls_policy_fail(r, TLS_KEY_CRL, what);
		}
		tls_crl_check_dates(path, crl);
		n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	if (n == 0) {
		snprintf(msg, sizeof(msg), "%s: no CRL in it (PEM \"X509 CRL\" blocks expected)", what);
		return tls_policy_problem(r, TLS_KEY_CRL, msg);
	}
	if (pol->store != NULL &&
	    X509_STORE_set_flags(pol->store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) != 1)
		return tls_policy_fail(r, TLS_KEY_CRL, what);
	return 0;
}

/* The registry key's half that every group shares: settings and the
 * section's files. Ticket keys count here but not in sid_ctx, or an
 * operator's key rotation would end every resumption. */
static int
tls_policy_digest(struct tls_policy *pol, const unsigned char *files[3], const size_t lens[3])
{
	const struct tls_settings *c = pol->conf;
	EVP_MD_CTX *md = tls_hash_begin("sluice sid_ctx");
	int ok = md != NULL;

	/* Who may resume: sessions made under another client policy never do. */
	ok = ok && tls_hash_num(md, c->client_verify) == 0 && tls_hash_num(md, c->verify_depth) == 0 &&
	     tls_util_digest_part(md, files[0], lens[0]) == 0 && tls_util_digest_part(md, files[1], lens[1]) == 0;
	if (tls_hash_end(md, pol->sid_ctx, ok) < 0)
		return -1;
	md = tls_hash_begin("sluice SSL_CTX");
	ok = md != NULL && tls_util_digest_part(md, pol->sid_ctx, TLS_DIGEST) == 0 &&
	     tls_hash_num(md, c->min_version) == 0 && tls_hash_str(md, c->ciphers) == 0 &&
	     tls_hash_str(md, c->ciphersuites) == 0 && tls_hash_num(md, (long long)c->n_alpn) == 0 &&
	     tls_hash_num(md, c->alpn_required) == 0 && tls_hash_num(md, c->session_tickets) == 0 &&
	     tls_hash_str(md, c->ticket_keys != NULL ? "file" : NULL) == 0 &&
	     tls_util_digest_part(md, files[2], lens[2]) == 0;
	for (size_t i = 0; ok && i < c->n_alpn; i++)
		ok = tls_hash_str(md, c->alpn[i]) == 0;
	return tls_hash_end(md, pol->digest, ok);
}

static int
tls_policy_tickets(struct tls_policy *pol, const unsigned char *data, size_t len,
		   const struct tls_policy_report *r)
{
	char msg[4600];

	pol->tickets = tls_ticket_keys_parse(pol->conf->ticket_keys, data, len, msg, sizeof(msg));
	return pol->tickets != NULL ? 0 : tls_policy_problem(r, TLS_KEY_TICKET_KEYS, msg);
}

/* Reads client_ca, crl and ticket_keys once for every group; each file on
 * its own, so that each one's problems are reported. */
int
tls_policy_load(struct tls_policy *pol, const struct tls_settings *conf, tls_report_fn report,
		void *arg)
{
	const struct tls_policy_report r = { report, arg };
	const struct tls_settings *c = conf;
	unsigned char *data[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };
	int rc = 0;

	memset(pol, 0, sizeof(*pol));
	pol->conf = conf;
	if (c->client_ca != NULL &&
	    (tls_policy_read(&r, TLS_KEY_CLIENT_CA, "client CA file", c->client_ca, &data[0], &len[0]) < 0 ||
	     tls_policy_ca(pol, data[0], len[0], &r) < 0))
		rc = -1;
	if (c->crl != NULL && c->client_ca != NULL &&
	    (tls_policy_read(&r, TLS_KEY_CRL, "CRL file", c->crl, &data[1], &len[1]) < 0 ||
	     tls_policy_crl(pol, data[1], len[1], &r) < 0))
		rc = -1;
	if (c->ticket_keys != NULL && c->session_tickets &&
	    (tls_policy_read(&r, TLS_KEY_TICKET_KEYS, "ticket key file", c->ticket_keys, &data[2],
			     &len[2]) < 0 ||
	     tls_policy_tickets(pol, data[2], len[2], &r) < 0))
		rc = -1;
	if (rc == 0 && tls_policy_digest(pol, (const unsigned char **)data, len) < 0)
		rc = tls_policy_problem(&r, TLS_KEY_NONE, "cannot digest the tls: settings");
	if (data[2] != NULL)
		OPENSSL_cleanse(data[2], len[2]);
	for (int i = 0; i < 3; i++)
		free(data[i]);
	return rc;
}

void
tls_policy_clear(struct tls_policy *pol)
{
	X509_STORE_free(pol->store);
	sk_X509_NAME_pop_free(pol->ca_names, X509_NAME_free);
	tls_ticket_keys_unref(pol->tickets);
	memset(pol, 0, sizeof(*pol));
}

int
tls_policy_group_key(const struct tls_policy *pol, const unsigned char *const *certs, size_t n,
		     unsigned char out[TLS_DIGEST])
{
	EVP_MD_CTX *md = tls_hash_begin("sluice group");
	int ok = md != NULL && tls_util_digest_part(md, pol->digest, TLS_DIGEST) == 0;

	for (size_t i = 0; ok && i < n; i++)
		ok = tls_util_digest_part(md, certs[i], TLS_DIGEST) == 0;
	return tls_hash_end(md, out, ok);
}

/* ---- applying it to an SSL_CTX ------------------------------------------------------ */

/* Both cipher lists are tried whatever became of the other: each is its
 * own problem. */
static int
tls_set_protocols(SSL_CTX *ctx, const struct tls_settings *conf, const struct tls_policy_report *r)
{
	const char *ciphers = conf->ciphers != NULL ? conf->ciphers : TLS_DEFAULT_CIPHERS;
	char what[1200];
	int min = conf->min_version != 0 ? conf->min_version : TLS1_2_VERSION;
	int rc = 0;

	if (SSL_CTX_set_min_proto_version(ctx, min) != 1)
		rc = tls_policy_fail(r, TLS_KEY_NONE, "cannot set the minimum TLS version");
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		snprintf(what, sizeof(what), "invalid cipher list \"%.1000s\"", ciphers);
		rc = tls_policy_fail(r, TLS_KEY_CIPHERS, what);
	}
	if (conf->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, conf->ciphersuites) != 1) {
		snprintf(what, sizeof(what), "invalid cipher suite list \"%.1000s\"",
			 conf->ciphersuites);
		rc = tls_policy_fail(r, TLS_KEY_CIPHERSUITES, what);
	}
	if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
		rc = tls_policy_fail(r, TLS_KEY_NONE, "cannot set key exchange groups");
	return rc;
}

/* Renegotiation and compression only ever added attacks (CRIME, renegotiation
 * DoS); the server's cipher order is the one we chose on purpose. Idle
 * connections give their read/write buffers back (about 34 KiB each). The
 * session id context is the client policy's digest: a session made under
 * another policy (another client_ca, an older crl) never resumes; listeners
 * with the same policy accept the same clients, so they may share. */
static int
tls_set_options(SSL_CTX *ctx, const struct tls_policy *pol, const struct tls_policy_report *r)
{
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			SSL_OP_CIPHER_SERVER_PREFERENCE;

	if (!pol->conf->session_tickets)
		opts |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(ctx, opts);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* One read(2) for every record the socket holds instead of two per
	 * record (header, then body); session.c reads what is left over. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT_S);
	if (SSL_CTX_set_session_id_context(ctx, pol->sid_ctx, sizeof(pol->sid_ctx)) != 1)
		return tls_policy_fail(r, TLS_KEY_NONE, "cannot set the session id context");
	return 0;
}

static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct tls_alpn *alpn = arg;
	unsigned char *selected = NULL;

	(void)ssl;
	if (SSL_select_next_proto(&selected, outlen, alpn->wire, alpn->len, in,
				  inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = selected;
		return SSL_TLSEXT_ERR_OK;
	}
	return alpn->required ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

/* The ALPN callback only runs when the client offers ALPN at all; a client
 * that offers nothing must be refused here when a protocol is required. */
static int
tls_alpn_hello(SSL *ssl, int *alert, void *arg)
{
	const struct tls_alpn *alpn = arg;
	const unsigned char *ext;
	size_t ext_len;

	if (!alpn->required ||
	    SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
				      &ext, &ext_len) == 1)
		return SSL_CLIENT_HELLO_SUCCESS;
	*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

static struct tls_alpn *
tls_alpn_build(const struct tls_settings *conf)
{
	struct tls_alpn *alpn = calloc(1, sizeof(*alpn));
	size_t total = 0, off = 0;

	if (alpn == NULL)
		return NULL;
	for (size_t i = 0; i < conf->n_alpn; i++)
		total += 1 + strlen(conf->alpn[i]);
	alpn->wire = malloc(total);
	if (alpn->wire == NULL || total > 0xffff) {
		free(alpn->wire);
		free(alpn);
		return NULL;
	}
	for (size_t i = 0; i < conf->n_alpn; i++) {
		size_t n = strlen(conf->alpn[i]);

		alpn->wire[off++] = (unsigned char)n;
		memcpy(alpn->wire + off, conf->alpn[i], n);
		off += n;
	}
	alpn->len = (unsigned int)total;
	alpn->required = conf->alpn_required;
	return alpn;
}

static int
tls_set_alpn(SSL_CTX *ctx, const struct tls_settings *conf, const struct tls_policy_report *r)
{
	struct tls_alpn *alpn;

	if (conf->n_alpn == 0)
		return 0;
	for (size_t i = 0; i < conf->n_alpn; i++) {
		size_t n = conf->alpn[i] != NULL ? strlen(conf->alpn[i]) : 0;

		if (n == 0 || n > 255)
			return tls_policy_problem(r, TLS_KEY_ALPN,
						  "ALPN protocol names must be 1 to 255 bytes long");
	}
	alpn = tls_alpn_build(conf);
	if (alpn == NULL)
		return tls_policy_problem(r, TLS_KEY_ALPN, "out of memory for the ALPN list");
	if (SSL_CTX_set_ex_data(ctx, tls_alpn_index, alpn) != 1) {
		tls_alpn_free(NULL, alpn, NULL, 0, 0, NULL);
		return tls_policy_fail(r, TLS_KEY_ALPN, "cannot attach the ALPN list");
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, alpn);
	SSL_CTX_set_client_hello_cb(ctx, tls_alpn_hello, alpn);
	return 0;
}

/* Every group shares the section's store (reference counted), so a big
 * CA bundle or CRL is held once however many names there are. */
static int
tls_set_client_ca(SSL_CTX *ctx, const struct tls_policy *pol, const struct tls_policy_report *r)
{
	const struct tls_settings *conf = pol->conf;
	STACK_OF(X509_NAME) *names;
	int mode = SSL_VERIFY_PEER;

	if (pol->store == NULL)
		return 0;
	names = SSL_dup_CA_list(pol->ca_names);
	if (names == NULL)
		return tls_policy_fail(r, TLS_KEY_CLIENT_CA, "cannot set up client certificate checks");
	SSL_CTX_set1_cert_store(ctx, pol->store);
	SSL_CTX_set_client_CA_list(ctx, names);
	if (conf->crl != NULL &&
	    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK |
					X509_V_FLAG_CRL_CHECK_ALL) != 1)
		return tls_policy_fail(r, TLS_KEY_CRL, "cannot enable CRL checks");
	if (conf->client_verify != TLS_VERIFY_OPTIONAL)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	SSL_CTX_set_verify_depth(ctx, (int)conf->verify_depth);
	return 0;
}

/* Everything but the certificates: the same for every group of a section.
 * Every setting is tried, so that each refused one is reported. */
int
tls_policy_apply(SSL_CTX *ctx, const struct tls_policy *pol, tls_report_fn report, void *arg)
{
	const struct tls_policy_report r = { report, arg };
	int rc = 0;

	if (tls_set_options(ctx, pol, &r) < 0)
		rc = -1;
	if (tls_set_protocols(ctx, pol->conf, &r) < 0)
		rc = -1;
	if (tls_set_alpn(ctx, pol->conf, &r) < 0)
		rc = -1;
	if (tls_set_client_ca(ctx, pol, &r) < 0)
		rc = -1;
	if (pol->conf->session_tickets && tls_tickets_attach(ctx, pol->tickets) < 0)
		rc = tls_policy_problem(&r, TLS_KEY_NONE, "cannot set up session tickets");
	return rc;
}

/* A context of its own, for the cipher lists only: building one costs,
 * and the defaults need no check. */
int
tls_policy_check(const struct tls_policy *pol, tls_report_fn report, void *arg)
{
	const struct tls_policy_report r = { report, arg };
	SSL_CTX *ctx;
	int rc;

	if (pol->conf == NULL || (pol->conf->ciphers == NULL && pol->conf->ciphersuites == NULL))
		return 0;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return tls_policy_fail(&r, TLS_KEY_NONE, "cannot create a TLS context");
	rc = tls_set_protocols(ctx, pol->conf, &r);
	SSL_CTX_free(ctx);
	return rc;
}
