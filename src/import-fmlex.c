/* import-fmlex.c — the words of a .fetchmailrc, as fetchmail's lexer
 * sees them: '#' comments, "double" and 'single' quoted strings with
 * backslash escapes (\n \t \r \b \f \\ \" \' \xHH \NNN), and the
 * punctuation , : ; that fetchmail ignores.  The noise words (and, with,
 * has, wants, options) are the parser's business. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "popsift.h"

struct lexer {
	const char *file, *p;
	int line;
	struct fmtok *toks;
	size_t n, cap;
};

static void push(struct lexer *lx, char *s, int quoted, int line)
{
	if (lx->n + 1 >= lx->cap) {
		lx->cap = lx->cap ? lx->cap * 2 : 64;
		lx->toks = xrealloc(lx->toks, lx->cap * sizeof *lx->toks);
	}
	lx->toks[lx->n++] = (struct fmtok){ .s = s, .quoted = quoted, .line = line };
	lx->toks[lx->n] = (struct fmtok){ .s = NULL, .line = lx->line };
}

static int digit_val(int c, int base)
{
	int v = isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : 99;
	return v < base ? v : -1;
}

/* \xHH or \NNN: up to max digits of base; returns the byte. */
static char number_escape(const char **p, int base, int max)
{
	int v = 0, d;
	for (int i = 0; i < max && (d = digit_val((unsigned char)**p, base)) >= 0; i++, (*p)++)
		v = v * base + d;
	return (char)v;
}

static char escape(const char **p)
{
	char c = *(*p)++;
	switch (c) {
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'x': return number_escape(p, 16, 2);
	default:
		if (c >= '0' && c <= '7') {
			(*p)--;
			return number_escape(p, 8, 3);
		}
		return c;
	}
}

static int quoted(struct lexer *lx)
{
	char q = *lx->p++;
	int start = lx->line;
	char *buf = xmalloc(strlen(lx->p) + 1);
	size_t n = 0;
	while (*lx->p && *lx->p != q) {
		if (*lx->p == '\n')
			lx->line++;
		if (*lx->p == '\\' && lx->p[1]) {
			lx->p++;
			lx->line += *lx->p == '\n';
			buf[n++] = escape(&lx->p);
		} else {
			buf[n++] = *lx->p++;
		}
	}
	if (*lx->p != q) {
		free(buf);
		lx->line = start;
		return -1;
	}
	lx->p++;
	buf[n] = '\0';
	push(lx, buf, 1, start);
	return 0;
}

static void word(struct lexer *lx)
{
	size_t n = strcspn(lx->p, " \t\r\n#,:;\"'");
	push(lx, xstrndup(lx->p, n), 0, lx->line);
	lx->p += n;
}

int fm_lex(const char *file, const char *text, struct fmtok **out, char **err)
{
	struct lexer lx = { .file = file, .p = text, .line = 1 };
	push(&lx, NULL, 0, 1);
	lx.n = 0;
	while (*lx.p) {
		char c = *lx.p;
		if (c == '\n') {
			lx.line++;
			lx.p++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == ',' || c == ':' || c == ';') {
			lx.p++;
		} else if (c == '#') {
			lx.p += strcspn(lx.p, "\n");
		} else if (c == '"' || c == '\'') {
			if (quoted(&lx) < 0) {
				fm_tokens_free(lx.toks);
				*out = NULL;
				return seterr(err, "%s:%d: unterminated %s", file, lx.line,
					      c == '"' ? "\"string\"" : "'string'");
			}
		} else {
			word(&lx);
		}
	}
	*out = lx.toks;
	return 0;
}

void fm_tokens_free(struct fmtok *t)
{
	if (t == NULL)
		return;
	for (struct fmtok *p = t; p->s; p++)
		free(p->s);
	free(t);
}
