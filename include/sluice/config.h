/*
 * config — the YAML configuration (docs/CONFIG.md) as an immutable,
 * reference-counted snapshot. One loader serves `sluice -t`, start-up and
 * SIGHUP: it parses, validates and loads every certificate before anything
 * uses the result, so a snapshot that exists is a snapshot that works.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

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
 * (0:0 when absent). */
struct config_tls_marks {
	struct config_mark section;    /* the tls: mapping */
	struct config_cert_marks *certs; /* one per tls.certs[] entry */
	struct config_mark ciphers, ciphersuites, alpn;
	struct config_mark client_ca, crl, ticket_keys;
};

struct config_listener {
	struct config_addr addr;
	char *backend_name;
	struct config_mark backend_mark; /* where backend: was written */
	struct config_backend *backend; /* resolved reference into config.backends */
	struct tls_settings tls;       /* the tls: section, as tls_ctx_build takes it */
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

/*
 * Loads, validates and prepares (certificates loaded, TLS contexts built) the
 * file at path. On success returns a snapshot holding one reference. On
 * failure returns NULL and, when errors is not NULL, sets *errors to a
 * malloc'd text of one line per problem found in the file, each
 * "path:line:column: key.path: message" (the caller frees it).
 */
struct config *config_load(const char *path, char **errors);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Same family, address and port (what a reload compares listeners and
 * servers by). */
bool config_addr_equal(const struct config_addr *a, const struct config_addr *b);

/* Workers this snapshot asks for, with auto resolved to the CPU count. */
unsigned config_workers(const struct config *cfg);

/*
 * Logs one warning per key that the file sets but this version does not act
 * on yet (none at the moment): config_load accepts and validates them
 * silently so that `sluice -t` and a reload say the same thing; the daemon
 * calls this once per snapshot it starts serving.
 */
void config_warn_unsupported(const struct config *cfg);

#endif
