/*
 * testcerts — generates keys and self-signed certificates for tests with the
 * OpenSSL 3 API, and fingerprints certificates so tests can tell which one
 * a server presented.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testcerts.h"

#define TESTCERTS_DAY (24L * 60 * 60)

static int
testcerts_fail(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256] = "";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	fprintf(stderr, "testcerts: %s%s%s\n", what, e != 0 ? ": " : "", reason);
	ERR_clear_error();
	return -1;
}

static EVP_PKEY *
testcerts_key(int ecdsa)
{
	if (ecdsa)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static int
testcerts_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A random positive 64-bit serial: two test certificates for the same name
 * must not look like the same certificate to a client's session cache. */
static int
testcerts_serial(X509 *x)
{
	unsigned char raw[8];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	raw[0] &= 0x7f;
	raw[0] |= 0x01;
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int
testcerts_name(X509 *x, const char *common_name)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				       (const unsigned char *)"sluice tests", -1, -1, 0) != 1)
		return -1;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const unsigned char *)common_name, -1, -1, 0) != 1)
		return -1;
	return X509_set_issuer_name(x, name) == 1 ? 0 : -1;
}

static X509 *
testcerts_cert(EVP_PKEY *key, const char *common_name)
{
	char san[512];
	X509 *x = X509_new();

	if (x == NULL)
		return NULL;
	if (snprintf(san, sizeof(san), "DNS:%s", common_name) >= (int)sizeof(san))
		goto fail;
	if (X509_set_version(x, X509_VERSION_3) != 1 || testcerts_serial(x) < 0)
		goto fail;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -TESTCERTS_DAY) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3650 * TESTCERTS_DAY) == NULL)
		goto fail;
	if (X509_set_pubkey(x, key) != 1 || testcerts_name(x, common_name) < 0)
		goto fail;
	if (testcerts_add_ext(x, NID_subject_alt_name, san) < 0 ||
	    testcerts_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    testcerts_add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
	    testcerts_add_ext(x, NID_subject_key_identifier, "hash") < 0)
		goto fail;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* Opens path for writing with the given mode, replacing any old file. */
static FILE *
testcerts_open(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *fp;

	if (fd < 0)
		return NULL;
	fp = fdopen(fd, "w");
	if (fp == NULL)
		close(fd);
	return fp;
}

static int
testcerts_save(const char *path, EVP_PKEY *key, X509 *x)
{
	FILE *fp = testcerts_open(path, key != NULL ? 0600 : 0644);
	int ok;

	if (fp == NULL) {
		fprintf(stderr, "testcerts: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (key != NULL)
		ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) == 1;
	else
		ok = PEM_write_X509(fp, x) == 1;
	if (fclose(fp) != 0)
		ok = 0;
	return ok ? 0 : testcerts_fail(path);
}

static int
testcerts_path(char *buf, size_t len, const char *dir, const char *basename,
	       const char *ext)
{
	int n = snprintf(buf, len, "%s/%s.%s", dir, basename, ext);

	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "testcerts: path too long: %s/%s\n", dir, basename);
		return -1;
	}
	return 0;
}

int
testcerts_write(const char *dir, const char *basename, const char *common_name,
		int ecdsa)
{
	char crt_path[PATH_MAX], key_path[PATH_MAX];
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int rc = -1;

	if (testcerts_path(crt_path, sizeof(crt_path), dir, basename, "crt") < 0 ||
	    testcerts_path(key_path, sizeof(key_path), dir, basename, "key") < 0)
		return -1;
	key = testcerts_key(ecdsa);
	if (key == NULL)
		return testcerts_fail("cannot generate a key");
	x = testcerts_cert(key, common_name);
	if (x == NULL) {
		testcerts_fail("cannot build a certificate");
		goto out;
	}
	if (testcerts_save(key_path, key, NULL) < 0 ||
	    testcerts_save(crt_path, NULL, x) < 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
testcerts_fingerprint(const char *crt_path, char out_hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	X509 *x = NULL;
	FILE *fp = fopen(crt_path, "r");
	int ok;

	if (fp == NULL) {
		fprintf(stderr, "testcerts: cannot open %s: %s\n", crt_path, strerror(errno));
		return -1;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		return testcerts_fail(crt_path);
	ok = X509_digest(x, EVP_sha256(), md, &md_len) == 1 && md_len == 32;
	X509_free(x);
	if (!ok)
		return testcerts_fail("cannot digest certificate");
	for (unsigned i = 0; i < md_len; i++)
		snprintf(out_hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---- certificates signed by a test CA, CRLs, OCSP, ticket keys ------------- */

static X509 *
testcerts_load_cert(const char *dir, const char *basename)
{
	char path[PATH_MAX];
	FILE *fp;
	X509 *x;

	if (testcerts_path(path, sizeof(path), dir, basename, "crt") < 0)
		return NULL;
	fp = fopen(path, "r");
	if (fp == NULL) {
		fprintf(stderr, "testcerts: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		testcerts_fail(path);
	return x;
}

static EVP_PKEY *
testcerts_load_key(const char *dir, const char *basename)
{
	char path[PATH_MAX];
	EVP_PKEY *key;
	FILE *fp;

	if (testcerts_path(path, sizeof(path), dir, basename, "key") < 0)
		return NULL;
	fp = fopen(path, "r");
	if (fp == NULL) {
		fprintf(stderr, "testcerts: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		testcerts_fail(path);
	return key;
}

/* Subject O and CN; the issuer name is the signer's subject. */
static int
testcerts_subject(X509 *x, const char *cn, X509 *issuer)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				       (const unsigned char *)"sluice tests", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1, 0) != 1)
		return -1;
	return X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1 ? 0 : -1;
}

static int
testcerts_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
testcerts_exts(X509 *x, X509 *issuer, const struct testcerts_spec *s)
{
	if (s->san != NULL && s->san[0] != '\0' &&
	    testcerts_ext(x, issuer, NID_subject_alt_name, s->san) < 0)
		return -1;
	if (testcerts_ext(x, issuer, NID_subject_key_identifier, "hash") < 0)
		return -1;
	if (issuer != NULL && testcerts_ext(x, issuer, NID_authority_key_identifier, "keyid:always") < 0)
		return -1;
	if (s->ca)
		return testcerts_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
		       testcerts_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 ? 0 : -1;
	return testcerts_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
	       testcerts_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth") == 0 ? 0 : -1;
}

static X509 *
testcerts_build(EVP_PKEY *key, const char *cn, const struct testcerts_spec *s, X509 *issuer,
		EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	long from = s->not_before != 0 ? s->not_before : -TESTCERTS_DAY;
	long to = s->not_after != 0 ? s->not_after : 3650 * TESTCERTS_DAY;

	if (x == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || testcerts_serial(x) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), from) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), to) == NULL ||
	    X509_set_pubkey(x, key) != 1 || testcerts_subject(x, cn, issuer) < 0 ||
	    testcerts_exts(x, issuer, s) < 0 ||
	    X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Appends the issuer's whole .crt file (its certificate and chain). */
static int
testcerts_append_chain(const char *crt_path, const char *dir, const char *issuer)
{
	char path[PATH_MAX], buf[4096];
	FILE *in, *out;
	size_t n;
	int ok = 1;

	if (testcerts_path(path, sizeof(path), dir, issuer, "crt") < 0)
		return -1;
	in = fopen(path, "r");
	out = fopen(crt_path, "a");
	if (in == NULL || out == NULL) {
		if (in != NULL)
			fclose(in);
		if (out != NULL)
			fclose(out);
		fprintf(stderr, "testcerts: cannot append %s to %s\n", path, crt_path);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ok &= fwrite(buf, 1, n, out) == n;
	fclose(in);
	if (fclose(out) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
testcerts_make(const char *dir, const char *basename, const struct testcerts_spec *s)
{
	char crt_path[PATH_MAX], key_path[PATH_MAX];
	EVP_PKEY *key = NULL, *issuer_key = NULL;
	X509 *x = NULL, *issuer = NULL;
	int rc = -1;

	if (testcerts_path(crt_path, sizeof(crt_path), dir, basename, "crt") < 0 ||
	    testcerts_path(key_path, sizeof(key_path), dir, basename, "key") < 0)
		return -1;
	if (s->issuer != NULL && ((issuer = testcerts_load_cert(dir, s->issuer)) == NULL ||
				  (issuer_key = testcerts_load_key(dir, s->forged_by != NULL ?
								   s->forged_by : s->issuer)) == NULL))
		goto out;
	key = testcerts_key(s->ecdsa);
	if (key == NULL) {
		testcerts_fail("cannot generate a key");
		goto out;
	}
	x = testcerts_build(key, s->cn != NULL ? s->cn : basename, s, issuer, issuer_key);
	if (x == NULL) {
		testcerts_fail("cannot build a certificate");
		goto out;
	}
	if (testcerts_save(key_path, key, NULL) < 0 || testcerts_save(crt_path, NULL, x) < 0)
		goto out;
	if (s->chain && s->issuer != NULL && testcerts_append_chain(crt_path, dir, s->issuer) < 0)
		goto out;
	rc = 0;
out:
	X509_free(x);
	X509_free(issuer);
	EVP_PKEY_free(key);
	EVP_PKEY_free(issuer_key);
	return rc;
}

static int
testcerts_revoke(X509_CRL *crl, const char *dir, const char *name, const ASN1_TIME *when)
{
	X509_REVOKED *r = X509_REVOKED_new();
	X509 *x = testcerts_load_cert(dir, name);
	int ok;

	ok = r != NULL && x != NULL &&
	     X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x)) == 1 &&
	     X509_REVOKED_set_revocationDate(r, (ASN1_TIME *)when) == 1 &&
	     X509_CRL_add0_revoked(crl, r) == 1;
	X509_free(x);
	if (!ok)
		X509_REVOKED_free(r);
	return ok ? 0 : -1;
}

static X509_CRL *
testcerts_build_crl(const char *dir, X509 *ca, EVP_PKEY *key, const char *const *revoked)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = X509_gmtime_adj(NULL, -3600);
	ASN1_TIME *next = X509_gmtime_adj(NULL, 7 * TESTCERTS_DAY);
	int ok;

	ok = crl != NULL && last != NULL && next != NULL && X509_CRL_set_version(crl, 1) == 1 &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1 &&
	     X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1;
	for (size_t i = 0; ok && revoked != NULL && revoked[i] != NULL; i++)
		ok = testcerts_revoke(crl, dir, revoked[i], last) == 0;
	ok = ok && X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, key, EVP_sha256()) > 0;
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	if (!ok) {
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

int
testcerts_crl(const char *dir, const char *ca, const char *const *revoked, const char *out)
{
	char path[PATH_MAX];
	X509 *x = testcerts_load_cert(dir, ca);
	EVP_PKEY *key = testcerts_load_key(dir, ca);
	X509_CRL *crl = NULL;
	FILE *fp = NULL;
	int rc = -1;

	if (x == NULL || key == NULL || snprintf(path, sizeof(path), "%s/%s", dir, out) >= (int)sizeof(path))
		goto done;
	crl = testcerts_build_crl(dir, x, key, revoked);
	if (crl == NULL) {
		testcerts_fail("cannot build a CRL");
		goto done;
	}
	fp = testcerts_open(path, 0644);
	if (fp != NULL && PEM_write_X509_CRL(fp, crl) == 1)
		rc = 0;
	if (fp == NULL || fclose(fp) != 0)
		rc = -1;
	if (rc < 0)
		testcerts_fail(path);
done:
	X509_CRL_free(crl);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static OCSP_RESPONSE *
testcerts_build_ocsp(X509 *cert, X509 *issuer, EVP_PKEY *key, int status, long this_update,
		     int has_next, long next_update)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
	ASN1_TIME *thisu = X509_gmtime_adj(NULL, this_update);
	ASN1_TIME *nextu = has_next ? X509_gmtime_adj(NULL, next_update) : NULL;
	ASN1_TIME *rev = status == V_OCSP_CERTSTATUS_REVOKED ? X509_gmtime_adj(NULL, -3600) : NULL;
	OCSP_RESPONSE *resp = NULL;
	int ok;

	ok = bs != NULL && id != NULL && thisu != NULL && (!has_next || nextu != NULL) &&
	     OCSP_basic_add1_status(bs, id, status, OCSP_REVOKED_STATUS_KEYCOMPROMISE, rev,
				    thisu, nextu) != NULL &&
	     OCSP_basic_sign(bs, issuer, key, EVP_sha256(), NULL, OCSP_NOCERTS) == 1;
	if (ok)
		resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(thisu);
	ASN1_TIME_free(nextu);
	ASN1_TIME_free(rev);
	return resp;
}

int
testcerts_ocsp(const char *dir, const char *cert, const char *issuer, int status,
	       long this_update, int has_next, long next_update, const char *out)
{
	char path[PATH_MAX];
	X509 *x = testcerts_load_cert(dir, cert), *ix = testcerts_load_cert(dir, issuer);
	EVP_PKEY *key = testcerts_load_key(dir, issuer);
	OCSP_RESPONSE *resp = NULL;
	unsigned char *der = NULL;
	FILE *fp = NULL;
	int len = -1, rc = -1;

	if (x == NULL || ix == NULL || key == NULL ||
	    snprintf(path, sizeof(path), "%s/%s", dir, out) >= (int)sizeof(path))
		goto done;
	resp = testcerts_build_ocsp(x, ix, key, status, this_update, has_next, next_update);
	len = resp != NULL ? i2d_OCSP_RESPONSE(resp, &der) : -1;
	if (len <= 0) {
		testcerts_fail("cannot build an OCSP response");
		goto done;
	}
	fp = testcerts_open(path, 0644);
	if (fp != NULL && fwrite(der, 1, (size_t)len, fp) == (size_t)len)
		rc = 0;
	if (fp == NULL || fclose(fp) != 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "testcerts: cannot write %s\n", path);
done:
	OPENSSL_free(der);
	OCSP_RESPONSE_free(resp);
	X509_free(x);
	X509_free(ix);
	EVP_PKEY_free(key);
	return rc;
}

int
testcerts_ticket_keys(const char *path, int n)
{
	unsigned char raw[80], b64[128];
	FILE *fp = testcerts_open(path, 0600);
	int ok = fp != NULL;

	for (int i = 0; ok && i < n; i++) {
		ok = RAND_bytes(raw, sizeof(raw)) == 1 &&
		     EVP_EncodeBlock(b64, raw, sizeof(raw)) > 0 && fprintf(fp, "%s\n", b64) > 0;
	}
	if (fp != NULL && fclose(fp) != 0)
		ok = 0;
	if (!ok)
		fprintf(stderr, "testcerts: cannot write %s\n", path);
	return ok ? 0 : -1;
}
