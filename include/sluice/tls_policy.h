/*
 * tls_policy — the settings of a listener's tls: section that every one of
 * its SSL_CTXs shares, whichever certificate it serves: protocols and
 * ciphers, session cache and session id context, ALPN, client certificate
 * checks (client_ca, crl, verify depth) and session tickets. Read once per
 * build, applied by the same code to each context.
 */
#ifndef SLUICE_TLS_POLICY_H
#define SLUICE_TLS_POLICY_H

#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sluice/tls_cert.h>
#include <sluice/tls_settings.h>

struct tls_ticket_keys;

/* Owned by one tls_ctx_build call. */
struct tls_policy {
	const struct tls_settings *conf;
	X509_STORE *store;               /* client_ca and crl; NULL without client_ca.
					  * Shared (reference counted) by every context */
	STACK_OF(X509_NAME) *ca_names;   /* acceptable issuers, for CertificateRequest */
	struct tls_ticket_keys *tickets; /* ticket_keys; NULL: the rotating store */
	unsigned char digest[TLS_DIGEST];  /* every setting and file: half the registry key */
	unsigned char sid_ctx[TLS_DIGEST]; /* the client policy: what a resumed session must match */
};

/* Once, from tls_init. 0 or -1. */
int tls_policy_init(void);

/* Reads client_ca, crl and ticket_keys and digests everything. Each
 * problem is reported (TLS_SECTION, its key, a reason naming the file),
 * every file read whatever became of the others; then -1. */
int tls_policy_load(struct tls_policy *pol, const struct tls_settings *conf,
		    tls_report_fn report, void *arg);
void tls_policy_clear(struct tls_policy *pol);

/* Sets everything but the certificates on ctx, reporting each setting
 * OpenSSL refuses (ciphers and ciphersuites both, say); then -1. */
int tls_policy_apply(SSL_CTX *ctx, const struct tls_policy *pol, tls_report_fn report,
		     void *arg);

/* What tls_policy_apply would say of the cipher lists, on a context of its
 * own: for a build that failed before any context was set up. 0 or -1. */
int tls_policy_check(const struct tls_policy *pol, tls_report_fn report, void *arg);

/* The registry key of a context holding certificates with these digests
 * (in order) under this policy. 0 or -1. */
int tls_policy_group_key(const struct tls_policy *pol, const unsigned char *const *certs,
			 size_t n, unsigned char out[TLS_DIGEST]);

#endif
