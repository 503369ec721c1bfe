/*
 * tls — server-side TLS contexts built from a listener's configuration:
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

struct config_tls;
struct tls_ctx;

/* Once per process, before any other tls_ call. Returns 0 or -1. */
int tls_init(void);

/* The key a problem found by tls_ctx_build is about, so that the message
 * can point at the line that set it. */
enum tls_key {
	TLS_KEY_NONE = 0,        /* the certificates[] entry, or the section, as a whole */
	TLS_KEY_CERT,            /* certificates[i].cert */
	TLS_KEY_KEY,             /* certificates[i].key */
	TLS_KEY_OCSP,            /* certificates[i].ocsp */
	TLS_KEY_CIPHERS,         /* the rest: keys of the section */
	TLS_KEY_CIPHERSUITES,
	TLS_KEY_ALPN,
	TLS_KEY_CLIENT_CA,
	TLS_KEY_CRL,
	TLS_KEY_TICKET_KEYS,
	TLS_KEY_COUNT
};

/* Where a problem lies: a certificates[] index with TLS_KEY_NONE, _CERT,
 * _KEY or _OCSP, or TLS_SECTION with TLS_KEY_NONE or a key of the
 * section. Shared by the tls_ modules that find problems. */
#define TLS_SECTION (-1L)
typedef void (*tls_report_fn)(void *arg, long cert, enum tls_key key, const char *message);

/* Builds a context, reporting every problem found, each once (each message
 * names the file concerned, never key material), through report. NULL
 * when there was any. SSL_CTXs of live contexts whose files and settings
 * are unchanged are shared rather than built again. */
struct tls_ctx *tls_ctx_build(const struct config_tls *conf, tls_report_fn report, void *arg);
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

/* For the tls_ modules. Reads a whole file of at most max bytes into a
 * malloc'd buffer; -1 with why (strerror, "larger than N bytes") in err.
 * Key files come through here: no block that held file bytes is freed
 * uncleansed on the way, and a caller given key bytes cleanses them
 * (OPENSSL_cleanse) before it frees the buffer. */
int tls_file_read(const char *path, size_t max, unsigned char **data, size_t *len,
		  char *err, size_t errlen);
/* The cause of the oldest error in OpenSSL's queue ("no start line", "No
 * such file or directory"), then clears the queue. */
void tls_openssl_reason(char *buf, size_t len);
/* Feeds len bytes into a digest, length-prefixed, so that no two different
 * sequences of parts run together into the same bytes (the keys of reused
 * contexts and certificates). 0 or -1. */
int tls_digest_part(EVP_MD_CTX *md, const void *data, size_t len);

#endif
