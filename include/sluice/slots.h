/*
 * slots — client connections open across all workers, against
 * limits.max_connections: a listener takes a slot for each client it
 * accepts, the session gives it back when it is freed.
 */
#ifndef SLUICE_SLOTS_H
#define SLUICE_SLOTS_H

/* Takes a slot; returns how many are taken now, this one included. */
unsigned long slots_take(void);
void slots_give(void);
unsigned long slots_taken(void);

#endif
