/*
 * pool_client — the placement record of one client in a pool: which
 * connection its written requests stick to, and pausing and resuming it
 * when the pool is full. Kept by the pool, embedded in the session.
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include <sluice/pool_client.h>

void
pool_client_init(struct pool_client *pc, const struct request_client_ops *rops,
		 const struct pool_client_ops *ops)
{
	memset(pc, 0, sizeof(*pc));
	pc->rc.ops = rops;
	pc->ops = ops;
}

void
pool_client_unpause(struct pool_client *pc)
{
	if (pc->paused_on == NULL)
		return;
	TAILQ_REMOVE(pc->paused_on, pc, pause_link);
	pc->paused_on = NULL;
}

/* A written request left its connection's FIFO (answered or failed): the
 * client may stick to another connection once none is left. */
void
pool_client_unstick(struct pool_client *pc)
{
	assert(pc->n_sticky > 0);
	if (--pc->n_sticky == 0)
		pc->sticky = NULL;
}

void
pool_client_reset(struct pool_client *pc)
{
	pool_client_unpause(pc);
	pc->sticky = NULL;
	pc->n_sticky = 0;
	pc->n_waiting = 0;
}

void
pool_client_stick(struct pool_client *pc, struct upstream *u)
{
	assert(pc->sticky == NULL || pc->sticky == u);
	pc->sticky = u;
	pc->n_sticky++;
}

static void
pool_client_resume(struct pool_client *pc)
{
	pool_client_unpause(pc);
	pc->ops->resume(pc);
}

/* Resumed clients read in the order resumed (deferred callbacks), and the
 * first to read takes the room there is: clients with nothing in the pool
 * go first, so one that pipelines without pause cannot refill the pool
 * ahead of them every time it drains. Resuming defers the reading to the
 * event loop, so none re-joins the list inside this function. */
void
pool_client_wake(struct pool_client_list *list)
{
	struct pool_client *pc, *next;

	for (pc = TAILQ_FIRST(list); pc != NULL; pc = next) {
		next = TAILQ_NEXT(pc, pause_link);
		if (pool_client_outstanding(pc) == 0)
			pool_client_resume(pc);
	}
	while ((pc = TAILQ_FIRST(list)) != NULL)
		pool_client_resume(pc);
}
