/*
 * tls — server-side TLS contexts built from a listener's tls_settings:
 * certificates chosen by SNI (one SSL_CTX per group of certificates that
 * share their names, so ECDSA and RSA for one name sit together), protocol
 * floor, ciphers, ALPN, client certificates (mTLS, CRL), session tickets
 * (tls_tickets.h) and OCSP stapling (tls_ocsp.h). A tls_ctx is immutable
 * once built and shared by every worker; sessions take SSL objects from it.
 * An SSL_CTX whose files and settings did not change is reused by the next
 * snapshot instead of being built again.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

#include <sluice/tls_settings.h>

struct tls_ctx;

/* Once per process, before any other tls_ call. Returns 0 or -1. */
int tls_init(void);

/* Builds a context, reporting every problem found, each once (each message
 * names the file concerned, never key material), through report. NULL
 * when there was any. SSL_CTXs of live contexts whose files and settings
 * are unchanged are shared rather than built again. */
struct tls_ctx *tls_ctx_build(const struct tls_settings *conf, tls_report_fn report, void *arg);
void tls_ctx_free(struct tls_ctx *ctx);

/* A new server-side SSL for one client, or NULL (reason logged). */
SSL *tls_ctx_new_ssl(struct tls_ctx *ctx);

/* Before freeing a client's SSL: its session stays resumable if the
 * handshake finished, however the connection ended. NULL is fine. */
void tls_session_done(SSL *ssl);

/* SSL_CTXs this tls_ctx built, and those it took over from an earlier
 * snapshot because their files and settings were unchanged. */
void tls_ctx_counts(const struct tls_ctx *ctx, unsigned *built, unsigned *reused);
/* The same, summed over the process's life. */
unsigned long tls_ctx_builds(void);
unsigned long tls_ctx_reuses(void);

/* Why a client certificate was refused, for the metric
 * sluice_tls_client_cert_failures_total{reason}. */
enum tls_cert_failure {
	TLS_CERT_NO_CERTIFICATE = 0,
	TLS_CERT_EXPIRED,
	TLS_CERT_NOT_YET_VALID,
	TLS_CERT_UNKNOWN_CA,
	TLS_CERT_REVOKED,
	TLS_CERT_BAD_SIGNATURE,
	TLS_CERT_OTHER,
	TLS_CERT_FAILURE_COUNT,
	TLS_CERT_OK = TLS_CERT_FAILURE_COUNT  /* the failure was not the client certificate */
};

/* Classifies a failed server handshake: err is its first OpenSSL error. */
enum tls_cert_failure tls_cert_failure_of(const SSL *ssl, unsigned long err);
/* "no_certificate", "expired", ... (the metric's label values). */
const char *tls_cert_failure_name(enum tls_cert_failure why);

#endif
