/*
 * replay — a main() for a fuzz target without libFuzzer: runs
 * LLVMFuzzerTestOneInput once over every file of the target's seed corpus
 * (tests/fuzz/corpus/<target>/) and of its saved crashes
 * (tests/fuzz/regressions/<target>/), so that `make check` exercises both
 * under any compiler, sanitizers or not. With arguments it replays those
 * files and folders instead (reproducing one crash under gdb, say).
 *
 * Prints "replayed N inputs for <target>: OK" and exits 0; an input that
 * breaks an invariant aborts in the target, after this driver has named
 * the file on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Inputs larger than this are not fuzz inputs: refuse rather than guess. */
#define REPLAY_MAX_INPUT (1024 * 1024)

static char replay_current[PATH_MAX];

/* A crash names its input: the test log must say which file to look at.
 * Only async-signal-safe calls here. */
static void
replay_crash_handler(int sig)
{
	static const char pre[] = "replay: crashed on input ";

	if (write(STDERR_FILENO, pre, sizeof(pre) - 1) < 0 ||
	    write(STDERR_FILENO, replay_current, strlen(replay_current)) < 0 ||
	    write(STDERR_FILENO, "\n", 1) < 0) {
		/* nothing more to say */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Returns 1 when an input was run, 0 when path is not a regular file
 * (skipped), -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	struct stat st;
	FILE *fp;
	uint8_t *data;
	size_t n;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: larger than %d bytes\n", path, REPLAY_MAX_INPUT);
		return -1;
	}
	fp = fopen(path, "rb");
	if (fp == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* An exact-size copy, as libFuzzer hands it: ASan then catches a
	 * target reading one byte past its input. */
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	n = data != NULL ? fread(data, 1, (size_t)st.st_size, fp) : 0;
	fclose(fp);
	if (data == NULL || n != (size_t)st.st_size) {
		fprintf(stderr, "replay: %s: cannot read\n", path);
		free(data);
		return -1;
	}
	snprintf(replay_current, sizeof(replay_current), "%s", path);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 1;
}

/* Hidden files (.gitkeep) and READMEs are not inputs. */
static int
replay_wanted(const struct dirent *e)
{
	return e->d_name[0] != '.' && strncmp(e->d_name, "README", 6) != 0;
}

/* Every file of dir, in name order so a failure reproduces. A missing
 * folder is no error when optional (no regression saved yet). */
static int
replay_dir(const char *dir, int optional, unsigned *count)
{
	struct dirent **names;
	char path[PATH_MAX];
	int n, rc = 0;

	n = scandir(dir, &names, replay_wanted, alphasort);
	if (n < 0) {
		if (optional && errno == ENOENT)
			return 0;
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int r;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		r = replay_file(path);
		if (r < 0)
			rc = -1;
		else
			*count += (unsigned)r;
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
replay_path(const char *path, unsigned *count)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return replay_dir(path, 0, count);
	r = replay_file(path);
	if (r > 0)
		(*count)++;
	return r < 0 ? -1 : 0;
}

int
main(int argc, char **argv)
{
	const char *srcdir = getenv("SLUICE_SRCDIR");
	char dir[PATH_MAX];
	unsigned count = 0;
	int rc = 0;

	signal(SIGABRT, replay_crash_handler);
	signal(SIGSEGV, replay_crash_handler);
	signal(SIGBUS, replay_crash_handler);
	if (LLVMFuzzerInitialize(&argc, &argv) != 0) {
		fprintf(stderr, "replay: %s: initialisation failed\n", fuzz_target_name);
		return 1;
	}
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			if (replay_path(argv[i], &count) < 0)
				rc = 1;
		}
	} else {
		/* make check runs us from the build folder; the corpus is
		 * in the source folder. */
		if (srcdir == NULL || srcdir[0] == '\0')
			srcdir = ".";
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", srcdir, fuzz_target_name);
		if (replay_dir(dir, 0, &count) < 0)
			rc = 1;
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/regressions/%s", srcdir, fuzz_target_name);
		if (replay_dir(dir, 1, &count) < 0)
			rc = 1;
	}
	if (rc == 0 && count == 0) {
		fprintf(stderr, "replay: no inputs found for %s\n", fuzz_target_name);
		rc = 1;
	}
	printf("replayed %u inputs for %s: %s\n", count, fuzz_target_name, rc == 0 ? "OK" : "FAILED");
	return rc;
}
