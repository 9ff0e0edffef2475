/* rules-lex.c — the rules text as logical lines (a trailing backslash
 * continues a line) and the few token shapes the grammar needs.  Errors
 * point at the physical line and column, so a joined line keeps a map of
 * where each of its physical lines starts. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

void lx_init(struct lexer *lx, const char *file, const char *src, size_t len, char **err)
{
	memset(lx, 0, sizeof *lx);
	lx->file = file;
	lx->src = src;
	lx->srclen = len;
	lx->err = err;
	lx->cap = 256;
	lx->text = xmalloc(lx->cap);
	lx->text[0] = '\0';
}

void lx_free(struct lexer *lx)
{
	free(lx->text);
	free(lx->segoff);
	free(lx->segline);
	lx->text = NULL;
	lx->segoff = NULL;
	lx->segline = NULL;
}

static void append(struct lexer *lx, const char *p, size_t n)
{
	if (lx->len + n + 1 > lx->cap) {
		while (lx->len + n + 1 > lx->cap)
			lx->cap *= 2;
		lx->text = xrealloc(lx->text, lx->cap);
	}
	memcpy(lx->text + lx->len, p, n);
	lx->len += n;
	lx->text[lx->len] = '\0';
}

static void add_seg(struct lexer *lx)
{
	if (lx->nseg == lx->segcap) {
		lx->segcap = lx->segcap ? lx->segcap * 2 : 8;
		lx->segoff = xrealloc(lx->segoff, lx->segcap * sizeof *lx->segoff);
		lx->segline = xrealloc(lx->segline, lx->segcap * sizeof *lx->segline);
	}
	lx->segoff[lx->nseg] = lx->len;
	lx->segline[lx->nseg] = lx->srcline;
	lx->nseg++;
}

static int comment_only(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s < e && *s == '#';
}

/* Take one physical line; returns 1 if the next one continues it. */
static int take_physical(struct lexer *lx)
{
	const char *s = lx->src + lx->srcpos, *end = lx->src + lx->srclen;
	const char *nl = memchr(s, '\n', (size_t)(end - s));
	const char *e = nl ? nl : end;
	lx->srcpos = (size_t)((nl ? nl + 1 : end) - lx->src);
	lx->srcline++;
	if (e > s && e[-1] == '\r')
		e--;
	/* a comment line inside a continued rule is dropped, and its
	 * backslash never continues anything */
	if (comment_only(s, e))
		return lx->nseg > 0;
	int more = e > s && e[-1] == '\\';
	add_seg(lx);
	append(lx, s, (size_t)(e - s - more));
	if (more)
		append(lx, " ", 1);
	return more;
}

int lx_next_line(struct lexer *lx)
{
	while (lx->srcpos < lx->srclen) {
		lx->len = lx->pos = lx->nseg = 0;
		lx->text[0] = '\0';
		while (take_physical(lx) && lx->srcpos < lx->srclen)
			;
		if (!lx_eol(lx))
			return 1;
	}
	return 0;
}

int lx_line(const struct lexer *lx)
{
	return lx->nseg ? lx->segline[0] : lx->srcline;
}

void lx_ws(struct lexer *lx)
{
	while (lx->pos < lx->len && (lx->text[lx->pos] == ' ' || lx->text[lx->pos] == '\t'))
		lx->pos++;
	if (lx->pos < lx->len && lx->text[lx->pos] == '#')
		lx->pos = lx->len;
}

int lx_eol(struct lexer *lx)
{
	lx_ws(lx);
	return lx->pos >= lx->len;
}

int lx_peek(struct lexer *lx)
{
	lx_ws(lx);
	return lx->pos < lx->len ? (unsigned char)lx->text[lx->pos] : 0;
}

static int is_delim(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '(' || c == ')' ||
	       c == '"' || c == '/' || c == '#';
}

int lx_keyword(struct lexer *lx, const char *kw)
{
	lx_ws(lx);
	size_t n = strlen(kw);
	if (lx->len - lx->pos < n || memcmp(lx->text + lx->pos, kw, n) != 0)
		return 0;
	if (!is_delim(lx->text[lx->pos + n]))
		return 0;
	lx->pos += n;
	return 1;
}

static int is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int lx_ident(struct lexer *lx, char **out)
{
	lx_ws(lx);
	size_t s = lx->pos;
	while (lx->pos < lx->len && is_ident(lx->text[lx->pos]))
		lx->pos++;
	*out = lx->pos > s ? xstrndup(lx->text + s, lx->pos - s) : NULL;
	return *out != NULL;
}

/* "..." where a backslash takes the next byte literally. */
static int quoted(struct lexer *lx, char **out)
{
	size_t start = lx->pos++;
	char *buf = xmalloc(lx->len - lx->pos + 1);
	size_t n = 0;
	while (lx->pos < lx->len && lx->text[lx->pos] != '"') {
		if (lx->text[lx->pos] == '\\' && lx->pos + 1 < lx->len)
			lx->pos++;
		buf[n++] = lx->text[lx->pos++];
	}
	if (lx->pos >= lx->len) {
		free(buf);
		return lx_error(lx, start, "unterminated string");
	}
	lx->pos++;
	buf[n] = '\0';
	*out = buf;
	return 1;
}

int lx_word(struct lexer *lx, char **out, size_t *start)
{
	*out = NULL;
	lx_ws(lx);
	if (start != NULL)
		*start = lx->pos;
	if (lx->pos >= lx->len)
		return 0;
	if (lx->text[lx->pos] == '"')
		return quoted(lx, out);
	size_t s = lx->pos;
	while (lx->pos < lx->len && lx->text[lx->pos] != ' ' && lx->text[lx->pos] != '\t')
		lx->pos++;
	*out = xstrndup(lx->text + s, lx->pos - s);
	return 1;
}

char *lx_rest(struct lexer *lx, size_t *start)
{
	lx_ws(lx);
	*start = lx->pos;
	size_t e = lx->pos;
	char q = 0;
	for (; e < lx->len; e++) {
		char c = lx->text[e];
		if (q && c == q)
			q = 0;
		else if (!q && (c == '"' || c == '\''))
			q = c;
		else if (c == '\\' && q != '\'' && e + 1 < lx->len)
			e++;
		else if (!q && c == '#' && (lx->text[e - 1] == ' ' || lx->text[e - 1] == '\t'))
			break;
	}
	lx->pos = lx->len;
	while (e > *start && (lx->text[e - 1] == ' ' || lx->text[e - 1] == '\t'))
		e--;
	return xstrndup(lx->text + *start, e - *start);
}

/* Columns count characters, not bytes, so that a rule with 发票 in it
 * points at the character an editor shows. */
static void position(const struct lexer *lx, size_t pos, int *line, int *col)
{
	size_t i = 0;
	while (i + 1 < lx->nseg && lx->segoff[i + 1] <= pos)
		i++;
	*line = lx->nseg ? lx->segline[i] : lx->srcline;
	size_t from = lx->nseg ? lx->segoff[i] : 0;
	int c = 1;
	for (size_t k = from; k < pos && k < lx->len; k++)
		if (((unsigned char)lx->text[k] & 0xC0) != 0x80)
			c++;
	*col = c;
}

int lx_error(struct lexer *lx, size_t pos, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int line, col;
	position(lx, pos, &line, &col);
	return seterr(lx->err, "%s:%d:%d: %s", lx->file, line, col, msg);
}
