/*
 * clock — monotonic milliseconds for deadlines (timeouts, backoff, request
 * durations). Never the wall clock: a time jump must not fire or stall
 * timeouts.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>

uint64_t clock_ms(void);
/* Microseconds, for request durations. */
uint64_t clock_us(void);

/* now - then, or 0 when then is later: a timestamp taken after the caller
 * read its `now` (work done within the same tick) has not waited at all,
 * and an unsigned difference would wrap to an age of 584 million years. */
static inline uint64_t
clock_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

#endif
