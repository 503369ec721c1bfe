/*
 * harness — what integration tests need to drive real processes on
 * 127.0.0.1: temporary folders, free ports, spawning and reaping, waiting on
 * logs and ports with deadlines (never a bare sleep), a TLS (or plain) frame
 * client that handles many connections, and sluice-echo trace parsing.
 *
 * Failing functions leave a reason in harness_last_error() (per thread).
 * Spawned processes get their own process group and SIGKILL when the test
 * process exits or dies (so a failed or timed-out Check test leaves no
 * strays); spawn them from the thread that will live longest (the test's).
 */
#ifndef SLUICE_HARNESS_H
#define SLUICE_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Why the last failing harness call of this thread failed. */
const char *harness_last_error(void);

/* ---- files ------------------------------------------------------------ */

/* A fresh directory $TMPDIR/sluice-test-XXXXXX (or /tmp/...). 0 or -1. */
int harness_tmpdir(char *out, size_t len);
/* Removes dir and everything under it (does not follow symlinks). */
void harness_rmdir(const char *dir);
/* Writes (replaces) path with text. 0 or -1. */
int harness_write_file(const char *path, const char *text);
/* Reads the whole file into a NUL-terminated malloc'd buffer (*len without
 * the NUL, may be NULL). NULL on failure. */
char *harness_read_file(const char *path, size_t *len);
/* Path of a built tool ("sluice-client"): next to $SLUICE_ECHO when set,
 * else ./tools/NAME. Returns out. */
const char *harness_tool_path(const char *name, char *out, size_t len);

/* ---- ports ------------------------------------------------------------ */

/* A port on 127.0.0.1 that nothing listens on right now, from 20000-32767
 * (below Linux's ephemeral range, so outgoing connections never take it),
 * never the same one twice in a process. 0 when none is found. */
uint16_t harness_free_port(void);
/* Polls until a TCP connect to 127.0.0.1:port succeeds. 0, or -1 on
 * timeout. */
int harness_wait_port(uint16_t port, int timeout_ms);

/* ---- processes -------------------------------------------------------- */

struct harness_proc {
	pid_t pid;           /* 0 once reaped (or never started) */
	char log[512];       /* where stdout and stderr go */
	off_t log_offset;    /* log size at spawn: waits look past it only */
	int status;          /* waitpid status, valid once reaped */
	int reaped;          /* 1 once reaped */
};

/* Starts argv[0] (a path, not searched in $PATH) with stdout and stderr
 * appended to log_path, stdin from /dev/null, in a new process group, no
 * inherited descriptors. 0, or -1 (exec failures show up in the log and as
 * exit status 127). */
int harness_spawn(struct harness_proc *p, const char *log_path, char *const argv[]);
/* Sends sig to the process. 0, or -1 (already reaped, or kill failed). */
int harness_signal(struct harness_proc *p, int sig);
/* Waits for the process to exit. 0 and *status (waitpid's, may be NULL), or
 * -1 on timeout. Calling it again after an exit returns the same status. */
int harness_wait_exit(struct harness_proc *p, int timeout_ms, int *status);
/* 1 while the process has not exited (reaps it if it just did), else 0. */
int harness_alive(struct harness_proc *p);
/* SIGKILL to the process group and reap. Safe to call twice or on a process
 * that was never started (zeroed struct). */
void harness_kill(struct harness_proc *p);
/* Waits for needle in the process's log, written after the spawn. Fails at
 * once (-1) if the process exits first. 0 or -1. */
int harness_wait_ready(struct harness_proc *p, const char *needle, int timeout_ms);

/* Starts $SLUICE_ECHO (or ./tools/sluice-echo) on 127.0.0.1:port with
 * extra_args (space separated, may be NULL), logging to dir/echo-PORT.log,
 * and waits up to 5 s for its "listening" line. 0 or -1. */
int harness_start_echo(struct harness_proc *p, const char *dir, uint16_t port,
		       const char *extra_args);

/* ---- logs ------------------------------------------------------------- */

/* Polls until needle appears in the file. 0, or -1 on timeout. */
int harness_wait_log(const char *path, const char *needle, int timeout_ms);
/* Occurrences of needle in the file (0 when it is missing). */
int harness_count_log(const char *path, const char *needle);
/* Polls until needle occurs at least n times in the file. Returns the count
 * seen last: n or more, or fewer (with the reason in harness_last_error())
 * on timeout or, at once, when p (NULL: no process) exits first; the file
 * is counted once more after the exit. */
int harness_wait_count(const char *path, const char *needle, int n, struct harness_proc *p,
		       int timeout_ms);
/* 0 when the log shows no crash, sanitizer report or critical line
 * ("[crit]", "AddressSanitizer", "LeakSanitizer", "runtime error:",
 * "Segmentation fault", "Assertion", "stack smashing"); else -1 with the
 * offending line in why. A missing log is clean. */
int harness_log_clean(const char *path, char *why, size_t len);

/* ---- frames ----------------------------------------------------------- */

/* A received frame; header and payload are malloc'd and NUL-terminated (the
 * NUL is not counted), so text can be compared with strcmp. */
struct harness_frame {
	uint8_t *header;
	uint16_t header_len;
	uint8_t *payload;
	uint32_t payload_len;
};

/* Frames larger than this are refused by harness_recv_frame. */
#define HARNESS_MAX_FRAME (64u * 1024 * 1024)

/* Writes a 6-byte prefix as given, even an invalid one (for bad-input
 * tests). */
void harness_frame_prefix(uint8_t out[6], uint16_t header_len, uint32_t total_len);
void harness_frame_free(struct harness_frame *f);
/* 1 when f is an ERR frame whose payload starts with code (then a space or
 * the end); code NULL matches any ERR. Else 0. */
int harness_frame_is_err(const struct harness_frame *f, const char *code);
/* 1 when the header is exactly QUIT. */
int harness_frame_is_quit(const struct harness_frame *f);

/* ---- client connections (TLS or plain TCP) ---------------------------- */

/* One client connection: TLS over a non-blocking socket, or plain TCP when
 * made by harness_plain_connect. Every call has a deadline. */
struct harness_tls;

struct harness_tls_opts {
	const char *sni;        /* server name to send, or NULL */
	const char *ca_file;    /* verify the server (chain and, with sni, its
				 * name) against this PEM; NULL: no checks */
	const char *cert_file;  /* client certificate (mTLS), or NULL */
	const char *key_file;
	const char *alpn;       /* comma list "sluice/1,h2", or NULL */
	int min_version;        /* TLS1_2_VERSION etc., 0 for the default */
	int max_version;
	SSL_SESSION *session;   /* resume this session, or NULL */
	const char *sigalgs;    /* signature algorithms to offer ("ECDSA+SHA256",
				 * "RSA-PSS+SHA256:RSA+SHA256"), or NULL */
	int status_request;     /* ask for a stapled OCSP response */
};

/* TLS to 127.0.0.1:port without certificate checks. NULL on failure (refused,
 * handshake error, timeout) with the reason in harness_last_error(). */
struct harness_tls *harness_tls_connect(uint16_t port, const char *sni, int timeout_ms);
/* The same, verifying the server against ca_file (and sni when given). */
struct harness_tls *harness_tls_connect_ca(uint16_t port, const char *sni,
					   const char *ca_file, int timeout_ms);
struct harness_tls *harness_tls_connect_opts(uint16_t port, const struct harness_tls_opts *o,
					     int timeout_ms);
/* Plain TCP with the same frame API (for backends such as sluice-echo). */
struct harness_tls *harness_plain_connect(uint16_t port, int timeout_ms);

/* Sends all of buf (10 s deadline). While it waits to write it buffers
 * whatever arrives (for harness_recv_frame), so a peer answering a long
 * pipeline cannot deadlock it. 0 or -1. */
int harness_tls_send(struct harness_tls *t, const void *buf, size_t len);
/* Sends as much of buf as goes within timeout_ms; *sent says how much.
 * Never reads: this is a client that does not read its answers. 0 when all
 * went, -1 otherwise (timeout or error). For backpressure tests.
 * After a timeout OpenSSL may already hold part of the unsent rest: send the
 * remainder of this same buffer before anything else, or the TLS stream is
 * corrupted (the next send fails with "bad length"). */
int harness_tls_send_some(struct harness_tls *t, const void *buf, size_t len,
			  int timeout_ms, size_t *sent);
/* Sends one frame in one write, as harness_tls_send. 0 or -1. */
int harness_send_frame(struct harness_tls *t, const void *hdr, uint16_t hlen,
		       const void *payload, uint32_t plen);
/* Receives one frame: 0 ok, 1 the peer closed cleanly between frames
 * (close_notify or FIN), -1 timeout, error, reset or invalid frame (see
 * harness_last_error()). On non-zero, f is zeroed. */
int harness_recv_frame(struct harness_tls *t, struct harness_frame *f, int timeout_ms);
/* Receives up to len raw bytes (whatever arrives first). Bytes read, 0 on
 * close, -1 on timeout or error. */
ssize_t harness_tls_recv_raw(struct harness_tls *t, void *buf, size_t len, int timeout_ms);
/* Reads and discards until the server closes (close_notify, FIN or reset).
 * 0 when closed, -1 on timeout. */
int harness_tls_wait_closed(struct harness_tls *t, int timeout_ms);
/* 1 when the server's close_notify has been received. */
int harness_tls_got_close_notify(const struct harness_tls *t);
/* close_notify (TLS, best effort), close, free. NULL is fine. */
void harness_tls_close(struct harness_tls *t);
/* Close without close_notify, with RST (SO_LINGER 0): a client that dies. */
void harness_tls_abort(struct harness_tls *t);

int harness_tls_fd(const struct harness_tls *t);
/* The SSL object (NULL for plain connections): version, ALPN, reuse... */
SSL *harness_tls_ssl(const struct harness_tls *t);
/* The server's leaf certificate (caller X509_free()s it), or NULL. */
X509 *harness_tls_peer_cert(const struct harness_tls *t);
/* Lowercase hex SHA-256 of the server certificate's DER (the format of
 * testcerts_fingerprint). 0 or -1. */
int harness_tls_peer_fingerprint(const struct harness_tls *t, char out_hex[65]);
/* The stapled OCSP response (DER, owned by the connection) and its
 * length; 0 when none came. */
long harness_tls_ocsp(const struct harness_tls *t, const unsigned char **der);
/* The session for resumption (caller SSL_SESSION_free()s it), or NULL. With
 * TLS 1.3 the ticket arrives after the handshake: read a response first. */
SSL_SESSION *harness_tls_session(const struct harness_tls *t);

/* A blocking plain TCP connection to 127.0.0.1:port (fd), or -1. */
int harness_tcp_connect(uint16_t port);
/* The same without waiting: a non-blocking socket whose connect may still
 * be under way (poll it for POLLOUT, then SO_ERROR), or -1. */
int harness_tcp_connect_nowait(uint16_t port);

/* A "Key:   N kB" field of /proc/PID/status (VmRSS, VmHWM...) in KiB, or -1. */
long harness_proc_status_kib(pid_t pid, const char *key);

/* ---- sluice-echo --trace files ---------------------------------------- */

struct harness_trace_frame {
	int conn;               /* connection number in the echo */
	uint32_t total_len;     /* the frame's total_len */
	uint8_t prefix[32];     /* first payload bytes */
	size_t prefix_len;
};

/* Most connections open at once over the whole trace; -1 if unreadable. */
int harness_trace_max_open(const char *trace_path);
/* Connections accepted so far; -1 if unreadable. */
int harness_trace_connections(const char *trace_path);
/* Connection that carried the first frame whose payload starts with
 * prefix (len <= 32), or -1. */
int harness_trace_conn_of(const char *trace_path, const void *prefix, size_t len);
/* The frames of connection conn in arrival order (conn 0: all frames), at
 * most max stored; returns how many there are, or -1. */
int harness_trace_frames(const char *trace_path, int conn,
			 struct harness_trace_frame *out, int max);

#endif
