/* Unit tests: the migration parsers (.fetchmailrc words and conversion,
 * fetchmail's .fetchids, mpop's uidls file, getmail's oldmail file) and
 * the provider table.  The sample files are what fetchmail 6.4.37, mpop
 * 1.4.18 and getmail6 6.18.11 wrote against a test Dovecot. */
#include <stdlib.h>
#include "unit.h"
#include "import.h"
#include "popsift.h"
#include "provider.h"

static char *err;

static void reset_err(void)
{
	free(err);
	err = NULL;
}

static void lexer(void)
{
	struct fmtok *t;
	int rc = fm_lex("rc", "poll pop.x.org, with proto pop3: # comment 'q'\n"
			"user \"a b\" there; pass 'it''s' \"\\x41\\t\\101\\\\\"\n", &t, &err);
	CHECK(rc == 0, "lex: a valid file");
	if (rc != 0)
		return;
	CHECK_STR(t[0].s, "poll", "lex: first word");
	CHECK_STR(t[1].s, "pop.x.org", "lex: comma dropped");
	CHECK_STR(t[2].s, "with", "lex: noise words stay for the parser");
	CHECK_STR(t[4].s, "pop3", "lex: colon dropped");
	CHECK_STR(t[5].s, "user", "lex: comment to the end of the line");
	CHECK(t[5].line == 2, "lex: line numbers");
	CHECK_STR(t[6].s, "a b", "lex: double-quoted string with a blank");
	CHECK(t[6].quoted == 1 && t[5].quoted == 0, "lex: quoted flag");
	CHECK_STR(t[9].s, "it", "lex: single-quoted string");
	CHECK_STR(t[10].s, "s", "lex: adjacent quotes are two words");
	CHECK_STR(t[11].s, "A\tA\\", "lex: \\x41 \\t \\101 \\\\ escapes");
	CHECK(t[12].s == NULL, "lex: ends with a NULL word");
	fm_tokens_free(t);
	reset_err();
	CHECK(fm_lex("rc", "poll x\npass 'open\n", &t, &err) == -1, "lex: unterminated quote fails");
	CHECK_STR(err, "rc:2: unterminated 'string'", "lex: error names file:line");
	reset_err();
}

/* Convert text; return stdout's text (caller frees) and the summary. */
static char *convert(const char *text, char **summary, int *n, int *rc)
{
	char *out = NULL, *sum = NULL;
	size_t ol = 0, sl = 0;
	FILE *o = open_memstream(&out, &ol), *s = open_memstream(&sum, &sl);
	reset_err();
	*rc = fm_convert("rc", text, o, s, n, &err);
	fclose(o);
	fclose(s);
	*summary = sum;
	return out;
}

static int has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

static void convert_basic(void)
{
	char *sum;
	int n, rc;
	char *out = convert("set daemon 120\n"
			    "poll pop.example.com with proto pop3 port 995 uidl\n"
			    "  user 'x' there with password 'y#z \"q\"' is 'z' here options keep ssl\n"
			    "  sslcertck sslcertfile /etc/ca.pem\n", &sum, &n, &rc);
	CHECK(rc == 0 && n == 1, "convert: one account");
	CHECK(has(out, "defaults\ninterval 120\n"), "convert: set daemon -> interval");
	CHECK(has(out, "account x\nhost pop.example.com\nport 995\nuser x\n"), "convert: host, port, user");
	CHECK(has(out, "password \"y#z \\\"q\\\"\"\n"), "convert: password quoted for the config");
	CHECK(has(out, "tls on\ntls_ca_file /etc/ca.pem\n"), "convert: ssl -> tls on, sslcertfile");
	CHECK(has(out, "keep yes\n"), "convert: keep");
	CHECK(has(out, "deliver forward z@localhost\n"), "convert: SMTP to localhost for the local name");
	CHECK(has(sum, "1 account converted; everything converted"), "convert: clean summary");
	CHECK(has(sum, "popsift import fetchids ~/.fetchids"), "convert: points at the UIDL import");
	free(out);
	free(sum);
}

static void convert_lost(void)
{
	char *sum;
	int n, rc;
	char *out = convert("defaults limit 5000\n"
			    "poll a.org proto imap user u\n"
			    "poll b.org user v pass w fetchall no sslcertck\n"
			    "  mda \"/usr/bin/procmail -f %F -d %T\" is bob here\n"
			    "poll c.org user v is v pass w sslproto '' smtphost mx.c.org/2525 smtpaddress c.org\n"
			    "poll d.org user v here is 'rv' there mda \"cat >>/tmp/it's\"\n", &sum, &n, &rc);
	CHECK(rc == 0 && n == 3, "lost: three POP3 accounts, the IMAP one left out");
	CHECK(has(out, "# could not convert: poll a.org: proto imap"), "lost: IMAP poll said");
	CHECK(has(out, "max_size 5000\n") && !has(out, "limit 5000"),
	      "lost: limit (from defaults) -> max_size, not a rule");
	CHECK(has(out, "deliver mda /usr/bin/procmail -f %F -d bob\n"), "lost: %T expanded, %F kept");
	CHECK(has(out, "could not convert: fetchall"), "lost: fetchall");
	CHECK(has(out, "could not convert: no sslcertck"), "lost: no sslcertck");
	CHECK(has(out, "account v-c.org\n"), "lost: clashing account name gets the host");
	CHECK(has(out, "tls off\n"), "lost: sslproto '' -> tls off");
	CHECK(has(out, "deliver forward v@c.org\nsmtp_host mx.c.org\nsmtp_port 2525\n"),
	      "lost: smtphost/port and smtpaddress");
	CHECK(has(out, "account rv\nhost d.org\n") && has(out, "user rv\n"),
	      "lost: user NAME here is REMOTE there");
	CHECK(has(out, "deliver mda /bin/sh -c 'cat >>/tmp/it'\\''s'\n"),
	      "lost: shell command kept in sh -c, quote escaped");
	CHECK(has(out, "tls starttls\n") && has(out, "# note: no ssl"), "lost: no ssl -> starttls, noted");
	CHECK(has(sum, "could not convert 3 settings:"), "lost: summary counts");
	CHECK(has(sum, "  rc:2: poll a.org: proto imap"), "lost: summary names file:line");
	free(out);
	free(sum);
	out = convert("poll e.org user v is bob here mda \"procmail -f %F -d %T | tee 100%%\"\n",
		      &sum, &n, &rc);
	CHECK(has(out, "deliver mda /bin/sh -c 'procmail -f \"%F\" -d bob | tee 100%%'\n"),
	      "lost: %F quoted for the shell (it may be empty), %% kept");
	free(out);
	free(sum);
}

/* issue 17: fetchlimit, skip, passwordfile, mda already in sh -c */
static void convert_fixes(void)
{
	char *sum;
	int n, rc;
	char *out = convert("poll a.org user u pass p fetchlimit 50 limit 2000 nokeep\n"
			    "skip b.org user v passwordfile \"/home/v/pw file\" nokeep\n"
			    "  mda \"/bin/sh -c 'procmail -f %F -d %T'\" is bob here\n"
			    "poll c.org user w passwordfile /p/w mda \"procmail -f '%F' | cat\"\n",
			    &sum, &n, &rc);
	CHECK(rc == 0, "fix: converts");
	CHECK(has(out, "max_messages 50\n") && !has(out, "could not convert: fetchlimit"),
	      "fix: fetchlimit -> max_messages");
	CHECK(has(out, "max_size 2000\n") && !has(out, "match size"), "fix: limit -> max_size");
	CHECK(!has(out, "\naccount v\n") && has(out, "\n#~ account v\n#~ host b.org\n"),
	      "fix: a skip poll is commented out, not a live account");
	CHECK(has(out, "# skip b.org: fetchmail does not poll it"), "fix: skip says why");
	CHECK(has(sum, "(1 commented out: skip)"), "fix: summary counts the skip");
	CHECK(has(out, "#~ password_command cat -- '/home/v/pw file'\n"),
	      "fix: passwordfile -> password_command cat, quoted");
	CHECK(has(out, "password_command cat -- /p/w\n"), "fix: passwordfile plain path");
	CHECK(has(out, "#~ deliver mda /bin/sh -c 'procmail -f \"%F\" -d bob'\n"),
	      "fix: an mda in sh -c is not wrapped twice; %F kept");
	CHECK(has(out, "deliver mda /bin/sh -c 'procmail -f '\\''%F'\\'' | cat'\n"),
	      "fix: an already quoted %F is not quoted again");
	free(out);
	free(sum);
}

static void convert_errors(void)
{
	char *sum;
	int n, rc;
	char *out = convert("user x\n", &sum, &n, &rc);
	CHECK(rc == -1 && has(err, "rc:1:") && has(err, "expected poll"), "error: user outside poll");
	free(out);
	free(sum);
	out = convert("poll x user\n", &sum, &n, &rc);
	CHECK(rc == -1 && has(err, "\"user\" needs a value"), "error: missing value");
	free(out);
	free(sum);
	out = convert("poll x proto imap\n", &sum, &n, &rc);
	CHECK(rc == 0 && n == 0, "error: nothing convertible is not a syntax error");
	free(out);
	free(sum);
	reset_err();
}

static void fetchids(void)
{
	struct uidlist *l;
	const char *text = "alice@localhost 000000016b0586ce\n"
			   "alice@localhost 000000026b0586ce\n"
			   "bob@example.com@pop.example.com UID-7\r\n"
			   "alice@localhost 000000036b0586ce\n";
	CHECK(parse_fetchids(text, &l, &err) == 0, "fetchids: parses");
	CHECK(l && l->next && !l->next->next, "fetchids: two mailboxes");
	CHECK_STR(l->user, "alice", "fetchids: user");
	CHECK_STR(l->host, "localhost", "fetchids: host");
	CHECK(l->n == 3, "fetchids: three UIDLs of the first, in order");
	CHECK_STR(l->uidls[2], "000000036b0586ce", "fetchids: last UIDL");
	CHECK_STR(l->next->user, "bob@example.com", "fetchids: a user with an @");
	CHECK_STR(l->next->uidls[0], "UID-7", "fetchids: CR stripped");
	uidlists_free(l);
	CHECK(parse_fetchids("alice@localhost\n", &l, &err) == -1 && l == NULL, "fetchids: no UIDL fails");
	CHECK_STR(err, "line 1: expected \"user@host UIDL\"", "fetchids: error names the line");
	CHECK(parse_fetchids("", &l, &err) == 0 && l == NULL, "fetchids: empty file");
	reset_err();
}

static void mpop(void)
{
	struct uidlist *l;
	const char *text = "# This file was generated by mpop version 1.4.18.\n#\n"
			   " 3 127.0.0.1 alice\n000000016b0586ca\n#0002\n000000036b0586ca\n"
			   " 1 pop.example.com bob smith\nX\n";
	CHECK(parse_mpop_uidls(text, &l, &err) == 0, "mpop: parses");
	CHECK(l && l->n == 3 && l->next && l->next->n == 1, "mpop: two lists");
	CHECK_STR(l->host, "127.0.0.1", "mpop: host");
	CHECK_STR(l->uidls[1], "#0002", "mpop: a UIDL starting with # is not a comment");
	CHECK_STR(l->next->user, "bob smith", "mpop: the user is the rest of the line");
	uidlists_free(l);
	CHECK(parse_mpop_uidls(" 2 h u\nA\n", &l, &err) == -1, "mpop: truncated list fails");
	CHECK(parse_mpop_uidls("A\n", &l, &err) == -1, "mpop: UID without a list fails");
	CHECK_STR(err, "line 1: expected \" number-of-uids hostname user\"", "mpop: error line");
	reset_err();
}

static void getmail(void)
{
	struct uidlist *l;
	static const char data[] = "000000026b0586d3\0" "1795524307\n000000016b0586d3\0" "17955243\n";
	CHECK(parse_getmail_oldmail("/x/.getmail/oldmail-127.0.0.1-42051-alice", data,
				    sizeof data - 1, &l, &err) == 0, "getmail: parses");
	CHECK(l && l->n == 2 && !l->next, "getmail: one list of two");
	CHECK_STR(l->host, "127.0.0.1", "getmail: host from the file name");
	CHECK(l->port == 42051, "getmail: port from the file name");
	CHECK_STR(l->user, "alice", "getmail: user from the file name");
	CHECK_STR(l->raw, "127.0.0.1-42051-alice", "getmail: raw name kept");
	CHECK_STR(l->uidls[0], "000000026b0586d3", "getmail: UIDL before the NUL");
	CHECK(l->when[0] == 1795524307LL && l->when[1] == 17955243LL, "getmail: timestamps");
	uidlists_free(l);
	CHECK(parse_getmail_oldmail("oldmail-pop-mail.x.org-995-a-b", "", 0, &l, &err) == 0 &&
	      l && l->n == 0, "getmail: empty file, dashed host and user");
	CHECK_STR(l ? l->host : NULL, "pop-mail.x.org", "getmail: dashed host");
	CHECK_STR(l ? l->user : NULL, "a-b", "getmail: dashed user");
	uidlists_free(l);
	CHECK(parse_getmail_oldmail("mail-file", "", 0, &l, &err) == -1, "getmail: other name fails");
	CHECK(parse_getmail_oldmail("oldmail-h-1-u", "abc\n", 4, &l, &err) == -1,
	      "getmail: line without NUL fails");
	reset_err();
}

static void providers(void)
{
	const struct provider *p = provider_find("yeah.net");
	CHECK(p && !strcmp(p->name, "yeah"), "provider: found by domain");
	CHECK(provider_find("GMAIL") && provider_find("nosuch") == NULL, "provider: case, unknown");
	static const char *const names[] = { "gmail", "outlook", "office365", "yahoo", "icloud",
		"163", "126", "yeah", "qq", "sina", "sohu", "aliyun", NULL };
	int all = 1;
	for (int i = 0; names[i]; i++) {
		p = provider_find(names[i]);
		all &= p && p->login && p->smtp_host && (p->host == NULL || p->port == 995);
	}
	CHECK(all, "provider: every service listed, with login notes");
	struct account a = { .name = "a", .smtp_user = "u", .smtp_port = 25 };
	CHECK(provider_set(&a, "qq") == 0, "provider: set");
	a.keys_set = PRESET_PORT;
	a.port = 1995;
	CHECK(provider_apply(&a, &err) == 0, "provider: apply");
	CHECK_STR(a.host, "pop.qq.com", "provider: host filled");
	CHECK(a.port == 1995 && a.tls == TLS_ON, "provider: explicit port kept, tls filled");
	CHECK_STR(a.smtp_host, "smtp.qq.com", "provider: smtp filled with smtp_user");
	CHECK(a.smtp_port == 465 && a.smtp_tls == TLS_ON, "provider: smtp port and tls");
	free(a.host);
	free(a.smtp_host);
	struct account b = { .name = "b" };
	provider_set(&b, "icloud");
	CHECK(provider_apply(&b, &err) == -1 && has(err, "no POP3"), "provider: icloud has no POP3");
	reset_err();
}

int main(void)
{
	lexer();
	convert_basic();
	convert_lost();
	convert_fixes();
	convert_errors();
	fetchids();
	mpop();
	getmail();
	providers();
	free(err);
	return UNIT_DONE();
}
