/*
 * tls_util — what every tls_ module needs and none owns: reading a whole
 * file into memory (certificates, keys, CA bundles, ticket keys are read
 * once and parsed from there), the cause of OpenSSL's latest failure in
 * words, and feeding a digest without ambiguity. Depends on no other
 * sluice header, so that any tls_ module may use it.
 */
#ifndef SLUICE_TLS_UTIL_H
#define SLUICE_TLS_UTIL_H

#include <stddef.h>
#include <openssl/evp.h>

/* Reads a whole file of at most max bytes into a malloc'd buffer; -1 with
 * why (strerror, "larger than N bytes") in err. */
int tls_util_file_read(const char *path, size_t max, unsigned char **data, size_t *len,
		       char *err, size_t errlen);

/* The cause of the oldest error in OpenSSL's queue ("no start line", "No
 * such file or directory"), then clears the queue. */
void tls_util_openssl_reason(char *buf, size_t len);

/* Feeds len bytes into a digest, length-prefixed, so that no two different
 * sequences of parts run together into the same bytes (the keys of reused
 * contexts and certificates). 0 or -1. */
int tls_util_digest_part(EVP_MD_CTX *md, const void *data, size_t len);

#endif
