/* Unit tests: IMAP delivery's pure parts (imap-util.c) — the response
 * parser (tagged, untagged, continuation, literals, response codes such
 * as APPENDUID and TRYCREATE, the bounds), modified UTF-7 folder names,
 * quoting, the internal date taken from a header, the CRLF converter —
 * and the imap config keys, deliver line and rule action. */
#include <stdlib.h>

#include "unit.h"
#include "date.h"
#include "imap.h"
#include "popsift.h"

/* Parse all of s, fed in pieces of step bytes; the responses' kinds and
 * texts joined as "T:OK:code:text|..." into out. */
static int feed(const char *s, size_t step, char *out, size_t cap)
{
	struct imap_rd rd;
	struct imap_resp r = { 0 };
	imap_rd_start(&rd, &r);
	size_t len = strlen(s), off = 0, end = 0;
	out[0] = '\0';
	char *err = NULL;
	int rc = 0;
	while (off < len) {
		if (end < off + 1)
			end = off + step < len ? off + step : len;
		size_t used = 0;
		int k = imap_parse(&rd, &r, s + off, end - off, &used, &err);
		if (k < 0) {
			rc = -1;
			break;
		}
		off += used;
		if (k > 0) {
			static const char kinds[] = "TU+";
			static const char *const st[] = { "-", "OK", "NO", "BAD", "BYE", "PREAUTH" };
			size_t o = strlen(out);
			snprintf(out + o, cap - o, "%c:%s:%s:%s:%s|", kinds[r.kind], r.tag,
				 st[r.status], r.code, r.text);
		}
	}
	free(err);
	imap_resp_free(&r);
	return rc;
}

static void parser(void)
{
	char out[2048];
	const char *in = "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"
			 "+ OK\r\n"
			 "P1 OK [APPENDUID 38505 3955] Append completed.\r\n"
			 "P2 NO [TRYCREATE] Mailbox doesn't exist: Lists\r\n"
			 "* 3 EXISTS\r\n"
			 "* SEARCH 4 7\r\n"
			 "P3 NO [OVERQUOTA] Quota exceeded\r\n"
			 "* BYE going away\r\n";
	const char *want = "U::OK:CAPABILITY IMAP4rev1 LITERAL+:OK [CAPABILITY IMAP4rev1 LITERAL+] ready|"
			   "+::-::OK|"
			   "T:P1:OK:APPENDUID 38505 3955:OK [APPENDUID 38505 3955] Append completed.|"
			   "T:P2:NO:TRYCREATE:NO [TRYCREATE] Mailbox doesn't exist: Lists|"
			   "U::-::3 EXISTS|U::-::SEARCH 4 7|"
			   "T:P3:NO:OVERQUOTA:NO [OVERQUOTA] Quota exceeded|U::BYE::BYE going away|";
	for (size_t step = 1; step <= 64; step *= 4) {
		CHECK(feed(in, step, out, sizeof out) == 0, "responses parse");
		CHECK_STR(out, want, "tagged, untagged and continuation, in pieces");
	}
	/* kinds show as T, U, + -- with the '-' of IS_NONE for the status */
	const char *lit = "* 1 FETCH (BODY[HEADER] {12}\r\nSubject: x\r\n)\r\nP4 OK done\r\n";
	CHECK(feed(lit, 5, out, sizeof out) == 0, "a literal in a response");
	CHECK_STR(out, "U::-::1 FETCH (BODY[HEADER] {12})|T:P4:OK::OK done|",
		  "its contents skipped, the line continues after it");
	CHECK(feed("* 1 FETCH {0}\r\n)\r\n", 3, out, sizeof out) == 0 &&
	      strcmp(out, "U::-::1 FETCH {0})|") == 0, "an empty literal");
	CHECK(feed("* 1 X {99999999}\r\n", 64, out, sizeof out) < 0, "a literal too big is refused");
	char *longline = malloc(IMAP_MAX_LINE + 100);
	memset(longline, 'a', IMAP_MAX_LINE + 10);
	strcpy(longline + IMAP_MAX_LINE + 10, "\r\n");
	CHECK(feed(longline, 4096, out, sizeof out) < 0, "a line too long is refused");
	free(longline);
	struct imap_resp r = { .code = "APPENDUID 1 2" };
	CHECK(imap_code_is(&r, "APPENDUID") && !imap_code_is(&r, "APPEND"), "code keyword");
	CHECK(imap_has_word("IMAP4rev1 LITERAL+ UIDPLUS", "literal+") &&
	      !imap_has_word("IMAP4rev1 LITERAL+", "LITERAL"), "capability words");
}

static void names(void)
{
	char *s;
	CHECK_STR(s = imap_mutf7("INBOX"), "INBOX", "ASCII stays");
	free(s);
	CHECK_STR(s = imap_mutf7("Tom & Jerry"), "Tom &- Jerry", "& is &-");
	free(s);
	CHECK_STR(s = imap_mutf7("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		  "RFC 3501's example");
	free(s);
	CHECK_STR(s = imap_mutf7("Entwürfe"), "Entw&APw-rfe", "Latin-1 range");
	free(s);
	CHECK_STR(s = imap_mutf7("\xF0\x9F\x98\x80"), "&2D3eAA-", "outside the BMP: a surrogate pair");
	free(s);
	CHECK(imap_mutf7("a\xC3") == NULL, "invalid UTF-8 refused");
	CHECK(imap_mutf7("a\tb") == NULL, "a control refused");
	CHECK(imap_mutf7("\xC0\xAF") == NULL, "an overlong sequence refused");
	CHECK_STR(s = imap_quote("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"", "quoted string");
	free(s);
	CHECK(imap_quote("a\r\nb") == NULL && imap_quote("\xC3\xA9") == NULL,
	      "CR, LF and 8-bit cannot be quoted");
}

static void dates(void)
{
	char out[32];
	const char *h1 = "Received: from a by b; Tue, 1 Jul 2003 10:52:37 +0200\n"
			 "Received: from c by d\n\t(comment; x); Tue, 1 Jul 2003 09:00:00 +0000\n"
			 "Date: Mon, 30 Jun 2003 08:00:00 -0700\n\n";
	CHECK(imap_internal_date(h1, strlen(h1), out) == 1, "a date found");
	CHECK_STR(out, "01-Jul-2003 09:00:00 +0000", "the newest Received: wins, its own zone");
	const char *h2 = "Received: from a by b (no date)\nDate: 5 Feb 99 23:01 EST\n\n";
	CHECK(imap_internal_date(h2, strlen(h2), out) == 1, "Date: when no Received: has one");
	CHECK_STR(out, "05-Feb-1999 23:01:00 -0500", "two-digit year, obsolete zone, no seconds");
	const char *h3 = "Subject: x\nDate: garbage\n\n";
	CHECK(imap_internal_date(h3, strlen(h3), out) == 0, "no usable date: none");
	time_t t;
	int off;
	CHECK(date_parse("Thu, 13 Feb 1989 23:32:00 -0330", 31, &t, &off) == 0 &&
	      t == 603428520 && off == -210, "negative half-hour zone");
	CHECK(date_parse("32 Jan 2020 00:00:00 +0000", 26, &t, &off) < 0, "day 32 refused");
}

static void line_ends(void)
{
	char out[64];
	struct crlf c = { 0 };
	const char *parts[] = { "a\nb\r", "\nc\r", "d\r\n", "\r" };
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		n += crlf_put(&c, parts[i], strlen(parts[i]), out + n);
	n += crlf_end(&c, out + n);
	out[n] = '\0';
	CHECK_STR(out, "a\r\nb\r\nc\r\nd\r\n\r\n", "LF, CRLF split across chunks, lone CR");
	struct crlf k = { 0 };
	size_t cnt = crlf_put(&k, "a\nb\r", 4, NULL) + crlf_put(&k, "\nc\r", 3, NULL);
	cnt += crlf_put(&k, "d\r\n", 3, NULL) + crlf_put(&k, "\r", 1, NULL) + crlf_end(&k, NULL);
	CHECK(cnt == n, "counting gives the size sent");
}

static void config(void)
{
	struct config cf;
	char *err = NULL;
	const char *text = "account a\nhost h\nuser u\ndeliver imap \"Lists/Debian\"\n"
			   "imap_provider gmail\nimap_user me@gmail.com\nimap_create yes\n"
			   "account b\nhost h\nuser u\ndeliver imap\nimap_host i\nimap_tls off\n"
			   "imap_user x\n";
	CHECK(conf_parse("cfg", text, &cf, &err) == 0, "imap keys parse");
	struct account *a = cf.accounts;
	CHECK(a && a->ndests == 1 && a->dests[0].kind == DEST_IMAP &&
	      !strcmp(a->dests[0].path, "Lists/Debian"), "deliver imap FOLDER");
	CHECK(a && !strcmp(a->imap_host, "imap.gmail.com") && a->imap_port == 993 &&
	      a->imap_tls == TLS_ON && a->imap_create, "imap_provider gmail");
	struct account *b = a ? a->next : NULL;
	CHECK(b && b->dests[0].kind == DEST_IMAP && b->dests[0].path == NULL &&
	      b->imap_port == 143, "deliver imap without folder; port 143 without TLS");
	conf_free(&cf);
	CHECK(conf_parse("cfg", "account a\nhost h\nuser u\ndeliver imap x\n", &cf, &err) < 0,
	      "deliver imap without imap_host refused");
	free(err);
	err = NULL;
	CHECK(conf_parse("cfg", "account a\nhost h\nuser u\ndeliver imap\nimap_provider yahoo\n",
			 &cf, &err) < 0, "no IMAP preset for yahoo");
	free(err);
}

int main(void)
{
	parser();
	names();
	dates();
	line_ends();
	config();
	return UNIT_DONE();
}
