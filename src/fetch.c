/* fetch.c — one account, one pass: log in, UIDL, diff against the state
 * database, LIST, RETR in pipelined batches (delivered and committed by
 * fetch-batch.c), DELE, QUIT; then record what the server confirmed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "deliver.h"
#include "fastuidl.h"
#include "fetch.h"
#include "msg.h"
#include "pop3.h"
#include "rules.h"
#include "secret.h"
#include "state.h"

/* The longest listing taken (doc/popsift.conf.5, LIMITS): about 150 MB
 * to list and diff; a server that lists more is refused, its mailbox
 * left alone, rather than growing memory without end. */
#define MAX_LISTING 1000000ul

static int from_pop3(struct fetch *f)
{
	/* what was committed stays committed; the rest waits, as after any
	 * temporary failure (run's exit status, the daemon's backoff) */
	if (pop3_code(f->p) == POP3_STOPPED)
		return fetch_fail(f, EX_TEMPFAIL, "stopped by a signal; the rest waits for the next run");
	return fetch_fail(f, pop3_code(f->p) ? pop3_code(f->p) : EX_TEMPFAIL, "%s", pop3_error(f->p));
}

static struct srvmsg *add_msg(struct fetch *f, unsigned long num)
{
	if (f->nmsgs == f->cap) {
		f->cap = f->cap ? f->cap + f->cap / 2 : 256;   /* 1.5: a smaller peak when it moves */
		f->msgs = xrealloc(f->msgs, f->cap * sizeof *f->msgs);
	}
	struct srvmsg *sm = &f->msgs[f->nmsgs++];
	memset(sm, 0, sizeof *sm);
	sm->num = num;
	return sm;
}

/* msgs is sorted by number (listings must increase): a whole LIST walks
 * it with a cursor, one pass; a number off the cursor's way (a gap, a
 * LIST n) is found by bisection. */
static struct srvmsg *by_num(struct fetch *f, unsigned long num)
{
	size_t i = f->listpos;
	while (i < f->nmsgs && f->msgs[i].num < num && i - f->listpos < 8)
		i++;
	if (i >= f->nmsgs || f->msgs[i].num != num) {
		size_t lo = 0, hi = f->nmsgs;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (f->msgs[mid].num < num)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	if (i < f->nmsgs && f->msgs[i].num == num) {
		f->listpos = i + 1;
		return &f->msgs[i];
	}
	return NULL;
}

/* A listing line's number: above the last one, and within MAX_LISTING. */
static int listed(struct pop3 *p, const char *what, unsigned long num, unsigned long last,
		  size_t count)
{
	if (num > MAX_LISTING || count >= MAX_LISTING)
		return pop3_fail(p, EX_UNAVAILABLE, "the server's %s lists more than %lu messages, "
				 "popsift's limit: its mailbox is left alone (fetch or delete mail "
				 "with another client until fewer remain)", what, MAX_LISTING);
	if (num <= last)
		return pop3_fail(p, EX_UNAVAILABLE, "the server's %s lists message %lu after %lu: "
				 "numbers must increase; its mailbox is left alone", what, num, last);
	return 0;
}

static int on_uidl(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	unsigned long num;
	const char *u;
	size_t ulen;
	int rc = pop3_uidl_event(p, ev, s, n, &f->no_uidl, &num, &u, &ulen);
	if (rc <= 0)
		return rc;
	if (listed(p, "UIDL", num, f->nmsgs ? f->msgs[f->nmsgs - 1].num : 0, f->nmsgs) < 0)
		return -1;
	/* no UID ("3 "): a header hash names it (hash_unnamed), as without UIDL */
	add_msg(f, num)->uidl = u ? xstrndup(u, ulen) : NULL;
	return 0;
}

static int on_list(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	if (ev == P3_ERR)
		return pop3_fail(p, EX_UNAVAILABLE, "LIST refused: %.*s", (int)n, s);
	/* "LIST n" answers on its status line, "LIST" in its payload */
	int single = ev == P3_OK && f->p != NULL && n > 0 && f->list_single;
	if (ev == P3_OK && !single)
		f->listpos = f->listlast = 0;   /* a whole listing starts */
	if (ev != P3_DATA && !single)
		return 0;
	unsigned long num;
	unsigned long long size;
	if (pop3_parse_list(s, n, &num, &size) < 0)
		return pop3_fail(p, EX_UNAVAILABLE, "malformed LIST line \"%.*s\"",
				 (int)(n > 80 ? 80 : n), s);
	if (!single && listed(p, "LIST", num, f->listlast, f->no_uidl ? f->nmsgs : 0) < 0)
		return -1;
	f->listlast = single ? f->listlast : num;
	struct srvmsg *sm = f->no_uidl ? add_msg(f, num) : by_num(f, num);
	if (sm)
		sm->size = size;
	return 0;
}

/* Without UIDL a message is known by a hash of its header section:
 * stable across sessions, unlike its number. */
static int on_top(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	struct srvmsg *sm = f->top[f->curidx];
	if (ev == P3_ERR && !f->no_uidl) {
		/* one message without a UID on a server without TOP: untouchable */
		log_err(f->a->name, "message %lu has no UIDL and the server refused TOP (%.*s): "
			"it stays on the server", sm->num, (int)n, s);
		f->curidx++;
		return 0;
	}
	if (ev == P3_OK) {
		sm->uidl = xstrdup("");
		f->hash[0] = 1469598103934665603ull;
		f->hash[1] = 0x9e3779b97f4a7c15ull;
	} else if (ev == P3_DATA) {
		for (size_t i = 0; i < n; i++) {
			f->hash[0] = (f->hash[0] ^ (unsigned char)s[i]) * 1099511628211ull;
			f->hash[1] = (f->hash[1] ^ (unsigned char)s[i]) * 0x100000001b3ull + 7;
		}
	} else if (ev == P3_END) {
		free(sm->uidl);
		sm->uidl = xasprintf("hdr-%016llx%016llx", (unsigned long long)f->hash[0],
				     (unsigned long long)f->hash[1]);
		f->curidx++;
	} else {
		return pop3_fail(p, EX_UNAVAILABLE, "server has neither UIDL nor TOP: "
				 "cannot tell messages apart safely");
	}
	return 0;
}

/* TOP n 0 for each message the listing left without a UID; one whose
 * TOP fails keeps a NULL uidl and is left alone (plan). */
static int hash_unnamed(struct fetch *f)
{
	f->top = xcalloc(f->nmsgs + 1, sizeof *f->top);
	size_t n = 0;
	for (size_t i = 0; i < f->nmsgs; i++) {
		if (f->msgs[i].uidl != NULL)
			continue;
		if (!f->no_uidl)
			log_info(f->a->name, "message %lu has no UIDL in the server's listing: "
				 "identifying it by a hash of its headers", f->msgs[i].num);
		f->top[n++] = &f->msgs[i];
	}
	f->curidx = 0;
	for (size_t i = 0; i < n; i++)
		pop3_queue_msg(f->p, f->top[i]->num, on_top, f, "TOP %lu 0", f->top[i]->num);
	int rc = n > 0 ? pop3_flush(f->p) : 0;
	free(f->top);
	f->top = NULL;
	return rc < 0 ? from_pop3(f) : 0;
}

/* LIST said it fits, RETR sent more than max_size: as one LIST called
 * too big, it stays on the server, undelivered, unrecorded, said each run. */
static void too_big(struct fetch *f, struct srvmsg *sm)
{
	sm->want = 0;
	log_err(f->a->name, "message %lu (UIDL %s) sent more than max_size (%lld bytes) though "
		"LIST said %llu: left on the server", sm->num, sm->uidl, f->a->max_size, sm->size);
}

static int on_retr(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	/* one shared index: the k-th RETR reply is for batch[k], every one
	 * arrives while its own batch is the current one */
	PIPELINE_CHECK(f, f->curidx < f->nbatch);
	struct srvmsg *sm = f->batch[f->curidx];
	PIPELINE_CHECK(f, sm->want && !sm->delivered);
	switch (ev) {
	case P3_OK:
		msg_reset(f->cur);
		f->cur->num = sm->num;
		return 0;
	case P3_ERR:
		sm->failed = 1;
		sm->error = xasprintf("RETR %lu: -ERR %.*s", sm->num, (int)n, s);
		log_err(f->a->name, "%s", sm->error);
		f->curidx++;
		return 0;
	case P3_DATA:
		return fetch_append(p, f->cur, s, n);
	case P3_END:
		msg_finish(f->cur, NULL);
		f->curidx++;
		if (f->cur->over) {
			too_big(f, sm);
		} else {
			f->r.bytes += f->cur->size;
			if (batch_message(f, sm) < 0)
				return -1;
		}
		/* stop between messages: the whole ones are committed below */
		return stop_requested ? pop3_fail(p, POP3_STOPPED, "stopped by a signal") : 0;
	}
	return 0;
}

static int on_quit(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	(void)p;
	if (ev == P3_OK)
		f->quit_ok = 1;
	else
		log_err(f->a->name, "QUIT refused: %.*s", (int)n, s);
	return 0;
}

static void drop_msgs(struct fetch *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		free(f->msgs[i].uidl);
	f->nmsgs = 0;
}

static int list_messages(struct fetch *f)
{
	char *err = NULL;
	if (state_load(f->st, f->a->name, &f->known, &err) < 0) {
		fetch_fail(f, EX_TEMPFAIL, "%s", err);
		free(err);
		return -1;
	}
	pop3_queue(f->p, P3_LINES, 0, on_uidl, f, "UIDL");
	/* nothing known: every message is wanted, so LIST goes with UIDL */
	f->sized = f->known.n == 0;
	if (f->sized)
		pop3_queue(f->p, P3_LINES, 0, on_list, f, "LIST");
	if (pop3_flush(f->p) < 0)
		return from_pop3(f);
	if (f->no_uidl) {
		f->sized = 0;
		log_info(f->a->name, "server has no UIDL: identifying messages by a hash of "
			 "their headers");
		drop_msgs(f);
		pop3_queue(f->p, P3_LINES, 0, on_list, f, "LIST");
		if (pop3_flush(f->p) < 0)
			return from_pop3(f);
	}
	return hash_unnamed(f);
}

/* keep 30d: delivered mail goes once it has been on the server that long */
static int expired(const struct fetch *f, const struct uident *e)
{
	return f->a->delete_after > 0 && e && e->first_seen > 0 &&
	       (long long)time(NULL) - e->first_seen >= f->a->delete_after;
}

/* Delivered messages no longer on the server are gone: a run killed
 * after QUIT but before recording it, or mail deleted elsewhere. */
static void forget_gone(struct fetch *f, const struct uidset *here)
{
	char *err = NULL;
	int rc = 0, open = 0;
	for (size_t i = 0; rc == 0 && i < f->known.cap; i++) {
		const struct uident *e = &f->known.tab[i];
		if (e->key == NULL || e->val != M_DELIVERED || uidset_has(here, e->key))
			continue;
		if (!open && (rc = state_begin(f->st, &err)) == 0)
			open = 1;
		if (rc == 0)
			rc = state_set(f->st, f->a->name, e->key, M_DELETED, &err);
	}
	if (open && rc == 0)
		rc = state_commit(f->st, &err);
	if (rc < 0) {
		state_rollback(f->st);
		log_err(f->a->name, "%s", err);
	}
	free(err);
}

/* The diff: what to fetch, and what was delivered in an earlier run but
 * not yet deleted (the run died before QUIT, or keep was turned off). */
static size_t plan(struct fetch *f, int fast)
{
	struct uidset here;   /* the listing's UIDLs, borrowed */
	uidset_init(&here);
	size_t want = 0;
	for (size_t i = 0; i < f->nmsgs; i++) {
		struct srvmsg *sm = &f->msgs[i];
		if (sm->uidl == NULL)
			continue;   /* no UIDL and no TOP: nothing can name it */
		if (!uidset_add(&here, sm->uidl)) {
			log_err(f->a->name, "UIDL %s appears twice: leaving message %lu on the server",
				sm->uidl, sm->num);
			continue;
		}
		struct uident *e = uidmap_find(&f->known, sm->uidl);
		sm->known = e ? e->val : M_NONE;
		int done = sm->known == M_DELIVERED || sm->known == M_DELETED;
		/* the SMTP server refused it: not again until the user acts */
		int refused = sm->known == M_REJECTED;
		sm->want = (!done && !refused) || f->opts->all;
		if (refused && !sm->want && !f->a->on_reject_discard)
			log_err(f->a->name, "message %lu (UIDL %s) was rejected by the SMTP server and "
				"stays on the server (popsift status shows the reply; on_reject discard "
				"deletes it, run --all tries again)", sm->num, sm->uidl);
		done |= refused && f->a->on_reject_discard;
		f->r.nnew += sm->known == M_NONE;
		want += sm->want;
		/* a UIDL the server already confirmed deleted is back: another
		 * message under a reused or duplicate id — never DELE it unread */
		if (sm->known == M_DELETED && !sm->want)
			log_err(f->a->name, "UIDL %s was deleted in an earlier run but is on the "
				"server again: leaving message %lu alone (run --all fetches it)",
				sm->uidl, sm->num);
		else if (done && !sm->want && (!f->a->keep || expired(f, e)))
			f->opts->dry_run ? (void)f->r.deleted++ : queue_dele(f, sm);
	}
	/* a fast listing holds only the tail: the rest is there, not gone */
	if (!fast)
		forget_gone(f, &here);
	uidset_free(&here);
	return want;
}

/* A hostile or huge mailbox cannot make a run unbounded: max_size and
 * max_messages leave the rest on the server, said each run. */
static size_t apply_limits(struct fetch *f)
{
	size_t want = 0;
	int limit = f->a->max_messages;
	for (size_t i = 0; i < f->nmsgs; i++) {
		struct srvmsg *sm = &f->msgs[i];
		if (!sm->want)
			continue;
		if (f->a->max_size > 0 && sm->size > (unsigned long long)f->a->max_size) {
			sm->want = 0;
			log_err(f->a->name, "message %lu (%llu bytes) is larger than max_size (%lld "
				"bytes): left on the server", sm->num, sm->size, f->a->max_size);
		} else if (limit > 0 && want >= (size_t)limit) {
			sm->want = 0;
		} else {
			want++;
		}
	}
	return want;
}

static int fetch_sizes(struct fetch *f, size_t want, unsigned long total)
{
	if (want == 0 || f->no_uidl || f->sized)
		return 0;
	/* a few new messages in a big mailbox: ask for just their sizes */
	f->list_single = want * 8 < total;
	if (!f->list_single)
		pop3_queue(f->p, P3_LINES, 0, on_list, f, "LIST");
	for (size_t i = 0; f->list_single && i < f->nmsgs; i++)
		if (f->msgs[i].want)
			pop3_queue(f->p, P3_SINGLE, 0, on_list, f, "LIST %lu", f->msgs[i].num);
	return pop3_flush(f->p) < 0 ? from_pop3(f) : 0;
}

static void progress(struct fetch *f, size_t done, size_t total)
{
	double t = now_sec();
	if (!f->opts->progress || t - f->last_progress < 0.5)
		return;
	f->last_progress = t;
	fprintf(stderr, "\r%s: %zu/%zu messages, %.1f MB ", f->a->name, done, total,
		(double)f->r.bytes / 1e6);
}

static size_t next_batch(struct fetch *f, size_t *i, struct srvmsg **out, size_t bmax)
{
	size_t n = 0;
	for (; *i < f->nmsgs && n < bmax; (*i)++)
		if (f->msgs[*i].want)
			out[n++] = &f->msgs[*i];
	/* each checked by a LIST behind it: a shifted reply is never delivered
	 * as this message (pop3_queue_msg) */
	for (size_t k = 0; k < n; k++)
		pop3_queue_msg(f->p, out[k]->num, on_retr, f, "RETR %lu", out[k]->num);
	/* on the wire now: the server streams them while we fsync and commit */
	if (n > 0)
		pop3_kick(f->p);
	return n;
}

static void dele_batch(struct fetch *f)
{
	for (size_t k = 0; k < f->nbatch; k++)
		if (may_dele(f, f->batch[k]))
			queue_dele(f, f->batch[k]);
}

/* Batches in flight behind the one being received.  One was not enough
 * far from the server: while batch k commits and its successor's RETRs
 * travel, the server had only batch k+1 left to send, and at 100 ms a
 * round trip it ran dry before each batch.  Four batches of 500 (two
 * commands a message) fill most of FETCH_WINDOW; with DELEs between them
 * the last RETRs wait for room, which costs a little speed, not safety. */
#define AHEAD 3

struct flight {
	struct srvmsg **m;
	size_t n;
	size_t end;   /* pop3_queued() after its last command */
};

static int wanted_from(const struct fetch *f, size_t i)
{
	for (; i < f->nmsgs; i++)
		if (f->msgs[i].want)
			return 1;
	return 0;
}

/* Queue batches until AHEAD wait behind the one at *head. */
static void refill(struct fetch *f, struct flight *fl, size_t head, size_t *nfl, size_t *i,
		   size_t bmax)
{
	while (*nfl < AHEAD + 1 && !stop_requested) {
		struct flight *b = &fl[(head + *nfl) % (AHEAD + 1)];
		b->n = next_batch(f, i, b->m, bmax);
		if (b->n == 0)
			return;
		b->end = pop3_queued(f->p);
		(*nfl)++;
	}
}

/* Batches overlap: the RETRs of the next AHEAD batches go out while one
 * streams in, before it is committed, so the pipeline never drains for
 * an fsync nor waits a round trip between batches. */
static int fetch_batches(struct fetch *f, size_t want)
{
	size_t bmax = f->a->batch ? f->a->batch : 500, done = 0, i = 0, head = 0, nfl = 0;
	struct flight fl[AHEAD + 1];
	for (size_t k = 0; k <= AHEAD; k++)
		fl[k].m = xcalloc(bmax, sizeof *fl[k].m);
	int rc = 0;
	for (;;) {
		refill(f, fl, head, &nfl, &i, bmax);
		if (nfl == 0)
			break;
		struct flight *b = &fl[head];
		f->batch = b->m;
		f->nbatch = b->n;
		f->curidx = 0;
		/* this batch's replies, not the RETRs queued after it; the last
		 * batch also waits for the DELEs behind it, so a stray line
		 * after one is found before QUIT rather than taken as its reply */
		size_t after = nfl == 1 ? 0 : pop3_queued(f->p) - b->end;
		rc = pop3_flush_until(f->p, after);
		if (rc < 0)
			from_pop3(f);
		/* every RETR of the batch answered, each once, in order, and
		 * nothing queued after it: a DELE queued behind later RETRs
		 * (dele_batch) is matched by its own argument */
		PIPELINE_CHECK(f, rc < 0 || f->curidx == f->nbatch);
		PIPELINE_CHECK(f, rc < 0 || pop3_pending(f->p) == after);
		/* what arrived whole is committed even if the connection broke */
		if (batch_commit(f) < 0)
			rc = -1;
		done += f->nbatch;
		progress(f, done, want);
		if (rc < 0)
			break;
		dele_batch(f);
		head = (head + 1) % (AHEAD + 1);
		nfl--;
	}
	f->batch = NULL;
	f->nbatch = 0;
	for (size_t k = 0; k <= AHEAD; k++)
		free(fl[k].m);
	/* stopped between batches, with no reply left to notice it */
	if (rc == 0 && stop_requested && wanted_from(f, i))
		rc = fetch_fail(f, EX_TEMPFAIL, "stopped by a signal; the rest waits for the next run");
	if (f->opts->progress && f->last_progress > 0)
		fputc('\n', stderr);
	return rc;
}

static int any_dele(const struct fetch *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].dele)
			return 1;
	return 0;
}

static int mark_deleted(struct fetch *f)
{
	char *err = NULL;
	if (!any_dele(f))
		return 0;
	int rc = state_begin(f->st, &err);
	for (size_t i = 0; rc == 0 && i < f->nmsgs; i++) {
		if (!f->msgs[i].dele)
			continue;
		f->r.deleted++;
		rc = state_set(f->st, f->a->name, f->msgs[i].uidl, M_DELETED, &err);
	}
	if (rc == 0 && f->run_id)
		rc = fetch_run_row(f, &f->r, 0, &err);
	if (rc == 0)
		rc = state_commit(f->st, &err);
	if (rc < 0) {
		state_rollback(f->st);
		fetch_fail(f, EX_TEMPFAIL, "%s", err);
		free(err);
	}
	return rc;
}

/* No DELE went out: QUIT's reply would commit nothing, so it is not
 * awaited (a round trip saved); the server numbers its messages as it
 * listed them, which is all remember() needs of quit_ok.  What was sent
 * before is answered first: the session ends in step. */
static int quit_now(struct fetch *f)
{
	if (pop3_pending(f->p) > 0 && pop3_flush(f->p) < 0)
		return from_pop3(f);
	pop3_queue(f->p, P3_SINGLE, 0, NULL, NULL, "QUIT");
	pop3_kick(f->p);
	f->quit_ok = 1;
	return 0;
}

static int quit(struct fetch *f)
{
	pop3_stoppable(f->p, 0);
	if (f->ndele == 0)
		return quit_now(f);
	pop3_queue(f->p, P3_SINGLE, 0, on_quit, f, "QUIT");
	if (pop3_flush(f->p) < 0)
		return from_pop3(f);
	if (!f->quit_ok) {
		return any_dele(f) ? fetch_fail(f, EX_TEMPFAIL, "QUIT refused: the server deleted nothing; "
				  "the next run deletes what was delivered") : 0;
	}
	return mark_deleted(f);
}

static char *server_id(const struct account *a)
{
	return xasprintf("%s@%s:%d", a->user, a->host, a->port);
}

/* fast_uidl is for kept mail, and only while nothing kept is due for
 * deletion (keep AGE): finding that needs the full listing. */
static int fast_eligible(struct fetch *f, struct snapshot *snap)
{
	const struct account *a = f->a;
	if (!a->fast_uidl || !a->keep || f->opts->all)
		return 0;
	char *err = NULL, *server = server_id(a);
	long long oldest = 0;
	int rc = state_snapshot_get(f->st, a->name, snap, &err);
	if (rc > 0 && strcmp(snap->server, server) != 0)
		rc = 0;
	if (rc > 0 && a->delete_after > 0 && state_oldest_kept(f->st, a->name, &oldest, &err) < 0)
		rc = -1;
	if (rc > 0 && oldest > 0 && (long long)time(NULL) - oldest >= a->delete_after) {
		log_debug(a->name, "fast_uidl: kept mail is due for deletion: listing every UIDL");
		rc = 0;
	}
	if (rc < 0) {   /* the full listing does without it */
		log_err(a->name, "%s", err);
		free(err);
	}
	free(server);
	return rc > 0;
}

/* The messages after the settled ones, with what the state knows of each:
 * 1, or 0 when the full listing must do (said with -v), or -1. */
static int list_fast(struct fetch *f, const struct snapshot *snap, unsigned long *total)
{
	struct fastlist fl;
	char *err = NULL;
	int rc = fastuidl_list(f->p, snap, &fl);
	for (size_t i = 0; rc > 0 && i < fl.ntail; i++) {
		struct srvmsg *sm = add_msg(f, fl.tail[i].num);
		sm->uidl = fl.tail[i].uidl;
		fl.tail[i].uidl = NULL;
		if (state_load_one(f->st, f->a->name, sm->uidl, &f->known, &err) < 0)
			rc = -2;
		/* delivered before, yet after the settled ones: maybe a second
		 * message under a settled one's UIDL, which only the full
		 * listing can show (and plan report) */
		else if (uidmap_get(&f->known, sm->uidl) == M_DELIVERED) {
			snprintf(fl.why, sizeof fl.why, "message %lu (UIDL %s) was delivered "
				 "before", sm->num, sm->uidl);
			rc = 0;
		}
	}
	*total = fl.count;
	fastlist_free(&fl);
	if (rc == -1)
		return from_pop3(f);
	if (rc == -2) {
		fetch_fail(f, EX_TEMPFAIL, "%s", err);
		free(err);
		return -1;
	}
	if (rc == 0) {
		log_debug(f->a->name, "fast_uidl: %s: listing every UIDL", fl.why);
		drop_msgs(f);
	} else {
		log_debug(f->a->name, "fast_uidl: messages 1-%lu are as the last run left them; "
			  "%zu after them", snap->settled, f->nmsgs);
	}
	return rc;
}

/* Settled: delivered and kept, nothing for a later run to do about it
 * until it is due (keep AGE), so a fast listing may pass it by. */
static int settled(const struct srvmsg *sm)
{
	if (sm->uidl == NULL)
		return 0;
	if (sm->delivered)
		return sm->fail_state == 0;
	return !sm->want && !sm->failed && !sm->skipped && sm->known == M_DELIVERED;
}

/* After a QUIT the server answered: the longest run of settled messages
 * from the first, numbered as the server numbers them now (without what
 * this session deleted), for the next run's fast listing. */
static void remember(struct fetch *f, const struct snapshot *old, int fast)
{
	const struct account *a = f->a;
	if (!a->fast_uidl || !a->keep || f->opts->dry_run || !f->quit_ok)
		return;
	unsigned long first = fast ? old->settled + 1 : 1, pos = first - 1;
	const char *last = fast ? old->last_uidl : NULL;
	for (size_t i = 0; !f->no_uidl && i < f->nmsgs; i++) {
		const struct srvmsg *sm = &f->msgs[i];
		if (sm->num != first + i)
			break;   /* a listing with gaps: positions unknown from here */
		if (sm->dele)
			continue;   /* gone: the messages after it move up */
		if (!settled(sm))
			break;
		pos++;
		last = sm->uidl;
	}
	struct snapshot snap = { .server = server_id(a), .settled = f->no_uidl ? 0 : pos,
				 .last_uidl = last ? xstrdup(last) : NULL };
	char *err = NULL;
	if (state_snapshot_put(f->st, a->name, &snap, &err) < 0) {
		log_err(a->name, "%s", err);
		free(err);
	}
	snapshot_free(&snap);
}

static int session(struct fetch *f, struct conn *c, struct snapshot *snap)
{
	int fast = fast_eligible(f, snap);
	if (session_open(f, c) < 0)
		return -1;
	unsigned long total = 0;
	if (fast)
		fast = list_fast(f, snap, &total);
	if (fast < 0 || (!fast && list_messages(f) < 0))
		return -1;
	f->listed = 1;
	size_t want = plan(f, fast);
	if (fetch_sizes(f, want, fast ? total : f->nmsgs) < 0)
		return -1;
	want = apply_limits(f);
	if (prefetch(f) < 0)
		return from_pop3(f);
	if (fetch_batches(f, want) < 0 || quit(f) < 0)
		return -1;
	remember(f, snap, fast);
	return 0;
}

static void free_fetch(struct fetch *f)
{
	for (size_t i = 0; i < f->nmsgs; i++) {
		struct srvmsg *sm = &f->msgs[i];
		free(sm->uidl); free(sm->rule); free(sm->action);
		free(sm->subject); free(sm->message_id); free(sm->error);
	}
	free(f->msgs);
	free(f->batch);
	free(f->targets);
	uidmap_free(&f->known);
	pop3_free(f->p);
	rules_free(f->rules);
	if (f->cur)
		msg_free(f->cur);
	free(f->cur);
	if (f->secret)
		memset(f->secret, 0, strlen(f->secret));
	free(f->secret);
}

static void record_run(struct fetch *f)
{
	char *err = NULL;
	if (fetch_run_row(f, &f->r, 1, &err) < 0) {
		log_err(f->a->name, "%s", err);
		free(err);
	}
}

static int load_rules(struct fetch *f)
{
	if (f->a->rules == NULL)
		return 0;
	char *err = NULL;
	f->rules = rules_load(f->a->rules, &err);
	if (f->rules == NULL) {
		fetch_fail(f, EX_CONFIG, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

int fetch_account(const struct account *a, struct state *st, const struct runopts *o,
		  struct result *r)
{
	struct fetch f = { .a = a, .opts = o, .st = st };
	struct conn c = { .sock = -1 };
	double t0 = now_sec();
	f.started = (double)time(NULL);
	f.cur = xcalloc(1, sizeof *f.cur);
	msg_init(f.cur);
	/* what arrives, not what LIST announced, bounds the disk a message takes */
	f.cur->max = a->max_size > 0 ? (size_t)a->max_size : 0;
	uidmap_init(&f.known);
	struct snapshot snap = { 0 };
	/* recovery needs the rules: it touches only their destinations */
	if (load_rules(&f) == 0 && fetch_recover(&f) == 0 && fetch_secret(&f, 0) == 0 &&
	    session(&f, &c, &snap) < 0)
		session_failed(&f, &c);
	snapshot_free(&snap);
	batch_abort(&f);
	fetch_recover_end(&f);
	conn_close(&c);
	f.r.seconds = now_sec() - t0;
	f.r.dry_run = o->dry_run;
	if (f.r.code == 0 && f.r.failed > 0)
		fetch_fail(&f, EX_TEMPFAIL, "%d message%s could not be delivered and stay on the server",
			   f.r.failed, f.r.failed == 1 ? "" : "s");
	if (!o->dry_run)   /* its counts are what would have been: not a run for status */
		record_run(&f);
	free_fetch(&f);
	*r = f.r;
	return r->code;
}

void result_free(struct result *r)
{
	free(r->error);
	r->error = NULL;
}
