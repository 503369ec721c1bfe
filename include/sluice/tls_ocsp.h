/*
 * tls_ocsp — OCSP stapling from a DER response file per certificate:
 * checked when it is loaded (a successful basic response with a single
 * entry for exactly this certificate and its issuer, status good,
 * thisUpdate not in the future), stapled only to clients that ask for it
 * and only while now < nextUpdate. An expired response is never stapled:
 * that is logged once, at warn.
 */
#ifndef SLUICE_TLS_OCSP_H
#define SLUICE_TLS_OCSP_H

#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* One certificate's response, immutable once loaded. */
struct tls_ocsp;

/* Once, from tls_init. 0 or -1. */
int tls_ocsp_init(void);

/* Checks der (the contents of path) against leaf, whose issuer must be
 * leaf itself (self-signed) or in chain. NULL with the reason in err. A
 * response that has already expired is loaded (and never stapled) after a
 * warning. */
struct tls_ocsp *tls_ocsp_load(const char *path, const unsigned char *der, size_t len,
			       X509 *leaf, STACK_OF(X509) *chain, char *err, size_t errlen);
void tls_ocsp_free(struct tls_ocsp *ocsp);

/* Staples the n responses (some may be NULL) for the certificates of ctx;
 * ctx takes them over, also on failure. 0 or -1. */
int tls_ocsp_attach(SSL_CTX *ctx, struct tls_ocsp **ocsp, size_t n);

#endif
