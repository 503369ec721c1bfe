/*
 * tls_tickets — session ticket keys: the process-wide rotating store and
 * the sets read from ticket_keys files, and the OpenSSL callback that
 * encrypts new tickets with the first key and decrypts with any.
 *
 *   handshake (any worker) ── read lock ──▶ copy one key ──▶ unlock ──▶ EVP
 *   reload / 12 h timer (main thread) ── write lock ──▶ shift in a new key
 *
 * A ticket decrypted by a key other than the first is accepted and renewed
 * (the callback returns 2), so a client moves to the current key on its
 * next resumption.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <sluice/log.h>
#include <sluice/tls_tickets.h>
#include <sluice/tls_util.h>

#define TLS_TICKET_NAME 16
#define TLS_TICKET_HMAC 32
#define TLS_TICKET_AES 32
#define TLS_TICKET_RAW (TLS_TICKET_NAME + TLS_TICKET_HMAC + TLS_TICKET_AES)
#define TLS_TICKET_B64_MAX 256          /* one line of the file, trimmed */
#define TLS_TICKET_FILE_BYTES 65536     /* a key file is small; refuse a big one */

/* One key, in the file's byte order. */
struct tls_ticket_key {
	unsigned char name[TLS_TICKET_NAME];
	unsigned char hmac[TLS_TICKET_HMAC];
	unsigned char aes[TLS_TICKET_AES];
};

/* Owned by its references (the SSL_CTXs of one listener); immutable. */
struct tls_ticket_keys {
	int refs;                       /* atomic */
	size_t n;                       /* 1 .. TLS_TICKET_FILE_MAX */
	size_t cap;                     /* slots allocated */
	struct tls_ticket_key *keys;    /* secure heap; keys[0] encrypts */
};

/* The rotating store: rotating[0] encrypts, all n decrypt. */
static pthread_rwlock_t tls_tickets_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct tls_ticket_key *tls_rotating;   /* TLS_TICKET_KEEP slots, secure heap */
static size_t tls_rotating_n;
static unsigned tls_rotations;                 /* under the lock */
static int tls_tickets_index = -1;             /* SSL_CTX ex_data: the file's keys */

/* ---- the rotating store --------------------------------------------------- */

static int
tls_tickets_random(struct tls_ticket_key *k)
{
	if (RAND_bytes((unsigned char *)k, (int)sizeof(*k)) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* Shifts a new random key in; counted and logged (at debug) unless it is
 * the first, from tls_tickets_init. 0 or -1. */
static int
tls_tickets_shift(bool first)
{
	struct tls_ticket_key fresh;

	if (tls_rotating == NULL || tls_tickets_random(&fresh) < 0) {
		log_error("cannot make a new TLS session ticket key; the current one stays in use");
		return -1;
	}
	if (pthread_rwlock_wrlock(&tls_tickets_lock) != 0) {
		OPENSSL_cleanse(&fresh, sizeof(fresh));
		return -1;
	}
	memmove(&tls_rotating[1], &tls_rotating[0], (TLS_TICKET_KEEP - 1) * sizeof(fresh));
	tls_rotating[0] = fresh;
	if (tls_rotating_n < TLS_TICKET_KEEP)
		tls_rotating_n++;
	if (!first) {
		tls_rotations++;
		/* Under the lock, so the log never lags the keys: no handshake
		 * gets the new key before this line is written (check_tls
		 * counts these lines to know how old a ticket's key is). */
		log_debug("session ticket keys rotated (%u since start-up)", tls_rotations);
	}
	pthread_rwlock_unlock(&tls_tickets_lock);
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return 0;
}

int
tls_tickets_rotate(void)
{
	return tls_tickets_shift(false);
}

unsigned
tls_tickets_generation(void)
{
	unsigned n = 0;

	if (pthread_rwlock_rdlock(&tls_tickets_lock) == 0) {
		n = tls_rotations;
		pthread_rwlock_unlock(&tls_tickets_lock);
	}
	return n;
}

static void
tls_ticket_keys_free_ex(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	tls_ticket_keys_unref(ptr);
}

int
tls_tickets_init(void)
{
	tls_tickets_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_ticket_keys_free_ex);
	if (tls_tickets_index < 0)
		return -1;
	/* Zeroed on allocation; falls back to ordinary memory when the secure
	 * heap was not set up (tests, or a system that refuses mlock). */
	tls_rotating = OPENSSL_secure_zalloc(TLS_TICKET_KEEP * sizeof(*tls_rotating));
	if (tls_rotating == NULL)
		return -1;
	tls_rotations = 0;
	return tls_tickets_shift(true);
}

/* ---- key files --------------------------------------------------------------- */

struct tls_ticket_keys *
tls_ticket_keys_ref(struct tls_ticket_keys *keys)
{
	if (keys != NULL)
		__atomic_add_fetch(&keys->refs, 1, __ATOMIC_RELAXED);
	return keys;
}

void
tls_ticket_keys_unref(struct tls_ticket_keys *keys)
{
	if (keys == NULL || __atomic_sub_fetch(&keys->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	OPENSSL_secure_clear_free(keys->keys, keys->cap * sizeof(*keys->keys));
	free(keys);
}

/* One line, trimmed, decoded into k. 0, or -1 with the reason in why. */
static int
tls_ticket_line(const char *text, size_t n, struct tls_ticket_key *k, const char **why)
{
	unsigned char raw[TLS_TICKET_B64_MAX];
	size_t pad = 0;
	int got;

	if (n % 4 != 0 || n > TLS_TICKET_B64_MAX) {
		*why = "expected one base64 key of 80 bytes (108 characters)";
		return -1;
	}
	for (size_t i = n; i > 0 && text[i - 1] == '='; i--)
		pad++;
	got = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)n);
	if (got < 0 || pad > 2) {
		ERR_clear_error();
		*why = "not valid base64";
		return -1;
	}
	if ((size_t)got - pad != TLS_TICKET_RAW) {
		OPENSSL_cleanse(raw, sizeof(raw));
		*why = "expected 80 bytes (16-byte name, 32-byte HMAC key, 32-byte AES key)";
		return -1;
	}
	memcpy(k, raw, TLS_TICKET_RAW);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

static bool
tls_ticket_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Adds the key on line `line` unless it repeats a name. 0 or -1. */
static int
tls_ticket_add(struct tls_ticket_keys *set, const struct tls_ticket_key *k, const unsigned *lines,
	       unsigned line, const char *path, char *err, size_t errlen)
{
	for (size_t i = 0; i < set->n; i++) {
		if (memcmp(set->keys[i].name, k->name, TLS_TICKET_NAME) == 0) {
			snprintf(err, errlen, "%s:%u: the key name repeats the key of line %u",
				 path, line, lines[i]);
			return -1;
		}
	}
	if (set->n == TLS_TICKET_FILE_MAX) {
		snprintf(err, errlen, "%s:%u: more than %d keys", path, line, TLS_TICKET_FILE_MAX);
		return -1;
	}
	set->keys[set->n++] = *k;
	return 0;
}

/* Every non-blank line that does not start with '#' is a key. */
static int
tls_ticket_lines(struct tls_ticket_keys *set, const char *path, const unsigned char *data,
		 size_t len, char *err, size_t errlen)
{
	unsigned lines[TLS_TICKET_FILE_MAX];
	struct tls_ticket_key k;
	unsigned line = 0;
	size_t at = 0;
	int rc = 0;

	while (at < len && rc == 0) {
		const unsigned char *eol = memchr(data + at, '\n', len - at);
		size_t end = eol != NULL ? (size_t)(eol - data) : len;
		size_t b = at, e = end;
		const char *why = NULL;

		line++;
		while (b < e && tls_ticket_blank(data[b]))
			b++;
		while (e > b && tls_ticket_blank(data[e - 1]))
			e--;
		at = end + 1;
		if (b == e || data[b] == '#')
			continue;
		if (tls_ticket_line((const char *)data + b, e - b, &k, &why) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, line, why);
			rc = -1;
		} else {
			if (set->n < TLS_TICKET_FILE_MAX)
				lines[set->n] = line;
			rc = tls_ticket_add(set, &k, lines, line, path, err, errlen);
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	if (rc == 0 && set->n == 0) {
		snprintf(err, errlen, "%s: no key: the first line must hold the key that "
			 "encrypts (base64 of 80 bytes)", path);
		rc = -1;
	}
	return rc;
}

/* The secure heap is small (process.c) and shared with private keys: a
 * set kept for the life of a snapshot holds only the keys it has. */
static struct tls_ticket_keys *
tls_ticket_keys_shrink(struct tls_ticket_keys *set)
{
	struct tls_ticket_key *keys = OPENSSL_secure_zalloc(set->n * sizeof(*keys));

	if (keys == NULL)
		return set;   /* the larger array works as well */
	memcpy(keys, set->keys, set->n * sizeof(*keys));
	OPENSSL_secure_clear_free(set->keys, set->cap * sizeof(*keys));
	set->keys = keys;
	set->cap = set->n;
	return set;
}

struct tls_ticket_keys *
tls_ticket_keys_parse(const char *path, const unsigned char *data, size_t len, char *err,
		      size_t errlen)
{
	struct tls_ticket_keys *set = calloc(1, sizeof(*set));

	if (set == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	set->refs = 1;
	set->cap = TLS_TICKET_FILE_MAX;
	set->keys = OPENSSL_secure_zalloc(set->cap * sizeof(*set->keys));
	if (set->keys == NULL) {
		free(set);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (tls_ticket_lines(set, path, data, len, err, errlen) < 0) {
		tls_ticket_keys_unref(set);
		return NULL;
	}
	return tls_ticket_keys_shrink(set);
}

int
tls_ticket_keys_check_file(const char *path, char *err, size_t errlen)
{
	struct tls_ticket_keys *set;
	unsigned char *data = NULL;
	char why[256];
	size_t len = 0;

	if (tls_util_file_read(path, TLS_TICKET_FILE_BYTES, &data, &len, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, why);
		return -1;
	}
	set = tls_ticket_keys_parse(path, data, len, err, errlen);
	OPENSSL_cleanse(data, len);
	free(data);
	tls_ticket_keys_unref(set);
	return set != NULL ? 0 : -1;
}

/* ---- the OpenSSL callback ---------------------------------------------------- */

/* Copies the key that encrypts (first) or the one named name into *k,
 * under the read lock for the rotating store. Its position, or -1. */
static int
tls_tickets_pick(const struct tls_ticket_keys *file, const unsigned char *name,
		 struct tls_ticket_key *k)
{
	const struct tls_ticket_key *keys = file != NULL ? file->keys : tls_rotating;
	int found = -1;
	size_t n;

	if (file == NULL && pthread_rwlock_rdlock(&tls_tickets_lock) != 0)
		return -1;
	n = file != NULL ? file->n : tls_rotating_n;
	for (size_t i = 0; i < n && found < 0; i++) {
		if (name == NULL || memcmp(keys[i].name, name, TLS_TICKET_NAME) == 0) {
			*k = keys[i];
			found = (int)i;
		}
	}
	if (file == NULL)
		pthread_rwlock_unlock(&tls_tickets_lock);
	return found;
}

/* AES-256-CBC and HMAC-SHA256, as OpenSSL's own ticket keys. */
static int
tls_tickets_setup(struct tls_ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
		  EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac,
						      sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
	    EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* 1: a new ticket / a ticket of the current key; 2: decrypted by an older
 * key, renew; 0: unknown key, full handshake; -1: error. */
static int
tls_tickets_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
	       EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_ticket_keys *file =
		SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_tickets_index);
	struct tls_ticket_key k;
	int pos, rc;

	if (enc) {
		pos = tls_tickets_pick(file, NULL, &k);
		if (pos < 0)
			return -1;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) {
			ERR_clear_error();
			OPENSSL_cleanse(&k, sizeof(k));
			return -1;
		}
		memcpy(name, k.name, TLS_TICKET_NAME);
		rc = tls_tickets_setup(&k, iv, cctx, hctx, 1) < 0 ? -1 : 1;
	} else {
		pos = tls_tickets_pick(file, name, &k);
		if (pos < 0)
			return 0;
		rc = tls_tickets_setup(&k, iv, cctx, hctx, 0) < 0 ? -1 : pos == 0 ? 1 : 2;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int
tls_tickets_attach(SSL_CTX *ctx, struct tls_ticket_keys *keys)
{
	if (keys != NULL && SSL_CTX_set_ex_data(ctx, tls_tickets_index, tls_ticket_keys_ref(keys)) != 1) {
		tls_ticket_keys_unref(keys);
		ERR_clear_error();
		return -1;
	}
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tickets_cb) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
