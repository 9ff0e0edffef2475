/* fuzz-rules.c — libFuzzer target: the rules language (src/rules.h).
 * The input, NUL-terminated, is parsed as a rules file; when it parses,
 * it is dumped and evaluated against a small fixed message, first from
 * the headers alone (msg == NULL, as after TOP n 0) and then with the
 * whole message, and everything is freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "rules.h"

static const char message[] =
	"Return-Path: <alice@example.org>\n"
	"From: =?UTF-8?Q?Alice_M=C3=BCller?= <alice@example.org>\n"
	"To: bob@example.com\n"
	"Cc: list@lists.debian.org\n"
	"Subject: =?ISO-8859-1?Q?Rechnung_f=FCr?= invoice 42 [spam]\n"
	"Message-ID: <42@example.org>\n"
	"List-Id: Debian devel <debian-devel.lists.debian.org>\n"
	"X-Spam-Flag: YES\n"
	"X-Spam-Score: 7.5\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Invoice total: 100 EUR =E2=82=AC, please pay.\n"
	"--b1\n"
	"Content-Type: text/html; charset=iso-8859-1\n"
	"\n"
	"<p>Gr\xfc\xdf" "e</p>\n"
	"--b1--\n";

static FILE *devnull;
static int debug;          /* FUZZ_DEBUG=1: say why an input did not parse */
static int dup_answer;

static int is_dup(void *arg, const char *message_id)
{
	(void)arg;
	if (message_id == NULL)
		abort();
	(void)strlen(message_id);
	return dup_answer;
}

static void eval(struct rules *r, struct msgview *v)
{
	struct decision d;
	rules_eval(r, v, &d);
	decision_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (devnull == NULL) {
		devnull = fopen("/dev/null", "w");
		debug = getenv("FUZZ_DEBUG") != NULL;
	}
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	char *err = NULL;
	struct rules *r = rules_parse("fuzz.rules", text, &err);
	free(text);
	if (r == NULL) {
		if (debug)
			fprintf(stderr, "fuzz-rules: %s\n", err ? err : "(no message)");
		free(err);
		return 0;
	}
	free(err);
	if (devnull != NULL)
		rules_dump(r, devnull);
	(void)rules_count(r);
	(void)rules_prefetch_useful(r);

	struct msg m;
	char *merr = NULL;
	msg_init(&m);
	if (msg_append(&m, message, sizeof message - 1, &merr) < 0 ||
	    msg_finish(&m, &merr) < 0)
		abort();

	struct msgview v;
	memset(&v, 0, sizeof v);
	v.account = "work";
	v.hdr = msg_header(&m, &v.hdrlen);
	v.size = m.size;
	v.is_duplicate = is_dup;

	/* headers only, as before the download */
	v.msg = NULL;
	dup_answer = 0;
	eval(r, &v);
	/* the whole message; the duplicate lookup says yes, then fails */
	v.msg = &m;
	dup_answer = 1;
	eval(r, &v);
	dup_answer = -1;
	eval(r, &v);

	msg_free(&m);
	rules_free(r);
	return 0;
}
