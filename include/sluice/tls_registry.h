/*
 * tls_registry — the SSL_CTXs in use, by a SHA-256 over everything they
 * were built from (the contents of every file, every setting), so that a
 * reload whose files did not change takes the running SSL_CTX instead of
 * building a second copy (hitch issues #356, #374: a reload with thousands
 * of certificates doubled memory). Entries hold no reference of their
 * own: an entry goes when the last tls_ctx using it is freed, while
 * sessions may keep the SSL_CTX itself alive a while longer.
 */
#ifndef SLUICE_TLS_REGISTRY_H
#define SLUICE_TLS_REGISTRY_H

#include <openssl/ssl.h>

#define TLS_REGISTRY_KEY 32

/* The SSL_CTX registered under key, with a reference for the caller and
 * one more user counted; NULL when there is none. Any thread. */
SSL_CTX *tls_registry_get(const unsigned char key[TLS_REGISTRY_KEY]);
/* Registers ctx, just built, under key with one user. 1 when registered,
 * 0 when the key is already taken (the caller then owns ctx alone and
 * must not release it here), -1 when out of memory (likewise). */
int tls_registry_put(const unsigned char key[TLS_REGISTRY_KEY], SSL_CTX *ctx);
/* One user of the entry of key and ctx fewer; the entry goes at zero. The
 * caller still frees its own reference on ctx. */
void tls_registry_release(const unsigned char key[TLS_REGISTRY_KEY], SSL_CTX *ctx);
/* Entries now (tests). */
unsigned long tls_registry_size(void);

#endif
