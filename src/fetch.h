/* fetch.h — one pass over one account: the path of a message from
 * UIDL to DELE (fetch.c drives the session, fetch-batch.c delivers and
 * commits batches). */
#ifndef FETCH_H
#define FETCH_H

#include <stddef.h>
#include <stdint.h>
#include "popsift.h"
#include "uidmap.h"

struct state;
struct rules;
struct pop3;
struct target;

struct runopts {
	int all;          /* fetch messages already seen */
	int dry_run;
	int progress;     /* a progress line on the terminal */
	int json;         /* stdout carries JSON: --dry-run lines go to stderr */
};

/* One per listed message, up to a million: flags are bits (0 or 1). */
struct srvmsg {
	unsigned long num;
	char   *uidl;
	unsigned long long size;
	unsigned known : 4;      /* enum mstate from the database */
	unsigned fail_state : 4; /* forward failed: M_DEFERRED or M_REJECTED */
	unsigned want : 1;       /* fetch it this run */
	unsigned dele : 1;       /* DELE sent */
	unsigned delivered : 1;  /* delivered and committed this run */
	unsigned failed : 1;
	unsigned keep : 1;       /* rule said keep */
	unsigned skipped : 1;
	unsigned discard : 1;    /* deleted undelivered: a rule, or on_reject discard */
	unsigned rule_discard : 1;   /* a rule said discard */
	unsigned pending : 1;    /* written, waiting for the batch commit */
	char   *rule, *action, *subject, *message_id, *error;
};

struct result {
	int     nnew, delivered, kept, deleted, failed, skipped;
	unsigned long long bytes;
	double  seconds;
	int     code;
	char   *error;
	int     dry_run;    /* the counts say what a run would have done */
};

struct fetch {
	const struct account *a;
	const struct runopts *opts;
	struct state *st;
	struct rules *rules;
	struct pop3  *p;
	struct uidmap known;
	struct srvmsg *msgs;
	size_t  nmsgs, cap;
	int     no_uidl;
	int     list_single;    /* LIST n per message rather than one LIST */
	int     listed;         /* the login and the listing went through */
	int     sized;          /* LIST went with UIDL: every size is known */
	size_t  listpos;        /* LIST's cursor into msgs (sorted by number) */
	unsigned long listlast; /* the last number in the listing being read */
	int     quit_ok;
	size_t  ndele;          /* DELE commands queued this session */
	unsigned long long hash[2];
	/* the batch being fetched */
	struct target **targets;
	size_t  ntargets;
	struct srvmsg **batch;
	struct srvmsg **top;
	size_t  nbatch;
	struct msg *cur;
	size_t  curidx;
	struct ahead *ahead;    /* rules with commands, filter_parallel > 1 (fetch-batch.c) */
	int     ahead_tried;
	struct result r;
	double  started, last_progress;
	int64_t run_id;         /* the runs row, once written */
	char   *secret;
};

/* The batch pipeline's ordering rules (doc/crash-safety.md), checked
 * where they are relied on.  A broken rule is a bug that could DELE
 * mail that is not durable: the process stops at once (abort), before
 * any QUIT, so the server deletes nothing and the journal undoes the
 * rest on the next run. */
#define PIPELINE_CHECK(f, cond) \
	((cond) ? (void)0 : pipeline_broken((f), #cond, __FILE__, __LINE__))
_Noreturn void pipeline_broken(const struct fetch *f, const char *rule, const char *file,
			       int line);

int  fetch_account(const struct account *a, struct state *st, const struct runopts *o,
		   struct result *r);
void result_free(struct result *r);
int  fetch_run_row(struct fetch *f, const struct result *r, int final, char **err);
void result_print(const struct account *a, const struct result *r, int json, int first);
/* report.c: one line per result over a pipe or socket (malloc'd, ends in \n) */
char *result_pack(const struct result *r);
int  result_unpack(const char *line, struct result *r);
/* The worse of two exit codes (78, 77, 69, 65, 70, 75, then any other). */
int  result_worse(int a, int b);

/* fetch-batch.c */
int  batch_message(struct fetch *f, struct srvmsg *sm);
int  batch_commit(struct fetch *f);
void batch_abort(struct fetch *f);
char *received_header(const struct fetch *f, const struct srvmsg *sm);
struct decision;
int  batch_decide(struct fetch *f, struct srvmsg *sm, int body, struct decision *d);
void dry_run_line(struct fetch *f, const struct srvmsg *sm);

/* fetch-recover.c: undo what a dead batch left, before anything else */
int  fetch_recover(struct fetch *f);
/* ...and at the end of the run: drop the IMAP rows once nothing is in doubt */
void fetch_recover_end(struct fetch *f);

/* fetch-session.c: the secret, the connection and the login (USER/PASS
 * queued, and sent already unless the server pipelines) */
/* Commands in flight: ~6 MB of small mail per round trip, what a far
 * server (100 ms) streams on a fast link.  Replies are read as they come
 * and commands sent as the socket takes them, so neither side blocks the
 * other however many are in flight. */
#define FETCH_WINDOW 4096
struct conn;
int  fetch_secret(struct fetch *f, int refresh);
int  session_open(struct fetch *f, struct conn *c);
void session_failed(struct fetch *f, const struct conn *c);

/* fetch-top.c: decide what rules can from TOP n 0 before any RETR */
int  prefetch(struct fetch *f);
void queue_dele(struct fetch *f, struct srvmsg *sm);
/* The one rule for a DELE of a message this run decided on, in both the
 * header-only and the full path: 1 if it may go. */
int  may_dele(const struct fetch *f, const struct srvmsg *sm);
int  fetch_append(struct pop3 *p, struct msg *m, const char *s, size_t n);
int  fetch_fail(struct fetch *f, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
