/* fetch-top.c — rules that look only at headers, size and account are
 * decided from LIST and `TOP n 0` before the body is downloaded: skip
 * and discard then cost no body transfer, and --dry-run needs no RETR. */
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "mime.h"
#include "msg.h"
#include "pop3.h"
#include "rules.h"

/* What a header-only decision means for the fetch plan. */
static void apply(struct fetch *f, struct srvmsg *sm)
{
	struct decision d;
	int r = batch_decide(f, sm, 0, &d);
	if (r == 0 && f->opts->dry_run) {
		dry_run_line(f, sm);
		sm->want = 0;
	} else if (r == 0 && d.skip) {
		sm->want = 0;
		sm->skipped = 1;
	} else if (r == 0 && d.discard && d.ndests == 0) {
		sm->want = 0;
		sm->discard = 1;
		sm->pending = 1;
	}
	if (sm->want) {   /* decided again, with the body, after RETR */
		free(sm->rule);
		free(sm->action);
		sm->rule = sm->action = NULL;
	}
	if (!sm->want && !f->opts->dry_run)
		f->batch[f->nbatch++] = sm;
	decision_free(&d);
}

static int on_top(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct fetch *f = arg;
	struct srvmsg *sm = f->top[f->curidx];
	switch (ev) {
	case P3_OK:
		msg_reset(f->cur);
		return 0;
	case P3_ERR:   /* no TOP here: RETR will tell */
		f->curidx++;
		return 0;
	case P3_DATA:
		return fetch_append(p, f->cur, s, n);
	case P3_END:
		msg_finish(f->cur, NULL);
		f->curidx++;
		if (f->cur->over)
			log_info(f->a->name, "message %lu: TOP sent more than max_size; its header "
				 "is decided on", sm->num);
		free(sm->subject);
		free(sm->message_id);
		size_t hl;
		const char *hdr = msg_header(f->cur, &hl);
		sm->subject = mime_header_get(hdr, hl, "Subject", NULL);
		sm->message_id = mime_header_get(hdr, hl, "Message-ID", NULL);
		apply(f, sm);
		return 0;
	}
	return 0;
}

int prefetch(struct fetch *f)
{
	if (f->rules == NULL || (!f->opts->dry_run && !rules_prefetch_useful(f->rules)))
		return 0;
	f->top = xcalloc(f->nmsgs + 1, sizeof *f->top);
	f->batch = xcalloc(f->nmsgs + 1, sizeof *f->batch);
	size_t n = 0;
	for (size_t i = 0; i < f->nmsgs; i++)
		if (f->msgs[i].want)
			f->top[n++] = &f->msgs[i];
	f->curidx = 0;
	f->nbatch = 0;
	for (size_t i = 0; i < n; i++)
		pop3_queue_msg(f->p, f->top[i]->num, on_top, f, "TOP %lu 0", f->top[i]->num);
	int rc = pop3_flush(f->p);
	/* skipped and discarded rows are committed before any DELE */
	if (batch_commit(f) == 0)
		for (size_t i = 0; i < f->nbatch; i++)
			if (may_dele(f, f->batch[i]))
				queue_dele(f, f->batch[i]);
	free(f->top);
	free(f->batch);
	f->top = NULL;
	f->batch = NULL;
	f->nbatch = 0;
	return rc;
}
