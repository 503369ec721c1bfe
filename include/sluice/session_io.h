/*
 * session_io — what an established session reads and answers: frames cut
 * from the client's decrypted input become requests placed in the pool;
 * answers come back through the requests' client ops and go out in
 * request order; the client's budget and the pool decide when it stops
 * reading; once nothing more will be read and everything is answered, QUIT
 * and close_notify end it. session.c (the connection's life: handshake,
 * callbacks, timer, freeing) sits above it and shares struct session with
 * it; other modules use session.h only.
 */
#ifndef SLUICE_SESSION_IO_H
#define SLUICE_SESSION_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <sluice/addr_limit.h>
#include <sluice/pool.h>
#include <sluice/request.h>

struct bufferevent;
struct config;
struct config_listener;
struct event;
struct loop;
struct pool;

#define SESSION_MAGIC 0x53455353u        /* "SESS": catches use after free */

/* Why a client connection ended: sluice_connections_closed_total{reason}
 * and the log. */
enum session_close_reason {
	SESSION_CLOSE_CLIENT_QUIT,        /* the client sent QUIT */
	SESSION_CLOSE_PROXY_QUIT,         /* sluice's QUIT: shutdown, listener removed */
	SESSION_CLOSE_IDLE,               /* idle_timeout, then sluice's QUIT */
	SESSION_CLOSE_PROTOCOL,           /* an invalid frame: ERR PROTOCOL, QUIT */
	SESSION_CLOSE_CLIENT_CLOSED,      /* the client closed without QUIT */
	SESSION_CLOSE_RESET,              /* a connection error (reset, TLS alert) */
	SESSION_CLOSE_NO_HELLO,           /* closed before a ClientHello (TCP checks) */
	SESSION_CLOSE_HANDSHAKE,          /* the TLS handshake failed */
	SESSION_CLOSE_HANDSHAKE_TIMEOUT,  /* no handshake within handshake_timeout */
	SESSION_CLOSE_BUFFER_LIMIT,       /* unread answers passed the hard bound */
	SESSION_CLOSE_DRAIN_TIMEOUT,      /* its last output not read within the grace */
	SESSION_CLOSE_ABORTED,            /* immediate stop (second signal) */
	SESSION_CLOSE_INTERNAL,           /* out of memory, an event that failed */
};
#define SESSION_CLOSE_COUNT 13

enum session_state {
	SESSION_HANDSHAKE,    /* TLS handshake under way (handshake_timeout) */
	SESSION_ESTABLISHED,  /* reading requests (idle_timeout) */
	SESSION_CLOSING,      /* QUIT sent or received, or protocol error
			       * (grace_timeout once sluice sent QUIT or a
			       * shutdown began; none when the client quit) */
	SESSION_DRAINING,     /* all answered and QUIT queued, output unread
			       * (cut off after a drain period without
			       * progress) */
	SESSION_CLOSED,       /* close_notify sent; lingering before close(2) */
};

/* Owned by its worker (linked in its loop's sessions); freed by session_free. */
struct session {
	uint32_t magic;
	enum session_state state;
	struct loop *loop;
	struct config *cfg;              /* snapshot lc lives in; one reference
					  * (limits come from the worker's current
					  * snapshot: a reload applies to new work) */
	const struct config_listener *lc;
	struct pool *pool;
	struct bufferevent *bev;         /* owns the SSL and the socket */
	struct event *timer;             /* meaning depends on state */
	struct request_queue reqs;       /* arrival order; the head answers first */
	unsigned n_reqs;
	struct pool_client pc;           /* its placement in the pool (pool.c's) */
	/* The budget (session_over_budget, session_answer_fits). */
	uint64_t inflight_bytes;         /* bytes of requests not answered yet */
	unsigned n_inflight;             /* how many */
	uint64_t parked_bytes;           /* answers waiting for an earlier one */
	uint64_t passing_bytes;          /* answers taken, not yet in the output */
	uint32_t answer_estimate;        /* recent answer size (decaying maximum) */
	enum session_close_reason reason; /* why it ends, once known; COUNT: not yet */
	uint64_t last_active_ms;         /* last whole frame read or last answer, for idle_timeout */
	size_t drain_left;               /* DRAINING: output bytes at the last check */
	TAILQ_ENTRY(session) loop_link;
	unsigned read_paused:1;          /* EV_READ off for backpressure */
	unsigned read_done:1;            /* no further requests will be read */
	unsigned quit_sent:1;
	unsigned quit_received:1;
	char peer[64];                   /* "addr:port", for logs */
	/* Counted against max_connections_per_address (addr_limit.h);
	 * family 0: not counted. */
	struct addr_limit_key addr_key;
};

/* arg as a live session, or a crash that says so (callback entry). */
struct session *session_check(void *arg);
/* The first cause recorded is the one reported. */
void session_note_reason(struct session *s, enum session_close_reason r);
/* Its one timer, whose meaning depends on the state (session.c fires it). */
void session_arm(struct session *s, uint64_t ms);
/* The client's socket will close with a reset rather than a FIN queued
 * behind bytes it does not read: those would stay in the kernel until
 * TCP gives up. */
void session_reset_on_close(struct session *s);

/* Sets up its (empty) request queue and its record in the pool. */
void session_requests_init(struct session *s);
/* Requests still in the pool stop there; written ones become orphans. */
void session_release_requests(struct session *s);

/* Reads the frames that wait in the input, as far as the state, the budget
 * and the pool allow. */
void session_process(struct session *s);
/* Backpressure lifted: read again, starting with what is already buffered. */
void session_resume(struct session *s);
/* No further requests will be read (QUIT, a bad frame, grace over). 0, or
 * -1 when the session is being killed. */
int session_stop_reading(struct session *s);
/* Once every request is answered: QUIT (unless sent) and close_notify. */
void session_finish_when_done(struct session *s);
/* How long a DRAINING session may go without its client reading. */
uint64_t session_drain_period(const struct session *s);

#endif
