/* pop3.c — see pop3.h.  Replies are untrusted: status and list lines
 * are bounded, anything that is neither +OK nor -ERR is an error, and a
 * multi-line body is streamed, never held whole. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "login-hint.h"
#include "pop3.h"
#include "popsift.h"

#define RBUF (256u << 10)
/* A reply's deadline grows by a second per KB that arrives: a big
 * message over a slow link finishes, a trickle does not. */
#define CREDIT_BYTES 1024.0

struct cmd {
	char   *line;
	enum pop3_mode mode;
	int     secret;
	pop3_fn fn;
	void   *arg;
	unsigned long check;   /* a message's reply: its P3_END waits for "LIST check" */
	int     is_check;      /* that LIST: fn/arg are the held reply's */
};

struct pop3 {
	struct conn *c;
	const char *acct;
	size_t  window;
	struct cmd *q;
	size_t  qcap, qlen;      /* queued */
	size_t  qsent;           /* sent to the server */
	size_t  qdone;           /* answered */
	char   *sbuf;
	size_t  slen, scap, soff;
	char   *rbuf;
	size_t  rlen, roff;
	int     in_multi, bol;
	int     first_line;      /* at the first payload line of a stream reply */
	int     held;            /* a checked reply arrived whole: its P3_END waits */
	int     stoppable;
	size_t  stop_at;         /* a flush ends when this many are left unanswered */
	double  clock;           /* when the reply at the head began to be awaited */
	double  last_rx;         /* when a byte last came (or the clock started) */
	unsigned long long credit;   /* bytes received since */
	double  session_end;     /* session_timeout: 0 none */
	int     session_s;
	char   *err;
	int     code;
	unsigned long long bytes;
};

struct pop3 *pop3_new(struct conn *c, const char *acct, size_t window)
{
	struct pop3 *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->acct = acct;
	p->window = window ? window : 1;
	p->session_end = c->session_end;
	p->session_s = c->session_s;
	p->rbuf = xmalloc(RBUF);
	return p;
}

void pop3_free(struct pop3 *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->qlen; i++)
		free(p->q[i].line);
	free(p->q);
	free(p->sbuf);
	free(p->rbuf);
	free(p->err);
	free(p);
}

static struct cmd *push(struct pop3 *p, const char *fmt, va_list ap)
{
	if (p->qlen == p->qcap) {
		p->qcap = p->qcap ? p->qcap * 2 : 64;
		p->q = xrealloc(p->q, p->qcap * sizeof *p->q);
	}
	char *line = NULL;
	if (vasprintf(&line, fmt, ap) < 0)
		line = xstrdup("NOOP");
	struct cmd *k = &p->q[p->qlen++];
	*k = (struct cmd){ .line = line };
	return k;
}

void pop3_queue(struct pop3 *p, enum pop3_mode mode, int secret, pop3_fn fn, void *arg,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct cmd *k = push(p, fmt, ap);
	va_end(ap);
	k->mode = mode;
	k->secret = secret;
	k->fn = fn;
	k->arg = arg;
}

static struct cmd *push_line(struct pop3 *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct cmd *push_line(struct pop3 *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct cmd *k = push(p, fmt, ap);
	va_end(ap);
	return k;
}

void pop3_queue_msg(struct pop3 *p, unsigned long num, pop3_fn fn, void *arg,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct cmd *k = push(p, fmt, ap);
	va_end(ap);
	*k = (struct cmd){ .line = k->line, .mode = P3_STREAM, .fn = fn, .arg = arg, .check = num };
	k = push_line(p, "LIST %lu", num);
	*k = (struct cmd){ .line = k->line, .mode = P3_SINGLE, .fn = fn, .arg = arg, .check = num,
			   .is_check = 1 };
}

int pop3_fail(struct pop3 *p, int code, const char *fmt, ...)
{
	if (p->err != NULL)
		return -1;   /* the first failure is the cause */
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&p->err, fmt, ap) < 0)
		p->err = xstrdup("error");
	va_end(ap);
	p->code = code;
	return -1;
}

const char *pop3_error(const struct pop3 *p) { return p->err ? p->err : "no error"; }
int pop3_code(const struct pop3 *p) { return p->code; }
size_t pop3_pending(const struct pop3 *p) { return p->qlen - p->qdone; }
size_t pop3_queued(const struct pop3 *p) { return p->qlen; }
const char *pop3_account(const struct pop3 *p) { return p->acct; }
void pop3_stoppable(struct pop3 *p, int on) { p->stoppable = on; }
unsigned long long pop3_bytes(const struct pop3 *p) { return p->bytes; }

static void restart_clock(struct pop3 *p)
{
	p->clock = p->last_rx = now_sec();
	p->credit = 0;
}

static const char *cmd_name(const struct cmd *k)
{
	return k->secret ? "login" : k->line;
}

/* Move queued commands into the send buffer while the window allows. */
static void fill_send(struct pop3 *p)
{
	if (p->soff == p->slen)
		p->soff = p->slen = 0;
	while (p->qsent < p->qlen && p->qsent - p->qdone < p->window) {
		if (p->qsent == p->qdone)
			restart_clock(p);   /* nothing was awaited: the wait starts now */
		struct cmd *k = &p->q[p->qsent++];
		size_t n = strlen(k->line);
		if (p->slen + n + 2 > p->scap) {
			p->scap = (p->slen + n + 2) * 2;
			p->sbuf = xrealloc(p->sbuf, p->scap);
		}
		memcpy(p->sbuf + p->slen, k->line, n);
		memcpy(p->sbuf + p->slen + n, "\r\n", 2);
		p->slen += n + 2;
		if (k->secret) {
			char masked[64];
			snprintf(masked, sizeof masked, "%.*s ****", (int)strcspn(k->line, " "), k->line);
			log_proto(p->acct, 'C', masked, strlen(masked));
		} else {
			log_proto(p->acct, 'C', k->line, n);
		}
	}
}

static void done_cmd(struct pop3 *p)
{
	struct cmd *k = &p->q[p->qdone++];
	free(k->line);
	k->line = NULL;
	p->in_multi = 0;
	restart_clock(p);
	if (p->qdone == p->qlen)   /* all answered: reuse the queue from the start */
		p->qdone = p->qsent = p->qlen = 0;
}

static int call(struct pop3 *p, enum pop3_ev ev, const char *s, size_t n)
{
	struct cmd *k = &p->q[p->qdone];
	if (k->fn == NULL)
		return 0;
	if (k->fn(p, k->arg, ev, s, n) < 0)
		return pop3_fail(p, EX_SOFTWARE, "handler for %s failed", cmd_name(k));
	return 0;
}

/* The LIST n behind a message's reply: its "+OK n size" can belong to no
 * other command (not a status line, not a DELE's, not a neighbour's), so
 * a server whose replies slipped by a line (one too many or too few) shows
 * it here, before the held reply is handed on as message n's.  The number
 * only: some servers (GNU Mailutils) count the size anew once a message
 * has been read.  Returns 1 consumed, -1 failed. */
static int take_check(struct pop3 *p, const char *s, size_t n, int st)
{
	struct cmd *k = &p->q[p->qdone];
	const char *t = s + (st > 0 ? 3 : 0);
	size_t tn = st > 0 ? n - 3 : n;
	while (tn > 0 && *t == ' ')
		t++, tn--;
	unsigned long num = 0;
	unsigned long long size;
	int held = p->held;
	p->held = 0;
	if (st <= 0 || pop3_parse_list(t, tn, &num, &size) < 0 || num != k->check)
		return pop3_fail(p, EX_UNAVAILABLE, "%s was answered \"%.*s\": the server's "
				 "replies are out of step with the commands; message %lu is not "
				 "taken", k->line, (int)(n > 60 ? 60 : n), s, k->check);
	if (held && call(p, P3_END, "", 0) < 0)
		return -1;
	done_cmd(p);
	return 1;
}

/* A status line: returns 1 if consumed, 0 if more bytes are needed. */
static int take_status(struct pop3 *p)
{
	char *b = p->rbuf + p->roff;
	size_t avail = p->rlen - p->roff;
	char *nl = memchr(b, '\n', avail < POP3_MAXLINE ? avail : POP3_MAXLINE);
	if (nl == NULL) {
		if (avail >= POP3_MAXLINE)
			return pop3_fail(p, EX_UNAVAILABLE, "reply to %s is longer than %d bytes",
					 cmd_name(&p->q[p->qdone]), POP3_MAXLINE);
		return 0;
	}
	size_t n = (size_t)(nl - b);
	p->roff += n + 1;
	if (n > 0 && b[n - 1] == '\r')
		n--;
	log_proto(p->acct, 'S', b, n);
	int st = pop3_status(b, n);
	struct cmd *k = &p->q[p->qdone];
	if (k->is_check)
		return take_check(p, b, n, st);
	if (st < 0)
		return pop3_fail(p, EX_UNAVAILABLE, "malformed reply to %s: \"%.*s\"", cmd_name(k),
				 (int)(n > 80 ? 80 : n), b);
	const char *text = b + (st ? 3 : 4);
	size_t tn = n - (st ? 3 : 4);
	while (tn > 0 && *text == ' ')
		text++, tn--;
	int multi = st && k->mode != P3_SINGLE;
	if (call(p, st ? P3_OK : P3_ERR, text, tn) < 0)
		return -1;
	if (multi) {
		p->in_multi = 1;
		p->bol = 1;
		p->first_line = 1;
	} else {
		done_cmd(p);
	}
	return 1;
}

/* At the start of a payload line: 1 terminator, 0 data, -1 need more. */
static int at_terminator(const char *b, size_t avail)
{
	if (avail < 2)
		return -1;
	if (b[1] == '\n')
		return 1;
	if (b[1] != '\r')
		return 0;
	if (avail < 3)
		return -1;
	return b[2] == '\n';
}

static int finish_multi(struct pop3 *p, size_t skip)
{
	p->roff += skip;
	if (p->q[p->qdone].check)
		p->held = 1;   /* its LIST check comes next */
	else if (call(p, P3_END, "", 0) < 0)
		return -1;
	done_cmd(p);
	return 1;
}


/* Line mode: one callback per complete line, each bounded. */
static int take_lines(struct pop3 *p)
{
	for (;;) {
		char *b = p->rbuf + p->roff;
		size_t avail = p->rlen - p->roff;
		if (avail == 0)
			return 0;
		if (b[0] == '.') {
			int t = at_terminator(b, avail);
			if (t < 0)
				return 0;
			if (t > 0)
				return finish_multi(p, b[1] == '\n' ? 2 : 3);
		}
		char *nl = memchr(b, '\n', avail < POP3_MAXLINE ? avail : POP3_MAXLINE);
		if (nl == NULL) {
			if (avail >= POP3_MAXLINE)
				return pop3_fail(p, EX_UNAVAILABLE, "a line in the reply to %s is "
						 "longer than %d bytes", cmd_name(&p->q[p->qdone]),
						 POP3_MAXLINE);
			return 0;
		}
		size_t n = (size_t)(nl - b);
		p->roff += n + 1;
		if (n > 0 && b[n - 1] == '\r')
			n--;
		size_t dot = b[0] == '.';
		if (call(p, P3_DATA, b + dot, n - dot) < 0)
			return -1;
	}
}

/* Does the line at b start like a status line?  1 yes, 0 no, -1 need more. */
static int status_prefix(const char *b, size_t avail)
{
	const char *want = b[0] == '+' ? "+OK" : b[0] == '-' ? "-ERR" : NULL;
	if (want == NULL)
		return 0;
	size_t n = strlen(want);
	if (memcmp(b, want, avail < n ? avail : n) != 0)
		return 0;
	return avail >= n ? 1 : -1;
}

/* A message cannot start with a status line: a RETR or TOP body that does
 * is the reply to another command, the stream shifted by a line.
 * 0 go on, 1 need more bytes, -1 failed. */
static int check_line(struct pop3 *p, const char *b, size_t avail)
{
	int st = status_prefix(b, avail);
	if (st < 0)
		return 1;
	if (st > 0) {
		size_t n = 0;
		while (n < avail && n < 60 && b[n] != '\r' && b[n] != '\n')
			n++;
		return pop3_fail(p, EX_UNAVAILABLE, "the reply to %s begins with \"%.*s\": the "
				 "server's replies are out of step with the commands",
				 cmd_name(&p->q[p->qdone]), (int)n, b);
	}
	p->first_line = 0;
	return 0;
}

/* Stream mode: unstuff dots and turn CRLF into LF in place (output never
 * outruns input), then hand the payload over in one chunk per read. */
static int take_stream(struct pop3 *p)
{
	char *b = p->rbuf;
	size_t r = p->roff, end = p->rlen, w = r, start = r;
	int term = 0;
	while (r < end) {
		int c = p->bol && p->first_line ? check_line(p, b + r, end - r) : 0;
		if (c < 0)
			return -1;
		if (c > 0)
			break;
		if (p->bol && b[r] == '.') {
			int t = at_terminator(b + r, end - r);
			if (t < 0)
				break;
			if (t > 0) {
				term = b[r + 1] == '\n' ? 2 : 3;
				break;
			}
			r++;
		}
		char *nl = memchr(b + r, '\n', end - r);
		size_t stop = nl ? (size_t)(nl - b) : end;
		size_t m = stop - r;
		if (m > 0 && b[r + m - 1] == '\r')
			m--;   /* CR of CRLF, or a lone CR at the end of what we have */
		memmove(b + w, b + r, m);
		w += m;
		r += m;
		if (nl == NULL) {
			p->bol = 0;
			break;   /* a trailing CR waits for its LF */
		}
		b[w++] = '\n';
		r = stop + 1;
		p->bol = 1;
	}
	p->roff = r;
	if (w > start && call(p, P3_DATA, b + start, w - start) < 0)
		return -1;
	if (term)
		return finish_multi(p, (size_t)term);
	return 0;
}

static int process(struct pop3 *p)
{
	/* a partial flush stops at a reply's end; what came after waits in rbuf */
	while (p->roff < p->rlen && p->err == NULL && pop3_pending(p) > p->stop_at) {
		if (p->qdone >= p->qsent) {
			size_t n = 0;   /* one line of it, not the rest */
			while (p->roff + n < p->rlen && n < 60 && p->rbuf[p->roff + n] != '\r' &&
			       p->rbuf[p->roff + n] != '\n')
				n++;
			return pop3_fail(p, EX_UNAVAILABLE, "server sent data nobody asked for: \"%.*s\"",
					 (int)n, p->rbuf + p->roff);
		}
		int r;
		if (!p->in_multi)
			r = take_status(p);
		else if (p->q[p->qdone].mode == P3_LINES)
			r = take_lines(p);
		else
			r = take_stream(p);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
	}
	return p->err ? -1 : 0;
}

static const char *waiting_for(const struct pop3 *p)
{
	return p->qdone < p->qsent ? cmd_name(&p->q[p->qdone]) : "idle";
}

/* Milliseconds left before the reply at the head or the session is due;
 * at 0 the pump has failed. */
static int time_left(struct pop3 *p)
{
	double t = now_sec(), tmo = p->c->timeout_ms / 1000.0;
	double reply_end = p->clock + tmo + (double)p->credit / CREDIT_BYTES;
	if (p->last_rx + tmo < reply_end)
		reply_end = p->last_rx + tmo;   /* silence: as long as a reply may take */
	if (p->session_end > 0 && t >= p->session_end) {
		pop3_fail(p, EX_TEMPFAIL, "session_timeout (%d s) reached during %s",
			  p->session_s, waiting_for(p));
		return 0;
	}
	if (t >= reply_end) {
		if (p->credit == 0)
			pop3_fail(p, EX_TEMPFAIL, "server did not answer %s within %d s",
				  waiting_for(p), p->c->timeout_ms / 1000);
		else if (t >= p->last_rx + tmo)
			pop3_fail(p, EX_TEMPFAIL, "server fell silent for %d s during %s",
				  p->c->timeout_ms / 1000, waiting_for(p));
		else
			pop3_fail(p, EX_TEMPFAIL, "server did not finish its reply to %s within "
				  "%.0f s (%llu bytes came)", waiting_for(p), reply_end - p->clock,
				  p->credit);
		return 0;
	}
	double end = p->session_end > 0 && p->session_end < reply_end ? p->session_end : reply_end;
	double ms = (end - t) * 1000.0 + 1;
	return ms > 3600000 ? 3600000 : (int)ms;
}

static int do_recv(struct pop3 *p, int *got)
{
	if (p->roff > 0 && p->roff == p->rlen)
		p->roff = p->rlen = 0;
	if (p->rlen == RBUF) {   /* keep the unconsumed tail */
		memmove(p->rbuf, p->rbuf + p->roff, p->rlen - p->roff);
		p->rlen -= p->roff;
		p->roff = 0;
	}
	char *e = NULL;
	ssize_t n = conn_recv(p->c, p->rbuf + p->rlen, RBUF - p->rlen, &e);
	if (n == 0) {
		free(e);
		return 0;
	}
	if (n < 0) {
		const char *what = p->qdone < p->qsent ? cmd_name(&p->q[p->qdone]) : "idle";
		pop3_fail(p, EX_TEMPFAIL, "%s during %s", n == -2 ? "server closed the connection" :
			  (e ? e : "receive failed"), what);
		free(e);
		return -1;
	}
	*got = 1;
	p->rlen += (size_t)n;
	p->bytes += (unsigned long long)n;
	p->credit += (unsigned long long)n;
	p->last_rx = now_sec();
	return process(p) < 0 ? -1 : 1;
}

static int do_send(struct pop3 *p, int *moved)
{
	if (p->soff == p->slen)
		return 0;
	char *e = NULL;
	ssize_t n = conn_send(p->c, p->sbuf + p->soff, p->slen - p->soff, &e);
	if (n < 0) {
		pop3_fail(p, EX_TEMPFAIL, "%s", e ? e : "send failed");
		free(e);
		return -1;
	}
	if (n > 0)
		*moved = 1;
	p->soff += (size_t)n;
	return 0;
}

void pop3_kick(struct pop3 *p)
{
	int moved = 0;
	if (p->err == NULL) {
		fill_send(p);
		do_send(p, &moved);
	}
}

static int pump(struct pop3 *p);

int pop3_flush(struct pop3 *p)
{
	return pop3_flush_until(p, 0);
}

int pop3_flush_until(struct pop3 *p, size_t left)
{
	p->stop_at = left;
	int rc = pump(p);
	p->stop_at = 0;
	return rc;
}

static int pump(struct pop3 *p)
{
	/* our own work since the commands went out (an fsync) is not the server's delay */
	restart_clock(p);
	/* replies a partial flush left unread come first */
	if (p->roff < p->rlen && process(p) < 0)
		return -1;
	while (p->err == NULL && pop3_pending(p) > p->stop_at) {
		if (stop_requested && p->stoppable)
			return pop3_fail(p, POP3_STOPPED, "stopped by a signal");
		fill_send(p);
		int moved = 0;
		if (do_send(p, &moved) < 0)
			return -1;
		int r = 0;
		/* drain libcurl: TLS data may sit decrypted while the socket is quiet;
		 * a reply that keeps coming is still held to its deadline */
		while (time_left(p) > 0 && (r = do_recv(p, &moved)) > 0 &&
		       pop3_pending(p) > p->stop_at)
			;
		if (r < 0 || p->err)
			return -1;
		if (moved || pop3_pending(p) <= p->stop_at)
			continue;
		int ms = time_left(p);
		if (ms == 0)
			return -1;
		int w = conn_wait_ms(p->c, p->soff < p->slen, ms);
		if (w == -2 && p->stoppable)
			return pop3_fail(p, POP3_STOPPED, "stopped by a signal");
		if (w < 0 && w != -2)
			return pop3_fail(p, EX_TEMPFAIL, "poll: %s", strerror(errno));
	}
	return p->err ? -1 : 0;
}

/* USER or PASS refused (popsift's own login): the session fails with
 * EX_NOPERM, the server's words and what to check. */
int pop3_login_refused(struct pop3 *p, const struct account *a, const char *s, size_t n)
{
	char *hint = login_hint(a, SIDE_POP3);
	pop3_fail(p, EX_NOPERM, "login refused for user %s at %s: %.*s (%s)", a->user, a->host,
		  (int)n, s, hint);
	free(hint);
	return -1;
}

int pop3_uidl_event(struct pop3 *p, enum pop3_ev ev, const char *s, size_t n, int *no_uidl,
		    unsigned long *num, const char **u, size_t *ulen)
{
	if (ev == P3_ERR)
		*no_uidl = 1;
	if (ev != P3_DATA)
		return 0;
	int rc = pop3_parse_uidl(s, n, num, u, ulen);
	if (rc < 0)
		return pop3_fail(p, EX_UNAVAILABLE, "malformed UIDL line \"%.*s\"",
				 (int)(n > 80 ? 80 : n), s);
	if (rc > 0)
		*u = NULL;   /* "3 ": the server gave no UID */
	return 1;
}
