/* rules.c — the grammar of a rules file:
 *
 *   rule  := "match" or action+
 *   or    := and ("or" and)*
 *   and   := unary ("and" unary)*
 *   unary := "not" unary | "(" or ")" | leaf
 *
 * Leaves are parsed by their match_ops; actions by action.c.  Operands
 * that need the body are put after those that do not: an `and`/`or`
 * is commutative, and evaluating the cheap side first both saves
 * decoding and lets a decision be made before the download. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "match.h"

static const struct match_ops *const kinds[] = {
	&match_header, &match_headers, &match_body, &match_rawbody,
	&match_size, &match_account, &match_duplicate, &match_all,
	&match_pipe, &match_age, &match_attachments, &match_attachment,
};

static void cond_free(struct cond *c)
{
	if (c == NULL)
		return;
	cond_free(c->a);
	cond_free(c->b);
	if (c->kind == C_LEAF && c->ops->free != NULL)
		c->ops->free(c->data);
	free(c);
}

static struct cond *combine(enum cond_kind k, struct cond *a, struct cond *b)
{
	struct cond *c = xcalloc(1, sizeof *c);
	c->kind = k;
	if (b != NULL && a->needs_body && !b->needs_body) {
		struct cond *t = a;
		a = b;
		b = t;
	}
	c->a = a;
	c->b = b;
	c->needs_body = a->needs_body || (b != NULL && b->needs_body);
	return c;
}

static const struct match_ops *find_kind(const char *name)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

/* "header, headers, ... or all": from kinds[], so a new kind shows. */
static void kind_list(char *out, size_t size)
{
	size_t n = sizeof kinds / sizeof kinds[0], o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
				      kinds[i]->name);
}

static struct cond *parse_leaf(struct parser *p)
{
	struct lexer *lx = &p->lx;
	lx_ws(lx);
	size_t start = lx->pos;
	char *name;
	if (!lx_ident(lx, &name)) {
		lx_error(lx, start, "expected a condition");
		return NULL;
	}
	const struct match_ops *ops = find_kind(name);
	if (ops == NULL) {
		char list[256];
		kind_list(list, sizeof list);
		lx_error(lx, start, "unknown condition \"%s\" (expected %s)", name, list);
		free(name);
		return NULL;
	}
	free(name);
	void *data = NULL;
	if (ops->parse != NULL && ops->parse(p, &data) < 0)
		return NULL;
	struct cond *c = xcalloc(1, sizeof *c);
	c->kind = C_LEAF;
	c->ops = ops;
	c->data = data;
	c->needs_body = ops->needs_body;
	return c;
}

static struct cond *parse_or(struct parser *p);

static struct cond *parse_unary(struct parser *p)
{
	struct lexer *lx = &p->lx;
	if (lx_keyword(lx, "not")) {
		struct cond *c = parse_unary(p);
		return c ? combine(C_NOT, c, NULL) : NULL;
	}
	if (lx_peek(lx) != '(')
		return parse_leaf(p);
	lx->pos++;
	struct cond *c = parse_or(p);
	if (c == NULL)
		return NULL;
	if (lx_peek(lx) != ')') {
		lx_error(lx, lx->pos, "expected \")\"%s", lx->pos < lx->len ? " or an operator" : "");
		cond_free(c);
		return NULL;
	}
	lx->pos++;
	return c;
}

static struct cond *parse_binary(struct parser *p, const char *kw, enum cond_kind k,
				 struct cond *(*operand)(struct parser *))
{
	struct cond *left = operand(p);
	while (left != NULL && lx_keyword(&p->lx, kw)) {
		struct cond *right = operand(p);
		if (right == NULL) {
			cond_free(left);
			return NULL;
		}
		left = combine(k, left, right);
	}
	return left;
}

static struct cond *parse_and(struct parser *p)
{
	return parse_binary(p, "and", C_AND, parse_unary);
}

static struct cond *parse_or(struct parser *p)
{
	return parse_binary(p, "or", C_OR, parse_and);
}

static void rule_free(struct rule *ru)
{
	cond_free(ru->cond);
	for (size_t i = 0; i < ru->nacts; i++)
		action_free(&ru->acts[i]);
	free(ru->acts);
}

static int parse_rule(struct parser *p)
{
	struct lexer *lx = &p->lx;
	lx_ws(lx);
	if (!lx_keyword(lx, "match"))
		return lx_error(lx, lx->pos, "expected \"match\" at the start of a rule");
	struct rule ru = { .line = lx_line(lx) };
	p->ncaps = 0;
	ru.cond = parse_or(p);
	if (ru.cond == NULL)
		return -1;
	if (action_parse(p, &ru) < 0) {
		rule_free(&ru);
		return -1;
	}
	struct rules *r = p->r;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = ru;
	return 0;
}

struct rules *rules_parse(const char *path, const char *text, char **err)
{
	struct rules *r = xcalloc(1, sizeof *r);
	r->file = xstrdup(path);
	r->env = regex_env_new();
	struct parser p = { .r = r };
	if (strncmp(text, "\xEF\xBB\xBF", 3) == 0)
		text += 3;      /* a byte order mark some editors write */
	lx_init(&p.lx, r->file, text, strlen(text), err);
	int rc = 0;
	while (rc == 0 && lx_next_line(&p.lx))
		rc = parse_rule(&p);
	lx_free(&p.lx);
	if (rc < 0) {
		rules_free(r);
		return NULL;
	}
	return r;
}

struct rules *rules_load(const char *path, char **err)
{
	struct stat st;
	char *text = read_trusted_file(path, &st, err);
	if (text == NULL)
		return NULL;
	struct rules *r = rules_parse(path, text, err);
	free(text);
	return r;
}

void rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		rule_free(&r->v[i]);
	free(r->v);
	for (size_t i = 0; i < r->nh; i++)
		free(r->hnames[i]);
	free(r->hnames);
	regex_env_free(r->env);
	free(r->file);
	free(r);
}

size_t rules_count(const struct rules *r)
{
	return r ? r->n : 0;
}

/* ---- dump ---- */

static int prec(const struct cond *c)
{
	return c->kind == C_OR ? 1 : c->kind == C_AND ? 2 : 3;
}

static void dump_cond(const struct cond *c, FILE *out);

static void dump_operand(const struct cond *c, int parent, FILE *out)
{
	int paren = prec(c) < parent;
	fputs(paren ? "(" : "", out);
	dump_cond(c, out);
	fputs(paren ? ")" : "", out);
}

static void dump_cond(const struct cond *c, FILE *out)
{
	switch (c->kind) {
	case C_LEAF:
		fputs(c->ops->name, out);
		if (c->ops->dump != NULL)
			c->ops->dump(c->data, out);
		break;
	case C_NOT:
		fputs("not ", out);
		dump_operand(c->a, 3, out);
		break;
	case C_AND:
	case C_OR:
		dump_operand(c->a, prec(c), out);
		fputs(c->kind == C_AND ? " and " : " or ", out);
		dump_operand(c->b, prec(c) + 1, out);
		break;
	}
}

void rules_dump(const struct rules *r, FILE *out)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		fprintf(out, "%s:%d: match ", r->file, ru->line);
		dump_cond(ru->cond, out);
		for (size_t k = 0; k < ru->nacts; k++) {
			fputc(' ', out);
			action_dump(&ru->acts[k], out);
		}
		fputc('\n', out);
	}
}

/* ---- can TOP n 0 save a download? ---- */

/* Whether the condition can come out true (t) or false (!t) without the
 * body, following rules_eval's left-to-right short circuit. */
static int decidable(const struct cond *c, int t)
{
	switch (c->kind) {
	case C_LEAF:
		return !c->needs_body;
	case C_NOT:
		return decidable(c->a, !t);
	case C_AND:
		return t ? decidable(c->a, 1) && decidable(c->b, 1)
			 : decidable(c->a, 0) || (decidable(c->a, 1) && decidable(c->b, 0));
	case C_OR:
		return t ? decidable(c->a, 1) || (decidable(c->a, 0) && decidable(c->b, 1))
			 : decidable(c->a, 0) && decidable(c->b, 0);
	}
	return 0;
}

static int rule_has(const struct rule *ru, enum act_kind k)
{
	for (size_t i = 0; i < ru->nacts; i++)
		if (ru->acts[i].kind == k)
			return 1;
	return 0;
}

int rules_prefetch_useful(const struct rules *r)
{
	for (size_t i = 0; r != NULL && i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		if ((rule_has(ru, A_SKIP) || rule_has(ru, A_DISCARD)) && decidable(ru->cond, 1))
			return 1;
		/* after a filter, later rules see other headers than TOP's */
		if (rule_has(ru, A_FILTER))
			return 0;
		int passable = decidable(ru->cond, 0) || (!ru->final && decidable(ru->cond, 1));
		if (!passable)
			return 0;
	}
	return 0;
}
