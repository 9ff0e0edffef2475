/* mime.c — the structural half of mime.h: header fields, Content-Type
 * parameters, the MIME tree of a body, and addresses.  Byte decoding
 * (RFC 2047, QP, base64, charsets) is in mime-decode.c.  Input may be
 * any bytes: every scan is bounded by the length given, never by NUL. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "popsift.h"

/* Bounds on the work a hostile message can ask for. */
#define MAX_DEPTH 20            /* nested multiparts / message/rfc822 */
#define MAX_PARTS 10000         /* entities visited per message */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int is_space(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

/* ---- header fields ---- */

/* Index of the '\n' ending the line that starts at i, or len. */
static size_t line_end(const char *s, size_t len, size_t i)
{
	const char *nl = memchr(s + i, '\n', len - i);
	return nl ? (size_t)(nl - s) : len;
}

static int blank_line(const char *s, size_t i, size_t e)
{
	return e == i || (e == i + 1 && s[i] == '\r');
}

/* Length of the field name if the line [i, e) starts a field ("Name:",
 * or the obsolete "Name :"), else 0.  The name check also rejects an
 * mbox "From " line, whose date holds colons. */
static size_t field_name(const char *s, size_t i, size_t e, size_t *colon)
{
	size_t j = i;
	while (j < e && (unsigned char)s[j] > ' ' && (unsigned char)s[j] < 127 && s[j] != ':')
		j++;
	size_t nlen = j - i;
	while (j < e && is_wsp(s[j]))
		j++;
	if (nlen == 0 || j >= e || s[j] != ':')
		return 0;
	*colon = j;
	return nlen;
}

/* Extend a field whose first line ends at e over its continuation lines. */
static size_t field_end(const char *s, size_t len, size_t e)
{
	while (e + 1 < len && is_wsp(s[e + 1]))
		e = line_end(s, len, e + 1);
	return e;
}

int mime_next_header(const char *hdr, size_t len, size_t *pos,
		     const char **name, size_t *namelen,
		     const char **val, size_t *vallen)
{
	size_t i = *pos, colon = 0;
	while (i < len) {
		size_t e = line_end(hdr, len, i);
		if (blank_line(hdr, i, e))
			break;
		/* a line that is no field, and a continuation with nothing to
		 * continue, are skipped: matching wants the fields that exist */
		size_t nlen = is_wsp(hdr[i]) ? 0 : field_name(hdr, i, e, &colon);
		if (nlen == 0) {
			i = e + 1;
			continue;
		}
		e = field_end(hdr, len, e);
		size_t v = colon + 1, ve = e;
		while (v < e && is_wsp(hdr[v]))
			v++;
		if (ve > v && hdr[ve - 1] == '\r')
			ve--;
		*name = hdr + i;
		*namelen = nlen;
		*val = hdr + v;
		*vallen = ve - v;
		*pos = e < len ? e + 1 : len;
		return 1;
	}
	*pos = len;     /* stay at the end: the body is no header */
	return 0;
}

size_t mime_header_end(const char *hdr, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t e = line_end(hdr, len, i);
		if (blank_line(hdr, i, e))
			return e < len ? e + 1 : len;
		i = e + 1;
	}
	return len;
}

/* The raw value of the first field called name; 0 if there is none. */
static int find_field(const char *hdr, size_t len, const char *name,
		      const char **val, size_t *vallen)
{
	size_t pos = 0, nlen, want = strlen(name);
	const char *n;
	while (mime_next_header(hdr, len, &pos, &n, &nlen, val, vallen))
		if (nlen == want && strncasecmp(n, name, want) == 0)
			return 1;
	return 0;
}

char *mime_header_charset(const char *hdr, size_t len)
{
	const char *v;
	size_t vn;
	if (!find_field(hdr, len, "Content-Type", &v, &vn))
		return NULL;
	return mime_param(v, vn, "charset");
}

char *mime_header_get(const char *hdr, size_t len, const char *name, char **notes)
{
	const char *v;
	size_t vn;
	if (!find_field(hdr, len, name, &v, &vn))
		return NULL;
	char *cs = mime_raw_needs_charset(v, vn) ? mime_header_charset(hdr, len) : NULL;
	char *s = mime_decode_value_cs(v, vn, cs, notes);
	free(cs);
	return s;
}

/* ---- structured values: quoted strings, comments, parameters ---- */

/* Index after the quoted string or (nested) comment opening at i; len
 * if it is not closed. */
static size_t skip_group(const char *s, size_t len, size_t i)
{
	int quote = s[i] == '"', depth = 1;
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (!quote && s[i] == '(')
			depth++;
		else if (s[i] == (quote ? '"' : ')') && --depth == 0)
			return i + 1;
	}
	return len;
}

/* Skip white space, line breaks and comments. */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
	while (i < len && (is_space(s[i]) || s[i] == '('))
		i = s[i] == '(' ? skip_group(s, len, i) : i + 1;
	return i;
}

/* Index of the next c at or after i outside quotes and comments, or len. */
static size_t find_plain(const char *s, size_t len, size_t i, char c)
{
	while (i < len && s[i] != c)
		i = s[i] == '"' || s[i] == '(' ? skip_group(s, len, i) : i + 1;
	return i < len ? i : len;
}

/* A quoted string's content without quotes and backslashes. */
static char *unquote(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 1; i < len && s[i] != '"'; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		if (s[i] != '\r' && s[i] != '\n')
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* The parameter value at s[i]: set *end past it; malloc'd when want. */
static char *param_value(const char *s, size_t len, size_t i, size_t *end, int want)
{
	if (i < len && s[i] == '"') {
		*end = skip_group(s, len, i);
		return want ? unquote(s + i, *end - i) : NULL;
	}
	size_t j = i;
	while (j < len && s[j] != ';' && s[j] != '(' && !is_space(s[j]))
		j++;
	*end = j;
	return want ? xstrndup(s + i, j - i) : NULL;
}

char *mime_param(const char *val, size_t len, const char *name)
{
	size_t want = strlen(name), i = find_plain(val, len, 0, ';');
	while (i < len) {
		size_t a = i = skip_cfws(val, len, i + 1);
		while (i < len && val[i] != '=' && val[i] != ';' && !is_space(val[i]))
			i++;
		int match = i - a == want && strncasecmp(val + a, name, want) == 0;
		i = skip_cfws(val, len, i);
		if (i < len && val[i] == '=') {
			size_t end;
			char *v = param_value(val, len, skip_cfws(val, len, i + 1), &end, match);
			if (match)
				return v;
			i = end;
		}
		i = find_plain(val, len, i, ';');
	}
	return NULL;
}

/* ---- addresses ---- */

/* The address between '<' at lt and '>', without an obsolete source
 * route ("<@relay:a@b>"); folding and white space inside dropped. */
static char *angle_addr(const char *s, size_t len, size_t lt)
{
	size_t i = lt + 1, e = i;
	while (e < len && s[e] != '>')
		e++;
	if (i < e && s[i] == '@') {
		size_t c = find_plain(s, e, i, ':');
		i = c < e ? c + 1 : i;
	}
	char *out = xmalloc(e - i + 1);
	size_t o = 0;
	for (; i < e; i++)
		if (!is_space(s[i]))
			out[o++] = s[i];
	out[o] = '\0';
	return out;
}

/* End of the address-like token at i: quoted strings and domain
 * literals ("[IPv6:...]") are kept whole. */
static size_t token_end(const char *s, size_t len, size_t i)
{
	while (i < len && !is_space(s[i]) && !strchr(",;(<", s[i])) {
		if (s[i] == '"') {
			i = skip_group(s, len, i);
		} else if (s[i] == '[') {
			const char *rb = memchr(s + i, ']', len - i);
			i = rb ? (size_t)(rb - s) + 1 : len;
		} else {
			i++;
		}
	}
	return i;
}

/* A token with '@' as the address, without a group name ("Team:a@b"). */
static char *bare_addr(const char *s, size_t len)
{
	size_t i = 0;
	while ((i = skip_cfws(s, len, i)) < len) {
		size_t e = token_end(s, len, i);
		if (e == i) {
			i++;    /* a ',', ';' or a stray '<' */
			continue;
		}
		const char *at = memchr(s + i, '@', e - i);
		if (at != NULL) {
			size_t c = find_plain(s, (size_t)(at - s), i, ':');
			size_t a = c < (size_t)(at - s) ? c + 1 : i;
			return a < (size_t)(at - s) ? xstrndup(s + a, e - a) : NULL;
		}
		i = e;
	}
	return NULL;
}

char *mime_address(const char *val, size_t len)
{
	size_t lt = find_plain(val, len, 0, '<');
	return lt < len ? angle_addr(val, len, lt) : bare_addr(val, len);
}

/* ---- the body: walking the MIME tree ---- */

enum cte { CTE_NONE, CTE_QP, CTE_B64 };

struct part {
	char      type[64];         /* "type/subtype", lowercase */
	char     *boundary, *charset;
	enum cte  cte;
};

struct walk {
	char   *out;
	size_t  len, cap;
	size_t  parts;
	char  **notes;
	mime_part_fn fn;        /* mime_walk_parts: each entity to fn, no text */
	void   *arg;
};

/* The first token of a value, lowercased, into out; 0 if none fits. */
static int first_token(const char *v, size_t len, char *out, size_t size)
{
	size_t i = skip_cfws(v, len, 0), o = 0;
	for (; i < len && v[i] != ';' && v[i] != '(' && !is_space(v[i]); i++) {
		if (o + 1 >= size)
			return 0;
		char c = v[i];
		out[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[o] = '\0';
	return o > 0;
}

/* The Content-* fields of an entity.  No Content-Type means text/plain
 * (message/rfc822 in a digest); an unreadable one means text/plain too,
 * as RFC 2045 5.2 says, so its text still gets matched. */
static void part_read(const char *hdr, size_t len, int digest, struct part *pt)
{
	const char *v;
	size_t vn;
	char cte[32];
	memset(pt, 0, sizeof *pt);
	strcpy(pt->type, digest ? "message/rfc822" : "text/plain");
	if (find_field(hdr, len, "Content-Type", &v, &vn)) {
		const char *slash = first_token(v, vn, pt->type, sizeof pt->type)
				    ? strchr(pt->type, '/') : NULL;
		if (slash == NULL || slash == pt->type || slash[1] == '\0')
			strcpy(pt->type, "text/plain");
		pt->boundary = mime_param(v, vn, "boundary");
		pt->charset = mime_param(v, vn, "charset");
	}
	if (find_field(hdr, len, "Content-Transfer-Encoding", &v, &vn) &&
	    first_token(v, vn, cte, sizeof cte))
		pt->cte = strcmp(cte, "quoted-printable") == 0 ? CTE_QP
			: strcmp(cte, "base64") == 0 ? CTE_B64 : CTE_NONE;
	if (pt->boundary != NULL && pt->boundary[0] == '\0') {
		free(pt->boundary);     /* "--" alone would split every line */
		pt->boundary = NULL;
	}
}

static void part_free(struct part *pt)
{
	free(pt->boundary);
	free(pt->charset);
}

/* The body without its transfer encoding; NULL if it has none. */
static char *undo_cte(enum cte cte, const char *p, size_t len, size_t *outlen)
{
	if (cte == CTE_QP)
		return mime_qp_decode(p, len, outlen);
	if (cte == CTE_B64)
		return mime_b64_decode(p, len, outlen);
	*outlen = len;
	return NULL;
}

/* CRLF to LF in place: text parts in base64 carry canonical CRLF, and
 * rules see the LF lines of the rest of the message. */
static size_t crlf_to_lf(char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\r' || i + 1 >= len || s[i + 1] != '\n')
			s[o++] = s[i];
	s[o] = '\0';
	return o;
}

static void out_add(struct walk *w, const char *p, size_t n)
{
	if (w->cap - w->len <= n + 1) {
		w->cap = (w->len + n + 2) * 2;
		w->out = xrealloc(w->out, w->cap);
	}
	if (w->len > 0)
		w->out[w->len++] = '\n';
	memcpy(w->out + w->len, p, n);
	w->len += n;
	w->out[w->len] = '\0';
}

/* A charset name for a note: bounded and printable, as notes get logged. */
static void note_charset(struct walk *w, const char *cs)
{
	char q[41];
	size_t n = 0;
	for (; n < sizeof q - 1 && cs[n]; n++)
		q[n] = cs[n] > ' ' && cs[n] < 127 ? cs[n] : '?';
	q[n] = '\0';
	mime_add_note(w->notes, "unknown charset \"%s\" in body, read as UTF-8/Latin-1", q);
}

static void add_text(struct walk *w, const struct part *pt, const char *body, size_t len)
{
	size_t n, un = 0;
	char *dec = undo_cte(pt->cte, body, len, &n);
	const char *src = dec ? dec : body;
	char *u = pt->charset ? mime_to_utf8(pt->charset, src, n, &un) : NULL;
	if (u == NULL) {
		if (pt->charset != NULL)
			note_charset(w, pt->charset);
		u = mime_raw_to_utf8(src, n, &un);
	}
	free(dec);
	un = crlf_to_lf(u, un);
	if (un > 0 && w->out == NULL) {
		w->out = u;     /* the common single-part case: no copy */
		w->len = w->cap = un;
		return;
	}
	if (un > 0)
		out_add(w, u, un);
	free(u);
}

static void walk_entity(struct walk *w, const char *p, size_t len, int depth, int digest);

/* Is there a delimiter line for boundary b at line start i?  Sets *next
 * to the start of the following line and *close for "--b--". */
static int delimiter(const char *s, size_t len, size_t i, const char *b, size_t blen,
		     size_t *next, int *close)
{
	if (len - i < blen + 2 || s[i] != '-' || s[i + 1] != '-' ||
	    memcmp(s + i + 2, b, blen) != 0)
		return 0;
	i += blen + 2;
	int end = len - i >= 2 && s[i] == '-' && s[i + 1] == '-';
	i += end ? 2 : 0;
	while (i < len && (is_wsp(s[i]) || s[i] == '\r'))
		i++;
	if (i < len && s[i] != '\n')
		return 0;       /* "--bx": a longer boundary, e.g. a nested one */
	*next = i < len ? i + 1 : len;
	*close = end;
	return 1;
}

/* Start of the next delimiter line at or after line start i (or len). */
static size_t find_delimiter(const char *s, size_t len, size_t i, const char *b,
			     size_t *next, int *close)
{
	size_t blen = strlen(b);
	while (i < len && !delimiter(s, len, i, b, blen, next, close)) {
		size_t e = line_end(s, len, i);
		i = e < len ? e + 1 : len;
	}
	return i;
}

/* Each part between delimiters; a missing close delimiter ends the
 * last part at the end of the body, as readers do.  0 if there is not
 * even one delimiter. */
static int walk_multipart(struct walk *w, const struct part *pt, const char *s, size_t len,
			   int depth)
{
	int close = 0, digest = strcmp(pt->type, "multipart/digest") == 0;
	size_t start;
	if (find_delimiter(s, len, 0, pt->boundary, &start, &close) >= len)
		return 0;
	while (!close && start < len) {
		size_t next = len, e = find_delimiter(s, len, start, pt->boundary, &next, &close);
		size_t end = e;
		/* the line break before a delimiter belongs to the delimiter */
		if (e < len && end > start && s[end - 1] == '\n')
			end--;
		if (e < len && end > start && s[end - 1] == '\r')
			end--;
		walk_entity(w, s + start, end - start, depth + 1, digest);
		start = next;   /* len when no delimiter followed */
	}
	return 1;
}

/* An attached message counts for its text; it should have no transfer
 * encoding, but some senders base64 it anyway. */
static void walk_message(struct walk *w, const struct part *pt, const char *body, size_t len,
			 int depth)
{
	size_t n;
	char *dec = undo_cte(pt->cte, body, len, &n);
	walk_entity(w, dec ? dec : body, n, depth + 1, 0);
	free(dec);
}

static void walk_entity(struct walk *w, const char *p, size_t len, int depth, int digest)
{
	if (depth > MAX_DEPTH || ++w->parts > MAX_PARTS)
		return;
	size_t hlen = mime_header_end(p, len);
	struct part pt;
	part_read(p, hlen, digest, &pt);
	const char *body = p + hlen;
	size_t blen = len - hlen;
	int multi = strncmp(pt.type, "multipart/", 10) == 0;
	int done = multi && pt.boundary != NULL && walk_multipart(w, &pt, body, blen, depth);
	if (w->fn != NULL && !done)
		w->fn(w->arg, &(struct mime_entity){ p, hlen, pt.type, body, blen });
	if (strcmp(pt.type, "message/rfc822") == 0 || strcmp(pt.type, "message/global") == 0)
		walk_message(w, &pt, body, blen, depth);
	else if (w->fn == NULL && !done && (multi || strncmp(pt.type, "text/", 5) == 0))
		add_text(w, &pt, body, blen);   /* a multipart we cannot split is
						 * matched as text: malformed MIME
						 * must not hide text from rules */
	part_free(&pt);
}

char *mime_body_text(const char *msg, size_t len, size_t *outlen, char **notes)
{
	struct walk w = { .notes = notes };
	walk_entity(&w, msg, len, 0, 0);
	if (w.out == NULL)
		w.out = xstrdup("");
	if (outlen != NULL)
		*outlen = w.len;
	return w.out;
}

void mime_walk_parts(const char *msg, size_t len, mime_part_fn fn, void *arg)
{
	struct walk w = { .fn = fn, .arg = arg };
	walk_entity(&w, msg, len, 0, 0);
}
