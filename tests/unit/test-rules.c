/* test-rules.c — the rules language: every parse error, every condition
 * and action, expansions and their sanitising, decisions before and after
 * the download, the match limit, and the example files in filters/. */
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "rules.h"
#include "unit.h"

static const char *root = ".";          /* where filters/ and tests/data/ are */
static char errbuf[1024];

/* ---- helpers ---- */

static struct rules *parse(const char *text)
{
	char *err = NULL;
	struct rules *r = rules_parse("t.rules", text, &err);
	if (r == NULL)
		printf("# unexpected parse error: %s\n", err);
	free(err);
	return r;
}

static const char *perr(const char *text)
{
	char *err = NULL;
	struct rules *r = rules_parse("t.rules", text, &err);
	snprintf(errbuf, sizeof errbuf, "%s", r ? "(parsed)" : err ? err : "(no message)");
	rules_free(r);
	free(err);
	return errbuf;
}

struct tmsg {
	struct msg m;
	struct msgview v;
};

static void tmsg_text(struct tmsg *t, const char *p, size_t n)
{
	char *err = NULL;
	msg_init(&t->m);
	if ((n > 0 && msg_append(&t->m, p, n, &err) < 0) || msg_finish(&t->m, &err) < 0)
		printf("# msg: %s\n", err);
	free(err);
	memset(&t->v, 0, sizeof t->v);
	t->v.account = "work";
	t->v.hdr = msg_header(&t->m, &t->v.hdrlen);
	t->v.size = t->m.size;
	t->v.msg = &t->m;
}

static void tmsg_str(struct tmsg *t, const char *s)
{
	tmsg_text(t, s, strlen(s));
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int tmsg_file(struct tmsg *t, const char *name)
{
	char path[512];
	size_t n;
	snprintf(path, sizeof path, "%s/tests/data/%s", root, name);
	char *buf = slurp(path, &n);
	if (buf == NULL) {
		printf("# cannot read %s\n", path);
		tmsg_str(t, "");
		return -1;
	}
	tmsg_text(t, buf, n);
	free(buf);
	return 0;
}

static void tmsg_free(struct tmsg *t)
{
	msg_free(&t->m);
}

/* Evaluate after the download (pre = 0) or before it (pre = 1). */
static struct decision eval(struct rules *r, struct tmsg *t, int pre)
{
	struct decision d;
	struct msg *m = t->v.msg;
	if (pre)
		t->v.msg = NULL;
	rules_eval(r, &t->v, &d);
	t->v.msg = m;
	return d;
}

/* The action text of one rules text over one message. */
static char *action_of(const char *rules, struct tmsg *t)
{
	static char out[1024];
	struct rules *r = parse(rules);
	if (r == NULL)
		return "(parse error)";
	struct decision d = eval(r, t, 0);
	snprintf(out, sizeof out, "%s", d.error ? d.error : d.action ? d.action : "(null)");
	decision_free(&d);
	rules_free(r);
	return out;
}

static const char *action_msg(const char *rules, const char *msg)
{
	struct tmsg t;
	tmsg_str(&t, msg);
	const char *a = action_of(rules, &t);
	tmsg_free(&t);
	return a;
}

static const char *action_file(const char *rules, const char *file)
{
	struct tmsg t;
	tmsg_file(&t, file);
	const char *a = action_of(rules, &t);
	tmsg_free(&t);
	return a;
}

static int same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static int same_argv(char **a, char **b)
{
	for (; a && b && *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return 0;
	return (a == NULL && b == NULL) || (a && b && !*a && !*b);
}

static int same_decision(const struct decision *a, const struct decision *b)
{
	if (a->matched != b->matched || a->skip != b->skip || a->discard != b->discard ||
	    a->keep != b->keep || a->use_default != b->use_default ||
	    a->ndests != b->ndests || a->nadd != b->nadd || !same_str(a->rule, b->rule) ||
	    !same_str(a->action, b->action) || !same_str(a->error, b->error))
		return 0;
	for (size_t i = 0; i < a->ndests; i++)
		if (a->dests[i].kind != b->dests[i].kind ||
		    !same_str(a->dests[i].path, b->dests[i].path) ||
		    !same_argv(a->dests[i].argv, b->dests[i].argv))
			return 0;
	for (size_t i = 0; i < a->nadd; i++)
		if (strcmp(a->add_headers[i], b->add_headers[i]) != 0)
			return 0;
	return 1;
}

/* ---- parse errors ---- */

#define KINDS "(expected header, headers, body, rawbody, size, account, duplicate, all, pipe, age, attachments or attachment)"

/* Every parse error, as "file:line:col: message". */
static const struct { const char *text, *want; } parse_errors[] = {
	{ "foo all discard", "t.rules:1:1: expected \"match\" at the start of a rule" },
	{ "match", "t.rules:1:6: expected a condition" },
	{ "match frob discard",
	  "t.rules:1:7: unknown condition \"frob\" " KINDS },
	{ "match header =~ /x/ discard", "t.rules:1:14: expected a header name" },
	{ "match header", "t.rules:1:13: expected a header name" },
	{ "match header \"\" exists discard", "t.rules:1:14: invalid header name" },
	{ "match header \"Sub ject\" exists discard", "t.rules:1:14: invalid header name" },
	{ "match header \"Subject discard", "t.rules:1:14: unterminated string" },
	{ "match header Subject foo discard",
	  "t.rules:1:22: expected =~, !~ or exists after the header name" },
	{ "match header Subject =~ foo discard", "t.rules:1:25: expected a /regex/" },
	{ "match header Subject =~ /foo discard",
	  "t.rules:1:25: unterminated regex (no closing \"/\")" },
	{ "match header Subject =~ /foo/iq discard",
	  "t.rules:1:31: unknown regex flag \"q\" (expected i, m, s or x)" },
	{ "match header Subject =~ /a(b/ discard",
	  "t.rules:1:29: bad regex: missing closing parenthesis" },
	{ "match header Subject =~ /发票+*/ discard",
	  "t.rules:1:29: bad regex: quantifier does not follow a repeatable item" },
	{ "match header Subject =~ /a\\/b)/ discard",
	  "t.rules:1:30: bad regex: unmatched closing parenthesis" },
	{ "match rawbody =~ /\xff/ discard", "(parsed)" },
	{ "match headers discard", "t.rules:1:15: expected =~ or !~ after headers" },
	{ "match body /x/ discard", "t.rules:1:12: expected =~ or !~ after body" },
	{ "match rawbody exists discard", "t.rules:1:15: expected =~ or !~ after rawbody" },
	{ "match size 10M skip", "t.rules:1:12: expected >, <, >= or <= after size" },
	{ "match size > skip", "t.rules:1:14: expected a number after the size operator" },
	{ "match size > 10X skip", "t.rules:1:16: bad size unit (expected K, M or G)" },
	{ "match size > 10MB skip", "t.rules:1:16: bad size unit (expected K, M or G)" },
	{ "match size > 99999999999999999999 skip", "t.rules:1:14: size too large" },
	{ "match size > 20000000000G skip", "t.rules:1:14: size too large" },
	{ "match account", "t.rules:1:14: expected an account name" },
	{ "match account \"\" discard", "t.rules:1:15: expected an account name" },
	{ "match account \"work discard", "t.rules:1:15: unterminated string" },
	{ "match (all discard", "t.rules:1:12: expected \")\" or an operator" },
	{ "match (all", "t.rules:1:11: expected \")\"" },
	{ "match (all or) discard", "t.rules:1:14: expected a condition" },
	{ "match all and discard",
	  "t.rules:1:15: unknown condition \"discard\" " KINDS },
	{ "match not", "t.rules:1:10: expected a condition" },
	{ "match all", "t.rules:1:10: expected an action" },
	{ "match all # nothing", "t.rules:1:20: expected an action" },
	{ "match all frob", "t.rules:1:11: unknown action \"frob\"" },
	{ "match all )", "t.rules:1:11: expected an action" },
	{ "match all mbox", "t.rules:1:15: expected a path after mbox" },
	{ "match all maildir \"\"", "t.rules:1:19: expected a path after maildir" },
	{ "match all mbox \"/tmp/x", "t.rules:1:16: unterminated string" },
	{ "match all mda", "t.rules:1:14: expected a command after mda" },
	{ "match all mda   # comment", "t.rules:1:26: expected a command after mda" },
	{ "match all mda procmail \"-d x", "t.rules:1:15: mda: unterminated quote" },
	{ "match all forward", "t.rules:1:18: expected an address after forward" },
	{ "match all forward discard", "t.rules:1:18: expected an address after forward" },
	{ "match all lmtp", "t.rules:1:15: expected unix:/PATH or HOST:PORT after lmtp" },
	{ "match header S =~ /(.*)/ lmtp ${header:X-To} bob",
	  "t.rules:1:31: lmtp: the server cannot come from the message" },
	{ "match header S =~ /(.*)/ lmtp h$1:24 bob",
	  "t.rules:1:31: lmtp: the server cannot come from the message" },
	{ "match all add-header", "t.rules:1:21: add-header needs \"Name: value\"" },
	{ "match all add-header \"no colon\"", "t.rules:1:22: add-header needs \"Name: value\"" },
	{ "match all add-header \": v\"", "t.rules:1:22: add-header needs \"Name: value\"" },
	{ "match header S =~ /(x)/ add-header \"X-$1: v\"",
	  "t.rules:1:36: add-header needs \"Name: value\"" },
	{ "match all add-header \"X-A: \\\"unterminated", "t.rules:1:22: unterminated string" },
	{ "match all mbox /m/$1", "t.rules:1:19: $1 but the condition has no regex" },
	{ "match header S =~ /(a)/ mbox /m/$2",
	  "t.rules:1:33: $2 but the condition's regexes have 1 capture group" },
	{ "match header S =~ /a/ or header T =~ /b/ mbox /m/$1",
	  "t.rules:1:50: $1 but the condition's regexes have 0 capture groups" },
	{ "match all mbox /m/$x",
	  "t.rules:1:19: bad \"$\" (expected $1..$9, $$ or ${header:Name})" },
	{ "match all mbox /m/$",
	  "t.rules:1:19: bad \"$\" (expected $1..$9, $$ or ${header:Name})" },
	{ "match all mbox /m/${header:S", "t.rules:1:19: unterminated \"${\"" },
	{ "match all mbox /m/${env:HOME}",
	  "t.rules:1:19: bad \"${env:HOME}\" (expected ${header:Name})" },
	{ "match all mbox /m/${header:}",
	  "t.rules:1:19: bad \"${header:}\" (expected ${header:Name})" },
	{ "match all mda /bin/x $1", "t.rules:1:15: $1 but the condition has no regex" },
	{ "match all forward $3@x", "t.rules:1:19: $3 but the condition has no regex" },
	{ "match all skip mbox /m", "t.rules:1:16: \"mbox\" cannot be combined with \"skip\"" },
	{ "match all mbox /m discard",
	  "t.rules:1:19: \"discard\" cannot be combined with \"mbox\"" },
	{ "match all discard skip", "t.rules:1:19: \"skip\" cannot be combined with \"discard\"" },
	{ "match all keep skip", "t.rules:1:16: \"skip\" cannot be combined with \"keep\"" },
	{ "match all skip continue",
	  "t.rules:1:16: \"continue\" cannot be combined with \"skip\"" },
	{ "match all continue mbox /m", "t.rules:1:20: \"continue\" must be the last action" },
	{ "match all continue", "t.rules:1:11: \"continue\" alone does nothing" },
	{ "# one\n\nmatch all discard\n  match all frob\n",
	  "t.rules:4:13: unknown action \"frob\"" },
	{ "match all \\\n   frob", "t.rules:2:4: unknown action \"frob\"" },
	{ "match header S =~ /x/ \\\n# a comment line\n  and frob discard",
	  "t.rules:3:7: unknown condition \"frob\" " KINDS },
	{ "match all discard\r\nmatch all frob\r\n", "t.rules:2:11: unknown action \"frob\"" },
	{ "match all discard \\", "(parsed)" },
	{ "match header S =~ /(x)/ mda /bin/sh -c \"procmail LIST=$1\"",
	  "t.rules:1:29: mda: $1 inside the script of /bin/sh -c would let a sender run commands; "
	  "pass it as an argument after the script and quote it there: "
	  "mda /bin/sh -c '... \"$$1\" ...' sh $1" },
	{ "match all mda env A=1 bash -e -o x -c \"a ${header:B}\"",
	  "t.rules:1:15: mda: ${header:B} inside the script of bash -c would let a sender run "
	  "commands; pass it as an argument after the script and quote it there: "
	  "mda bash -c '... \"$$1\" ...' sh ${header:B}" },
	{ "match header S =~ /(x)/ mda $1 -x", "t.rules:1:29: mda: $1 in \"$1\" would let a "
	  "sender choose a program, an option or a variable name: write it literally" },
	{ "match header S =~ /(x)/ mda sh -$1c x", "t.rules:1:29: mda: $1 in \"-$1c\" would let "
	  "a sender choose a program, an option or a variable name: write it literally" },
	{ "match header S =~ /(x)/ mda python3 -c $1", "t.rules:1:29: mda: $1 right after -c "
	  "would let a sender run commands: pass message data as an argument of its own" },
	{ "match header S =~ /(x)/ mda sh -o $1 -c x", "t.rules:1:29: mda: $1 in \"$1\" would let "
	  "a sender choose a program, an option or a variable name: write it literally" },
	{ "match header S =~ /(x)/ mda env -S \"sh -c $1\"", "t.rules:1:29: mda: $1 in "
	  "\"sh -c $1\" would let a sender choose a program, an option or a variable name: "
	  "write it literally" },
	{ "match header S =~ /(x)/ mda env -u X sh -c \"a $1\"",
	  "t.rules:1:29: mda: $1 inside the script of sh -c would let a sender run commands; "
	  "pass it as an argument after the script and quote it there: "
	  "mda sh -c '... \"$$1\" ...' sh $1" },
	{ "match header S =~ /(x)/ mda /bin/sh -c 'procmail L=\"$$1\"' sh $1", "(parsed)" },
	{ "match header S =~ /(x)/ mda env L=$1 dash -c 'procmail L=\"$$L\"'", "(parsed)" },
	{ "match header S =~ /(x)/ mda sh /etc/deliver.sh $1 ${header:S}", "(parsed)" },
	{ "", "(parsed)" },
	{ "# only comments \\\n\n   # and blanks\n", "(parsed)" },
};

static void test_parse_errors(void)
{
	for (size_t i = 0; i < sizeof parse_errors / sizeof parse_errors[0]; i++) {
		char what[200];
		snprintf(what, sizeof what, "parse: %s", parse_errors[i].text);
		for (char *c = what; *c; c++)
			*c = (unsigned char)*c < ' ' ? '|' : *c;
		CHECK_STR(perr(parse_errors[i].text), parse_errors[i].want, what);
	}
	CHECK_STR(perr("\xEF\xBB\xBFmatch all frob"), "t.rules:1:11: unknown action \"frob\"",
		  "parse: a byte order mark is skipped");
	struct decision d;
	struct msgview v = { .hdr = "", .hdrlen = 0 };
	CHECK(rules_eval(NULL, &v, &d) == 0 && d.use_default && !d.matched, "no rules: the default");
	decision_free(&d);
	CHECK(strstr(perr("match body =~ /\xff/ discard"), "t.rules:1:16: bad regex: UTF-8 error") != NULL,
	      "error: invalid UTF-8 in a UTF-mode regex");
}

static void test_load_errors(void)
{
	char *err = NULL;
	CHECK(rules_load("/nonexistent/x.rules", &err) == NULL, "load: missing file fails");
	CHECK_STR(err, "/nonexistent/x.rules: No such file or directory", "load: missing file error");
	free(err);
	err = NULL;
	char path[] = "/tmp/test-rules-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, "match all\0 discard\n", 19) == 19, "load: temp file written");
	close(fd);
	CHECK(rules_load(path, &err) == NULL, "load: NUL byte refused");
	CHECK(err && strstr(err, ": contains a NUL byte") != NULL, "load: NUL byte error");
	free(err);
	err = NULL;
	FILE *f = fopen(path, "w");
	fputs("match all discard\nmatch all bogus\n", f);
	fclose(f);
	CHECK(rules_load(path, &err) == NULL, "load: error in a file");
	char want[256];
	snprintf(want, sizeof want, "%s:2:11: unknown action \"bogus\"", path);
	CHECK_STR(err, want, "load: error names the file");
	free(err);
	unlink(path);
}

/* ---- conditions ---- */

static const char *hdrmsg =
	"From: Alice <alice@example.org>\n"
	"To: bob@example.com\n"
	"Subject: =?UTF-8?B?5Y+R56Wo?= for March\n"
	"X-Spam-Flag: YES\n"
	"Received: from a by b\n"
	"Received: from c by d\n"
	"X-Spaced:    lots of  space   \n"
	"X-Folded: first\n"
	"  second\n"
	"Message-ID: <m1@example.org>\n"
	"\n"
	"Hello body\n";

static void test_header(void)
{
	CHECK_STR(action_msg("match header \"Subject\" =~ /^发票 for/ mbox /m/a", hdrmsg),
		  "mbox /m/a", "header: RFC 2047 decoded before matching");
	CHECK_STR(action_msg("match header subject =~ /march/i mbox /m/a", hdrmsg), "mbox /m/a",
		  "header: name is case-insensitive, i flag");
	CHECK_STR(action_msg("match header Subject =~ /march/ mbox /m/a", hdrmsg), "default",
		  "header: case-sensitive without i");
	CHECK_STR(action_msg("match header Received =~ /from c/ mbox /m/a", hdrmsg), "mbox /m/a",
		  "header: any field of that name matches");
	CHECK_STR(action_msg("match header X-Spaced =~ /^lots of  space$/ mbox /m/a", hdrmsg),
		  "mbox /m/a", "header: value trimmed, inner space kept");
	CHECK_STR(action_msg("match header X-Folded =~ /^first  second$/ mbox /m/a", hdrmsg),
		  "mbox /m/a", "header: folded value unfolded");
	CHECK_STR(action_msg("match header X-Spam-Flag exists mbox /m/a", hdrmsg), "mbox /m/a",
		  "header exists: present");
	CHECK_STR(action_msg("match header X-Nope exists mbox /m/a", hdrmsg), "default",
		  "header exists: absent");
	CHECK_STR(action_msg("match header X-Nope =~ /./ mbox /m/a", hdrmsg), "default",
		  "header =~ on an absent header is false");
	CHECK_STR(action_msg("match header X-Nope !~ /./ mbox /m/a", hdrmsg), "mbox /m/a",
		  "header !~ on an absent header is true");
	CHECK_STR(action_msg("match header X-Spam-Flag !~ /YES/ mbox /m/a", hdrmsg), "default",
		  "header !~ when it matches is false");
	CHECK_STR(action_msg("match headers =~ /^X-Spam-Flag: YES$/ mbox /m/a", hdrmsg),
		  "mbox /m/a", "headers: any line as \"Name: value\"");
	CHECK_STR(action_msg("match headers =~ /^Subject: 发票/ mbox /m/a", hdrmsg), "mbox /m/a",
		  "headers: decoded");
	CHECK_STR(action_msg("match headers =~ /^Hello/m mbox /m/a", hdrmsg), "default",
		  "headers: the body is not a header");
	CHECK_STR(action_msg("match headers !~ /^X-Virus/ mbox /m/a", hdrmsg), "mbox /m/a",
		  "headers: !~");
	CHECK_STR(action_msg("match header \"Subject\" =~ /^\\s*x/x mbox /m/a", "Subject:  x\n\n"),
		  "mbox /m/a", "header: x flag");
	CHECK_STR(action_msg("match header S =~ /a.b/s mbox /m/a", "S: =?UTF-8?Q?a=0Ab?=\n\n"),
		  "mbox /m/a", "header: s flag lets . match a decoded newline");
	CHECK_STR(action_msg("match header S =~ /^b$/m mbox /m/a", "S: =?UTF-8?Q?a=0Ab?=\n\n"),
		  "mbox /m/a", "header: m flag");
	CHECK_STR(action_msg("match header S =~ /a\\/b/ mbox /m/a", "S: a/b\n\n"), "mbox /m/a",
		  "header: escaped slash in a regex");
	CHECK_STR(action_msg("match header S =~ /^\\w+ \\d+$/ mbox /m/a",
			     "S: =?UTF-8?B?5Y+R56WoIO+8ke+8kg==?=\n\n"), "mbox /m/a",
		  "header: \\w and \\d match any script (发票, full-width digits)");
	CHECK_STR(action_msg("match header S =~ /\\bcafé\\b/ mbox /m/a", "S: un café noir\n\n"),
		  "mbox /m/a", "header: \\b around a non-ASCII letter");
}

static void test_header_files(void)
{
	CHECK_STR(action_file("match header Subject =~ /发票/ mbox /m/inv", "invoice-zh.eml"),
		  "mbox /m/inv", "GBK Subject matches 发票");
	CHECK_STR(action_file("match header From =~ /^财务部 </ mbox /m/inv", "invoice-zh.eml"),
		  "mbox /m/inv", "GBK From display name decoded");
	CHECK_STR(action_file("match header Subject =~ /^Café crème$/ mbox /m/x", "nul.eml"),
		  "mbox /m/x", "8-bit header without encoding taken as Latin-1");
	CHECK_STR(action_file("match header X-Binary exists mbox /m/x", "nul.eml"), "mbox /m/x",
		  "header with a NUL byte is there");
	CHECK_STR(action_file("match header X-Binary =~ /^a/ mbox /m/x", "nul.eml"), "mbox /m/x",
		  "header with a NUL byte can be matched");
	CHECK_STR(action_file("match header Subject =~ /./ mbox /m/x", "nosubject.eml"), "default",
		  "missing Subject does not match");
	CHECK_STR(action_file("match header Subject !~ /./ mbox /m/x", "nosubject.eml"), "mbox /m/x",
		  "missing Subject: !~ is true");
	CHECK_STR(action_file("match header Subject =~ /^\\[SPAM\\]/ discard", "crlf.eml"), "discard",
		  "CRLF message matches");
}

static void test_body(void)
{
	CHECK_STR(action_file("match body =~ /请查收。/ mbox /m/inv", "invoice-zh.eml"), "mbox /m/inv",
		  "body: base64 GB2312 decoded to UTF-8");
	CHECK_STR(action_file("match body =~ /请查收发票/ mbox /m/inv", "invoice-zh-body.eml"),
		  "mbox /m/inv", "body: text part of a multipart");
	CHECK_STR(action_file("match body =~ /JVBERi0/ mbox /m/inv", "invoice-zh-body.eml"),
		  "default", "body: non-text parts left out");
	CHECK_STR(action_file("match rawbody =~ /JVBERi0/ mbox /m/x", "invoice-zh-body.eml"),
		  "mbox /m/x", "rawbody: the bytes as received");
	CHECK_STR(action_file("match rawbody =~ /^Subject:/m mbox /m/x", "invoice-zh-body.eml"),
		  "default", "rawbody: the header is not in it");
	CHECK_STR(action_file("match rawbody =~ /\\xff\\xfe/ mbox /m/x", "nul.eml"), "mbox /m/x",
		  "rawbody: invalid UTF-8 bytes matched as bytes");
	CHECK_STR(action_file("match rawbody =~ /a \\x00 NUL/ mbox /m/x", "nul.eml"), "mbox /m/x",
		  "rawbody: NUL bytes");
	CHECK_STR(action_file("match body =~ /invalid UTF-8/ mbox /m/x", "nul.eml"), "mbox /m/x",
		  "body: invalid UTF-8 does not stop matching");
	CHECK_STR(action_file("match body =~ /./ mbox /m/x", "nosubject.eml"), "default",
		  "body: empty body does not match");
	CHECK_STR(action_file("match body !~ /./ mbox /m/x", "nosubject.eml"), "mbox /m/x",
		  "body: !~ on an empty body");
	CHECK_STR(action_file("match body =~ /unsubscribe/i mbox /m/x", "newsletter-corp.eml"),
		  "mbox /m/x", "body: plain text");
	CHECK_STR(action_msg("match body =~ /x/ mbox /m/x", "Subject: no body at all\n"), "default",
		  "body: message without a body");
}

static void test_size_account(void)
{
	struct tmsg t;
	tmsg_str(&t, "Subject: s\n\nbody\n");
	struct { const char *rule; size_t size; const char *want; } cases[] = {
		{ "match size > 10M skip", 11u << 20, "skip" },
		{ "match size > 10M skip", 10u << 20, "default" },
		{ "match size >= 10M skip", 10u << 20, "skip" },
		{ "match size < 2K skip", 2047, "skip" },
		{ "match size < 2K skip", 2048, "default" },
		{ "match size <= 2k skip", 2048, "skip" },
		{ "match size > 1G skip", (size_t)1 << 30, "default" },
		{ "match size > 1023 skip", 1024, "skip" },
		{ "match size>1m skip", 2u << 20, "skip" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[128];
		snprintf(what, sizeof what, "size: \"%s\" at %zu", cases[i].rule, cases[i].size);
		t.v.size = cases[i].size;
		CHECK_STR(action_of(cases[i].rule, &t), cases[i].want, what);
	}
	t.v.size = t.m.size;
	CHECK_STR(action_of("match account \"work\" mbox /m/w", &t), "mbox /m/w", "account: same");
	CHECK_STR(action_of("match account home mbox /m/w", &t), "default", "account: other");
	t.v.account = NULL;
	CHECK_STR(action_of("match account work mbox /m/w", &t), "default", "account: none given");
	CHECK_STR(action_of("match all mbox /m/all", &t), "mbox /m/all", "all");
	tmsg_free(&t);
}

static const char *dup_seen;

static int dup_cb(void *arg, const char *id)
{
	dup_seen = id ? "called" : NULL;
	if (arg != NULL)
		return -1;
	return strcmp(id, "<m1@example.org>") == 0;
}

static void test_duplicate(void)
{
	struct tmsg t;
	tmsg_str(&t, hdrmsg);
	CHECK_STR(action_of("match duplicate discard", &t), "default", "duplicate: no callback");
	t.v.is_duplicate = dup_cb;
	CHECK_STR(action_of("match duplicate discard", &t), "discard", "duplicate: seen Message-ID");
	CHECK_STR(dup_seen, "called", "duplicate: callback called");
	t.v.dup_arg = &t;
	CHECK_STR(action_of("match duplicate discard", &t),
		  "t.rules:1: cannot look up the Message-ID", "duplicate: lookup error");
	tmsg_free(&t);
	tmsg_str(&t, "Message-ID: <other@example.org>\n\n");
	t.v.is_duplicate = dup_cb;
	CHECK_STR(action_of("match duplicate discard", &t), "default", "duplicate: new Message-ID");
	tmsg_free(&t);
	tmsg_str(&t, "Subject: no id\n\n");
	t.v.is_duplicate = dup_cb;
	dup_seen = NULL;
	CHECK_STR(action_of("match duplicate discard", &t), "default", "duplicate: no Message-ID");
	CHECK(dup_seen == NULL, "duplicate: no Message-ID, no lookup");
	tmsg_free(&t);
}

static void test_logic(void)
{
	/* From exists, X-Nope and X-Nada do not */
	CHECK_STR(action_msg("match header From exists or header X-Nope exists and "
			     "header X-Nada exists mbox /m/a", hdrmsg), "mbox /m/a",
		  "and binds tighter than or");
	CHECK_STR(action_msg("match (header From exists or header X-Nope exists) and "
			     "header X-Nada exists mbox /m/a", hdrmsg), "default", "parentheses");
	CHECK_STR(action_msg("match not header X-Nope exists and header From exists mbox /m/a",
			     hdrmsg), "mbox /m/a", "not binds tighter than and");
	CHECK_STR(action_msg("match not (header X-Nope exists or header From exists) mbox /m/a",
			     hdrmsg), "default", "not over parentheses");
	CHECK_STR(action_msg("match not not all mbox /m/a", hdrmsg), "mbox /m/a", "not not");
	CHECK_STR(action_msg("match ((all)) and (not (header X-Nope exists)) mbox /m/a", hdrmsg),
		  "mbox /m/a", "nested parentheses");
	CHECK_STR(action_msg("match all and body =~ /Hello/ and not body =~ /Bye/ mbox /m/a",
			     hdrmsg), "mbox /m/a", "body and header mixed");
	CHECK_STR(action_msg("match all\tand\theader\tFrom\texists\tmbox\t/m/a", hdrmsg),
		  "mbox /m/a", "tabs separate words");
	CHECK_STR(action_msg("match all mbox /m/a#not-a-comment", hdrmsg), "mbox /m/a#not-a-comment",
		  "# inside a word is no comment");
	CHECK_STR(action_msg("match all mbox /m/a # a comment", hdrmsg), "mbox /m/a",
		  "# after a blank starts a comment");
	CHECK_STR(action_msg("match header Subject =~ /#x|for/ mbox /m/a", hdrmsg), "mbox /m/a",
		  "# inside a regex is no comment");
}

/* ---- actions and expansions ---- */

static void test_actions(void)
{
	const char *m = hdrmsg;
	CHECK_STR(action_msg("match all maildir /m/d", m), "maildir /m/d", "maildir");
	CHECK_STR(action_msg("match all mda /usr/bin/procmail -d \"a b\" # comment", m),
		  "mda /usr/bin/procmail -d a b", "mda: rest of the line, quotes, comment");
	CHECK_STR(action_msg("match all forward a@x.example b@y.example keep", m),
		  "forward a@x.example b@y.example, keep", "forward: addresses then another action");
	CHECK_STR(action_msg("match all add-header \"X-A: 1\" add-header \"X-B: 2\" mbox /m/a", m),
		  "add-header X-A: 1, add-header X-B: 2, mbox /m/a", "add-header twice, then mbox");
	CHECK_STR(action_msg("match all mbox /m/a maildir /m/b", m), "mbox /m/a, maildir /m/b",
		  "two deliveries in one rule");
	CHECK_STR(action_msg("match all mbox \"/m/with space\"", m), "mbox /m/with space",
		  "quoted path");
	CHECK_STR(action_msg("match all mbox /m/cost$$", m), "mbox /m/cost$", "$$ is a dollar");
	CHECK_STR(action_msg("match header X-Nope exists discard\nmatch all mbox /m/2", m),
		  "mbox /m/2", "a rule that does not match is passed");
	CHECK_STR(action_msg("match all mbox /m/1\nmatch all mbox /m/2", m), "mbox /m/1",
		  "first final rule wins");
	CHECK_STR(action_msg("match all mbox /m/1 continue\nmatch all mbox /m/2", m),
		  "mbox /m/1, mbox /m/2", "continue goes on");
	CHECK_STR(action_msg("match all mbox /m/1 continue", m), "mbox /m/1, default",
		  "continue and no final rule: the default too");
	CHECK_STR(action_msg("match all keep", m), "keep, default", "keep alone: the default");
	CHECK_STR(action_msg("match all mbox /m/1 continue\nmatch all skip", m), "skip",
		  "skip drops earlier copies");
	CHECK_STR(action_msg("match all mbox /m/1 continue\nmatch all discard", m),
		  "mbox /m/1, discard", "discard keeps earlier copies");
	CHECK_STR(action_msg("match header X-Nope exists discard", m), "default", "no rule matched");

	struct tmsg t;
	tmsg_str(&t, m);
	struct rules *r = parse("match all add-header \"X-A: 1\" keep continue\n"
				"match header Subject =~ /(April)/ mbox /m/$1 forward x@y\n"
				"match all maildir /m/b forward p@q r@s mda /bin/cat -u");
	struct decision d = eval(r, &t, 0);
	CHECK(d.matched == 1 && d.keep == 1 && d.skip == 0 && d.discard == 0 && d.use_default == 0,
	      "decision flags");
	CHECK_STR(d.rule, "t.rules:3", "decision rule is file:line");
	CHECK(d.ndests == 3 && d.dests[0].kind == DEST_MAILDIR && d.dests[1].kind == DEST_FORWARD &&
	      d.dests[2].kind == DEST_MDA, "decision dests kinds");
	CHECK_STR(d.ndests == 3 ? d.dests[0].path : NULL, "/m/b", "maildir dest path");
	CHECK(d.ndests == 3 && d.dests[2].argv && !strcmp(d.dests[2].argv[0], "/bin/cat") &&
	      !strcmp(d.dests[2].argv[1], "-u") && d.dests[2].argv[2] == NULL, "mda dest argv");
	CHECK(d.ndests == 3 && d.dests[1].argv && !strcmp(d.dests[1].argv[1], "r@s") &&
	      d.dests[1].argv[2] == NULL && d.dests[1].path == NULL, "forward dest argv");
	CHECK(d.nadd == 1 && !strcmp(d.add_headers[0], "X-A: 1"), "add-header kept");
	decision_free(&d);
	rules_free(r);
	r = parse("match header Subject =~ /(March)/ skip");
	d = eval(r, &t, 0);
	CHECK(d.matched && d.skip && d.ndests == 0 && !d.use_default, "skip decision");
	decision_free(&d);
	rules_free(r);
	r = parse("match all discard");
	d = eval(r, &t, 0);
	CHECK(d.matched && d.discard && d.ndests == 0 && !d.use_default, "discard decision");
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
}

static void test_expansions(void)
{
	setenv("HOME", "/home/tester", 1);
	const char *m = hdrmsg;
	CHECK_STR(action_msg("match all mbox ~/Mail/in", m), "mbox /home/tester/Mail/in", "~ is $HOME");
	CHECK_STR(action_msg("match all mda ~/bin/sort ~/x", m), "mda /home/tester/bin/sort /home/tester/x",
		  "~ in mda arguments");
	CHECK_STR(action_msg("match header From =~ /<(\\w+)@([\\w.]+)>/ maildir /m/$2/$1", m),
		  "maildir /m/example.org/alice", "$1 and $2");
	CHECK_STR(action_msg("match header From =~ /\\w+@[\\w.]+/ maildir /m/$0", m),
		  "maildir /m/alice@example.org", "$0 is the whole match");
	CHECK_STR(action_msg("match header To =~ /(bob)/ and header From =~ /(alice)/ mbox /m/$1", m),
		  "mbox /m/alice", "captures of the last regex that matched");
	CHECK_STR(action_msg("match body =~ /(Hello)/ and header From =~ /(alice)/ mbox /m/$1", m),
		  "mbox /m/alice", "last in the text, though the header was evaluated first");
	CHECK_STR(action_msg("match header From =~ /(alice)/ and body =~ /(Hello)/ mbox /m/$1", m),
		  "mbox /m/Hello", "last in the text: the body");
	CHECK_STR(action_msg("match header From =~ /(alice)|(nobody)/ mbox /m/$2", m),
		  "mbox /m/_", "an unset group expands to _ in a path");
	CHECK_STR(action_msg("match all mbox /m/${header:Subject}", m), "mbox /m/发票 for March",
		  "${header:Name} is decoded");
	CHECK_STR(action_msg("match all mbox /m/${header:X-Nope}", m), "mbox /m/_",
		  "${header:Name} absent: _ in a path");
	CHECK_STR(action_msg("match all add-header \"X-S: [${header:x-nope}]\"", m),
		  "add-header X-S: [], default", "${header:Name} absent: empty in a header");
	CHECK_STR(action_msg("match all add-header \"X-S: ${header:Subject} / $$\"", m),
		  "add-header X-S: 发票 for March / $, default", "add-header expands");
	CHECK_STR(action_file("match header List-Id =~ /<(.*)>/ maildir /m/lists/$1", "evil-list.eml"),
		  "maildir /m/lists/__evil.lists.example", "sanitise: leading dots");
	CHECK_STR(action_file("match all maildir /m/${header:Subject}", "evil-list.eml"),
		  "maildir /m/___.__.ssh_authorized_keys", "sanitise: no slash, no ..");
	CHECK_STR(action_file("match all mbox /m/x.${header:X-Folder}", "evil-list.eml"),
		  "mbox /m/x.___.__.__etc", "sanitise: .. across a literal dot");
	CHECK_STR(action_msg("match header S =~ /(.*)/s mbox /m/$1", "S: =?UTF-8?Q?a=09b=0Ac=7F?=\n\n"),
		  "mbox /m/a_b_c_", "sanitise: control characters");
	CHECK_STR(action_msg("match header S =~ /(.*)/s add-header \"X-S: $1\"",
			     "S: =?UTF-8?Q?a=0D=0AX-Evil:_1?=\n\n"),
		  "add-header X-S: a__X-Evil: 1, default", "sanitise: no header injection");
	CHECK_STR(action_msg("match header S =~ /(.*)/ mda /bin/x $1 -o$1", "S: -rf /\n\n"),
		  "mda /bin/x _rf _ -o-rf _", "sanitise: no option from message data");
	CHECK_STR(action_msg("match header S =~ /(.*)/ forward $1", "S: -oQ/x\n\n"),
		  "forward _oQ_x", "sanitise: forward address");
	char longsubj[400];
	strcpy(longsubj, "S: ");
	memset(longsubj + 3, 'a', 300);
	strcpy(longsubj + 303, "\n\n");
	const char *got = action_msg("match header S =~ /(.*)/ mbox /m/$1", longsubj);
	CHECK(strlen(got) == strlen("mbox /m/") + 200, "sanitise: expansion cut to 200 bytes");
	CHECK_STR(action_msg("match header S =~ /(.*)/ mbox /m/$1",
			     "S: =?UTF-8?B?5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo"
			     "5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo"
			     "5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo"
			     "5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo5Y+R56Wo?=\n\n"),
		  "mbox /m/发票发票发票发票发票发票发票发票发票发票发票发票发票发票发票发票发票发票"
		  "发票发票发票发票发票发票发票发票发票发票发票发票发票发票发票",
		  "sanitise: cut at a character boundary");
	CHECK_STR(action_msg("match header S =~ /(.*)/ mbox /m/$1", "S: ~\n\n"), "mbox /m/~",
		  "~ from the message is not $HOME");
}

/* ---- before and after the download ---- */

static void check_pre(const char *rules, const char *file, int need_body, const char *action,
		      const char *what)
{
	struct tmsg t;
	tmsg_file(&t, file);
	struct rules *r = parse(rules);
	if (r == NULL) {
		CHECK(0, what);
		return;
	}
	struct decision pre = eval(r, &t, 1), post = eval(r, &t, 0);
	char buf[256];
	snprintf(buf, sizeof buf, "%s: need_body", what);
	CHECK(pre.need_body == need_body, buf);
	snprintf(buf, sizeof buf, "%s: action", what);
	CHECK_STR(need_body ? post.action : pre.action, action, buf);
	snprintf(buf, sizeof buf, "%s: same decision after the download", what);
	CHECK(need_body ? !post.need_body : same_decision(&pre, &post), buf);
	decision_free(&pre);
	decision_free(&post);
	rules_free(r);
	tmsg_free(&t);
}

static void test_prefetch(void)
{
	check_pre("match size > 10M and body =~ /x/ skip\nmatch all mbox /m/a", "plain.eml", 0,
		  "mbox /m/a", "size false and body: decided without the body");
	check_pre("match header From exists or body =~ /x/ mbox /m/a", "plain.eml", 0, "mbox /m/a",
		  "header true or body: decided");
	check_pre("match body =~ /x/ or header From exists mbox /m/a", "plain.eml", 0, "mbox /m/a",
		  "body or header true: decided (header first)");
	check_pre("match body =~ /x/ and size > 10M skip\nmatch all mbox /m/a", "plain.eml", 0,
		  "mbox /m/a", "body and size false: decided");
	check_pre("match body =~ /sushi/ mbox /m/a", "plain.eml", 1, "mbox /m/a",
		  "body alone: needs the body");
	check_pre("match header X-Nope exists or body =~ /sushi/ mbox /m/a", "plain.eml", 1,
		  "mbox /m/a", "header false or body: needs the body");
	check_pre("match not body =~ /sushi/ mbox /m/a\nmatch all discard", "plain.eml", 1,
		  "discard", "not body: needs the body");
	check_pre("match body =~ /x/ mbox /m/a\nmatch header From exists skip", "plain.eml", 1,
		  "skip", "an earlier body rule keeps a later header rule waiting");
	check_pre("match header From exists skip\nmatch body =~ /x/ mbox /m/a", "plain.eml", 0,
		  "skip", "a header rule before a body rule decides");
	check_pre("match header Subject =~ /(Lunch)/ and body =~ /(sushi)/ mbox /m/$1",
		  "plain.eml", 1, "mbox /m/sushi", "captures from the body after the download");
	check_pre("match body =~ /(pizza)/ or header Subject =~ /(Lunch)/ mbox /m/$1", "plain.eml",
		  0, "mbox /m/Lunch", "captures: decided before, same after");
	check_pre("match header From exists add-header \"X-A: 1\" continue\n"
		  "match size < 1K mbox /m/small", "plain.eml", 0, "add-header X-A: 1, mbox /m/small",
		  "continue before the download");
}

/* Every example file over every fixture: a decision made before the
 * download is the decision made after it. */
static void test_identity(void)
{
	static const char *const rules[] = { "spam", "lists", "invoices", "big", "forward", "example",
					       "lmtp", "attachments" };
	static const char *const files[] = {
		"spam.eml", "list-debian.eml", "invoice-zh.eml", "invoice-en.eml",
		"invoice-zh-body.eml", "boss.eml", "newsletter-corp.eml", "plain.eml",
		"nosubject.eml", "nul.eml", "evil-list.eml", "crlf.eml", "dup.eml",
	};
	int ok = 1, decided = 0, total = 0;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		char path[512], *err = NULL;
		snprintf(path, sizeof path, "%s/filters/%s.rules", root, rules[i]);
		struct rules *r = rules_load(path, &err);
		char what[128];
		snprintf(what, sizeof what, "filters/%s.rules loads", rules[i]);
		CHECK(r != NULL, what);
		if (r == NULL) {
			printf("# %s\n", err);
			free(err);
			continue;
		}
		for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
			struct tmsg t;
			tmsg_file(&t, files[k]);
			struct decision pre = eval(r, &t, 1), post = eval(r, &t, 0);
			total++;
			if (!pre.need_body) {
				decided++;
				if (!same_decision(&pre, &post)) {
					ok = 0;
					printf("# %s on %s: %s vs %s\n", rules[i], files[k], pre.action,
					       post.action);
				}
			}
			ok &= !post.need_body;
			decision_free(&pre);
			decision_free(&post);
			tmsg_free(&t);
		}
		rules_free(r);
	}
	printf("# %d of %d decided before the download\n", decided, total);
	CHECK(ok, "filters/*.rules: decisions before the download equal those after");
	CHECK(decided > total / 2, "filters/*.rules: most decided before the download");
}

static void test_example_files(void)
{
	char path[512], *err = NULL;
	snprintf(path, sizeof path, "%s/filters/example.rules", root);
	struct rules *r = rules_load(path, &err);
	CHECK(r != NULL, "example.rules loads");
	if (r == NULL) {
		free(err);
		return;
	}
	setenv("HOME", "/home/tester", 1);
	struct { const char *file; const char *action; int line; } cases[] = {
		{ "spam.eml", "discard", 7 },
		{ "crlf.eml", "discard", 8 },
		{ "list-debian.eml", "maildir /home/tester/Mail/lists/debian-user", 14 },
		{ "invoice-zh.eml", "mbox /home/tester/Mail/invoices", 17 },
		{ "invoice-en.eml", "mbox /home/tester/Mail/invoices", 17 },
		{ "invoice-zh-body.eml", "mbox /home/tester/Mail/invoices", 18 },
		{ "boss.eml", "forward alice.mobile@example.net, add-header X-Popsift-Account: work, default", 0 },
		{ "newsletter-corp.eml", "add-header X-Popsift-Account: work, default", 0 },
		{ "plain.eml", "add-header X-Popsift-Account: work, default", 0 },
	};
	/* the paths expand at load time: load again with this HOME */
	rules_free(r);
	r = rules_load(path, &err);
	for (size_t i = 0; r && i < sizeof cases / sizeof cases[0]; i++) {
		struct tmsg t;
		tmsg_file(&t, cases[i].file);
		struct decision d = eval(r, &t, 0);
		char what[128], rule[600];
		snprintf(what, sizeof what, "example.rules: %s", cases[i].file);
		CHECK_STR(d.action, cases[i].action, what);
		snprintf(rule, sizeof rule, "%s:%d", path, cases[i].line);
		snprintf(what, sizeof what, "example.rules: %s decided by line %d", cases[i].file,
			 cases[i].line);
		CHECK_STR(d.rule, cases[i].line ? rule : NULL, what);
		decision_free(&d);
		tmsg_free(&t);
	}
	struct tmsg t;
	tmsg_file(&t, "plain.eml");
	t.v.size = 20u << 20;
	struct decision d = eval(r, &t, 1);
	CHECK(!d.need_body && d.skip, "example.rules: 20M skipped before the download");
	decision_free(&d);
	tmsg_free(&t);
	rules_free(r);
}

static void test_prefetch_useful(void)
{
	struct { const char *text; int want; } cases[] = {
		{ "match size > 10M skip", 1 },
		{ "match header X exists discard", 1 },
		{ "match all mbox /m/a", 0 },
		{ "match body =~ /x/ mbox /m/a\nmatch size > 1M skip", 0 },
		{ "match header A =~ /x/ or body =~ /y/ mbox /m/a\nmatch size > 1M skip", 0 },
		{ "match size > 1M and body =~ /x/ mbox /m/a\nmatch size > 1M skip", 1 },
		{ "match header A exists mbox /m/a continue\nmatch size > 1M skip", 1 },
		{ "match body =~ /x/ discard", 0 },
		{ "match header A exists and body =~ /x/ discard", 0 },
		{ "match not body =~ /x/ or size > 1M skip", 1 },
		/* after a filter the headers are not TOP's */
		{ "match all filter cat\nmatch header X exists discard", 0 },
		{ "match header A exists filter cat\nmatch header X exists discard", 0 },
		{ "match pipe \"true\" discard", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rules *r = parse(cases[i].text);
		char what[160];
		snprintf(what, sizeof what, "prefetch useful: %s", cases[i].text);
		for (char *c = what; *c; c++)
			*c = *c == '\n' ? '|' : *c;
		CHECK(r && rules_prefetch_useful(r) == cases[i].want, what);
		rules_free(r);
	}
}


/* ---- filter and pipe ---- */

static const char *fmsg = "From: a@example.org\nSubject: hello\n\nhello body\n";

static const char *const filter_errors[][2] = {
	{ "match all filter", "t.rules:1:17: expected a command after filter" },
	{ "match all filter returns", "t.rules:1:25: expected exit codes after returns (0, 0,1 or 0-2)" },
	{ "match all filter returns 3-1 cat", "t.rules:1:26: bad exit codes \"3-1\" (expected 0, 0,1 or 0-2)" },
	{ "match all filter returns 0,x cat", "t.rules:1:26: bad exit codes \"0,x\" (expected 0, 0,1 or 0-2)" },
	{ "match all filter returns 256 cat", "t.rules:1:26: bad exit codes \"256\" (expected 0, 0,1 or 0-2)" },
	{ "match pipe discard", "t.rules:1:19: expected an action" },
	{ "match pipe", "t.rules:1:11: expected a command after pipe: pipe \"spamc -c\"" },
	{ "match pipe \"\" discard", "t.rules:1:12: expected a command after pipe: pipe \"spamc -c\"" },
	{ "match pipe \"cat $1\" discard", "t.rules:1:12: pipe: no expansions in the command" },
	{ "match pipe \"cat\" returns discard", "t.rules:1:26: bad exit codes \"discard\" (expected 0, 0,1 or 0-2)" },
	{ "match pipe \"cat\" =~ nope discard", "t.rules:1:21: expected a /regex/" },
	{ "match header S =~ /(x)/ filter sh -c \"echo $1\"",
	  "t.rules:1:32: mda: $1 inside the script of sh -c would let a sender run commands; pass it "
	  "as an argument after the script and quote it there: mda sh -c '... \"$$1\" ...' sh $1" },
};

static void test_filter_parse(void)
{
	for (size_t i = 0; i < sizeof filter_errors / sizeof filter_errors[0]; i++) {
		char what[200];
		snprintf(what, sizeof what, "parse: %s", filter_errors[i][0]);
		CHECK_STR(perr(filter_errors[i][0]), filter_errors[i][1], what);
	}
	struct rules *r = parse("match pipe \"spamc -c\" returns 1,3-5 =~ /^[0-9]/ and header X exists "
				"filter returns 0-2 bogofilter -p\n"
				"match pipe \"bogofilter -e\" discard\n");
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (r != NULL)
		rules_dump(r, out);
	fclose(out);
	CHECK_STR(buf, "t.rules:1: match header \"X\" exists and pipe \"spamc -c\" returns 1,3-5 =~ /^[0-9]/ "
		  "filter returns 0-2 bogofilter -p\n"
		  "t.rules:2: match pipe \"bogofilter -e\" returns 0 discard\n", "dump: filter and pipe");
	free(buf);
	rules_free(r);
}

/* One evaluation with a timeout; the action text or the error. */
static char *filter_of(const char *rules, const char *msg, int timeout)
{
	struct tmsg t;
	tmsg_str(&t, msg);
	t.v.timeout = timeout;
	static char out[1024];
	struct rules *r = parse(rules);
	struct decision d = eval(r, &t, 0);
	snprintf(out, sizeof out, "%s", d.error ? d.error : d.action ? d.action : "(null)");
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
	return out;
}

static void test_filter_eval(void)
{
	CHECK_STR(filter_of("match all filter sed s/hello/bye/\n"
			    "match header Subject =~ /^bye$/ and body =~ /^bye body/ mbox /m/b\n"
			    "match all mbox /m/a", fmsg, 0),
		  "filter sed s/hello/bye/, mbox /m/b", "filter: later rules see its output");
	CHECK_STR(filter_of("match all filter sed -e \"1i X-Spam-Flag: YES\"\n"
			    "match header X-Spam-Flag =~ /YES/ mbox /m/spam", fmsg, 0),
		  "filter sed -e 1i X-Spam-Flag: YES, mbox /m/spam", "filter: a new header is seen");
	CHECK_STR(filter_of("match header Subject =~ /(hel)lo/ filter sed s/$1/x/\n"
			    "match header Subject =~ /^xlo$/ mbox /m/a", fmsg, 0),
		  "filter sed s/hel/x/, mbox /m/a", "filter: captures in its words");
	CHECK_STR(filter_of("match all filter sh -c \"cat; exit 1\"\nmatch all mbox /m/a", fmsg, 0),
		  "t.rules:1: filter sh exited with 1", "filter: exit 1 is a failure");
	CHECK_STR(filter_of("match all filter returns 0-1 sh -c \"cat; exit 1\"\nmatch all mbox /m/a",
			    fmsg, 0), "filter sh -c cat; exit 1, mbox /m/a", "filter: returns 0-1");
	CHECK_STR(filter_of("match all filter true\nmatch all mbox /m/a", fmsg, 0),
		  "t.rules:1: filter true gave no output", "filter: no output is a failure");
	CHECK_STR(filter_of("match all filter yes\nmatch all mbox /m/a", fmsg, 0),
		  "t.rules:1: filter yes: output larger than 1048670 bytes", "filter: output bounded");
	CHECK_STR(filter_of("match all filter sleep 30\nmatch all mbox /m/a", fmsg, 1),
		  "t.rules:1: filter sleep: timed out", "filter: timeout");
	CHECK_STR(filter_of("match all filter sh -c \"cat; sleep 30 &\"\nmatch all mbox /m/a", fmsg, 1),
		  "t.rules:1: filter sh: timed out", "filter: a child holding the output open");
	CHECK_STR(filter_of("match all filter sh -c \"cat; exec >&-; sleep 30\"\nmatch all mbox /m/a",
			    fmsg, 1), "t.rules:1: filter sh: timed out", "filter: output closed, no exit");
	CHECK_STR(filter_of("match all filter sh -c \"cat; kill -9 $$$$\"\nmatch all mbox /m/a",
			    fmsg, 5), "t.rules:1: filter sh: killed by signal 9", "filter: killed");
	CHECK_STR(filter_of("match all filter /nonexistent/x\nmatch all mbox /m/a", fmsg, 0),
		  "t.rules:1: filter /nonexistent/x exited with 127 (not found?)", "filter: not found");
	CHECK_STR(filter_of("match pipe \"grep -q hello\" mbox /m/a\nmatch all mbox /m/b", fmsg, 0),
		  "mbox /m/a", "pipe: exit 0 is true");
	CHECK_STR(filter_of("match pipe \"grep -q nope\" mbox /m/a\nmatch all mbox /m/b", fmsg, 0),
		  "mbox /m/b", "pipe: exit 1 is false");
	CHECK_STR(filter_of("match pipe \"grep -q nope\" returns 1 mbox /m/a", fmsg, 0),
		  "mbox /m/a", "pipe: returns 1");
	CHECK_STR(filter_of("match pipe \"echo 4.2/5.0\" =~ /^([0-9.]+)\\// mbox /m/$1", fmsg, 0),
		  "mbox /m/4.2", "pipe: regex on the output, captures");
	CHECK_STR(filter_of("match pipe \"echo 4.2/5.0\" !~ /^4/ mbox /m/a\nmatch all mbox /m/b",
			    fmsg, 0), "mbox /m/b", "pipe: !~");
	CHECK_STR(filter_of("match pipe \"sleep 30\" mbox /m/a", fmsg, 1),
		  "t.rules:1: pipe sleep: timed out", "pipe: timeout is an error");
	CHECK_STR(filter_of("match pipe \"sed s/hello/bye/\" mbox /m/a\n"
			    "match header Subject =~ /hello/ mbox /m/b", fmsg, 0),
		  "mbox /m/a", "pipe: true");

	struct tmsg t;
	tmsg_str(&t, fmsg);
	struct rules *r = parse("match all filter cat\nmatch all mbox /m/a");
	struct decision d = eval(r, &t, 1);
	CHECK(d.need_body && d.error == NULL, "filter before the download: needs the body");
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
}

/* A cat-like filter writes while it reads: 20 MB through it without a
 * deadlock on full pipes, byte for byte. */
static void test_filter_big(void)
{
	size_t n = 20u << 20;
	char *big = malloc(n + 1);
	memcpy(big, fmsg, strlen(fmsg));
	for (size_t i = strlen(fmsg); i < n; i++)
		big[i] = i % 77 == 76 ? '\n' : 'a' + (char)(i % 26);
	big[n - 1] = '\n';
	struct tmsg t;
	tmsg_text(&t, big, n);
	t.v.timeout = 120;
	struct rules *r = parse("match all filter cat\nmatch all mbox /m/a");
	struct decision d = eval(r, &t, 0);
	CHECK_STR(d.error ? d.error : d.action, "filter cat, mbox /m/a", "20 MB through cat");
	size_t len = 0;
	char *err = NULL;
	const char *p = msg_map(&t.m, &len, &err);
	CHECK(p != NULL && len == n && memcmp(p, big, n) == 0, "20 MB through cat: same bytes");
	free(err);
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
	/* one that answers without reading: the rest of the input is dropped */
	tmsg_text(&t, big, n);
	r = parse("match all filter sh -c \"echo A: b; echo; echo short\"\n"
		  "match header A =~ /^b$/ and body =~ /^short$/ and size < 100 mbox /m/a");
	d = eval(r, &t, 0);
	CHECK_STR(d.error ? d.error : d.action, "filter sh -c echo A: b; echo; echo short, mbox /m/a",
		  "a filter that does not read its input");
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
	free(big);
}

/* Every example in filters/ loads (the list above is for the TOP checks). */
static void test_all_filter_files(void)
{
	char pat[512];
	glob_t g;
	snprintf(pat, sizeof pat, "%s/filters/*.rules", root);
	CHECK(glob(pat, 0, NULL, &g) == 0 && g.gl_pathc >= 9, "filters/*.rules found");
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char *err = NULL, what[600];
		struct rules *r = rules_load(g.gl_pathv[i], &err);
		snprintf(what, sizeof what, "%s loads%s%s", g.gl_pathv[i], err ? ": " : "",
			 err ? err : "");
		CHECK(r != NULL, what);
		free(err);
		rules_free(r);
	}
	globfree(&g);
}

/* ---- bad input ---- */

static void test_match_limit(void)
{
	char body[200];
	strcpy(body, "Subject: x\n\n");
	memset(body + 12, 'a', 60);
	strcpy(body + 72, "b\n");
	struct tmsg t;
	tmsg_str(&t, body);
	struct rules *r = parse("match all add-header \"X-A: 1\" continue\n"
				"match body =~ /^(a|aa)+$/ discard\nmatch all mbox /m/a");
	clock_t t0 = clock();
	struct decision d;
	int rc = r ? rules_eval(r, &t.v, &d) : 0;
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("# match limit reached in %.2f s\n", secs);
	CHECK(rc == -1, "match limit: rules_eval fails");
	CHECK_STR(d.error, "t.rules:2: match limit exceeded", "match limit: error names file:line");
	CHECK(!d.matched && d.ndests == 0 && d.nadd == 0 && d.action == NULL,
	      "match limit: no partial decision");
	CHECK(secs < 10, "match limit: gives up in time");
	decision_free(&d);
	rules_free(r);
	tmsg_free(&t);
	tmsg_str(&t, "Subject: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx!\n\n");
	CHECK_STR(action_of("match header Subject =~ /^(x+x+)+$/ discard", &t),
		  "t.rules:1: match limit exceeded", "match limit: in a header");
	tmsg_free(&t);
}

static void test_dump(void)
{
	struct rules *r = parse(
		"match body =~ /a\\/b/i and header \"Subject\" =~ /x/ or not size > 10M mbox \"/m/a b\"\n"
		"match (all or headers !~ /^X/) and header X-A exists and account work \\\n"
		"   mda /bin/x -a \"q\\\"r\" continue\n"
		"match rawbody =~ /\\xff/ or duplicate add-header \"X-A: $$ ${header:From}\" keep\n"
		"match size <= 2K forward a@b c@d\n");
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (r != NULL)
		rules_dump(r, out);
	fclose(out);
	CHECK_STR(buf,
		  "t.rules:1: match not size > 10M or header \"Subject\" =~ /x/ and body =~ /a\\/b/i mbox \"/m/a b\"\n"
		  "t.rules:2: match (all or headers !~ /^X/) and header \"X-A\" exists and account \"work\" "
		  "mda /bin/x -a \"q\\\"r\" continue\n"
		  "t.rules:4: match duplicate or rawbody =~ /\\xff/ add-header \"X-A: $$ ${header:From}\" keep\n"
		  "t.rules:5: match size <= 2K forward a@b c@d\n",
		  "dump: the rules as understood");
	CHECK(rules_count(r) == 4, "rules_count");
	free(buf);
	rules_free(r);
}

static void test_fast_path(void)
{
	/* a plain value takes a shortcut past the decoder: same result */
	const char *m = "A:  plain  value \nB: =?us-ascii?Q?plain__value?=  \n\n";
	CHECK_STR(action_msg("match header A =~ /^plain  value$/ and "
			     "header B =~ /^plain  value$/ mbox /m/a", m), "mbox /m/a",
		  "plain and encoded values decode alike");
}

/* A broken encoded word or an unknown charset never stops the rules. */
static void test_bad_encoding(void)
{
	const char *m = "S: =?x-unknown?Q?abc?= d\nT: =?UTF-8?B?!!!?= e\nU: =?UTF-8?Q?unterminated\n\n";
	CHECK_STR(action_msg("match header S =~ /abc d/ mbox /m/a", m), "mbox /m/a",
		  "unknown charset: matched as written");
	CHECK_STR(action_msg("match header T =~ /^=\\?UTF-8\\?B\\?!!!\\?= e$/ mbox /m/a", m),
		  "mbox /m/a", "malformed encoded word: matched raw");
	CHECK_STR(action_msg("match header U =~ /unterminated/ mbox /m/a", m), "mbox /m/a",
		  "unterminated encoded word: matched raw");
	CHECK_STR(action_msg("match headers =~ /^T: =/ mbox /m/a", m), "mbox /m/a",
		  "headers: malformed word kept");
	CHECK_STR(action_msg("match header S exists mbox /m/a", ""), "default", "empty message");
	CHECK_STR(action_msg("match body !~ /x/ mbox /m/a", ""), "mbox /m/a", "empty message, body");
	CHECK_STR(action_msg("match headers =~ /x/ mbox /m/a", "no header here\n\nbody\n"),
		  "default", "a header section without fields");
}

int main(void)
{
	if (access("filters", F_OK) != 0 && access("../../filters", F_OK) == 0)
		root = "../..";
	signal(SIGPIPE, SIG_IGN);   /* as popsift's main does: a filter may stop reading */
	test_parse_errors();
	test_load_errors();
	test_header();
	test_header_files();
	test_body();
	test_size_account();
	test_duplicate();
	test_logic();
	test_actions();
	test_expansions();
	test_prefetch();
	test_identity();
	test_example_files();
	test_prefetch_useful();
	test_match_limit();
	test_dump();
	test_fast_path();
	test_bad_encoding();
	test_filter_parse();
	test_filter_eval();
	test_filter_big();
	test_all_filter_files();
	return UNIT_DONE();
}
