/*
 * check_tls_file — tls_util_file_read, which reads private keys among other
 * files, gives no block back to the allocator with file bytes in it.
 *
 * Regression: it grew its 4 KiB buffer with realloc(), which frees the old
 * block as it is, so a key file over 4 KiB left key bytes in freed heap
 * memory (and its error paths freed what they had read uncleansed).
 *
 * How it is seen: this program is linked with -Wl,--wrap=free and
 * -Wl,--wrap=realloc (Makefile.am), so every free() and realloc() in the
 * code under test (libsluice.a is linked in statically) passes through
 * the wrappers below, which look for a marker of the file's content in
 * the block being given back while a test watches. The file is built in
 * static memory and written with write(2), so that no block of the test's
 * own holds the marker.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <sluice/tls_util.h>

#include "../fixture.h"
#include "../harness.h"

/* ---- the wrappers ------------------------------------------------------- */

void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static const char marker[] = "SLUICE-TEST-KEY-MARKER";
/* volatile: the compiler takes free() for the C library's, which reads
 * and writes none of our variables, and would otherwise drop or reorder
 * the stores around it. */
static volatile int watching;
static volatile unsigned marked_blocks; /* blocks given back with the marker in them */

static void
watch_block(void *p)
{
	if (!watching || p == NULL)
		return;
	/* The whole block as the allocator has it: under ASan exactly what
	 * was asked for, under glibc possibly a little more. */
	if (memmem(p, malloc_usable_size(p), marker, sizeof(marker) - 1) != NULL)
		marked_blocks++;
}

void
__wrap_free(void *p)
{
	watch_block(p);
	__real_free(p);
}

/* realloc may move the block and free the old one as it is: a block that
 * reaches it with the marker counts, whether or not it moves this time. */
void *
__wrap_realloc(void *p, size_t n)
{
	watch_block(p);
	return __real_realloc(p, n);
}

/* ---- the file ----------------------------------------------------------- */

/* 20 KiB of key-like text, the marker on every line, so that every block
 * that ever held part of it holds a marker. */
#define KEY_LINES 512
#define KEY_LINE 40
static char key_text[KEY_LINES * KEY_LINE + 1];

static size_t
key_build(void)
{
	for (int i = 0; i < KEY_LINES; i++)
		snprintf(key_text + i * KEY_LINE, KEY_LINE + 1, "%s %016d\n", marker, i);
	return strlen(key_text);
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_msg(n > 0 || errno == EINTR, "write: %s", strerror(errno));
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
	}
}

struct key_file {
	char dir[PATH_MAX];
	char path[PATH_MAX + 32];
	int pipe_rd;                 /* -1, or the read end behind path */
};

/* A regular file, or (pipe) a pipe already holding the text and closed
 * for writing, reached by a path: fstat knows no size for it, so the
 * reader grows its buffer. */
static void
key_file_make(struct key_file *k, int pipe, size_t len)
{
	k->pipe_rd = -1;
	ck_assert_int_eq(harness_tmpdir(k->dir, sizeof(k->dir)), 0);
	if (pipe) {
		int p[2];

		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
		/* A pipe holds 64 KiB: the text fits without a reader. */
		write_all(p[1], key_text, len);
		close(p[1]);
		k->pipe_rd = p[0];
		snprintf(k->path, sizeof(k->path), "/proc/self/fd/%d", p[0]);
	} else {
		int fd;

		snprintf(k->path, sizeof(k->path), "%s/server.key", k->dir);
		fd = open(k->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		write_all(fd, key_text, len);
		close(fd);
	}
}

static void
key_file_remove(struct key_file *k)
{
	if (k->pipe_rd >= 0)
		close(k->pipe_rd);
	harness_rmdir(k->dir);
}

/* Reads the file while watching, then gives the data back as callers
 * must (cleansed); returns tls_file_read's result. */
static int
read_watched(const struct key_file *k, size_t max, size_t len, char *err, size_t errlen)
{
	unsigned char *data = NULL;
	size_t got = 0;
	int rc;

	marked_blocks = 0;
	watching = 1;
	rc = tls_util_file_read(k->path, max, &data, &got, err, errlen);
	if (rc == 0) {
		ck_assert_uint_eq(got, len);
		ck_assert(memcmp(data, key_text, len) == 0);
		OPENSSL_cleanse(data, got);
		free(data);
	}
	watching = 0;
	return rc;
}

/* ---- tests -------------------------------------------------------------- */

/* A 20 KiB key file, read from a regular file (_i 0) and through a pipe
 * (_i 1), where the buffer has to grow from 4 KiB. */
START_TEST(test_key_file_leaves_no_copy)
{
	struct key_file k;
	size_t len = key_build();
	char err[256];

	key_file_make(&k, _i, len);
	ck_assert_msg(read_watched(&k, 1024 * 1024, len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(marked_blocks == 0,
		      "%u freed blocks held bytes of a %zu-byte key file read from a %s", marked_blocks,
		      len, _i ? "pipe" : "regular file");
	key_file_remove(&k);
}
END_TEST

/* A key file over the limit: refused, and what was read of it is
 * cleansed before it is freed. */
START_TEST(test_oversized_key_file_cleansed)
{
	struct key_file k;
	size_t len = key_build();
	char err[256];

	key_file_make(&k, _i, len);
	ck_assert_int_eq(read_watched(&k, 10000, len, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "larger than 10000 bytes");
	ck_assert_msg(marked_blocks == 0, "%u freed blocks held bytes of a refused %s", marked_blocks,
		      _i ? "pipe" : "regular file");
	key_file_remove(&k);
}
END_TEST

/* The watch itself works: a block freed with the marker in it is seen. */
START_TEST(test_watch_sees_marked_block)
{
	char *p = malloc(64);

	ck_assert_ptr_nonnull(p);
	snprintf(p, 64, "%s", marker);
	/* Else the compiler, seeing the block unused, drops it altogether. */
	__asm__ volatile("" : : "r"(p) : "memory");
	marked_blocks = 0;
	watching = 1;
	free(p);
	watching = 0;
	ck_assert_uint_eq(marked_blocks, 1);
}
END_TEST

static Suite *
tls_file_suite(void)
{
	Suite *s = suite_create("tls_file");
	TCase *tc = tcase_create("tls_file");

	tcase_add_test(tc, test_watch_sees_marked_block);
	tcase_add_loop_test(tc, test_key_file_leaves_no_copy, 0, 2);
	tcase_add_loop_test(tc, test_oversized_key_file_cleansed, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return fixture_run_suite(tls_file_suite());
}
