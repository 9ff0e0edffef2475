/* smtp-dialog.c — follow the SMTP dialogue through libcurl's debug
 * callback.  libcurl tells the caller only a result code and the last
 * reply code; the outcome of a message needs more: which recipients
 * were refused and in what words.  Every command is recorded with the
 * reply it got, and at -v the dialogue is logged as "C:"/"S:" lines
 * with AUTH secrets masked.  The message itself is never traced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "popsift.h"
#include "smtp.h"

void dialog_reset(struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++) {
		free(d->ex[i].arg);
		free(d->ex[i].text);
	}
	d->nex = 0;
	free(d->part);
	d->part = NULL;
	d->plen = d->pcap = d->plines = 0;
	d->poverlong = 0;
	d->in_auth = 0;
	d->data_started = 0;
	d->next = 0;
}

void dialog_free(struct dialog *d)
{
	dialog_reset(d);
	free(d->ex);
	d->ex = NULL;
	d->cap = 0;
}

static struct exch *push(struct dialog *d, const char *cmd, size_t len)
{
	if (d->nex == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->ex = xrealloc(d->ex, d->cap * sizeof *d->ex);
	}
	struct exch *e = &d->ex[d->nex++];
	memset(e, 0, sizeof *e);
	if (len >= sizeof e->cmd)
		len = sizeof e->cmd - 1;
	for (size_t i = 0; i < len; i++)
		e->cmd[i] = (char)(cmd[i] >= 'a' && cmd[i] <= 'z' ? cmd[i] - 32 : cmd[i]);
	return e;
}

static size_t trim(const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	return n;
}

/* "RCPT TO:<a@b> ..." -> "a@b" */
static char *angle_arg(const char *p, size_t n)
{
	const char *lt = memchr(p, '<', n);
	const char *gt = lt ? memchr(lt, '>', n - (size_t)(lt - p)) : NULL;
	return gt ? xstrndup(lt + 1, (size_t)(gt - lt - 1)) : NULL;
}

/* AUTH PLAIN <initial response>, then SASL responses until the server
 * says something other than 334: all of it is password or digest. */
static void auth_line(struct dialog *d, const char *p, size_t n, size_t verb)
{
	char line[80];
	if (d->in_auth) {
		push(d, "AUTH", 4);
		log_proto(d->acct, 'C', "****", 4);
		return;
	}
	d->in_auth = 1;
	push(d, "AUTH", 4);
	size_t m = verb + 1;
	while (m < n && p[m] != ' ')
		m++;
	snprintf(line, sizeof line, "%.*s%s", (int)(m < 40 ? m : 40), p, m < n ? " ****" : "");
	log_proto(d->acct, 'C', line, strlen(line));
}

void dialog_command(struct dialog *d, const char *p, size_t n)
{
	size_t verb = 0;
	while (verb < n && p[verb] != ' ' && p[verb] != ':')
		verb++;
	if (d->in_auth || (verb == 4 && strncasecmp(p, "AUTH", 4) == 0)) {
		auth_line(d, p, n, verb);
		return;
	}
	struct exch *e = push(d, p, verb);
	if (!strcmp(e->cmd, "RCPT") || !strcmp(e->cmd, "MAIL"))
		e->arg = angle_arg(p, n);
	log_proto(d->acct, 'C', p, n);
}

/* The end of the data.  LMTP (RFC 2033 4.2) answers it once for every
 * recipient its RCPT accepted, in RCPT order: one "." each, named by
 * that recipient, so the replies fall to them as any others do. */
void dialog_dot(struct dialog *d, int lmtp)
{
	if (!lmtp) {
		dialog_command(d, ".", 1);
		return;
	}
	log_proto(d->acct, 'C', ".", 1);
	for (size_t i = 0, n = d->nex; i < n; i++) {
		if (strcmp(d->ex[i].cmd, "RCPT") != 0 || d->ex[i].code / 100 != 2)
			continue;
		char *who = d->ex[i].arg ? xstrdup(d->ex[i].arg) : NULL;
		push(d, ".", 1)->arg = who;   /* push may move d->ex */
	}
}

/* The greeting, awaited as if it answered a command. */
void dialog_greeting(struct dialog *d)
{
	push(d, "", 0);
}

/* Add a reply line's text to the reply being assembled, " "-joined, in
 * amortised linear time and within DIALOG_MAX_*. */
static void part_add(struct dialog *d, const char *s, size_t n)
{
	size_t need = d->plen + (d->plen > 0) + n + 1;
	if (d->plines >= DIALOG_MAX_LINES || need > DIALOG_MAX_BYTES) {
		d->poverlong = 1;
		return;
	}
	d->plines++;
	if (need > d->pcap) {
		d->pcap = need * 2 < DIALOG_MAX_BYTES ? need * 2 : DIALOG_MAX_BYTES;
		d->part = xrealloc(d->part, d->pcap);
	}
	if (d->plen > 0)
		d->part[d->plen++] = ' ';
	memcpy(d->part + d->plen, s, n);
	d->plen += n;
	d->part[d->plen] = '\0';
}

/* A reply is complete at a line "NNN text" (not "NNN-text").  Replies
 * come in the order of the commands, pipelined or not: it answers the
 * first command still waiting; with none waiting it is the greeting or,
 * once DATA got 354, the answer to the end of the message. */
int dialog_reply(struct dialog *d, const char *p, size_t n)
{
	n = trim(p, n);
	log_proto(d->acct, 'S', p, n);
	size_t off = n >= 4 ? 4 : n;
	part_add(d, p + off, n - off);
	if (n >= 4 && p[3] == '-')
		return 0;
	int code = 0;
	for (size_t i = 0; i < 3 && i < n && p[i] >= '0' && p[i] <= '9'; i++)
		code = code * 10 + (p[i] - '0');
	if (d->poverlong)
		code = 0;   /* a reply without bounds is no reply */
	if (d->next >= d->nex && d->data_started)
		push(d, ".", 1);
	else if (d->next >= d->nex)
		push(d, "", 0);
	struct exch *e = &d->ex[d->next++];
	e->code = code;
	e->text = d->part ? d->part : xstrdup("");
	d->part = NULL;
	d->plen = d->pcap = d->plines = 0;
	d->poverlong = 0;
	if (!strcmp(e->cmd, "DATA") && code == 354)
		d->data_started = 1;
	else if (!strcmp(e->cmd, "."))
		d->data_started = 0;
	if (d->in_auth && code != 334)
		d->in_auth = 0;
	return 1;
}

/* libcurl's own notes: at -v the ones that tell whether a connection
 * was made or reused (that is the point of keeping one), the rest at -vv. */
static void text_line(struct dialog *d, const char *p, size_t n)
{
	static const char *const shown[] = { "Connected to", "Re-using", "Closing connection",
					     "Connection died", NULL };
	int show = log_level >= 2;
	for (int i = 0; !show && shown[i]; i++)
		show = n >= strlen(shown[i]) && strncmp(p, shown[i], strlen(shown[i])) == 0;
	if (show)
		log_proto(d->acct, '*', p, n);
}

int dialog_trace(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	(void)h;
	struct dialog *d = arg;
	if (type != CURLINFO_HEADER_OUT && type != CURLINFO_HEADER_IN && type != CURLINFO_TEXT)
		return 0;   /* the message itself: never traced */
	while (size > 0) {
		const char *nl = memchr(data, '\n', size);
		size_t len = nl ? (size_t)(nl - data) + 1 : size;
		size_t n = trim(data, len);
		if (type == CURLINFO_HEADER_OUT)
			dialog_command(d, data, n);
		else if (type == CURLINFO_HEADER_IN)
			dialog_reply(d, data, n);
		else
			text_line(d, data, n);
		data += len;
		size -= len;
	}
	return 0;
}

const struct exch *dialog_find(const struct dialog *d, const char *cmd)
{
	for (size_t i = d->nex; i-- > 0;)
		if (strcmp(d->ex[i].cmd, cmd) == 0)
			return &d->ex[i];
	return NULL;
}

size_t dialog_rcpts(const struct dialog *d, int accepted)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nex; i++)
		if (strcmp(d->ex[i].cmd, "RCPT") == 0 &&
		    (accepted ? d->ex[i].code / 100 == 2 : d->ex[i].code >= 300))
			n++;
	return n;
}

size_t dialog_pending(const struct dialog *d)
{
	return d->nex - d->next;
}

const struct exch *dialog_last(const struct dialog *d)
{
	return d->next > 0 ? &d->ex[d->next - 1] : NULL;
}

int dialog_ehlo_has(const struct dialog *d, const char *kw)
{
	const struct exch *e = dialog_find(d, "EHLO");
	if (e == NULL)
		e = dialog_find(d, "LHLO");
	size_t k = strlen(kw);
	for (const char *t = e && e->text ? e->text : ""; *t; t++)
		if ((t == e->text || t[-1] == ' ') && strncasecmp(t, kw, k) == 0 &&
		    (t[k] == '\0' || t[k] == ' '))
			return 1;
	return 0;
}
