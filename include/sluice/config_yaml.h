/*
 * config_yaml — one configuration file as YAML, for the schema to walk:
 * the document and where each node was written, the value types of the
 * file format (strings, paths relative to the file, true/false, counts,
 * durations, sizes, enumerations), key tables applied to mappings, and
 * the error list: "file:line:col: key.path: message", every problem in
 * the file (up to CONFIG_YAML_MAX_ERRORS), line breaks and other control
 * characters escaped so that one problem is one line. Knows no key of
 * sluice's: config_schema holds the tables.
 */
#ifndef SLUICE_CONFIG_YAML_H
#define SLUICE_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include <sluice/config_types.h>

#define CONFIG_YAML_MAX_KEYS 32      /* per table: the seen mask is 32 bits */
#define CONFIG_YAML_MAX_ERRORS 50    /* past this, more lines help nobody */
#define CONFIG_YAML_KPATH 512        /* "backends.NAME.servers[12].address" */
#define CONFIG_YAML_LINE 8192        /* one error line: room for two long paths */

/* One file being read, from config_yaml_init to config_yaml_finish. */
struct config_yaml {
	const char *path;         /* as given: every message starts with it */
	char *dir;                /* absolute folder of the file, for relative paths */
	yaml_document_t doc;      /* valid while loaded */
	bool loaded;
	char *errors;             /* '\n'-separated lines */
	size_t len, cap;
	unsigned n_errors;        /* counts past the cap too: non-zero means failure */
};

/* Parses node (at key path kpath) into field; every problem is reported
 * through y before -1 is returned. */
typedef int (*config_yaml_parse_fn)(struct config_yaml *y, yaml_node_t *node,
				    const char *kpath, void *field);

/* One row of a mapping's key table; a table ends with a NULL name. */
struct config_yaml_key {
	const char *name;
	config_yaml_parse_fn parse;
	size_t offset;            /* of the field in the struct the table fills */
	bool required;
};

/* Which keys of a table a mapping set, and where their values start. */
struct config_yaml_seen {
	uint32_t mask;
	struct config_mark at[CONFIG_YAML_MAX_KEYS];
	unsigned key_line[CONFIG_YAML_MAX_KEYS];  /* a block value starts a line later */
};

/* The largest a count may be, and what makes more pointless (for the
 * message). */
struct config_yaml_bound {
	uint64_t max;
	const char *why;
};

/* One name of an enumeration; a list ends with a NULL name. */
struct config_yaml_enum {
	const char *name;
	int value;
};

/* ---- the file ---------------------------------------------------------- */

/* Starts on the file at path (kept, not copied): no error yet, nothing
 * read. -1 with errno set when the file's folder cannot be worked out;
 * y can still take errors and must still be finished. */
int config_yaml_init(struct config_yaml *y, const char *path);

/* Reads the file's document, which stays loaded until config_yaml_finish.
 * 0 with *root its root node, or NULL when the file holds no document or
 * an empty one (a second document is reported, and the first one still
 * returned); -1 once the reason was reported (cannot open, not YAML). */
int config_yaml_load(struct config_yaml *y, yaml_node_t **root);

/* Ends reading: frees the document and the folder. Returns the number of
 * errors and gives the text of the list to *errors (the caller frees it;
 * NULL when there was none, or no memory for it). */
unsigned config_yaml_finish(struct config_yaml *y, char **errors);

/* ---- errors ---------------------------------------------------------- */

/* Adds "PATH:LINE:COL: KPATH: message"; at and kpath may be NULL. */
void config_yaml_error(struct config_yaml *y, const struct config_mark *at, const char *kpath,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void config_yaml_oom(struct config_yaml *y, yaml_node_t *node, const char *kpath);

/* Key paths only ever feed messages: a cut-off one is harmless, so
 * callers need not check for truncation. */
void config_yaml_pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "kpath.name", or "name" at the top. */
void config_yaml_child_path(char *buf, size_t len, const char *kpath, const char *name);

/* ---- nodes ------------------------------------------------------------- */

/* Where node starts, 1-based like editors (libyaml counts from 0). */
struct config_mark config_yaml_mark(const yaml_node_t *node);
/* "a mapping", "a sequence", "a scalar", "an empty value", "nothing". */
const char *config_yaml_type_name(const yaml_node_t *node);
yaml_node_t *config_yaml_node(struct config_yaml *y, int index);

/* 0 when node is of type, else reported and -1. */
int config_yaml_expect(struct config_yaml *y, yaml_node_t *node, yaml_node_type_t type,
		       const char *kpath);
/* The scalar's text, or NULL once reported (not a scalar, a NUL inside). */
const char *config_yaml_scalar(struct config_yaml *y, yaml_node_t *node, const char *kpath);
/* The same, and an empty text is an error too. */
const char *config_yaml_nonempty(struct config_yaml *y, yaml_node_t *node, const char *kpath);

size_t config_yaml_seq_len(const yaml_node_t *node);
yaml_node_t *config_yaml_seq_item(struct config_yaml *y, yaml_node_t *node, size_t i);
/* Checks node is a non-empty sequence ("must list at least one <what>")
 * and allocates one zeroed item of size per entry, their number in *n;
 * NULL once reported. */
void *config_yaml_seq_alloc(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    size_t size, const char *what, size_t *n);

/* ---- key tables -------------------------------------------------------- */

/* Applies a key table to a mapping node, base being the struct its
 * offsets are into: unknown, duplicate and missing keys are reported
 * here, values by each key's parser. -1 when node is not a mapping. */
int config_yaml_walk(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		     const struct config_yaml_key *keys, void *base,
		     struct config_yaml_seen *seen);
/* Where the mapping's value for name was written, or NULL when unset. */
const struct config_mark *config_yaml_seen_at(const struct config_yaml_seen *seen,
					      const struct config_yaml_key *keys,
					      const char *name);

/* ---- values ------------------------------------------------------------ */

/* Decimal digits only: no sign, no 0x, no exponent, no separators; 0 or
 * -1 (also on overflow). */
int config_yaml_number(const char *text, uint64_t *out);
/* A count of something: a whole number from 1 to bound->max. */
int config_yaml_count(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		      const struct config_yaml_bound *bound, uint64_t *out);
int config_yaml_count_uint(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   const struct config_yaml_bound *bound, unsigned *out);
/* One of values' names; *out is its value. */
int config_yaml_enum(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		     const struct config_yaml_enum *values, int *out);

/* Parsers for key tables (config_yaml_parse_fn), by the type of field:
 * char * (strdup'd, non-empty) for string, path (made absolute against
 * the file's folder) and file (a path readable now); bool for bool
 * (true or false only); uint64_t milliseconds for duration (more than 0)
 * and duration0 (0 allowed); uint64_t bytes for size. */
int config_yaml_parse_string(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			     void *field);
int config_yaml_parse_path(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field);
int config_yaml_parse_file(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field);
int config_yaml_parse_bool(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field);
int config_yaml_parse_duration(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			       void *field);
int config_yaml_parse_duration0(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field);
int config_yaml_parse_size(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field);

/* How an address's text becomes a struct config_addr (config_addr.h):
 * 0, or -1 with *why set. */
typedef int (*config_yaml_addr_fn)(const char *text, struct config_addr *a, const char **why);
/* A non-empty scalar made into *a by parse, which sets its socket address
 * (or host and port); its text (strdup'd) and mark are set here.
 * "invalid address \"TEXT\": why" otherwise. */
int config_yaml_parse_addr(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   struct config_addr *a, config_yaml_addr_fn parse);

#endif
