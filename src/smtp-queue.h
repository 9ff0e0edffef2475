/* smtp-queue.h — the sending thread between the fetch and deliver-smtp.c.
 * Each message costs the SMTP server's round trips (one in a steady
 * stream when it offers PIPELINING, four without).  One thread owns the SMTP connection and
 * works through a bounded queue of jobs, so those waits overlap the
 * POP3 download instead of adding to it.  No libcurl here. */
#ifndef SMTP_QUEUE_H
#define SMTP_QUEUE_H

#include <stddef.h>

#include "deliver.h"
#include "msg.h"

struct smtp;   /* a forward target's settings (deliver-smtp.c) */

/* One message for one or more forward targets. */
struct job {
	struct job   *next;
	struct smtp **legs;        /* tried in order until one fails */
	size_t        nlegs;
	char         *from;        /* envelope sender */
	const char   *pre;         /* lines to put before the header */
	size_t        prelen;
	const struct msg *m;       /* &copy, or the caller's when it waits */
	struct msg    copy;        /* owned: the bytes, or a spilled message's file */
	char         *precopy;
	size_t        charge;      /* bytes held against the queue's bound */
	int           waited;      /* its caller blocks on it: not for forward_wait() */
	int           done;
	struct outcome out;
};

/* deliver-smtp.c: the connection state, made on the calling thread before
 * the sending thread starts and freed after it ends; one job, on the
 * sending thread. */
void smtp_conn_open(void);
void smtp_conn_close(void);
void smtp_send(struct job *j);

/* smtp-queue.c */
void job_free(struct job *j);
/* Hand j to the sending thread (started on first use); blocks while the
 * queue is full.  Without a thread the job runs here and now. */
void sendq_put(struct job *j);
/* Until j is done; then it is the caller's again. */
void sendq_wait(struct job *j);
/* On the sending thread: the job it will send after j, if queued yet. */
const struct job *sendq_peek(const struct job *j);
/* Until the sending thread holds no job that could still use a target. */
void sendq_idle(void);

#endif
