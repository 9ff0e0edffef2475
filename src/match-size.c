/* match-size.c — `size > 10M`, `size < 2K` (also >= and <=).  Units
 * are 1024-based.  Before the download the size is the one LIST gave,
 * so a big message can be skipped without transferring it. */
#include <stdint.h>
#include <stdlib.h>

#include "match.h"

enum size_op { SZ_GT, SZ_GE, SZ_LT, SZ_LE };

struct size_match {
	enum size_op op;
	uint64_t     limit;
	char         text[32];  /* the number as written, for dump */
};

static int parse_op(struct lexer *lx, enum size_op *op)
{
	lx_ws(lx);
	const char *s = lx->text + lx->pos;
	if (s[0] != '>' && s[0] != '<')
		return lx_error(lx, lx->pos, "expected >, <, >= or <= after size");
	int eq = s[1] == '=';
	*op = s[0] == '>' ? (eq ? SZ_GE : SZ_GT) : (eq ? SZ_LE : SZ_LT);
	lx->pos += 1 + (size_t)eq;
	return 0;
}

static int unit_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	default: return -1;
	}
}

static int parse_number(struct lexer *lx, uint64_t *out)
{
	lx_ws(lx);
	size_t start = lx->pos;
	uint64_t n = 0;
	while (lx->pos < lx->len && lx->text[lx->pos] >= '0' && lx->text[lx->pos] <= '9') {
		unsigned d = (unsigned)(lx->text[lx->pos++] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return lx_error(lx, start, "size too large");
		n = n * 10 + d;
	}
	if (lx->pos == start)
		return lx_error(lx, start, "expected a number after the size operator");
	char c = lx->text[lx->pos];
	int shift = 0;
	if (c != '\0' && c != ' ' && c != '\t' && c != ')') {
		shift = unit_shift(c);
		char after = lx->text[lx->pos + 1];
		if (shift < 0 || (after != '\0' && after != ' ' && after != '\t' && after != ')'))
			return lx_error(lx, lx->pos, "bad size unit (expected K, M or G)");
		lx->pos++;
	}
	if (shift > 0 && n > (UINT64_MAX >> shift))
		return lx_error(lx, start, "size too large");
	*out = n << shift;
	return 0;
}

static int parse_size(struct parser *p, void **data)
{
	struct size_match *s = xcalloc(1, sizeof *s);
	if (parse_op(&p->lx, &s->op) < 0) {
		free(s);
		return -1;
	}
	lx_ws(&p->lx);
	size_t start = p->lx.pos;
	if (parse_number(&p->lx, &s->limit) < 0) {
		free(s);
		return -1;
	}
	snprintf(s->text, sizeof s->text, "%.*s", (int)(p->lx.pos - start), p->lx.text + start);
	*data = s;
	return 0;
}

static int eval_size(const void *data, struct evalctx *x)
{
	const struct size_match *s = data;
	uint64_t n = x->v->size;
	switch (s->op) {
	case SZ_GT: return n > s->limit;
	case SZ_GE: return n >= s->limit;
	case SZ_LT: return n < s->limit;
	case SZ_LE: return n <= s->limit;
	}
	return 0;
}

static void dump_size(const void *data, FILE *out)
{
	static const char *const ops[] = { ">", ">=", "<", "<=" };
	const struct size_match *s = data;
	fprintf(out, " %s %s", ops[s->op], s->text);
}

const struct match_ops match_size = {
	.name = "size",
	.parse = parse_size,
	.eval = eval_size,
	.free = free,
	.needs_body = 0,
	.dump = dump_size,
};
