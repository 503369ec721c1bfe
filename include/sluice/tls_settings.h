/*
 * tls_settings — what a listener's TLS contexts are built from, as plain
 * values: the files of each certificate and the settings of the tls:
 * section (docs/CONFIG.md), and how the tls_ modules report a problem with
 * one of them (which entry, which key), so that whoever filled them can
 * say where the value was written. The tls_ modules know the
 * configuration only through this header; it includes no other.
 */
#ifndef SLUICE_TLS_SETTINGS_H
#define SLUICE_TLS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

enum tls_client_verify {
	TLS_VERIFY_NONE = 0,          /* no client_ca: no client certificate asked for */
	TLS_VERIFY_OPTIONAL,          /* asked for, checked when given */
	TLS_VERIFY_REQUIRED,          /* a handshake without one fails */
};

/* One certificates[] entry: paths that open as they are (resolved). */
struct tls_cert_files {
	char *cert;                   /* PEM: the leaf, then its chain */
	char *key;                    /* PEM, unencrypted */
	char *ocsp;                   /* DER OCSP response to staple; NULL: none */
};

/* Owned by whoever filled it; tls_ctx_build reads it during the call and
 * keeps no pointer into it. */
struct tls_settings {
	struct tls_cert_files *certs; /* n_certs >= 1, the first is the default */
	size_t n_certs;
	int min_version;              /* TLS1_2_VERSION or TLS1_3_VERSION */
	char *ciphers;                /* NULL: forward-secret AEAD only (docs/CONFIG.md) */
	char *ciphersuites;           /* NULL: OpenSSL's default */
	bool sni_required;            /* unknown or missing name: refuse, no default */
	char **alpn;                  /* n_alpn protocol names, preferred first */
	size_t n_alpn;
	bool alpn_required;
	char *client_ca;              /* NULL: no client certificates (mTLS off) */
	enum tls_client_verify client_verify;
	unsigned verify_depth;        /* intermediate CAs a client chain may have */
	char *crl;                    /* only with client_ca */
	bool session_tickets;
	char *ticket_keys;            /* NULL: the process-wide rotating keys */
};

/* The setting a problem found while building is about, so that the
 * message can point at the line that set it. */
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

#endif
