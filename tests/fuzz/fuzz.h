/*
 * fuzz — what every fuzz target in tests/fuzz/ defines, so that one target
 * source links two ways: with libFuzzer's main (./configure
 * --enable-fuzzing, `make fuzz`), or with replay.c's main, which runs the
 * target over its seed corpus and its saved regressions in `make check`
 * under any compiler.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The target's name: its corpus is tests/fuzz/corpus/<name>/, its
 * regressions tests/fuzz/regressions/<name>/. */
extern const char fuzz_target_name[];

/* libFuzzer's entry points. Initialize runs once before any input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: prints why and aborts, so libFuzzer saves the input
 * as a crash and the replay program fails. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define FUZZ_ASSERT(cond, ...) \
	do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

#endif
