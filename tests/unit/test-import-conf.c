/* Unit tests: the mpop and getmail6 config converters (import-mpop.c,
 * import-getmail.c), getmail's INI files and Python tuples
 * (import-ini.c), and the helpers they share (import-util.c). */
#include <stdlib.h>
#include "unit.h"
#include "import.h"
#include "import-ini.h"
#include "popsift.h"

static char *err;

static int has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

struct conv {
	char *out, *sum;
	int   n, rc;
};

static void conv_free(struct conv *c)
{
	free(c->out);
	free(c->sum);
	free(err);
	err = NULL;
}

static struct conv mpop(const char *text)
{
	struct conv c = { 0 };
	size_t ol = 0, sl = 0;
	FILE *o = open_memstream(&c.out, &ol), *s = open_memstream(&c.sum, &sl);
	c.rc = mpop_convert("rc", text, o, s, &c.n, &err);
	fclose(o);
	fclose(s);
	return c;
}

static struct conv getmail(const char *a, const char *b)
{
	struct conv c = { 0 };
	size_t ol = 0, sl = 0;
	FILE *o = open_memstream(&c.out, &ol), *s = open_memstream(&c.sum, &sl);
	const char *files[] = { "getmailrc-a", "getmailrc" }, *texts[] = { a, b };
	c.rc = getmail_convert(files, texts, b ? 2 : 1, o, s, &c.n, &err);
	fclose(o);
	fclose(s);
	return c;
}

static void mpop_accounts(void)
{
	struct conv c = mpop("# comment\ndefaults\nkeep\ntls on\ndelivery mda procmail -d bob\n"
			     "account one\nhost h1\nuser u1\npassword \"a \\\"b\\\" #c\"\n"
			     "account two : one\nhost h2\ntls_starttls off\nkeep off\n"
			     "passwordeval pass show x\npassword\nskipsize 2m\nkillsize off\n"
			     "account three\nhost h3\nuser me\neval echo tls off\nproxy_host tor\n"
			     "delivery exchange /x\nfilter\nauth scram-sha-256\nfrobnicate 1\n");
	CHECK(c.rc == 0 && c.n == 3, "mpop: three accounts");
	CHECK(has(c.out, "account one\nhost h1\nuser u1\npassword \"a \\\"b\\\" #c\"\n"
		  "tls starttls\nkeep yes\ndeliver mda procmail -d bob\n"),
	      "mpop: defaults, quoted password, tls on = STARTTLS");
	CHECK(has(c.out, "account two\nhost h2\nuser u1\npassword_command pass show x\n"
		  "tls on\nkeep no\nmax_size 2m\n"),
	      "mpop: inherited user, empty password unsets, passwordeval, tls_starttls off");
	CHECK(has(c.out, "could not convert: eval echo tls off: not run"), "mpop: eval not run");
	CHECK(has(c.out, "proxy socks5h://tor:1080\n"), "mpop: proxy_host, SOCKS 5 at 1080");
	CHECK(!has(c.out, "could not convert: proxy_host"), "mpop: proxy converted");
	CHECK(has(c.out, "could not convert: delivery exchange /x: no equivalent"),
	      "mpop: exchange said");
	CHECK(has(c.out, "could not convert: auth scram-sha-256"), "mpop: unknown auth said");
	CHECK(has(c.out, "could not convert: frobnicate 1: not understood (rc:26)"),
	      "mpop: unknown key with file:line");
	CHECK(!has(c.out, "filter"), "mpop: an empty filter is no filter");
	CHECK(has(c.sum, "rc: 3 accounts converted; could not convert 4 settings:"),
	      "mpop: summary");
	CHECK(has(c.sum, "popsift import mpop-uidls ~/.mpop_uidls/me_at_h3 three\n"),
	      "mpop: the UIDL import for each account");
	conv_free(&c);
}

static void mpop_errors(void)
{
	struct conv c = mpop("host h\n");
	CHECK(c.rc == -1 && has(err, "rc:1: first command must be account"),
	      "mpop: a command before any account");
	conv_free(&c);
	c = mpop("account a\nhost h\naccount a\n");
	CHECK(c.rc == -1 && has(err, "rc:3: account defined twice"), "mpop: account twice");
	conv_free(&c);
	c = mpop("account a\npassword \"open\n");
	CHECK(c.rc == -1 && has(err, "rc:2: unterminated quote"), "mpop: open quote");
	conv_free(&c);
	c = mpop("account b : a\n");
	CHECK(c.rc == -1 && has(err, "no earlier account a"), "mpop: unknown parent");
	conv_free(&c);
	c = mpop("account a\nhost h\nkeep\nkillsize 5k\n");
	CHECK(c.rc == 0 && has(c.out, "keep yes\nmax_size 5k\n") && !has(c.out, "discard"),
	      "mpop: killsize with keep only skips: max_size");
	conv_free(&c);
	c = mpop("account a\nhost h\nuser u\ndelivery mda cat > \"/tmp/x #1\"\n");
	CHECK(c.rc == 0 && has(c.out, "could not convert: delivery mda"),
	      "mpop: a command a config line cannot hold is said, not cut");
	conv_free(&c);
}

static void ini(void)
{
	struct ini in = { 0 };
	int line = 0;
	CHECK(ini_parse("f", "; c\n[retriever]\nType = X\nserver: h\n"
			"password_command = ('a',\n  \"b c\")\n# x\n[options]\ndelete = On\n",
			&in, &err) == 0, "ini: parses");
	CHECK_STR(ini_get(&in, "retriever", "type", &line), "X", "ini: keys case-insensitive");
	CHECK(line == 3, "ini: line numbers");
	CHECK_STR(ini_get(&in, "retriever", "server", NULL), "h", "ini: key: value");
	CHECK_STR(ini_get(&in, "retriever", "password_command", NULL), "('a',\n\"b c\")",
		  "ini: continuation line");
	CHECK(ini_bool(ini_get(&in, "options", "delete", NULL), 0) == 1, "ini: boolean");
	CHECK(ini_get(&in, "options", "server", NULL) == NULL, "ini: per section");
	char **t = py_tuple(ini_get(&in, "retriever", "password_command", NULL));
	CHECK(t && t[0] && t[1] && !t[2] && !strcmp(t[1], "b c"), "tuple: two strings");
	free_argv(t);
	t = py_tuple("('x\\'y',)");
	CHECK(t && t[0] && !strcmp(t[0], "x'y") && !t[1], "tuple: one, escaped quote");
	free_argv(t);
	CHECK(py_tuple("('a' 'b')") == NULL && py_tuple("(a)") == NULL &&
	      py_tuple("('a'") == NULL, "tuple: not tuples of strings");
	ini_free(&in);
	CHECK(ini_parse("f", "a = b\n", &in, &err) == -1 && has(err, "f:1: a key before"),
	      "ini: key before a section");
	free(err);
	err = NULL;
	ini_free(&in);
}

static void getmail_files(void)
{
	struct conv c = getmail(
		"[retriever]\ntype = BrokenUIDLPOP3SSLRetriever\nserver = h\nusername = u@d\n"
		"password_command = ('/bin/pw', 'a b')\nuse_apop = true\n"
		"[destination]\ntype = MultiDestination\n"
		"destinations = ('~/Mail/', '~/mbox', '[l]', '[s]')\n"
		"[l]\ntype = MDA_lmtp\nhost = /run/lmtp\noverride = me\n"
		"[s]\ntype = MultiSorter\n"
		"[options]\nmax_message_size = 100\ndelete_bigger_than = 5\nmessage_log = ~/l\n"
		"use_netrc = true\n"
		"[filter-1]\ntype = Filter_external\npath = /bin/f\narguments = ('%(local)',)\n",
		"[retriever]\ntype = SimplePOP3Retriever\nserver = h2\nusername = u@d\n"
		"[destination]\ntype = MDA_external\npath = /bin/m\n"
		"arguments = ('-f', '%(sender)', '100%', 'x y')\n");
	CHECK(c.rc == 0 && c.n == 2, "getmail: two files, two accounts");
	CHECK(has(c.out, "account a\nhost h\nuser u@d\npassword_command /bin/pw 'a b'\ntls on\n"
		  "auth apop\nkeep yes\nmax_size 100\n"),
	      "getmail: name from the file, password_command tuple, SSL, apop");
	CHECK(has(c.out, "deliver maildir ~/Mail/\ndeliver mbox ~/mbox\n"
		  "deliver lmtp unix:/run/lmtp me\n"), "getmail: MultiDestination, MDA_lmtp");
	CHECK(has(c.out, "could not convert: [s] type MultiSorter"), "getmail: sorter said");
	CHECK(has(c.out, "could not convert: delete_bigger_than 5"), "getmail: delete_bigger_than");
	CHECK(has(c.out, "could not convert: [filter-1] Filter_external"), "getmail: filter said");
	CHECK(has(c.out, "note: BrokenUIDLPOP3SSLRetriever"), "getmail: broken UIDL noted");
	CHECK(has(c.out, "could not convert: [options] use_netrc = true: not understood"),
	      "getmail: an unknown option said");
	CHECK(has(c.out, "account u\nhost h2\n") && has(c.out, "tls starttls\n"),
	      "getmail: getmailrc named for the user; plain POP3 asks for STLS");
	CHECK(has(c.out, "deliver mda /bin/m -f %F 100%% 'x y'\n"),
	      "getmail: %(sender) is %F, a percent sign %%, words quoted");
	CHECK(has(c.out, "note: no password"), "getmail: no password noted");
	conv_free(&c);
	c = getmail("[retriever]\ntype = SimpleIMAPRetriever\n", NULL);
	CHECK(c.rc == 0 && c.n == 0 && has(c.out, "could not convert: [retriever] type "
					       "SimpleIMAPRetriever"), "getmail: IMAP said");
	conv_free(&c);
	c = getmail("[retriever\n", NULL);
	CHECK(c.rc == -1 && has(err, "getmailrc-a:1:"), "getmail: syntax error");
	conv_free(&c);
}

static void helpers(void)
{
	char *q = import_shell_quote("it's");
	CHECK_STR(q, "'it'\\''s'", "quote: a single quote");
	free(q);
	q = import_shell_quote("/a/b-c.d");
	CHECK_STR(q, "/a/b-c.d", "quote: a plain word stays");
	free(q);
	CHECK(import_shell_quote("a #b") == NULL, "quote: \" #\" cannot be written");
	q = import_sh_command("gpg -d f | head -1");
	CHECK_STR(q, "/bin/sh -c 'gpg -d f | head -1'", "sh: a pipe gets a shell");
	free(q);
	q = import_sh_command("pass show x");
	CHECK_STR(q, "pass show x", "sh: a plain command none");
	free(q);
	char *args[] = { "a b", "c", NULL };
	char **back = NULL;
	q = import_join_argv(args);
	back = split_args(q, &err);
	CHECK(back && !strcmp(back[0], "a b") && !strcmp(back[1], "c") && !back[2],
	      "join: split_args reads back the words");
	free_argv(back);
	free(q);
}

int main(void)
{
	mpop_accounts();
	mpop_errors();
	ini();
	getmail_files();
	helpers();
	return UNIT_DONE();
}
