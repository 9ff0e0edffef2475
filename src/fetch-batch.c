/* fetch-batch.c — what happens to each fetched message (rules,
 * Received:, deliveries) and the group commit that makes a batch
 * durable: one fsync per destination, one SQLite transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "envelope.h"
#include "fetch.h"
#include "filter-ahead.h"
#include "filter-run.h"
#include "mime.h"
#include "msg.h"
#include "pop3.h"
#include "route.h"
#include "rules.h"
#include "state.h"

char *received_header(const struct fetch *f, const struct srvmsg *sm)
{
	char date[64], host[256] = "localhost";
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	gethostname(host, sizeof host - 1);
	const struct account *a = f->a;
	return xasprintf("Received: from %s\n\tby %s with %s (popsift %s)\n\tid %s; %s\n",
			 a->host, host, a->tls == TLS_OFF ? "POP3" : "POP3S", POPSIFT_VERSION,
			 sm->uidl, date);
}

_Noreturn void pipeline_broken(const struct fetch *f, const char *rule, const char *file,
			       int line)
{
	log_err(f->a->name, "internal error: the fetch pipeline broke its ordering rule "
		"\"%s\" (%s:%d); stopping before QUIT, so the server deletes nothing", rule,
		file, line);
	abort();
}

/* The run row as of r: written at the first commit and with every later
 * one (in its transaction, so `status` counts what a poll killed after
 * a commit delivered), and at the end with how the run ended. */
int fetch_run_row(struct fetch *f, const struct result *r, int final, char **err)
{
	struct runrow row = {
		.id = f->run_id, .started = f->started,
		.ended = final ? f->started + r->seconds : (double)time(NULL),
		.nnew = r->nnew, .delivered = r->delivered, .kept = r->kept,
		.deleted = r->deleted, .bytes = (int64_t)r->bytes,
		.status = final ? r->code : EX_TEMPFAIL,
		.error = final ? r->error : "the run had not ended when it last committed "
					    "(still running, or killed); counts as of that commit",
	};
	int rc = final ? state_run_add(f->st, f->a->name, &row, err)
		       : state_run_put(f->st, f->a->name, &row, err);
	if (rc == 0)
		f->run_id = row.id;
	return rc;
}

/* The batch's open target for d, opened (and journaled: durable before
 * the first byte is written) on first use. */
static struct target *target_for(struct fetch *f, const struct dest *d, char **err)
{
	for (size_t i = 0; i < f->ntargets; i++)
		if (dest_same(&f->targets[i]->dest, d))
			return f->targets[i];
	struct target *t = target_open(d, err);
	if (t == NULL)
		return NULL;
	if ((t->ops->undoable || t->ops->journaled) && state_journal_add(f->st, f->a->name, &t->journal, err) < 0) {
		target_close(t);
		return NULL;
	}
	f->targets = xrealloc(f->targets, (f->ntargets + 1) * sizeof *f->targets);
	f->targets[f->ntargets++] = t;
	return t;
}

static char *build_prepend(const struct fetch *f, const struct srvmsg *sm,
			   const struct decision *d)
{
	size_t cap = 256, len = 0;
	char *buf = xmalloc(cap);
	buf[0] = '\0';
	char *recv = f->a->received_header ? received_header(f, sm) : NULL;
	for (size_t i = 0; i <= (d ? d->nadd : 0); i++) {
		const char *line = i == 0 ? recv : d->add_headers[i - 1];
		if (line == NULL)
			continue;
		size_t n = strlen(line);
		if (len + n + 2 > cap)
			buf = xrealloc(buf, cap = (len + n + 2) * 2);
		memcpy(buf + len, line, n);
		len += n;
		if (n == 0 || line[n - 1] != '\n')
			buf[len++] = '\n';
		buf[len] = '\0';
	}
	free(recv);
	return buf;
}

/* What `duplicate` asks the state: the message's own row (account,
 * UIDL) does not count, or a kept message fetched again by run --all
 * would be its own duplicate. */
struct dupctx {
	struct state *st;
	const char *acct, *uidl;
};

static int is_dup(void *arg, const char *message_id)
{
	const struct dupctx *c = arg;
	return state_is_duplicate(c->st, message_id, c->acct, c->uidl);
}

/* What sm becomes by the rules' decision d.  0 decided, 1 needs the
 * body, -1 error (the message stays on the server). */
static int judged(struct fetch *f, struct srvmsg *sm, struct decision *d)
{
	if (d->need_body && !d->error)
		return 1;
	if (d->error) {
		sm->failed = 1;
		sm->error = xstrdup(d->error);
		log_err(f->a->name, "message %lu stays on the server: %s", sm->num, d->error);
		return -1;
	}
	sm->rule = d->rule ? xstrdup(d->rule) : NULL;
	sm->action = d->action ? xstrdup(d->action) : NULL;
	sm->keep = d->keep;
	sm->skipped = d->skip;
	sm->discard = sm->rule_discard = d->discard;
	return 0;
}

/* The rules' decision on f->cur: with body = 0 from TOP's header and
 * LIST's size alone.  As judged(). */
int batch_decide(struct fetch *f, struct srvmsg *sm, int body, struct decision *d)
{
	memset(d, 0, sizeof *d);
	d->use_default = 1;
	if (f->rules == NULL)
		return 0;
	size_t hl;
	const char *hdr = msg_header(f->cur, &hl);
	struct dupctx dup = { .st = f->st, .acct = f->a->name, .uidl = sm->uidl };
	/* the LIST size, as before the download, so both decisions agree */
	struct msgview v = {
		.account = f->a->name, .hdr = hdr, .hdrlen = hl,
		.size = sm->size ? sm->size : f->cur->size,
		.msg = body ? f->cur : NULL, .is_duplicate = is_dup, .dup_arg = &dup,
		.timeout = f->a->timeout,
	};
	rules_eval(f->rules, &v, d);
	return judged(f, sm, d);
}

static void tally(const struct fetch *f, const struct srvmsg *sm, struct result *r);

/* --dry-run: one line for the message, and the counts a real run would
 * make of it (tally, may_dele), so the summary says what would happen
 * and agrees with `status` after the real run. */
void dry_run_line(struct fetch *f, const struct srvmsg *sm)
{
	char *subj = text_safe(sm->subject ? sm->subject : "(no subject)");
	char *act = text_safe(sm->action ? sm->action : "deliver");
	fprintf(f->opts->json ? stderr : stdout, "%s: %lu %s | %s | %s\n", f->a->name, sm->num,
		subj, sm->rule ? sm->rule : "default", act);
	free(subj);
	free(act);
	if (sm->skipped) {
		f->r.skipped++;
		return;
	}
	tally(f, sm, &f->r);
	f->r.deleted += !sm->keep && (sm->rule_discard || !f->a->keep);
}

/* A failed forward says how (deliver-smtp.c): deferred or rejected, and
 * the exit code it gives the run (EX_NOPERM for a refused SMTP login).
 * Returns 1 for a rejected message that on_reject discard lets go. */
static int forward_failure(struct fetch *f, struct srvmsg *sm, int code, int rejected,
			   const char *err)
{
	if (code == 0)
		return 0;
	sm->fail_state = rejected ? M_REJECTED : M_DEFERRED;
	if (rejected && f->a->on_reject_discard)
		return 1;
	if (f->r.code == 0 || code == EX_NOPERM || code == EX_CONFIG) {
		f->r.code = code;
		free(f->r.error);
		f->r.error = xstrdup(err);
	}
	return 0;
}

/* What became of sm, now or (forwarded in the background) at the batch
 * commit; takes err. */
static void settle(struct fetch *f, struct srvmsg *sm, int rc, int code, int rejected, char *err)
{
	if (rc < 0 && forward_failure(f, sm, code, rejected, err)) {
		sm->pending = 1;   /* rejected, and on_reject discard: deleted all the same */
		sm->discard = 1;
		sm->error = err;
		log_err(f->a->name, "message %lu discarded (on_reject discard): %s", sm->num, err);
	} else if (rc < 0) {
		sm->failed = 1;
		sm->error = err;
		log_err(f->a->name, "message %lu stays on the server: %s", sm->num, err);
	} else {
		sm->pending = 1;
		free(err);
	}
}

static void forwarded(void *ctx, struct outcome *o)
{
	settle(ctx, o->arg, o->rc, o->fail_code, o->rejected, o->err);
	o->err = NULL;
}

/* The failure the targets of a failed delivery report, and reset. */
static void failure_of(struct target **ts, size_t n, int *code, int *rejected)
{
	*code = *rejected = 0;
	for (size_t i = 0; i < n && ts[i]; i++) {
		*code = ts[i]->fail_code ? ts[i]->fail_code : *code;
		*rejected |= ts[i]->rejected;
		ts[i]->fail_code = ts[i]->rejected = 0;
	}
}

/* A domain mailbox's recipients (route.h); 1 when every one of them had
 * the message already (it looped back): delivered nowhere, deleted as a
 * discard, since those users hold it. */
static int route_of(struct fetch *f, struct srvmsg *sm, struct msg *m, struct routed *rt)
{
	size_t hl;
	const char *hdr = msg_header(m, &hl);
	route_message(f->a->route, hdr, hl, rt);
	for (size_t i = 0; i < rt->nloops; i++)
		log_err(f->a->name, "message %lu: mail loop: a Delivered-To shows %s had it "
			"already; not delivered to %s again", sm->num, rt->loops[i], rt->loops[i]);
	for (size_t i = 0; i < rt->n; i++)
		log_debug(f->a->name, "message %lu: %s routed to %s", sm->num, rt->orig[i],
			  rt->rcpt[i]);
	if (rt->nloops == 0 || rt->n > 0)
		return 0;
	sm->pending = sm->discard = 1;
	return 1;
}

/* The batch's target for each destination; the state (the journal) is
 * shared with the filter workers' `duplicate` lookups. */
static int targets_for(struct fetch *f, const struct decision *d, struct target **ts,
		       size_t n, char **err)
{
	int rc = 0;
	if (f->ahead)
		ahead_lock_state(f->ahead);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct dest *dst = i < d->ndests ? &d->dests[i] : &f->a->dests[i - d->ndests];
		if ((ts[i] = target_for(f, dst, err)) == NULL)
			rc = -1;
	}
	if (f->ahead)
		ahead_unlock_state(f->ahead);
	return rc;
}

static int deliver_one(struct fetch *f, struct srvmsg *sm, struct msg *m,
		       const struct decision *d)
{
	struct routed rt;
	if (route_of(f, sm, m, &rt)) {
		routed_free(&rt);
		return 0;
	}
	/* the rules' destinations, then the account's when no final rule chose */
	size_t nacct = d->use_default ? f->a->ndests : 0, n = d->ndests + nacct;
	struct target **ts = xcalloc(n + 1, sizeof *ts);
	char *err = NULL, *sender = NULL;
	int rc = n == 0 ? seterr(&err, "no destination: no rule chose one and the account "
				 "has no deliver line") : targets_for(f, d, ts, n, &err);
	size_t hl;
	const char *hdr = msg_header(m, &hl);
	sender = envelope_sender(hdr, hl);
	char *pre = build_prepend(f, sm, d);
	struct envelope e = { .prepend = pre, .prependlen = strlen(pre), .sender = sender,
			      .uidl = sm->uidl, .account = f->a, .rcpts = rt.rcpt,
			      .orig_rcpts = rt.orig };
	/* asynchronous deliveries alone go to the sending thread, settled at
	 * the batch commit; a local copy alongside needs deliver_to()'s order
	 * and undo, so waits */
	int later = rc == 0 && deliver_async_only(ts, n);
	if (later)
		rc = deliver_later(ts, n, m, &e, sm, &err);
	else if (rc == 0)
		rc = deliver_to(ts, n, m, &e, &err);
	if (!later || rc < 0) {
		int code, rejected;
		failure_of(ts, n, &code, &rejected);
		settle(f, sm, rc, code, rejected, err);
	}
	free(pre);
	free(sender);
	free(ts);
	routed_free(&rt);
	return 0;
}

/* Carry out the decision d on sm, whose message is m. */
static void act_on(struct fetch *f, struct srvmsg *sm, struct msg *m, const struct decision *d)
{
	if (f->opts->dry_run)
		dry_run_line(f, sm);
	else if (sm->discard && d->ndests == 0)
		sm->pending = 1;   /* delivered nowhere, deleted all the same */
	else if (!sm->skipped)
		deliver_one(f, sm, m, d);   /* a discard after `continue` copies: those first */
}

/* ---- rules with commands: several messages at once (filter-ahead.c) ---- */

/* The workers, the first time a message needs them; NULL: in line. */
static struct ahead *ahead_of(struct fetch *f)
{
	if (f->ahead_tried)
		return f->ahead;
	f->ahead_tried = 1;
	int n = f->a->filter_parallel > 64 ? 64 : f->a->filter_parallel;
	if (n <= 1 || !rules_run_commands(f->rules))
		return NULL;
	struct ahead_opts o = { .account = f->a->name, .rules_file = f->a->rules,
				.rules = f->rules, .workers = n, .timeout = f->a->timeout,
				.st = f->st };
	char *err = NULL;
	f->ahead = ahead_new(&o, &err);
	if (f->ahead == NULL)
		log_err(f->a->name, "filters run one message at a time: %s", err);
	free(err);
	return f->ahead;
}

/* Hand back the oldest message whose rules are done (wait: until they
 * are) and deliver it; 0 if there was none. */
static int settle_next(struct fetch *f, int wait)
{
	struct ahead_done o;
	if (f->ahead == NULL || !ahead_next(f->ahead, wait, &o))
		return 0;
	struct srvmsg *sm = o.tag;
	if (o.cancelled)
		log_info(f->a->name, "message %lu stays on the server: stopped before its rules "
			 "ran", sm->num);
	else if (judged(f, sm, &o.d) == 0)
		act_on(f, sm, o.m, &o.d);
	decision_free(&o.d);
	msg_free(o.m);
	free(o.m);
	return 1;
}

/* f->cur goes to the workers; the fetch reads on while they run its
 * rules, as far ahead as ahead_room allows. */
static void queue_ahead(struct fetch *f, struct srvmsg *sm)
{
	size_t bytes, held = ahead_held(f->ahead, &bytes);
	while (!ahead_room(held, bytes, f->cur->size, ahead_workers(f->ahead))) {
		settle_next(f, 1);
		held = ahead_held(f->ahead, &bytes);
	}
	struct msg *m = xmalloc(sizeof *m);
	size_t max = f->cur->max;
	msg_init(m);
	msg_take(m, f->cur);
	m->num = sm->num;
	f->cur->max = max;
	ahead_submit(f->ahead, sm, sm->uidl, (size_t)sm->size, m);
	while (settle_next(f, 0))
		;
}

int batch_message(struct fetch *f, struct srvmsg *sm)
{
	size_t hl;
	const char *hdr = msg_header(f->cur, &hl);
	free(sm->message_id);
	free(sm->subject);
	free(sm->rule);
	free(sm->action);
	sm->rule = sm->action = NULL;
	sm->message_id = mime_header_get(hdr, hl, "Message-ID", NULL);
	sm->subject = mime_header_get(hdr, hl, "Subject", NULL);
	if (f->rules != NULL && ahead_of(f) != NULL) {
		queue_ahead(f, sm);
		return 0;
	}
	struct decision d;
	if (batch_decide(f, sm, 1, &d) == 0)
		act_on(f, sm, f->cur, &d);
	decision_free(&d);
	return 0;
}

/* Take back a failed batch's writes, each while its target still holds
 * its lock, then drop the journal entry of each target that was undone.
 * An entry whose undo failed stays for the next run's recovery (which
 * then refuses to fetch until it succeeds).  -1 if any undo failed. */
static int roll_back(struct fetch *f)
{
	int rc = 0;
	for (size_t i = 0; i < f->ntargets; i++) {
		struct target *t = f->targets[i];
		char *err = NULL;
		if (!t->ops->undoable)
			continue;
		if (target_rollback(t, &err) < 0) {
			log_err(f->a->name, "%s; the journal keeps it for the next run's recovery",
				err);
			rc = -1;
		} else if (state_journal_del(f->st, t->journal.id, &err) < 0) {
			log_err(f->a->name, "%s", err);   /* undone twice next run: harmless */
		}
		free(err);
	}
	return rc;
}

static int close_targets(struct fetch *f, int recover)
{
	int rc = recover ? roll_back(f) : 0;
	for (size_t i = 0; i < f->ntargets; i++)
		target_close(f->targets[i]);
	f->ntargets = 0;
	return rc;
}

static int commit_targets(struct fetch *f, char **err)
{
	for (size_t i = 0; i < f->ntargets; i++)
		if (f->targets[i]->ops->commit(f->targets[i], err) < 0)
			return -1;
	return 0;
}

static int put_row(struct fetch *f, struct srvmsg *sm, int state, char **err)
{
	struct msgrow row = {
		.uidl = sm->uidl, .state = state, .size = (int64_t)sm->size,
		.message_id = sm->message_id, .subject = sm->subject, .rule = sm->rule,
		.action = sm->discard ? "discard" : sm->action, .error = sm->error,
	};
	return state_put(f->st, f->a->name, &row, err);
}

/* What one committed message adds to the counts. */
static void tally(const struct fetch *f, const struct srvmsg *sm, struct result *r)
{
	r->delivered += !sm->discard;
	r->kept += sm->keep || (f->a->keep && !sm->rule_discard);
}

static int record_batch(struct fetch *f, char **err)
{
	int64_t run_id = f->run_id;
	int rc = state_begin(f->st, err);
	for (size_t k = 0; rc == 0 && k < f->nbatch; k++) {
		struct srvmsg *sm = f->batch[k];
		if (sm->pending)
			rc = put_row(f, sm, sm->fail_state ? sm->fail_state : M_DELIVERED, err);
		else if (sm->failed)
			rc = put_row(f, sm, sm->fail_state ? sm->fail_state : M_FAILED, err);
		else if (sm->skipped)
			rc = put_row(f, sm, M_SKIPPED, err);
	}
	/* the run row counts what this commit makes durable */
	struct result next = f->r;
	for (size_t k = 0; k < f->nbatch; k++)
		if (f->batch[k]->pending)
			tally(f, f->batch[k], &next);
	if (rc == 0)
		rc = fetch_run_row(f, &next, 0, err);
	/* this batch's entries only: one a failed batch left stays */
	for (size_t i = 0; rc == 0 && i < f->ntargets; i++)
		if (f->targets[i]->ops->undoable)
			rc = state_journal_del(f->st, f->targets[i]->journal.id, err);
	if (rc == 0)
		rc = state_commit(f->st, err);
	if (rc < 0) {
		state_rollback(f->st);
		f->run_id = run_id;   /* a row inserted here is gone with the rest */
	}
	return rc;
}

static void count_batch(struct fetch *f, int ok, const char *why)
{
	for (size_t k = 0; k < f->nbatch; k++) {
		struct srvmsg *sm = f->batch[k];
		if (sm->pending && ok) {
			sm->delivered = 1;
			tally(f, sm, &f->r);
		} else if (sm->pending) {
			sm->failed = 1;
			sm->error = xstrdup(why);
		}
		sm->pending = 0;
		f->r.failed += sm->failed;
		f->r.skipped += sm->skipped;
	}
}

/* Make the batch durable: wait for what the SMTP server said to every
 * forward still in flight (nothing the MTA did not accept is recorded or
 * deleted), fsync every destination, then one transaction marks its
 * messages delivered and drops the journal.  If either fails, the
 * batch's local writes are taken back and its messages stay on the
 * server. */
int batch_commit(struct fetch *f)
{
	/* every message of the batch delivered, in order, before anything
	 * is made durable */
	while (settle_next(f, 1))
		;
	deliver_wait(forwarded, f);
	if (f->nbatch == 0 && f->ntargets == 0)
		return 0;   /* nothing to make durable: no fsync for an empty poll */
	if (f->opts->dry_run) {
		close_targets(f, 0);
		return 0;
	}
	char *err = NULL;
	int rc = commit_targets(f, &err);
	if (rc == 0)
		rc = record_batch(f, &err);
	if (rc < 0)
		log_err(f->a->name, "batch not delivered: %s", err);
	close_targets(f, rc < 0);
	count_batch(f, rc == 0, err ? err : "");
	free(err);
	return rc;
}

void batch_abort(struct fetch *f)
{
	/* never recorded: those messages stay on the server */
	ahead_free(f->ahead);
	f->ahead = NULL;
	deliver_wait(NULL, NULL);
	if (f->ntargets > 0)
		close_targets(f, 1);
}
