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
	struct sockaddr_storage ss;    /* numeric addresses: parsed, never by DNS */
	socklen_t len;                 /* 0 when host is a name */
	char *host;                    /* a server's DNS name, lower-cased, to be
					* resolved (SPEC §8); NULL when numeric */
	uint16_t port;                 /* host byte order, with host */
	struct config_mark mark;       /* where the address was written */
};

/* Addresses of one server name in use at once (resolve.c keeps at most
 * this many of an answer); the descriptor budget counts a name as this
 * many servers. */
#define CONFIG_MAX_ADDRS_PER_NAME 64

struct config_server {
	struct config_addr addr;
	struct config_mark mark;
};

/* backends.NAME.health_check (SPEC §8): one probe frame per server every
 * interval, any valid frame back within timeout; down after fall failures
 * in a row, up after rise successes. */
struct config_health {
	bool enabled;                  /* the key is present */
	uint64_t interval_ms;          /* default 2s */
	uint64_t timeout_ms;           /* default 1s; at most interval */
	char *header;                  /* default "PING"; never "QUIT" */
	char *payload;                 /* default "" */
	unsigned rise;                 /* default 2 */
	unsigned fall;                 /* default 3 */
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
	uint64_t resolve_interval_ms;  /* default 10s: servers given by name */
	bool has_names;                /* some server's address is a DNS name */
	struct config_health health;
	unsigned eject_after;          /* consecutive UNAVAILABLE/TIMEOUT; 0: never */
	uint64_t eject_time_ms;        /* default 10s, times ejections in a row, at most 5m */
	unsigned max_ejected_percent;  /* default 50 */
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

/* listen[].routes[] (SPEC §8): the first route whose sni and alpn (each
 * NULL for "any") match a client's names picks its backend. */
struct config_route {
	char *sni;                     /* lower-cased; exact, or "*.example.com" */
	char *alpn;                    /* a protocol of the listener's tls.alpn */
	char *backend_name;
	struct config_backend *backend; /* resolved reference into config.backends */
	struct config_mark mark;       /* the routes[] item */
	struct config_mark backend_mark;
};

enum config_proxy_protocol {
	CONFIG_PROXY_OFF,
	CONFIG_PROXY_V1,
	CONFIG_PROXY_V2,
	CONFIG_PROXY_ANY,              /* v1 or v2, told apart by their signatures */
};

/* One network of proxy_trusted: "10.0.0.0/8", "::1/128", or a bare address
 * (all its bits). The bits past prefix are zero. */
struct config_cidr {
	char *text;                    /* as written */
	int family;                    /* AF_INET or AF_INET6 */
	uint8_t addr[16];              /* network byte order; 4 bytes used for v4 */
	unsigned prefix;               /* 0..32 or 0..128 */
	struct config_mark mark;
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
	struct config_route *routes;   /* optional, in order */
	size_t n_routes;
	enum config_proxy_protocol proxy_protocol; /* default off */
	struct config_cidr *proxy_trusted; /* required unless proxy_protocol is off */
	size_t n_proxy_trusted;
	struct config_mark mark;
};

struct config_limits {
	uint64_t max_connections;      /* default 10000, at most 1000000 */
	uint64_t max_frame_size;       /* default 1MiB; at most 4GiB-1 */
	uint64_t client_buffer;        /* default 4MiB */
	uint64_t handshake_timeout_ms; /* default 10s */
	uint64_t idle_timeout_ms;      /* default 5m */
	uint64_t max_connections_per_address; /* 0 (default): unlimited */
};

/* resolver: (SPEC §8): where names of backend servers are looked up. Absent:
 * the system's /etc/resolv.conf and /etc/hosts. */
struct config_resolver {
	bool configured;               /* the key is present */
	struct config_addr *nameservers; /* numeric host:port */
	size_t n_nameservers;
	char *hosts_file;              /* NULL: no hosts file at all */
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
	uint64_t shutdown_delay_ms;    /* default 0: unready but serving, before draining */
	struct config_resolver resolver;
	bool has_admin;
	struct config_addr admin_addr;
	enum log_level log_level;      /* default info */
	unsigned tls_built;            /* SSL_CTXs this snapshot built, */
	unsigned tls_reused;           /* and took over unchanged from the running one */
};

#endif
