/*
 * tool_util — what sluice-client and sluice-bench share outside the frame
 * format: parsing their numbers and HOST:PORT arguments, and growing the
 * byte buffers they read into and write from.
 */
#ifndef SLUICE_TOOL_UTIL_H
#define SLUICE_TOOL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A decimal number in [min, max], nothing else in text: 0, or -1. */
int tool_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Splits HOST:PORT or [V6]:PORT in place (arg is modified): 0, or -1 when
 * either part is missing. */
int tool_split_target(char *arg, const char **host, const char **port);

/* 1 when host is a literal IPv4 or IPv6 address (no SNI for those). */
int tool_is_ip(const char *host);

/* Grows *buf (capacity *cap, doubling from first) to hold at least need
 * bytes, keeping its contents: 0, or -1 when out of memory. */
int tool_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first);

#endif
