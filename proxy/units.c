/*
 * units — parses and formats the durations ("250ms", "5s", "2m", "1h") and
 * sizes ("512B", "16KiB", "1MiB", "2GiB") of the configuration. Strict on
 * purpose: a number without its unit is a mistake waiting to happen.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sluice/units.h>

struct units_unit {
	const char *name;
	uint64_t factor;
};

/* Largest first: formatting takes the first unit that divides exactly. */
static const struct units_unit units_durations[] = {
	{ "h", 3600000 },
	{ "m", 60000 },
	{ "s", 1000 },
	{ "ms", 1 },
	{ NULL, 0 },
};

static const struct units_unit units_sizes[] = {
	{ "GiB", UINT64_C(1) << 30 },
	{ "MiB", UINT64_C(1) << 20 },
	{ "KiB", UINT64_C(1) << 10 },
	{ "B", 1 },
	{ NULL, 0 },
};

static int
units_is_space(char c)
{
	return c == ' ' || c == '\t';
}

static const char *
units_skip_spaces(const char *p)
{
	while (units_is_space(*p))
		p++;
	return p;
}

/* Reads decimal digits at *p; -1 when there are none or they overflow. */
static int
units_read_number(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned digit = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	*p = s;
	*out = v;
	return 0;
}

/* The unit is the run of letters after the number, matched exactly, so
 * "5sec" or "5 s x" are refused rather than half-read. */
static int
units_parse(const char *text, const struct units_unit *units, uint64_t *out)
{
	const char *p, *unit;
	size_t unit_len;
	uint64_t n;

	if (text == NULL)
		return -1;
	p = units_skip_spaces(text);
	if (units_read_number(&p, &n) < 0)
		return -1;
	p = units_skip_spaces(p);
	unit = p;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
		p++;
	unit_len = (size_t)(p - unit);
	if (*units_skip_spaces(p) != '\0' || unit_len == 0)
		return -1;
	for (const struct units_unit *u = units; u->name != NULL; u++) {
		if (strlen(u->name) != unit_len || strncmp(u->name, unit, unit_len) != 0)
			continue;
		if (n > UINT64_MAX / u->factor)
			return -1;
		*out = n * u->factor;
		return 0;
	}
	return -1;
}

static void
units_format(uint64_t value, const struct units_unit *units, const char *zero,
	     char *buf, unsigned len)
{
	const struct units_unit *u = units;

	if (len == 0)
		return;
	if (value == 0) {
		snprintf(buf, len, "%s", zero);
		return;
	}
	while (u[1].name != NULL && value % u->factor != 0)
		u++;
	snprintf(buf, len, "%llu%s", (unsigned long long)(value / u->factor), u->name);
}

int
units_parse_duration(const char *text, uint64_t *out_ms)
{
	return units_parse(text, units_durations, out_ms);
}

int
units_parse_size(const char *text, uint64_t *out_bytes)
{
	return units_parse(text, units_sizes, out_bytes);
}

void
units_format_duration(uint64_t ms, char *buf, unsigned len)
{
	units_format(ms, units_durations, "0s", buf, len);
}

void
units_format_size(uint64_t bytes, char *buf, unsigned len)
{
	units_format(bytes, units_sizes, "0B", buf, len);
}
