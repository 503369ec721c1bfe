/*
 * oom — allocation failures on demand, for tests (docs/TESTING.md,
 * "Out-of-memory testing").
 *
 * Two hooks feed one counter:
 *   - libevent's own allocations (evbuffer_new, the chains that
 *     evbuffer_add and evbuffer_remove_buffer add, bufferevents, events,
 *     the timer heap) through event_set_mem_functions, which oom_install
 *     calls; it must run before libevent allocates anything;
 *   - sluice's malloc, calloc, realloc and strdup (request_new, sessions,
 *     pools, upstreams), when the program is linked with
 *     -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 *     (Makefile.am: OOM_WRAPS). The wrap only redirects calls made
 *     from the objects linked into the program, so the C library, OpenSSL
 *     and the sanitizers' allocators are untouched.
 *
 * While armed, every allocation through either hook counts; the nth..
 * (nth + count - 1)th from the moment of arming return NULL. Allocations
 * the test harness makes for itself (its sockets' bufferevents, its byte
 * logs) are bracketed by oom_hold/oom_release and neither count nor fail.
 * Single-threaded use only: the tests drive a worker's loop themselves.
 */
#ifndef SLUICE_TEST_OOM_H
#define SLUICE_TEST_OOM_H

#include <stdbool.h>

/* Routes libevent's allocations through the counter. Before any libevent
 * call that allocates (event_base_new, ...); idempotent. */
void oom_install(void);

/* Fails the nth (1: the next one) and the count - 1 following allocations
 * from now; resets the counters. */
void oom_arm(unsigned long nth, unsigned count);
/* Stops counting; the counters keep their values until the next arm. */
void oom_disarm(void);
bool oom_armed(void);

/* Allocations counted since the last arm, and how many of them failed. */
unsigned long oom_seen(void);
unsigned long oom_failed(void);

/* The harness's own allocations: neither counted nor failed (nestable). */
void oom_hold(void);
void oom_release(void);

/* Until oom_allow, every allocation fails, uncounted: the harness probes
 * how much room a libevent structure has left (nestable). */
void oom_deny(void);
void oom_allow(void);

/* Whether sluice's own malloc/calloc/realloc/strdup are counted too (the
 * program was linked with the --wrap options above). */
bool oom_wraps_libc(void);

#endif
