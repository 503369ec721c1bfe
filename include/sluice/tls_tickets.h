/*
 * tls_tickets — the keys that encrypt TLS session tickets (stateless
 * resumption). Two sources:
 *
 * - the process-wide rotating store, for listeners without ticket_keys:
 *   random keys, a new one on every reload and every TLS_TICKET_ROTATE_S,
 *   the newest encrypting and the TLS_TICKET_KEEP - 1 before it still
 *   decrypting, shared by every worker and every listener;
 * - a ticket_keys file: one key per line, base64 of 80 bytes (16-byte
 *   name, 32-byte HMAC-SHA256 key, 32-byte AES-256 key); the first line
 *   encrypts, every line decrypts; never rotated by sluice (the operator
 *   rotates the file across the fleet and reloads).
 *
 * Key bytes live in OpenSSL's secure heap when it is set up, and are never
 * logged.
 */
#ifndef SLUICE_TLS_TICKETS_H
#define SLUICE_TLS_TICKETS_H

#include <stddef.h>
#include <openssl/ssl.h>

#define TLS_TICKET_ROTATE_S (12 * 60 * 60)  /* age of the encrypting key, at most */
#define TLS_TICKET_KEEP 3                   /* the current key and 2 previous */
#define TLS_TICKET_FILE_MAX 64              /* keys in a ticket_keys file, at most */

/* An immutable set of keys read from a ticket_keys file; reference counted,
 * so the group contexts of a listener share one copy. */
struct tls_ticket_keys;

/* Generates the first rotating key. Once, from tls_init. 0 or -1. */
int tls_tickets_init(void);

/* A new random key encrypts from now on; the two before it still decrypt,
 * older ones are forgotten. Any thread. Keys from files are untouched.
 * Logs "session ticket keys rotated (N since start-up)" at debug.
 * 0, or -1 when no random bytes could be had (the old keys stay). */
int tls_tickets_rotate(void);

/* How many rotations since start-up (tests and logs). */
unsigned tls_tickets_generation(void);

/* Parses a key file's contents (path only names it in messages). NULL on
 * failure with "path:LINE: why" or "path: why" in err, never key bytes. */
struct tls_ticket_keys *tls_ticket_keys_parse(const char *path, const unsigned char *data,
					      size_t len, char *err, size_t errlen);
/* Reads and parses path: what config_schema checks at the ticket_keys key. */
int tls_ticket_keys_check_file(const char *path, char *err, size_t errlen);
struct tls_ticket_keys *tls_ticket_keys_ref(struct tls_ticket_keys *keys);
void tls_ticket_keys_unref(struct tls_ticket_keys *keys);

/* Makes ctx encrypt and decrypt tickets with keys (a reference the ctx
 * takes), or with the rotating store when keys is NULL. 0 or -1. */
int tls_tickets_attach(SSL_CTX *ctx, struct tls_ticket_keys *keys);

#endif
