/* Unit tests: text_escape, the one escaper for text from a server or a
 * message on its way to a terminal or a log. */
#include <stdlib.h>
#include "unit.h"
#include "popsift.h"

static void check(const char *in, size_t n, const char *want, const char *what)
{
	char *got = text_escape(in, n);
	CHECK_STR(got, want, what);
	free(got);
}

#define T(in, want, what) check(in, sizeof in - 1, want, what)

int main(void)
{
	T("plain text", "plain text", "ASCII text stays");
	T("\xe5\x8f\x91\xe7\xa5\xa8 caf\xc3\xa9 \xf0\x9f\x93\xa7", "\xe5\x8f\x91\xe7\xa5\xa8 caf\xc3\xa9 \xf0\x9f\x93\xa7",
	  "valid UTF-8 (CJK, accents, emoji) stays");
	T("a\nt: 99 new\r", "a\\nt: 99 new\\r", "LF and CR cannot start a line");
	T("\x1b]0;title\x07\x1b[2J\t", "\\x1b]0;title\\x07\\x1b[2J\\t", "ESC, BEL, TAB");
	T("x\0y\x7f", "x\\x00y\\x7f", "NUL and DEL");
	T("\xc2\x9b" "31m\xc2\x85", "\\u009b31m\\u0085", "C1 controls as UTF-8 (CSI, NEL)");
	T("\xc2\xa0", "\xc2\xa0", "U+00A0 is text");
	T("\x9b" "31m", "\\x9b31m", "a raw C1 byte is not UTF-8");
	T("\xc0\x8a\xe0\x80\x8a", "\\xc0\\x8a\\xe0\\x80\\x8a", "overlong forms");
	T("\xed\xa0\x80", "\\xed\\xa0\\x80", "a surrogate");
	T("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "past U+10FFFF");
	T("ab\xe5\x8f", "ab\\xe5\\x8f", "a sequence cut short");
	T("\xe2\x80\xae" "evil\xe2\x80\xa8", "\\u202eevil\\u2028", "bidi override, line separator");
	char *s = text_safe(NULL);
	CHECK_STR(s, "", "NULL is empty");
	free(s);
	return UNIT_DONE();
}
