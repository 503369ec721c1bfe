/*
 * oom — allocation failures on demand (see oom.h).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "oom.h"

/* Defined (as the C library's functions) only when the program is linked
 * with --wrap=...: the linker then makes __real_malloc mean malloc. Weak,
 * so that a program linked without the wrap still links, with NULL here. */
extern void *__real_malloc(size_t n) __attribute__((weak));
extern void *__real_calloc(size_t n, size_t size) __attribute__((weak));
extern void *__real_realloc(void *p, size_t n) __attribute__((weak));
extern char *__real_strdup(const char *s) __attribute__((weak));

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static struct {
	bool installed;
	bool armed;
	unsigned hold;
	unsigned deny;
	unsigned long nth, count;     /* fail allocations nth .. nth + count - 1 */
	unsigned long seen, failed;
} oom;

/* Counts one allocation; true when it must fail. */
static bool
oom_fail_now(void)
{
	if (oom.deny > 0)
		return true;
	if (!oom.armed || oom.hold > 0)
		return false;
	oom.seen++;
	if (oom.seen >= oom.nth && oom.seen - oom.nth < oom.count) {
		oom.failed++;
		return true;
	}
	return false;
}

/* The allocator underneath: the C library's (or a sanitizer's) malloc.
 * With --wrap, a plain malloc call here would come back to __wrap_malloc. */
static void *
real_malloc(size_t n)
{
	return __real_malloc != NULL ? __real_malloc(n) : malloc(n);
}

static void *
real_calloc(size_t n, size_t size)
{
	return __real_calloc != NULL ? __real_calloc(n, size) : calloc(n, size);
}

static void *
real_realloc(void *p, size_t n)
{
	return __real_realloc != NULL ? __real_realloc(p, n) : realloc(p, n);
}

void *
__wrap_malloc(size_t n)
{
	return oom_fail_now() ? NULL : real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return oom_fail_now() ? NULL : real_calloc(n, size);
}

/* A failed realloc leaves the block as it was, as the C library's does. */
void *
__wrap_realloc(void *p, size_t n)
{
	return oom_fail_now() ? NULL : real_realloc(p, n);
}

char *
__wrap_strdup(const char *s)
{
	size_t n;
	char *copy;

	if (__real_strdup == NULL)
		return strdup(s);
	if (oom_fail_now())
		return NULL;
	n = strlen(s) + 1;
	copy = real_malloc(n);
	if (copy != NULL)
		memcpy(copy, s, n);
	return copy;
}

/* libevent's hooks: its mm_calloc and mm_strdup call the malloc hook. */
static void *
oom_event_malloc(size_t n)
{
	return oom_fail_now() ? NULL : real_malloc(n);
}

static void *
oom_event_realloc(void *p, size_t n)
{
	return oom_fail_now() ? NULL : real_realloc(p, n);
}

static void
oom_event_free(void *p)
{
	free(p);
}

void
oom_install(void)
{
	if (oom.installed)
		return;
	oom.installed = true;
	event_set_mem_functions(oom_event_malloc, oom_event_realloc, oom_event_free);
}

void
oom_arm(unsigned long nth, unsigned count)
{
	oom.nth = nth > 0 ? nth : 1;
	oom.count = count;
	oom.seen = 0;
	oom.failed = 0;
	oom.armed = count > 0;
}

void
oom_disarm(void)
{
	oom.armed = false;
}

bool
oom_armed(void)
{
	return oom.armed;
}

unsigned long
oom_seen(void)
{
	return oom.seen;
}

unsigned long
oom_failed(void)
{
	return oom.failed;
}

void
oom_hold(void)
{
	oom.hold++;
}

void
oom_release(void)
{
	if (oom.hold > 0)
		oom.hold--;
}

void
oom_deny(void)
{
	oom.deny++;
}

void
oom_allow(void)
{
	if (oom.deny > 0)
		oom.deny--;
}

bool
oom_wraps_libc(void)
{
	return __real_malloc != NULL;
}
