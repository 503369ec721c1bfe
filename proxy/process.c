/*
 * process — hardening of the sluice process itself: core dumps off, keys in
 * the secure heap, the descriptor limit max_connections needs, and the
 * switch from root to an unprivileged user once the sockets are bound.
 */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <sluice/admin.h>
#include <sluice/config.h>
#include <sluice/log.h>
#include <sluice/process.h>

/* Room for private keys: a P-256 key takes well under 1 KiB of it, so this
 * holds thousands; past it OpenSSL falls back to ordinary memory. */
#define PROCESS_SECURE_HEAP (1024 * 1024)
#define PROCESS_SECURE_MIN 32
/* Descriptors besides clients, backend connections and admin
 * connections: listeners, event loops, the admin endpoint's socket, logs,
 * reloads. */
#define PROCESS_FD_MARGIN 64

int
process_harden(void)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		log_error("cannot disable core dumps: %s", strerror(errno));
		return -1;
	}
	/* Returns 2 when the heap works but could not be locked in memory
	 * (RLIMIT_MEMLOCK): still kept out of core dumps, still worth it. */
	if (CRYPTO_secure_malloc_init(PROCESS_SECURE_HEAP, PROCESS_SECURE_MIN) == 0)
		log_debug("OpenSSL secure heap unavailable; private keys use ordinary memory");
	return 0;
}

static unsigned long
process_fd_need(const struct config *cfg, unsigned workers)
{
	unsigned long backend = 0;
	/* The admin endpoint holds at most this many connections (admin.h),
	 * so a scraper cannot eat into the clients' share. */
	unsigned long admin = cfg->has_admin ? ADMIN_MAX_CONNECTIONS : 0;

	/* A name may become up to CONFIG_MAX_ADDRS_PER_NAME servers: sized
	 * for them all, so that a larger answer never takes clients'
	 * descriptors. */
	for (size_t i = 0; i < cfg->n_backends; i++) {
		const struct config_backend *b = &cfg->backends[i];

		for (size_t s = 0; s < b->n_servers; s++)
			backend += (unsigned long)b->connections *
				   (b->servers[s].addr.host != NULL ? CONFIG_MAX_ADDRS_PER_NAME : 1);
	}
	return (unsigned long)cfg->limits.max_connections + backend * workers + admin +
	       PROCESS_FD_MARGIN;
}

int
process_raise_nofile(const struct config *cfg, unsigned workers)
{
	unsigned long need = process_fd_need(cfg, workers);
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0) {
		log_error("cannot read the file descriptor limit: %s", strerror(errno));
		return -1;
	}
	if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur >= need)
		return 0;
	if (lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= need) {
		lim.rlim_cur = need;
	} else {
		/* Only root may raise the hard limit; try, then explain. */
		lim.rlim_cur = lim.rlim_max = need;
	}
	if (setrlimit(RLIMIT_NOFILE, &lim) == 0) {
		log_info("file descriptor limit raised to %lu for max_connections %llu", need,
			 (unsigned long long)cfg->limits.max_connections);
		return 0;
	}
	getrlimit(RLIMIT_NOFILE, &lim);
	log_error("limits.max_connections %llu needs %lu file descriptors, but the hard limit is %llu "
		  "and cannot be raised (%s): raise it (ulimit -Hn, LimitNOFILE= in systemd) "
		  "or lower limits.max_connections",
		  (unsigned long long)cfg->limits.max_connections, need,
		  (unsigned long long)lim.rlim_max, strerror(errno));
	return -1;
}

static int
process_lookup(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = NULL;
	struct group *gr;

	*uid = getuid();
	*gid = getgid();
	if (cfg->user != NULL) {
		errno = 0;
		pw = getpwnam(cfg->user);
		if (pw == NULL) {
			log_error("user '%s' does not exist%s%s", cfg->user, errno ? ": " : "",
				  errno ? strerror(errno) : "");
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (cfg->group != NULL) {
		errno = 0;
		gr = getgrnam(cfg->group);
		if (gr == NULL) {
			log_error("group '%s' does not exist%s%s", cfg->group, errno ? ": " : "",
				  errno ? strerror(errno) : "");
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int
process_drop_privileges(const struct config *cfg)
{
	uid_t uid;
	gid_t gid;

	if (cfg->user == NULL && cfg->group == NULL)
		return 0;
	if (process_lookup(cfg, &uid, &gid) < 0)
		return -1;
	if (geteuid() != 0) {
		if (uid == geteuid() && gid == getegid())
			return 0;
		log_error("cannot switch to user %s / group %s: sluice is not running as root",
			  cfg->user ? cfg->user : "(unchanged)", cfg->group ? cfg->group : "(unchanged)");
		return -1;
	}
	/* Order matters: groups and gid while still root, uid last. */
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		log_error("cannot drop privileges to uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
			  strerror(errno));
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		log_crit("privileges dropped to uid %u, yet root could be regained", (unsigned)uid);
		return -1;
	}
	/* setuid re-enables dumping; keys are still in memory. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("cannot keep the process non-dumpable: %s", strerror(errno));
	log_info("running as uid %u, gid %u", (unsigned)uid, (unsigned)gid);
	return 0;
}

/* Frames move through evbuffer chains as large as the reads that fill them
 * (up to 64 KiB, or a whole large frame). glibc gives the top of a heap
 * back once 128 KiB of it are free and serves blocks above a sliding
 * threshold with mmap, so under bulk traffic every chain cost fresh pages:
 * some ten page faults per 64 KiB frame, a tenth of sluice's CPU time.
 * Fixed thresholds keep those pages; worker_trim_after_burst still hands
 * free memory back once traffic quiets down. */
#define PROCESS_TRIM_THRESHOLD (16 * 1024 * 1024)
#define PROCESS_MMAP_THRESHOLD (4 * 1024 * 1024)

/* Under AddressSanitizer its own allocator serves every malloc: glibc's
 * tuning means nothing there, and glibc's malloc_trim, which ASan does not
 * intercept, woke glibc's unused arenas and made a worker thread's exit
 * abort ("malloc assertion failure in __malloc_arena_thread_freeres"). */
#if defined(__SANITIZE_ADDRESS__)
#define PROCESS_GLIBC_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROCESS_GLIBC_MALLOC 0
#endif
#endif
#ifndef PROCESS_GLIBC_MALLOC
#define PROCESS_GLIBC_MALLOC 1
#endif

void
process_tune_malloc(void)
{
	if (!PROCESS_GLIBC_MALLOC)
		return;
	if (mallopt(M_TRIM_THRESHOLD, PROCESS_TRIM_THRESHOLD) != 1 ||
	    mallopt(M_MMAP_THRESHOLD, PROCESS_MMAP_THRESHOLD) != 1)
		log_warn("cannot tune the allocator: large frames will cost page faults");
}

void
process_trim_heap(void)
{
	if (PROCESS_GLIBC_MALLOC)
		malloc_trim(0);
}
