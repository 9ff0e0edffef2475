/* filter-ahead.c — rules evaluated for several messages at once.
 *
 * A rule that runs spamc or bogofilter waits on another process for
 * most of the message's time; evaluated one message at a time, spamd's
 * children take turns and the download waits too.  Here a few workers
 * each evaluate the rules of one message while the fetch goes on reading
 * the next ones; the caller takes the decisions back strictly in the
 * order it queued the messages, so delivery, the state rows, the batch
 * commit and DELE happen in the order and under the rules of the
 * in-line path (doc/crash-safety.md).
 *
 * Thread safety: rules_eval is not reentrant (PCRE2 match data and JIT
 * stack live in struct rules), so each worker has its own copy of the
 * rules, loaded from the same file and checked to say the same thing.
 * The state database is shared: a worker's `duplicate` lookup and the
 * caller's use of it go one at a time under state_mu.  The workers block
 * every signal, so SIGTERM reaches the thread that reads the server. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter-ahead.h"
#include "msg.h"
#include "state.h"

/* held ahead of delivery: this many per worker, and at most this many
 * bytes (one message alone may be bigger: it then goes by itself) */
#define AHEAD_PER_WORKER 4
#define AHEAD_BYTES (64u << 20)

struct job {
	void   *tag;
	const char *uidl;
	size_t  list_size, size;    /* size: as queued (a filter changes m) */
	struct msg *m;
	struct decision d;
	int     rc, done, cancelled;
	struct job *next;
};

struct worker {
	struct ahead *ah;
	struct rules *rules;
	pthread_t tid;
};

struct ahead {
	pthread_mutex_t mu, state_mu;
	pthread_cond_t  work, done;
	struct job *head, *tail, *next;   /* queue order; next: the first not started */
	size_t  held, bytes;
	int     quit;
	struct worker *w;
	int     nw, nalloc;
	const char *account;
	int     timeout;
	struct state *st;
};

int ahead_room(size_t held, size_t bytes, size_t size, int workers)
{
	if (held == 0)
		return 1;
	if (held >= (size_t)(workers > 0 ? workers : 1) * AHEAD_PER_WORKER)
		return 0;
	return bytes + size <= AHEAD_BYTES;
}

struct dupctx {
	struct ahead *ah;
	const char *uidl;
};

static int is_dup(void *arg, const char *message_id)
{
	const struct dupctx *c = arg;
	pthread_mutex_lock(&c->ah->state_mu);
	int r = state_is_duplicate(c->ah->st, message_id, c->ah->account, c->uidl);
	pthread_mutex_unlock(&c->ah->state_mu);
	return r;
}

static void evaluate(struct worker *w, struct job *j)
{
	struct ahead *ah = w->ah;
	size_t hl;
	const char *hdr = msg_header(j->m, &hl);
	struct dupctx dup = { .ah = ah, .uidl = j->uidl };
	/* the LIST size, as the in-line path and the TOP decision use */
	struct msgview v = {
		.account = ah->account, .hdr = hdr, .hdrlen = hl,
		.size = j->list_size ? j->list_size : j->m->size, .msg = j->m,
		.is_duplicate = is_dup, .dup_arg = &dup, .timeout = ah->timeout,
	};
	j->rc = rules_eval(w->rules, &v, &j->d);
}

static struct job *take(struct ahead *ah)
{
	while (ah->next == NULL && !ah->quit)
		pthread_cond_wait(&ah->work, &ah->mu);
	struct job *j = ah->next;
	if (j != NULL) {
		ah->next = j->next;
		/* stopping: what has not started stays on the server, untouched */
		j->cancelled = ah->quit || stop_requested;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct ahead *ah = w->ah;
	pthread_mutex_lock(&ah->mu);
	struct job *j;
	while ((j = take(ah)) != NULL) {
		pthread_mutex_unlock(&ah->mu);
		if (!j->cancelled)
			evaluate(w, j);
		pthread_mutex_lock(&ah->mu);
		j->done = 1;
		pthread_cond_broadcast(&ah->done);
	}
	pthread_mutex_unlock(&ah->mu);
	return NULL;
}

static char *dump(const struct rules *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = r ? open_memstream(&buf, &len) : NULL;
	if (f == NULL)
		return NULL;
	rules_dump(r, f);
	fclose(f);
	return buf;
}

/* A copy of the rules for one worker, the same as the caller's (the file
 * could have changed since the caller read it). */
static struct rules *copy_rules(const struct ahead_opts *o, const char *want, char **err)
{
	struct rules *r = rules_load(o->rules_file, err);
	if (r == NULL)
		return NULL;
	char *got = dump(r);
	if (got == NULL || want == NULL || strcmp(got, want) != 0) {
		seterr(err, "%s changed during the run", o->rules_file);
		rules_free(r);
		r = NULL;
	}
	free(got);
	return r;
}

static int start_workers(struct ahead *ah, const struct ahead_opts *o, char **err)
{
	char *want = dump(o->rules);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);   /* the workers inherit it */
	int rc = 0;
	for (int i = 0; rc == 0 && i < o->workers; i++) {
		struct worker *w = &ah->w[i];
		w->ah = ah;
		if ((w->rules = copy_rules(o, want, err)) == NULL)
			rc = -1;
		else if (pthread_create(&w->tid, NULL, worker_main, w) != 0)
			rc = seterr(err, "cannot start a filter thread");
		ah->nw += rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(want);
	return rc;
}

struct ahead *ahead_new(const struct ahead_opts *o, char **err)
{
	struct ahead *ah = xcalloc(1, sizeof *ah);
	pthread_mutex_init(&ah->mu, NULL);
	pthread_mutex_init(&ah->state_mu, NULL);
	pthread_cond_init(&ah->work, NULL);
	pthread_cond_init(&ah->done, NULL);
	ah->account = o->account;
	ah->timeout = o->timeout;
	ah->st = o->st;
	ah->nalloc = o->workers > 0 ? o->workers : 1;
	ah->w = xcalloc((size_t)ah->nalloc, sizeof *ah->w);
	if (o->workers < 1 || start_workers(ah, o, err) < 0) {
		if (o->workers < 1)
			seterr(err, "no workers");
		ahead_free(ah);
		return NULL;
	}
	return ah;
}

int ahead_workers(const struct ahead *ah)
{
	return ah ? ah->nw : 0;
}

void ahead_submit(struct ahead *ah, void *tag, const char *uidl, size_t list_size,
		  struct msg *m)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->tag = tag;
	j->uidl = uidl;
	j->list_size = list_size;
	j->m = m;
	j->size = m->size;
	pthread_mutex_lock(&ah->mu);
	if (ah->tail)
		ah->tail->next = j;
	else
		ah->head = j;
	ah->tail = j;
	if (ah->next == NULL)
		ah->next = j;
	ah->held++;
	ah->bytes += j->size;
	pthread_cond_signal(&ah->work);
	pthread_mutex_unlock(&ah->mu);
}

size_t ahead_held(const struct ahead *ah, size_t *bytes)
{
	struct ahead *a = (struct ahead *)ah;   /* the lock, not the queue, changes */
	pthread_mutex_lock(&a->mu);
	size_t n = a->held;
	if (bytes)
		*bytes = a->bytes;
	pthread_mutex_unlock(&a->mu);
	return n;
}

/* Unlinks the head (done); called with mu held. */
static struct job *pop(struct ahead *ah)
{
	struct job *j = ah->head;
	if ((ah->head = j->next) == NULL)
		ah->tail = NULL;
	ah->held--;
	ah->bytes -= j->size;
	return j;
}

int ahead_next(struct ahead *ah, int wait, struct ahead_done *out)
{
	pthread_mutex_lock(&ah->mu);
	while (wait && ah->head != NULL && !ah->head->done)
		pthread_cond_wait(&ah->done, &ah->mu);
	struct job *j = ah->head != NULL && ah->head->done ? pop(ah) : NULL;
	pthread_mutex_unlock(&ah->mu);
	if (j == NULL)
		return 0;
	*out = (struct ahead_done){ .tag = j->tag, .m = j->m, .d = j->d, .rc = j->rc,
				    .cancelled = j->cancelled };
	free(j);
	return 1;
}

void ahead_lock_state(struct ahead *ah)
{
	pthread_mutex_lock(&ah->state_mu);
}

void ahead_unlock_state(struct ahead *ah)
{
	pthread_mutex_unlock(&ah->state_mu);
}

void ahead_free(struct ahead *ah)
{
	if (ah == NULL)
		return;
	pthread_mutex_lock(&ah->mu);
	ah->quit = 1;
	pthread_cond_broadcast(&ah->work);
	pthread_mutex_unlock(&ah->mu);
	for (int i = 0; i < ah->nw; i++)
		pthread_join(ah->w[i].tid, NULL);
	for (int i = 0; i < ah->nalloc; i++)
		rules_free(ah->w[i].rules);
	struct ahead_done o;
	/* never handed back: left on the server, unrecorded */
	while (ah->head) {
		ah->head->done = 1;
		ahead_next(ah, 0, &o);
		decision_free(&o.d);
		msg_free(o.m);
		free(o.m);
	}
	pthread_cond_destroy(&ah->work);
	pthread_cond_destroy(&ah->done);
	pthread_mutex_destroy(&ah->mu);
	pthread_mutex_destroy(&ah->state_mu);
	free(ah->w);
	free(ah);
}
