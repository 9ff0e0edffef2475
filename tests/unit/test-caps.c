/* Unit tests: what a CAPA reply and a greeting say of a server (the
 * capability cache of issue 16, pop3_capa_line and pop3_greeting_ts). */
#include "unit.h"
#include "pop3.h"

static struct caps feed(const char *const *lines)
{
	struct caps k = { .known = 1 };
	for (int i = 0; lines[i]; i++)
		pop3_capa_line(&k, lines[i], strlen(lines[i]));
	return k;
}

static void capa(void)
{
	static const char *const dovecot[] = { "CAPA\r\n", "TOP\r\n", "UIDL\r\n", "RESP-CODES\r\n",
		"PIPELINING\r\n", "AUTH-RESP-CODE\r\n", "STLS\r\n", "USER\r\n",
		"SASL PLAIN LOGIN CRAM-MD5\r\n", NULL };
	struct caps k = feed(dovecot);
	CHECK(k.pipelining && k.user && k.uidl && k.top && k.stls, "Dovecot's CAPA");
	CHECK_STR(k.sasl, "PLAIN LOGIN CRAM-MD5", "its SASL mechanisms, without CRLF");

	static const char *const bare[] = { "USER", "UIDL", NULL };
	k = feed(bare);
	CHECK(!k.pipelining && k.user && !k.top && !k.stls && k.sasl[0] == '\0', "no PIPELINING");

	static const char *const tricky[] = { "pipelining", "USERNAME", "TOPX", "UIDL-X",
		"PIPELINING-NOT", "SASL", "EXPIRE NEVER", NULL };
	k = feed(tricky);
	CHECK(k.pipelining, "names are case-insensitive");
	CHECK(!k.user && !k.top && !k.uidl, "a longer word is another capability");
	CHECK(k.sasl[0] == '\0', "an empty SASL line offers nothing");

	static const char *const tab[] = { "SASL\tXOAUTH2  ", "PIPELINING 100", NULL };
	k = feed(tab);
	CHECK_STR(k.sasl, "XOAUTH2", "SASL after a tab, trailing blanks dropped");
	CHECK(k.pipelining, "a capability with an argument");
	CHECK(!k.split_login, "not Courier");

	static const char *const courier[] = { "PIPELINING", "IMPLEMENTATION Courier Mail Server",
		NULL };
	k = feed(courier);
	CHECK(k.pipelining && k.split_login, "Courier: PIPELINING, but not past the login");
}

static void greeting(void)
{
	const char *g = "+OK Dovecot ready. <6979.2.6b10399f.ACV9xQmz==@vm>";
	CHECK(pop3_greeting_ts(g, strlen(g)) == 1, "Dovecot's APOP timestamp");
	g = "+OK POP3 server ready";
	CHECK(pop3_greeting_ts(g, strlen(g)) == 0, "no timestamp");
	g = "+OK mail for <alice> at example.org";
	CHECK(pop3_greeting_ts(g, strlen(g)) == 0, "'<' without '@' after it");
	g = "+OK alice@example.org <1.2>";
	CHECK(pop3_greeting_ts(g, strlen(g)) == 0, "'@' only before the '<'");
	g = "+OK <1.2@host";
	CHECK(pop3_greeting_ts(g, strlen(g)) == 1, "unterminated: libcurl takes it, so do we");
	g = "+OK <1.2@h>";
	CHECK(pop3_greeting_ts(g, 6) == 0, "bounded by the length given");
}

int main(void)
{
	capa();
	greeting();
	return UNIT_DONE();
}
