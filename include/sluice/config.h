/*
 * config — the YAML configuration (docs/CONFIG.md) as an immutable,
 * reference-counted snapshot. One loader serves `sluice -t`, start-up and
 * SIGHUP: it parses, validates and loads every certificate before anything
 * uses the result, so a snapshot that exists is a snapshot that works.
 * The snapshot's structs are in config_types.h, and config_addr_equal in
 * config_addr.h, both included here.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <sluice/config_addr.h>
#include <sluice/config_types.h>

/*
 * Loads, validates and prepares (certificates loaded, TLS contexts built) the
 * file at path. On success returns a snapshot holding one reference. On
 * failure returns NULL and, when errors is not NULL, sets *errors to a
 * malloc'd text of one line per problem found in the file, each
 * "path:line:column: key.path: message" (the caller frees it).
 */
struct config *config_load(const char *path, char **errors);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* Workers this snapshot asks for, with auto resolved to the CPU count. */
unsigned config_workers(const struct config *cfg);

/*
 * Logs one warning per key that the file sets but this version does not act
 * on yet (none at the moment): config_load accepts and validates them
 * silently so that `sluice -t` and a reload say the same thing; the daemon
 * calls this once per snapshot it starts serving.
 */
void config_warn_unsupported(const struct config *cfg);

#endif
