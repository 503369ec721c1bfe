/*
 * tls_util — the helpers the tls_ modules share: whole-file reads with a
 * size cap, OpenSSL's reason for a failure, length-prefixed digest input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
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

static int
tls_util_file_fd(int fd, size_t max, unsigned char **data, size_t *len, char *err,
		 size_t errlen)
{
	size_t cap = 4096, n = 0;
	unsigned char *buf = malloc(cap), *p;
	ssize_t got;

	for (;;) {
		if (buf == NULL)
			break;
		if (n == cap) {
			p = realloc(buf, cap * 2);
			if (p == NULL)
				break;
			buf = p;
			cap *= 2;
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
			free(buf);
			return -1;
		}
		n += (size_t)got;
		if (n > max) {
			snprintf(err, errlen, "larger than %zu bytes", max);
			free(buf);
			return -1;
		}
	}
	snprintf(err, errlen, "out of memory");
	free(buf);
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
	/* A folder opens fine: say what read(2) would. */
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s", strerror(EISDIR));
		close(fd);
		return -1;
	}
	rc = tls_util_file_fd(fd, max, data, len, err, errlen);
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
