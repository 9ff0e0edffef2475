/* smtp-queue.c — the sending thread: jobs in, outcomes out, in order.
 *
 * One thread queues (the fetch, or `popsift filter`) and one sends, so
 * the messages reach the SMTP server in the order they were queued and
 * a waited job (a forward mixed with local destinations) runs only once
 * every job before it is done.  Outcomes go back to the queuing thread
 * through forward_wait(): the batch commit calls it before it writes a
 * state row or sends a DELE, so what the MTA did not accept is never
 * recorded as delivered.  A job's message copy is freed as soon as it is
 * sent; the queue holds at most QUEUE_JOBS jobs and QUEUE_BYTES bytes of
 * messages not yet sent (a bigger message goes alone). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "popsift.h"
#include "smtp-queue.h"

#define QUEUE_JOBS  256
#define QUEUE_BYTES (16u << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  work = PTHREAD_COND_INITIALIZER;    /* a job queued, or stop */
static pthread_cond_t  moved = PTHREAD_COND_INITIALIZER;   /* a job done */
static struct job *head, *tail;   /* queue order; the done ones come first */
static struct job *next_job;      /* the first one not started */
static size_t pending, pending_bytes;   /* jobs not done, and their charge */
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
	free(j->legs);
	free(j->out.err);
	free(j);
}

/* Under the lock.  A full queue wakes the queuing thread only once it is
 * half empty: woken per message, it would cost a wake-up (and on a small
 * machine the CPU the SMTP dialogue needs) for every job. */
static void finish(struct job *j)
{
	j->done = 1;
	pending--;
	pending_bytes -= j->charge;
	if (j->waited || pending <= QUEUE_JOBS / 2)
		pthread_cond_broadcast(&moved);
}

/* Send j, and let go of its message at once: the bound is on what waits. */
static void run(struct job *j)
{
	smtp_send(j);
	msg_free(&j->copy);
	free(j->precopy);
	j->precopy = NULL;
}

static void *sender(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!stopping && next_job == NULL)
			pthread_cond_wait(&work, &lock);
		if (stopping)
			break;
		struct job *j = next_job;
		next_job = j->next;
		pthread_mutex_unlock(&lock);
		run(j);
		pthread_mutex_lock(&lock);
		finish(j);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* At exit, on the thread that calls exit(): jobs not started are dropped
 * (their messages were never recorded, so they stay on the POP3 server),
 * the one being sent is finished, then QUIT. */
static void stop(void)
{
	/* a forked child must not say QUIT on its parent's connection */
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
	smtp_conn_close();
	opened = 0;
}

/* Under the lock, on the queuing thread.  If no thread can be made, the
 * jobs run on the queuing thread: slower, not wrong. */
static void start(void)
{
	if (opened && owner != getpid()) {
		/* a fork of a process that forwarded: the thread and the
		 * connection stayed with the parent */
		opened = running = 0;
		head = tail = next_job = NULL;
		pending = pending_bytes = 0;
	}
	if (!opened) {
		smtp_conn_open();
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
		log_err(NULL, "cannot start the SMTP sending thread: forwarding without overlap");
	}
}

static int full(const struct job *j)
{
	return pending > 0 && !j->waited &&
	       (pending >= QUEUE_JOBS || pending_bytes + j->charge > QUEUE_BYTES);
}

void sendq_put(struct job *j)
{
	pthread_mutex_lock(&lock);
	start();
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
		pthread_mutex_unlock(&lock);
		run(j);
		pthread_mutex_lock(&lock);
		finish(j);
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

void sendq_wait(struct job *j)
{
	pthread_mutex_lock(&lock);
	while (!j->done)
		pthread_cond_wait(&moved, &lock);
	unlink_job(j);
	pthread_mutex_unlock(&lock);
}

const struct job *sendq_peek(const struct job *j)
{
	pthread_mutex_lock(&lock);
	const struct job *nx = running ? j->next : NULL;
	pthread_mutex_unlock(&lock);
	return nx;
}

void sendq_idle(void)
{
	pthread_mutex_lock(&lock);
	while (pending > 0)
		pthread_cond_wait(&moved, &lock);
	pthread_mutex_unlock(&lock);
}

void forward_wait(void (*done)(void *ctx, struct outcome *o), void *ctx)
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
