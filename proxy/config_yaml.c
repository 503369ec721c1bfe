/*
 * config_yaml — reads one configuration file with libyaml and walks it for
 * the schema: key tables applied to mappings, the file format's value
 * types, and every problem as one line "file:line:col: key.path: message",
 * control characters escaped. Nothing here knows a key of sluice's.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include <sluice/config_types.h>
#include <sluice/config_yaml.h>
#include <sluice/units.h>

/* Other modules turn durations into timevals and nanoseconds; a year keeps
 * every such conversion far from overflow and is longer than any sane
 * timeout. */
#define CONFIG_YAML_MAX_DURATION_MS (UINT64_C(8760) * 3600 * 1000)

/* ---- errors ------------------------------------------------------------ */

static void
config_yaml_append(struct config_yaml *y, const char *line, size_t n)
{
	size_t need = y->len + n + 2;
	char *p;

	if (need > y->cap) {
		size_t cap = y->cap != 0 ? y->cap * 2 : 1024;

		while (cap < need)
			cap *= 2;
		p = realloc(y->errors, cap);
		if (p == NULL)
			return;  /* the count still makes the load fail */
		y->errors = p;
		y->cap = cap;
	}
	if (y->len > 0)
		y->errors[y->len++] = '\n';
	memcpy(y->errors + y->len, line, n);
	y->len += n;
	y->errors[y->len] = '\0';
}

/* Keys and values come from the file: a line break in them (a plain scalar
 * folded over a blank line, "\n" in quotes) must not split one problem
 * over two lines, nor a terminal escape reach the operator's terminal. */
static void
config_yaml_escape(char *line, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char out[CONFIG_YAML_LINE];
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)line; *p != '\0' && o + 5 < sizeof(out); p++) {
		if (*p >= 0x20 && *p != 0x7f) {
			out[o++] = (char)*p;
			continue;
		}
		out[o++] = '\\';
		if (*p == '\n') {
			out[o++] = 'n';
		} else if (*p == '\t') {
			out[o++] = 't';
		} else if (*p == '\r') {
			out[o++] = 'r';
		} else {
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (o >= size)
		o = size - 1;
	memcpy(line, out, o);
	line[o] = '\0';
}

/* One line "PATH:LINE:COL: KPATH: message"; at and kpath may be NULL. */
void
config_yaml_error(struct config_yaml *y, const struct config_mark *at,
		  const char *kpath, const char *fmt, ...)
{
	char line[CONFIG_YAML_LINE];
	va_list ap;
	int n;

	if (++y->n_errors > CONFIG_YAML_MAX_ERRORS) {
		if (y->n_errors == CONFIG_YAML_MAX_ERRORS + 1) {
			snprintf(line, sizeof(line), "%s: too many errors, stopping here",
				 y->path);
			config_yaml_append(y, line, strlen(line));
		}
		return;
	}
	if (at != NULL)
		n = snprintf(line, sizeof(line), "%s:%u:%u: ", y->path, at->line, at->column);
	else
		n = snprintf(line, sizeof(line), "%s: ", y->path);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;  /* a huge path: the line is all path */
	if (kpath != NULL && kpath[0] != '\0') {
		int k = snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", kpath);

		if (k > 0 && (size_t)k < sizeof(line) - (size_t)n)
			n += k;
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	config_yaml_escape(line, sizeof(line));
	config_yaml_append(y, line, strlen(line));
}

/* libyaml counts from 0; editors and people from 1. */
struct config_mark
config_yaml_mark(const yaml_node_t *node)
{
	struct config_mark m = {
		.line = (unsigned)node->start_mark.line + 1,
		.column = (unsigned)node->start_mark.column + 1,
	};
	return m;
}

void
config_yaml_oom(struct config_yaml *y, yaml_node_t *node, const char *kpath)
{
	struct config_mark at = config_yaml_mark(node);

	config_yaml_error(y, &at, kpath, "out of memory");
}

/* ---- nodes ------------------------------------------------------------- */

const char *
config_yaml_type_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
		if (node->data.scalar.length == 0 &&
		    node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return "an empty value";
		return "a scalar";
	default:
		return "nothing";
	}
}

int
config_yaml_expect(struct config_yaml *y, yaml_node_t *node, yaml_node_type_t type,
		   const char *kpath)
{
	static const char *const names[] = {
		[YAML_SCALAR_NODE] = "a scalar",
		[YAML_SEQUENCE_NODE] = "a sequence",
		[YAML_MAPPING_NODE] = "a mapping",
	};
	struct config_mark at = config_yaml_mark(node);

	if (node->type == type)
		return 0;
	config_yaml_error(y, &at, kpath, "expected %s, found %s", names[type],
			  config_yaml_type_name(node));
	return -1;
}

/* The scalar's text, or NULL once reported. A NUL inside the text (possible
 * with "\0" in double quotes) would silently cut names and paths short. */
const char *
config_yaml_scalar(struct config_yaml *y, yaml_node_t *node, const char *kpath)
{
	const char *text;
	struct config_mark at = config_yaml_mark(node);

	if (config_yaml_expect(y, node, YAML_SCALAR_NODE, kpath) < 0)
		return NULL;
	text = (const char *)node->data.scalar.value;
	if (strlen(text) != node->data.scalar.length) {
		config_yaml_error(y, &at, kpath, "contains a NUL character");
		return NULL;
	}
	return text;
}

const char *
config_yaml_nonempty(struct config_yaml *y, yaml_node_t *node, const char *kpath)
{
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);

	if (text != NULL && text[0] == '\0') {
		config_yaml_error(y, &at, kpath, "must not be empty");
		return NULL;
	}
	return text;
}

yaml_node_t *
config_yaml_node(struct config_yaml *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

size_t
config_yaml_seq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

yaml_node_t *
config_yaml_seq_item(struct config_yaml *y, yaml_node_t *node, size_t i)
{
	return config_yaml_node(y, node->data.sequence.items.start[i]);
}

/* Checks node is a non-empty sequence and allocates n items of size each. */
void *
config_yaml_seq_alloc(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		      size_t size, const char *what, size_t *n)
{
	struct config_mark at = config_yaml_mark(node);
	void *items;

	*n = 0;
	if (config_yaml_expect(y, node, YAML_SEQUENCE_NODE, kpath) < 0)
		return NULL;
	if (config_yaml_seq_len(node) == 0) {
		config_yaml_error(y, &at, kpath, "must list at least one %s", what);
		return NULL;
	}
	items = calloc(config_yaml_seq_len(node), size);
	if (items == NULL) {
		config_yaml_oom(y, node, kpath);
		return NULL;
	}
	*n = config_yaml_seq_len(node);
	return items;
}

/* Key paths only ever feed messages: a cut-off one is harmless, so callers
 * need not check for truncation. */
void
config_yaml_pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void
config_yaml_child_path(char *buf, size_t len, const char *kpath, const char *name)
{
	if (kpath[0] == '\0')
		config_yaml_pathf(buf, len, "%s", name);
	else
		config_yaml_pathf(buf, len, "%s.%s", kpath, name);
}

/* ---- key tables -------------------------------------------------------- */

static const struct config_yaml_key *
config_yaml_find_key(const struct config_yaml_key *keys, const char *name, unsigned *index)
{
	for (unsigned i = 0; keys[i].name != NULL; i++) {
		if (strcmp(keys[i].name, name) == 0) {
			*index = i;
			return &keys[i];
		}
	}
	return NULL;
}

static void
config_yaml_unknown_key(struct config_yaml *y, const struct config_mark *at,
			const char *kpath, const struct config_yaml_key *keys)
{
	char known[512] = "";
	size_t n = 0;

	for (unsigned i = 0; keys[i].name != NULL && n < sizeof(known); i++) {
		int k = snprintf(known + n, sizeof(known) - n, "%s%s", i > 0 ? ", " : "",
				 keys[i].name);

		if (k > 0)
			n += (size_t)k;
	}
	config_yaml_error(y, at, kpath, "unknown key (expected one of: %s)", known);
}

static void
config_yaml_walk_pair(struct config_yaml *y, yaml_node_pair_t *pair, const char *kpath,
		      const struct config_yaml_key *keys, void *base, struct config_yaml_seen *seen)
{
	yaml_node_t *key = config_yaml_node(y, pair->key);
	yaml_node_t *value = config_yaml_node(y, pair->value);
	struct config_mark at = config_yaml_mark(key);
	const struct config_yaml_key *k;
	const char *name;
	char child[CONFIG_YAML_KPATH];
	unsigned i = 0;

	name = config_yaml_scalar(y, key, kpath);
	if (name == NULL)
		return;
	config_yaml_child_path(child, sizeof(child), kpath, name);
	k = config_yaml_find_key(keys, name, &i);
	if (k == NULL) {
		config_yaml_unknown_key(y, &at, child, keys);
		return;
	}
	if (seen->mask & (UINT32_C(1) << i)) {
		config_yaml_error(y, &at, child, "duplicate key (first set at line %u)",
				  seen->key_line[i]);
		return;
	}
	seen->mask |= UINT32_C(1) << i;
	seen->at[i] = config_yaml_mark(value);
	seen->key_line[i] = at.line;
	k->parse(y, value, child, (char *)base + k->offset);
}

/* Applies a key table to a mapping node: unknown, duplicate and missing
 * keys are reported here, values by each key's parser. */
int
config_yaml_walk(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		 const struct config_yaml_key *keys, void *base, struct config_yaml_seen *seen)
{
	struct config_mark at = config_yaml_mark(node);
	char child[CONFIG_YAML_KPATH];

	memset(seen, 0, sizeof(*seen));
	if (config_yaml_expect(y, node, YAML_MAPPING_NODE, kpath) < 0)
		return -1;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++)
		config_yaml_walk_pair(y, p, kpath, keys, base, seen);
	for (unsigned i = 0; keys[i].name != NULL; i++) {
		if (keys[i].required && !(seen->mask & (UINT32_C(1) << i))) {
			config_yaml_child_path(child, sizeof(child), kpath, keys[i].name);
			config_yaml_error(y, &at, child, "missing required key");
		}
	}
	return 0;
}

/* Where a key's value was written, or NULL when the mapping lacks it. */
const struct config_mark *
config_yaml_seen_at(const struct config_yaml_seen *seen, const struct config_yaml_key *keys,
		    const char *name)
{
	unsigned i = 0;

	if (config_yaml_find_key(keys, name, &i) == NULL || !(seen->mask & (UINT32_C(1) << i)))
		return NULL;
	return &seen->at[i];
}

/* ---- values ------------------------------------------------------------ */

/* Decimal digits only: no sign, no 0x, no exponent, no separators. */
int
config_yaml_number(const char *text, uint64_t *out)
{
	uint64_t v = 0;

	if (text[0] == '\0')
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* A count of something: a whole number from 1 to bound->max. */
int
config_yaml_count(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		  const struct config_yaml_bound *bound, uint64_t *out)
{
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);

	if (text == NULL)
		return -1;
	if (config_yaml_number(text, out) < 0) {
		config_yaml_error(y, &at, kpath,
				  "expected a whole number from 1 to %llu, found \"%s\"",
				  (unsigned long long)bound->max, text);
		return -1;
	}
	if (*out > bound->max) {
		config_yaml_error(y, &at, kpath, "%s is too many: at most %llu (%s)", text,
				  (unsigned long long)bound->max, bound->why);
		return -1;
	}
	if (*out == 0) {
		config_yaml_error(y, &at, kpath, "must be at least 1");
		return -1;
	}
	return 0;
}

int
config_yaml_count_uint(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       const struct config_yaml_bound *bound, unsigned *dst)
{
	uint64_t v;

	if (config_yaml_count(y, node, kpath, bound, &v) < 0)
		return -1;
	*dst = (unsigned)v;   /* every bound fits an unsigned */
	return 0;
}

int
config_yaml_enum(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		 const struct config_yaml_enum *values, int *out)
{
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);
	char list[256] = "";
	size_t n = 0;

	if (text == NULL)
		return -1;
	for (const struct config_yaml_enum *e = values; e->name != NULL; e++) {
		if (strcmp(e->name, text) == 0) {
			*out = e->value;
			return 0;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      e == values ? "" : " | ", e->name);
	}
	config_yaml_error(y, &at, kpath, "expected %s, found \"%s\"", list, text);
	return -1;
}

int
config_yaml_parse_string(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			 void *field)
{
	char **dst = field;
	const char *text = config_yaml_nonempty(y, node, kpath);

	if (text == NULL)
		return -1;
	*dst = strdup(text);
	if (*dst == NULL) {
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	return 0;
}

/* Relative paths hang off the configuration file's folder, not the current
 * one, so `sluice -c /etc/sluice/sluice.yaml` works from anywhere. */
int
config_yaml_parse_path(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       void *field)
{
	char **dst = field;
	const char *text = config_yaml_nonempty(y, node, kpath);
	size_t n;

	if (text == NULL)
		return -1;
	if (text[0] == '/') {
		*dst = strdup(text);
	} else {
		while (text[0] == '.' && text[1] == '/')
			text += 2;
		size_t dlen = strlen(y->dir);
		const char *sep = dlen > 0 && y->dir[dlen - 1] == '/' ? "" : "/";

		n = dlen + 1 + strlen(text) + 1;
		*dst = malloc(n);
		if (*dst != NULL)
			snprintf(*dst, n, "%s%s%s", y->dir, sep, text);
	}
	if (*dst == NULL) {
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	return 0;
}

/* A file that must be readable now (ocsp, crl, ticket_keys), so the error
 * names the key that points at it rather than the section. */
int
config_yaml_parse_file(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       void *field)
{
	char **dst = field;
	struct config_mark at = config_yaml_mark(node);

	if (config_yaml_parse_path(y, node, kpath, field) < 0)
		return -1;
	if (access(*dst, R_OK) != 0) {
		config_yaml_error(y, &at, kpath, "cannot read %s: %s", *dst, strerror(errno));
		return -1;
	}
	return 0;
}

/* Only true and false: YAML 1.1's yes/no/on/off turn country codes and
 * typos into booleans. */
int
config_yaml_parse_bool(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       void *field)
{
	bool *dst = field;
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);

	if (text == NULL)
		return -1;
	if (strcmp(text, "true") == 0) {
		*dst = true;
	} else if (strcmp(text, "false") == 0) {
		*dst = false;
	} else {
		config_yaml_error(y, &at, kpath, "expected true or false, found \"%s\"", text);
		return -1;
	}
	return 0;
}

static int
config_yaml_duration(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		     bool zero_ok, uint64_t *dst)
{
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);
	uint64_t v;

	if (text == NULL)
		return -1;
	if (units_parse_duration(text, &v) < 0) {
		config_yaml_error(y, &at, kpath, "invalid duration \"%s\": expected a whole "
				  "number and a unit among ms, s, m, h (e.g. 250ms, 5s, 2m)", text);
		return -1;
	}
	if (v == 0 && !zero_ok) {
		config_yaml_error(y, &at, kpath, "must be greater than 0");
		return -1;
	}
	if (v > CONFIG_YAML_MAX_DURATION_MS) {
		config_yaml_error(y, &at, kpath, "%s is too long: at most 8760h (one year)", text);
		return -1;
	}
	*dst = v;
	return 0;
}

int
config_yaml_parse_duration(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			   void *field)
{
	return config_yaml_duration(y, node, kpath, false, field);
}

/* For waits where 0 means "do not wait" (shutdown.grace_timeout). */
int
config_yaml_parse_duration0(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			    void *field)
{
	return config_yaml_duration(y, node, kpath, true, field);
}

int
config_yaml_parse_size(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       void *field)
{
	uint64_t *dst = field;
	const char *text = config_yaml_scalar(y, node, kpath);
	struct config_mark at = config_yaml_mark(node);

	if (text == NULL)
		return -1;
	if (units_parse_size(text, dst) < 0) {
		config_yaml_error(y, &at, kpath, "invalid size \"%s\": expected a whole number "
				  "and a unit among B, KiB, MiB, GiB (e.g. 512B, 1MiB)", text);
		return -1;
	}
	return 0;
}

/* ---- reading the file -------------------------------------------------- */

static void
config_yaml_syntax_error(struct config_yaml *y, const yaml_parser_t *parser)
{
	struct config_mark at = {
		.line = (unsigned)parser->problem_mark.line + 1,
		.column = (unsigned)parser->problem_mark.column + 1,
	};
	const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";

	if (parser->error == YAML_READER_ERROR) {
		config_yaml_error(y, NULL, NULL, "syntax error: %s at byte %zu", problem,
				  parser->problem_offset);
	} else if (parser->error == YAML_MEMORY_ERROR) {
		config_yaml_error(y, NULL, NULL, "out of memory while reading the file");
	} else if (parser->context != NULL) {
		config_yaml_error(y, &at, NULL, "syntax error: %s (%s at line %u, column %u)",
				  problem, parser->context,
				  (unsigned)parser->context_mark.line + 1,
				  (unsigned)parser->context_mark.column + 1);
	} else {
		config_yaml_error(y, &at, NULL, "syntax error: %s", problem);
	}
}

/* A second document would be silently ignored: say so instead. */
static void
config_yaml_single_document(struct config_yaml *y, yaml_parser_t *parser)
{
	yaml_document_t extra;
	yaml_node_t *root;
	struct config_mark at;

	if (!yaml_parser_load(parser, &extra)) {
		config_yaml_syntax_error(y, parser);
		return;
	}
	root = yaml_document_get_root_node(&extra);
	if (root != NULL) {
		at = config_yaml_mark(root);
		config_yaml_error(y, &at, NULL, "only one YAML document is allowed per file");
	}
	yaml_document_delete(&extra);
}

/* The file's folder as an absolute path, so that resolved paths still
 * point at the right files if the process changes folder later. */
static char *
config_yaml_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - path) : 0;
	char cwd[PATH_MAX], *dir;
	size_t n;

	if (slash == path)
		return strdup("/");
	if (path[0] == '/')
		return strndup(path, dlen);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	while (dlen >= 2 && path[0] == '.' && path[1] == '/') {
		path += 2;
		dlen -= 2;
	}
	if (slash == NULL || dlen == 0 || (dlen == 1 && path[0] == '.'))
		return strdup(cwd);
	n = strlen(cwd) + 1 + dlen + 1;
	dir = malloc(n);
	if (dir != NULL)
		snprintf(dir, n, "%s/%.*s", cwd, (int)dlen, path);
	return dir;
}


int
config_yaml_init(struct config_yaml *y, const char *path)
{
	memset(y, 0, sizeof(*y));
	y->path = path;
	y->dir = config_yaml_dir_of(path);
	return y->dir != NULL ? 0 : -1;
}

/* Loads the first document from fp into y->doc, then makes sure there is
 * no second one (which libyaml would leave unread). */
static int
config_yaml_parse(struct config_yaml *y, FILE *fp, yaml_node_t **root)
{
	yaml_parser_t parser;

	if (!yaml_parser_initialize(&parser)) {
		config_yaml_error(y, NULL, NULL, "out of memory while reading the file");
		return -1;
	}
	yaml_parser_set_input_file(&parser, fp);
	if (!yaml_parser_load(&parser, &y->doc)) {
		config_yaml_syntax_error(y, &parser);
		yaml_parser_delete(&parser);
		return -1;
	}
	y->loaded = true;
	*root = yaml_document_get_root_node(&y->doc);
	/* "---" alone is a document holding one empty scalar: empty too. */
	if (*root == NULL || ((*root)->type == YAML_SCALAR_NODE &&
			      (*root)->data.scalar.length == 0 &&
			      (*root)->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
		*root = NULL;
	else
		config_yaml_single_document(y, &parser);
	yaml_parser_delete(&parser);
	return 0;
}

int
config_yaml_load(struct config_yaml *y, yaml_node_t **root)
{
	struct stat st;
	FILE *fp = fopen(y->path, "rb");
	int rc = -1;

	*root = NULL;
	if (fp == NULL) {
		config_yaml_error(y, NULL, NULL, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) != 0)
		config_yaml_error(y, NULL, NULL, "cannot open: %s", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		config_yaml_error(y, NULL, NULL, "cannot open: %s", strerror(EISDIR));
	else
		rc = config_yaml_parse(y, fp, root);
	fclose(fp);
	return rc;
}

unsigned
config_yaml_finish(struct config_yaml *y, char **errors)
{
	if (y->loaded)
		yaml_document_delete(&y->doc);
	y->loaded = false;
	free(y->dir);
	y->dir = NULL;
	*errors = y->errors;
	y->errors = NULL;
	y->len = y->cap = 0;
	return y->n_errors;
}

int
config_yaml_parse_addr(struct config_yaml *y, yaml_node_t *node, const char *kpath,
		       struct config_addr *a, config_yaml_addr_fn parse)
{
	const char *text = config_yaml_nonempty(y, node, kpath);
	const char *why = NULL;

	a->mark = config_yaml_mark(node);
	if (text == NULL)
		return -1;
	if (parse(text, a, &why) < 0) {
		config_yaml_error(y, &a->mark, kpath, "invalid address \"%s\": %s", text, why);
		return -1;
	}
	a->text = strdup(text);
	if (a->text == NULL) {
		free(a->host);
		a->host = NULL;
		config_yaml_oom(y, node, kpath);
		return -1;
	}
	return 0;
}
