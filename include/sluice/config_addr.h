/*
 * config_addr — the addresses a configuration names (listen, backend
 * servers, admin): "host:port" with a numeric IPv4 host or "localhost",
 * or "[v6]:port", made into a socket address without ever asking DNS; and
 * address equality, by which the schema finds an address listed twice and
 * a reload matches listeners and servers.
 */
#ifndef SLUICE_CONFIG_ADDR_H
#define SLUICE_CONFIG_ADDR_H

#include <stdbool.h>

#include <sluice/config_types.h>

/* Sets a->ss and a->len from text (a->text and a->mark are the caller's).
 * 0, or -1 with a->len 0 and *why set to what is wrong, for the message
 * ("missing port (expected host:port)"). */
int config_addr_parse(const char *text, struct config_addr *a, const char **why);

/* Same family, address and port (what a reload compares listeners and
 * servers by). False when either was never parsed (no text). */
bool config_addr_equal(const struct config_addr *a, const struct config_addr *b);

#endif
