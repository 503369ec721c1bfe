/*
 * tls_ocsp — loads, checks and staples OCSP responses. The response bytes
 * are kept as read; a handshake whose client sent status_request gets a
 * copy (OpenSSL frees what it is given) for the certificate OpenSSL chose,
 * unless nextUpdate has passed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sluice/log.h>
#include <sluice/tls_ocsp.h>

/* A responder's clock may run a little ahead of ours. */
#define TLS_OCSP_SKEW_S 300

struct tls_ocsp {
	X509 *leaf;                 /* one reference: the certificate it vouches for */
	unsigned char *der;         /* the file's bytes */
	size_t len;
	time_t next_update;
	int warned;                 /* atomic: the expiry was logged */
	char *path;                 /* for messages */
};

/* Owned by an SSL_CTX (ex_data); freed with it. */
struct tls_ocsp_set {
	size_t n;
	struct tls_ocsp **items;
};

static int tls_ocsp_index = -1;

void
tls_ocsp_free(struct tls_ocsp *o)
{
	if (o == NULL)
		return;
	X509_free(o->leaf);
	free(o->der);
	free(o->path);
	free(o);
}

static void
tls_ocsp_set_free(struct tls_ocsp_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		tls_ocsp_free(set->items[i]);
	free(set->items);
	free(set);
}

static void
tls_ocsp_free_ex(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	tls_ocsp_set_free(ptr);
}

int
tls_ocsp_init(void)
{
	tls_ocsp_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_ocsp_free_ex);
	return tls_ocsp_index < 0 ? -1 : 0;
}

/* ---- checking a response ------------------------------------------------- */

static int
tls_ocsp_time(const ASN1_GENERALIZEDTIME *t, time_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	*out = timegm(&tm);
	return 0;
}

/* The issuer is needed for the CertID: the leaf itself when self-signed,
 * else a certificate of its chain file. */
static X509 *
tls_ocsp_issuer(X509 *leaf, STACK_OF(X509) *chain)
{
	if (X509_check_issued(leaf, leaf) == X509_V_OK)
		return leaf;
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);

		if (X509_check_issued(c, leaf) == X509_V_OK)
			return c;
	}
	return NULL;
}

/* Whether the single response's CertID names leaf, hashed the way the
 * responder hashed it. */
static bool
tls_ocsp_id_matches(OCSP_SINGLERESP *single, X509 *leaf, X509 *issuer)
{
	/* OCSP_id_get0_info takes a non-const CertID it does not change. */
	OCSP_CERTID *rid = (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(single);
	ASN1_OBJECT *md_oid = NULL;
	const EVP_MD *md;
	OCSP_CERTID *want;
	bool ok;

	if (rid == NULL || OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, rid) != 1)
		return false;
	md = EVP_get_digestbyobj(md_oid);
	want = md != NULL ? OCSP_cert_to_id(md, leaf, issuer) : NULL;
	ok = want != NULL && OCSP_id_cmp(want, rid) == 0;
	OCSP_CERTID_free(want);
	ERR_clear_error();
	return ok;
}

/* The single response for leaf; its times in *o. NULL with why set. */
static const char *
tls_ocsp_check_single(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer, struct tls_ocsp *o)
{
	ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL, *rev = NULL;
	OCSP_SINGLERESP *single;
	time_t this_t;
	int reason = 0, status;

	if (OCSP_resp_count(bs) != 1)
		return "holds more or fewer than one certificate status: sluice staples one per certificate";
	single = OCSP_resp_get0(bs, 0);
	if (single == NULL || !tls_ocsp_id_matches(single, leaf, issuer))
		return "is not about this certificate (its CertID names another certificate or issuer)";
	status = OCSP_single_get0_status(single, &reason, &rev, &this_upd, &next_upd);
	if (status == V_OCSP_CERTSTATUS_REVOKED)
		return "says the certificate is revoked";
	if (status != V_OCSP_CERTSTATUS_GOOD)
		return "does not say the certificate is good (status unknown)";
	if (tls_ocsp_time(this_upd, &this_t) < 0)
		return "has no valid thisUpdate";
	if (next_upd == NULL)
		return "has no nextUpdate: sluice could not tell when to stop stapling it";
	if (tls_ocsp_time(next_upd, &o->next_update) < 0)
		return "has no valid nextUpdate";
	if (this_t > time(NULL) + TLS_OCSP_SKEW_S)
		return "has a thisUpdate in the future (check the clocks)";
	return NULL;
}

/* The response's outer layers: successful, and a basic response. */
static const char *
tls_ocsp_check(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) *chain,
	       struct tls_ocsp *o)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = NULL;
	X509 *issuer = tls_ocsp_issuer(leaf, chain);
	const char *why = NULL;

	if (resp == NULL || p != der + len)
		why = "is not a DER OCSP response";
	else if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		why = "is not a successful response";
	else if ((bs = OCSP_response_get1_basic(resp)) == NULL)
		why = "is not a basic OCSP response";
	else if (issuer == NULL)
		why = "cannot be checked: the certificate's issuer is not in its chain file "
		      "(put the issuing CA after the certificate)";
	else
		why = tls_ocsp_check_single(bs, leaf, issuer, o);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return why;
}

static void
tls_ocsp_format_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

struct tls_ocsp *
tls_ocsp_load(const char *path, const unsigned char *der, size_t len, X509 *leaf,
	      STACK_OF(X509) *chain, char *err, size_t errlen)
{
	struct tls_ocsp *o = calloc(1, sizeof(*o));
	const char *why;
	char when[32];

	if (o == NULL || (o->der = malloc(len > 0 ? len : 1)) == NULL ||
	    (o->path = strdup(path)) == NULL) {
		tls_ocsp_free(o);
		snprintf(err, errlen, "OCSP response %s: out of memory", path);
		return NULL;
	}
	why = tls_ocsp_check(der, len, leaf, chain, o);
	if (why != NULL || X509_up_ref(leaf) != 1) {
		tls_ocsp_free(o);
		snprintf(err, errlen, "OCSP response %s %s", path, why != NULL ? why : "cannot be kept");
		return NULL;
	}
	o->leaf = leaf;
	memcpy(o->der, der, len);
	o->len = len;
	if (time(NULL) >= o->next_update) {
		o->warned = 1;
		tls_ocsp_format_time(o->next_update, when, sizeof(when));
		log_warn("OCSP response %s expired at %s: it will not be stapled; fetch a fresh "
			 "one and reload", path, when);
	}
	return o;
}

/* ---- stapling --------------------------------------------------------------- */

static struct tls_ocsp *
tls_ocsp_find(const struct tls_ocsp_set *set, X509 *leaf)
{
	for (size_t i = 0; leaf != NULL && i < set->n; i++) {
		if (set->items[i] != NULL &&
		    (set->items[i]->leaf == leaf || X509_cmp(set->items[i]->leaf, leaf) == 0))
			return set->items[i];
	}
	return NULL;
}

/* Called only for clients that sent status_request, after OpenSSL chose
 * the certificate (ECDSA or RSA) it will send. */
static int
tls_ocsp_status_cb(SSL *ssl, void *arg)
{
	const struct tls_ocsp_set *set = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ocsp_index);
	struct tls_ocsp *o;
	unsigned char *copy;
	char when[32];

	(void)arg;
	o = set != NULL ? tls_ocsp_find(set, SSL_get_certificate(ssl)) : NULL;
	if (o == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (time(NULL) >= o->next_update) {
		if (__atomic_exchange_n(&o->warned, 1, __ATOMIC_RELAXED) == 0) {
			tls_ocsp_format_time(o->next_update, when, sizeof(when));
			log_warn("OCSP response %s expired at %s: no longer stapled; fetch a fresh "
				 "one and reload", o->path, when);
		}
		return SSL_TLSEXT_ERR_NOACK;
	}
	copy = OPENSSL_memdup(o->der, o->len);
	if (copy == NULL || SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)o->len) != 1) {
		OPENSSL_free(copy);
		ERR_clear_error();
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

int
tls_ocsp_attach(SSL_CTX *ctx, struct tls_ocsp **ocsp, size_t n)
{
	struct tls_ocsp_set *set = calloc(1, sizeof(*set));
	size_t used = 0;

	for (size_t i = 0; i < n; i++)
		used += ocsp[i] != NULL;
	if (used == 0 || set == NULL || (set->items = calloc(n, sizeof(*set->items))) == NULL) {
		free(set);
		for (size_t i = 0; i < n; i++)
			tls_ocsp_free(ocsp[i]);
		return used == 0 ? 0 : -1;
	}
	for (size_t i = 0; i < n; i++)
		set->items[set->n++] = ocsp[i];
	if (SSL_CTX_set_ex_data(ctx, tls_ocsp_index, set) != 1) {
		tls_ocsp_set_free(set);
		ERR_clear_error();
		return -1;
	}
	if (SSL_CTX_set_tlsext_status_cb(ctx, tls_ocsp_status_cb) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
