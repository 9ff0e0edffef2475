/* Unit tests: the config parser, every error path naming file:line. */
#include <stdlib.h>
#include "unit.h"
#include "popsift.h"

static char *err;

static int parse(const char *text, struct config *cf)
{
	free(err);
	err = NULL;
	return conf_parse("cfg", text, cf, &err);
}

static void good(void)
{
	struct config cf;
	int rc = parse("# comment\n"
		       "defaults\n"
		       "tls starttls\n"
		       "keep yes\n"
		       "state /tmp/s.db\n"
		       "deliver mbox /tmp/in.mbox\n"
		       "\n"
		       "account work   # trailing comment\n"
		       "host pop.example.com\n"
		       "user alice\n"
		       "password \"se#cret \\\"q\\\"\"\n"
		       "auth cram-md5\n"
		       "timeout 5\n"
		       "\n"
		       "account home\n"
		       "host h\n"
		       "user bob\n"
		       "tls on\n"
		       "password_command pass show \"mail/home x\"\n"
		       "deliver maildir /tmp/md\n"
		       "deliver mda /usr/bin/procmail -d bob\n", &cf);
	CHECK(rc == 0, "valid config parses");
	if (rc != 0) {
		printf("# %s\n", err);
		return;
	}
	struct account *w = cf.accounts, *h = w->next;
	CHECK_STR(w->name, "work", "first account name");
	CHECK(w->tls == TLS_STARTTLS && w->port == 110, "tls inherited, port follows it");
	CHECK(w->keep == 1, "keep inherited");
	CHECK_STR(w->password, "se#cret \"q\"", "quoted password with # and escapes");
	CHECK(w->auth == AUTH_CRAM_MD5 && w->timeout == 5, "auth and timeout");
	CHECK(w->ndests == 1 && w->dests[0].kind == DEST_MBOX, "deliver inherited");
	CHECK_STR(cf.state, "/tmp/s.db", "state");
	CHECK(cf.has_password == 1, "literal password noticed");
	CHECK(h->tls == TLS_ON && h->port == 995, "own tls, POP3S port");
	CHECK(h->ndests == 2 && h->dests[0].kind == DEST_MAILDIR, "own deliver replaces inherited");
	CHECK(h->dests[1].kind == DEST_MDA && h->dests[1].argv[2] &&
	      !strcmp(h->dests[1].argv[2], "bob"), "mda argv split");
	CHECK_STR(h->password_command, "pass show \"mail/home x\"", "command keeps its quotes");
	conf_free(&cf);
}

static void bad(const char *text, const char *want, const char *what)
{
	struct config cf;
	int rc = parse(text, &cf);
	CHECK(rc < 0 && err && strstr(err, want) != NULL, what);
	if (rc == 0)
		conf_free(&cf);
	else if (!err || !strstr(err, want))
		printf("# got: %s\n", err ? err : "(none)");
}

static void errors(void)
{
	const char *acct = "account a\nhost h\nuser u\ndeliver mbox /x\n";
	char buf[512];
	bad("account a\nhost h\nfoo bar\n", "cfg:3: unknown key \"foo\"", "unknown key");
	bad("account a\ntls maybe\n", "cfg:2: tls must be", "bad tls value");
	bad("account a\nauth magic\n", "cfg:2: unknown auth", "bad auth");
	bad("account a\nport 99999\n", "cfg:2: port: expected a number", "bad port");
	bad("account a\nkeep perhaps\n", "cfg:2: expected yes or no", "bad bool");
	bad("account a\nuser u\ndeliver mbox /x\n", "cfg:1: account \"a\" has no host", "no host");
	bad("account a\nhost h\ndeliver mbox /x\n", "has no user", "no user");
	bad("account a\nhost h\nuser u\n", "no deliver line", "no deliver");
	bad("account a\nhost h\nuser u\ndeliver pigeon x\n", "cfg:4: deliver: unknown delivery", "bad deliver");
	bad("account a\nhost h\nuser u\ndeliver mbox\n", "cfg:4: deliver: \"mbox\" needs an argument", "deliver without path");
	bad("account a\nhost h\nuser u\ndeliver mbox /a /b\n", "takes one path", "two paths");
	bad("account a\nhost\n", "cfg:2: host needs a value", "empty value");
	bad("account a\npassword \"abc\n", "cfg:2: unterminated quote", "unterminated quote");
	bad("account a\npassword \"abc\" x\n", "text after the closing quote", "text after quote");
	bad("account\n", "bad account name", "account without name");
	bad("defaults x\n", "defaults takes no value", "defaults with value");
	snprintf(buf, sizeof buf, "%saccount a\nhost h\n", acct);
	bad(buf, "cfg:5: account \"a\" defined twice", "duplicate account");
	bad("defaults\nstate /a\nstate /b\n", "one state database", "two state files");
	snprintf(buf, sizeof buf, "%spassword x\npassword_command y\n", acct);
	bad(buf, "both password and password_command", "password and command");
}

/* A client id is OAuth2: `auth any` on that side becomes XOAUTH2, a
 * password_command (a token helper) keeps its side as it was. */
static void oauth_auth_default(void)
{
	struct config cf;
	int rc = parse("account a\nhost pop.example.com\nuser u\npassword_command echo x\n"
		       "deliver imap\nimap_provider gmail\nimap_user me@gmail.com\n"
		       "imap_oauth_client_id 123.apps.googleusercontent.com\n"
		       "oauth_client_id abc\noauth_token_url https://t.example/token\n", &cf);
	CHECK(rc == 0, "gmail IMAP side with a client id parses");
	if (rc == 0) {
		CHECK(cf.accounts->imap_auth == AUTH_XOAUTH2, "imap_auth any + client id is xoauth2");
		CHECK(cf.accounts->auth == AUTH_ANY, "a POP3 password_command keeps auth any");
		conf_free(&cf);
	}
}

int main(void)
{
	good();
	oauth_auth_default();
	errors();
	free(err);
	return UNIT_DONE();
}
