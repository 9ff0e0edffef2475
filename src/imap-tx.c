/* imap-tx.c — popsift's own IMAP commands over a connection libcurl
 * opened and logged in on (CURLOPT_CONNECT_ONLY, deliver-imap.c).
 * libcurl's IMAP upload always says APPEND ... (\Seen) and waits for
 * every reply; here APPEND carries no flags (fetched mail arrives
 * unread) and, when the server offers LITERAL+ (RFC 7888), says {n+} and
 * sends the data at once, so many APPENDs are in flight and a steady
 * stream costs no round trip a message.  Without it each APPEND waits
 * for the "+" continuation: one round trip a message, plus its reply.
 *
 * The bytes go through conn_send/conn_recv (curlconn.c), so TLS stays
 * libcurl's.  Every wait has the account's timeout. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "popsift.h"

#define SEND_CHUNK (64u << 10)

static int fail(struct imap_ses *s, char **err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct imap_ses *s, char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(*err);
	*err = xvasprintf(fmt, ap);
	va_end(ap);
	s->broken = 1;
	return -1;
}

void imap_ses_init(struct imap_ses *s)
{
	memset(s, 0, sizeof *s);
	s->c.sock = -1;
	imap_rd_start(&s->rd, &s->resp);
}

void imap_ses_free(struct imap_ses *s)
{
	conn_close(&s->c);
	imap_resp_free(&s->resp);
	free(s->found);
	s->found = NULL;
}

size_t imap_pending(const struct imap_ses *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->nfly; i++)
		n += !s->fly[i].rep.done;
	return n;
}

/* ------------------------------------------------------------ bytes */

/* Sending waits for room only: conn_wait() would also wake for a reply
 * the server sent early, and spin while it does not read. */
static int room(struct imap_ses *s, char **err)
{
	struct pollfd p = { .fd = s->c.sock, .events = POLLOUT };
	int r;
	while ((r = poll(&p, 1, s->c.timeout_ms)) < 0 && errno == EINTR && !stop_requested)
		;
	if (r > 0)
		return 0;
	return fail(s, err, "%s", r == 0 ? "the server took nothing within the timeout" :
		    stop_requested ? "stopped by a signal" : strerror(errno));
}

static int send_all(struct imap_ses *s, const char *p, size_t n, char **err)
{
	size_t off = 0;
	while (off < n) {
		char *e = NULL;
		ssize_t k = conn_send(&s->c, p + off, n - off, &e);
		if (k < 0) {
			fail(s, err, "%s", e ? e : "send failed");
			free(e);
			return -1;
		}
		off += (size_t)k;
		if (k == 0 && room(s, err) < 0)
			return -1;
	}
	return 0;
}

/* More bytes from the server: TLS may hold decrypted data while the
 * socket is quiet, so read before polling. */
static int more(struct imap_ses *s, char **err)
{
	if (s->ioff > 0) {
		memmove(s->in, s->in + s->ioff, s->ilen - s->ioff);
		s->ilen -= s->ioff;
		s->ioff = 0;
	}
	for (;;) {
		char *e = NULL;
		ssize_t n = conn_recv(&s->c, s->in + s->ilen, sizeof s->in - s->ilen, &e);
		if (n < 0) {
			fail(s, err, "%s", n == -2 ? "the server closed the connection" :
			     e ? e : "receive failed");
			free(e);
			return -1;
		}
		if (n > 0) {
			s->ilen += (size_t)n;
			return 0;
		}
		int w = conn_wait(&s->c, 0);
		if (w == 0)
			return fail(s, err, "no reply within %d s", s->c.timeout_ms / 1000);
		if (w < 0)
			return fail(s, err, "%s", w == -2 ? "stopped by a signal" : strerror(errno));
	}
}

/* The next whole response in s->resp. */
static int next_resp(struct imap_ses *s, char **err)
{
	for (;;) {
		size_t used = 0;
		int r = imap_parse(&s->rd, &s->resp, s->in + s->ioff, s->ilen - s->ioff, &used, err);
		s->ioff += used;
		if (r < 0) {
			s->broken = 1;
			return -1;
		}
		if (r > 0) {
			if (log_level >= 1)
				log_debug(s->c.acct, "S: %s %.200s", s->resp.kind == IR_TAGGED ?
					  s->resp.tag : s->resp.kind == IR_CONT ? "+" : "*", s->resp.text);
			return 0;
		}
		if (more(s, err) < 0)
			return -1;
	}
}

/* ------------------------------------------------------------ replies */

static struct imap_reply *slot(struct imap_ses *s, unsigned long tag)
{
	for (size_t i = 0; i < s->nfly; i++)
		if (s->fly[i].tag == tag)
			return &s->fly[i].rep;
	return NULL;
}

static void unslot(struct imap_ses *s, unsigned long tag)
{
	for (size_t i = 0; i < s->nfly; i++)
		if (s->fly[i].tag == tag) {
			memmove(&s->fly[i], &s->fly[i + 1], (s->nfly - i - 1) * sizeof *s->fly);
			s->nfly--;
			return;
		}
}

static unsigned long new_tag(struct imap_ses *s)
{
	unsigned long tag = ++s->tagn;
	s->fly[s->nfly].tag = tag;
	memset(&s->fly[s->nfly].rep, 0, sizeof s->fly[s->nfly].rep);
	s->nfly++;
	return tag;
}

static void untagged(struct imap_ses *s)
{
	const struct imap_resp *r = &s->resp;
	if (r->status == IS_BYE)
		s->broken = 1;
	if (r->status == IS_NONE && strncasecmp(r->text, "SEARCH", 6) == 0 &&
	    (r->text[6] == ' ' || r->text[6] == '\0')) {
		free(s->found);
		s->found = xstrdup(r->text + 6 + (r->text[6] == ' '));
	}
}

/* Read one response and put it where it belongs: 1 a continuation, 0
 * anything else. */
static int dispatch(struct imap_ses *s, char **err)
{
	if (next_resp(s, err) < 0)
		return -1;
	const struct imap_resp *r = &s->resp;
	if (r->kind == IR_CONT)
		return 1;
	if (r->kind == IR_UNTAGGED) {
		untagged(s);
		return 0;
	}
	char *end;
	unsigned long tag = r->tag[0] == 'P' ? strtoul(r->tag + 1, &end, 10) : 0;
	struct imap_reply *rep = tag ? slot(s, tag) : NULL;
	if (rep == NULL || *end != '\0' || rep->done)
		return fail(s, err, "a reply to a command popsift did not send: \"%.80s %.80s\"",
			    r->tag, r->text);
	rep->done = 1;
	rep->status = r->status;
	snprintf(rep->code, sizeof rep->code, "%s", r->code);
	snprintf(rep->text, sizeof rep->text, "%s", r->text);
	return 0;
}

int imap_wait(struct imap_ses *s, unsigned long tag, struct imap_reply *rep, char **err)
{
	struct imap_reply *r = slot(s, tag);
	if (r == NULL)
		return fail(s, err, "internal error: no command P%lu", tag);
	while (!r->done) {
		if (s->broken)
			return fail(s, err, "the server said BYE: %.200s", s->resp.text);
		int d = dispatch(s, err);
		if (d < 0)
			return -1;
		if (d > 0)
			return fail(s, err, "an unexpected continuation: \"%.80s\"", s->resp.text);
		r = slot(s, tag);
	}
	*rep = *r;
	unslot(s, tag);
	return 0;
}

/* ------------------------------------------------------------ commands */

int imap_simple(struct imap_ses *s, struct imap_reply *rep, char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	unsigned long tag = new_tag(s);
	char *line = xasprintf("P%lu %s\r\n", tag, cmd);
	log_proto(s->c.acct, 'C', line, strlen(line));
	int rc = send_all(s, line, strlen(line), err);
	free(line);
	free(cmd);
	if (rc < 0)
		return -1;
	return imap_wait(s, tag, rep, err);
}

static void set_caps(struct imap_ses *s, const char *text)
{
	s->literal_plus = imap_has_word(text, "LITERAL+");
	s->literal_minus = imap_has_word(text, "LITERAL-");
	s->multiappend = imap_has_word(text, "MULTIAPPEND");
	s->uidplus = imap_has_word(text, "UIDPLUS");
	const char *al = strcasestr(text, "APPENDLIMIT=");
	s->appendlimit = al ? strtoull(al + 12, NULL, 10) : 0;
}

int imap_capabilities(struct imap_ses *s, const char *seen, char **err)
{
	if (seen) {
		set_caps(s, seen);
		return 0;
	}
	unsigned long tag = new_tag(s);
	char line[64];
	snprintf(line, sizeof line, "P%lu CAPABILITY\r\n", tag);
	log_proto(s->c.acct, 'C', line, strlen(line));
	if (send_all(s, line, strlen(line), err) < 0)
		return -1;
	struct imap_reply *r;
	while ((r = slot(s, tag)) != NULL && !r->done) {
		int d = dispatch(s, err);
		if (d < 0)
			return -1;
		if (s->resp.kind == IR_UNTAGGED && strncasecmp(s->resp.text, "CAPABILITY ", 11) == 0)
			set_caps(s, s->resp.text + 11);
	}
	int ok = r && r->status == IS_OK;
	unslot(s, tag);
	return ok ? 0 : fail(s, err, "CAPABILITY failed");
}

/* The data, converted to CRLF, in chunks. */
static int send_data(struct imap_ses *s, const struct imap_src *src, size_t n, char **err)
{
	static __thread char raw[SEND_CHUNK / 2], out[SEND_CHUNK + 2];
	struct crlf cr = { 0 };
	size_t sent = 0;
	for (;;) {
		ssize_t got = src->fill(raw, sizeof raw, src->arg);
		if (got < 0)
			return fail(s, err, "cannot read the message: %s", strerror(errno));
		size_t k = got > 0 ? crlf_put(&cr, raw, (size_t)got, out) : crlf_end(&cr, out);
		if (sent + k > n)
			return fail(s, err, "internal error: the message grew while it was sent");
		if (k > 0 && send_all(s, out, k, err) < 0)
			return -1;
		sent += k;
		if (got == 0)
			break;
	}
	if (sent != n)
		return fail(s, err, "internal error: the message shrank while it was sent");
	return send_all(s, "\r\n", 2, err);
}

/* Without LITERAL+: wait for "+", or the tagged reply that refuses the
 * APPEND before its data (0).  Replies to earlier APPENDs go to their
 * slots meanwhile. */
static int continuation(struct imap_ses *s, unsigned long tag, char **err)
{
	for (;;) {
		int d = dispatch(s, err);
		if (d != 0)
			return d;
		const struct imap_reply *r = slot(s, tag);
		if (r && r->done)
			return 0;
		if (s->broken)
			return fail(s, err, "the server said BYE: %.200s", s->resp.text);
	}
}

int imap_append(struct imap_ses *s, const char *qfolder, const char *date, size_t n,
		const struct imap_src *src, unsigned long *tag, char **err)
{
	int plus = s->literal_plus || (s->literal_minus && n <= IMAP_SYNC_LITERAL_MAX);
	*tag = new_tag(s);
	char *line = xasprintf("P%lu APPEND %s%s%s%s {%zu%s}\r\n", *tag, qfolder,
			       date ? " \"" : "", date ? date : "", date ? "\"" : "", n,
			       plus ? "+" : "");
	log_proto(s->c.acct, 'C', line, strlen(line));
	int rc = send_all(s, line, strlen(line), err);
	free(line);
	if (rc < 0)
		return -1;
	if (!plus && (rc = continuation(s, *tag, err)) <= 0)
		return rc;
	if (src->rewind)
		src->rewind(src->arg);
	return send_data(s, src, n, err) < 0 ? -1 : 1;
}

int imap_alive(struct imap_ses *s)
{
	if (s->c.curl == NULL || s->broken)
		return 0;
	if (s->nfly > 0)
		return 1;   /* replies are due */
	/* what came while idle, without waiting: an untagged "* BYE"
	 * (autologout), the end of the stream, or nothing (TLS records such
	 * as session tickets give no bytes) */
	char *err = NULL;
	for (;;) {
		if (s->ioff > 0) {
			memmove(s->in, s->in + s->ioff, s->ilen - s->ioff);
			s->ilen -= s->ioff;
			s->ioff = 0;
		}
		if (s->ilen == sizeof s->in)
			break;
		ssize_t n = conn_recv(&s->c, s->in + s->ilen, sizeof s->in - s->ilen, &err);
		if (n < 0)
			s->broken = 1;
		if (n <= 0)
			break;
		s->ilen += (size_t)n;
	}
	while (!s->broken && s->ioff < s->ilen) {
		size_t used = 0;
		int r = imap_parse(&s->rd, &s->resp, s->in + s->ioff, s->ilen - s->ioff, &used, &err);
		s->ioff += used;
		if (r <= 0) {
			s->broken |= r < 0;
			break;
		}
		if (s->resp.kind != IR_UNTAGGED)
			s->broken = 1;
		untagged(s);
	}
	free(err);
	return !s->broken;
}

void imap_logout(struct imap_ses *s)
{
	if (s->c.curl && !s->broken) {
		struct imap_reply rep;
		char *err = NULL;
		s->c.timeout_ms = s->c.timeout_ms > 10000 ? 10000 : s->c.timeout_ms;
		imap_simple(s, &rep, &err, "LOGOUT");
		free(err);
	}
	conn_close(&s->c);
	s->nfly = 0;
	s->ioff = s->ilen = 0;
	imap_rd_start(&s->rd, &s->resp);
}
