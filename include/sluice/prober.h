/*
 * prober — a worker's active health checks of one backend's servers (SPEC
 * §8 "Health"): every interval one probe frame per server over one of its
 * pool connections, answered into the server's health state and never to a
 * client; and the end of passive ejections. Driven by the worker's tick.
 */
#ifndef SLUICE_PROBER_H
#define SLUICE_PROBER_H

#include <stdint.h>

struct pool;

/* Times out and sends probes, ends ejections that ran out, and publishes
 * each server's up gauge. */
void prober_tick(struct pool *p, uint64_t now_ms);

#endif
