/* match-body.c — `body =~ /re/` (the text parts, decoded to UTF-8) and
 * `rawbody =~ /re/` (the body bytes as received, no UTF mode).  Both need
 * the downloaded message; rules-eval.c makes them unknown before it. */
#include <stdlib.h>

#include "match.h"

struct body_match {
	int     negate;
	struct regex *re;
};

static void body_free(void *data)
{
	struct body_match *b = data;
	if (b == NULL)
		return;
	regex_free(b->re);
	free(b);
}

static int parse_any(struct parser *p, void **data, int utf, const char *what)
{
	int neg = match_parse_op(p, what);
	if (neg < 0)
		return -1;
	struct body_match *b = xcalloc(1, sizeof *b);
	b->negate = neg;
	b->re = regex_parse(p, utf);
	if (b->re == NULL) {
		body_free(b);
		return -1;
	}
	*data = b;
	return 0;
}

static int parse_body(struct parser *p, void **data)
{
	return parse_any(p, data, 1, "=~ or !~ after body");
}

static int parse_rawbody(struct parser *p, void **data)
{
	return parse_any(p, data, 0, "=~ or !~ after rawbody");
}

static int match_span(const struct body_match *b, struct evalctx *x, struct span s)
{
	int r = regex_match(b->re, x, s.p, s.n);
	if (r < 0)
		return -1;
	return b->negate ? !r : r;
}

static int eval_body(const void *data, struct evalctx *x)
{
	struct span s;
	if (ev_body(x, &s) < 0)
		return -1;
	return match_span(data, x, s);
}

static int eval_rawbody(const void *data, struct evalctx *x)
{
	struct span s;
	if (ev_rawbody(x, &s) < 0)
		return -1;
	return match_span(data, x, s);
}

static void dump_body(const void *data, FILE *out)
{
	const struct body_match *b = data;
	fputs(b->negate ? " !~ " : " =~ ", out);
	regex_dump(b->re, out);
}

const struct match_ops match_body = {
	.name = "body",
	.parse = parse_body,
	.eval = eval_body,
	.free = body_free,
	.needs_body = 1,
	.dump = dump_body,
};

const struct match_ops match_rawbody = {
	.name = "rawbody",
	.parse = parse_rawbody,
	.eval = eval_rawbody,
	.free = body_free,
	.needs_body = 1,
	.dump = dump_body,
};
