/* dqueue.h — the sending thread of the asynchronous deliveries (forward
 * over SMTP, append over IMAP).  Each message costs such a server round
 * trips; one thread owns their connections and works through a bounded
 * queue of jobs, so those waits overlap the POP3 download instead of
 * adding to it.  The queue knows nothing of any protocol: it takes each
 * job's transaction from its deliverer's async_ops.  No libcurl here. */
#ifndef DQUEUE_H
#define DQUEUE_H

#include <stddef.h>

#include "deliver.h"
#include "msg.h"

/* One asynchronous target of a job: its deliverer and its settings
 * (struct target's priv, read-only to the sending thread). */
struct leg {
	const struct deliverer *ops;
	void *priv;
};

/* One message for one or more asynchronous targets. */
struct job {
	struct job   *next;
	struct leg   *legs;        /* tried in order until one fails */
	size_t        nlegs;
	char         *from;        /* envelope sender (a prepare() fills it) */
	char        **rcpt;        /* routed recipients (envelope.h), else NULL: each leg's */
	char         *uidl;        /* the POP3 UIDL, or NULL */
	const char   *pre;         /* lines to put before the header */
	size_t        prelen;
	const struct msg *m;       /* &copy, or the caller's when it waits */
	struct msg    copy;        /* owned: the bytes, or a spilled message's file */
	char         *precopy;
	size_t        charge;      /* bytes held against the queue's bound */
	int           waited;      /* its caller blocks on it: not for deliver_wait() */
	int           inflight;    /* sent; its outcome comes with its deliverer's flush() */
	int           done;
	struct outcome out;
};

/* How the sending thread drives one kind of asynchronous delivery. */
struct async_ops {
	/* Calling thread, per leg, before the job is queued: check or make
	 * the target's settings (on its first message); may fill j->from.
	 * -1 sets t->fail_code and *err. */
	int  (*prepare)(struct target *t, struct job *j, const struct envelope *e, char **err);
	/* Sending thread: leg i of j.  0: o is final for this leg (o->rc 0
	 * or -1); 1: sent, and flush() fills o (only for a job of one leg). */
	int  (*send)(struct job *j, size_t i, struct outcome *o);
	/* Sending thread: read the replies of every job send() left in
	 * flight and fill their outcomes; NULL if send() never returns 1. */
	void (*flush)(void);
	/* At exit, after the sending thread ended: QUIT, close, free. */
	void (*shutdown)(void);
};

/* Jobs a deliverer may have in flight before the queue flushes them. */
#define DQUEUE_WINDOW 64

/* A server an asynchronous deliverer gave up on for the rest of the run
 * (unreachable, login refused): later messages fail fast with the same
 * words and exit code instead of trying again each.  key is what the
 * deliverer names it by (an account, a server).  Sending thread only. */
struct down {
	char *key, *why;
	int   code;
	struct down *next;
};
const struct down *down_find(const struct down *list, const char *key);
/* Remember key as down, unless it already is. */
void down_mark(struct down **list, const char *key, int code, const char *why);
void down_free(struct down **list);

void job_free(struct job *j);
/* A deliverer's write() for a message mixed with local destinations
 * (deliver_to()'s order and undo) or in `popsift filter`: queued behind
 * the background jobs and waited for. */
int  dqueue_write(struct target *t, struct msg *m, const struct envelope *e, char **err);
/* For a deliverer's close(): until no job could still use a target. */
void dqueue_idle(void);
/* On the sending thread: the job it will send after j, if queued yet. */
const struct job *dqueue_peek(const struct job *j);

#endif
