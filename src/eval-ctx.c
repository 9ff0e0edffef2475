/* eval-ctx.c — what a match or an action sees of the message being
 * evaluated (struct evalctx): its header fields, decoded lazily and
 * cached, its body, the strings that live as long as the evaluation, and
 * the first error.  The ground the conditions (match-*.c), the actions
 * (action.c) and the evaluation (rules-eval.c) all stand on; it calls
 * none of them. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match.h"
#include "mime.h"
#include "msg.h"

int rules_header_id(struct rules *r, const char *name)
{
	for (size_t i = 0; i < r->nh; i++)
		if (strcasecmp(r->hnames[i], name) == 0)
			return (int)i;
	r->hnames = xrealloc(r->hnames, (r->nh + 1) * sizeof *r->hnames);
	r->hnames[r->nh] = xstrdup(name);
	return (int)r->nh++;
}

static void pool_add(struct evalctx *x, char *s)
{
	if (s == NULL)
		return;
	if (x->npool == x->poolcap) {
		x->poolcap = x->poolcap ? x->poolcap * 2 : 16;
		x->pool = xrealloc(x->pool, x->poolcap * sizeof *x->pool);
	}
	x->pool[x->npool++] = s;
}

void ev_keep(struct evalctx *x, char *s)
{
	pool_add(x, s);
}

int ev_error(struct evalctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (x->error == NULL)
		x->error = xasprintf("%s:%d: %s", x->r->file, x->rule ? x->rule->line : 0, msg);
	return -1;
}

void ev_note(struct evalctx *x, char *note)
{
	if (note == NULL)
		return;
	log_debug(x->v->account, "%s:%d: %s", x->r->file, x->rule ? x->rule->line : 0, note);
	free(note);
}

/* ---- headers ---- */

static int wanted(const struct rules *r, const char *name, size_t n)
{
	for (size_t i = 0; i < r->nh; i++)
		if (strncasecmp(r->hnames[i], name, n) == 0 && r->hnames[i][n] == '\0')
			return (int)i;
	return -1;
}

static void scan_headers(struct evalctx *x)
{
	size_t pos = 0, nl, vl;
	const char *name, *val;
	x->scanned = 1;
	while (mime_next_header(x->v->hdr, x->v->hdrlen, &pos, &name, &nl, &val, &vl)) {
		int hid = wanted(x->r, name, nl);
		if (hid < 0)
			continue;
		if (x->nraw == x->rawcap) {
			x->rawcap = x->rawcap ? x->rawcap * 2 : 16;
			x->raw = xrealloc(x->raw, x->rawcap * sizeof *x->raw);
		}
		x->raw[x->nraw++] = (struct rawfield){ .hid = hid, .p = val, .n = vl };
	}
}

/* Printable ASCII on one line with no encoded word decodes to itself
 * (trimmed): the common case costs no allocation. */
static int plain(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return 0;
		if (c == '=' && i + 1 < n && p[i + 1] == '?')
			return 0;
	}
	return 1;
}

static struct span decode(struct evalctx *x, const char *p, size_t n)
{
	if (plain(p, n)) {
		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		return (struct span){ p, n };
	}
	char *notes = NULL;
	if (!x->cs_done && mime_raw_needs_charset(p, n)) {
		/* once per message: the header's declared charset */
		x->charset = mime_header_charset(x->v->hdr, x->v->hdrlen);
		if (x->charset != NULL)
			pool_add(x, x->charset);
		x->cs_done = 1;
	}
	char *s = mime_decode_value_cs(p, n, x->charset, &notes);
	ev_note(x, notes);
	pool_add(x, s);
	return (struct span){ s, strlen(s) };
}

static void push_span(struct span **v, size_t *n, struct span s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = s;
}

int ev_header(struct evalctx *x, int hid, const struct span **v, size_t *n)
{
	if (!x->scanned)
		scan_headers(x);
	struct hslot *s = &x->slots[hid];
	if (!s->done) {
		for (size_t i = 0; i < x->nraw; i++)
			if (x->raw[i].hid == hid)
				push_span(&s->v, &s->n, decode(x, x->raw[i].p, x->raw[i].n));
		s->done = 1;
	}
	*v = s->v;
	*n = s->n;
	return 0;
}

int ev_headers(struct evalctx *x, const struct span **v, size_t *n)
{
	size_t pos = 0, nl, vl;
	const char *name, *val;
	while (!x->all_done &&
	       mime_next_header(x->v->hdr, x->v->hdrlen, &pos, &name, &nl, &val, &vl)) {
		struct span d = decode(x, val, vl);
		char *line = xmalloc(nl + 2 + d.n + 1);
		memcpy(line, name, nl);
		memcpy(line + nl, ": ", 2);
		memcpy(line + nl + 2, d.p, d.n);
		line[nl + 2 + d.n] = '\0';
		pool_add(x, line);
		push_span(&x->all, &x->nall, (struct span){ line, nl + 2 + d.n });
	}
	x->all_done = 1;
	*v = x->all;
	*n = x->nall;
	return 0;
}

/* ---- body ---- */

static int whole(struct evalctx *x, const char **p, size_t *n)
{
	if (x->v->msg == NULL)
		return ev_error(x, "the body is needed but not there");
	char *err = NULL;
	*p = msg_map(x->v->msg, n, &err);
	if (*p == NULL) {
		ev_error(x, "%s", err ? err : "cannot read the message");
		free(err);
		return -1;
	}
	return 0;
}

int ev_body(struct evalctx *x, struct span *out)
{
	if (!x->body_done) {
		const char *p;
		size_t n, len = 0;
		if (whole(x, &p, &n) < 0)
			return -1;
		char *notes = NULL;
		char *text = mime_body_text(p, n, &len, &notes);
		ev_note(x, notes);
		if (text == NULL)
			text = xstrdup("");
		pool_add(x, text);
		x->body = (struct span){ text, len };
		x->body_done = 1;
	}
	*out = x->body;
	return 0;
}

int ev_rawbody(struct evalctx *x, struct span *out)
{
	const char *p;
	size_t n, hl;
	if (whole(x, &p, &n) < 0)
		return -1;
	msg_header(x->v->msg, &hl);
	if (hl > n)
		hl = n;
	*out = (struct span){ p + hl, n - hl };
	return 0;
}

/* ---- conditions and rules ---- */
