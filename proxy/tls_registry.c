/*
 * tls_registry — a balanced tree (tsearch) of {key, SSL_CTX, users} under
 * one mutex. The main thread looks up and registers while loading a
 * snapshot; whichever thread drops a snapshot's last reference releases
 * its entries. Building happens outside the lock, so a worker freeing an
 * old snapshot never waits for certificates being parsed.
 */
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include <sluice/tls_registry.h>

struct tls_registry_entry {
	unsigned char key[TLS_REGISTRY_KEY];
	SSL_CTX *ctx;                /* no reference of its own */
	unsigned long users;         /* tls_ctx groups using it */
};

static pthread_mutex_t tls_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static void *tls_registry_root;
static unsigned long tls_registry_n;

static int
tls_registry_cmp(const void *a, const void *b)
{
	const struct tls_registry_entry *x = a, *y = b;

	return memcmp(x->key, y->key, TLS_REGISTRY_KEY);
}

static struct tls_registry_entry *
tls_registry_find(const unsigned char key[TLS_REGISTRY_KEY])
{
	struct tls_registry_entry probe;
	void *node;

	memcpy(probe.key, key, TLS_REGISTRY_KEY);
	node = tfind(&probe, &tls_registry_root, tls_registry_cmp);
	return node != NULL ? *(struct tls_registry_entry **)node : NULL;
}

SSL_CTX *
tls_registry_get(const unsigned char key[TLS_REGISTRY_KEY])
{
	struct tls_registry_entry *e;
	SSL_CTX *ctx = NULL;

	if (pthread_mutex_lock(&tls_registry_lock) != 0)
		return NULL;
	e = tls_registry_find(key);
	if (e != NULL && SSL_CTX_up_ref(e->ctx) == 1) {
		e->users++;
		ctx = e->ctx;
	}
	pthread_mutex_unlock(&tls_registry_lock);
	return ctx;
}

int
tls_registry_put(const unsigned char key[TLS_REGISTRY_KEY], SSL_CTX *ctx)
{
	struct tls_registry_entry *e = calloc(1, sizeof(*e));
	void *node;
	int rc = -1;

	if (e == NULL)
		return -1;
	memcpy(e->key, key, TLS_REGISTRY_KEY);
	e->ctx = ctx;
	e->users = 1;
	if (pthread_mutex_lock(&tls_registry_lock) != 0) {
		free(e);
		return -1;
	}
	node = tsearch(e, &tls_registry_root, tls_registry_cmp);
	if (node != NULL && *(struct tls_registry_entry **)node == e) {
		tls_registry_n++;
		rc = 1;
	} else if (node != NULL) {
		rc = 0;   /* built twice at once: the first one stays registered */
	}
	pthread_mutex_unlock(&tls_registry_lock);
	if (rc != 1)
		free(e);
	return rc;
}

void
tls_registry_release(const unsigned char key[TLS_REGISTRY_KEY], SSL_CTX *ctx)
{
	struct tls_registry_entry *e;

	if (pthread_mutex_lock(&tls_registry_lock) != 0)
		return;
	e = tls_registry_find(key);
	if (e != NULL && e->ctx == ctx && --e->users == 0) {
		tdelete(e, &tls_registry_root, tls_registry_cmp);
		tls_registry_n--;
		free(e);
	}
	pthread_mutex_unlock(&tls_registry_lock);
}

unsigned long
tls_registry_size(void)
{
	unsigned long n = 0;

	if (pthread_mutex_lock(&tls_registry_lock) == 0) {
		n = tls_registry_n;
		pthread_mutex_unlock(&tls_registry_lock);
	}
	return n;
}
