/* Unit tests: POP3 reply parsing (status, UIDL, STAT and LIST lines) and
 * the bound on what a RETR payload may store (msg.h max). */
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "msg.h"
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
	/* a message without a UID is that message's problem, not the listing's */
	CHECK(pop3_parse_uidl("1", 1, &n, &u, &ul) == 1 && n == 1 && ul == 0, "no uid");
	CHECK(pop3_parse_uidl("3 ", 2, &n, &u, &ul) == 1 && n == 3 && ul == 0, "empty uid");
	CHECK(pop3_parse_uidl("7 \t ", 4, &n, &u, &ul) == 1 && n == 7 && ul == 0, "blank uid");
	CHECK(pop3_parse_uidl("0", 1, &n, &u, &ul) < 0, "number 0, no uid");
	CHECK(pop3_parse_uidl("", 0, &n, &u, &ul) < 0, "empty line");
	CHECK(pop3_parse_uidl(" abc", 4, &n, &u, &ul) < 0, "uid without a number");
	CHECK(pop3_parse_uidl("1x abc", 6, &n, &u, &ul) < 0, "junk after the number");
	CHECK(pop3_parse_uidl("1 \001", 3, &n, &u, &ul) < 0, "control byte as the uid");
	CHECK(pop3_parse_uidl("x abc", 5, &n, &u, &ul) < 0, "no number");
	CHECK(pop3_parse_uidl("1 a b", 5, &n, &u, &ul) < 0, "two words");
	CHECK(pop3_parse_uidl("1 a\001b", 5, &n, &u, &ul) < 0, "control byte in uid");
	CHECK(pop3_parse_uidl("99999999999999999999999 a", 25, &n, &u, &ul) < 0, "overflow");
}

static void stat_reply(void)
{
	unsigned long n;
	unsigned long long sz;
	CHECK(pop3_parse_stat("2 320", 5, &n, &sz) == 0 && n == 2 && sz == 320, "STAT reply");
	CHECK(pop3_parse_stat("0 0", 3, &n, &sz) == 0 && n == 0 && sz == 0, "empty maildrop");
	CHECK(pop3_parse_stat("20000 20561447 messages", 23, &n, &sz) == 0 && n == 20000,
	      "trailing text allowed");
	CHECK(pop3_parse_stat("2", 1, &n, &sz) < 0, "no size");
	CHECK(pop3_parse_stat("", 0, &n, &sz) < 0, "nothing");
	CHECK(pop3_parse_stat("two 320", 7, &n, &sz) < 0, "no count");
	CHECK(pop3_parse_stat("2 32x", 5, &n, &sz) < 0, "junk after size");
	CHECK(pop3_parse_stat("99999999999999999999999 1", 25, &n, &sz) < 0, "overflow");
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

static void feed(struct msg *m, const char *chunk, size_t n, size_t times)
{
	for (size_t i = 0; i < times; i++)
		msg_append(m, chunk, n, NULL);
}

/* A LIST size that lies low cannot make the stored message outgrow max. */
static void msg_bound(void)
{
	static char line[4096];
	memset(line, 'y', sizeof line - 1);
	line[sizeof line - 1] = '\n';
	const char hdr[] = "Subject: big\n\n";
	char tmpl[] = "/tmp/popsift-unit-XXXXXX";
	const char *dir = mkdtemp(tmpl);
	if (dir)
		setenv("TMPDIR", dir, 1);

	struct msg m;
	msg_init(&m);
	m.max = 10000;
	msg_append(&m, hdr, sizeof hdr - 1, NULL);
	feed(&m, line, sizeof line, 2);
	CHECK(!m.over && m.size == sizeof hdr - 1 + 2 * sizeof line, "under max: stored");
	feed(&m, line, sizeof line, 1000);
	size_t hl;
	const char *h = msg_header(&m, &hl);
	CHECK(m.over && m.fd < 0 && m.size <= m.max, "past max in memory: dropped, over set");
	CHECK(hl == sizeof hdr - 1 && memcmp(h, hdr, hl) == 0, "the header stays for matching");
	msg_finish(&m, NULL);
	msg_reset(&m);
	CHECK(!m.over && m.max == 10000 && m.size == 0, "reset clears over, keeps max");

	m.max = 3u << 20;   /* past the spill threshold: the temp file stops at max */
	msg_append(&m, hdr, sizeof hdr - 1, NULL);
	feed(&m, line, sizeof line, 700);
	CHECK(!m.over && m.fd >= 0 && m.size > (2u << 20), "spilled, under max");
	int fd = dup(m.fd);
	feed(&m, line, sizeof line, 100);
	off_t len = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	CHECK(m.over && m.fd < 0 && len >= 0 && (size_t)len <= m.max, "spill never past max");
	h = msg_header(&m, &hl);
	CHECK(hl == sizeof hdr - 1 && memcmp(h, hdr, hl) == 0 && m.size == hl,
	      "spilled: the header stays, the body goes");
	feed(&m, line, sizeof line, 10);
	CHECK(m.over && m.size == hl, "the rest is discarded");
	if (fd >= 0)
		close(fd);
	msg_reset(&m);

	m.max = 0;   /* no max_size: no bound */
	feed(&m, line, sizeof line, 1000);
	CHECK(!m.over && m.size == 1000 * sizeof line, "max 0: unbounded");
	msg_free(&m);
	if (dir)
		rmdir(dir);
}

int main(void)
{
	status();
	uidl();
	stat_reply();
	list();
	msg_bound();
	return UNIT_DONE();
}
