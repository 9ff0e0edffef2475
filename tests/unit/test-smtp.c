/* Unit tests: SMTP replies matched to commands (smtp-dialog.c) — in
 * lockstep, pipelined, multi-line, through libcurl's debug stream — the
 * EHLO keyword check that decides pipelining, and the data's line ends
 * and dot-stuffing (smtp-tx.c's stuffer) across chunk boundaries; LMTP's
 * reply per recipient to the end of the data, through the dialog, a
 * whole smtp_tx() on a socket and smtp-job.c's judgement. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "deliver.h"
#include "msg.h"
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

/* The data through the stuffer in three chunks cut at a and b. */
static size_t stuffed(const char *in, size_t a, size_t b, char *out)
{
	struct stuffer st;
	size_t n = strlen(in), o = 0;
	stuffer_start(&st);
	o += stuffer_put(&st, in, a, out + o);
	o += stuffer_put(&st, in + a, b - a, out + o);
	o += stuffer_put(&st, in + b, n - b, out + o);
	o += stuffer_end(&st, out + o);
	out[o] = '\0';
	return o;
}

/* Every cut, including those between CR and LF and between a line's
 * start and its dot, gives the one right wire form. */
static void stuff_case(const char *in, const char *want, const char *what)
{
	size_t n = strlen(in);
	char out[256], first[256];
	int same = 1, room = 1;
	stuffed(in, 0, 0, first);
	for (size_t a = 0; a <= n; a++)
		for (size_t b = a; b <= n; b++) {
			size_t o = stuffed(in, a, b, out);
			same &= strcmp(out, first) == 0;
			room &= o <= 3 * n + 5;
		}
	CHECK_STR(first, want, what);
	CHECK(same, "the same output wherever the chunks are cut");
	CHECK(room, "within the room the callers reserve");
}

/* No lone CR or LF, and the only CRLF.CRLF is the end. */
static void stuff_wire_ok(void)
{
	static const char alphabet[] = "\r\n.a";
	char in[8], out[64];
	int ok = 1;
	for (int code = 0; code < 4 * 4 * 4 * 4 * 4 * 4; code++) {
		int c = code;
		for (int i = 0; i < 6; i++, c /= 4)
			in[i] = alphabet[c % 4];
		in[6] = '\0';
		for (size_t a = 0; a <= 6; a++) {
			size_t o = stuffed(in, a, a, out);
			for (size_t i = 0; i < o; i++) {
				if (out[i] == '\r' && (i + 1 == o || out[i + 1] != '\n'))
					ok = 0;
				if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
					ok = 0;
			}
			char *end = strstr(out, "\r\n.\r\n");
			if (!(end == out + o - 5 || (end == NULL && !strcmp(out, ".\r\n"))))
				ok = 0;
		}
	}
	CHECK(ok, "every 6-byte mix of CR, LF, dot and text: CRLF only, one end");
}

static void stuffing(void)
{
	stuff_case("", ".\r\n", "empty data: the end only");
	stuff_case("a\nb", "a\r\nb\r\n.\r\n", "LF becomes CRLF, a last line gets its end");
	stuff_case("a\r\nb\r\n", "a\r\nb\r\n.\r\n", "CRLF stays CRLF");
	stuff_case("a\rb\r", "a\r\nb\r\n.\r\n", "a lone CR becomes CRLF");
	stuff_case("a\r\r\nb\n\rc", "a\r\n\r\nb\r\n\r\nc\r\n.\r\n",
		   "CR CR LF and LF CR: two line ends each");
	stuff_case(".a\n..b\nc.d\n", "..a\r\n...b\r\nc.d\r\n.\r\n",
		   "a dot at a line start doubled, elsewhere not");
	stuff_case("x\n.\ny", "x\r\n..\r\ny\r\n.\r\n", "\\n.\\n does not end the data");
	stuff_case("x\r\n.\ry", "x\r\n..\r\ny\r\n.\r\n", "\\r\\n.\\r does not end the data");
	stuff_case("x\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n", "\\n.\\r\\n does not end the data");
	stuff_case("x\r.\r\ny", "x\r\n..\r\ny\r\n.\r\n", "\\r.\\r\\n does not end the data");
	stuff_case("x\r.", "x\r\n..\r\n.\r\n", "a dot after a lone CR at the very end");
	stuff_wire_ok();
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

/* MAIL, RCPT a b c, DATA answered with rcpt (b refused), then the dot. */
static void lmtp_envelope(struct dialog *d, const char *b_reply)
{
	dialog_reset(d);
	cmd(d, "MAIL FROM:<s@x>");
	cmd(d, "RCPT TO:<a@x>");
	cmd(d, "RCPT TO:<b@x>");
	cmd(d, "RCPT TO:<c@x>");
	cmd(d, "DATA");
	reply(d, "250 ok\r\n");
	reply(d, "250 ok\r\n");
	reply(d, b_reply);
	reply(d, "250 ok\r\n");
	reply(d, "354 go\r\n");
	dialog_dot(d, 1);
}

static int judged(const struct dialog *d, int partial_ok, struct outcome *o)
{
	struct verdict v = { .acct = "t", .where = "lmtp", .done = "delivered to", .lmtp = 1,
			     .partial_ok = partial_ok };
	struct tx_end end = { .data_out = 1 };
	free(o->err);
	memset(o, 0, sizeof *o);
	return smtp_judge(&v, d, &end, NULL, o);
}

static void lmtp_dots(void)
{
	struct dialog d = { .acct = "t" };
	struct outcome o = { 0 };
	lmtp_envelope(&d, "550 5.1.1 no such user\r\n");
	CHECK(dialog_pending(&d) == 2, "the end of the data awaits a reply per accepted recipient");
	reply(&d, "250 2.0.0 <a@x> saved\r\n");
	CHECK(dialog_pending(&d) == 1, "the first reply answers one of them");
	reply(&d, "452 4.2.2 <c@x> over quota\r\n");
	CHECK(d.nex == 7 && d.ex[5].arg && !strcmp(d.ex[5].arg, "a@x") && d.ex[5].code == 250,
	      "the first for the first accepted");
	CHECK(d.nex == 7 && d.ex[6].arg && !strcmp(d.ex[6].arg, "c@x") && d.ex[6].code == 452,
	      "the second for the next accepted");
	CHECK(judged(&d, 1, &o) < 0 && !o.rejected && o.fail_code == EX_TEMPFAIL,
	      "a 4xx for one recipient defers the message");
	CHECK(o.err && strstr(o.err, "a@x will get it again") != NULL, "and says who will get it twice");

	lmtp_envelope(&d, "250 ok\r\n");
	reply(&d, "250 a\r\n");
	reply(&d, "250 b\r\n");
	reply(&d, "250 c\r\n");
	CHECK(judged(&d, 0, &o) == 0, "2xx for every recipient: delivered");

	lmtp_envelope(&d, "250 ok\r\n");
	reply(&d, "250 a\r\n");
	reply(&d, "552 5.2.2 b full\r\n");
	reply(&d, "250 c\r\n");
	CHECK(judged(&d, 0, &o) < 0 && o.rejected, "5xx for some, on_partial keep: rejected");
	CHECK(judged(&d, 1, &o) == 0, "5xx for some, on_partial accept: delivered");

	lmtp_envelope(&d, "250 ok\r\n");
	reply(&d, "552 5.2.2 a full\r\n");
	reply(&d, "554 5.6.0 b bad\r\n");
	reply(&d, "552 5.2.2 c full\r\n");
	CHECK(judged(&d, 1, &o) < 0 && o.rejected && o.fail_code == EX_DATAERR,
	      "5xx for every recipient: rejected");

	lmtp_envelope(&d, "250 ok\r\n");
	reply(&d, "250 a\r\n");
	CHECK(judged(&d, 1, &o) < 0 && !o.rejected, "no reply for some (a drop): deferred");
	free(o.err);
	dialog_free(&d);
}

/* A whole LMTP transaction through smtp_tx() on a socket whose other end
 * has already said everything (replies, then maybe its end). */
static int lmtp_tx(const char *server, int hang_up, struct dialog *d, struct tx_end *end,
		   char **err, char *seen, size_t seen_cap)
{
	static struct link l;
	static struct dialog spare = { .acct = "t" };
	char *rcpt[] = { "a@x", "b@x", NULL };
	char body[] = "Subject: x\n\n.dot\n";
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -2;
	if (write(sv[1], server, strlen(server)) < 0)
		return -2;
	if (hang_up)
		shutdown(sv[1], SHUT_WR);
	l.c = (struct conn){ .raw = 1, .sock = sv[0], .acct = "t", .timeout_ms = 10000 };
	l.d = d;
	l.spare = &spare;
	l.ahead = NULL;
	l.lmtp = l.pipelining = 1;
	l.broken = 0;
	l.ilen = l.olen = 0;
	struct reader rd = { .pre = body, .prelen = strlen(body), .m = &(struct msg){ .fd = -1 } };
	struct tx_msg m = { .from = "s@x", .rcpt = rcpt, .fill = reader_fill, .arg = &rd };
	dialog_reset(d);
	int rc = smtp_tx(&l, &m, NULL, end, err);
	conn_close(&l.c);
	ssize_t n = read(sv[1], seen, seen_cap - 1);
	seen[n > 0 ? n : 0] = '\0';
	close(sv[1]);
	free(l.out);
	l.out = NULL;
	l.ocap = 0;
	dialog_free(&spare);
	return rc;
}

static void lmtp_transaction(void)
{
	struct dialog d = { .acct = "t" };
	struct tx_end end;
	struct outcome o = { 0 };
	char *err = NULL, seen[512];
	struct verdict v = { .acct = "t", .where = "lmtp", .done = "delivered to", .lmtp = 1 };
	int rc = lmtp_tx("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 a@x saved\r\n"
			 "250 b@x saved\r\n", 0, &d, &end, &err, seen, sizeof seen);
	CHECK(rc == 0 && dialog_pending(&d) == 0, "smtp_tx reads both replies to the end of the data");
	CHECK_STR(seen, "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"
		  "Subject: x\r\n\r\n..dot\r\n.\r\n", "pipelined envelope, CRLF and dot-stuffed data");
	CHECK(smtp_judge(&v, &d, &end, err, &o) == 0, "both saved: delivered");

	rc = lmtp_tx("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 a@x saved\r\n", 1,
		     &d, &end, &err, seen, sizeof seen);
	CHECK(rc < 0 && end.data_out, "a drop after the first reply fails the transaction");
	CHECK(smtp_judge(&v, &d, &end, err, &o) < 0 && !o.rejected && o.err &&
	      strstr(o.err, "a@x will get it again"), "deferred, saying a@x has it already");
	free(o.err);
	free(err);
	dialog_free(&d);
}

int main(void)
{
	lmtp_dots();
	lmtp_transaction();
	endless_reply();
	pipelined();
	garbled_and_greeting();
	curl_stream();
	stuffing();
	return UNIT_DONE();
}
