/* deliver.h — deliveries behind one small vtable.  A batch opens each
 * destination once (locks, journal entry), writes messages, commits
 * once (fsync), then closes: one fsync per destination per batch. */
#ifndef DELIVER_H
#define DELIVER_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "popsift.h"
#include "state.h"

struct msg;
struct target;
struct async_ops;

/* What goes with one message: lines to put before its header (Received:,
 * add-header) and the envelope sender for mbox "From " lines. */
struct envelope {
	const char *prepend;
	size_t      prependlen;
	const char *sender;
	time_t      when;
	const char *uidl;                /* the POP3 UIDL; NULL in `popsift filter` */
	const struct account *account;   /* forward: SMTP settings; NULL in `popsift filter` */
	/* local recipients routed from envelope headers (NULL: the account's),
	 * and the addresses they were found as, in step; NULL-terminated */
	char *const *rcpts;
	char *const *orig_rcpts;
};

struct deliverer {
	const char *name;
	int  undoable;    /* local: the last write can be taken back, journaled */
	int  journaled;   /* not undoable, but journaled all the same (IMAP checks
	                   * after a crash what landed) */
	int  (*open)(struct target *t, char **err);
	int  (*write)(struct target *t, struct msg *m, const struct envelope *e, char **err);
	void (*undo)(struct target *t);          /* take back the last write */
	int  (*commit)(struct target *t, char **err);
	void (*close)(struct target *t);
	int  (*recover)(const struct journal *j, char **err);
	/* asynchronous (dqueue.h): the sending thread runs these; NULL: local */
	const struct async_ops *async;
};

/* An open destination. */
struct target {
	const struct deliverer *ops;
	struct dest dest;
	struct journal journal;   /* filled by open() for undoable targets */
	int     fd;
	off_t   start, last;      /* mbox: size at open, offset before the last write */
	int     dotlocked, created;
	char   *prefix;           /* Maildir names of this batch start with it */
	char  **pending;          /* Maildir tmp names waiting for commit */
	size_t  npending;
	unsigned long seq;
	int     temp_fail;        /* MDA said 75: try later */
	/* asynchronous: what the last failed write means (cleared by the caller) */
	int     rejected;         /* the server refused it for good (5xx): do not retry */
	int     fail_code;        /* the exit code it implies (EX_TEMPFAIL, EX_NOPERM...) */
	void   *priv;             /* an asynchronous deliverer's settings */
};

extern const struct deliverer deliver_mbox, deliver_maildir, deliver_mda, deliver_smtp,
	deliver_imap, deliver_lmtp;
const struct deliverer *deliverer_for(enum dest_kind k);
/* For deliverers whose every write is final on its own (an MDA's exit,
 * a server's reply): nothing to take back, make durable or recover. */
void deliver_no_undo(struct target *t);
int  deliver_no_commit(struct target *t, char **err);
int  deliver_no_recover(const struct journal *j, char **err);

int  dest_same(const struct dest *a, const struct dest *b);
struct target *target_open(const struct dest *d, char **err);
void target_close(struct target *t);
/* Deliver one message to the given targets: non-undoable first, and
 * every local write taken back if a later one fails. */
int  deliver_to(struct target **ts, size_t n, struct msg *m, const struct envelope *e, char **err);
/* One message, open to close: for `popsift filter`. */
int  deliver_message(const struct dest *dests, size_t n, struct msg *m, char **err);
/* Asynchronous deliveries (forward, imap: dqueue.c): one sending thread
 * owns their connections, so a run fetches the next messages while the
 * servers answer for the last ones.  The outcome of one message: */
struct outcome {
	void *arg;        /* as given to deliver_later() */
	int   rc;         /* 0 accepted by every target, -1 not */
	int   rejected;   /* refused for good (5xx): do not retry */
	int   fail_code;  /* the exit code it implies (EX_TEMPFAIL, EX_NOPERM...) */
	char *err;        /* done() may take it */
};
/* Every target of ts is asynchronous. */
int  deliver_async_only(struct target **ts, size_t n);
/* Queue m for the asynchronous targets ts (tried in order, like
 * deliver_to(), until one fails); the message is copied or, spilled, its
 * temp file kept open, so the caller may reuse m at once.  Blocks while
 * the queue is full.  -1 (err, the targets' fail_code) when it cannot be
 * queued. */
int  deliver_later(struct target **ts, size_t n, struct msg *m, const struct envelope *e,
		   void *arg, char **err);
/* Wait until every queued message is done; done() gets each outcome, in
 * queue order, on the calling thread.  One thread queues and waits. */
void deliver_wait(void (*done)(void *ctx, struct outcome *o), void *ctx);
/* Take back everything the batch wrote to t, before target_close (so
 * under t's lock); -1 and err if that failed. */
int  target_rollback(struct target *t, char **err);
/* mkdir -p that fsyncs each directory it creates and its parent. */
int  mkdirs_durable(const char *dir, char **err);
/* Undo what a journal entry says a crashed batch may have left. */
int  deliver_recover(const struct journal *j, char **err);
/* At the start of a line: 1 if mboxrd quotes it (">*From "), 0 if not,
 * -1 if more bytes are needed to tell. */
int  mboxrd_from_line(const char *s, size_t n);
/* Write chunks as one mboxrd-quoted message (no From_ line) to fd, as
 * mbox delivery does; for the unit tests. */
int  mboxrd_quote_chunks(int fd, const char *const *chunk, const size_t *len, size_t n);
/* Seconds to wait for a lock held by another program. */
#define LOCK_WAIT 60

#endif
