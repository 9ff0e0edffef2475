/* charset-cjk.c — ISO-2022-JP and HZ-GB-2312 rewritten as EUC bytes.
 *
 * glibc decodes ISO-2022-JP strictly: the NEC and IBM extension rows
 * (①, ㈱, 﨑) that Japanese mail programs send as CP50220 are rejected,
 * one byte at a time, so the rest of a run decodes shifted by a byte;
 * half-width katakana (ESC ( I) is refused; glibc has no HZ at all.
 * Rewriting to EUC keeps every character two bytes wide in a form whose
 * width is known from its lead byte, so a character nobody can decode
 * costs one U+FFFD and nothing after it. */
#include <strings.h>

#include "charset-cjk.h"

#define ESC 0x1B
#define SO  0x0E
#define SI  0x0F
#define BAD 0xFF        /* invalid in EUC-JP and EUC-CN: one U+FFFD */

enum jset { J_ASCII, J_KANA, J_X0208, J_X0212, J_OTHER };

/* The set an escape sequence at p designates, and its length in *n;
 * J_ASCII with *n 0 when p holds no complete escape sequence. */
static enum jset jis_escape(const unsigned char *p, size_t len, size_t *n)
{
	*n = 0;
	if (len >= 3 && p[1] == '(') {
		*n = 3;
		return p[2] == 'I' ? J_KANA : p[2] == 'B' || p[2] == 'J' || p[2] == 'H'
		       ? J_ASCII : J_OTHER;
	}
	if (len >= 3 && p[1] == '$' && (p[2] == '@' || p[2] == 'B')) {
		*n = 3;
		return J_X0208;
	}
	if (len >= 4 && p[1] == '$' && p[2] == '(') {
		*n = 4;
		/* JIS X 0213 plane 1 is a superset of JIS X 0208 */
		return p[3] == 'D' ? J_X0212 : p[3] == 'Q' || p[3] == 'O' || p[3] == 'B'
		       ? J_X0208 : J_OTHER;
	}
	if (len >= 3 && p[1] == '&' && p[2] == '@') {
		*n = 3;     /* JIS X 0208-1990 announcer; ESC $ B follows */
		return J_ASCII;
	}
	if (len < 4 && len >= 2 && (p[1] == '(' || p[1] == '$' || p[1] == '&'))
		return J_ASCII;         /* cut off at the end: kept as bytes */
	return len >= 2 ? (*n = 2, J_OTHER) : J_ASCII;
}

/* One character of a two-byte set at p (in set s) as EUC; bytes used. */
static size_t jis_pair(enum jset s, const unsigned char *p, size_t len, unsigned char *o,
		       size_t *k)
{
	if (len < 2 || p[1] < 0x21 || p[1] > 0x7E) {
		o[(*k)++] = BAD;        /* cut short: the next byte is read anew */
		return 1;
	}
	if (s == J_X0212)
		o[(*k)++] = 0x8F;
	o[(*k)++] = (unsigned char)(p[0] | 0x80);
	o[(*k)++] = (unsigned char)(p[1] | 0x80);
	return 2;
}

size_t cjk_jis_to_euc(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	unsigned char *o = (unsigned char *)out;
	enum jset g0 = J_ASCII;
	int shifted = 0;
	size_t i = 0, k = 0, n;
	while (i < len) {
		unsigned c = p[i];
		enum jset s;
		if (c == ESC && (s = jis_escape(p + i, len - i, &n), n > 0)) {
			if (s == J_OTHER)
				return (size_t)-1;
			if (p[i + 1] != '&')
				g0 = s;
			i += n;
		} else if (c == SO || c == SI) {
			shifted = c == SO;
			i++;
		} else if (c < 0x21 || c > 0x7E) {
			o[k++] = (unsigned char)c;      /* controls, space, stray 8-bit */
			i++;
		} else if (shifted || g0 == J_KANA) {
			o[k++] = c <= 0x5F ? 0x8E : BAD;
			if (c <= 0x5F)
				o[k++] = (unsigned char)(c + 0x80);
			i++;
		} else if (g0 == J_X0208 || g0 == J_X0212) {
			i += jis_pair(g0, p + i, len - i, o, &k);
		} else {
			o[k++] = (unsigned char)c;
			i++;
		}
	}
	return k;
}

size_t cjk_hz_to_euc(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	unsigned char *o = (unsigned char *)out;
	int gb = 0;
	size_t i = 0, k = 0;
	while (i < len) {
		unsigned c = p[i], d = i + 1 < len ? p[i + 1] : 0;
		if (c == '~' && (d == '{' || d == '}')) {
			gb = d == '{';
			i += 2;
		} else if (c == '~' && !gb && (d == '~' || d == '\n')) {
			if (d == '~')
				o[k++] = '~';           /* "~\n" is a soft line break */
			i += 2;
		} else if (c == '\n' || c == '\r' || !gb) {
			/* a line always starts in ASCII: a missing "~}" costs one line */
			gb = gb && c != '\n';
			o[k++] = (unsigned char)c;
			i++;
		} else if (c >= 0x21 && c <= 0x7E && d >= 0x21 && d <= 0x7E) {
			o[k++] = (unsigned char)(c | 0x80);
			o[k++] = (unsigned char)(d | 0x80);
			i += 2;
		} else {
			o[k++] = c < 0x21 ? (unsigned char)c : BAD;
			i++;
		}
	}
	return k;
}

void cjk_euc_to_sjis(unsigned char a, unsigned char b, char out[2])
{
	unsigned row = a - 0xA0u, cell = b - 0xA0u;
	unsigned lead = (row + 1) / 2 + (row <= 62 ? 0x80 : 0xC0);
	unsigned trail = row % 2 ? cell + 0x3F + (cell >= 64) : cell + 0x9E;
	out[0] = (char)lead;
	out[1] = (char)trail;
}

/* Charsets whose characters are one or two bytes (GB18030's four-byte
 * form aside), as iconv names them after cs_alias. */
int cjk_is_dbcs(const char *name)
{
	static const char *const dbcs[] = {
		"GB18030", "CP949", "CP932", "EUC-JP", "big5", "big5-hkscs", "big5hkscs",
		"cp950", "euc-kr", "euc-tw", "uhc", "johab", "windows-31j", "EUC-JP-MS",
	};
	for (size_t i = 0; i < sizeof dbcs / sizeof dbcs[0]; i++)
		if (strcasecmp(name, dbcs[i]) == 0)
			return 1;
	return 0;
}

/* Bytes a character iconv rejects spans.  A lead byte takes its trail
 * when that is 8-bit, so one bad character costs one U+FFFD and the
 * rest stays aligned; an ASCII byte after it is read anew, as WHATWG
 * decoders do.  EUC-JP's 0x8F starts three bytes. */
size_t cjk_bad_width(int dbcs, const unsigned char *u, size_t left)
{
	if ((dbcs != 'D' && dbcs != 'J') || left < 2 || u[0] < 0x81 || u[1] < 0x80)
		return 1;
	return u[0] == 0x8F && dbcs == 'J' && left >= 3 && u[2] >= 0x80 ? 3 : 2;
}
