/*
 * config_schema — what a sluice.yaml may say (docs/CONFIG.md) and what it
 * means: the sections and their keys, the values sluice gives them, their
 * defaults and bounds, and the rules that tie keys and sections together.
 * Reads a document that config_yaml loaded into the structs of
 * config_types.h; config.c builds the snapshot from what it filled
 * (backend references, TLS contexts). Used by config.c only.
 */
#ifndef SLUICE_CONFIG_SCHEMA_H
#define SLUICE_CONFIG_SCHEMA_H

#include <stddef.h>
#include <yaml.h>

#include <sluice/config_types.h>
#include <sluice/config_yaml.h>
#include <sluice/tls_settings.h>

/* workers: at most this many; also the cap of workers: auto. */
#define CONFIG_SCHEMA_MAX_WORKERS 256

/* Sets what a file may leave out to its default, in a zeroed cfg. */
void config_schema_defaults(struct config *cfg);

/* Reads the document's root (NULL: the file is empty) into cfg: every
 * section by its table, each mapping's rules once it is read (crl: needs
 * client_ca:, group: needs user:). Every problem is reported through y.
 * Backend names are not resolved yet: config.c does that, with the other
 * rules between sections. */
void config_schema_apply(struct config_yaml *y, yaml_node_t *root, struct config *cfg);

/* For the TLS build of listen[i] (l): the key path that a problem it
 * reports (a certificates[] index or TLS_SECTION, and the key) is about,
 * into kpath; returns where that value was written, or where the entry or
 * section was when the key was not. */
const struct config_mark *config_schema_tls_where(const struct config_listener *l, size_t i,
						  long cert, enum tls_key key, char *kpath,
						  size_t len);

/* Frees what config_schema_apply allocated in cfg (names, paths,
 * listeners, backends); cfg itself, its path and its TLS contexts are the
 * caller's. */
void config_schema_clear(struct config *cfg);

#endif
