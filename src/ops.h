/* ops.h — what follows each account's run for the people and tools
 * watching popsift: the after_run hook (hook.c) and the Prometheus
 * metrics file (metrics.c). */
#ifndef OPS_H
#define OPS_H

#include "fetch.h"

struct state;

/* Run the account's after_run command, if any, with the run's counts in
 * its environment, for at most after_run_timeout seconds.  Its failure is
 * logged; it changes nothing else. */
void hook_run(const struct account *a, const struct result *r);

/* Rewrite cf->metrics (if set) from the state database: every account
 * of the config.  Errors are logged. */
void metrics_write(const struct config *cf, struct state *st);

/* Both, after one account's run; nothing for a dry run. */
void after_account(const struct config *cf, const struct account *a, struct state *st,
		   const struct result *r, int dry_run);

#endif
