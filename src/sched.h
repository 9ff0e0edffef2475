/* sched.h — the daemon's scheduler and the one-process-per-database lock. */
#ifndef SCHED_H
#define SCHED_H

#include "popsift.h"

/* flock the state database's lock file, waiting up to wait_s seconds.
 * Returns the fd (held for the life of the process), or -1 with *err.
 * flock dies with its process, so a kill -9 never leaves it stale. */
int lock_state(const struct config *cf, int wait_s, char **err);

/* Is another process holding the state lock right now? */
int lock_busy(const struct config *cf);

/* `popsift daemon`: returns the exit code. */
int sched_run(const char *config_path);

/* Next poll delay for an account after `fails` failures in a row: base
 * (its adaptive interval; 0: interval) with +-10% jitter (rnd in [0,1]),
 * doubled per failure up to max_backoff. */
double sched_delay(const struct account *a, double base, int fails, double rnd);

/* Adaptive intervals: after a poll that found mail the interval is back
 * to `interval`; after an empty one it grows by half, up to
 * sched_max_interval().  Failures leave it alone (backoff is apart). */
double sched_adapt(const struct account *a, double cur, int found_mail);
/* max_interval if written; else interval if written (pinned); else 1800. */
double sched_max_interval(const struct account *a);
/* cur within [interval, sched_max_interval] (0: interval). */
double sched_clamp(const struct account *a, double cur);

#endif
