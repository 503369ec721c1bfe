/*
 * config_addr — the addresses a configuration names (listen, backend
 * servers, admin): "host:port" with a numeric IPv4 host or "localhost",
 * or "[v6]:port", made into a socket address without ever asking DNS; and
 * address equality, by which the schema finds an address listed twice and
 * a reload matches listeners and servers; and a socket address as the text
 * logs and metric labels show.
 */
#ifndef SLUICE_CONFIG_ADDR_H
#define SLUICE_CONFIG_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <sluice/config_types.h>

/* Sets a->ss and a->len from text (a->text and a->mark are the caller's).
 * 0, or -1 with a->len 0 and *why set to what is wrong, for the message
 * ("missing port (expected host:port)"). */
int config_addr_parse(const char *text, struct config_addr *a, const char **why);

/* The same for a backend server's address, which may also be a DNS name:
 * "app.internal:9000" sets a->host (lower-cased, malloc'd: the caller frees
 * it) and a->port, and leaves a->len 0. A text that is neither a valid
 * address nor a valid name is -1 with *why set. */
int config_addr_parse_server(const char *text, struct config_addr *a, const char **why);

/* sa as text for logs and metric labels: "10.0.0.7:9000",
 * "[fd00::7]:9000", or "unknown" for another family. */
void config_addr_format(const struct sockaddr *sa, char *out, size_t len);

/* Same name and port when either is a name; else same family, address and port (what a reload compares listeners and
 * servers by). False when either was never parsed (no text). */
bool config_addr_equal(const struct config_addr *a, const struct config_addr *b);

#endif
