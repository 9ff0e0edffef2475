/* filter-pool.h — writer threads for `popsift filter` (filter-pool.c). */
#ifndef FILTER_POOL_H
#define FILTER_POOL_H

#include "deliver.h"

struct pool;

/* NULL if no thread could be started: the caller writes itself. */
struct pool *pool_new(int nworkers);
int  pool_workers(const struct pool *p);
/* Queue one in-memory message (copied) for the worker that owns all of
 * ts; waits while the queues are full. */
int  pool_submit(struct pool *p, int worker, struct target **ts, size_t n,
		 const struct msg *m, const struct envelope *e, const char *label, char **err);
/* Queue the commit of t for the worker that owns it. */
void pool_commit(struct pool *p, int worker, struct target *t);
/* Wait until every queued job is done; returns how many messages failed
 * (each already logged) since the last drain, and adds the failed
 * commits to *failed_commits. */
unsigned long pool_drain(struct pool *p, unsigned long *failed_commits);
void pool_free(struct pool *p);

#endif
