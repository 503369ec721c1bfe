/*
 * fake_upstream — what a pool unit test does in place of a backend: see
 * fake_upstream.c.
 */
#ifndef SLUICE_TEST_FAKE_UPSTREAM_H
#define SLUICE_TEST_FAKE_UPSTREAM_H

#include <stdbool.h>

#include <sluice/upstream.h>

/* The state upstream_new gives new connections [UPSTREAM_CONNECTED]. */
extern enum upstream_state fake_initial_state;

/* The bytes the pool moved to u's output. */
struct evbuffer *fake_wire(struct upstream *u);
/* The backend answers u's oldest written request: popped and returned
 * (the caller answers its client); a retiring connection closes after
 * its last answer. */
struct request *fake_answer(struct upstream *u);
/* The connection fails: written requests ERR UNAVAILABLE, BACKOFF (or
 * CLOSED when it was retiring). */
void fake_fail(struct upstream *u);
/* The connection (re)connects. */
void fake_connect(struct upstream *u);
/* The output passes its high-water mark, or drains below the low one. */
void fake_set_congested(struct upstream *u, bool congested);

#endif
