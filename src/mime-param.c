/* mime-param.c — the file name of a MIME entity, decoded as mail clients
 * decode it: RFC 2231 extended parameters (filename*=utf-8''%E2%82%AC,
 * continuations filename*0*=, filename*1=) and RFC 2047 encoded words in
 * a quoted name (what Outlook and Gmail send, though RFC 2047 5 forbids
 * it).  Pure: unit-tested in tests/unit/test-mime.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "popsift.h"

#define MAX_SEGMENTS 64         /* filename*0 .. filename*63: more is hostile */
#define MAX_FIELD    65536      /* of a field, the part searched for the name:
				 * each segment is one scan of it */

struct bytes {
	char   *p;
	size_t  n, cap;
};

static void put(struct bytes *b, const char *p, size_t n)
{
	if (b->cap - b->n <= n) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* %XX escapes undone; a stray '%' is kept. */
static void put_pct(struct bytes *b, const char *s)
{
	for (; *s; s++) {
		int h, l;
		if (s[0] == '%' && (h = hex(s[1])) >= 0 && (l = hex(s[2])) >= 0) {
			char c = (char)(h * 16 + l);
			put(b, &c, 1);
			s += 2;
		} else {
			put(b, s, 1);
		}
	}
}

/* "charset'language'text": the charset into cs, *s moved to the text.
 * Without the two quotes the whole value is text. */
static void split_charset(const char **s, char *cs, size_t cssize)
{
	const char *q1 = strchr(*s, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	cs[0] = '\0';
	if (q2 == NULL)
		return;
	snprintf(cs, cssize, "%.*s", (int)(q1 - *s), *s);
	*s = q2 + 1;
}

static char *to_utf8(struct bytes *b, const char *cs, char **notes)
{
	char *u = cs[0] ? mime_to_utf8(cs, b->p, b->n, NULL) : NULL;
	if (u == NULL && cs[0])
		mime_add_note(notes, "unknown charset in an RFC 2231 file name, read as UTF-8/Latin-1");
	if (u == NULL)
		u = mime_raw_to_utf8(b->p, b->n, NULL);
	free(b->p);
	return u;
}

/* One segment name*k* (extended) or name*k; 0 when there is none. */
static int segment(const char *v, size_t vn, const char *name, int k, struct bytes *b,
		   char *cs, size_t cssize)
{
	char key[96];
	snprintf(key, sizeof key, "%s*%d*", name, k);
	char *s = mime_param(v, vn, key);
	if (s != NULL) {
		const char *t = s;
		if (k == 0)
			split_charset(&t, cs, cssize);
		put_pct(b, t);
		free(s);
		return 1;
	}
	snprintf(key, sizeof key, "%s*%d", name, k);
	if ((s = mime_param(v, vn, key)) == NULL)
		return 0;
	put(b, s, strlen(s));
	free(s);
	return 1;
}

/* The RFC 2231 form of parameter name, decoded; NULL if absent. */
static char *param_2231(const char *v, size_t vn, const char *name, char **notes)
{
	char key[96], cs[64];
	struct bytes b = { 0 };
	if (memchr(v, '*', vn) == NULL)
		return NULL;    /* the common case: no scan per segment */
	snprintf(key, sizeof key, "%s*", name);
	char *s = mime_param(v, vn, key);
	if (s != NULL) {
		const char *t = s;
		split_charset(&t, cs, sizeof cs);
		put_pct(&b, t);
		free(s);
		put(&b, "", 0);
		return to_utf8(&b, cs, notes);
	}
	cs[0] = '\0';
	int k = 0;
	while (k < MAX_SEGMENTS && segment(v, vn, name, k, &b, cs, sizeof cs))
		k++;
	if (k == 0)
		return NULL;
	put(&b, "", 0);
	return to_utf8(&b, cs, notes);
}

/* Parameter name of value v: RFC 2231 first, then the plain one with
 * any encoded words decoded. */
static char *param_decoded(const char *v, size_t vn, const char *name, char **notes)
{
	char *s = param_2231(v, vn, name, notes);
	if (s != NULL)
		return s;
	if ((s = mime_param(v, vn, name)) == NULL)
		return NULL;
	char *d = mime_decode_value(s, strlen(s), notes);
	free(s);
	return d;
}

static char *field_param(const char *hdr, size_t hlen, const char *field, const char *name,
			 char **notes)
{
	size_t pos = 0, nl, vl, want = strlen(field);
	const char *n, *v;
	while (mime_next_header(hdr, hlen, &pos, &n, &nl, &v, &vl))
		if (nl == want && strncasecmp(n, field, want) == 0)
			return param_decoded(v, vl < MAX_FIELD ? vl : MAX_FIELD, name, notes);
	return NULL;
}

char *mime_filename(const char *hdr, size_t hlen, char **notes)
{
	char *s = field_param(hdr, hlen, "Content-Disposition", "filename", notes);
	if (s == NULL || s[0] == '\0') {
		free(s);
		s = field_param(hdr, hlen, "Content-Type", "name", notes);
	}
	if (s != NULL && s[0] == '\0') {
		free(s);
		s = NULL;
	}
	return s;
}
