/*
 * tls_cert — reads one certificates[] entry: cert chain (PEM, leaf first),
 * key (PEM, unencrypted), optional OCSP response (DER); checks the key
 * against the leaf; collects the names SNI matches; digests the bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sluice/tls_cert.h>
#include <sluice/tls_ocsp.h>
#include <sluice/tls_settings.h>
#include <sluice/tls_util.h>

#define TLS_CERT_FILE_MAX (4u << 20)    /* a chain file; far more than any real one */
#define TLS_CERT_CHAIN_MAX 32           /* certificates after the leaf */
#define TLS_CERT_NAMES_MAX 4096         /* names of one certificate */
#define TLS_NAME_MAX 253                /* a DNS name, without the final dot */

/* The contents of one entry's files, as read. */
struct tls_cert_bytes {
	unsigned char *cert, *key, *ocsp;
	size_t cert_len, key_len, ocsp_len;
};

static void
tls_cert_bytes_free(struct tls_cert_bytes *f)
{
	free(f->cert);
	if (f->key != NULL)
		OPENSSL_cleanse(f->key, f->key_len);
	free(f->key);
	free(f->ocsp);
}

void
tls_cert_clear(struct tls_cert *c)
{
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	if (c->key_pem != NULL)
		OPENSSL_cleanse(c->key_pem, c->key_len);
	free(c->key_pem);
	tls_ocsp_free(c->ocsp);
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

/* Encrypted keys are not supported: without this OpenSSL would prompt for a
 * passphrase on the terminal, which hangs a daemon and a reload. */
static int
tls_cert_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf, (void)size, (void)rwflag, (void)userdata;
	return -1;
}

/* Where the problems of one certificates[] entry go. */
struct tls_cert_report {
	const struct tls_cert_files *conf;
	long index;
	tls_report_fn fn;
	void *arg;
};

/* Reports err as a problem with key; -1 for tail calls. */
static int
tls_cert_problem(const struct tls_cert_report *r, enum tls_key key, const char *err)
{
	r->fn(r->arg, r->index, key, err);
	return -1;
}

/* "<what> <path>: <reason>" for a file that could not be read or parsed;
 * the reason is OpenSSL's oldest error when why is NULL. */
static int
tls_cert_why(char *err, size_t errlen, const char *what, const char *path, const char *why)
{
	char reason[256];

	if (why == NULL) {
		tls_util_openssl_reason(reason, sizeof(reason));
		why = reason;
	}
	snprintf(err, errlen, "%s %s: %s", what, path, why);
	return -1;
}

/* Reports a problem with the file that key names; -1 for tail calls. */
static int
tls_cert_fail(const struct tls_cert_report *r, enum tls_key key, const char *what,
	      const char *path, const char *why)
{
	char err[4600];

	tls_cert_why(err, sizeof(err), what, path, why);
	return tls_cert_problem(r, key, err);
}

/* Every file is read, whichever others could not be: each is its own
 * problem. A file that could not be read stays NULL in f. */
static int
tls_cert_read(const struct tls_cert_report *r, struct tls_cert_bytes *f)
{
	const struct tls_cert_files *conf = r->conf;
	char why[256];
	int rc = 0;

	if (tls_util_file_read(conf->cert, TLS_CERT_FILE_MAX, &f->cert, &f->cert_len, why, sizeof(why)) < 0)
		rc = tls_cert_fail(r, TLS_KEY_CERT, "cannot load certificate chain from", conf->cert, why);
	if (tls_util_file_read(conf->key, TLS_CERT_FILE_MAX, &f->key, &f->key_len, why, sizeof(why)) < 0)
		rc = tls_cert_fail(r, TLS_KEY_KEY, "cannot load private key from", conf->key, why);
	if (conf->ocsp != NULL &&
	    tls_util_file_read(conf->ocsp, TLS_CERT_FILE_MAX, &f->ocsp, &f->ocsp_len, why, sizeof(why)) < 0)
		rc = tls_cert_fail(r, TLS_KEY_OCSP, "cannot read OCSP response", conf->ocsp, why);
	return rc;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Leaf first, then as many chain certificates as follow; the end of the
 * file shows as "no start line", which is no error after the leaf. */
static int
tls_cert_parse_chain(struct tls_cert *c, const struct tls_cert_bytes *f)
{
	BIO *bio = BIO_new_mem_buf(f->cert, (int)f->cert_len);
	unsigned long e;
	X509 *x;

	if (bio == NULL)
		return -1;
	c->leaf = PEM_read_bio_X509_AUX(bio, NULL, tls_cert_no_passphrase, NULL);
	c->chain = sk_X509_new_null();
	if (c->leaf == NULL || c->chain == NULL) {
		BIO_free(bio);
		return -1;
	}
	for (int i = 0; i <= TLS_CERT_CHAIN_MAX; i++) {
		x = PEM_read_bio_X509(bio, NULL, tls_cert_no_passphrase, NULL);
		if (x == NULL)
			break;
		if (i == TLS_CERT_CHAIN_MAX || sk_X509_push(c->chain, x) <= 0) {
			X509_free(x);
			BIO_free(bio);
			return -1;
		}
	}
	BIO_free(bio);
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		return 0;
	}
	return -1;
}

static EVP_PKEY *
tls_cert_parse_key(const unsigned char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key;

	if (bio == NULL)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, tls_cert_no_passphrase, NULL);
	BIO_free(bio);
	return key;
}

EVP_PKEY *
tls_cert_key(const struct tls_cert_files *conf, const struct tls_cert *c, char *err, size_t errlen)
{
	EVP_PKEY *key = tls_cert_parse_key(c->key_pem, c->key_len);

	if (key == NULL)
		tls_cert_why(err, errlen, "cannot load private key from", conf->key, NULL);
	return key;
}

/* ---- names ------------------------------------------------------------------ */

int
tls_cert_normalize_name(const char *in, size_t len, char *out, size_t outlen)
{
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_NAME_MAX || len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '*' && !(i == 0 && len > 2 && in[1] == '.'))
			return -1;
		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '*' && ch != '_')
			return -1;
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	return 0;
}

static int
tls_cert_add_name(struct tls_cert *c, const unsigned char *s, int len)
{
	char name[TLS_NAME_MAX + 2];
	char **names;

	/* A name OpenSSL would not match either (a NUL inside, an IP
	 * address-like oddity with spaces) is skipped, not an error. */
	if (len <= 0 || memchr(s, '\0', (size_t)len) != NULL ||
	    tls_cert_normalize_name((const char *)s, (size_t)len, name, sizeof(name)) < 0)
		return 0;
	if (c->n_names == TLS_CERT_NAMES_MAX)
		return -1;
	names = realloc(c->names, (c->n_names + 1) * sizeof(*names));
	if (names == NULL)
		return -1;
	c->names = names;
	c->names[c->n_names] = strdup(name);
	if (c->names[c->n_names] == NULL)
		return -1;
	c->n_names++;
	return 0;
}

static int
tls_cert_san_names(struct tls_cert *c)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			rc = tls_cert_add_name(c, ASN1_STRING_get0_data(g->d.dNSName),
					       ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return rc;
}

/* Only without a DNS subjectAltName, as RFC 6125 (and OpenSSL's own host
 * check) would do. */
static int
tls_cert_cn_names(struct tls_cert *c)
{
	X509_NAME *subject = X509_get_subject_name(c->leaf);
	int pos = -1, rc = 0;

	for (int n = 0; n < 16 && rc == 0; n++) {
		unsigned char *utf8 = NULL;
		int len;

		pos = X509_NAME_get_index_by_NID(subject, NID_commonName, pos);
		if (pos < 0)
			break;
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, pos)));
		if (len >= 0)
			rc = tls_cert_add_name(c, utf8, len);
		OPENSSL_free(utf8);
	}
	ERR_clear_error();
	return rc;
}

static int
tls_cert_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
tls_cert_names(struct tls_cert *c)
{
	size_t out = 0;

	if (tls_cert_san_names(c) < 0 || (c->n_names == 0 && tls_cert_cn_names(c) < 0))
		return -1;
	if (c->n_names > 1)
		qsort(c->names, c->n_names, sizeof(*c->names), tls_cert_name_cmp);
	for (size_t i = 0; i < c->n_names; i++) {
		if (out > 0 && strcmp(c->names[out - 1], c->names[i]) == 0)
			free(c->names[i]);
		else
			c->names[out++] = c->names[i];
	}
	c->n_names = out;
	return 0;
}

bool
tls_cert_same_names(const struct tls_cert *a, const struct tls_cert *b)
{
	if (a->n_names != b->n_names)
		return false;
	for (size_t i = 0; i < a->n_names; i++) {
		if (strcmp(a->names[i], b->names[i]) != 0)
			return false;
	}
	return true;
}

int
tls_cert_key_type(const struct tls_cert *c, const char **name)
{
	int id = EVP_PKEY_get_base_id(X509_get0_pubkey(c->leaf));

	/* RSA-PSS keys share the RSA slot's signature algorithms family but
	 * have their own slot; name them apart. */
	*name = id == EVP_PKEY_EC ? "ECDSA" : id == EVP_PKEY_RSA ? "RSA" :
		id == EVP_PKEY_RSA_PSS ? "RSA-PSS" : id == EVP_PKEY_ED25519 ? "Ed25519" :
		id == EVP_PKEY_ED448 ? "Ed448" : "other";
	return id;
}

/* ---- the whole entry ----------------------------------------------------------- */

static int
tls_cert_digest(struct tls_cert *c, const struct tls_cert_bytes *f)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     tls_util_digest_part(md, f->cert, f->cert_len) == 0 &&
	     tls_util_digest_part(md, f->key, f->key_len) == 0 &&
	     tls_util_digest_part(md, f->ocsp, f->ocsp_len) == 0 &&
	     EVP_DigestFinal_ex(md, c->digest, &n) == 1 && n == TLS_DIGEST;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* Parsed, checked against the leaf (when the chain could be read) and
 * dropped: see tls_cert.h. */
static int
tls_cert_check_key(const struct tls_cert_report *r, const struct tls_cert *c,
		   const struct tls_cert_bytes *f)
{
	EVP_PKEY *key = tls_cert_parse_key(f->key, f->key_len);
	char err[4600];
	int ok;

	if (key == NULL)
		return tls_cert_fail(r, TLS_KEY_KEY, "cannot load private key from", r->conf->key, NULL);
	ok = c->leaf == NULL || X509_check_private_key(c->leaf, key) == 1;
	EVP_PKEY_free(key);
	if (ok)
		return 0;
	ERR_clear_error();
	snprintf(err, sizeof(err), "private key %s does not match certificate %s", r->conf->key,
		 r->conf->cert);
	return tls_cert_problem(r, TLS_KEY_KEY, err);
}

/* The chain, the key and the OCSP response are each checked as far as the
 * files that could be read allow, so that each problem is reported. */
static int
tls_cert_parse(const struct tls_cert_report *r, struct tls_cert *c, struct tls_cert_bytes *f)
{
	const struct tls_cert_files *conf = r->conf;
	char err[4600];
	int rc = 0;

	if (f->cert != NULL && tls_cert_parse_chain(c, f) < 0) {
		rc = tls_cert_fail(r, TLS_KEY_CERT, "cannot load certificate chain from", conf->cert, NULL);
		X509_free(c->leaf);   /* a leaf without its chain checks nothing */
		c->leaf = NULL;
	}
	if (f->key != NULL && tls_cert_check_key(r, c, f) < 0)
		rc = -1;
	if (c->leaf != NULL && f->ocsp != NULL) {
		c->ocsp = tls_ocsp_load(conf->ocsp, f->ocsp, f->ocsp_len, c->leaf, c->chain, err,
					sizeof(err));
		if (c->ocsp == NULL)
			rc = tls_cert_problem(r, TLS_KEY_OCSP, err);
	}
	if (rc < 0 || f->cert == NULL || f->key == NULL)
		return -1;   /* a file not read was reported by tls_cert_read */
	if (tls_cert_names(c) < 0 || tls_cert_digest(c, f) < 0) {
		snprintf(err, sizeof(err), "certificate %s: out of memory", conf->cert);
		return tls_cert_problem(r, TLS_KEY_NONE, err);
	}
	/* The bytes move over: nothing is copied. */
	c->key_pem = f->key;
	c->key_len = f->key_len;
	f->key = NULL;
	return 0;
}

int
tls_cert_load(const struct tls_cert_files *conf, long index, struct tls_cert *c,
	      tls_report_fn report, void *arg)
{
	const struct tls_cert_report r = { conf, index, report, arg };
	struct tls_cert_bytes f = { 0 };
	int rc;

	memset(c, 0, sizeof(*c));
	ERR_clear_error();
	rc = tls_cert_read(&r, &f);
	if (tls_cert_parse(&r, c, &f) < 0)
		rc = -1;
	tls_cert_bytes_free(&f);
	if (rc < 0)
		tls_cert_clear(c);
	ERR_clear_error();
	return rc;
}
