/*
 * units — durations and sizes as written in the configuration:
 * "250ms", "5s", "2m", "1h"; "512B", "16KiB", "1MiB", "2GiB".
 * A bare number is refused: the unit is part of the contract.
 */
#ifndef SLUICE_UNITS_H
#define SLUICE_UNITS_H

#include <stdint.h>

/* Both return 0 and set *out on success, -1 on syntax error or overflow.
 * Accepted form: optional spaces, decimal digits, optional spaces, a unit;
 * nothing else (no sign, no fraction, no trailing text). */
int units_parse_duration(const char *text, uint64_t *out_ms);
int units_parse_size(const char *text, uint64_t *out_bytes);

/* Formats for messages and -t output, e.g. "1MiB", "1500ms", "5s". */
void units_format_duration(uint64_t ms, char *buf, unsigned len);
void units_format_size(uint64_t bytes, char *buf, unsigned len);

#endif
