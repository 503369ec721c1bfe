/*
 * addr_limit — open connections per client address, for
 * limits.max_connections_per_address. One table for the process behind
 * one mutex: workers are threads, so a count taken by one is seen by all
 * and the limit is exact. It is touched twice per connection, and only
 * when the limit is set.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/addr_limit.h>

/* Addresses with a connection open hash into this many chains. */
#define ADDR_LIMIT_BUCKETS 4096

struct addr_limit_entry {
	struct addr_limit_entry *next;
	struct addr_limit_key key;
	uint64_t count;
};

static pthread_mutex_t addr_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr_limit_entry *addr_limit_table[ADDR_LIMIT_BUCKETS];

void
addr_limit_key_from(struct addr_limit_key *k, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		k->family = AF_INET;
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
			k->family = AF_INET;
			memcpy(k->addr, a + 12, 4);
		} else {
			k->family = AF_INET6;
			memcpy(k->addr, a, 16);
		}
	}
}

/* FNV-1a: clients do not choose their addresses freely enough to attack
 * chains that only the limit's own connections can lengthen. */
static unsigned
addr_limit_hash(const struct addr_limit_key *k)
{
	uint32_t h = 2166136261u ^ k->family;

	for (size_t i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * 16777619u;
	return h % ADDR_LIMIT_BUCKETS;
}

static struct addr_limit_entry **
addr_limit_find(const struct addr_limit_key *k)
{
	struct addr_limit_entry **e = &addr_limit_table[addr_limit_hash(k)];

	while (*e != NULL && memcmp(&(*e)->key, k, sizeof(*k)) != 0)
		e = &(*e)->next;
	return e;
}

int
addr_limit_take(const struct addr_limit_key *k, uint64_t max)
{
	struct addr_limit_entry **e;
	int rc = 0;

	if (k->family == 0)
		return 0;
	pthread_mutex_lock(&addr_limit_lock);
	e = addr_limit_find(k);
	if (*e == NULL) {
		*e = calloc(1, sizeof(**e));
		if (*e != NULL)
			(*e)->key = *k;
	}
	if (*e == NULL || (*e)->count >= max)
		rc = -1;
	else
		(*e)->count++;
	pthread_mutex_unlock(&addr_limit_lock);
	return rc;
}

void
addr_limit_give(const struct addr_limit_key *k)
{
	struct addr_limit_entry **e, *gone = NULL;

	if (k->family == 0)
		return;
	pthread_mutex_lock(&addr_limit_lock);
	e = addr_limit_find(k);
	if (*e != NULL && (*e)->count > 0 && --(*e)->count == 0) {
		gone = *e;
		*e = gone->next;
	}
	pthread_mutex_unlock(&addr_limit_lock);
	free(gone);
}

uint64_t
addr_limit_count(const struct addr_limit_key *k)
{
	struct addr_limit_entry **e;
	uint64_t n;

	pthread_mutex_lock(&addr_limit_lock);
	e = addr_limit_find(k);
	n = *e != NULL ? (*e)->count : 0;
	pthread_mutex_unlock(&addr_limit_lock);
	return n;
}
