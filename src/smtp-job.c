/* smtp-job.c — what `forward` (deliver-smtp.c) and `lmtp`
 * (deliver-lmtp.c) share about one message: its recipients as written,
 * its envelope sender's Return-Path, the bytes smtp-tx.c streams out of
 * it, and the judgement of the dialogue into the job's outcome.
 *
 * The judgement: 250 delivered; 4xx, a bad reply, a dropped connection
 * or a timeout "deferred" (retried next run); 5xx "rejected" (kept on the
 * server, not retried).  LMTP answers the end of the data once per
 * recipient (RFC 2033): delivered when every one is 2xx; any 4xx or a
 * missing reply defers the message — and those that said 2xx will get it
 * again (at-least-once), which the outcome says by name; 5xx for some and
 * 2xx for others is on_partial's to decide, as refused RCPTs are. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dqueue.h"
#include "mime.h"
#include "msg.h"
#include "smtp.h"

#define CHUNK (256u << 10)   /* a spilled message is read this much at a time */

/* ------------------------------------------------------------ envelope */

void smtp_rcpts_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

char **smtp_rcpts(char *const *argv, const char *what, char **err)
{
	size_t n = 0;
	while (argv && argv[n])
		n++;
	if (n == 0) {
		seterr(err, "%s: no address", what);
		return NULL;
	}
	char **v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		if (argv[i][0] == '\0' || strpbrk(argv[i], "\r\n<> \t")) {
			smtp_rcpts_free(v);
			seterr(err, "%s: \"%s\" is not a mail address", what, argv[i]);
			return NULL;
		}
		v[i] = xstrdup(argv[i]);
	}
	return v;
}

char *return_path(const struct msg *m)
{
	size_t hl;
	const char *hdr = msg_header(m, &hl);
	char *rp = mime_header_get(hdr, hl, "Return-Path", NULL);
	char *addr = rp ? mime_address(rp, strlen(rp)) : NULL;
	free(rp);
	return addr;
}

/* ------------------------------------------------------------ reading */

static int next_span(struct reader *r, const char **p, size_t *n)
{
	if (r->off < r->prelen) {
		*p = r->pre + r->off;
		*n = r->prelen - r->off;
		return 0;
	}
	size_t mo = r->off - r->prelen;
	if (r->m->fd < 0) {
		*p = r->m->mem + mo;
		*n = r->m->memlen > mo ? r->m->memlen - mo : 0;
		return 0;
	}
	if (mo >= r->m->size) {
		*n = 0;
		return 0;
	}
	if (mo < r->bufoff || mo >= r->bufoff + r->buflen) {
		ssize_t got;
		while ((got = pread(r->m->fd, r->buf, CHUNK, (off_t)mo)) < 0 && errno == EINTR)
			;
		if (got <= 0)
			return -1;
		r->bufoff = mo;
		r->buflen = (size_t)got;
	}
	*p = r->buf + (mo - r->bufoff);
	*n = r->bufoff + r->buflen - mo;
	return 0;
}

ssize_t reader_fill(char *out, size_t cap, void *arg)
{
	struct reader *r = arg;
	size_t o = 0;
	while (o < cap) {
		const char *p;
		size_t n;
		if (next_span(r, &p, &n) < 0)
			return -1;
		if (n == 0)
			break;
		if (n > cap - o)
			n = cap - o;
		memcpy(out + o, p, n);
		o += n;
		r->off += n;
	}
	return (ssize_t)o;
}

void reader_start(struct reader *r, const struct job *j)
{
	char *buf = r->buf;
	memset(r, 0, sizeof *r);
	r->buf = buf;
	if (j->m->fd >= 0 && r->buf == NULL)
		r->buf = xmalloc(CHUNK);
	r->pre = j->pre;
	r->prelen = j->prelen;
	r->m = j->m;
}

void reader_free(struct reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* ------------------------------------------------------------ outcome */

static int permanent(int code)
{
	return code >= 500 && code <= 599;
}

/* "a@x (550 no such user), b@y (451 try later)" for the recipients whose
 * cmd ("RCPT", or "." for LMTP's replies to the data) was (ok = 0)
 * refused or (ok = 1) accepted. */
static char *who(const struct dialog *d, const char *cmd, int ok)
{
	char *out = NULL;
	for (size_t i = 0; i < d->nex; i++) {
		const struct exch *e = &d->ex[i];
		if (strcmp(e->cmd, cmd) != 0 || (e->code / 100 == 2) != ok)
			continue;
		char *prev = out;
		if (ok)
			out = xasprintf("%s%s%s", prev ? prev : "", prev ? ", " : "", e->arg ? e->arg : "?");
		else if (e->code == 0)   /* the connection ended first */
			out = xasprintf("%s%s%s (no reply)", prev ? prev : "", prev ? ", " : "",
					e->arg ? e->arg : "?");
		else
			out = xasprintf("%s%s%s (%d %s)", prev ? prev : "", prev ? ", " : "",
					e->arg ? e->arg : "?", e->code, e->text ? e->text : "");
		free(prev);
	}
	return out ? out : xstrdup("nobody");
}

static char *rcpt_list(const struct dialog *d, int ok)
{
	return who(d, "RCPT", ok);
}

/* Refused recipients: rejected when every refusal is permanent. */
static int all_refusals_permanent(const struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++)
		if (!strcmp(d->ex[i].cmd, "RCPT") && d->ex[i].code >= 300 && !permanent(d->ex[i].code))
			return 0;
	return 1;
}

static int outcome(struct outcome *o, int rejected, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int outcome(struct outcome *o, int rejected, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	o->rejected = rejected;
	o->fail_code = rejected ? EX_DATAERR : EX_TEMPFAIL;
	seterr(&o->err, "%s%s", msg,
	       rejected ? " (rejected: not retried)" : " (deferred: retried next run)");
	free(msg);
	return -1;
}

/* The first reply that refused the message, in SMTP order. */
static const struct exch *refusal(const struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++) {
		const struct exch *e = &d->ex[i];
		if (!strcmp(e->cmd, "DATA") ? e->code != 0 && e->code != 354 :
		    e->code >= 300 && (!strcmp(e->cmd, "MAIL") || !strcmp(e->cmd, ".")))
			return e;
	}
	return NULL;
}

static int refused_rcpts(const struct verdict *v, const struct dialog *d,
			 const struct tx_end *end, struct outcome *o)
{
	char *bad = rcpt_list(d, 0), *good = rcpt_list(d, 1);
	int perm = all_refusals_permanent(d);
	int r = end->aborted
		? outcome(o, perm, "%s refused %s and accepted %s: sent to nobody (on_partial keep)",
			  v->where, bad, good)
		: outcome(o, perm, "%s refused %s", v->where, bad);
	free(bad);
	free(good);
	return r;
}

static void partial_note(const struct verdict *v, const struct dialog *d, const char *cmd)
{
	char *bad = who(d, cmd, 0), *good = who(d, cmd, 1);
	log_err(v->acct, "%s %s only: %s refused %s (on_partial accept)", v->done, good,
		v->where, bad);
	free(bad);
	free(good);
}

static size_t count(const struct dialog *d, const char *cmd, int (*pick)(int code))
{
	size_t n = 0;
	for (size_t i = 0; i < d->nex; i++)
		n += strcmp(d->ex[i].cmd, cmd) == 0 && pick(d->ex[i].code);
	return n;
}

static int is_ok(int code) { return code / 100 == 2; }
static int is_perm(int code) { return permanent(code); }
static int is_temp(int code) { return code / 100 != 2 && !permanent(code); }

/* LMTP: the data went out and each accepted recipient answers it.  A
 * missing reply (the connection dropped, a bad reply) is a 4xx. */
static int lmtp_judge(const struct verdict *v, const struct dialog *d, const char *err,
		      struct outcome *o)
{
	size_t ok = count(d, ".", is_ok), temp = count(d, ".", is_temp);
	size_t perm = count(d, ".", is_perm);
	if (temp == 0 && perm == 0) {
		if (dialog_rcpts(d, 0) > 0)
			partial_note(v, d, "RCPT");
		return 0;
	}
	if (temp == 0 && ok > 0 && v->partial_ok) {
		partial_note(v, d, ".");
		return 0;
	}
	char *bad = who(d, ".", 0), *good = who(d, ".", 1);
	int r;
	if (temp > 0 && ok > 0)
		r = outcome(o, 0, "%s delivered to %s but not to %s%s%s; %s will get it again",
			    v->where, good, bad, err ? ": " : "", err ? err : "", good);
	else if (temp > 0)
		r = outcome(o, 0, "%s did not deliver to %s%s%s", v->where, bad,
			    err ? ": " : "", err ? err : "");
	else if (ok > 0)
		r = outcome(o, 1, "%s delivered to %s only: refused %s (on_partial keep)",
			    v->where, good, bad);
	else
		r = outcome(o, all_refusals_permanent(d), "%s refused %s after the data", v->where, bad);
	free(bad);
	free(good);
	return r;
}

int smtp_judge(const struct verdict *v, const struct dialog *d, const struct tx_end *end,
	       const char *err, struct outcome *o)
{
	const struct exch *dot = dialog_find(d, "."), *mail = dialog_find(d, "MAIL");
	if (end->read_failed)
		return outcome(o, 0, "%s", err);
	if (v->lmtp && dot)
		return lmtp_judge(v, d, err, o);
	if (dot && dot->code / 100 == 2) {
		if (dialog_rcpts(d, 0) > 0)
			partial_note(v, d, "RCPT");
		return 0;
	}
	if (!(mail && mail->code >= 300) &&
	    (end->aborted || (dialog_rcpts(d, 0) > 0 && dialog_rcpts(d, 1) == 0)))
		return refused_rcpts(v, d, end, o);
	const struct exch *e = refusal(d);
	if (e)
		return outcome(o, permanent(e->code), "%s answered %s%s%s: %d %s", v->where,
			       e->cmd[0] == '.' ? "the end of the message" : e->cmd,
			       e->arg ? " " : "", e->arg ? e->arg : "", e->code, e->text ? e->text : "");
	return outcome(o, 0, "the connection to %s failed during the transfer: %s", v->where,
		       err ? err : "no reply");
}
