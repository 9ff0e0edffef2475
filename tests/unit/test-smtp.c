/* Unit tests: SMTP replies matched to commands (smtp-dialog.c) — in
 * lockstep, pipelined, multi-line, through libcurl's debug stream — and
 * the EHLO keyword check that decides pipelining. */
#include <stdlib.h>

#include "unit.h"
#include "smtp.h"

static void cmd(struct dialog *d, const char *s) { dialog_command(d, s, strlen(s)); }
static int reply(struct dialog *d, const char *s) { return dialog_reply(d, s, strlen(s)); }

static void pipelined(void)
{
	struct dialog d = { .acct = "t" };
	cmd(&d, "MAIL FROM:<a@x>");
	cmd(&d, "RCPT TO:<b@y>");
	cmd(&d, "RCPT TO:<c@z>");
	cmd(&d, "DATA");
	CHECK(dialog_pending(&d) == 4, "four commands wait");
	CHECK(reply(&d, "250 2.1.0 ok\r\n") == 1, "a one-line reply completes");
	CHECK(reply(&d, "550-5.1.1 no such\r\n") == 0, "a continuation line does not");
	CHECK(reply(&d, "550 5.1.1 user\r\n") == 1, "its last line does");
	reply(&d, "250 ok\r\n");
	reply(&d, "354 go\r\n");
	CHECK(dialog_pending(&d) == 0, "every command answered");
	CHECK(d.ex[0].code == 250 && !strcmp(d.ex[0].arg, "a@x"), "MAIL got the first reply");
	CHECK(d.ex[1].code == 550 && !strcmp(d.ex[1].arg, "b@y"), "first RCPT got the second");
	CHECK_STR(d.ex[1].text, "5.1.1 no such 5.1.1 user", "multi-line text joined");
	CHECK(d.ex[2].code == 250 && d.ex[3].code == 354, "in order to the end");
	CHECK(dialog_rcpts(&d, 1) == 1 && dialog_rcpts(&d, 0) == 1, "one RCPT accepted, one refused");
	cmd(&d, ".");
	reply(&d, "250 queued\r\n");
	CHECK(dialog_find(&d, ".") && dialog_find(&d, ".")->code == 250, "the dot answered");
	CHECK(dialog_last(&d) == dialog_find(&d, "."), "last answered is the dot");
	dialog_reset(&d);
	CHECK(d.nex == 0 && dialog_pending(&d) == 0, "reset empties it");
	dialog_free(&d);
}

static void garbled_and_greeting(void)
{
	struct dialog d = { .acct = "t" };
	CHECK(reply(&d, "220 hi\r\n") == 1 && d.nex == 1 && d.ex[0].cmd[0] == '\0',
	      "an unasked reply is the greeting");
	cmd(&d, "MAIL FROM:<a@x>");
	reply(&d, "hello there\r\n");
	CHECK(d.ex[1].code == 0, "a reply without a code has code 0");
	dialog_free(&d);
}

/* libcurl's stream: it never shows the dot, the reply after 354 answers it */
static void curl_stream(void)
{
	struct dialog d = { .acct = "t" };
	char greet[] = "220 mx\r\n", ehlo[] = "EHLO me\r\n";
	char caps[] = "250-mx\r\n250-SIZE 100\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
	char auth[] = "AUTH PLAIN c2VjcmV0\r\n", ok[] = "235 ok\r\n";
	dialog_trace(NULL, CURLINFO_HEADER_IN, greet, strlen(greet), &d);
	dialog_trace(NULL, CURLINFO_HEADER_OUT, ehlo, strlen(ehlo), &d);
	dialog_trace(NULL, CURLINFO_HEADER_IN, caps, strlen(caps), &d);
	dialog_trace(NULL, CURLINFO_HEADER_OUT, auth, strlen(auth), &d);
	dialog_trace(NULL, CURLINFO_HEADER_IN, ok, strlen(ok), &d);
	CHECK(dialog_find(&d, "EHLO")->code == 250, "EHLO answered");
	CHECK(dialog_find(&d, "AUTH")->code == 235, "AUTH answered");
	CHECK(dialog_ehlo_has(&d, "PIPELINING"), "PIPELINING offered");
	CHECK(dialog_ehlo_has(&d, "pipelining"), "any case");
	CHECK(dialog_ehlo_has(&d, "SIZE"), "a keyword with a parameter");
	CHECK(!dialog_ehlo_has(&d, "PIPE"), "not a prefix of a keyword");
	CHECK(!dialog_ehlo_has(&d, "CHUNKING"), "not one it lacks");
	char data[] = "DATA\r\n", go[] = "354 go\r\n", done[] = "250 queued\r\n";
	dialog_trace(NULL, CURLINFO_HEADER_OUT, data, strlen(data), &d);
	dialog_trace(NULL, CURLINFO_HEADER_IN, go, strlen(go), &d);
	dialog_trace(NULL, CURLINFO_HEADER_IN, done, strlen(done), &d);
	CHECK(dialog_find(&d, ".") && dialog_find(&d, ".")->code == 250,
	      "the reply after 354 answers the end of the data");
	dialog_free(&d);
}

/* A server that sends continuation lines without end: the reply is
 * assembled in linear time, capped, and a bad reply (code 0: deferred). */
static void endless_reply(void)
{
	struct dialog d = { .acct = "t" };
	char line[100];
	memset(line, 'x', sizeof line);
	memcpy(line, "250-", 4);
	memcpy(line + sizeof line - 2, "\r\n", 2);
	cmd(&d, "EHLO me");
	int done = 0;
	for (int i = 0; i < 5000; i++)
		done |= dialog_reply(&d, line, sizeof line);
	CHECK(!done && dialog_pending(&d) == 1, "5000 continuation lines complete nothing");
	CHECK(d.plen <= DIALOG_MAX_BYTES, "the reply being assembled stays within its bound");
	CHECK(reply(&d, "250 end\r\n") == 1, "the last line completes it");
	CHECK(d.ex[0].code == 0, "an overlong reply is a bad reply (code 0)");
	CHECK(strlen(d.ex[0].text) < DIALOG_MAX_BYTES, "its text is cut at the bound");
	cmd(&d, "MAIL FROM:<a@x>");
	reply(&d, "250-a\r\n");
	reply(&d, "250 b\r\n");
	CHECK(d.ex[1].code == 250, "the next reply is judged afresh");
	CHECK_STR(d.ex[1].text, "a b", "and joined as before");
	for (unsigned i = 0; i < DIALOG_MAX_LINES + 1; i++)
		reply(&d, "451-s\r\n");
	cmd(&d, "RCPT TO:<b@y>");
	reply(&d, "451 x\r\n");
	CHECK(d.ex[2].code == 0, "more than DIALOG_MAX_LINES short lines: a bad reply too");
	dialog_free(&d);
}

int main(void)
{
	endless_reply();
	pipelined();
	garbled_and_greeting();
	curl_stream();
	return UNIT_DONE();
}
