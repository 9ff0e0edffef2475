/* filter-ahead.h — rules evaluated for several messages at once, for
 * rules that run external commands (filter-ahead.c). */
#ifndef FILTER_AHEAD_H
#define FILTER_AHEAD_H

#include <stddef.h>

#include "rules.h"

struct ahead;
struct state;
struct msg;

struct ahead_opts {
	const char *account;
	const char *rules_file;
	const struct rules *rules;  /* as the caller loaded them: the workers' copies must agree */
	int     workers;
	int     timeout;            /* seconds per filter or pipe command */
	struct state *st;           /* for `duplicate` */
};

/* NULL with err if the workers could not be set up (the caller then
 * evaluates in line, as with filter_parallel 1). */
struct ahead *ahead_new(const struct ahead_opts *o, char **err);
int  ahead_workers(const struct ahead *ah);
/* Queue m (malloc'd; taken) for the rules; tag and uidl are the
 * caller's and must outlive the job. */
void ahead_submit(struct ahead *ah, void *tag, const char *uidl, size_t list_size,
		  struct msg *m);
/* Messages queued and not yet handed back, and their bytes. */
size_t ahead_held(const struct ahead *ah, size_t *bytes);

struct ahead_done {
	void   *tag;
	struct msg *m;          /* the message as the rules left it (a filter's output) */
	struct decision d;
	int     rc;             /* rules_eval's */
	int     cancelled;      /* a stop came before its rules ran: not evaluated */
};
/* The oldest queued message, once its rules are done (in queue order,
 * whatever order they finish in).  1 with *out filled (the caller frees
 * out->m and out->d); 0 if none is queued, or (wait 0) it is not done. */
int  ahead_next(struct ahead *ah, int wait, struct ahead_done *out);
/* The state database is shared with the workers' `duplicate` lookups:
 * the caller holds this while it uses the state with jobs queued. */
void ahead_lock_state(struct ahead *ah);
void ahead_unlock_state(struct ahead *ah);
/* Waits for the commands running, drops what was not handed back. */
void ahead_free(struct ahead *ah);

/* The pure policy: may one more message of `size` bytes be queued with
 * `held` messages of `bytes` queued, under `workers`? */
int  ahead_room(size_t held, size_t bytes, size_t size, int workers);

#endif
