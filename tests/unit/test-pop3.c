/* Unit tests: POP3 reply parsing (status, UIDL and LIST lines). */
#include "unit.h"
#include "pop3.h"

static void status(void)
{
	CHECK(pop3_status("+OK", 3) == 1, "bare +OK");
	CHECK(pop3_status("+OK 2 messages", 14) == 1, "+OK with text");
	CHECK(pop3_status("-ERR", 4) == 0, "bare -ERR");
	CHECK(pop3_status("-ERR [AUTH] no", 14) == 0, "-ERR with code");
	CHECK(pop3_status("+O", 2) == -1, "truncated +OK");
	CHECK(pop3_status("", 0) == -1, "empty line");
	CHECK(pop3_status("HELLO", 5) == -1, "garbage");
	CHECK(pop3_status("ok", 2) == -1, "lower case");
}

static void uidl(void)
{
	unsigned long n;
	const char *u;
	size_t ul;
	CHECK(pop3_parse_uidl("1 abc", 5, &n, &u, &ul) == 0 && n == 1 && ul == 3 &&
	      memcmp(u, "abc", 3) == 0, "simple UIDL line");
	CHECK(pop3_parse_uidl("12  x-y.z ", 10, &n, &u, &ul) == 0 && n == 12 && ul == 5,
	      "extra spaces tolerated");
	CHECK(pop3_parse_uidl("0 abc", 5, &n, &u, &ul) < 0, "message number 0");
	CHECK(pop3_parse_uidl("1", 1, &n, &u, &ul) < 0, "no uid");
	CHECK(pop3_parse_uidl("1 ", 2, &n, &u, &ul) < 0, "empty uid");
	CHECK(pop3_parse_uidl("x abc", 5, &n, &u, &ul) < 0, "no number");
	CHECK(pop3_parse_uidl("1 a b", 5, &n, &u, &ul) < 0, "two words");
	CHECK(pop3_parse_uidl("1 a\001b", 5, &n, &u, &ul) < 0, "control byte in uid");
	CHECK(pop3_parse_uidl("99999999999999999999999 a", 25, &n, &u, &ul) < 0, "overflow");
}

static void list(void)
{
	unsigned long n;
	unsigned long long sz;
	CHECK(pop3_parse_list("3 1200", 6, &n, &sz) == 0 && n == 3 && sz == 1200, "LIST line");
	CHECK(pop3_parse_list("3 1200 extra", 12, &n, &sz) == 0, "trailing text allowed");
	CHECK(pop3_parse_list("3", 1, &n, &sz) < 0, "no size");
	CHECK(pop3_parse_list("3 -1", 4, &n, &sz) < 0, "negative size");
	CHECK(pop3_parse_list("3 12x", 5, &n, &sz) < 0, "junk after size");
}

int main(void)
{
	status();
	uidl();
	list();
	return UNIT_DONE();
}
