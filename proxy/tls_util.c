/*
 * tls_util — the helpers the tls_ modules share: whole-file reads with a
 * size cap, OpenSSL's reason for a failure, length-prefixed digest input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <sluice/tls_util.h>

/*
 * The oldest error in the queue is the cause ("No such file or directory",
 * "no start line"); the later ones only say which call gave up. System
 * errors have no reason string in OpenSSL 3: their reason is the errno.
 */
void
tls_util_openssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();
	const char *reason = NULL;

	if (e == 0)
		reason = "unknown error";
	else if (ERR_SYSTEM_ERROR(e))
		reason = strerror((int)ERR_GET_REASON(e));
	else
		reason = ERR_reason_error_string(e);
	if (reason != NULL)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* Key files come through here, so no block that held file bytes goes back
 * to the allocator uncleansed: realloc() would free the old block as it
 * was, key bytes and all. Growth allocates anew, copies, and cleanses the
 * old block before freeing it; failures cleanse what they read. */
static void
tls_util_file_discard(unsigned char *buf, size_t n)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, n);
	free(buf);
}

static unsigned char *
tls_util_file_grow(unsigned char *buf, size_t n, size_t cap)
{
	unsigned char *bigger = malloc(cap);

	if (bigger == NULL)
		return NULL;
	memcpy(bigger, buf, n);
	tls_util_file_discard(buf, n);
	return bigger;
}

/* size: what fstat said, so that a regular file is read into one block
 * (with a byte to spare, for the read that sees its end); pipes and
 * files whose size stat does not know start at 4 KiB and grow. */
static int
tls_util_file_fd(int fd, off_t size, size_t max, unsigned char **data, size_t *len, char *err,
	    size_t errlen)
{
	size_t cap = size > 0 && (uintmax_t)size <= max ? (size_t)size + 1 : 4096, n = 0;
	unsigned char *buf, *p;
	ssize_t got;

	if (size > 0 && (uintmax_t)size > max) {
		snprintf(err, errlen, "larger than %zu bytes", max);
		return -1;
	}
	buf = malloc(cap);
	for (;;) {
		if (buf == NULL)
			break;
		if (n == cap) {
			/* Never past max + 1: one byte more tells "too large". */
			size_t next = cap > (max + 1) / 2 ? max + 1 : cap * 2;

			p = tls_util_file_grow(buf, n, next);
			if (p == NULL)
				break;
			buf = p;
			cap = next;
		}
		got = read(fd, buf + n, cap - n);
		if (got == 0) {
			*data = buf;
			*len = n;
			return 0;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "%s", strerror(errno));
			tls_util_file_discard(buf, n);
			return -1;
		}
		n += (size_t)got;
		if (n > max) {
			snprintf(err, errlen, "larger than %zu bytes", max);
			tls_util_file_discard(buf, n);
			return -1;
		}
	}
	snprintf(err, errlen, "out of memory");
	tls_util_file_discard(buf, n);
	return -1;
}

int
tls_util_file_read(const char *path, size_t max, unsigned char **data, size_t *len, char *err,
	      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s", strerror(EISDIR));
		close(fd);
		return -1;
	}
	rc = tls_util_file_fd(fd, S_ISREG(st.st_mode) ? st.st_size : 0, max, data, len, err, errlen);
	close(fd);
	return rc;
}

int
tls_util_digest_part(EVP_MD_CTX *md, const void *data, size_t len)
{
	unsigned char n[8];

	for (int i = 0; i < 8; i++)
		n[i] = (unsigned char)(len >> (56 - 8 * i));
	return EVP_DigestUpdate(md, n, sizeof(n)) == 1 &&
	       (len == 0 || EVP_DigestUpdate(md, data, len) == 1) ? 0 : -1;
}
