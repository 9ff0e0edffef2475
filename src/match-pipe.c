/* match-pipe.c — the rules' external commands: the `filter` action
 * (the message goes through a command and its output is the message
 * from then on) and the `pipe "COMMAND" [returns CODES] [=~ /re/]`
 * condition (a verdict: exit status, optionally a regex on the output;
 * the message is left as it is).  filter-run.c runs them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter-run.h"
#include "match.h"
#include "msg.h"

#define PIPE_MAX_OUTPUT (1u << 20)      /* a verdict is a line, not a message */
#define FILTER_SLACK    (1u << 20)      /* output bound: twice the input and this */

/* ---- exit codes: "0", "0,1", "0-2" ---- */

int codes_parse(struct parser *p, struct codes *c)
{
	size_t at;
	char *w;
	memset(c, 0, sizeof *c);
	if (lx_word(&p->lx, &w, &at) <= 0 || w[0] == '\0') {
		free(w);
		return lx_error(&p->lx, at, "expected exit codes after returns (0, 0,1 or 0-2)");
	}
	char *s = w;
	int rc = 0;
	while (rc == 0 && *s) {
		char *e;
		long a = strtol(s, &e, 10), b = a;
		if (e != s && *e == '-')
			b = strtol(s = e + 1, &e, 10);
		if (e == s || a < 0 || b > 255 || a > b || (*e && *e != ','))
			rc = lx_error(&p->lx, at, "bad exit codes \"%s\" (expected 0, 0,1 or 0-2)", w);
		for (long i = a; rc == 0 && i <= b; i++)
			c->w[i / 64] |= (uint64_t)1 << (i % 64);
		s = *e ? e + 1 : e;
	}
	free(w);
	return rc;
}

int codes_has(const struct codes *c, int code)
{
	return code >= 0 && code < 256 && (c->w[code / 64] >> (code % 64)) & 1;
}

void codes_dump(const struct codes *c, FILE *out)
{
	const char *sep = " returns ";
	for (int i = 0; i < 256; i++) {
		if (!codes_has(c, i) || (i > 0 && codes_has(c, i - 1)))
			continue;
		int j = i;
		while (j + 1 < 256 && codes_has(c, j + 1))
			j++;
		fprintf(out, j > i ? "%s%d-%d" : "%s%d", sep, i, j);
		sep = ",";
	}
}

void codes_default(struct codes *c)
{
	memset(c, 0, sizeof *c);
	c->w[0] = 1;
}

/* ---- the filter action ---- */

/* The caches of the message's fields and body are of the old message. */
static void forget(struct evalctx *x)
{
	x->scanned = 0;
	x->nraw = 0;
	for (size_t i = 0; i < x->r->nh; i++) {
		free(x->slots[i].v);
		x->slots[i] = (struct hslot){ 0 };
	}
	x->all_done = 0;
	x->nall = 0;
	x->body_done = 0;
	x->view.hdr = msg_header(x->view.msg, &x->view.hdrlen);
	x->view.size = x->view.msg->size;
}

int ev_filter(struct evalctx *x, char **argv, const struct codes *ok)
{
	struct msg *m = x->view.msg, *out = xmalloc(sizeof *out);
	msg_init(out);
	char *err = NULL;
	int code = 0;
	size_t max = 2 * m->size + FILTER_SLACK;
	if (filter_run(argv, m, out, max, x->view.timeout, &code, &err) < 0)
		;
	else if (!codes_has(ok, code))
		seterr(&err, "%s exited with %d%s", argv[0], code, code == 127 ? " (not found?)" : "");
	else if (out->size == 0)
		seterr(&err, "%s gave no output", argv[0]);
	if (err != NULL) {
		msg_free(out);
		free(out);
		ev_error(x, "filter %s", err);
		free(err);
		return -1;
	}
	/* the filter is the rule's last action: no capture points into the
	 * old message any more */
	msg_take(m, out);
	free(out);
	forget(x);
	return 0;
}

/* ---- the pipe condition ---- */

struct pipe_match {
	char  **argv;
	char   *src;
	struct codes ok;
	int     negate;
	struct regex *re;
};

static void pipe_free(void *data)
{
	struct pipe_match *pm = data;
	if (pm == NULL)
		return;
	free_argv(pm->argv);
	free(pm->src);
	regex_free(pm->re);
	free(pm);
}

static int parse_cmd(struct parser *p, struct pipe_match *pm)
{
	size_t at;
	char *e = NULL;
	if (lx_word(&p->lx, &pm->src, &at) <= 0 || pm->src[0] == '\0')
		return lx_error(&p->lx, at, "expected a command after pipe: pipe \"spamc -c\"");
	if (strchr(pm->src, '$') != NULL)
		return lx_error(&p->lx, at, "pipe: no expansions in the command");
	pm->argv = split_args(pm->src, &e);
	if (pm->argv == NULL) {
		lx_error(&p->lx, at, "pipe: %s", e);
		free(e);
		return -1;
	}
	if (pm->argv[0] == NULL)
		return lx_error(&p->lx, at, "expected a command after pipe");
	return 0;
}

static int parse_pipe(struct parser *p, void **data)
{
	struct pipe_match *pm = xcalloc(1, sizeof *pm);
	*data = pm;
	codes_default(&pm->ok);
	if (parse_cmd(p, pm) < 0 || (lx_keyword(&p->lx, "returns") && codes_parse(p, &pm->ok) < 0))
		goto bad;
	int c = lx_peek(&p->lx);
	if (c == '=' || c == '!') {
		if ((pm->negate = match_parse_op(p, "=~ or !~ after pipe")) < 0 ||
		    (pm->re = regex_parse(p, 1)) == NULL)
			goto bad;
	}
	return 0;
bad:
	pipe_free(pm);
	*data = NULL;
	return -1;
}

static int eval_pipe(const void *data, struct evalctx *x)
{
	const struct pipe_match *pm = data;
	struct msg out;
	msg_init(&out);
	char *err = NULL;
	int code = 0, r = -1;
	if (filter_run(pm->argv, x->view.msg, &out, PIPE_MAX_OUTPUT, x->view.timeout, &code,
		       &err) < 0)
		ev_error(x, "pipe %s", err);
	else if (code == 127)
		ev_error(x, "pipe %s: exited with 127 (not found?)", pm->argv[0]);
	else if (!codes_has(&pm->ok, code) || pm->re == NULL)
		r = codes_has(&pm->ok, code);
	else {
		size_t n;
		const char *s = msg_map(&out, &n, &err);
		char *copy = s ? xstrndup(s, n) : NULL;   /* $1 may point into it */
		ev_keep(x, copy);
		r = s == NULL ? ev_error(x, "pipe %s: %s", pm->argv[0], err)
			      : regex_match(pm->re, x, copy, n);
		r = r < 0 ? -1 : pm->negate ? !r : r;
	}
	free(err);
	msg_free(&out);
	return r;
}

static void dump_pipe(const void *data, FILE *out)
{
	const struct pipe_match *pm = data;
	fprintf(out, " \"%s\"", pm->src);
	codes_dump(&pm->ok, out);
	if (pm->re != NULL) {
		fputs(pm->negate ? " !~ " : " =~ ", out);
		regex_dump(pm->re, out);
	}
}

const struct match_ops match_pipe = {
	.name = "pipe",
	.parse = parse_pipe,
	.eval = eval_pipe,
	.free = pipe_free,
	.needs_body = 1,
	.dump = dump_pipe,
};

/* ---- which rules run commands ---- */

static int cond_runs(const struct cond *c)
{
	if (c == NULL)
		return 0;
	if (c->kind == C_LEAF)
		return c->ops == &match_pipe;
	return cond_runs(c->a) || cond_runs(c->b);
}

int rules_run_commands(const struct rules *r)
{
	for (size_t i = 0; r != NULL && i < r->n; i++) {
		if (cond_runs(r->v[i].cond))
			return 1;
		for (size_t k = 0; k < r->v[i].nacts; k++)
			if (r->v[i].acts[k].kind == A_FILTER)
				return 1;
	}
	return 0;
}
