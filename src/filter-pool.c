/* filter-pool.c — writer threads for `popsift filter`.  Sorting a big
 * Maildir is the kernel creating and renaming one file per message; one
 * thread leaves the second core idle.  Each open mbox or Maildir target
 * belongs to one worker, so a target's writes stay in order and the
 * deliverers need no locks; the caller hands over a message whose targets
 * all belong to the same worker, and drains the pool before it commits,
 * closes or writes anything itself. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "filter-pool.h"
#include "msg.h"

#define QUEUE_MAX  512              /* jobs waiting per worker ... */
#define QUEUE_BYTES (32u << 20)     /* ... and bytes of mail, across workers */

struct job {
	struct target **ts;
	size_t  n;
	struct msg m;
	char   *pre, *sender, *label;
	int     commit;             /* commit ts[0] instead of writing m */
	struct job *next;
};

struct worker {
	struct pool *p;
	pthread_t tid;
	struct job *head, *tail;
	size_t  queued;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t  work, room;     /* a job arrived / a job finished */
	struct worker  *w;
	int     nw, quit;
	size_t  bytes, busy;            /* queued + being delivered */
	unsigned long failed, failed_commits;
};

static void job_free(struct job *j)
{
	msg_free(&j->m);
	free(j->ts);
	free(j->pre);
	free(j->sender);
	free(j->label);
	free(j);
}

static void run_commit(struct pool *p, struct job *j)
{
	char *err = NULL;
	if (j->ts[0]->ops->commit(j->ts[0], &err) < 0) {
		log_err(NULL, "%s", err ? err : "commit failed");
		pthread_mutex_lock(&p->mu);
		p->failed_commits++;
		pthread_mutex_unlock(&p->mu);
	}
	free(err);
}

static void run_job(struct pool *p, struct job *j)
{
	if (j->commit) {
		run_commit(p, j);
		return;
	}
	struct envelope e = { .prepend = j->pre, .prependlen = strlen(j->pre),
			      .sender = j->sender };
	char *err = NULL;
	if (deliver_to(j->ts, j->n, &j->m, &e, &err) < 0) {
		log_err(NULL, "%s: %s", j->label, err ? err : "delivery failed");
		pthread_mutex_lock(&p->mu);
		p->failed++;
		pthread_mutex_unlock(&p->mu);
	}
	free(err);
}

static struct job *take(struct worker *w)
{
	struct pool *p = w->p;
	while (w->head == NULL && !p->quit)
		pthread_cond_wait(&p->work, &p->mu);
	struct job *j = w->head;
	if (j != NULL && (w->head = j->next) == NULL)
		w->tail = NULL;
	return j;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->p;
	pthread_mutex_lock(&p->mu);
	struct job *j;
	while ((j = take(w)) != NULL) {
		pthread_mutex_unlock(&p->mu);
		run_job(p, j);
		size_t size = j->m.size;
		job_free(j);
		pthread_mutex_lock(&p->mu);
		w->queued--;
		p->busy--;
		p->bytes -= size;
		pthread_cond_broadcast(&p->room);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct pool *pool_new(int nworkers)
{
	struct pool *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->room, NULL);
	p->w = xcalloc((size_t)nworkers, sizeof *p->w);
	for (int i = 0; i < nworkers; i++) {
		p->w[i].p = p;
		if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0)
			break;
		p->nw++;
	}
	if (p->nw == 0) {
		pool_free(p);
		return NULL;
	}
	return p;
}

int pool_workers(const struct pool *p)
{
	return p ? p->nw : 0;
}

static void enqueue(struct pool *p, int worker, struct job *j)
{
	struct worker *w = &p->w[worker % p->nw];
	pthread_mutex_lock(&p->mu);
	while (w->queued >= QUEUE_MAX || (p->bytes > QUEUE_BYTES && p->busy > 0))
		pthread_cond_wait(&p->room, &p->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	p->busy++;
	p->bytes += j->m.size;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
}

int pool_submit(struct pool *p, int worker, struct target **ts, size_t n,
		const struct msg *m, const struct envelope *e, const char *label, char **err)
{
	struct job *j = xcalloc(1, sizeof *j);
	msg_init(&j->m);
	if (msg_append(&j->m, m->mem, m->memlen, err) < 0 || msg_finish(&j->m, err) < 0) {
		job_free(j);
		return -1;
	}
	j->ts = xcalloc(n, sizeof *j->ts);
	memcpy(j->ts, ts, n * sizeof *ts);
	j->n = n;
	j->pre = xstrndup(e->prepend, e->prependlen);
	j->sender = e->sender ? xstrdup(e->sender) : NULL;
	j->label = xstrdup(label);
	enqueue(p, worker, j);
	return 0;
}

void pool_commit(struct pool *p, int worker, struct target *t)
{
	struct job *j = xcalloc(1, sizeof *j);
	msg_init(&j->m);
	j->ts = xcalloc(1, sizeof *j->ts);
	j->ts[0] = t;
	j->commit = 1;
	enqueue(p, worker, j);
}

unsigned long pool_drain(struct pool *p, unsigned long *failed_commits)
{
	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->room, &p->mu);
	unsigned long failed = p->failed;
	if (failed_commits)
		*failed_commits += p->failed_commits;
	p->failed = p->failed_commits = 0;
	pthread_mutex_unlock(&p->mu);
	return failed;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_drain(p, NULL);
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nw; i++)
		pthread_join(p->w[i].tid, NULL);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->room);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
}
