/* rules-eval.c — run the rules over one message.
 *
 * Three-valued: before the download a body condition is unknown.  The
 * evaluation goes left to right with short circuit, and stops at the
 * first unknown it meets; the parser put conditions that need no body
 * first.  So a decision made before the download followed exactly the
 * path the evaluation after the download will follow: same result, same
 * captures, same errors.
 *
 * Work is lazy and cached per message: the header section is scanned
 * once for the fields the rules name, a field is decoded only when a rule
 * reaches it, and the body is decoded only when a body rule is reached. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match.h"
#include "mime.h"
#include "msg.h"

static int eval_cond(const struct cond *c, struct evalctx *x)
{
	int a;
	switch (c->kind) {
	case C_LEAF:
		if (c->needs_body && x->v->msg == NULL)
			return T_UNKNOWN;
		return c->ops->eval(c->data, x);
	case C_NOT:
		a = eval_cond(c->a, x);
		return a == T_TRUE ? T_FALSE : a == T_FALSE ? T_TRUE : a;
	case C_AND:
		a = eval_cond(c->a, x);
		return a == T_TRUE ? eval_cond(c->b, x) : a;
	case C_OR:
		a = eval_cond(c->a, x);
		return a == T_FALSE ? eval_cond(c->b, x) : a;
	}
	return -1;
}

static void reset_captures(struct evalctx *x)
{
	memset(x->cap, 0, sizeof x->cap);
	x->capid = -1;
}

static void append_text(char **text, const char *s)
{
	char *t = *text ? xasprintf("%s, %s", *text, s) : xstrdup(s);
	free(*text);
	*text = t;
}

static void free_dests(struct decision *d)
{
	for (size_t i = 0; i < d->ndests; i++) {
		free(d->dests[i].path);
		free_argv(d->dests[i].argv);
	}
	free(d->dests);
	d->dests = NULL;
	d->ndests = 0;
	for (size_t i = 0; i < d->nadd; i++)
		free(d->add_headers[i]);
	free(d->add_headers);
	d->add_headers = NULL;
	d->nadd = 0;
}

/* What the final rule (or no rule) leaves to the account's deliver. */
static void finish(struct evalctx *x, const struct rule *final, struct decision *d,
		   char **text)
{
	d->matched = final != NULL;
	if (final != NULL)
		d->rule = xasprintf("%s:%d", x->r->file, final->line);
	if (d->skip) {
		/* never downloaded: copies asked for by earlier rules cannot be made */
		free_dests(d);
		free(*text);
		*text = xstrdup("skip");
		return;
	}
	d->use_default = final == NULL || (!final->delivers && !d->discard);
	if (d->use_default)
		append_text(text, "default");
}

/* 0 decided, 1 needs the body, -1 error. */
static int run(struct evalctx *x, struct decision *d, char **text)
{
	const struct rule *final = NULL;
	for (size_t i = 0; i < x->r->n && final == NULL; i++) {
		const struct rule *ru = &x->r->v[i];
		x->rule = ru;
		reset_captures(x);
		int t = eval_cond(ru->cond, x);
		if (t < 0)
			return -1;
		if (t == T_UNKNOWN)
			return 1;
		if (t == T_FALSE)
			continue;
		for (size_t k = 0; k < ru->nacts; k++) {
			int rc = action_apply(&ru->acts[k], x, d, text);
			if (rc != 0)
				return rc;
		}
		if (ru->final)
			final = ru;
	}
	finish(x, final, d, text);
	return 0;
}

static void ctx_free(struct evalctx *x)
{
	for (size_t i = 0; i < x->npool; i++)
		free(x->pool[i]);
	free(x->pool);
	for (size_t i = 0; i < x->r->nh; i++)
		free(x->slots[i].v);
	free(x->slots);
	free(x->raw);
	free(x->all);
}

int rules_eval(struct rules *r, const struct msgview *v, struct decision *d)
{
	memset(d, 0, sizeof *d);
	if (r == NULL) {
		d->use_default = 1;
		d->action = xstrdup("default");
		return 0;
	}
	struct evalctx x = { .r = r, .view = *v };
	x.v = &x.view;
	x.slots = xcalloc(r->nh ? r->nh : 1, sizeof *x.slots);
	char *text = NULL;
	int rc = run(&x, d, &text);
	if (rc != 0) {
		decision_free(d);
		free(text);
		text = NULL;
		d->need_body = rc > 0;
		if (rc < 0)
			d->error = x.error ? x.error : xstrdup("rules: evaluation failed");
		x.error = NULL;
	}
	d->action = text;
	ctx_free(&x);
	free(x.error);
	return rc < 0 ? -1 : 0;
}

void decision_free(struct decision *d)
{
	if (d == NULL)
		return;
	free_dests(d);
	free(d->rule);
	free(d->action);
	free(d->error);
	memset(d, 0, sizeof *d);
}
