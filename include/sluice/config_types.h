/*
 * config_types — the structs of a configuration snapshot: what
 * config_schema fills from the file, what config.c adds while building
 * the snapshot (TLS contexts, counts), and what every other module reads
 * through config.h. They sit apart from config.h, below the loader, so
 * that the modules the loader is made of (config_yaml, config_addr,
 * config_schema) can use them without including config.h: the loader's
 * header includes theirs.
 */
#ifndef SLUICE_CONFIG_TYPES_H
#define SLUICE_CONFIG_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sluice/log.h>
#include <sluice/tls_settings.h>

struct tls_ctx;

/* Where a key was written, for messages: file:line:column (1-based). */
struct config_mark {
	unsigned line;
	unsigned column;
};

struct config_addr {
	char *text;                    /* as written: "127.0.0.1:9000" */
	struct sockaddr_storage ss;    /* resolved numerically, never by DNS */
	socklen_t len;
	struct config_mark mark;       /* where the address was written */
};

struct config_server {
	struct config_addr addr;
	struct config_mark mark;
};

struct config_backend {
	char *name;                    /* key under backends: */
	struct config_server *servers; /* n_servers >= 1 */
	size_t n_servers;
	unsigned connections;          /* per server, per worker; default 4, at most 1024 */
	uint64_t connect_timeout_ms;   /* default 2s */
	uint64_t queue_timeout_ms;     /* default 5s */
	uint64_t request_timeout_ms;   /* default 30s */
	unsigned max_pending;          /* default 4096, at most 1048576 */
	struct config_mark mark;
};

/* Where the values of one certificates[] entry were written (0:0 when
 * absent), so that the TLS build's complaints point at them. */
struct config_cert_marks {
	struct config_mark entry;      /* the certificates[] item */
	struct config_mark cert, key, ocsp;
};

/* Where the tls: section and the values that OpenSSL judges were written
 * (0:0 when absent), and whether the section parsed cleanly: the TLS
 * build loads the section's files only then, and reports what it finds
 * at these lines. Used while the snapshot is built. */
struct config_tls_marks {
	struct config_mark section;    /* the tls: mapping */
	struct config_cert_marks *certs; /* one per tls.certs[] entry */
	struct config_mark ciphers, ciphersuites, alpn;
	struct config_mark client_ca, crl, ticket_keys;
	bool failed;                   /* the section had errors: its files are not loaded */
};

struct config_listener {
	struct config_addr addr;
	char *backend_name;
	struct config_mark backend_mark; /* where backend: was written */
	struct config_backend *backend; /* resolved reference into config.backends */
	struct tls_settings tls;       /* the tls: section, as tls_ctx_build takes it;
					* defaults TLSv1.2, verify_depth 5, tickets on */
	struct config_tls_marks tls_at; /* where its values were written */
	struct tls_ctx *tls_ctx;       /* built at load from tls; owned by the snapshot */
	struct config_mark mark;
};

struct config_limits {
	uint64_t max_connections;      /* default 10000, at most 1000000 */
	uint64_t max_frame_size;       /* default 1MiB; at most 4GiB-1 */
	uint64_t client_buffer;        /* default 4MiB */
	uint64_t handshake_timeout_ms; /* default 10s */
	uint64_t idle_timeout_ms;      /* default 5m */
};

struct config {
	int refs;                      /* atomic; see config_ref/config_unref */
	char *path;                    /* as given on the command line */
	unsigned workers;              /* 0 means auto: one per CPU; at most 256 */
	char *user;                    /* NULL: keep the current user */
	char *group;
	struct config_listener *listeners; /* n_listeners >= 1 */
	size_t n_listeners;
	struct config_backend *backends;
	size_t n_backends;
	struct config_limits limits;
	uint64_t grace_timeout_ms;     /* default 5s */
	bool has_admin;
	struct config_addr admin_addr;
	enum log_level log_level;      /* default info */
	unsigned tls_built;            /* SSL_CTXs this snapshot built, */
	unsigned tls_reused;           /* and took over unchanged from the running one */
};

#endif
