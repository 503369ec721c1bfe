/*
 * addr_limit — limits.max_connections_per_address: how many connections
 * each client address has open, in one table every worker shares, so the
 * limit holds however the kernel spreads clients over workers.
 */
#ifndef SLUICE_ADDR_LIMIT_H
#define SLUICE_ADDR_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

/* A client address without its port; an IPv4-mapped IPv6 address is the
 * IPv4 address. family 0: not an address that is counted. */
struct addr_limit_key {
	uint8_t family;
	uint8_t addr[16];
};

void addr_limit_key_from(struct addr_limit_key *k, const struct sockaddr *sa);

/* One more connection from k, unless it has max already (or the table
 * cannot grow): 0 taken, -1 refused. An uncounted key is always taken. */
int addr_limit_take(const struct addr_limit_key *k, uint64_t max);
/* The connection taken for k has closed. */
void addr_limit_give(const struct addr_limit_key *k);
/* How many k has open (tests). */
uint64_t addr_limit_count(const struct addr_limit_key *k);

#endif
