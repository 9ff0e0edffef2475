/* test-rules-fdm.c — the conditions fdm users expect: `age` from the Date
 * field (decided before the download) and the attachment conditions
 * (count, total size, type, name decoded from RFC 2231 and RFC 2047),
 * with nested multiparts and the walk's bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "mime.h"
#include "msg.h"
#include "rules.h"
#include "unit.h"

struct tmsg {
	struct msg m;
	struct msgview v;
};

static void tmsg_str(struct tmsg *t, const char *s)
{
	char *err = NULL;
	msg_init(&t->m);
	if ((s[0] && msg_append(&t->m, s, strlen(s), &err) < 0) || msg_finish(&t->m, &err) < 0)
		printf("# msg: %s\n", err);
	free(err);
	memset(&t->v, 0, sizeof t->v);
	t->v.account = "work";
	t->v.hdr = msg_header(&t->m, &t->v.hdrlen);
	t->v.size = t->m.size;
	t->v.msg = &t->m;
}

/* The action (or error) of rules over a message; pre: before the
 * download ("need body" when it cannot decide). */
static const char *run(const char *rules, const char *msg, int pre)
{
	static char out[1024];
	char *err = NULL;
	struct rules *r = rules_parse("t.rules", rules, &err);
	if (r == NULL) {
		snprintf(out, sizeof out, "parse error: %s", err);
		free(err);
		return out;
	}
	struct tmsg t;
	tmsg_str(&t, msg);
	if (pre)
		t.v.msg = NULL;
	struct decision d;
	rules_eval(r, &t.v, &d);
	snprintf(out, sizeof out, "%s", d.error ? d.error : d.need_body ? "need body"
				       : d.action ? d.action : "(null)");
	decision_free(&d);
	rules_free(r);
	msg_free(&t.m);
	return out;
}

static const char *perr(const char *rules)
{
	static char out[1024];
	char *err = NULL;
	struct rules *r = rules_parse("t.rules", rules, &err);
	snprintf(out, sizeof out, "%s", r ? "(parsed)" : err);
	rules_free(r);
	free(err);
	return out;
}

/* ---- age ---- */

static char *dated(time_t ago, char *buf, size_t size)
{
	time_t t = time(NULL) - ago;
	struct tm tm;
	gmtime_r(&t, &tm);
	char d[64];
	strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(buf, size, "From: a@b\nDate: %s\nSubject: s\n\nbody\n", d);
	return buf;
}

static void test_age(void)
{
	char m[256];
	const char *older = "match age > 30d skip";
	CHECK_STR(run(older, dated(31 * 86400, m, sizeof m), 1), "skip", "age > 30d: 31 days, before the download");
	CHECK_STR(run(older, dated(29 * 86400, m, sizeof m), 1), "default", "age > 30d: 29 days");
	CHECK_STR(run("match age < 2h skip", dated(3600, m, sizeof m), 1), "skip", "age < 2h: 1 hour");
	CHECK_STR(run("match age < 2h skip", dated(3 * 3600, m, sizeof m), 1), "default", "age < 2h: 3 hours");
	CHECK_STR(run("match age >= 1w skip", dated(8 * 86400, m, sizeof m), 1), "skip", "age >= 1w");
	CHECK_STR(run("match age > 90m skip", dated(91 * 60, m, sizeof m), 1), "skip", "age in minutes");
	CHECK_STR(run("match age > 100 skip", dated(200, m, sizeof m), 1), "skip", "bare seconds");
	CHECK_STR(run("match age > 1s skip", dated(-86400, m, sizeof m), 1), "default",
		  "a Date in the future is not older");
	CHECK_STR(run("match age < 1s skip", dated(-86400, m, sizeof m), 1), "skip",
		  "a Date in the future: negative age");
	const char *nodate = "From: a@b\nSubject: s\n\nbody\n";
	const char *bad = "From: a@b\nDate: yesterday, around noon\n\nbody\n";
	CHECK_STR(run("match age > 1s skip", nodate, 1), "default", "no Date: not older");
	CHECK_STR(run("match age < 1000w skip", nodate, 1), "default", "no Date: not younger");
	CHECK_STR(run("match age > 1s skip", bad, 1), "default", "bad Date: not older");
	CHECK_STR(run("match age < 1000w skip", bad, 1), "default", "bad Date: not younger");
	CHECK_STR(run("match not age < 1000w and not age >= 1000w skip", bad, 1), "skip",
		  "bad Date: caught by not");
	const char *obs = "Date: Thu, 13 Feb 89 23:32 EST (a comment)\n\nx\n";
	CHECK_STR(run(older, obs, 1), "skip", "obsolete date: two-digit year, EST, no seconds");
	CHECK_STR(run("match age > 30d and body =~ /x/ skip", obs, 1), "need body",
		  "age and body: the body is still needed");
	CHECK_STR(perr("match age 30d skip"), "t.rules:1:11: expected >, <, >= or <= after age",
		  "parse: age without an operator");
	CHECK_STR(perr("match age > 30y skip"), "t.rules:1:15: bad age unit (expected s, m, h, d or w)",
		  "parse: bad age unit");
	CHECK_STR(perr("match age > d skip"), "t.rules:1:13: expected an age such as 30d, 12h or 90m after the operator",
		  "parse: age without a number");
	CHECK_STR(perr("match age > 99999999999999d skip"), "t.rules:1:13: age too large",
		  "parse: age too large");
	time_t t;
	int off;
	CHECK(date_parse("Mon, 1 Jan 2024 00:00:00 Z", 26, &t, &off) == 0 && t == 1704067200,
	      "date.c: military Z");
}

/* ---- attachments ---- */

static const char *mixed =
	"From: a@b\nSubject: files\nMIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
	"--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
	"--inner\nContent-Type: text/plain\n\nhello\n"
	"--inner\nContent-Type: text/html\n\n<p>hello</p>\n"
	"--inner--\n"
	"--outer\nContent-Type: application/pdf; name=\"ignored.pdf\"\n"
	"Content-Disposition: attachment;\n filename*0*=utf-8''Rechnung%20M%C3%A4rz;\n filename*1=\".pdf\"\n"
	"Content-Transfer-Encoding: base64\n\n"
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"  /* 32 bytes */
	"--outer\nContent-Type: application/octet-stream;\n name=\"=?UTF-8?B?w6lsw6h2ZS5leGU=?=\"\n"
	"Content-Transfer-Encoding: quoted-printable\n\n"
	"MZ=00=01abc\n"                                      /* 7 bytes + LF */
	"--outer\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n"
	"Subject: inner\nContent-Type: multipart/mixed; boundary=b2\n\n"
	"--b2\nContent-Type: text/plain\n\nsee file\n"
	"--b2\nContent-Type: image/png\nContent-Disposition: inline; filename*=iso-8859-1'fr'%E9t%E9.png\n\n"
	"PNGDATA\n--b2--\n"
	"--outer--\n";

static void test_attachments(void)
{
	struct { const char *rule; const char *want; const char *what; } cases[] = {
		{ "match attachments = 4 mbox /m/a", "mbox /m/a", "count: pdf, exe, the message, the png" },
		{ "match attachments > 4 mbox /m/a", "default", "count: not more" },
		{ "match attachment name =~ /^Rechnung März\\.pdf$/ mbox /m/a", "mbox /m/a",
		  "RFC 2231 continuations, UTF-8, mixed encoded and plain segments" },
		{ "match attachment name =~ /ignored/ mbox /m/a", "default",
		  "filename wins over Content-Type name" },
		{ "match attachment name =~ /^élève\\.exe$/i mbox /m/a", "mbox /m/a",
		  "RFC 2047 in a quoted name" },
		{ "match attachment name =~ /^été\\.png$/ mbox /m/a", "mbox /m/a",
		  "RFC 2231 Latin-1, inside an attached message" },
		{ "match attachment name =~ /(\\w+)\\.exe$/ mbox /m/$1", "mbox /m/élève",
		  "captures from a name" },
		{ "match attachment name !~ /\\.zip$/ mbox /m/a", "mbox /m/a", "!~: no name matches" },
		{ "match attachment name !~ /\\.pdf$/ mbox /m/a", "default", "!~: one name matches" },
		{ "match attachment type =~ /^application\\/pdf$/ mbox /m/a", "mbox /m/a", "type" },
		{ "match attachment type =~ /^message\\/rfc822$/ mbox /m/a", "mbox /m/a", "type: message" },
		{ "match attachment type =~ /html/ mbox /m/a", "default", "a text part is no attachment" },
		{ "match attachment size = 46 mbox /m/a", "mbox /m/a",
		  "size: decoded base64 32 + QP 7 + png 7 (the message's own size not added)" },
		{ "match attachment size > 1K mbox /m/a", "default", "size: not over 1K" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK_STR(run(cases[i].rule, mixed, 0), cases[i].want, cases[i].what);
	CHECK_STR(run("match attachments > 0 skip", mixed, 1), "need body",
		  "attachments need the body");
	const char *plain = "From: a@b\nSubject: s\n\nno files\n";
	CHECK_STR(run("match attachments = 0 mbox /m/none", plain, 0), "mbox /m/none", "none");
	CHECK_STR(run("match attachment name !~ /x/ mbox /m/none", plain, 0), "mbox /m/none",
		  "!~ with no attachment");
	const char *single = "Content-Type: application/pdf\nContent-Disposition: attachment\n\n%PDF\n";
	CHECK_STR(run("match attachments = 1 and attachment type =~ /pdf/ mbox /m/a", single, 0),
		  "mbox /m/a", "a single-part message that is an attachment");
	const char *texts = "Content-Type: text/plain; name=\"notes.txt\"\n\nx\n";
	CHECK_STR(run("match attachment name =~ /notes/ mbox /m/a", texts, 0), "mbox /m/a",
		  "a named text part counts");
	CHECK_STR(perr("match attachment colour =~ /x/ skip"),
		  "t.rules:1:18: expected size, type or name after attachment", "parse: attachment what");
	CHECK_STR(perr("match attachments > 1K skip"), "t.rules:1:22: expected a plain number",
		  "parse: no unit on a count");
	CHECK_STR(perr("match attachment size > 5Q skip"),
		  "t.rules:1:26: bad size unit (expected K, M or G)", "parse: size unit");
	CHECK_STR(perr("match attachment name = /x/ skip"),
		  "t.rules:1:23: expected =~ or !~ after attachment name", "parse: name operator");
	CHECK_STR(perr("match attachments ~ 1 skip"),
		  "t.rules:1:19: expected >, <, >=, <= or = after attachments", "parse: count operator");
}

/* Hostile nesting and many parts stay bounded and do not crash. */
static void test_bounds(void)
{
	size_t cap = 4 << 20, n = 0;
	char *m = malloc(cap);
	for (int d = 0; d < 5000; d++)
		n += (size_t)snprintf(m + n, cap - n, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", d, d);
	n += (size_t)snprintf(m + n, cap - n, "Content-Disposition: attachment; filename=deep.exe\n\nx\n");
	CHECK_STR(run("match attachment name =~ /deep/ mbox /m/a", m, 0), "default",
		  "5000 nested multiparts: beyond the depth bound, no crash");
	n = (size_t)snprintf(m, cap, "Content-Type: multipart/mixed; boundary=b\n\n");
	for (int i = 0; i < 20000; i++)
		n += (size_t)snprintf(m + n, cap - n, "--b\nContent-Disposition: attachment\n\nx\n");
	snprintf(m + n, cap - n, "--b--\n");
	CHECK_STR(run("match attachments >= 9999 and attachments < 10000 mbox /m/a", m, 0),
		  "mbox /m/a", "20000 parts: counted up to the bound");
	n = (size_t)snprintf(m, cap, "Content-Type: application/x; name*0*=utf-8''a");
	for (int i = 1; i < 200; i++)
		n += (size_t)snprintf(m + n, cap - n, "; name*%d=b", i);
	snprintf(m + n, cap - n, "\n\nx\n");
	char *name = mime_filename(m, strlen(m), NULL);
	CHECK(name != NULL && strlen(name) == 64, "RFC 2231: at most 64 segments");
	free(name);
	/* 64 segments of 100 KB: only the first 64 KB of the field is read */
	n = (size_t)snprintf(m, cap, "Content-Disposition: attachment; filename*0*=utf-8''a");
	for (int i = 1; i < 64 && n + 100010 < cap; i++) {
		n += (size_t)snprintf(m + n, cap - n, "; filename*%d=", i);
		memset(m + n, 'b', 100000);
		n += 100000;
	}
	snprintf(m + n, cap - n, "\n\nx\n");
	name = mime_filename(m, strlen(m), NULL);
	CHECK(name != NULL && strlen(name) < 65536, "RFC 2231: a huge field is read to 64 KB");
	free(name);
	free(m);
}

static void test_filename(void)
{
	struct { const char *hdr, *want; } cases[] = {
		{ "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.txt\n\n", "€ rates.txt" },
		{ "Content-Disposition: attachment; filename=\"=?ISO-8859-1?Q?r=E9sum=E9?= .doc\"\n\n", "résumé .doc" },
		{ "Content-Disposition: attachment; filename=plain.txt\n\n", "plain.txt" },
		{ "Content-Disposition: attachment; filename*0=\"a b\"; filename*1=\" c.txt\"\n\n", "a b c.txt" },
		{ "Content-Disposition: attachment; filename*=''no%20charset\n\n", "no charset" },
		{ "Content-Disposition: attachment; filename*=bogus-cs''x%41\n\n", "xA" },
		{ "Content-Disposition: attachment; filename=\"\"\nContent-Type: a/b; name=n.bin\n\n", "n.bin" },
		{ "Content-Disposition: attachment\n\n", NULL },
		{ "Content-Disposition: attachment; filename*=utf-8''100%\n\n", "100%" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = mime_filename(cases[i].hdr, strlen(cases[i].hdr), NULL);
		char what[160];
		snprintf(what, sizeof what, "mime_filename: %s", cases[i].want ? cases[i].want : "none");
		CHECK_STR(got, cases[i].want, what);
		free(got);
	}
}

static void test_dump(void)
{
	const char *text = "match attachments >= 2 or attachment size <= 3K or "
			   "attachment type !~ /x/i or attachment name =~ /a\\/b/ or age <= 3w skip\n";
	char *err = NULL, *out = NULL;
	size_t n = 0;
	struct rules *r = rules_parse("t.rules", text, &err);
	FILE *f = open_memstream(&out, &n);
	if (r != NULL)
		rules_dump(r, f);
	fclose(f);
	CHECK_STR(out, "t.rules:1: match age <= 3w or (attachments >= 2 or attachment size <= 3K or "
		  "attachment type !~ /x/i or attachment name =~ /a\\/b/) skip\n",
		  "dump: as written, the header-only age first");
	free(out);
	free(err);
	rules_free(r);
}

int main(void)
{
	test_dump();
	test_age();
	test_attachments();
	test_bounds();
	test_filename();
	return UNIT_DONE();
}
