/* match-attachment.c — fdm's attachment conditions:
 *   attachments > 0                  how many (>, >=, <, <=, =)
 *   attachment size > 5M             their total decoded size (K, M, G: 1024-based)
 *   attachment type =~ /pdf/i        some attachment's MIME type ("application/pdf")
 *   attachment name =~ /\.exe$/i     some attachment's file name, decoded
 * `!~` is true when no attachment matches (or there is none).
 *
 * An attachment is an entity that is no multipart container and has
 * Content-Disposition: attachment or a file name (filename= or name=,
 * whatever its type and disposition: a sender must not hide an .exe by
 * calling it text/plain inline).  An attached message counts, and so do
 * the attachments inside it; its own size does not add to the total, the
 * attachments inside it do.  Sizes are decoded sizes (the file as saved),
 * not the base64 on the wire.  The walk has mime.c's bounds on nesting
 * and number of entities.  All of this needs the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match.h"
#include "mime.h"
#include "msg.h"

enum what { AT_COUNT, AT_SIZE, AT_TYPE, AT_NAME };
enum cmp { CM_GT, CM_GE, CM_LT, CM_LE, CM_EQ };

struct att_match {
	enum what what;
	enum cmp  op;
	uint64_t  limit;
	char      text[32];     /* the number as written, for dump */
	int       negate;
	struct regex *re;
};

/* ---- parsing ---- */

static int parse_cmp(struct lexer *lx, enum cmp *op, const char *what)
{
	lx_ws(lx);
	const char *s = lx->text + lx->pos;
	int eq = s[0] != '\0' && s[1] == '=';
	if (s[0] == '>' || s[0] == '<') {
		*op = s[0] == '>' ? (eq ? CM_GE : CM_GT) : (eq ? CM_LE : CM_LT);
		lx->pos += 1 + (size_t)eq;
	} else if (s[0] == '=' && s[1] != '~') {
		*op = CM_EQ;
		lx->pos += 1 + (size_t)eq;
	} else {
		return lx_error(lx, lx->pos, "expected >, <, >=, <= or = after %s", what);
	}
	return 0;
}

static int end_of_word(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == ')';
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

static int parse_number(struct lexer *lx, struct att_match *a, int units)
{
	lx_ws(lx);
	size_t start = lx->pos;
	uint64_t n = 0;
	while (lx->text[lx->pos] >= '0' && lx->text[lx->pos] <= '9') {
		n = n * 10 + (unsigned)(lx->text[lx->pos++] - '0');
		if (n > ((uint64_t)1 << 40))
			return lx_error(lx, start, "number too large");
	}
	if (lx->pos == start)
		return lx_error(lx, start, "expected a number after the operator");
	int shift = 0;
	if (!end_of_word(lx->text[lx->pos])) {
		shift = units ? unit_shift(lx->text[lx->pos]) : -1;
		if (shift < 0 || !end_of_word(lx->text[lx->pos + 1]))
			return lx_error(lx, lx->pos, units ? "bad size unit (expected K, M or G)"
						       : "expected a plain number");
		lx->pos++;
	}
	a->limit = n << shift;
	snprintf(a->text, sizeof a->text, "%.*s", (int)(lx->pos - start), lx->text + start);
	return 0;
}

static void att_free(void *data)
{
	struct att_match *a = data;
	if (a != NULL)
		regex_free(a->re);
	free(a);
}

static int parse_count(struct parser *p, void **data)
{
	struct att_match *a = xcalloc(1, sizeof *a);
	a->what = AT_COUNT;
	if (parse_cmp(&p->lx, &a->op, "attachments") < 0 || parse_number(&p->lx, a, 0) < 0) {
		att_free(a);
		return -1;
	}
	*data = a;
	return 0;
}

static int parse_what(struct lexer *lx, enum what *w)
{
	lx_ws(lx);
	size_t start = lx->pos;
	char *word = NULL;
	lx_ident(lx, &word);
	int ok = word != NULL;
	if (ok && strcmp(word, "size") == 0)
		*w = AT_SIZE;
	else if (ok && strcmp(word, "type") == 0)
		*w = AT_TYPE;
	else if (ok && strcmp(word, "name") == 0)
		*w = AT_NAME;
	else
		ok = 0;
	free(word);
	return ok ? 0 : lx_error(lx, start, "expected size, type or name after attachment");
}

static int parse_one(struct parser *p, void **data)
{
	struct att_match *a = xcalloc(1, sizeof *a);
	int rc = parse_what(&p->lx, &a->what);
	if (rc == 0 && a->what == AT_SIZE) {
		rc = parse_cmp(&p->lx, &a->op, "attachment size");
		rc = rc < 0 ? rc : parse_number(&p->lx, a, 1);
	} else if (rc == 0) {
		a->negate = match_parse_op(p, a->what == AT_TYPE ? "=~ or !~ after attachment type"
								: "=~ or !~ after attachment name");
		rc = a->negate;
		if (rc >= 0 && (a->re = regex_parse(p, 1)) == NULL)
			rc = -1;
	}
	if (rc < 0) {
		att_free(a);
		return -1;
	}
	*data = a;
	return 0;
}

/* ---- the attachments of a message ---- */

struct found {
	struct evalctx *x;
	const struct att_match *a;
	uint64_t count, size;
	int      matched;       /* some name or type matched the regex */
	int      error;
};

/* The decoded size of a body in its transfer encoding, without keeping
 * the decoded bytes. */
static uint64_t decoded_size(const struct mime_entity *e)
{
	char *cte = mime_header_get(e->hdr, e->hlen, "Content-Transfer-Encoding", NULL);
	uint64_t n = e->blen;
	if (cte != NULL && strncasecmp(cte, "base64", 6) == 0) {
		uint64_t k = 0;
		for (size_t i = 0; i < e->blen; i++) {
			unsigned char c = (unsigned char)e->body[i];
			k += (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/';
		}
		n = k * 3 / 4;
	} else if (cte != NULL && strncasecmp(cte, "quoted-printable", 16) == 0) {
		size_t len = 0;
		free(mime_qp_decode(e->body, e->blen, &len));
		n = len;
	}
	free(cte);
	return n;
}

static int is_attachment(const struct mime_entity *e, char **name, char **notes)
{
	*name = mime_filename(e->hdr, e->hlen, notes);
	if (*name != NULL)
		return 1;
	char *disp = mime_header_get(e->hdr, e->hlen, "Content-Disposition", NULL);
	size_t n = disp ? strcspn(disp, "; \t") : 0;
	int att = n == 10 && strncasecmp(disp, "attachment", 10) == 0;
	free(disp);
	return att;
}

/* A regex on a string kept until the evaluation ends ($1 may point in). */
static void try_regex(struct found *f, char *s)
{
	if (f->matched || f->error || s == NULL) {
		free(s);
		return;
	}
	ev_keep(f->x, s);
	int r = regex_match(f->a->re, f->x, s, strlen(s));
	f->matched = r > 0;
	f->error = r < 0;
}

static void on_part(void *arg, const struct mime_entity *e)
{
	struct found *f = arg;
	char *name = NULL, *notes = NULL;
	if (!is_attachment(e, &name, &notes)) {
		free(notes);
		return;
	}
	ev_note(f->x, notes);
	f->count++;
	if (f->a->what == AT_SIZE && strncmp(e->type, "message/", 8) != 0)
		f->size += decoded_size(e);
	if (f->a->what == AT_NAME)
		try_regex(f, name);
	else
		free(name);
	if (f->a->what == AT_TYPE)
		try_regex(f, xstrdup(e->type));
}

static int compare(enum cmp op, uint64_t n, uint64_t limit)
{
	switch (op) {
	case CM_GT: return n > limit;
	case CM_GE: return n >= limit;
	case CM_LT: return n < limit;
	case CM_LE: return n <= limit;
	case CM_EQ: return n == limit;
	}
	return 0;
}

static int eval(const void *data, struct evalctx *x)
{
	const struct att_match *a = data;
	char *err = NULL;
	size_t len;
	const char *p = msg_map(x->v->msg, &len, &err);
	if (p == NULL) {
		ev_error(x, "%s", err ? err : "cannot read the message");
		free(err);
		return -1;
	}
	struct found f = { .x = x, .a = a };
	mime_walk_parts(p, len, on_part, &f);
	if (f.error)
		return -1;
	if (a->what == AT_COUNT)
		return compare(a->op, f.count, a->limit);
	if (a->what == AT_SIZE)
		return compare(a->op, f.size, a->limit);
	return a->negate ? !f.matched : f.matched;
}

static void dump(const void *data, FILE *out)
{
	static const char *const ops[] = { ">", ">=", "<", "<=", "=" };
	static const char *const whats[] = { "", " size", " type", " name" };
	const struct att_match *a = data;
	fputs(whats[a->what], out);
	if (a->what == AT_COUNT || a->what == AT_SIZE) {
		fprintf(out, " %s %s", ops[a->op], a->text);
		return;
	}
	fputs(a->negate ? " !~ " : " =~ ", out);
	regex_dump(a->re, out);
}

const struct match_ops match_attachments = {
	.name = "attachments",
	.parse = parse_count,
	.eval = eval,
	.free = att_free,
	.needs_body = 1,
	.dump = dump,
};

const struct match_ops match_attachment = {
	.name = "attachment",
	.parse = parse_one,
	.eval = eval,
	.free = att_free,
	.needs_body = 1,
	.dump = dump,
};
