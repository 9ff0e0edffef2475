/* dqueue.c — the sending thread: jobs in, outcomes out, in order.
 *
 * One thread queues (the fetch, or `popsift filter`) and one sends, so
 * the messages reach each server in the order they were queued and a
 * waited job (a delivery mixed with local destinations) runs only once
 * every job before it is done.  Outcomes go back to the queuing thread
 * through deliver_wait(): the batch commit calls it before it writes a
 * state row or sends a DELE, so what a server did not accept is never
 * recorded as delivered.  A job's message copy is freed as soon as it is
 * sent; the queue holds at most QUEUE_JOBS jobs and QUEUE_BYTES bytes of
 * messages not yet sent (a bigger message goes alone).
 *
 * A deliverer whose protocol lets commands run ahead of their replies
 * (IMAP with LITERAL+) leaves jobs in flight; the queue has it read their
 * replies (flush) before it waits for work, before a job of another kind
 * or with several legs, and when DQUEUE_WINDOW are in flight. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "popsift.h"
#include "conn.h"
#include "dqueue.h"
#include "envelope.h"

#define QUEUE_JOBS  256
#define QUEUE_BYTES (16u << 20)
#define MAX_KINDS   8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  work = PTHREAD_COND_INITIALIZER;    /* a job queued, or stop */
static pthread_cond_t  moved = PTHREAD_COND_INITIALIZER;   /* a job done */
static struct job *head, *tail;   /* queue order; the done ones come first */
static struct job *next_job;      /* the first one not started */
static size_t pending, pending_bytes;   /* jobs not done, and their charge */
static size_t ninflight;                /* sent, waiting for their deliverer's flush */
static const struct async_ops *inflight_ops;
static const struct async_ops *kinds[MAX_KINDS];   /* to shut down at exit */
static size_t nkinds;
static int opened, running, stopping, threadless;
static pthread_t thread;
static pid_t owner;

void job_free(struct job *j)
{
	if (j == NULL)
		return;
	msg_free(&j->copy);
	free(j->precopy);
	free(j->from);
	free_argv(j->rcpt);
	free(j->uidl);
	free(j->legs);
	free(j->out.err);
	free(j);
}

/* Under the lock.  A full queue wakes the queuing thread only once it is
 * half empty: woken per message, it would cost a wake-up (and on a small
 * machine the CPU the servers' dialogues need) for every job. */
static void finish(struct job *j)
{
	j->done = 1;
	j->inflight = 0;
	pending--;
	pending_bytes -= j->charge;
	if (j->waited || pending <= QUEUE_JOBS / 2)
		pthread_cond_broadcast(&moved);
}

/* Send j's legs in order until one fails; 1 if its one leg is in flight.
 * The message is let go of at once: the bound is on what waits. */
static int run(struct job *j)
{
	int r = 0;
	j->out.rc = 0;
	for (size_t i = 0; r == 0 && j->out.rc == 0 && i < j->nlegs; i++)
		r = j->legs[i].ops->async->send(j, i, &j->out);
	msg_free(&j->copy);
	free(j->precopy);
	j->precopy = NULL;
	return r == 1 && j->nlegs == 1;
}

/* Under the lock: have the in-flight jobs' deliverer read their replies. */
static void flush_inflight(void)
{
	if (ninflight == 0)
		return;
	pthread_mutex_unlock(&lock);
	inflight_ops->flush();
	pthread_mutex_lock(&lock);
	for (struct job *j = head; j; j = j->next)
		if (j->inflight)
			finish(j);
	ninflight = 0;
	inflight_ops = NULL;
}

/* Under the lock: what was sent must be answered before j goes. */
static int must_flush(const struct job *j)
{
	return ninflight > 0 &&
	       (j == NULL || j->waited || j->nlegs != 1 || ninflight >= DQUEUE_WINDOW ||
		j->legs[0].ops->async != inflight_ops);
}

/* Under the lock: j was sent. */
static void sent(struct job *j, int inflight)
{
	if (!inflight) {
		finish(j);
		return;
	}
	j->inflight = 1;
	inflight_ops = j->legs[0].ops->async;
	ninflight++;
}

static void *sender(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!stopping && next_job == NULL && ninflight == 0)
			pthread_cond_wait(&work, &lock);
		if (stopping || must_flush(next_job)) {
			flush_inflight();
			if (stopping)
				break;
			continue;
		}
		struct job *j = next_job;
		next_job = j->next;
		pthread_mutex_unlock(&lock);
		int inflight = run(j);
		pthread_mutex_lock(&lock);
		sent(j, inflight);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* At exit, on the thread that calls exit(): jobs not started are dropped
 * (their messages were never recorded, so they stay on the POP3 server),
 * the one being sent is finished, then each deliverer says goodbye. */
static void stop(void)
{
	/* a forked child must not say QUIT on its parent's connections */
	if (getpid() != owner)
		return;
	if (running && pthread_equal(pthread_self(), thread))
		return;   /* exit() on the sending thread itself (out of memory) */
	if (running) {
		pthread_mutex_lock(&lock);
		stopping = 1;
		pthread_cond_signal(&work);
		pthread_mutex_unlock(&lock);
		pthread_join(thread, NULL);
		running = 0;
	}
	while (head) {
		struct job *j = head;
		head = j->next;
		job_free(j);
	}
	tail = next_job = NULL;
	for (size_t i = 0; i < nkinds; i++)
		kinds[i]->shutdown();
	nkinds = 0;
	opened = 0;
}

/* Under the lock: remember a deliverer to shut down at exit. */
static void note_kind(const struct async_ops *ops)
{
	for (size_t i = 0; i < nkinds; i++)
		if (kinds[i] == ops)
			return;
	if (nkinds < MAX_KINDS)
		kinds[nkinds++] = ops;
}

/* Under the lock, on the queuing thread.  If no thread can be made, the
 * jobs run on the queuing thread: slower, not wrong. */
static void start(void)
{
	if (opened && owner != getpid()) {
		/* a fork of a process that delivered: the thread and the
		 * connections stayed with the parent */
		opened = running = 0;
		head = tail = next_job = NULL;
		pending = pending_bytes = ninflight = nkinds = 0;
	}
	if (!opened) {
		/* before the atexit: OpenSSL's exit handler must run after the
		 * deliverers' goodbyes, so libcurl is set up first (`popsift
		 * filter` has not done it yet) */
		conn_global_init();
		owner = getpid();
		opened = 1;
		atexit(stop);
	}
	if (running || threadless || stopping)   /* stopping: exit has begun */
		return;
	/* signals stay with the main thread: its poll() must see SIGTERM */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	running = pthread_create(&thread, NULL, sender, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!running) {
		threadless = 1;   /* do not try again for every message */
		log_err(NULL, "cannot start the sending thread: deliveries without overlap");
	}
}

static int full(const struct job *j)
{
	return pending > 0 && !j->waited &&
	       (pending >= QUEUE_JOBS || pending_bytes + j->charge > QUEUE_BYTES);
}

/* Without a thread the job runs here and now. */
static void run_here(struct job *j)
{
	pthread_mutex_unlock(&lock);
	int inflight = run(j);
	pthread_mutex_lock(&lock);
	sent(j, inflight);
	flush_inflight();
}

static void put(struct job *j)
{
	pthread_mutex_lock(&lock);
	start();
	for (size_t i = 0; i < j->nlegs; i++)
		note_kind(j->legs[i].ops->async);
	while (running && full(j))
		pthread_cond_wait(&moved, &lock);
	j->next = NULL;
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	pending++;
	pending_bytes += j->charge;
	if (!running) {
		run_here(j);
	} else {
		if (next_job == NULL)
			next_job = j;
		pthread_cond_signal(&work);
	}
	pthread_mutex_unlock(&lock);
}

/* Under the lock: take j out of the list. */
static void unlink_job(struct job *j)
{
	struct job **pp = &head, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = j->next;
	if (tail == j)
		tail = prev;
	j->next = NULL;
}

static void wait_for(struct job *j)
{
	pthread_mutex_lock(&lock);
	while (!j->done)
		pthread_cond_wait(&moved, &lock);
	unlink_job(j);
	pthread_mutex_unlock(&lock);
}

const struct job *dqueue_peek(const struct job *j)
{
	pthread_mutex_lock(&lock);
	const struct job *nx = running ? j->next : NULL;
	pthread_mutex_unlock(&lock);
	return nx;
}

void dqueue_idle(void)
{
	pthread_mutex_lock(&lock);
	while (pending > 0)
		pthread_cond_wait(&moved, &lock);
	pthread_mutex_unlock(&lock);
}

void deliver_wait(void (*done)(void *ctx, struct outcome *o), void *ctx)
{
	pthread_mutex_lock(&lock);
	while (pending > 0)
		pthread_cond_wait(&moved, &lock);
	struct job *list = head;
	head = tail = next_job = NULL;
	pthread_mutex_unlock(&lock);
	while (list) {
		struct job *j = list;
		list = j->next;
		if (done)
			done(ctx, &j->out);
		job_free(j);
	}
}

const struct down *down_find(const struct down *list, const char *key)
{
	for (const struct down *d = list; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

void down_mark(struct down **list, const char *key, int code, const char *why)
{
	if (down_find(*list, key))
		return;
	struct down *d = xcalloc(1, sizeof *d);
	d->key = xstrdup(key);
	d->why = xstrdup(why);
	d->code = code;
	d->next = *list;
	*list = d;
}

void down_free(struct down **list)
{
	while (*list) {
		struct down *d = *list;
		*list = d->next;
		free(d->key);
		free(d->why);
		free(d);
	}
}

/* ------------------------------------------------------------ calling thread */

int deliver_async_only(struct target **ts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ts[i]->ops->async == NULL)
			return 0;
	return n > 0;
}

/* A job for ts, each leg's settings checked (its first message makes them). */
static struct job *job_new(struct target **ts, size_t n, struct msg *m,
			   const struct envelope *e, char **err)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->legs = xcalloc(n, sizeof *j->legs);
	j->nlegs = n;
	j->m = m;
	j->pre = e->prepend;
	j->prelen = e->prependlen;
	j->uidl = e->uidl ? xstrdup(e->uidl) : NULL;
	j->rcpt = e->rcpts && e->rcpts[0] ? envelope_dup(e->rcpts) : NULL;
	msg_init(&j->copy);
	for (size_t i = 0; i < n; i++) {
		ts[i]->rejected = ts[i]->fail_code = 0;
		if (ts[i]->ops->async->prepare(ts[i], j, e, err) < 0) {
			job_free(j);
			return NULL;
		}
		j->legs[i] = (struct leg){ .ops = ts[i]->ops, .priv = ts[i]->priv };
	}
	return j;
}

/* The job's own message: the caller reuses its buffers for the next one.
 * A spilled message's unlinked temp file lives on through the dup. */
static int keep_msg(struct job *j, const struct msg *m, const struct envelope *e, char **err)
{
	struct msg *c = &j->copy;
	if (m->fd >= 0 && (c->fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return seterr(err, "cannot keep the message's temp file: %s", strerror(errno));
	if (m->fd < 0 && m->memlen > 0) {
		c->mem = xmalloc(m->memlen);
		memcpy(c->mem, m->mem, m->memlen);
		c->memlen = c->memcap = m->memlen;
	}
	c->size = m->size;
	j->m = c;
	j->precopy = xmalloc(e->prependlen + 1);
	memcpy(j->precopy, e->prepend, e->prependlen);
	j->pre = j->precopy;
	/* a spilled message costs disk rather than memory: bounded all the same */
	j->charge = e->prependlen + m->size;
	return 0;
}

int deliver_later(struct target **ts, size_t n, struct msg *m, const struct envelope *e,
		  void *arg, char **err)
{
	struct job *j = job_new(ts, n, m, e, err);
	if (j == NULL)
		return -1;
	if (keep_msg(j, m, e, err) < 0) {
		ts[0]->fail_code = EX_TEMPFAIL;
		job_free(j);
		return -1;
	}
	j->out.arg = arg;
	put(j);
	return 0;
}

int dqueue_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	struct job *j = job_new(&t, 1, m, e, err);
	if (j == NULL)
		return -1;
	j->waited = 1;
	put(j);
	wait_for(j);
	int rc = j->out.rc;
	t->rejected = j->out.rejected;
	t->fail_code = j->out.fail_code;
	if (rc < 0) {
		free(*err);
		*err = j->out.err;
		j->out.err = NULL;
	}
	job_free(j);
	return rc;
}
