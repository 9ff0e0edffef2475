/* imap-util.c — the pure parts of IMAP delivery: the response parser,
 * modified UTF-7 folder names, quoted strings, the internal date from a
 * message's header, and the CRLF converter.  No I/O: unit-tested in
 * tests/unit/test-imap.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "date.h"
#include "imap.h"
#include "mime.h"
#include "popsift.h"

/* ------------------------------------------------------------ responses */

void imap_rd_start(struct imap_rd *rd, struct imap_resp *r)
{
	memset(rd, 0, sizeof *rd);
	if (r->text == NULL) {
		r->tcap = 256;
		r->text = xmalloc(r->tcap);
	}
	r->tlen = 0;
	r->text[0] = '\0';
}

void imap_resp_free(struct imap_resp *r)
{
	free(r->text);
	memset(r, 0, sizeof *r);
}

static void text_put(struct imap_resp *r, const char *p, size_t n)
{
	if (r->tlen + n + 1 > r->tcap) {
		r->tcap = (r->tlen + n + 1) * 2;
		r->text = xrealloc(r->text, r->tcap);
	}
	memcpy(r->text + r->tlen, p, n);
	r->tlen += n;
	r->text[r->tlen] = '\0';
}

/* "... {123}" or "{123+}" at the end of the text so far: a literal of
 * that many bytes follows the line end.  -1 when there is none. */
static long long literal_at_end(const struct imap_resp *r)
{
	const char *t = r->text;
	size_t n = r->tlen;
	if (n < 3 || t[n - 1] != '}')
		return -1;
	size_t i = n - 1;
	if (t[i - 1] == '+')
		i--;
	size_t end = i;
	while (i > 0 && isdigit((unsigned char)t[i - 1]))
		i--;
	if (i == end || i == 0 || t[i - 1] != '{' || end - i > 12)
		return -1;
	return strtoll(t + i, NULL, 10);
}

static enum imap_status status_word(const char *w, size_t n)
{
	static const struct { const char *w; enum imap_status s; } v[] = {
		{ "OK", IS_OK }, { "NO", IS_NO }, { "BAD", IS_BAD }, { "BYE", IS_BYE },
		{ "PREAUTH", IS_PREAUTH },
	};
	for (size_t i = 0; i < sizeof v / sizeof *v; i++)
		if (strlen(v[i].w) == n && strncasecmp(w, v[i].w, n) == 0)
			return v[i].s;
	return IS_NONE;
}

/* Tag, status and response code of a complete line; r->text keeps what
 * follows the tag. */
static void classify(struct imap_resp *r)
{
	char *t = r->text;
	size_t w = strcspn(t, " ");
	r->code[0] = r->tag[0] = '\0';
	r->status = IS_NONE;
	if (w == 1 && t[0] == '+')
		r->kind = IR_CONT;
	else if (w == 1 && t[0] == '*')
		r->kind = IR_UNTAGGED;
	else
		r->kind = IR_TAGGED;
	if (r->kind == IR_TAGGED)
		snprintf(r->tag, sizeof r->tag, "%.*s", (int)(w < sizeof r->tag ? w : 0), t);
	size_t rest = w + (t[w] == ' ');
	memmove(t, t + rest, r->tlen - rest + 1);
	r->tlen -= rest;
	if (r->kind == IR_CONT)
		return;
	w = strcspn(t, " ");
	r->status = status_word(t, w);
	if (r->status == IS_NONE || t[w] != ' ' || t[w + 1] != '[')
		return;
	const char *open = t + w + 2, *close = strchr(open, ']');
	if (close)
		snprintf(r->code, sizeof r->code, "%.*s", (int)(close - open), open);
}

int imap_parse(struct imap_rd *rd, struct imap_resp *r, const char *buf, size_t len,
	       size_t *used, char **err)
{
	size_t i = 0;
	if (!rd->in_resp) {
		imap_rd_start(rd, r);
		rd->in_resp = 1;
	}
	for (;;) {
		if (rd->lit_left > 0) {
			size_t k = len - i < rd->lit_left ? len - i : rd->lit_left;
			i += k;
			rd->lit_left -= k;
			if (rd->lit_left > 0 || i == len) {
				*used = i;
				return 0;
			}
		}
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
		if (r->tlen + n > IMAP_MAX_LINE) {
			rd->in_resp = 0;
			return seterr(err, "a response longer than %u bytes", IMAP_MAX_LINE);
		}
		text_put(r, buf + i, n);
		i += n;
		if (nl == NULL) {
			*used = i;
			return 0;
		}
		r->tlen--;   /* the LF, and a CR before it */
		if (r->tlen > 0 && r->text[r->tlen - 1] == '\r')
			r->tlen--;
		r->text[r->tlen] = '\0';
		long long lit = literal_at_end(r);
		if (lit > (long long)IMAP_MAX_LITERAL) {
			rd->in_resp = 0;
			return seterr(err, "a literal of %lld bytes in a response", lit);
		}
		if (lit >= 0) {
			rd->lit_left = (size_t)lit;
			continue;
		}
		classify(r);
		rd->in_resp = 0;
		*used = i;
		return 1;
	}
}

int imap_code_is(const struct imap_resp *r, const char *kw)
{
	size_t n = strlen(kw);
	return strncasecmp(r->code, kw, n) == 0 && (r->code[n] == '\0' || r->code[n] == ' ');
}

int imap_has_word(const char *text, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = text; *p; ) {
		p += strspn(p, " ");
		size_t w = strcspn(p, " ");
		if (w == n && strncasecmp(p, word, n) == 0)
			return 1;
		p += w;
	}
	return 0;
}

/* ------------------------------------------------------------ names */

/* One UTF-8 sequence at s: the code point, or -1 if invalid. */
static long utf8_next(const unsigned char **s)
{
	const unsigned char *p = *s;
	long c = p[0];
	int n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 :
		c >= 0xF0 && c <= 0xF4 ? 3 : -1;
	if (n < 0)
		return -1;
	if (n > 0)
		c &= 0x3F >> n;
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if ((n == 2 && c < 0x800) || (n == 3 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*s = p + n + 1;
	return c;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* A run of UTF-16 units as "&...-", modified base64. */
static void put_run(char **o, const unsigned short *u, size_t n)
{
	unsigned long bits = 0;
	int nb = 0;
	*(*o)++ = '&';
	for (size_t i = 0; i < n; i++) {
		bits = (bits << 16) | u[i];
		nb += 16;
		while (nb >= 6) {
			nb -= 6;
			*(*o)++ = b64[(bits >> nb) & 0x3F];
		}
	}
	if (nb > 0)
		*(*o)++ = b64[(bits << (6 - nb)) & 0x3F];
	*(*o)++ = '-';
}

char *imap_mutf7(const char *utf8)
{
	size_t len = strlen(utf8);
	char *out = xmalloc(len * 4 + 8), *o = out;
	unsigned short *run = xmalloc((len + 1) * 2 * sizeof *run);
	size_t nrun = 0;
	const unsigned char *s = (const unsigned char *)utf8;
	while (*s) {
		long c = utf8_next(&s);
		if (c < 0 || c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) {
			free(out);
			free(run);
			return NULL;
		}
		if (c >= 0x80) {
			if (c >= 0x10000) {
				run[nrun++] = (unsigned short)(0xD800 + ((c - 0x10000) >> 10));
				run[nrun++] = (unsigned short)(0xDC00 + ((c - 0x10000) & 0x3FF));
			} else {
				run[nrun++] = (unsigned short)c;
			}
			continue;
		}
		if (nrun > 0)
			put_run(&o, run, nrun);
		nrun = 0;
		*o++ = (char)c;
		if (c == '&')
			*o++ = '-';
	}
	if (nrun > 0)
		put_run(&o, run, nrun);
	*o = '\0';
	free(run);
	return out;
}

char *imap_quote(const char *s)
{
	char *out = xmalloc(strlen(s) * 2 + 3), *o = out;
	*o++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\r' || c == '\n' || c >= 0x80) {
			free(out);
			return NULL;
		}
		if (c == '"' || c == '\\')
			*o++ = '\\';
		*o++ = (char)c;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

/* ------------------------------------------------------------ dates */

static void format_date(time_t t, int off, char out[32])
{
	time_t local = t + (time_t)off * 60;
	struct tm tm;
	gmtime_r(&local, &tm);
	int a = off < 0 ? -off : off;
	char buf[96];
	snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", tm.tm_mday,
		 date_month_name(tm.tm_mon), tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 off < 0 ? '-' : '+', a / 60, a % 60);
	size_t n = strnlen(buf, 31);
	memcpy(out, buf, n);
	out[n] = '\0';
}

/* Received: the date follows the last ';' (RFC 5321 4.4). */
static int received_date(const char *v, size_t n, time_t *t, int *off)
{
	const char *semi = NULL;
	for (size_t i = 0; i < n; i++)
		if (v[i] == ';')
			semi = v + i;
	return semi ? date_parse(semi + 1, (size_t)(v + n - semi - 1), t, off) : -1;
}

int imap_internal_date(const char *hdr, size_t len, char out[32])
{
	size_t pos = 0, nl, vl;
	const char *name, *val;
	time_t best = 0, t, dt = 0;
	int boff = 0, off, doff = 0, have = 0, have_date = 0;
	while (mime_next_header(hdr, len, &pos, &name, &nl, &val, &vl) == 1) {
		if (nl == 8 && strncasecmp(name, "Received", 8) == 0 &&
		    received_date(val, vl, &t, &off) == 0 && (!have || t > best)) {
			best = t;
			boff = off;
			have = 1;
		} else if (nl == 4 && strncasecmp(name, "Date", 4) == 0 && !have_date &&
			   date_parse(val, vl, &dt, &doff) == 0) {
			have_date = 1;
		}
	}
	if (!have && !have_date)
		return 0;
	format_date(have ? best : dt, have ? boff : doff, out);
	return 1;
}

/* ------------------------------------------------------------ line ends */

size_t crlf_put(struct crlf *c, const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (c->cr) {   /* the LF of a CRLF, or the one a lone CR lacks */
			c->cr = 0;
			if (out)
				out[o] = '\n';
			o++;
			if (ch == '\n')
				continue;
		}
		if (ch == '\n' || ch == '\r') {
			if (out)
				out[o] = '\r';
			o++;
			if (ch == '\r') {
				c->cr = 1;
				continue;
			}
			if (out)
				out[o] = '\n';
			o++;
			continue;
		}
		if (out)
			out[o] = ch;
		o++;
	}
	return o;
}

size_t crlf_end(struct crlf *c, char *out)
{
	if (!c->cr)
		return 0;
	c->cr = 0;
	if (out)
		out[0] = '\n';
	return 1;
}
