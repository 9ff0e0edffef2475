/* filter-run.h — run a command over a message (rules' `filter` and
 * `pipe`); see filter-run.c. */
#ifndef FILTER_RUN_H
#define FILTER_RUN_H

#include <stddef.h>

#include "popsift.h"

struct msg;

/* Feeds in to argv (no shell) and collects its output into out (reset
 * by the caller), at most max bytes, all within timeout seconds.  0 and
 * *code its exit status; -1 with err: could not start, timed out,
 * killed, output over max. */
int filter_run(char **argv, struct msg *in, struct msg *out, size_t max, int timeout,
	       int *code, char **err);

struct rules;
/* 1 if some rule runs a command (a filter action or a pipe condition):
 * such rules are worth evaluating for several messages at once. */
int rules_run_commands(const struct rules *r);

#endif
