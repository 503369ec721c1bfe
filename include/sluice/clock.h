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

#endif
