/*
 * process — what the sluice process does to itself before serving:
 * no core dumps and no ptrace access (keys live in its memory), private
 * keys in OpenSSL's secure heap, enough file descriptors for
 * max_connections, a heap that keeps frame-sized buffers, and dropping root
 * once the listening sockets are bound.
 */
#ifndef SLUICE_PROCESS_H
#define SLUICE_PROCESS_H

struct config;

/* Core dumps off and the process not dumpable; OpenSSL's secure heap for
 * private keys (locked in memory, excluded from dumps) when the system
 * allows it. Before any key is loaded. 0 or -1 (reason logged). */
int process_harden(void);

/* Keeps glibc from giving frame-sized buffers back to the system after
 * every use (see process.c). Before the workers start. */
void process_tune_malloc(void);
/* Hands the heap's free pages back to the system (any thread). */
void process_trim_heap(void);

/* Raises RLIMIT_NOFILE to what the configuration needs with `workers`
 * workers (never lowers it), at start and before a reload applies; -1
 * with a message naming the numbers when it cannot. */
int process_raise_nofile(const struct config *cfg, unsigned workers);

/* Switches to cfg->user / cfg->group (when set) for good: supplementary
 * groups, gid, then uid, and checks root cannot be regained. -1 with the
 * reason logged. */
int process_drop_privileges(const struct config *cfg);

#endif
