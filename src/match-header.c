/* match-header.c — `header "Name" =~ /re/`, `header "Name" exists` and
 * `headers =~ /re/`.  Values come decoded from the per-message cache in
 * rules-eval.c, so a header is decoded once however many rules look. */
#include <stdlib.h>
#include <string.h>

#include "match.h"

struct hdr_match {
	char   *name;           /* NULL for `headers` */
	int     hid;
	int     exists;
	int     negate;         /* !~ */
	struct regex *re;
};

int match_parse_op(struct parser *p, const char *what)
{
	struct lexer *lx = &p->lx;
	lx_ws(lx);
	const char *s = lx->text + lx->pos;
	if ((s[0] == '=' || s[0] == '!') && s[1] == '~') {
		lx->pos += 2;
		return s[0] == '!';
	}
	return lx_error(lx, lx->pos, "expected %s", what);
}

static int valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 127 || *s == ':')
			return 0;
	return 1;
}

static void hdr_free(void *data)
{
	struct hdr_match *h = data;
	if (h == NULL)
		return;
	regex_free(h->re);
	free(h->name);
	free(h);
}

static int parse_regex_part(struct parser *p, struct hdr_match *h, const char *what)
{
	int neg = match_parse_op(p, what);
	if (neg < 0)
		return -1;
	h->negate = neg;
	h->re = regex_parse(p, 1);
	return h->re ? 0 : -1;
}

static int parse_header(struct parser *p, void **data)
{
	size_t at;
	char *name;
	int c = lx_peek(&p->lx);
	if (c == '=' || c == '!' || c == '/')
		return lx_error(&p->lx, p->lx.pos, "expected a header name");
	int rc = lx_word(&p->lx, &name, &at);
	if (rc <= 0)
		return rc < 0 ? -1 : lx_error(&p->lx, at, "expected a header name");
	if (!valid_name(name)) {
		free(name);
		return lx_error(&p->lx, at, "invalid header name");
	}
	struct hdr_match *h = xcalloc(1, sizeof *h);
	h->name = name;
	h->hid = rules_header_id(p->r, name);
	if (lx_keyword(&p->lx, "exists"))
		h->exists = 1;
	else if (parse_regex_part(p, h, "=~, !~ or exists after the header name") < 0) {
		hdr_free(h);
		return -1;
	}
	*data = h;
	return 0;
}

static int parse_headers(struct parser *p, void **data)
{
	struct hdr_match *h = xcalloc(1, sizeof *h);
	h->hid = -1;
	if (parse_regex_part(p, h, "=~ or !~ after headers") < 0) {
		hdr_free(h);
		return -1;
	}
	*data = h;
	return 0;
}

static int any_match(const struct hdr_match *h, struct evalctx *x,
		     const struct span *v, size_t n)
{
	int found = 0;
	for (size_t i = 0; i < n && !found; i++) {
		found = regex_match(h->re, x, v[i].p, v[i].n);
		if (found < 0)
			return -1;
	}
	return h->negate ? !found : found;
}

static int eval_header(const void *data, struct evalctx *x)
{
	const struct hdr_match *h = data;
	const struct span *v;
	size_t n;
	if (ev_header(x, h->hid, &v, &n) < 0)
		return -1;
	if (h->exists)
		return n > 0;
	return any_match(h, x, v, n);
}

static int eval_headers(const void *data, struct evalctx *x)
{
	const struct span *v;
	size_t n;
	if (ev_headers(x, &v, &n) < 0)
		return -1;
	return any_match(data, x, v, n);
}

static void dump_header(const void *data, FILE *out)
{
	const struct hdr_match *h = data;
	if (h->name != NULL)
		fprintf(out, " \"%s\"", h->name);
	if (h->exists) {
		fputs(" exists", out);
		return;
	}
	fputs(h->negate ? " !~ " : " =~ ", out);
	regex_dump(h->re, out);
}

const struct match_ops match_header = {
	.name = "header",
	.parse = parse_header,
	.eval = eval_header,
	.free = hdr_free,
	.needs_body = 0,
	.dump = dump_header,
};

const struct match_ops match_headers = {
	.name = "headers",
	.parse = parse_headers,
	.eval = eval_headers,
	.free = hdr_free,
	.needs_body = 0,
	.dump = dump_header,
};
