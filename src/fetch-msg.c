/* fetch-msg.c — what the header-only path (fetch-top.c) and the full
 * path (fetch.c) both do with a message: take in its bytes, decide
 * whether it may be deleted, and queue its DELE. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fetch.h"
#include "msg.h"
#include "pop3.h"
#include "state.h"

/* Payload into the message being received; a spill failure stops the session. */
int fetch_append(struct pop3 *p, struct msg *m, const char *s, size_t n)
{
	char *err = NULL;
	if (msg_append(m, s, n, &err) == 0)
		return 0;
	pop3_fail(p, EX_TEMPFAIL, "%s", err);
	free(err);
	return -1;
}

static int on_dele(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct srvmsg *sm = arg;
	if (ev == P3_OK)
		sm->dele = 1;
	else if (ev == P3_ERR)
		log_err(pop3_account(p), "DELE %lu refused (the message stays on the server): %.*s",
			sm->num, (int)n, s);
	return 0;
}

void queue_dele(struct fetch *f, struct srvmsg *sm)
{
	/* only what is committed: this run's batch after its commit, or a
	 * message the state already holds as delivered (or refused and let go) */
	PIPELINE_CHECK(f, !f->opts->dry_run && !sm->pending && !sm->failed);
	PIPELINE_CHECK(f, sm->delivered || sm->known == M_DELIVERED || sm->known == M_REJECTED);
	pop3_queue(f->p, P3_SINGLE, 0, on_dele, sm, "DELE %lu", sm->num);
	f->ndele++;
}

/* Only what this run committed goes, and never under `keep` (the
 * account's or a rule's) unless a rule said discard: the duplicate test
 * never counts a message's own row, so a kept message fetched again by
 * run --all is not discarded as its own duplicate.  on_reject discard is
 * no rule: under keep, a rejected message stays. */
int may_dele(const struct fetch *f, const struct srvmsg *sm)
{
	if (!sm->delivered || sm->keep || f->opts->dry_run)
		return 0;
	return sm->rule_discard || !f->a->keep;
}

/* The run's error (the first one wins) and its exit code: -1. */
int fetch_fail(struct fetch *f, int code, const char *fmt, ...)
{
	if (f->r.error)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&f->r.error, fmt, ap) < 0)
		f->r.error = xstrdup("error");
	va_end(ap);
	f->r.code = code;
	return -1;
}
