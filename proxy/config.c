/*
 * config — loads the YAML file into a struct config. Each mapping has a table
 * of keys {name, parser, offset, required}; one walker applies a table to a
 * mapping, checks after it the rules that tie keys together, then loads
 * every certificate. Every problem is reported, each with file:line:col and
 * the key's path, and only a fully valid file yields a snapshot.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/ssl.h>
#include <yaml.h>

#include <sluice/config.h>
#include <sluice/config_addr.h>
#include <sluice/log.h>
#include <sluice/tls.h>
#include <sluice/tls_tickets.h>
#include <sluice/units.h>

#define CONFIG_MAX_KEYS 32        /* per table: the seen mask is 32 bits */
#define CONFIG_MAX_ERRORS 50      /* past this, more lines help nobody */
#define CONFIG_KPATH 512          /* "backends.NAME.servers[12].address" */
#define CONFIG_LINE 8192          /* one error line: room for two long paths */
#define CONFIG_VERIFY_DEPTH 5
/* Other modules turn durations into timevals and nanoseconds; a year keeps
 * every such conversion far from overflow and is longer than any sane
 * timeout. */
#define CONFIG_MAX_DURATION_MS (UINT64_C(8760) * 3600 * 1000)
#define CONFIG_MAX_FRAME UINT64_C(0xFFFFFFFF)

/*
 * Upper bounds of the counts (docs/CONFIG.md gives the reasons too). Far
 * above any sane setting, they turn a typo (an extra digit or three) into
 * an error at load rather than a daemon that tries to open a billion
 * descriptors or threads.
 */
struct config_bound {
	uint64_t max;
	const char *why;          /* what makes more than max pointless */
};

/* 256 is more CPUs than nearly any host has. */
static const struct config_bound config_max_workers = {
	256, "more threads than CPUs only contend, and each opens its own backend connections",
};
/* With 256 workers, 262144 connections to one server: more than any
 * backend accepts. */
static const struct config_bound config_max_backend_conns = {
	1024, "per server and per worker: workers multiply it",
};
/* Queued requests of one backend in one worker, each holding its frame. */
static const struct config_bound config_max_pending = {
	1048576, "requests queued that long would outlast any queue_timeout",
};
/* What is left of fs.nr_open leaves room for backends and listeners. */
static const struct config_bound config_max_clients = {
	1000000, "each client needs a file descriptor, and Linux allows a process "
	"at most fs.nr_open, 1048576 by default",
};
/* 5 intermediates (the default) is already a deep PKI. */
static const struct config_bound config_max_verify_depth = {
	100, "OpenSSL's own limit",
};

/* Parse state for one config_load call. */
struct config_cx {
	const char *path;         /* as given: every message starts with it */
	char *dir;                /* absolute folder of the file, for relative paths */
	yaml_document_t *doc;
	struct config *cfg;
	char *errors;             /* '\n'-separated lines */
	size_t len, cap;
	unsigned n_errors;
	bool tls_failed;          /* the tls: section being parsed had an error */
	bool *tls_bad;            /* per listener: skip loading its certificates */
};

typedef int (*config_parse_fn)(struct config_cx *cx, yaml_node_t *node,
			       const char *kpath, void *field);

struct config_key {
	const char *name;
	config_parse_fn parse;
	size_t offset;            /* of the field in the section's struct */
	bool required;
};

/* Which keys of a table a mapping set, and where their values start. */
struct config_seen {
	uint32_t mask;
	struct config_mark at[CONFIG_MAX_KEYS];
	unsigned key_line[CONFIG_MAX_KEYS];  /* a block value starts a line later */
};

/* ---- errors ---------------------------------------------------------- */

static void
config_append(struct config_cx *cx, const char *line, size_t n)
{
	size_t need = cx->len + n + 2;
	char *p;

	if (need > cx->cap) {
		size_t cap = cx->cap != 0 ? cx->cap * 2 : 1024;

		while (cap < need)
			cap *= 2;
		p = realloc(cx->errors, cap);
		if (p == NULL)
			return;  /* the count still makes the load fail */
		cx->errors = p;
		cx->cap = cap;
	}
	if (cx->len > 0)
		cx->errors[cx->len++] = '\n';
	memcpy(cx->errors + cx->len, line, n);
	cx->len += n;
	cx->errors[cx->len] = '\0';
}

/* Keys and values come from the file: a line break in them (a plain scalar
 * folded over a blank line, "\n" in quotes) must not split one problem
 * over two lines, nor a terminal escape reach the operator's terminal. */
static void
config_escape_controls(char *line, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	char out[CONFIG_LINE];
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
static void __attribute__((format(printf, 4, 5)))
config_error(struct config_cx *cx, const struct config_mark *at,
	     const char *kpath, const char *fmt, ...)
{
	char line[CONFIG_LINE];
	va_list ap;
	int n;

	if (++cx->n_errors > CONFIG_MAX_ERRORS) {
		if (cx->n_errors == CONFIG_MAX_ERRORS + 1) {
			snprintf(line, sizeof(line), "%s: too many errors, stopping here",
				 cx->path);
			config_append(cx, line, strlen(line));
		}
		return;
	}
	if (at != NULL)
		n = snprintf(line, sizeof(line), "%s:%u:%u: ", cx->path, at->line, at->column);
	else
		n = snprintf(line, sizeof(line), "%s: ", cx->path);
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
	config_escape_controls(line, sizeof(line));
	config_append(cx, line, strlen(line));
}

/* libyaml counts from 0; editors and people from 1. */
static struct config_mark
config_mark_of(const yaml_node_t *node)
{
	struct config_mark m = {
		.line = (unsigned)node->start_mark.line + 1,
		.column = (unsigned)node->start_mark.column + 1,
	};
	return m;
}

static void
config_oom(struct config_cx *cx, yaml_node_t *node, const char *kpath)
{
	struct config_mark at = config_mark_of(node);

	config_error(cx, &at, kpath, "out of memory");
}

/* ---- node access ------------------------------------------------------- */

static const char *
config_type_name(const yaml_node_t *node)
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

static int
config_expect(struct config_cx *cx, yaml_node_t *node, yaml_node_type_t type,
	      const char *kpath)
{
	static const char *const names[] = {
		[YAML_SCALAR_NODE] = "a scalar",
		[YAML_SEQUENCE_NODE] = "a sequence",
		[YAML_MAPPING_NODE] = "a mapping",
	};
	struct config_mark at = config_mark_of(node);

	if (node->type == type)
		return 0;
	config_error(cx, &at, kpath, "expected %s, found %s", names[type],
		     config_type_name(node));
	return -1;
}

/* The scalar's text, or NULL once reported. A NUL inside the text (possible
 * with "\0" in double quotes) would silently cut names and paths short. */
static const char *
config_scalar(struct config_cx *cx, yaml_node_t *node, const char *kpath)
{
	const char *text;
	struct config_mark at = config_mark_of(node);

	if (config_expect(cx, node, YAML_SCALAR_NODE, kpath) < 0)
		return NULL;
	text = (const char *)node->data.scalar.value;
	if (strlen(text) != node->data.scalar.length) {
		config_error(cx, &at, kpath, "contains a NUL character");
		return NULL;
	}
	return text;
}

static const char *
config_nonempty(struct config_cx *cx, yaml_node_t *node, const char *kpath)
{
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);

	if (text != NULL && text[0] == '\0') {
		config_error(cx, &at, kpath, "must not be empty");
		return NULL;
	}
	return text;
}

static yaml_node_t *
config_node(struct config_cx *cx, int index)
{
	return yaml_document_get_node(cx->doc, index);
}

static size_t
config_seq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

static yaml_node_t *
config_seq_item(struct config_cx *cx, yaml_node_t *node, size_t i)
{
	return config_node(cx, node->data.sequence.items.start[i]);
}

/* Key paths only ever feed messages: a cut-off one is harmless, so callers
 * need not check for truncation. */
static void __attribute__((format(printf, 3, 4)))
config_pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void
config_child_path(char *buf, size_t len, const char *kpath, const char *name)
{
	if (kpath[0] == '\0')
		config_pathf(buf, len, "%s", name);
	else
		config_pathf(buf, len, "%s.%s", kpath, name);
}

/* ---- the table walker -------------------------------------------------- */

static const struct config_key *
config_find_key(const struct config_key *keys, const char *name, unsigned *index)
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
config_unknown_key(struct config_cx *cx, const struct config_mark *at,
		   const char *kpath, const struct config_key *keys)
{
	char known[512] = "";
	size_t n = 0;

	for (unsigned i = 0; keys[i].name != NULL && n < sizeof(known); i++) {
		int k = snprintf(known + n, sizeof(known) - n, "%s%s", i > 0 ? ", " : "",
				 keys[i].name);

		if (k > 0)
			n += (size_t)k;
	}
	config_error(cx, at, kpath, "unknown key (expected one of: %s)", known);
}

static void
config_walk_pair(struct config_cx *cx, yaml_node_pair_t *pair, const char *kpath,
		 const struct config_key *keys, void *base, struct config_seen *seen)
{
	yaml_node_t *key = config_node(cx, pair->key);
	yaml_node_t *value = config_node(cx, pair->value);
	struct config_mark at = config_mark_of(key);
	const struct config_key *k;
	const char *name;
	char child[CONFIG_KPATH];
	unsigned i = 0;

	name = config_scalar(cx, key, kpath);
	if (name == NULL)
		return;
	config_child_path(child, sizeof(child), kpath, name);
	k = config_find_key(keys, name, &i);
	if (k == NULL) {
		config_unknown_key(cx, &at, child, keys);
		return;
	}
	if (seen->mask & (UINT32_C(1) << i)) {
		config_error(cx, &at, child, "duplicate key (first set at line %u)",
			     seen->key_line[i]);
		return;
	}
	seen->mask |= UINT32_C(1) << i;
	seen->at[i] = config_mark_of(value);
	seen->key_line[i] = at.line;
	k->parse(cx, value, child, (char *)base + k->offset);
}

/* Applies a key table to a mapping node: unknown, duplicate and missing
 * keys are reported here, values by each key's parser. */
static int
config_walk(struct config_cx *cx, yaml_node_t *node, const char *kpath,
	    const struct config_key *keys, void *base, struct config_seen *seen)
{
	struct config_mark at = config_mark_of(node);
	char child[CONFIG_KPATH];

	memset(seen, 0, sizeof(*seen));
	if (config_expect(cx, node, YAML_MAPPING_NODE, kpath) < 0)
		return -1;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++)
		config_walk_pair(cx, p, kpath, keys, base, seen);
	for (unsigned i = 0; keys[i].name != NULL; i++) {
		if (keys[i].required && !(seen->mask & (UINT32_C(1) << i))) {
			config_child_path(child, sizeof(child), kpath, keys[i].name);
			config_error(cx, &at, child, "missing required key");
		}
	}
	return 0;
}

/* Where a key's value was written, or NULL when the mapping lacks it. */
static const struct config_mark *
config_seen_at(const struct config_seen *seen, const struct config_key *keys,
	       const char *name)
{
	unsigned i = 0;

	if (config_find_key(keys, name, &i) == NULL || !(seen->mask & (UINT32_C(1) << i)))
		return NULL;
	return &seen->at[i];
}

/* ---- scalar types ------------------------------------------------------ */

static int
config_parse_string(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		    void *field)
{
	char **dst = field;
	const char *text = config_nonempty(cx, node, kpath);

	if (text == NULL)
		return -1;
	*dst = strdup(text);
	if (*dst == NULL) {
		config_oom(cx, node, kpath);
		return -1;
	}
	return 0;
}

/* Relative paths hang off the configuration file's folder, not the current
 * one, so `sluice -c /etc/sluice/sluice.yaml` works from anywhere. */
static int
config_parse_path(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  void *field)
{
	char **dst = field;
	const char *text = config_nonempty(cx, node, kpath);
	size_t n;

	if (text == NULL)
		return -1;
	if (text[0] == '/') {
		*dst = strdup(text);
	} else {
		while (text[0] == '.' && text[1] == '/')
			text += 2;
		size_t dlen = strlen(cx->dir);
		const char *sep = dlen > 0 && cx->dir[dlen - 1] == '/' ? "" : "/";

		n = dlen + 1 + strlen(text) + 1;
		*dst = malloc(n);
		if (*dst != NULL)
			snprintf(*dst, n, "%s%s%s", cx->dir, sep, text);
	}
	if (*dst == NULL) {
		config_oom(cx, node, kpath);
		return -1;
	}
	return 0;
}

/* A file that must be readable now (ocsp, crl, ticket_keys), so the error
 * names the key that points at it rather than the section. */
static int
config_parse_file(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  void *field)
{
	char **dst = field;
	struct config_mark at = config_mark_of(node);

	if (config_parse_path(cx, node, kpath, field) < 0)
		return -1;
	if (access(*dst, R_OK) != 0) {
		config_error(cx, &at, kpath, "cannot read %s: %s", *dst, strerror(errno));
		return -1;
	}
	return 0;
}

/* The key file is checked here, so that a bad line is reported at the
 * ticket_keys key with its own line number; the keys themselves are
 * loaded again with the certificates. */
static int
config_parse_ticket_keys(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			 void *field)
{
	char **dst = field;
	struct config_mark at = config_mark_of(node);
	char err[CONFIG_LINE];

	if (config_parse_file(cx, node, kpath, field) < 0)
		return -1;
	if (tls_ticket_keys_check_file(*dst, err, sizeof(err)) < 0) {
		config_error(cx, &at, kpath, "%s", err);
		return -1;
	}
	return 0;
}

/* Only true and false: YAML 1.1's yes/no/on/off turn country codes and
 * typos into booleans. */
static int
config_parse_bool(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  void *field)
{
	bool *dst = field;
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);

	if (text == NULL)
		return -1;
	if (strcmp(text, "true") == 0) {
		*dst = true;
	} else if (strcmp(text, "false") == 0) {
		*dst = false;
	} else {
		config_error(cx, &at, kpath, "expected true or false, found \"%s\"", text);
		return -1;
	}
	return 0;
}

/* Decimal digits only: no sign, no 0x, no exponent, no separators. */
static int
config_number(const char *text, uint64_t *out)
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
static int
config_count(struct config_cx *cx, yaml_node_t *node, const char *kpath,
	     const struct config_bound *bound, uint64_t *out)
{
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);

	if (text == NULL)
		return -1;
	if (config_number(text, out) < 0) {
		config_error(cx, &at, kpath,
			     "expected a whole number from 1 to %llu, found \"%s\"",
			     (unsigned long long)bound->max, text);
		return -1;
	}
	if (*out > bound->max) {
		config_error(cx, &at, kpath, "%s is too many: at most %llu (%s)", text,
			     (unsigned long long)bound->max, bound->why);
		return -1;
	}
	if (*out == 0) {
		config_error(cx, &at, kpath, "must be at least 1");
		return -1;
	}
	return 0;
}

static int
config_count_uint(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  const struct config_bound *bound, unsigned *dst)
{
	uint64_t v;

	if (config_count(cx, node, kpath, bound, &v) < 0)
		return -1;
	*dst = (unsigned)v;   /* every bound fits an unsigned */
	return 0;
}

static int
config_parse_backend_conns(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			   void *field)
{
	return config_count_uint(cx, node, kpath, &config_max_backend_conns, field);
}

static int
config_parse_max_pending(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			 void *field)
{
	return config_count_uint(cx, node, kpath, &config_max_pending, field);
}

static int
config_parse_verify_depth(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			  void *field)
{
	return config_count_uint(cx, node, kpath, &config_max_verify_depth, field);
}

static int
config_parse_max_clients(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			 void *field)
{
	return config_count(cx, node, kpath, &config_max_clients, field);
}

static int
config_duration(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		bool zero_ok, uint64_t *dst)
{
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);
	uint64_t v;

	if (text == NULL)
		return -1;
	if (units_parse_duration(text, &v) < 0) {
		config_error(cx, &at, kpath, "invalid duration \"%s\": expected a whole "
			     "number and a unit among ms, s, m, h (e.g. 250ms, 5s, 2m)", text);
		return -1;
	}
	if (v == 0 && !zero_ok) {
		config_error(cx, &at, kpath, "must be greater than 0");
		return -1;
	}
	if (v > CONFIG_MAX_DURATION_MS) {
		config_error(cx, &at, kpath, "%s is too long: at most 8760h (one year)", text);
		return -1;
	}
	*dst = v;
	return 0;
}

static int
config_parse_duration(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		      void *field)
{
	return config_duration(cx, node, kpath, false, field);
}

/* For waits where 0 means "do not wait" (shutdown.grace_timeout). */
static int
config_parse_duration0(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		       void *field)
{
	return config_duration(cx, node, kpath, true, field);
}

static int
config_parse_size(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  void *field)
{
	uint64_t *dst = field;
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);

	if (text == NULL)
		return -1;
	if (units_parse_size(text, dst) < 0) {
		config_error(cx, &at, kpath, "invalid size \"%s\": expected a whole number "
			     "and a unit among B, KiB, MiB, GiB (e.g. 512B, 1MiB)", text);
		return -1;
	}
	return 0;
}

struct config_enum {
	const char *name;
	int value;
};

static int
config_enum(struct config_cx *cx, yaml_node_t *node, const char *kpath,
	    const struct config_enum *values, int *out)
{
	const char *text = config_scalar(cx, node, kpath);
	struct config_mark at = config_mark_of(node);
	char list[256] = "";
	size_t n = 0;

	if (text == NULL)
		return -1;
	for (const struct config_enum *e = values; e->name != NULL; e++) {
		if (strcmp(e->name, text) == 0) {
			*out = e->value;
			return 0;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      e == values ? "" : " | ", e->name);
	}
	config_error(cx, &at, kpath, "expected %s, found \"%s\"", list, text);
	return -1;
}

static int
config_parse_min_version(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			 void *field)
{
	static const struct config_enum values[] = {
		{ "TLSv1.2", TLS1_2_VERSION },
		{ "TLSv1.3", TLS1_3_VERSION },
		{ NULL, 0 },
	};

	return config_enum(cx, node, kpath, values, field);
}

static int
config_parse_client_verify(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			   void *field)
{
	static const struct config_enum values[] = {
		{ "required", TLS_VERIFY_REQUIRED },
		{ "optional", TLS_VERIFY_OPTIONAL },
		{ NULL, 0 },
	};
	enum tls_client_verify *dst = field;
	int v;

	if (config_enum(cx, node, kpath, values, &v) < 0)
		return -1;
	*dst = (enum tls_client_verify)v;
	return 0;
}

static int
config_parse_log_level(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		       void *field)
{
	static const struct config_enum values[] = {
		{ "error", LOG_ERROR },
		{ "warn", LOG_WARN },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
		{ NULL, 0 },
	};
	enum log_level *dst = field;
	int v;

	if (config_enum(cx, node, kpath, values, &v) < 0)
		return -1;
	*dst = (enum log_level)v;
	return 0;
}

/* "auto" is stored as 0 and resolved by config_workers(). */
static int
config_parse_workers(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		     void *field)
{
	unsigned *dst = field;
	uint64_t v;

	if (node->type == YAML_SCALAR_NODE &&
	    strcmp((const char *)node->data.scalar.value, "auto") == 0) {
		*dst = 0;
		return 0;
	}
	if (node->type == YAML_SCALAR_NODE &&
	    config_number((const char *)node->data.scalar.value, &v) < 0) {
		struct config_mark at = config_mark_of(node);

		config_error(cx, &at, kpath, "expected auto or a number of threads, found \"%s\"",
			     (const char *)node->data.scalar.value);
		return -1;
	}
	return config_count_uint(cx, node, kpath, &config_max_workers, dst);
}

/* ---- addresses --------------------------------------------------------- */

static int
config_parse_address(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		     void *field)
{
	struct config_addr *a = field;
	const char *text = config_nonempty(cx, node, kpath);
	const char *why = NULL;

	a->mark = config_mark_of(node);
	if (text == NULL)
		return -1;
	if (config_addr_parse(text, a, &why) < 0) {
		config_error(cx, &a->mark, kpath, "invalid address \"%s\": %s", text, why);
		return -1;
	}
	a->text = strdup(text);
	if (a->text == NULL) {
		config_oom(cx, node, kpath);
		return -1;
	}
	return 0;
}

/* ---- sequences ---------------------------------------------------------- */

/* Checks node is a non-empty sequence and allocates n items of size each. */
static void *
config_seq_alloc(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		 size_t size, const char *what, size_t *n)
{
	struct config_mark at = config_mark_of(node);
	void *items;

	*n = 0;
	if (config_expect(cx, node, YAML_SEQUENCE_NODE, kpath) < 0)
		return NULL;
	if (config_seq_len(node) == 0) {
		config_error(cx, &at, kpath, "must list at least one %s", what);
		return NULL;
	}
	items = calloc(config_seq_len(node), size);
	if (items == NULL) {
		config_oom(cx, node, kpath);
		return NULL;
	}
	*n = config_seq_len(node);
	return items;
}

/* Needs the whole tls section: fills alpn and n_alpn. */
static int
config_parse_alpn(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		  void *field)
{
	struct tls_settings *tls = field;
	char ipath[CONFIG_KPATH];
	size_t n;

	tls->alpn = config_seq_alloc(cx, node, kpath, sizeof(char *), "protocol", &n);
	if (tls->alpn == NULL)
		return -1;
	tls->n_alpn = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_seq_item(cx, node, i);
		struct config_mark at = config_mark_of(item);

		config_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		if (config_parse_string(cx, item, ipath, &tls->alpn[i]) < 0)
			continue;
		if (strlen(tls->alpn[i]) > 255)
			config_error(cx, &at, ipath, "a protocol name is at most 255 bytes");
	}
	return 0;
}

/* ---- where TLS problems point ------------------------------------------- */

/* The key a problem found while building a listener's TLS context names
 * (tls.h), and where its value's mark is kept: in the certificates[] entry
 * or in the tls: section. */
struct config_tls_where {
	const char *name;         /* NULL: the entry or section as a whole */
	bool in_cert;
	size_t mark;              /* offset in struct config_cert_marks or config_tls_marks */
};

static const struct config_tls_where config_tls_where[TLS_KEY_COUNT] = {
	[TLS_KEY_NONE] = { NULL, false, 0 },
	[TLS_KEY_CERT] = { "cert", true, offsetof(struct config_cert_marks, cert) },
	[TLS_KEY_KEY] = { "key", true, offsetof(struct config_cert_marks, key) },
	[TLS_KEY_OCSP] = { "ocsp", true, offsetof(struct config_cert_marks, ocsp) },
	[TLS_KEY_CIPHERS] = { "ciphers", false, offsetof(struct config_tls_marks, ciphers) },
	[TLS_KEY_CIPHERSUITES] = { "ciphersuites", false, offsetof(struct config_tls_marks, ciphersuites) },
	[TLS_KEY_ALPN] = { "alpn", false, offsetof(struct config_tls_marks, alpn) },
	[TLS_KEY_CLIENT_CA] = { "client_ca", false, offsetof(struct config_tls_marks, client_ca) },
	[TLS_KEY_CRL] = { "crl", false, offsetof(struct config_tls_marks, crl) },
	[TLS_KEY_TICKET_KEYS] = { "ticket_keys", false, offsetof(struct config_tls_marks, ticket_keys) },
};

static struct config_mark *
config_tls_mark(void *owner, const struct config_tls_where *w)
{
	return (struct config_mark *)((char *)owner + w->mark);
}

/* Keeps where the values of a certificates[] entry (in_cert: owner is its
 * config_cert_marks) or of a tls: section (its config_tls_marks) were
 * written, for config_tls_report. */
static void
config_keep_tls_marks(void *owner, bool in_cert, const struct config_seen *seen,
		      const struct config_key *keys)
{
	for (size_t k = 0; k < TLS_KEY_COUNT; k++) {
		const struct config_tls_where *w = &config_tls_where[k];
		const struct config_mark *at;

		if (w->name == NULL || w->in_cert != in_cert)
			continue;
		at = config_seen_at(seen, keys, w->name);
		if (at != NULL)
			*config_tls_mark(owner, w) = *at;
	}
}

/* ---- sections ------------------------------------------------------------ */

static const struct config_key config_cert_keys[] = {
	{ "cert", config_parse_path, offsetof(struct tls_cert_files, cert), true },
	{ "key", config_parse_path, offsetof(struct tls_cert_files, key), true },
	{ "ocsp", config_parse_file, offsetof(struct tls_cert_files, ocsp), false },
	{ NULL, NULL, 0, false },
};

/* Needs the whole listener: fills tls.certs, tls.n_certs and tls_at.certs. */
static int
config_parse_certificates(struct config_cx *cx, yaml_node_t *node, const char *kpath,
			  void *field)
{
	struct config_listener *l = field;
	struct tls_settings *tls = &l->tls;
	struct config_seen seen;
	char ipath[CONFIG_KPATH];
	size_t n;

	tls->certs = config_seq_alloc(cx, node, kpath, sizeof(*tls->certs), "certificate", &n);
	if (tls->certs == NULL)
		return -1;
	l->tls_at.certs = calloc(n, sizeof(*l->tls_at.certs));
	if (l->tls_at.certs == NULL) {
		free(tls->certs);
		tls->certs = NULL;
		config_oom(cx, node, kpath);
		return -1;
	}
	tls->n_certs = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_seq_item(cx, node, i);

		config_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		l->tls_at.certs[i].entry = config_mark_of(item);
		if (config_walk(cx, item, ipath, config_cert_keys, &tls->certs[i], &seen) == 0)
			config_keep_tls_marks(&l->tls_at.certs[i], true, &seen, config_cert_keys);
	}
	return 0;
}

/* Offsets into struct config_listener: the values go to its tls settings,
 * and the certificates' marks to tls_at beside them. */
#define CONFIG_TLS_FIELD(name) offsetof(struct config_listener, tls.name)
static const struct config_key config_tls_keys[] = {
	{ "certificates", config_parse_certificates, 0, true },
	{ "min_version", config_parse_min_version, CONFIG_TLS_FIELD(min_version), false },
	{ "ciphers", config_parse_string, CONFIG_TLS_FIELD(ciphers), false },
	{ "ciphersuites", config_parse_string, CONFIG_TLS_FIELD(ciphersuites), false },
	{ "sni_required", config_parse_bool, CONFIG_TLS_FIELD(sni_required), false },
	{ "alpn", config_parse_alpn, offsetof(struct config_listener, tls), false },
	{ "alpn_required", config_parse_bool, CONFIG_TLS_FIELD(alpn_required), false },
	{ "client_ca", config_parse_path, CONFIG_TLS_FIELD(client_ca), false },
	{ "client_verify", config_parse_client_verify, CONFIG_TLS_FIELD(client_verify), false },
	{ "verify_depth", config_parse_verify_depth, CONFIG_TLS_FIELD(verify_depth), false },
	{ "crl", config_parse_file, CONFIG_TLS_FIELD(crl), false },
	{ "session_tickets", config_parse_bool, CONFIG_TLS_FIELD(session_tickets), false },
	{ "ticket_keys", config_parse_ticket_keys, CONFIG_TLS_FIELD(ticket_keys), false },
	{ NULL, NULL, 0, false },
};

/* A key that only means something with client_ca (client_verify, crl,
 * verify_depth) is an error without it, rather than silently ignored. */
static void
config_needs_client_ca(struct config_cx *cx, const struct tls_settings *tls, const char *kpath,
		       const struct config_seen *seen, const char *key, const char *why)
{
	const struct config_mark *at = config_seen_at(seen, config_tls_keys, key);
	char child[CONFIG_KPATH];

	if (at == NULL || tls->client_ca != NULL ||
	    config_seen_at(seen, config_tls_keys, "client_ca") != NULL)
		return;
	config_child_path(child, sizeof(child), kpath, key);
	config_error(cx, at, child, "needs client_ca, %s", why);
}

static void
config_check_tls(struct config_cx *cx, struct tls_settings *tls, const char *kpath,
		 const struct config_seen *seen)
{
	const struct config_mark *verify = config_seen_at(seen, config_tls_keys, "client_verify");
	const struct config_mark *alpn_req = config_seen_at(seen, config_tls_keys, "alpn_required");
	const struct config_mark *keys = config_seen_at(seen, config_tls_keys, "ticket_keys");
	char child[CONFIG_KPATH];

	config_needs_client_ca(cx, tls, kpath, seen, "client_verify",
			       "the CA file that client certificates are checked against");
	config_needs_client_ca(cx, tls, kpath, seen, "crl",
			       "the CA file whose client certificates it revokes");
	config_needs_client_ca(cx, tls, kpath, seen, "verify_depth",
			       "the CA file that client certificate chains lead to");
	if (verify == NULL && tls->client_ca != NULL)
		tls->client_verify = TLS_VERIFY_REQUIRED;
	if (alpn_req != NULL && tls->alpn_required && tls->n_alpn == 0 &&
	    !config_seen_at(seen, config_tls_keys, "alpn")) {
		config_child_path(child, sizeof(child), kpath, "alpn_required");
		config_error(cx, alpn_req, child, "needs alpn, the list of protocols to accept");
	}
	if (keys != NULL && !tls->session_tickets) {
		config_child_path(child, sizeof(child), kpath, "ticket_keys");
		config_error(cx, keys, child, "has no use with session_tickets: false");
	}
}

/* Needs the whole listener: fills tls and tls_at. */
static int
config_parse_tls(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		 void *field)
{
	struct config_listener *l = field;
	struct config_seen seen;

	unsigned before = cx->n_errors;

	l->tls_at.section = config_mark_of(node);
	if (config_walk(cx, node, kpath, config_tls_keys, l, &seen) == 0) {
		config_keep_tls_marks(&l->tls_at, false, &seen, config_tls_keys);
		config_check_tls(cx, &l->tls, kpath, &seen);
	}
	/* A half-parsed section (a NULL in the ALPN list, a default where a
	 * value was refused) must not reach OpenSSL. */
	cx->tls_failed = cx->n_errors != before;
	return cx->tls_failed ? -1 : 0;
}

static const struct config_key config_listener_keys[] = {
	{ "address", config_parse_address, offsetof(struct config_listener, addr), true },
	{ "backend", config_parse_string, offsetof(struct config_listener, backend_name), true },
	{ "tls", config_parse_tls, 0, true },
	{ NULL, NULL, 0, false },
};

static void
config_listener_init(struct config_listener *l)
{
	l->tls.min_version = TLS1_2_VERSION;
	l->tls.session_tickets = true;
	l->tls.client_verify = TLS_VERIFY_NONE;
	l->tls.verify_depth = CONFIG_VERIFY_DEPTH;
}

/* Needs the whole struct config: fills listeners and n_listeners. */
static int
config_parse_listen(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		    void *field)
{
	struct config *cfg = field;
	struct config_seen seen;
	const struct config_mark *at;
	char ipath[CONFIG_KPATH];
	size_t n;

	cfg->listeners = config_seq_alloc(cx, node, kpath, sizeof(*cfg->listeners),
					  "listener", &n);
	if (cfg->listeners == NULL)
		return -1;
	cfg->n_listeners = n;
	cx->tls_bad = calloc(n, sizeof(*cx->tls_bad));
	if (cx->tls_bad == NULL) {
		config_oom(cx, node, kpath);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct config_listener *l = &cfg->listeners[i];
		yaml_node_t *item = config_seq_item(cx, node, i);

		config_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		config_listener_init(l);
		l->mark = config_mark_of(item);
		cx->tls_failed = false;
		if (config_walk(cx, item, ipath, config_listener_keys, l, &seen) < 0)
			continue;
		cx->tls_bad[i] = cx->tls_failed;
		at = config_seen_at(&seen, config_listener_keys, "backend");
		if (at != NULL)
			l->backend_mark = *at;
	}
	return 0;
}

static const struct config_key config_server_keys[] = {
	{ "address", config_parse_address, offsetof(struct config_server, addr), true },
	{ NULL, NULL, 0, false },
};

/* Needs the whole backend: fills servers and n_servers. */
static int
config_parse_servers(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		     void *field)
{
	struct config_backend *b = field;
	struct config_seen seen;
	char ipath[CONFIG_KPATH];
	size_t n;

	b->servers = config_seq_alloc(cx, node, kpath, sizeof(*b->servers), "server", &n);
	if (b->servers == NULL)
		return -1;
	b->n_servers = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_seq_item(cx, node, i);

		config_pathf(ipath, sizeof(ipath), "%s[%zu]", kpath, i);
		b->servers[i].mark = config_mark_of(item);
		config_walk(cx, item, ipath, config_server_keys, &b->servers[i], &seen);
	}
	return 0;
}

static const struct config_key config_backend_keys[] = {
	{ "servers", config_parse_servers, 0, true },
	{ "connections", config_parse_backend_conns, offsetof(struct config_backend, connections), false },
	{ "connect_timeout", config_parse_duration, offsetof(struct config_backend, connect_timeout_ms), false },
	{ "queue_timeout", config_parse_duration, offsetof(struct config_backend, queue_timeout_ms), false },
	{ "request_timeout", config_parse_duration, offsetof(struct config_backend, request_timeout_ms), false },
	{ "max_pending", config_parse_max_pending, offsetof(struct config_backend, max_pending), false },
	{ NULL, NULL, 0, false },
};

static void
config_backend_init(struct config_backend *b)
{
	b->connections = 4;
	b->connect_timeout_ms = 2000;
	b->queue_timeout_ms = 5000;
	b->request_timeout_ms = 30000;
	b->max_pending = 4096;
}

/* The same server twice would share one metrics label and double its
 * share of the load without saying so. */
static void
config_check_servers(struct config_cx *cx, struct config_backend *b, const char *kpath)
{
	char ipath[CONFIG_KPATH];

	for (size_t i = 0; i < b->n_servers; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!config_addr_equal(&b->servers[i].addr, &b->servers[j].addr))
				continue;
			config_pathf(ipath, sizeof(ipath), "%s.servers[%zu].address", kpath, i);
			config_error(cx, &b->servers[i].addr.mark, ipath,
				     "%s is already listed as servers[%zu]",
				     b->servers[i].addr.text, j);
			break;
		}
	}
}

/* Backend names end up in logs and metric labels: keep them plain. */
static int
config_backend_name_ok(const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return 0;
	}
	return 1;
}

static struct config_backend *
config_find_backend(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (cfg->backends[i].name != NULL && strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	}
	return NULL;
}

static void
config_parse_backend_pair(struct config_cx *cx, yaml_node_pair_t *pair,
			  const char *kpath, struct config *cfg)
{
	yaml_node_t *key = config_node(cx, pair->key);
	struct config_mark at = config_mark_of(key);
	struct config_backend *b, *first;
	struct config_seen seen;
	const char *name = config_scalar(cx, key, kpath);
	char child[CONFIG_KPATH];

	if (name == NULL)
		return;
	config_child_path(child, sizeof(child), kpath, name);
	if (!config_backend_name_ok(name)) {
		config_error(cx, &at, child, "a backend name uses only letters, "
			     "digits, '_', '-' and '.'");
		return;
	}
	first = config_find_backend(cfg, name);
	if (first != NULL) {
		config_error(cx, &at, child, "duplicate key (first set at line %u)",
			     first->mark.line);
		return;
	}
	b = &cfg->backends[cfg->n_backends++];
	config_backend_init(b);
	b->mark = at;
	b->name = strdup(name);
	if (b->name == NULL) {
		config_oom(cx, key, child);
		return;
	}
	if (config_walk(cx, config_node(cx, pair->value), child, config_backend_keys,
			b, &seen) == 0)
		config_check_servers(cx, b, child);
}

/* Needs the whole struct config: fills backends and n_backends. */
static int
config_parse_backends(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		      void *field)
{
	struct config *cfg = field;
	struct config_mark at = config_mark_of(node);
	size_t n;

	if (config_expect(cx, node, YAML_MAPPING_NODE, kpath) < 0)
		return -1;
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n == 0) {
		config_error(cx, &at, kpath, "must define at least one backend");
		return -1;
	}
	cfg->backends = calloc(n, sizeof(*cfg->backends));
	if (cfg->backends == NULL) {
		config_oom(cx, node, kpath);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		config_parse_backend_pair(cx, &node->data.mapping.pairs.start[i], kpath, cfg);
	return 0;
}

static const struct config_key config_limits_keys[] = {
	{ "max_connections", config_parse_max_clients, offsetof(struct config_limits, max_connections), false },
	{ "max_frame_size", config_parse_size, offsetof(struct config_limits, max_frame_size), false },
	{ "client_buffer", config_parse_size, offsetof(struct config_limits, client_buffer), false },
	{ "handshake_timeout", config_parse_duration, offsetof(struct config_limits, handshake_timeout_ms), false },
	{ "idle_timeout", config_parse_duration, offsetof(struct config_limits, idle_timeout_ms), false },
	{ NULL, NULL, 0, false },
};

static void
config_check_frame_size(struct config_cx *cx, const struct config_limits *lim,
			const struct config_mark *at)
{
	char size[32];

	units_format_size(lim->max_frame_size, size, sizeof(size));
	if (lim->max_frame_size < 6)
		config_error(cx, at, "limits.max_frame_size", "%s is too small: the "
			     "6-byte frame prefix alone needs 6B", size);
	else if (lim->max_frame_size > CONFIG_MAX_FRAME)
		config_error(cx, at, "limits.max_frame_size", "%s is too large: "
			     "total_len is a 32-bit field, so at most 4294967295B "
			     "(4GiB - 1)", size);
}

/* A client must be able to have at least one whole frame in flight, or its
 * first large request would stall it for good. */
static void
config_check_client_buffer(struct config_cx *cx, const struct config_limits *lim,
			   const struct config_mark *frame_at,
			   const struct config_mark *buffer_at)
{
	char frame[32], buffer[32];

	if (lim->client_buffer >= lim->max_frame_size)
		return;
	units_format_size(lim->max_frame_size, frame, sizeof(frame));
	units_format_size(lim->client_buffer, buffer, sizeof(buffer));
	if (buffer_at != NULL)
		config_error(cx, buffer_at, "limits.client_buffer", "%s is smaller than "
			     "max_frame_size (%s): a client must be able to hold one "
			     "whole frame in its buffer", buffer, frame);
	else
		config_error(cx, frame_at, "limits.max_frame_size", "%s is larger than "
			     "client_buffer (%s by default): raise limits.client_buffer "
			     "to at least %s so a client can hold one whole frame",
			     frame, buffer, frame);
}

static int
config_parse_limits(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		    void *field)
{
	struct config_limits *lim = field;
	const struct config_mark *frame_at, *buffer_at;
	struct config_seen seen;
	unsigned before = cx->n_errors;

	if (config_walk(cx, node, kpath, config_limits_keys, lim, &seen) < 0)
		return -1;
	if (cx->n_errors != before)
		return -1;  /* a size failed to parse: comparing defaults would mislead */
	frame_at = config_seen_at(&seen, config_limits_keys, "max_frame_size");
	buffer_at = config_seen_at(&seen, config_limits_keys, "client_buffer");
	if (frame_at != NULL)
		config_check_frame_size(cx, lim, frame_at);
	if (cx->n_errors == before && (frame_at != NULL || buffer_at != NULL))
		config_check_client_buffer(cx, lim, frame_at, buffer_at);
	return 0;
}

static const struct config_key config_shutdown_keys[] = {
	{ "grace_timeout", config_parse_duration0, offsetof(struct config, grace_timeout_ms), false },
	{ NULL, NULL, 0, false },
};

static const struct config_key config_admin_keys[] = {
	{ "address", config_parse_address, offsetof(struct config, admin_addr), true },
	{ NULL, NULL, 0, false },
};

static const struct config_key config_log_keys[] = {
	{ "level", config_parse_log_level, offsetof(struct config, log_level), false },
	{ NULL, NULL, 0, false },
};

/* shutdown:, admin: and log: keep their few fields directly in struct
 * config, so their tables' offsets are into struct config. */
static int
config_parse_shutdown(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		      void *field)
{
	struct config_seen seen;

	return config_walk(cx, node, kpath, config_shutdown_keys, field, &seen);
}

static int
config_parse_admin(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		   void *field)
{
	struct config *cfg = field;
	struct config_seen seen;

	if (config_walk(cx, node, kpath, config_admin_keys, cfg, &seen) < 0)
		return -1;
	cfg->has_admin = cfg->admin_addr.text != NULL;
	return 0;
}

static int
config_parse_log(struct config_cx *cx, yaml_node_t *node, const char *kpath,
		 void *field)
{
	struct config_seen seen;

	return config_walk(cx, node, kpath, config_log_keys, field, &seen);
}

static const struct config_key config_top_keys[] = {
	{ "workers", config_parse_workers, offsetof(struct config, workers), false },
	{ "user", config_parse_string, offsetof(struct config, user), false },
	{ "group", config_parse_string, offsetof(struct config, group), false },
	{ "listen", config_parse_listen, 0, true },
	{ "backends", config_parse_backends, 0, true },
	{ "limits", config_parse_limits, offsetof(struct config, limits), false },
	{ "shutdown", config_parse_shutdown, 0, false },
	{ "admin", config_parse_admin, 0, false },
	{ "log", config_parse_log, 0, false },
	{ NULL, NULL, 0, false },
};

/* ---- cross-section rules --------------------------------------------------- */

/* group: alone would change only the group of a process that keeps
 * running as root (process_drop_privileges keeps the uid it has): an
 * operator who wrote it meant to give up root, so say it cannot be done
 * that way instead of doing half of it. */
static void
config_check_identity(struct config_cx *cx, const struct config_seen *seen)
{
	const struct config_mark *group = config_seen_at(seen, config_top_keys, "group");

	if (group == NULL || config_seen_at(seen, config_top_keys, "user") != NULL)
		return;
	config_error(cx, group, "group", "needs user: without it sluice would go on "
		     "running as root with only its group changed");
}

static void
config_resolve_backends(struct config_cx *cx, struct config *cfg)
{
	char kpath[CONFIG_KPATH];

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		if (l->backend_name == NULL)
			continue;
		l->backend = config_find_backend(cfg, l->backend_name);
		/* Without a backends: section, that one error says enough. */
		if (l->backend != NULL || cfg->backends == NULL)
			continue;
		config_pathf(kpath, sizeof(kpath), "listen[%zu].backend", i);
		config_error(cx, &l->backend_mark, kpath,
			     "backend '%s' is not defined under backends", l->backend_name);
	}
}

static void
config_check_addresses(struct config_cx *cx, struct config *cfg)
{
	char kpath[CONFIG_KPATH];

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_addr *a = &cfg->listeners[i].addr;

		for (size_t j = 0; j < i; j++) {
			if (!config_addr_equal(a, &cfg->listeners[j].addr))
				continue;
			config_pathf(kpath, sizeof(kpath), "listen[%zu].address", i);
			config_error(cx, &a->mark, kpath, "%s is already used by listen[%zu]",
				     a->text, j);
			break;
		}
		if (cfg->has_admin && config_addr_equal(a, &cfg->admin_addr))
			config_error(cx, &cfg->admin_addr.mark, "admin.address",
				     "%s is already used by listen[%zu]", a->text, i);
	}
}

/* ---- certificates ----------------------------------------------------------- */

/* Where tls_ctx_build's problems go: the key they name, at its value
 * (listen[0].tls.certificates[1].key, listen[0].tls.ciphers); or, for
 * what concerns no one key, the certificates[] entry or the tls: mapping. */
struct config_tls_report {
	struct config_cx *cx;
	struct config_listener *l;
	size_t listener;
};

static void
config_tls_report(void *arg, long cert, enum tls_key key, const char *message)
{
	struct config_tls_report *r = arg;
	struct config_tls_marks *marks = &r->l->tls_at;
	bool in_cert = cert >= 0 && (size_t)cert < r->l->tls.n_certs;
	void *owner = in_cert ? (void *)&marks->certs[cert] : (void *)marks;
	const struct config_mark *at = in_cert ? &marks->certs[cert].entry : &marks->section;
	const struct config_tls_where *w = NULL;
	char base[CONFIG_KPATH], kpath[CONFIG_KPATH];

	if (in_cert)
		config_pathf(base, sizeof(base), "listen[%zu].tls.certificates[%ld]", r->listener, cert);
	else
		config_pathf(base, sizeof(base), "listen[%zu].tls", r->listener);
	config_pathf(kpath, sizeof(kpath), "%s", base);
	if ((unsigned)key < TLS_KEY_COUNT)
		w = &config_tls_where[key];
	/* A default value (no mark) has no line of its own: the entry's. */
	if (w != NULL && w->name != NULL && w->in_cert == in_cert &&
	    config_tls_mark(owner, w)->line != 0) {
		config_child_path(kpath, sizeof(kpath), base, w->name);
		at = config_tls_mark(owner, w);
	}
	config_error(r->cx, at, kpath, "%s", message);
}

/* Every certificate is loaded (a broken second or third one is reported
 * now rather than when SNI first picks it); unchanged contexts of the
 * running snapshot are taken over instead of built again. */
static void
config_load_listener_tls(struct config_cx *cx, struct config_listener *l, size_t i)
{
	struct tls_settings *tls = &l->tls;
	struct config_tls_report r = { cx, l, i };
	unsigned built = 0, reused = 0;

	if (tls->n_certs == 0 || cx->tls_bad == NULL || cx->tls_bad[i])
		return;
	for (size_t c = 0; c < tls->n_certs; c++) {
		if (tls->certs[c].cert == NULL || tls->certs[c].key == NULL)
			return;  /* already reported as missing or invalid */
	}
	l->tls_ctx = tls_ctx_build(tls, config_tls_report, &r);
	if (l->tls_ctx == NULL)
		return;
	tls_ctx_counts(l->tls_ctx, &built, &reused);
	cx->cfg->tls_built += built;
	cx->cfg->tls_reused += reused;
}

/* ---- reading the file --------------------------------------------------------- */

static void
config_syntax_error(struct config_cx *cx, const yaml_parser_t *parser)
{
	struct config_mark at = {
		.line = (unsigned)parser->problem_mark.line + 1,
		.column = (unsigned)parser->problem_mark.column + 1,
	};
	const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";

	if (parser->error == YAML_READER_ERROR) {
		config_error(cx, NULL, NULL, "syntax error: %s at byte %zu", problem,
			     parser->problem_offset);
	} else if (parser->error == YAML_MEMORY_ERROR) {
		config_error(cx, NULL, NULL, "out of memory while reading the file");
	} else if (parser->context != NULL) {
		config_error(cx, &at, NULL, "syntax error: %s (%s at line %u, column %u)",
			     problem, parser->context,
			     (unsigned)parser->context_mark.line + 1,
			     (unsigned)parser->context_mark.column + 1);
	} else {
		config_error(cx, &at, NULL, "syntax error: %s", problem);
	}
}

/* A second document would be silently ignored: say so instead. */
static void
config_check_single_document(struct config_cx *cx, yaml_parser_t *parser)
{
	yaml_document_t extra;
	yaml_node_t *root;
	struct config_mark at;

	if (!yaml_parser_load(parser, &extra)) {
		config_syntax_error(cx, parser);
		return;
	}
	root = yaml_document_get_root_node(&extra);
	if (root != NULL) {
		at = config_mark_of(root);
		config_error(cx, &at, NULL, "only one YAML document is allowed per file");
	}
	yaml_document_delete(&extra);
}

static void
config_apply_root(struct config_cx *cx, yaml_node_t *root)
{
	struct config_seen seen;
	struct config_mark at = config_mark_of(root);

	if (root->type != YAML_MAPPING_NODE) {
		config_error(cx, &at, NULL, "the file must be a mapping of keys "
			     "(listen:, backends:, ...), found %s", config_type_name(root));
		return;
	}
	config_walk(cx, root, "", config_top_keys, cx->cfg, &seen);
	config_check_identity(cx, &seen);
	config_resolve_backends(cx, cx->cfg);
	config_check_addresses(cx, cx->cfg);
	for (size_t i = 0; i < cx->cfg->n_listeners; i++)
		config_load_listener_tls(cx, &cx->cfg->listeners[i], i);
}

static void
config_parse_stream(struct config_cx *cx, FILE *fp)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;

	if (!yaml_parser_initialize(&parser)) {
		config_error(cx, NULL, NULL, "out of memory while reading the file");
		return;
	}
	yaml_parser_set_input_file(&parser, fp);
	if (!yaml_parser_load(&parser, &doc)) {
		config_syntax_error(cx, &parser);
		yaml_parser_delete(&parser);
		return;
	}
	cx->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	/* "---" alone is a document holding one empty scalar: empty too. */
	if (root == NULL || (root->type == YAML_SCALAR_NODE &&
			     root->data.scalar.length == 0 &&
			     root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
		config_error(cx, NULL, NULL, "the file is empty: it needs at least "
			     "listen: and backends:");
	} else {
		config_check_single_document(cx, &parser);
		config_apply_root(cx, root);
	}
	cx->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

static void
config_read(struct config_cx *cx)
{
	struct stat st;
	FILE *fp = fopen(cx->path, "rb");

	if (fp == NULL) {
		config_error(cx, NULL, NULL, "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fileno(fp), &st) != 0) {
		config_error(cx, NULL, NULL, "cannot open: %s", strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		config_error(cx, NULL, NULL, "cannot open: %s", strerror(EISDIR));
	} else {
		config_parse_stream(cx, fp);
	}
	fclose(fp);
}

/* The file's folder as an absolute path, so that resolved paths still
 * point at the right files if the process changes folder later. */
static char *
config_dir_of(const char *path)
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

/* ---- lifetime ------------------------------------------------------------------- */

static void
config_tls_free(struct tls_settings *tls, struct config_tls_marks *marks)
{
	free(marks->certs);
	for (size_t i = 0; i < tls->n_certs; i++) {
		free(tls->certs[i].cert);
		free(tls->certs[i].key);
		free(tls->certs[i].ocsp);
	}
	free(tls->certs);
	for (size_t i = 0; i < tls->n_alpn; i++)
		free(tls->alpn[i]);
	free(tls->alpn);
	free(tls->ciphers);
	free(tls->ciphersuites);
	free(tls->client_ca);
	free(tls->crl);
	free(tls->ticket_keys);
}

static void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		free(l->addr.text);
		free(l->backend_name);
		config_tls_free(&l->tls, &l->tls_at);
		tls_ctx_free(l->tls_ctx);
	}
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->n_backends; i++) {
		struct config_backend *b = &cfg->backends[i];

		for (size_t s = 0; s < b->n_servers; s++)
			free(b->servers[s].addr.text);
		free(b->servers);
		free(b->name);
	}
	free(cfg->backends);
	free(cfg->admin_addr.text);
	free(cfg->user);
	free(cfg->group);
	free(cfg->path);
	free(cfg);
}

static struct config *
config_new(const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->refs = 1;
	cfg->path = strdup(path);
	if (cfg->path == NULL) {
		free(cfg);
		return NULL;
	}
	cfg->workers = 0;
	cfg->limits.max_connections = 10000;
	cfg->limits.max_frame_size = UINT64_C(1) << 20;
	cfg->limits.client_buffer = UINT64_C(4) << 20;
	cfg->limits.handshake_timeout_ms = 10000;
	cfg->limits.idle_timeout_ms = 300000;
	cfg->grace_timeout_ms = 5000;
	cfg->log_level = LOG_INFO;
	return cfg;
}

struct config *
config_load(const char *path, char **errors)
{
	struct config_cx cx = { .path = path };

	if (errors != NULL)
		*errors = NULL;
	cx.cfg = config_new(path);
	cx.dir = config_dir_of(path);
	if (cx.cfg == NULL || cx.dir == NULL)
		config_error(&cx, NULL, NULL, "cannot load: %s", strerror(errno));
	else
		config_read(&cx);
	free(cx.dir);
	free(cx.tls_bad);
	if (cx.n_errors == 0) {
		free(cx.errors);
		return cx.cfg;
	}
	if (cx.cfg != NULL)
		config_free(cx.cfg);
	if (errors != NULL)
		*errors = cx.errors != NULL ? cx.errors : strdup("out of memory");
	else
		free(cx.errors);
	return NULL;
}

struct config *
config_ref(struct config *cfg)
{
	__atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
	return cfg;
}

/* The last reference frees: acquire-release so the freeing thread sees every
 * write other holders made before letting go. */
void
config_unref(struct config *cfg)
{
	if (cfg == NULL)
		return;
	if (__atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

unsigned
config_workers(const struct config *cfg)
{
	long n;

	if (cfg->workers != 0)
		return cfg->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return (uint64_t)n > config_max_workers.max ? (unsigned)config_max_workers.max : (unsigned)n;
}

/* Every key of docs/CONFIG.md is implemented; a key accepted ahead of its
 * feature would be warned about here. */
void
config_warn_unsupported(const struct config *cfg)
{
	(void)cfg;
}
