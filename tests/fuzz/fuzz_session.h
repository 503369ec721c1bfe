/*
 * fuzz_session — the steps of fuzz_session's scripts (the input format is
 * described at the top of fuzz_session.c), for the tests that write such
 * scripts themselves (check_oom) as make-seeds.py does.
 */
#ifndef SLUICE_FUZZ_SESSION_H
#define SLUICE_FUZZ_SESSION_H

/* A step's tag byte: the operation in the low 4 bits (modulo OP_COUNT),
 * its argument in the high 4 bits. */
enum op {
	OP_CLIENT,        /* data → client (arg & 1) */
	OP_BACKEND,       /* data → backend connection arg (mod the open ones) */
	OP_LOOP,          /* (arg + 1) * 2 loop rounds; arg 15: until quiet */
	OP_ECHO,          /* the backend answers up to arg frames (0: all) with themselves */
	OP_CLIENT_CLOSE,  /* client arg & 1 closes (arg & 2: shutdown(SHUT_WR) only) */
	OP_BACKEND_CLOSE, /* backend connection arg closes */
	OP_TICK,          /* pool_tick 2 h ahead (queue_timeout), arg & 1: 4 h (request_timeout too) */
	OP_TIMERS,        /* upstream timers fire now: arg & 1 backoff, & 2 QUIT grace, & 4 connect */
	OP_SHUTDOWN,      /* session_shutdown_all: proxy-initiated QUIT */
	OP_LISTEN,        /* the backend stops listening (arg & 1: connects are refused) or listens again */
	OP_RESIZE,        /* as a reload would: arg & 1: one connection per server (one retires), else two */
	OP_OOM,           /* the Kth allocation from now fails, and arg more after it: K - 1 is
			   * the data's first two bytes, big-endian (one byte: that
			   * byte; none: K = 1) */
	OP_FILL_TIMERS,   /* libevent's timer heap is filled up but for arg free slots (with
			   * timers of the harness, hours off): the next timers sluice
			   * arms make it grow, an allocation OP_OOM can fail */
	OP_COUNT,
};

#endif
