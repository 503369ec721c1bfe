/*
 * slots — one process-wide count of open client connections, kept with
 * relaxed atomics: every worker takes and gives slots, none waits for
 * another.
 */
#include <sluice/slots.h>

static unsigned long slots_open; /* atomic: connections across workers */

unsigned long
slots_take(void)
{
	return __atomic_add_fetch(&slots_open, 1, __ATOMIC_RELAXED);
}

void
slots_give(void)
{
	__atomic_sub_fetch(&slots_open, 1, __ATOMIC_RELAXED);
}

unsigned long
slots_taken(void)
{
	return __atomic_load_n(&slots_open, __ATOMIC_RELAXED);
}
