/* mime-decode.c — the byte-level half of mime.h: charset conversion to
 * UTF-8 (iconv), quoted-printable, base64 and RFC 2047 encoded words.
 * Everything here works on bounded in-memory input and returns valid
 * UTF-8, because the rules match with PCRE2 in UTF mode, which rejects
 * a subject that is not. */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "charset-cjk.h"
#include "mime.h"
#include "popsift.h"

#define CS_MAX 64               /* longest charset name we accept */
#define NOTES_MAX 1024          /* enough to diagnose; a hostile header may hold
				 * thousands of bad words */

static const char REPL[] = "\xEF\xBF\xBD";     /* U+FFFD */

/* A growable byte buffer, NUL-terminated once anything was added. */
struct buf {
	char  *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->cap - b->len > more)
		return;
	size_t c = b->cap ? b->cap * 2 : 64;
	if (c - b->len <= more)
		c = b->len + more + 1;
	b->p = xrealloc(b->p, c);
	b->cap = c;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Hand the buffer over as a C string (never NULL). */
static char *buf_done(struct buf *b, size_t *outlen)
{
	if (b->p == NULL)
		buf_add(b, "", 0);
	if (outlen != NULL)
		*outlen = b->len;
	return b->p;
}

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void mime_add_note(char **notes, const char *fmt, ...)
{
	if (notes == NULL || (*notes != NULL && strlen(*notes) > NOTES_MAX))
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *s = *notes ? xasprintf("%s; %s", *notes, msg) : xstrdup(msg);
	free(*notes);
	*notes = s;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p (1-4), 0 if there is none:
 * overlong forms, surrogates and values past U+10FFFF are invalid, as
 * for PCRE2. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0], lo = 0x80, hi = 0xBF;
	size_t k;
	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0) {
		k = 2;
	} else if (c < 0xF0) {
		k = 3;
		lo = c == 0xE0 ? 0xA0 : lo;
		hi = c == 0xED ? 0x9F : hi;
	} else {
		k = 4;
		lo = c == 0xF0 ? 0x90 : lo;
		hi = c == 0xF4 ? 0x8F : hi;
	}
	if (n < k || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return k;
}

static int utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t k;
	for (size_t i = 0; i < n; i += k)
		if ((k = utf8_len(u + i, n - i)) == 0)
			return 0;
	return 1;
}

/* Append p keeping its valid UTF-8 sequences; any other byte becomes
 * its Latin-1 character (latin1) or U+FFFD.  NUL becomes U+FFFD too:
 * header results are C strings. */
static void put_utf8(struct buf *b, const char *p, size_t n, int latin1)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		size_t j = i, k;
		while (j < n && u[j] != 0 && (k = utf8_len(u + j, n - j)) > 0)
			j += k;
		buf_add(b, p + i, j - i);
		if (j == n)
			break;
		if (latin1 && u[j] >= 0x80) {
			char two[2] = { (char)(0xC0 | u[j] >> 6), (char)(0x80 | (u[j] & 0x3F)) };
			buf_add(b, two, 2);
		} else {
			buf_add(b, REPL, 3);
		}
		i = j + 1;
	}
}

/* Undeclared 8-bit text (raw header bytes, a body without charset):
 * keep what is valid UTF-8, since that is what modern senders mean, and
 * read every other byte as Latin-1.  Latin-1 rather than a guess such as
 * GB18030: it cannot fail, maps each byte to one character so nothing is
 * lost, and a guess would turn western mail into CJK soup. */
char *mime_raw_to_utf8(const char *p, size_t len, size_t *outlen)
{
	struct buf b = { 0 };
	put_utf8(&b, p, len, 1);
	return buf_done(&b, outlen);
}

/* ---- charsets ---- */

enum cs_kind { CS_BAD, CS_RAW, CS_UTF8, CS_ICONV, CS_JIS, CS_EUCJP, CS_HZ };

/* Labels mail uses for a charset better read as a superset (as browsers
 * do): text labelled GB2312 or GBK often holds GB18030-only characters,
 * ISO-8859-1 holds Windows-1252 quotes, EUC-KR holds CP949 (UHC),
 * Shift_JIS holds CP932; plus names glibc does not know. */
static const struct { const char *label, *name; } cs_alias[] = {
	{ "gb2312", "GB18030" }, { "csgb2312", "GB18030" }, { "gb_2312-80", "GB18030" },
	{ "euc-cn", "GB18030" }, { "x-euc-cn", "GB18030" }, { "chinese", "GB18030" },
	{ "gbk", "GB18030" }, { "x-gbk", "GB18030" }, { "cp936", "GB18030" },
	{ "ms936", "GB18030" }, { "windows-936", "GB18030" },
	{ "iso-8859-1", "WINDOWS-1252" }, { "iso8859-1", "WINDOWS-1252" },
	{ "iso_8859-1", "WINDOWS-1252" }, { "latin1", "WINDOWS-1252" },
	{ "l1", "WINDOWS-1252" }, { "cp819", "WINDOWS-1252" },
	{ "euc-kr", "CP949" }, { "ks_c_5601-1987", "CP949" }, { "ks_c_5601", "CP949" },
	{ "korean", "CP949" }, { "x-windows-949", "CP949" },
	{ "shift_jis", "CP932" }, { "shift-jis", "CP932" }, { "sjis", "CP932" },
	{ "x-sjis", "CP932" }, { "ms_kanji", "CP932" }, { "csshiftjis", "CP932" },
	{ "iso-8859-8-i", "ISO-8859-8" }, { "unicode-1-1-utf-7", "UTF-7" },
};

/* Labels that promise nothing beyond ASCII: read them as undeclared
 * text, since 8-bit bytes under them are common and not an error. */
static const char *const cs_raw[] = {
	"us-ascii", "ascii", "ansi_x3.4-1968", "us", "unknown-8bit",
	"x-unknown", "unknown", "8bit", "default",
};

/* Labels decoded here rather than by iconv alone (see charset-cjk.c):
 * Japanese as CP50220/CP51932 do, with the NEC and IBM extensions;
 * HZ, which glibc lacks. */
static const struct { const char *label; enum cs_kind kind; } cs_own[] = {
	{ "iso-2022-jp", CS_JIS }, { "csiso2022jp", CS_JIS }, { "iso-2022-jp-1", CS_JIS },
	{ "iso-2022-jp-2", CS_JIS }, { "csiso2022jp2", CS_JIS }, { "iso-2022-jp-ms", CS_JIS },
	{ "cp50220", CS_JIS }, { "cp50221", CS_JIS }, { "cp50222", CS_JIS },
	{ "euc-jp", CS_EUCJP }, { "x-euc-jp", CS_EUCJP }, { "eucjp", CS_EUCJP },
	{ "cseucpkdfmtjapanese", CS_EUCJP }, { "euc-jp-ms", CS_EUCJP },
	{ "eucjp-ms", CS_EUCJP }, { "cp51932", CS_EUCJP },
	{ "hz-gb-2312", CS_HZ }, { "hz", CS_HZ }, { "hz-gb2312", CS_HZ },
};

/* Copy a label lowercased, without quotes and the RFC 2231 "*lang"
 * suffix; 0 if it is empty, too long or holds bytes that are no part of
 * a charset name (they would only reach iconv_open). */
static int cs_clean(const char *cs, char *out)
{
	size_t n = 0;
	while (is_wsp(*cs) || *cs == '"')
		cs++;
	for (; *cs && *cs != '*' && *cs != '"' && !is_wsp(*cs); cs++) {
		char c = *cs;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || strchr("-_.:+", c) != NULL;
		if (!ok || n + 1 >= CS_MAX)
			return 0;
		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	return n > 0;
}

/* What to do with a charset label; name gets what to pass to iconv. */
static enum cs_kind cs_lookup(const char *label, char *name)
{
	if (!cs_clean(label, name))
		return CS_BAD;
	if (strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0)
		return CS_UTF8;
	for (size_t i = 0; i < sizeof cs_raw / sizeof cs_raw[0]; i++)
		if (strcmp(name, cs_raw[i]) == 0)
			return CS_RAW;
	for (size_t i = 0; i < sizeof cs_own / sizeof cs_own[0]; i++)
		if (strcmp(name, cs_own[i].label) == 0)
			return cs_own[i].kind;
	for (size_t i = 0; i < sizeof cs_alias / sizeof cs_alias[0]; i++)
		if (strcmp(name, cs_alias[i].label) == 0) {
			strcpy(name, cs_alias[i].name);
			break;
		}
	return CS_ICONV;
}

/* An EUC-JP pair glibc rejects, read as CP932 as CP51932 does: NEC row
 * 13 (①, ㈱) and the NEC-selected IBM rows 89-92 (﨑, 髙).  0 and the
 * character added to b, or -1.  A descriptor of its own: the cache
 * below may close the one the caller is using. */
static int eucjp_ext(const unsigned char *u, size_t left, struct buf *b)
{
	static iconv_t cd = (iconv_t)-1;
	if (left < 2 || u[0] < 0xA1 || u[0] > 0xFE || u[1] < 0xA1 || u[1] > 0xFE)
		return -1;
	if (cd == (iconv_t)-1 && (cd = iconv_open("UTF-8", "CP932")) == (iconv_t)-1)
		return -1;
	char sj[2], out[8];
	cjk_euc_to_sjis(u[0], u[1], sj);
	char *in = sj, *op = out;
	size_t inleft = 2, avail = sizeof out;
	iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &in, &inleft, &op, &avail) == (size_t)-1 || op == out)
		return -1;
	buf_add(b, out, (size_t)(op - out));
	return 0;
}

/* Convert everything, U+FFFD for each character iconv rejects, so that
 * one bad character does not lose or garble the rest of the text.
 * mode: 0, 'D' (double-byte), 'J' (EUC-JP, with extensions) or 'W'
 * (Windows-1252).
 * Returns how many characters were rejected. */
static size_t iconv_all(iconv_t cd, const char *p, size_t len, struct buf *b, int mode)
{
	char *in = (char *)p;   /* iconv's prototype lacks the const */
	size_t inleft = len, want = len * 2 + 16, bad = 0;
	while (inleft > 0) {
		buf_reserve(b, want);
		char *op = b->p + b->len;
		size_t avail = b->cap - b->len - 1;
		size_t r = iconv(cd, &in, &inleft, &op, &avail);
		int e = errno;
		b->len = (size_t)(op - b->p);
		if (r != (size_t)-1)
			break;
		if (e == E2BIG) {
			want = b->cap;
			continue;
		}
		const unsigned char *u = (const unsigned char *)in;
		if (e == EILSEQ && mode == 'J' && eucjp_ext(u, inleft, b) == 0) {
			in += 2;
			inleft -= 2;
			continue;
		}
		if (e == EILSEQ && mode == 'W') {
			/* the five bytes Windows-1252 leaves undefined are the C1
			 * controls, as in browsers: nothing lost */
			char two[2] = { (char)(0xC0 | u[0] >> 6), (char)(0x80 | (u[0] & 0x3F)) };
			buf_add(b, two, 2);
			in++;
			inleft--;
			continue;
		}
		buf_add(b, REPL, 3);
		bad++;
		if (e != EILSEQ)
			break;          /* EINVAL: a sequence cut off at the end */
		size_t w = cjk_bad_width(mode, u, inleft);
		in += w;
		inleft -= w;
	}
	buf_add(b, "", 0);
	return bad;
}

/* The descriptors (these and eucjp_ext's) are shared with the delivery
 * thread, which decodes headers too (deliver-imap.c, smtp-job.c): held
 * from the lookup to the end of the conversion. */
static pthread_mutex_t iconv_lock = PTHREAD_MUTEX_INITIALIZER;

/* iconv_open loads a gconv module each time: over thousands of messages
 * that cost more than the matching, so descriptors are kept (reset before
 * each use) for the process's life. */
static iconv_t cached_iconv(const char *name)
{
	static struct { char name[CS_MAX]; iconv_t cd; } cache[8];
	static unsigned next;
	for (size_t i = 0; i < 8; i++) {
		if (cache[i].name[0] && strcmp(cache[i].name, name) == 0) {
			iconv(cache[i].cd, NULL, NULL, NULL, NULL);
			return cache[i].cd;
		}
	}
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return cd;
	unsigned k = next++ % 8;
	if (cache[k].name[0])
		iconv_close(cache[k].cd);
	snprintf(cache[k].name, sizeof cache[k].name, "%s", name);
	cache[k].cd = cd;
	return cd;
}

/* The number of rejected characters (0 when clean) and the text
 * appended to b, or -1 if iconv does not know name. */
static long convert(const char *name, const char *p, size_t len, struct buf *b, int mode)
{
	pthread_mutex_lock(&iconv_lock);
	iconv_t cd = cached_iconv(name);
	if (cd == (iconv_t)-1) {
		pthread_mutex_unlock(&iconv_lock);
		return -1;
	}
	struct buf tmp = { 0 };
	if (mode == 0)
		mode = cjk_is_dbcs(name) ? 'D' : strcasecmp(name, "WINDOWS-1252") == 0 ? 'W' : 0;
	size_t bad = iconv_all(cd, p, len, &tmp, mode);
	pthread_mutex_unlock(&iconv_lock);
	/* iconv's UTF-8 is valid, but a NUL from e.g. UTF-16 must not cut
	 * a header short */
	put_utf8(b, tmp.p, tmp.len, 0);
	free(tmp.p);
	return (long)bad;
}

/* ISO-2022-JP or HZ through their EUC form (charset-cjk.c). */
static long convert_7bit(enum cs_kind k, const char *p, size_t len, struct buf *b)
{
	char *euc = xmalloc(2 * len + 1);
	size_t n = k == CS_HZ ? cjk_hz_to_euc(p, len, euc) : cjk_jis_to_euc(p, len, euc);
	long r = n == (size_t)-1 ? convert("ISO-2022-JP-2", p, len, b, 0)
		: k == CS_HZ ? convert("GB18030", euc, n, b, 'D')
		: convert("EUC-JP", euc, n, b, 'J');
	free(euc);
	return r;
}

/* Text in charset label appended to b as UTF-8: the number of
 * characters that could not be read (each now U+FFFD, or a Latin-1
 * reading for an ASCII label), or -1 if the label is unknown. */
static long to_utf8_into(const char *label, const char *p, size_t len, struct buf *b)
{
	char name[CS_MAX];
	enum cs_kind k = cs_lookup(label, name);
	switch (k) {
	case CS_RAW:
		put_utf8(b, p, len, 1);
		return 0;
	case CS_UTF8:
		put_utf8(b, p, len, 0);
		return 0;
	case CS_ICONV:
		return convert(name, p, len, b, 0);
	case CS_EUCJP:
		return convert("EUC-JP", p, len, b, 'J');
	case CS_JIS:
	case CS_HZ:
		return convert_7bit(k, p, len, b);
	default:
		return -1;
	}
}

char *mime_to_utf8(const char *charset, const char *p, size_t len, size_t *outlen)
{
	struct buf b = { 0 };
	if (to_utf8_into(charset, p, len, &b) < 0) {
		free(b.p);
		return NULL;
	}
	return buf_done(&b, outlen);
}

/* Can mime_to_utf8 handle this label?  *memo remembers the last label
 * found usable, sparing an iconv_open per word of a long header. */
static int cs_usable(const char *label, char *memo)
{
	char name[CS_MAX];
	enum cs_kind k = cs_lookup(label, name);
	if (k != CS_ICONV || strcmp(name, memo) == 0)
		return k != CS_BAD;
	pthread_mutex_lock(&iconv_lock);
	int known = cached_iconv(name) != (iconv_t)-1;
	pthread_mutex_unlock(&iconv_lock);
	if (!known)
		return 0;
	strcpy(memo, name);
	return 1;
}

/* ---- RFC 2047 encoded words ---- */

struct word {
	size_t len;             /* of the whole "=?...?=" as written */
	char   cs[CS_MAX];      /* charset label */
	char  *bytes;           /* decoded, malloc'd (W_OK only) */
	size_t nbytes;
	const char *why;        /* W_BAD: what is wrong */
};

enum { W_NONE, W_OK, W_BAD };

struct dec {
	struct buf out;         /* the UTF-8 result */
	struct buf pend;        /* decoded bytes of adjacent words in charset cs,
				 * joined before conversion: a sender may split
				 * a multibyte character between two words */
	char   cs[CS_MAX];
	int    pending;
	char   memo[CS_MAX];    /* see cs_usable */
	const char *raw_cs;     /* charset of 8-bit text outside encoded words;
				 * NULL: it is UTF-8 */
	char **notes;
};

/* Decode the Q text of a word (RFC 2047 4.2: '_' is a space; unlike QP
 * bodies, a bad "=" makes the word malformed). */
static int q_into(const char *p, size_t len, char *out, size_t *o)
{
	for (size_t i = 0; i < len; i++) {
		int c = p[i];
		if (c == '=') {
			if ((c = mime_qp_escape(p, len, i)) < 0)
				return -1;
			i += 2;
		} else if (c == '_') {
			c = ' ';
		}
		out[(*o)++] = (char)c;
	}
	return 0;
}

static int word_decode(char enc, const char *t, size_t tlen, struct word *w)
{
	int q = enc == 'Q' || enc == 'q', b = enc == 'B' || enc == 'b';
	long n = -1;
	w->bytes = xmalloc(tlen + 1);
	w->nbytes = 0;
	if (q)
		n = q_into(t, tlen, w->bytes, &w->nbytes);
	else if (b && (n = mime_b64_into(t, tlen, w->bytes, 1)) >= 0)
		w->nbytes = (size_t)n;
	if (n >= 0)
		return 0;
	w->why = q || b ? "malformed encoded word" : "unknown encoding in encoded word";
	free(w->bytes);
	w->bytes = NULL;
	return -1;
}

/* Parse the encoded word at s (which starts with "=?").  W_NONE: only
 * "=?" in plain text; W_BAD: shaped like a word but undecodable, w->len
 * covering it so it is kept raw. */
static int word_parse(struct dec *d, const char *s, size_t n, struct word *w)
{
	size_t i = 2, t;
	while (i < n && s[i] != '?' && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 127)
		i++;
	if (i == 2 || i + 2 >= n || s[i] != '?' || s[i + 2] != '?')
		return W_NONE;
	for (t = i + 3; t < n && s[t] != '?' && !is_wsp(s[t]); t++)
		;
	w->why = "malformed encoded word";
	w->len = t + 1 < n && s[t] == '?' && s[t + 1] == '=' ? t + 2 : t;
	if (w->len == t || i - 2 >= CS_MAX)
		return W_BAD;
	/* without the RFC 2231 language, so that "utf-8*en" words join
	 * with "utf-8" ones */
	size_t cslen = strcspn(s + 2, "*?");
	memcpy(w->cs, s + 2, cslen);
	w->cs[cslen] = '\0';
	if (word_decode(s[i + 1], s + i + 3, t - i - 3, w) < 0)
		return W_BAD;
	if (cs_usable(w->cs, d->memo))
		return W_OK;
	w->why = "unknown charset in encoded word";
	free(w->bytes);
	return W_BAD;
}

/* Text outside encoded words. */
static void put_raw(struct dec *d, const char *p, size_t n)
{
	if (d->raw_cs == NULL || to_utf8_into(d->raw_cs, p, n, &d->out) < 0)
		put_utf8(&d->out, p, n, 1);
}

/* Convert and append the pending words. */
static void flush(struct dec *d)
{
	if (!d->pending)
		return;
	size_t n;
	char *u = mime_to_utf8(d->cs, d->pend.p ? d->pend.p : "", d->pend.len, &n);
	if (u != NULL) {
		buf_add(&d->out, u, n);
		free(u);
	} else {    /* cs_usable said yes, so only e.g. out of descriptors */
		mime_add_note(d->notes, "cannot convert from charset %s", d->cs);
		put_utf8(&d->out, d->pend.p, d->pend.len, 1);
	}
	d->pend.len = 0;
	d->pending = 0;
}

static void add_word(struct dec *d, struct word *w)
{
	if (d->pending && strcasecmp(d->cs, w->cs) != 0)
		flush(d);
	strcpy(d->cs, w->cs);
	d->pending = 1;
	buf_add(&d->pend, w->bytes, w->nbytes);
	free(w->bytes);
}

/* Quote a raw word for a note: bounded and printable, as notes get logged. */
static void note_word(struct dec *d, const struct word *w, const char *s)
{
	char q[64];
	size_t n = w->len < sizeof q - 1 ? w->len : sizeof q - 1;
	for (size_t i = 0; i < n; i++)
		q[i] = (unsigned char)s[i] >= ' ' && (unsigned char)s[i] < 127 ? s[i] : '?';
	q[n] = '\0';
	mime_add_note(d->notes, "%s \"%s%s\"", w->why, q, n < w->len ? "..." : "");
}

/* Where the next token starts after a word ending at i: white space
 * between two encoded words is no part of the text (RFC 2047 6.2). */
static size_t skip_gap(struct dec *d, const char *s, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && is_wsp(s[j]))
		j++;
	if (j == i || j + 1 >= n || s[j] != '=' || s[j + 1] != '?')
		return i;
	struct word w;
	int r = word_parse(d, s + j, n - j, &w);
	if (r == W_OK)
		free(w.bytes);
	return r == W_OK ? j : i;
}

/* Index of the next "=?" at or after i, or n. */
static size_t next_word(const char *s, size_t n, size_t i)
{
	while (i < n) {
		const char *eq = memchr(s + i, '=', n - i);
		if (eq == NULL)
			return n;
		i = (size_t)(eq - s);
		if (i + 1 < n && s[i + 1] == '?')
			return i;
		i++;
	}
	return n;
}

/* Decode one token at s[i]: an encoded word, or plain text up to the
 * next "=?".  Returns where the next token starts. */
static size_t step(struct dec *d, const char *s, size_t n, size_t i)
{
	if (s[i] == '=' && i + 1 < n && s[i + 1] == '?') {
		struct word w;
		int r = word_parse(d, s + i, n - i, &w);
		if (r == W_OK) {
			add_word(d, &w);
			return skip_gap(d, s, n, i + w.len);
		}
		if (r == W_BAD) {
			flush(d);
			note_word(d, &w, s + i);
			put_raw(d, s + i, w.len);
			return i + w.len;
		}
	}
	size_t e = next_word(s, n, i + 1);
	flush(d);
	put_raw(d, s + i, e - i);
	return e;
}

/* Drop the line breaks of folding (the white space after them stays)
 * and the white space around the value. */
static char *unfold(const char *v, size_t len, size_t *outlen)
{
	char *s = xmalloc(len + 1);
	size_t o = 0, a = 0;
	for (size_t i = 0; i < len; i++)
		if (v[i] != '\r' && v[i] != '\n')
			s[o++] = v[i];
	while (a < o && is_wsp(s[a]))
		a++;
	while (o > a && is_wsp(s[o - 1]))
		o--;
	memmove(s, s + a, o - a);
	s[o - a] = '\0';
	*outlen = o - a;
	return s;
}

/* Could a declared charset explain raw 8-bit header bytes?  Not one
 * that is 7-bit (ISO-2022, HZ, UTF-7) or has no ASCII in it (UTF-16). */
static int cs_8bit(const char *label)
{
	char name[CS_MAX];
	enum cs_kind k = cs_lookup(label, name);
	return k == CS_EUCJP || (k == CS_ICONV && strncasecmp(name, "utf", 3) != 0 &&
				 strncasecmp(name, "ucs", 3) != 0 &&
				 strncasecmp(name, "iso-2022", 8) != 0);
}

/* The charset of a value's 8-bit text outside encoded words, read as
 * a whole: NULL if the value is UTF-8, the declared charset if that
 * reads it without error, else Windows-1252 (mixing a UTF-8 reading of
 * some bytes with Latin-1 for the others gives text nobody sent). */
static const char *raw_charset(const char *s, size_t n, const char *declared)
{
	if (utf8_valid(s, n))
		return NULL;
	if (declared != NULL && cs_8bit(declared)) {
		struct buf t = { 0 };
		long bad = to_utf8_into(declared, s, n, &t);
		free(t.p);
		if (bad == 0)
			return declared;
	}
	return "windows-1252";
}

int mime_raw_needs_charset(const char *val, size_t len)
{
	return !utf8_valid(val, len);
}

char *mime_decode_value(const char *val, size_t len, char **notes)
{
	return mime_decode_value_cs(val, len, NULL, notes);
}

char *mime_decode_value_cs(const char *val, size_t len, const char *charset, char **notes)
{
	struct dec d = { .notes = notes };
	size_t n, i = 0;
	char *s = unfold(val, len, &n);
	d.raw_cs = raw_charset(s, n, charset);
	while (i < n)
		i = step(&d, s, n, i);
	flush(&d);
	free(d.pend.p);
	free(s);
	return buf_done(&d.out, NULL);
}
