/*
 * clock — monotonic time for deadlines. CLOCK_MONOTONIC goes through the
 * vDSO, so reading it per request costs no system call.
 */
#include <time.h>

#include <sluice/clock.h>

uint64_t
clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
clock_ms(void)
{
	return clock_us() / 1000u;
}
