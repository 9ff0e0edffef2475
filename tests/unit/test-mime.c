/* test-mime.c — mime.c and mime-decode.c: header iteration, RFC 2047,
 * charsets, body text, addresses.  Non-UTF-8 bytes were computed with
 * Python's codecs (e.g. '发票'.encode('gbk') == b'\xb7\xa2\xc6\xb1'). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "unit.h"

/* An independent UTF-8 check (same rules as PCRE2: no overlongs,
 * surrogates or values past U+10FFFF). */
static int utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned c = u[i], k = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2
			: c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
		if (k == 0 || i + k > n)
			return 0;
		uint32_t cp = k == 1 ? c : c & (0x7F >> k);
		for (unsigned j = 1; j < k; j++) {
			if ((u[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (u[i + j] & 0x3F);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k;
	}
	return 1;
}

/* ---- header iteration ---- */

static int next(const char *h, size_t len, size_t *pos, char *name, char *val)
{
	const char *n, *v;
	size_t nl, vl;
	if (!mime_next_header(h, len, pos, &n, &nl, &v, &vl))
		return 0;
	snprintf(name, 64, "%.*s", (int)nl, n);
	memcpy(val, v, vl < 255 ? vl : 255);    /* values may hold NUL */
	val[vl < 255 ? vl : 255] = '\0';
	return (int)vl + 1;
}

static void test_iterate(void)
{
	char name[64], val[256];
	size_t pos = 0;
	const char *h = "Subject: hello\nFrom: a@b\n\nBody: not a header\n";
	size_t len = strlen(h);
	CHECK(next(h, len, &pos, name, val), "iter: first field");
	CHECK_STR(name, "Subject", "iter: name");
	CHECK_STR(val, "hello", "iter: value");
	CHECK(next(h, len, &pos, name, val), "iter: second field");
	CHECK_STR(name, "From", "iter: second name");
	CHECK(!next(h, len, &pos, name, val), "iter: stops at blank line");
	CHECK(!next(h, len, &pos, name, val), "iter: stays at the end");
	CHECK(mime_header_end(h, len) == 26, "header_end after blank line");

	h = "Subject: one\r\n two\r\n\tthree\r\nX-A:1\r\n\r\nbody";
	len = strlen(h);
	pos = 0;
	CHECK(next(h, len, &pos, name, val), "crlf: folded field");
	CHECK_STR(val, "one\r\n two\r\n\tthree", "crlf: raw value keeps folding");
	CHECK(next(h, len, &pos, name, val), "crlf: next field");
	CHECK_STR(name, "X-A", "crlf: name without space");
	CHECK_STR(val, "1", "crlf: value");
	CHECK(!next(h, len, &pos, name, val), "crlf: stops at CRLF blank line");
	CHECK(mime_header_end(h, len) == strlen(h) - 4, "crlf: header_end");

	h = "A: 1\nB: 2";
	len = strlen(h);
	pos = 0;
	CHECK(next(h, len, &pos, name, val) && next(h, len, &pos, name, val),
	      "no blank line: both fields");
	CHECK_STR(val, "2", "no blank line: last value unterminated");
	CHECK(!next(h, len, &pos, name, val), "no blank line: end");
	CHECK(mime_header_end(h, len) == len, "no blank line: header_end is len");

	static const char nul[] = "A: x\0y\nB\0: 2\nC: 3\n\n";
	pos = 0;
	CHECK(next(nul, sizeof nul - 1, &pos, name, val) == 4, "NUL: value length 3");
	CHECK(memcmp(val, "x\0y", 3) == 0, "NUL: value bytes");
	CHECK(next(nul, sizeof nul - 1, &pos, name, val), "NUL: field after");
	CHECK_STR(name, "C", "NUL: a name with NUL is skipped");

	h = "From alice@example.com Sat Jan  1 01:02:03 2000\n  orphan: continuation\n"
	    "no colon here\nSubject : obsolete\n \n";
	len = strlen(h);
	pos = 0;
	CHECK(next(h, len, &pos, name, val), "junk lines: a field found");
	CHECK_STR(name, "Subject", "junk lines skipped, obsolete 'Name :'");
	CHECK_STR(val, "obsolete\n ", "white-space-only continuation");
	CHECK(!next(h, len, &pos, name, val), "junk lines: end");

	pos = 0;
	CHECK(!next("", 0, &pos, name, val), "empty input");
	pos = 0;
	CHECK(!next("\r\nA: 1\n", 7, &pos, name, val), "blank first line: no headers");
	pos = 0;
	CHECK(next("A:\n", 3, &pos, name, val) == 1, "empty value");
	pos = 0;
	CHECK(next("A: 1\n ", 6, &pos, name, val), "truncated continuation");
	CHECK_STR(val, "1\n ", "truncated continuation value");
	pos = 0;
	CHECK(next("Subject: abc", 9, &pos, name, val) == 1, "length bounds the scan");
	pos = 99;
	CHECK(!next("A: 1\n", 5, &pos, name, val), "pos past the end");
}

static void check_get(const char *h, size_t len, const char *name, const char *want,
		      const char *what)
{
	char *got = mime_header_get(h, len, name, NULL);
	CHECK_STR(got, want, what);
	free(got);
}

static void test_get(void)
{
	const char *h = "Received: x\nSUBJECT: Hello\r\n  world \r\nsubject: second\n"
			"X-Empty:\n\nSubject: body\n";
	size_t len = strlen(h);
	check_get(h, len, "subject", "Hello  world", "get: case-insensitive, unfolded, trimmed");
	check_get(h, len, "X-Empty", "", "get: empty value");
	check_get(h, len, "Missing", NULL, "get: absent");
	check_get(h, len, "Subjec", NULL, "get: no prefix match");
	static const char nul[] = "A: x\0y\nB: 2\n\n";
	check_get(nul, sizeof nul - 1, "A", "x\xEF\xBF\xBDy", "get: NUL becomes U+FFFD");
	check_get(nul, sizeof nul - 1, "B", "2", "get: field after NUL");
	check_get("Subject: caf\xe9\n", 14, "Subject", "caf\xC3\xA9", "get: raw Latin-1");
	check_get("Subject: =?gbk?B?t6LGsQ==?=\n", 28, "subject", "发票", "get: decodes RFC 2047");
}

/* ---- RFC 2047 ---- */

static void check_dec(const char *in, const char *want, int want_note, const char *what)
{
	char *notes = NULL, what2[200];
	char *got = mime_decode_value(in, strlen(in), &notes);
	CHECK_STR(got, want, what);
	snprintf(what2, sizeof what2, "%s: %s", what, want_note ? "noted" : "no note");
	CHECK((notes != NULL) == want_note, what2);
	free(got);
	free(notes);
}

static void test_2047_charsets(void)
{
	check_dec("=?GBK?B?t6LGsQ==?=", "发票", 0, "GBK B");
	check_dec("=?gbk?q?=B7=A2=C6=B1?=", "发票", 0, "GBK Q");
	check_dec("=?GB18030?B?lTKCNg==?=", "\xF0\xA0\x80\x80", 0, "GB18030 four-byte B");
	check_dec("=?gb18030?Q?=B7=A2=C6=B1?=", "发票", 0, "GB18030 Q");
	check_dec("=?gb2312?B?ouM=?=", "€", 0, "GB2312 read as GB18030");
	check_dec("=?Big5?B?tW+yvA==?=", "發票", 0, "Big5 B");
	check_dec("=?big5?Q?=B5o=B2=BC?=", "發票", 0, "Big5 Q");
	check_dec("=?UTF-8?B?5Y+R56Wo?=", "发票", 0, "UTF-8 B");
	check_dec("=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait", 0, "UTF-8 Q, underscore");
	check_dec("=?ISO-8859-1?Q?caf=E9?=", "café", 0, "ISO-8859-1 Q");
	check_dec("=?iso-8859-1?b?Y2Fm6Q==?=", "café", 0, "ISO-8859-1 B");
	check_dec("=?iso-8859-1?q?=93hi=94?=", "“hi”", 0, "ISO-8859-1 as Windows-1252");
	check_dec("=?windows-1251?B?z/Do4uXy?=", "Привет", 0, "Windows-1251");
	check_dec("=?KOI8-R?Q?=F0=D2=C9=D7=C5=D4?=", "Привет", 0, "KOI8-R");
	check_dec("=?Shift_JIS?B?k/qWe4zq?=", "日本語", 0, "Shift_JIS");
	check_dec("=?EUC-KR?B?x9Gxub7u?=", "한국어", 0, "EUC-KR");
	check_dec("=?us-ascii?Q?plain?=", "plain", 0, "US-ASCII");
	check_dec("=?UTF-8*en?Q?hi?=", "hi", 0, "RFC 2231 language suffix");
	check_dec("=?utf-8?B?Y2Fmw6k?=", "café", 0, "B without padding");
	check_dec("=?utf-8?Q?" "?=", "", 0, "empty encoded text");  /* no trigraph */
}

static void test_2047_joining(void)
{
	check_dec("=?UTF-8?B?5Y8=?= =?UTF-8?B?keelqA==?=", "发票", 0, "UTF-8 char split across words");
	check_dec("=?UTF-8?Q?=E5=8F?=\r\n =?utf-8?Q?=91=E7=A5=A8?=", "发票", 0,
		  "split char, folded gap, charset case differs");
	check_dec("=?GBK?B?tw==?= =?GBK?B?osax?=", "发票", 0, "GBK char split across words");
	check_dec("=?UTF-8?Q?a?=  \t =?UTF-8?Q?b?=", "ab", 0, "white space between words dropped");
	check_dec("=?UTF-8?Q?a?==?UTF-8?Q?b?=", "ab", 0, "words without a gap");
	check_dec("=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=", "éé", 0, "adjacent words, two charsets");
	check_dec("=?UTF-8?Q?a_?= =?UTF-8?Q?_b?=", "a  b", 0, "encoded spaces kept");
	check_dec("Re: =?UTF-8?Q?caf=C3=A9?= ok", "Re: café ok", 0, "word next to text keeps spaces");
	check_dec("Re:=?UTF-8?Q?x?=y", "Re:xy", 0, "word glued to text");
	check_dec("a =?UTF-8?Q?b?= c =?UTF-8?Q?d?=", "a b c d", 0, "alternating text and words");
}

static void test_2047_errors(void)
{
	check_dec("=?UTF-8?B?####?=", "=?UTF-8?B?####?=", 1, "bad base64 kept raw");
	check_dec("=?UTF-8?B?QQ=x?=", "=?UTF-8?B?QQ=x?=", 1, "base64 data after padding kept raw");
	check_dec("=?UTF-8?B?Q===?=", "=?UTF-8?B?Q===?=", 1, "base64 one char short kept raw");
	check_dec("=?UTF-8?Q?=ZZ?=", "=?UTF-8?Q?=ZZ?=", 1, "bad Q escape kept raw");
	check_dec("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=", 1, "unknown encoding kept raw");
	check_dec("x =?UTF-8?Q?abc", "x =?UTF-8?Q?abc", 1, "unterminated word kept raw");
	check_dec("=?x-no-such-charset?Q?abc?=", "=?x-no-such-charset?Q?abc?=", 1,
		  "unknown charset kept raw");
	check_dec("=?utf-8?Q?a?= =?bogus?Q?b?= =?utf-8?Q?c?=", "a =?bogus?Q?b?= c", 1,
		  "unknown charset between good words keeps its spaces");
	check_dec("=?ut\"f?Q?abc?=", "=?ut\"f?Q?abc?=", 1, "charset with bad bytes not passed on");
	check_dec("is =? a ?= thing", "is =? a ?= thing", 0, "\"=?\" in text is no word");
	check_dec("=?", "=?", 0, "lone =?");
	check_dec("=?UTF-8?Q?a=FFb?=", "a\xEF\xBF\xBD" "b", 0, "invalid UTF-8 inside a word");
	check_dec("=?GBK?Q?a=FFb?=", "a\xEF\xBF\xBD" "b", 0, "invalid GBK inside a word");
	check_dec("=?GBK?Q?a=B7?=", "a\xEF\xBF\xBD", 0, "GBK cut short");
	check_dec("=?UTF-8?Q?a=00b?=", "a\xEF\xBF\xBD" "b", 0, "encoded NUL");

	char *notes = NULL;
	char *got = mime_decode_value("=?A?Q?=ZZ?= =?x-bogus?Q?b?=", 27, &notes);
	CHECK(notes && strstr(notes, "malformed") && strstr(notes, "unknown charset") &&
	      strstr(notes, "; "), "two problems, two notes");
	free(got);
	free(notes);
	got = mime_decode_value("=?UTF-8?B?####?=", 16, NULL);
	CHECK_STR(got, "=?UTF-8?B?####?=", "notes may be NULL");
	free(got);
}

static void test_raw_8bit(void)
{
	check_dec("caf\xe9", "café", 0, "8-bit Latin-1 header");
	check_dec("café", "café", 0, "8-bit UTF-8 header kept");
	check_dec("caf\xc3", "caf\xC3\x83", 0, "cut UTF-8 read as Latin-1");
	check_dec("\xed\xa0\x80", "\xC3\xAD\xC2\xA0\xE2\x82\xAC", 0,
		  "surrogate bytes as Windows-1252");
	/* the whole value is one charset: not UTF-8 for some bytes and
	 * Latin-1 for the others */
	check_dec("发票 =?UTF-8?Q?x?= \xb7", "\xC3\xA5\xC2\x8F\xE2\x80\x98\xC3\xA7\xC2\xA5\xC2\xA8 x \xC2\xB7",
		  0, "raw UTF-8 and a Latin-1 byte: all Windows-1252");
	check_dec("  spaced  ", "spaced", 0, "value trimmed");
}

/* ---- CJK (issue 15) ---- */

/* 邮件传输失败！ in GB2312, the raw Subject of a real Sina bounce */
#define GB_BOUNCE "\xd3\xca\xbc\xfe\xb4\xab\xca\xe4\xca\xa7\xb0\xdc\xa3\xa1"

static void check_cs(const char *cs, const char *in, size_t n, const char *want,
		     const char *what)
{
	char *got = mime_to_utf8(cs, in, n, NULL);
	CHECK_STR(got, want, what);
	free(got);
}

static void test_jp_extensions(void)
{
	/* roundcube's test: NEC row 13 (㈱) and NEC-selected IBM (﨑) */
	check_dec("=?ISO-2022-JP?B?GyRCLWo7M3l1OSk2SBsoQg==?=", "㈱山﨑工業", 0,
		  "iso-2022-jp: NEC and IBM extensions");
	check_cs("EUC-JP", "\xad\xea\xbb\xb3\xf9\xf5\xb9\xa9\xb6\xc8", 10, "㈱山﨑工業",
		 "euc-jp: NEC and IBM extensions");
	check_cs("iso-2022-jp", "\x1b$B\x2d\x21\x2d\x35\x1b(B", 10, "①Ⅰ",
		 "iso-2022-jp: circled digit, Roman numeral");
	check_cs("iso-2022-jp", "\x1b$B\x21\x41\x24\x22\x1b(B", 10, "〜あ",
		 "iso-2022-jp: standard characters as before");
}

static void test_bad_char_width(void)
{
	/* row 15 is unassigned everywhere: one U+FFFD, the rest aligned */
	check_cs("iso-2022-jp", "\x1b$B\x2d\x21\x2f\x21\x3b\x33\x39\x29\x1b(Bok", 16,
		 "①\xEF\xBF\xBD山工ok", "iso-2022-jp: a bad character costs both bytes");
	check_cs("euc-jp", "\xa9\xa1\xbb\xb3", 4, "\xEF\xBF\xBD山",
		 "euc-jp: a bad character costs both bytes");
	check_cs("gbk", "\xff\xff\xd3\xca\xbc\xfe", 6, "\xEF\xBF\xBD邮件",
		 "gbk: a bad pair costs both bytes");
	check_cs("gbk", "\x81 \xd3\xca", 4, "\xEF\xBF\xBD 邮",
		 "gbk: an ASCII byte after a bad lead is kept");
	check_cs("Shift_JIS", "\xf0\x3f\x82\xa0", 4, "\xEF\xBF\xBD?あ",
		 "shift_jis: an ASCII trail is read anew");
}

static void test_jp_kana(void)
{
	/* nkf: JIS X 0201 katakana designated by ESC ( I */
	check_cs("iso-2022-jp", "\x1b(I\x36\x40\x36\x45\x1b(B kana", 15, "ｶﾀｶﾅ kana",
		 "iso-2022-jp: ESC ( I half-width katakana");
	check_cs("iso-2022-jp", "a\x0e\x31\x32\x5f\x0f b", 8, "aｱｲﾟ b",
		 "iso-2022-jp: SO/SI half-width katakana");
	check_dec("=?iso-2022-jp?B?GyhJNkA2RRsoQg==?=", "ｶﾀｶﾅ", 0,
		  "iso-2022-jp: half-width katakana in an encoded word");
	check_cs("euc-jp", "\x8e\xb6\x8e\xc0", 4, "ｶﾀ", "euc-jp: half-width katakana");
}

static void test_hz(void)
{
	const char *rfc = "The next sentence is in GB.~{<:Ky2;S{#,NpJ)l6HK!#~}Bye.";
	check_cs("HZ-GB-2312", rfc, strlen(rfc), "The next sentence is in GB."
		 "己所不欲，勿施於人。Bye.", "hz: RFC 1843's example");
	check_cs("hz-gb-2312", "a~~b~\nc~{SJ<~~}", 15, "a~bc邮件",
		 "hz: tilde, line continuation");
	check_cs("hz-gb-2312", "~{SJ\n~x", 7, "邮\n~x", "hz: a line starts in ASCII");
	check_dec("=?HZ-GB-2312?Q?~{SJ<~~}?=", "邮件", 0, "hz: encoded word");
}

static void test_raw_header_charset(void)
{
	const char *h = "Subject: " GB_BOUNCE "\nContent-Type: text/plain; charset=gb2312\n\nbody\n";
	char *got = mime_header_get(h, strlen(h), "Subject", NULL);
	CHECK_STR(got, "邮件传输失败！", "raw GB2312 Subject read in the declared charset");
	free(got);
	got = mime_decode_value_cs(GB_BOUNCE, strlen(GB_BOUNCE), NULL, NULL);
	CHECK_STR(got, "\xC3\x93\xC3\x8A\xC2\xBC\xC3\xBE\xC2\xB4\xC2\xAB"
		  "\xC3\x8A\xC3\xA4\xC3\x8A\xC2\xA7\xC2\xB0\xC3\x9C\xC2\xA3\xC2\xA1",
		  "raw GB2312 with no declaration: Windows-1252 throughout");
	free(got);
	got = mime_decode_value_cs("café", 5, "gb2312", NULL);
	CHECK_STR(got, "café", "valid UTF-8 stays UTF-8 whatever is declared");
	free(got);
	got = mime_decode_value_cs("caf\xe9 ok", 7, "big5", NULL);
	CHECK_STR(got, "café ok", "a declaration that cannot read it: Windows-1252");
	free(got);
	got = mime_decode_value_cs("\x82\xa0 =?utf-8?q?x?=", 16, "Shift_JIS", NULL);
	CHECK_STR(got, "あ x", "raw Shift_JIS next to an encoded word");
	free(got);
	got = mime_decode_value_cs("\x80", 1, "utf-8", NULL);
	CHECK_STR(got, "€", "a UTF-8 declaration that does not hold: Windows-1252");
	free(got);
}

static void test_body_cjk(void)
{
	const char *m = "Content-Type: text/plain; charset=ISO-2022-JP\n\n"
			"\x1b$B-j;3yu9)6H\x1b(B \x1b(I6@6E\x1b(B\n";
	size_t n;
	char *got = mime_body_text(m, strlen(m), &n, NULL);
	CHECK_STR(got, "㈱山﨑工業 ｶﾀｶﾅ\n", "body: iso-2022-jp with extensions and kana");
	free(got);
	m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	    "Content-Type: text/plain; charset=HZ-GB-2312\n\n~{SJ<~~}\n--b--\n";
	got = mime_body_text(m, strlen(m), &n, NULL);
	CHECK_STR(got, "邮件", "body: hz part");
	free(got);
}

static void test_to_utf8(void)
{
	size_t n = 99;
	char *s = mime_to_utf8("x-bogus", "abc", 3, &n);
	CHECK(s == NULL, "to_utf8: unknown charset gives NULL");
	s = mime_to_utf8("\"GBK\"", "\xb7\xa2\xc6\xb1", 4, &n);
	CHECK_STR(s, "发票", "to_utf8: quoted label");
	CHECK(n == 6, "to_utf8: length");
	free(s);
	s = mime_to_utf8("UTF-16LE", "a\0b\0\0\0", 6, &n);
	CHECK(s && n == 5 && memcmp(s, "ab\xEF\xBF\xBD", 5) == 0, "to_utf8: UTF-16, NUL replaced");
	free(s);
	s = mime_to_utf8("utf-8", "\xc0\xaf", 2, NULL);
	CHECK_STR(s, "\xEF\xBF\xBD\xEF\xBF\xBD", "to_utf8: overlong rejected, outlen NULL");
	free(s);
	s = mime_to_utf8("latin1", "", 0, &n);
	CHECK(s && n == 0 && *s == '\0', "to_utf8: empty input");
	free(s);
	s = mime_to_utf8("UTF-8//IGNORE", "a", 1, &n);
	CHECK(s == NULL, "to_utf8: iconv suffixes refused");
}

/* ---- QP and base64 ---- */

static void test_cte(void)
{
	size_t n;
	const char *qp = "caf=C3=A9 =\nau lait=3d=\r\n!= x=\t \nend=";
	char *s = mime_qp_decode(qp, strlen(qp), &n);
	CHECK_STR(s, "café au lait=!= xend", "qp: escapes, soft breaks, stray =");
	free(s);
	s = mime_b64_decode("SGVs bG8N\r\nCldv\tcmxk!", 21, &n);
	CHECK(n == 12 && memcmp(s, "Hello\r\nWorld", 12) == 0, "b64: skips non-alphabet");
	free(s);
	s = mime_b64_decode("QQ==Qg==", 8, &n);
	CHECK_STR(s, "AB", "b64: concatenated chunks");
	free(s);
	s = mime_b64_decode("", 0, &n);
	CHECK(n == 0 && *s == '\0', "b64: empty");
	free(s);
}

/* ---- body text ---- */

static void check_body(const char *msg, const char *want, int want_note, const char *what)
{
	char *notes = NULL, what2[200];
	size_t n;
	char *got = mime_body_text(msg, strlen(msg), &n, &notes);
	CHECK_STR(got, want, what);
	snprintf(what2, sizeof what2, "%s: %s", what, want_note ? "noted" : "no note");
	CHECK((notes != NULL) == want_note && n == strlen(got), what2);
	free(got);
	free(notes);
}

static const char alternative[] =
	"Subject: alt\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n"
	"preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n\nplain text\n"
	"--b1\nContent-Type: text/html; charset=\"utf-8\"\n\n<p>html</p>\n--b1--\nepilogue\n";

static const char nested[] =
	"Content-Type: multipart/mixed;\n boundary=outer\n\n"
	"--outer\nContent-Type: multipart/alternative; boundary=\"outer-inner\"\n\n"
	"--outer-inner\nContent-Type: text/plain\n\ninner plain\n"
	"--outer-inner\nContent-Type: text/html\n\n<b>inner html</b>\n--outer-inner--\n\n"
	"--outer\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n"
	"--outer\nContent-Type: text/plain; charset=gbk\nContent-Transfer-Encoding: base64\n\n"
	"t6LGsSBpbnZvaWNlDQo=\n--outer--\n";

static void test_body_simple(void)
{
	check_body("Subject: x\n\nHello\nWorld\n", "Hello\nWorld\n", 0, "body: no Content-Type");
	check_body("Subject: x\r\n\r\nHello\r\nWorld\r\n", "Hello\nWorld\n", 0, "body: CRLF");
	check_body("Content-Type: text/plain; charset=utf-8\n"
		   "Content-Transfer-Encoding: Quoted-Printable\n\ncaf=C3=A9 =\nau lait=3D\n",
		   "café au lait=\n", 0, "body: quoted-printable");
	check_body("Content-Transfer-Encoding: base64\nContent-Type: text/plain; charset=UTF-8\n\n"
		   "SGVsbG8NCldv\ncmxkIOWPkeelqA0K\n", "Hello\nWorld 发票\n", 0, "body: base64");
	check_body("Content-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: "
		   "quoted-printable\n\n=B7=A2=C6=B1\n", "发票\n", 0, "body: GB2312 QP");
	check_body("Content-Type: text/plain; charset=x-bogus\n\ncaf\xe9", "café", 1,
		   "body: unknown charset read as Latin-1");
	check_body("Subject: x\n\ncaf\xe9 \xe5\x8f\x91", "café 发", 0, "body: raw 8-bit");
	check_body("Content-Type: text/plain; charset=utf-8\n\na\xff" "b",
		   "a\xEF\xBF\xBD" "b", 0, "body: bad UTF-8 replaced");
	check_body("Content-Type: image/png\n\nxyz", "", 0, "body: no text part");
	check_body("Content-Type: text/plain", "", 0, "body: headers only");
	check_body("Content-Type: /\n\nodd type", "odd type", 0, "body: bad type is text/plain");
}

static void test_body_multipart(void)
{
	check_body(alternative, "plain text\n<p>html</p>", 0, "body: multipart/alternative");
	check_body(nested, "inner plain\n<b>inner html</b>\n发票 invoice\n", 0,
		   "body: nested multipart with GBK base64");
	check_body("Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext1\n--b\n\ntext2\n",
		   "text1\ntext2\n", 0, "body: missing close boundary");
	check_body("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n"
		   "--b \r\nContent-Type: text/plain\r\n\r\ntwo\r\n--b--\r\n",
		   "one\ntwo", 0, "body: CRLF multipart, padded delimiter");
	check_body("Content-Type: multipart/mixed\n\nno boundary\n", "no boundary\n", 0,
		   "body: multipart without boundary is text");
	check_body("Content-Type: multipart/mixed; boundary=zz\n\nno delimiter\n",
		   "no delimiter\n", 0, "body: multipart without delimiters is text");
	check_body("Content-Type: multipart/mixed; boundary=x\n\n--x\n"
		   "Content-Type: message/rfc822\n\nSubject: inner\n\nforwarded body\n--x--\n",
		   "forwarded body", 0, "body: message/rfc822");
	check_body("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\n"
		   "digest one\n--d--\n", "digest one", 0, "body: digest parts are messages");
	check_body("Content-Type: multipart/mixed; boundary=e\n\n--e\n"
		   "Content-Type: text/plain; charset=x-bogus\n\nq\n--e\n\nr\n--e--\n",
		   "q\nr", 1, "body: unknown charset in a part");
}

/* Multiparts nested `levels` deep around one text part. */
static char *deep(int levels)
{
	size_t cap = (size_t)levels * 80 + 64, n = 0;
	char *m = malloc(cap);
	for (int i = 0; i < levels; i++)
		n += (size_t)snprintf(m + n, cap - n,
				      "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	snprintf(m + n, cap - n, "\ndeep text\n");
	return m;
}

static void test_body_bounds(void)
{
	char *m = deep(15);
	check_body(m, "deep text\n", 0, "body: 15 levels deep");
	free(m);
	m = deep(5000);
	check_body(m, "", 0, "body: 5000 levels deep, bounded");
	free(m);
}

/* ---- addresses ---- */

static void check_addr(const char *in, const char *want, const char *what)
{
	char *got = mime_address(in, strlen(in));
	CHECK_STR(got, want, what);
	free(got);
}

static void test_address(void)
{
	check_addr("<a@b.example>", "a@b.example", "addr: angle");
	check_addr("\"Name, Jr.\" <a@b>", "a@b", "addr: quoted name");
	check_addr("a@b", "a@b", "addr: bare");
	check_addr("  a@b (Alice <x@y>) ", "a@b", "addr: bare with comment");
	check_addr("<>", "", "addr: null sender");
	check_addr(" < > ", "", "addr: null sender with spaces");
	check_addr("", NULL, "addr: empty");
	check_addr("Alice only", NULL, "addr: no address");
	check_addr("undisclosed-recipients:;", NULL, "addr: empty group");
	check_addr("\"x <y@z>\" <a@b>", "a@b", "addr: '<' inside quotes");
	check_addr("(c <x@y>) Alice <a@b>", "a@b", "addr: '<' inside comment");
	check_addr("=?UTF-8?B?5Y+R56Wo?= <a@b>", "a@b", "addr: encoded name");
	check_addr("Alice <a@b>, Bob <c@d>", "a@b", "addr: first of a list");
	check_addr("a@b, c@d", "a@b", "addr: first bare of a list");
	check_addr("Team: a@b, c@d;", "a@b", "addr: group");
	check_addr("Team:a@b;", "a@b", "addr: group without space");
	check_addr("<@relay.example:a@b>", "a@b", "addr: source route");
	check_addr("Alice\r\n <a@b>", "a@b", "addr: folded");
	check_addr("<a@b", "a@b", "addr: unclosed angle");
	check_addr("\"john doe\"@example.com", "\"john doe\"@example.com", "addr: quoted local part");
	check_addr("a@[IPv6:::1]", "a@[IPv6:::1]", "addr: domain literal");
	check_addr("@b", NULL, "addr: no local part");
}

static void test_param(void)
{
	const char *v = "multipart/mixed; (comment; x=y) BOUNDARY = \"a \\\"b\\\" ;c\" ;"
			" charset=utf-8 (UTF-8);x";
	char *s = mime_param(v, strlen(v), "boundary");
	CHECK_STR(s, "a \"b\" ;c", "param: quoted, escaped, case-insensitive");
	free(s);
	s = mime_param(v, strlen(v), "charset");
	CHECK_STR(s, "utf-8", "param: token before comment");
	free(s);
	s = mime_param(v, strlen(v), "x");
	CHECK(s == NULL, "param: attribute without value");
	s = mime_param("text/plain; charset=\"unclosed", 29, "charset");
	CHECK_STR(s, "unclosed", "param: unclosed quote");
	free(s);
}

/* ---- robustness: mangled input must never crash or give bad UTF-8 ---- */

static uint32_t rnd(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

static void fuzz_one(const char *m, size_t n, int *bad)
{
	size_t on, pos = 0, nl, vl;
	const char *nm, *v;
	char *notes = NULL;
	char *s = mime_body_text(m, n, &on, &notes);
	*bad += !utf8_valid(s, on) || strlen(s) != on;
	free(s);
	s = mime_decode_value(m, n, &notes);
	*bad += !utf8_valid(s, strlen(s));
	free(s);
	while (mime_next_header(m, n, &pos, &nm, &nl, &v, &vl))
		*bad += v < m || v + vl > m + n || nm + nl > m + n;
	free(mime_address(m, n));
	free(mime_param(m, n, "boundary"));
	free(notes);
}

static void test_fuzz(void)
{
	static const char *const bits[] = {
		"\n", "\r\n", "\n\n", " ", "Content-Type: multipart/mixed; boundary=b\n",
		"--b\n", "--b--\n", "Content-Type: text/plain; charset=gbk\n",
		"Content-Transfer-Encoding: base64\n", "Content-Transfer-Encoding: quoted-printable\n",
		"Content-Type: message/rfc822\n", "=?utf-8?B?5Y+R?=", "=?gbk?Q?=B7", "?=", "=",
		"\"", "(", "<", ">", "@", "\xb7\xa2", "\xff", "t6LGsQ==", "=C3=A9", "\0",
	};
	uint32_t st = 2463534242u;
	int bad = 0;
	char m[512];
	for (int it = 0; it < 3000; it++) {
		size_t n = 0;
		while (n < sizeof m - 64 && rnd(&st) % 40 != 0) {
			const char *b = bits[rnd(&st) % (sizeof bits / sizeof bits[0])];
			size_t bl = *b ? strlen(b) : 1;
			memcpy(m + n, b, bl);
			n += bl;
		}
		fuzz_one(m, n, &bad);
	}
	CHECK(bad == 0, "fuzz: 3000 mangled messages, bounded and valid UTF-8");
}

int main(void)
{
	test_iterate();
	test_get();
	test_2047_charsets();
	test_2047_joining();
	test_2047_errors();
	test_raw_8bit();
	test_to_utf8();
	test_jp_extensions();
	test_bad_char_width();
	test_jp_kana();
	test_hz();
	test_raw_header_charset();
	test_body_cjk();
	test_cte();
	test_body_simple();
	test_body_multipart();
	test_body_bounds();
	test_address();
	test_param();
	test_fuzz();
	return UNIT_DONE();
}
