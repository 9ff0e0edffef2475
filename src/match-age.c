/* match-age.c — `age > 30d`, `age < 2h` (also >= and <=): the time since
 * the Date field, in the units of `keep 30d` (s m h d w; a bare number
 * is seconds).  The header alone decides it, so TOP n 0 is enough to
 * skip an old message without downloading it.
 *
 * A message without a Date, or with one date_parse cannot read, has no
 * age: both `age > X` and `age < X` are false for it (`not age < X` is
 * the way to catch it too).  A Date in the future gives a negative age. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "date.h"
#include "match.h"

enum age_op { AG_GT, AG_GE, AG_LT, AG_LE };

struct age_match {
	enum age_op op;
	int64_t     limit;      /* seconds */
	int         hid;        /* the Date field */
	char        text[32];   /* the age as written, for dump */
};

static int parse_op(struct lexer *lx, enum age_op *op)
{
	lx_ws(lx);
	const char *s = lx->text + lx->pos;
	if (s[0] != '>' && s[0] != '<')
		return lx_error(lx, lx->pos, "expected >, <, >= or <= after age");
	int eq = s[1] == '=';   /* s[1] is at worst the final NUL */
	*op = s[0] == '>' ? (eq ? AG_GE : AG_GT) : (eq ? AG_LE : AG_LT);
	lx->pos += 1 + (size_t)eq;
	return 0;
}

static int64_t unit_seconds(char c)
{
	switch (c) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	case 'w': return 7 * 86400;
	default: return 0;
	}
}

static int word_end(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == ')';
}

/* At most 1000 years: far enough, and no overflow with any unit. */
static int parse_age(struct lexer *lx, int64_t *out)
{
	lx_ws(lx);
	size_t start = lx->pos;
	int64_t n = 0;
	while (lx->text[lx->pos] >= '0' && lx->text[lx->pos] <= '9') {
		n = n * 10 + (lx->text[lx->pos++] - '0');
		if (n > 1000LL * 366 * 86400)
			return lx_error(lx, start, "age too large");
	}
	if (lx->pos == start)
		return lx_error(lx, start, "expected an age such as 30d, 12h or 90m after the operator");
	int64_t unit = 1;
	char c = lx->text[lx->pos];
	if (!word_end(c)) {
		unit = unit_seconds(c);
		if (unit == 0 || !word_end(lx->text[lx->pos + 1]))
			return lx_error(lx, lx->pos, "bad age unit (expected s, m, h, d or w)");
		lx->pos++;
	}
	if (n > 1000LL * 366 * 86400 / unit)
		return lx_error(lx, start, "age too large");
	*out = n * unit;
	return 0;
}

static int parse(struct parser *p, void **data)
{
	struct age_match *a = xcalloc(1, sizeof *a);
	if (parse_op(&p->lx, &a->op) < 0) {
		free(a);
		return -1;
	}
	lx_ws(&p->lx);
	size_t start = p->lx.pos;
	if (parse_age(&p->lx, &a->limit) < 0) {
		free(a);
		return -1;
	}
	snprintf(a->text, sizeof a->text, "%.*s", (int)(p->lx.pos - start), p->lx.text + start);
	a->hid = rules_header_id(p->r, "Date");
	*data = a;
	return 0;
}

static int eval(const void *data, struct evalctx *x)
{
	const struct age_match *a = data;
	const struct span *v;
	size_t n;
	time_t t;
	int off;
	if (ev_header(x, a->hid, &v, &n) < 0)
		return -1;
	if (n == 0 || date_parse(v[0].p, v[0].n, &t, &off) < 0)
		return T_FALSE;         /* no age: neither older nor younger */
	int64_t age = (int64_t)time(NULL) - (int64_t)t;
	switch (a->op) {
	case AG_GT: return age > a->limit;
	case AG_GE: return age >= a->limit;
	case AG_LT: return age < a->limit;
	case AG_LE: return age <= a->limit;
	}
	return T_FALSE;
}

static void dump(const void *data, FILE *out)
{
	static const char *const ops[] = { ">", ">=", "<", "<=" };
	const struct age_match *a = data;
	fprintf(out, " %s %s", ops[a->op], a->text);
}

const struct match_ops match_age = {
	.name = "age",
	.parse = parse,
	.eval = eval,
	.free = free,
	.needs_body = 0,
	.dump = dump,
};
