/* smtp-tx.c — one mail transaction over a connection that libcurl
 * opened, secured, greeted and logged in on (CURLOPT_CONNECT_ONLY,
 * deliver-smtp.c).  libcurl's own SMTP transfer waits for every reply:
 * MAIL, RCPT, DATA and the final dot cost four round trips a message.
 * When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and
 * DATA go out in one write and the data with its dot in the next; when
 * the next message is already waiting, its MAIL, RCPTs and DATA ride
 * along with this one's dot (RFC 2920 allows the data to open a group),
 * so a steady stream costs one round trip a message.  Without PIPELINING
 * the commands go one at a time and the transaction stops at the first
 * answer that ends it.
 *
 * The bytes go through conn_send/conn_recv (curlconn.c), so TLS stays
 * libcurl's; no libcurl here.  Every command and reply is recorded in
 * the dialog (smtp-dialog.c), which is what deliver-smtp.c judges. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "popsift.h"
#include "smtp.h"

#define FLUSH_AT (64u << 10)   /* the data goes out in writes of about this much */

static int fail(struct link *l, char **err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct link *l, char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(*err);
	*err = xvasprintf(fmt, ap);
	va_end(ap);
	l->broken = 1;
	return -1;
}

static void reserve(struct link *l, size_t more)
{
	if (l->olen + more <= l->ocap)
		return;
	l->ocap = l->olen + more > 2 * l->ocap ? l->olen + more : 2 * l->ocap;
	l->out = xrealloc(l->out, l->ocap);
}

/* A command goes into the dialog (and the -v log) when it is queued. */
static void command(struct link *l, const char *verb, const char *arg)
{
	size_t n = strlen(verb) + (arg ? strlen(arg) + 3 : 0);
	reserve(l, n + 3);
	char *p = l->out + l->olen;
	int w = snprintf(p, n + 3, arg ? "%s<%s>\r\n" : "%s\r\n", verb, arg ? arg : "");
	dialog_command(l->d, p, (size_t)w - 2);
	l->olen += (size_t)w;
}

/* Sending waits for room only: conn_wait() would also wake for a reply
 * the server sent early, and spin while it does not read. */
static int room(struct link *l)
{
	struct pollfd p = { .fd = l->c.sock, .events = POLLOUT };
	int r;
	while ((r = poll(&p, 1, l->c.timeout_ms)) < 0 && errno == EINTR)
		;
	return r;
}

static int wait_for(struct link *l, int send, char **err)
{
	int w = send ? room(l) : conn_wait(&l->c, 0);
	if (w > 0)
		return 0;
	if (w == 0)
		return fail(l, err, "%s within %d s", send ? "the server took nothing" : "no reply",
			    l->c.timeout_ms / 1000);
	return fail(l, err, "%s", w == -2 ? "stopped by a signal" : strerror(errno));
}

static int flush(struct link *l, char **err)
{
	size_t off = 0;
	while (off < l->olen) {
		char *e = NULL;
		ssize_t n = conn_send(&l->c, l->out + off, l->olen - off, &e);
		if (n < 0) {
			fail(l, err, "%s", e ? e : "send failed");
			free(e);
			return -1;
		}
		off += (size_t)n;
		if (n > 0)
			continue;
		if (wait_for(l, 1, err) < 0)
			return -1;
	}
	l->olen = 0;
	return 0;
}

/* Replies come in the order of the commands: this message's first, then
 * the next one's envelope, sent ahead with this one's dot. */
static struct dialog *waiting(struct link *l)
{
	if (dialog_pending(l->d) > 0)
		return l->d;
	return l->ahead && dialog_pending(l->ahead) > 0 ? l->ahead : NULL;
}

/* Hand the complete lines in the buffer to the dialogs. */
static void take_lines(struct link *l)
{
	size_t used = 0;
	char *nl;
	struct dialog *d;
	while ((d = waiting(l)) != NULL && l->garbled[0] == '\0' &&
	       (nl = memchr(l->in + used, '\n', l->ilen - used)) != NULL) {
		size_t n = (size_t)(nl - (l->in + used)) + 1;
		if (dialog_reply(d, l->in + used, n) > 0) {
			const struct exch *e = dialog_last(d);
			int code = e->code;
			if (code < 200 || code > 599)
				snprintf(l->garbled, sizeof l->garbled, "%s with \"%.*s\"",
					 e->cmd[0] == '.' ? "the end of the message" : e->cmd,
					 (int)(n > 80 ? 80 : n - 1 - (n >= 2 && l->in[used + n - 2] == '\r')),
					 l->in + used);
			if (code == 421)
				l->broken = 1;   /* the server is closing the connection */
		}
		used += n;
	}
	memmove(l->in, l->in + used, l->ilen - used);
	l->ilen -= used;
}

/* Send what is queued and read until every command has its reply. */
static int settle(struct link *l, char **err)
{
	if (flush(l, err) < 0)
		return -1;
	for (;;) {
		take_lines(l);
		if (l->garbled[0])
			return fail(l, err, "the server answered %s, not an SMTP reply", l->garbled);
		if (dialog_pending(l->d) == 0)
			return 0;
		if (l->ilen == sizeof l->in)
			return fail(l, err, "a reply line longer than %zu bytes", sizeof l->in);
		char *e = NULL;
		ssize_t n = conn_recv(&l->c, l->in + l->ilen, sizeof l->in - l->ilen, &e);
		if (n < 0) {
			fail(l, err, "%s", n == -2 ? "the server closed the connection" :
			     e ? e : "receive failed");
			free(e);
			return -1;
		}
		l->ilen += (size_t)n;
		if (n > 0)
			continue;
		if (wait_for(l, 0, err) < 0)
			return -1;
	}
}

static int code_of(const struct link *l, const char *cmd)
{
	const struct exch *e = dialog_find(l->d, cmd);
	return e ? e->code : 0;
}

/* The recipients allow sending the data: some accepted, and either
 * none refused or refusals are accepted (on_partial accept). */
static int rcpts_allow(const struct link *l, int partial_ok, int *partial)
{
	size_t ok = dialog_rcpts(l->d, 1), bad = dialog_rcpts(l->d, 0);
	*partial = ok > 0 && bad > 0 && !partial_ok;
	return ok > 0 && (bad == 0 || partial_ok);
}

/* The transaction ended early: the next MAIL needs a clean slate. */
static int reset(struct link *l, char **err)
{
	if (code_of(l, "MAIL") / 100 != 2 || l->broken)
		return 0;
	command(l, "RSET", NULL);
	return settle(l, err) < 0 ? -1 : 0;
}

void stuffer_start(struct stuffer *s)
{
	s->bol = 1;
	s->cr = 0;
}

/* A lone CR must not reach the server (RFC 5321 2.3.8): some servers end
 * a line there, others do not, and the difference lets a message's
 * "\r.\r\n" end the data early for one of them (SMTP smuggling). */
size_t stuffer_put(struct stuffer *s, const char *p, size_t n, char *out)
{
	char *o = out;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (s->cr) {   /* the LF of a CRLF, or the one a lone CR lacks */
			s->cr = 0;
			s->bol = 1;
			*o++ = '\n';
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			*o++ = '\r';
			s->cr = 1;
			continue;
		}
		if (c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			s->bol = 1;
			continue;
		}
		if (s->bol && c == '.')
			*o++ = '.';
		s->bol = 0;
		*o++ = c;
	}
	return (size_t)(o - out);
}

size_t stuffer_end(struct stuffer *s, char *out)
{
	size_t n = 0;
	if (s->cr)
		out[n++] = '\n';
	else if (!s->bol)
		n += (size_t)sprintf(out, "\r\n");
	stuffer_start(s);
	return n + (size_t)sprintf(out + n, ".\r\n");
}

static void stuff(struct link *l, const char *p, size_t n)
{
	reserve(l, 3 * n);
	l->olen += stuffer_put(&l->st, p, n, l->out + l->olen);
}

/* MAIL, every RCPT and DATA, queued together (PIPELINING) into d. */
static void envelope(struct link *l, struct dialog *d, const struct tx_msg *m)
{
	struct dialog *cur = l->d;
	l->d = d;
	command(l, "MAIL FROM:", m->from);
	for (size_t i = 0; m->rcpt[i]; i++)
		command(l, "RCPT TO:", m->rcpt[i]);
	command(l, "DATA", NULL);
	l->d = cur;
}

static int send_data(struct link *l, const struct tx_msg *m, const struct tx_msg *next,
		     struct tx_end *end, char **err)
{
	stuffer_start(&l->st);
	end->data_out = 1;
	for (;;) {
		ssize_t n = m->fill(l->scratch, sizeof l->scratch, m->arg);
		if (n < 0) {   /* cannot finish: dropping the connection discards it */
			end->read_failed = 1;
			return fail(l, err, "reading the message back failed: %s", strerror(errno));
		}
		if (n == 0)
			break;
		stuff(l, l->scratch, (size_t)n);
		if (l->olen >= FLUSH_AT && flush(l, err) < 0)
			return -1;
	}
	reserve(l, 5);
	l->olen += stuffer_end(&l->st, l->out + l->olen);
	dialog_dot(l->d, l->lmtp);
	if (next && l->pipelining) {
		dialog_reset(l->spare);
		envelope(l, l->spare, next);
		l->ahead = l->spare;
	}
	return settle(l, err);
}

/* Between messages a kept connection has nothing to say: input now is
 * the server closing it (EOF, or a 421 before it hangs up).  TLS records
 * without data (session tickets) read as nothing. */
int smtp_alive(struct link *l)
{
	struct pollfd p = { .fd = l->c.sock, .events = POLLIN };
	if (l->broken || (l->c.curl == NULL && !l->c.raw))
		return 0;
	if (l->ahead)   /* mid-stream: its replies are expected */
		return 1;
	ssize_t n = 0;
	if (l->ilen == 0 && poll(&p, 1, 0) > 0) {
		char *e = NULL;
		n = conn_recv(&l->c, l->in, sizeof l->in, &e);
		free(e);
		if (n > 0)
			l->ilen = (size_t)n;
	}
	if (l->ilen > 0)   /* said after the last reply, with the next one on its way */
		log_proto(l->c.acct, 'S', l->in, l->ilen);
	else if (n == 0)
		return 1;
	l->broken = 1;
	return 0;
}

/* Without PIPELINING: 1 when the transaction goes on to DATA. */
static int lockstep(struct link *l, const struct tx_msg *m, struct tx_end *end, char **err)
{
	command(l, "MAIL FROM:", m->from);
	if (settle(l, err) < 0)
		return -1;
	if (code_of(l, "MAIL") / 100 != 2)
		return 0;
	for (size_t i = 0; m->rcpt[i]; i++) {
		command(l, "RCPT TO:", m->rcpt[i]);
		if (settle(l, err) < 0)
			return -1;
	}
	int partial;
	if (!rcpts_allow(l, m->partial_ok, &partial)) {
		end->aborted = partial;
		return reset(l, err);
	}
	command(l, "DATA", NULL);
	return 1;
}

int smtp_tx(struct link *l, const struct tx_msg *m, const struct tx_msg *next,
	    struct tx_end *end, char **err)
{
	memset(end, 0, sizeof *end);
	l->garbled[0] = '\0';
	if (l->ahead) {   /* the envelope went out with the last message's dot */
		l->spare = l->d;
		l->d = l->ahead;
		l->ahead = NULL;
	} else {
		dialog_reset(l->d);
		int r = 1;
		if (l->pipelining)
			envelope(l, l->d, m);
		else
			r = lockstep(l, m, end, err);
		if (r <= 0)
			return r;
	}
	if (settle(l, err) < 0)
		return -1;
	int partial;
	if (code_of(l, "DATA") != 354)
		return reset(l, err);
	if (!rcpts_allow(l, m->partial_ok, &partial)) {
		/* DATA was accepted: only a dropped connection keeps the
		 * message from the recipients that were accepted */
		end->aborted = 1;
		l->broken = 1;
		return 0;
	}
	return send_data(l, m, next, end, err);
}

/* A connection opened without libcurl (LMTP): the greeting, then LHLO
 * (or EHLO) with name.  0 when both were 2xx, with l->pipelining set;
 * -1 with *err otherwise. */
int smtp_greet(struct link *l, const char *name, char **err)
{
	const char *verb = l->lmtp ? "LHLO" : "EHLO";
	l->garbled[0] = '\0';
	dialog_reset(l->d);
	dialog_greeting(l->d);
	if (settle(l, err) < 0)
		return -1;
	const struct exch *e = dialog_last(l->d);
	if (e->code / 100 == 2) {
		char *line = xasprintf("%s %s", verb, name);
		command(l, line, NULL);
		free(line);
		if (settle(l, err) < 0)
			return -1;
		e = dialog_last(l->d);
	}
	if (e->code / 100 != 2)
		return fail(l, err, "%s: %d %s", e->cmd[0] ? verb : "the greeting", e->code,
			    e->text ? e->text : "");
	l->pipelining = dialog_ehlo_has(l->d, "PIPELINING");
	return 0;
}

void smtp_quit(struct link *l)
{
	if (l->ahead || !smtp_alive(l))
		return;   /* ahead: the server may be waiting for data, not a QUIT */
	char *err = NULL;
	int ms = l->c.timeout_ms;
	l->c.timeout_ms = ms < 5000 ? ms : 5000;   /* a polite goodbye, not a wait */
	command(l, "QUIT", NULL);
	settle(l, &err);
	l->c.timeout_ms = ms;
	free(err);
}
