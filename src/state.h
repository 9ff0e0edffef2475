/* state.h — the SQLite state database (the only user of sqlite3.h):
 * every UIDL seen per account, the delivery journal, and runs. */
#ifndef STATE_H
#define STATE_H

#include <stdint.h>
#include "uidmap.h"

struct state;

struct msgrow {
	const char *uidl;
	int         state;           /* enum mstate */
	int64_t     size;
	const char *message_id;
	const char *subject;
	const char *rule;
	const char *action;
	const char *error;
};

/* A destination a batch is writing to: what recovery must undo. */
struct journal {
	int64_t     id;
	const char *kind;             /* "mbox" or "maildir" */
	const char *path;
	int64_t     offset;           /* mbox size before the batch */
	/* Maildir: file name prefix of the batch; mbox: the token its From_
	 * lines carry */
	const char *prefix;
	int64_t     dev, ino;         /* of the mbox or the Maildir (0: unknown) */
};

struct runrow {
	int64_t id;                   /* 0: not written yet (set when it is) */
	double  started, ended;
	int     nnew, delivered, kept, deleted, status;
	int64_t bytes;
	const char *error;
};

/* Refuses a state directory or database another user owns or may write. */
int  state_check(const char *path, char **err);
int  state_open(const char *path, struct state **st, char **err);
void state_close(struct state *st);
int  state_begin(struct state *st, char **err);
int  state_commit(struct state *st, char **err);
void state_rollback(struct state *st);
int  state_load(struct state *st, const char *acct, struct uidmap *map, char **err);
int  state_put(struct state *st, const char *acct, const struct msgrow *r, char **err);
int  state_set(struct state *st, const char *acct, const char *uidl, int mstate, char **err);
/* sets j->id */
int  state_journal_add(struct state *st, const char *acct, struct journal *j, char **err);
/* one entry, once what it journaled is committed or undone */
int  state_journal_del(struct state *st, int64_t id, char **err);
int  state_journal_each(struct state *st, const char *acct,
			int (*fn)(void *arg, const struct journal *j, char **err), void *arg, char **err);
int  state_journal_clear(struct state *st, const char *acct, char **err);
/* Write the run row: inserted the first time (r->id set), updated after.
 * state_run_add on its own (no fsync of its own); state_run_put inside
 * a transaction, so a batch's counts commit with its messages. */
int  state_run_add(struct state *st, const char *acct, struct runrow *r, char **err);
int  state_run_put(struct state *st, const char *acct, struct runrow *r, char **err);
/* 1 if message_id was delivered before by another message than (acct,
 * uidl) itself, 0 if not, -1 on a database error */
int  state_is_duplicate(struct state *st, const char *message_id, const char *acct,
			const char *uidl);
/* popsift import: record uidl as delivered (first seen `when`, 0: now)
 * unless the account already knows it; *added says which. */
int  state_seed(struct state *st, const char *acct, const char *uidl, long long when,
		const char *source, int *added, char **err);
/* fast_uidl: what a run can skip asking.  Messages 1..settled on server
 * ("user@host:port") were all delivered and kept when a run last listed
 * them, and message `settled` had UIDL last_uidl.  The database forgets
 * it (triggers) as soon as any delivered message changes state. */
struct snapshot {
	char   *server;
	unsigned long settled;
	char   *last_uidl;
};
int  state_snapshot_get(struct state *st, const char *acct, struct snapshot *s, char **err);
/* settled 0 forgets the account's snapshot */
int  state_snapshot_put(struct state *st, const char *acct, const struct snapshot *s,
			char **err);
void snapshot_free(struct snapshot *s);
/* first_seen of the longest-kept delivered message (0: none), for keep AGE */
int  state_oldest_kept(struct state *st, const char *acct, long long *when, char **err);
/* one UIDL's row into map, if the account knows it */
int  state_load_one(struct state *st, const char *acct, const char *uidl, struct uidmap *map,
		    char **err);
/* schedfile: the daemon's schedule, or NULL when no daemon runs */
int  state_status(struct state *st, const char *acct, const char *schedfile, int json,
		  char **err);
/* state-metrics.c: per account that has runs, its totals (metrics.c) */
struct acct_totals {
	const char *account;
	long long runs, nnew, delivered, deleted, bytes, errors, undelivered;
	long long last_exit;
	double  last_ended, last_duration, last_success;   /* 0: none */
};
int  state_metrics(struct state *st, int (*fn)(void *arg, const struct acct_totals *t),
		   void *arg, char **err);
int  state_log(struct state *st, const char *acct, long long since, int json, char **err);

/* "3.40.1": for popsift --version */
const char *state_lib_version(void);

#endif
