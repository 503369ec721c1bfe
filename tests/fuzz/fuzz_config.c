/*
 * fuzz_config — the YAML loader on arbitrary files. Each input is written to
 * the same file in a folder of this process's own, next to a certificate
 * and keys made once at start-up, so that relative certificate paths in the
 * corpus (server.crt, server.key, rsa.key ...) reach the happy path and the
 * TLS context is built. Checks SPEC §5's promise on errors: a failure always
 * comes with text, every line of it names the file first; a success has no
 * error text and a snapshot whose references resolve. Everything is freed
 * (LeakSanitizer watches).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/config.h>
#include <sluice/log.h>
#include <sluice/tls.h>

#include "../testcerts.h"
#include "fuzz.h"

const char fuzz_target_name[] = "config";

static char fuzz_dir[PATH_MAX];
static char fuzz_path[PATH_MAX + 32];
static int fuzz_trace;            /* SLUICE_FUZZ_TRACE: say what each input did */

/* Files the corpus may name, removed at exit. */
static const char *const fuzz_files[] = {
	"fuzz.yaml", "server.crt", "server.key", "rsa.crt", "rsa.key",
};

static void
fuzz_cleanup(void)
{
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < sizeof(fuzz_files) / sizeof(fuzz_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_dir, fuzz_files[i]);
		unlink(path);
	}
	rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	/* Warnings from the loader (unsupported keys) would drown libFuzzer's
	 * own output, a million times over. */
	log_set_level(LOG_CRIT);
	fuzz_trace = getenv("SLUICE_FUZZ_TRACE") != NULL;
	if (tls_init() < 0) {
		fprintf(stderr, "fuzz_config: cannot initialise OpenSSL\n");
		return -1;
	}
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/sluice-fuzz-config-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL) {
		fprintf(stderr, "fuzz_config: mkdtemp %s: %s\n", fuzz_dir, strerror(errno));
		return -1;
	}
	atexit(fuzz_cleanup);
	/* An ECDSA pair and an RSA pair: mixing them is the mismatched
	 * certificate/key error class. */
	if (testcerts_write(fuzz_dir, "server", "localhost", 1) < 0 ||
	    testcerts_write(fuzz_dir, "rsa", "localhost", 0) < 0)
		return -1;
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz.yaml", fuzz_dir);
	return 0;
}

static void
write_input(const uint8_t *data, size_t size)
{
	FILE *fp = fopen(fuzz_path, "wb");

	FUZZ_ASSERT(fp != NULL, "cannot create %s: %s", fuzz_path, strerror(errno));
	FUZZ_ASSERT(size == 0 || fwrite(data, 1, size, fp) == size, "cannot write %s", fuzz_path);
	FUZZ_ASSERT(fclose(fp) == 0, "cannot write %s: %s", fuzz_path, strerror(errno));
}

/* SPEC §5: errors "name the file, line and column and the key's path":
 * every line, not only the first, so that an editor can jump to each. */
static void
check_errors(const char *errors)
{
	size_t plen = strlen(fuzz_path);
	const char *line = errors;
	unsigned n = 0;

	FUZZ_ASSERT(errors != NULL, "config_load failed without error text");
	FUZZ_ASSERT(errors[0] != '\0', "config_load failed with an empty error text");
	for (;;) {
		const char *end = strchr(line, '\n');

		n++;
		FUZZ_ASSERT(strncmp(line, fuzz_path, plen) == 0 && line[plen] == ':',
			    "error line %u does not start with \"%s:\":\n%s", n, fuzz_path, errors);
		if (end == NULL)
			break;
		line = end + 1;
	}
}

/* What every user of a snapshot relies on without checking. */
static void
check_snapshot(const struct config *cfg)
{
	FUZZ_ASSERT(cfg->n_listeners >= 1 && cfg->listeners != NULL, "a snapshot without listeners");
	FUZZ_ASSERT(cfg->n_backends >= 1 && cfg->backends != NULL, "a snapshot without backends");
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		ptrdiff_t b = l->backend - cfg->backends;

		FUZZ_ASSERT(l->backend != NULL && b >= 0 && (size_t)b < cfg->n_backends,
			    "listen[%zu].backend does not point into backends", i);
		FUZZ_ASSERT(l->tls_ctx != NULL, "listen[%zu] has no TLS context", i);
		FUZZ_ASSERT(l->tls.n_certs >= 1, "listen[%zu] has no certificate", i);
		FUZZ_ASSERT(l->addr.text != NULL && l->addr.len > 0, "listen[%zu] has no address", i);
	}
	for (size_t i = 0; i < cfg->n_backends; i++) {
		const struct config_backend *b = &cfg->backends[i];

		FUZZ_ASSERT(b->name != NULL && b->n_servers >= 1, "backends[%zu] has no servers", i);
		FUZZ_ASSERT(b->connections >= 1, "backend %s has %u connections", b->name, b->connections);
	}
	FUZZ_ASSERT(cfg->limits.max_frame_size >= 6 && cfg->limits.max_frame_size <= UINT32_MAX,
		    "max_frame_size %llu out of range", (unsigned long long)cfg->limits.max_frame_size);
	FUZZ_ASSERT(cfg->limits.client_buffer >= cfg->limits.max_frame_size,
		    "client_buffer below max_frame_size");
	FUZZ_ASSERT(config_workers(cfg) >= 1, "no workers");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg;
	char *errors = NULL;

	write_input(data, size);
	cfg = config_load(fuzz_path, &errors);
	if (fuzz_trace)
		fprintf(stderr, "fuzz_config: %s\n", cfg != NULL ? "loaded" : errors ? errors : "(no text)");
	if (cfg == NULL) {
		check_errors(errors);
		free(errors);
		return 0;
	}
	FUZZ_ASSERT(errors == NULL, "config_load succeeded with errors:\n%s", errors);
	check_snapshot(cfg);
	config_warn_unsupported(cfg);
	/* A reload holds two references for a while: the count must work. */
	config_unref(config_ref(cfg));
	config_unref(cfg);
	return 0;
}
