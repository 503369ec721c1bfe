/*
 * tls_cert — one certificates[] entry read from its files: the leaf, its
 * chain, the private key (checked against the leaf), the OCSP response,
 * the DNS names SNI chooses it by, and a digest of the files' contents
 * (what tells a reload that nothing changed). Files are read once, into
 * memory, and parsed from there: the digest is of the very bytes used.
 * The key is checked when loaded but kept as text, parsed again only for
 * a context that is built: private keys live in OpenSSL's small secure
 * heap, and a reload that reuses thousands of contexts must not hold a
 * second copy of each key.
 */
#ifndef SLUICE_TLS_CERT_H
#define SLUICE_TLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <sluice/tls_settings.h>
struct tls_ocsp;

#define TLS_DIGEST 32

/* Owned by whoever loaded it, until tls_cert_clear; used while building. */
struct tls_cert {
	X509 *leaf;
	STACK_OF(X509) *chain;      /* the certificates after the leaf */
	unsigned char *key_pem;     /* the key file's bytes (cleansed when cleared) */
	size_t key_len;
	struct tls_ocsp *ocsp;      /* NULL without ocsp:; taken by the SSL_CTX */
	char **names;               /* lowercase SAN DNS names (the CN without
				     * any), sorted, unique; "*.x" wildcards */
	size_t n_names;
	unsigned char digest[TLS_DIGEST]; /* SHA-256 over the files' contents */
};

/* Reads and checks the files of certificates[index] into c. Every problem
 * is reported, as (index, the key concerned, a one-line reason naming the
 * file), and then -1 (c is then cleared). */
int tls_cert_load(const struct tls_cert_files *conf, long index, struct tls_cert *c,
		  tls_report_fn report, void *arg);
void tls_cert_clear(struct tls_cert *c);

/* The private key, parsed again (the caller frees it); NULL with the
 * reason in err. */
EVP_PKEY *tls_cert_key(const struct tls_cert_files *conf, const struct tls_cert *c, char *err,
		       size_t errlen);

/* Whether a and b are served for exactly the same names (one group). */
bool tls_cert_same_names(const struct tls_cert *a, const struct tls_cert *b);
/* "ECDSA", "RSA", ... and a number that is equal for keys OpenSSL keeps in
 * the same slot of an SSL_CTX (two such certificates cannot share one). */
int tls_cert_key_type(const struct tls_cert *c, const char **name);

/* A name as SNI compares it: lowercase, at most 253 bytes, letters,
 * digits, '-', '.', and '*' only as a whole first label. 0 or -1. */
int tls_cert_normalize_name(const char *in, size_t len, char *out, size_t outlen);

#endif
