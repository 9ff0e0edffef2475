/* deliver-smtp.c — `forward ADDRESS…`: hand the message to an SMTP
 * server (a local MTA on port 25, a submission server on 587/465) with
 * libcurl.  One easy handle serves the whole process, owned by the
 * sending thread (smtp-queue.c), so libcurl's connection cache carries
 * every message of a run over one connection, across batches.  The
 * message is streamed from memory or, when spilled, from its temp file
 * in chunks; bare LF becomes CRLF here, dot-stuffing and the final "."
 * are libcurl's.
 *
 * The calling thread checks the target's settings and builds a job;
 * the sending thread runs the dialogue and judges it into the job's
 * outcome.  Nothing in a struct target is touched by the sending thread.
 *
 * Outcomes: 250 delivered; 4xx, a dropped connection or a timeout
 * "deferred" (retried next run); 5xx "rejected" (kept on the server, not
 * retried); a refused login fails the run with EX_NOPERM.  What the MTA
 * accepted cannot be taken back: at-least-once. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "deliver.h"
#include "mime.h"
#include "msg.h"
#include "smtp.h"
#include "smtp-queue.h"

#define CHUNK (256u << 10)   /* a spilled message is read this much at a time */

/* The message as the server must see it: the envelope's prepend lines,
 * then the message, LF turned into CRLF. */
struct reader {
	const char *pre;
	size_t      prelen;
	const struct msg *m;
	size_t      off;            /* bytes of prepend + message consumed */
	char       *buf;            /* CHUNK bytes of the spill file ... */
	size_t      bufoff, buflen; /* ... starting at this message offset */
	int         started;
	int         failed;         /* reading the spill file failed */
	int         aborted;        /* refused recipients: nothing sent */
	int         partial_ok;     /* on_partial accept */
	const struct dialog *dlg;
};

/* A forward target's settings: written on the calling thread before its
 * first job is queued, read-only to the sending thread after that. */
struct smtp {
	const struct account *a;
	char   *url, *where;        /* smtp://host:port/helo, and "host:port" for messages */
	char   *secret;
	char   *bad;            /* why this target cannot work (set up once) */
	struct curl_slist *rcpt;
};

/* An account whose server cannot be reached or refuses the login: the
 * rest of the run fails fast instead of trying again per message. */
struct down {
	char *acct, *why;
	int   code;
	struct down *next;
};

/* The sending thread's (smtp-queue.c opens it before the thread starts
 * and closes it after the thread ends). */
static struct {
	CURL  *h;
	struct reader rd;
	struct dialog dlg;
	char   detail[CURL_ERROR_SIZE];
	struct down *downs;
} conn;

void smtp_conn_open(void)
{
	conn.h = curl_easy_init();   /* NULL: every job fails, see transfer() */
}

void smtp_conn_close(void)
{
	if (conn.h)
		curl_easy_cleanup(conn.h);   /* says QUIT */
	conn.h = NULL;
	dialog_free(&conn.dlg);
	free(conn.rd.buf);
	conn.rd.buf = NULL;
	while (conn.downs) {
		struct down *d = conn.downs;
		conn.downs = d->next;
		free(d->acct);
		free(d->why);
		free(d);
	}
}

static const struct down *down_for(const struct account *a)
{
	for (const struct down *d = conn.downs; d; d = d->next)
		if (strcmp(d->acct, a->name) == 0)
			return d;
	return NULL;
}

static void mark_down(const struct account *a, int code, const char *why)
{
	if (down_for(a))
		return;
	struct down *d = xcalloc(1, sizeof *d);
	d->acct = xstrdup(a->name);
	d->why = xstrdup(why);
	d->code = code;
	d->next = conn.downs;
	conn.downs = d;
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

/* Copy src into out turning each LF into CRLF; returns bytes of src used. */
static size_t crlf_copy(const char *src, size_t n, char *out, size_t cap, size_t *o)
{
	size_t i = 0;
	while (i < n && *o + 1 < cap) {
		size_t room = cap - *o - 1;   /* keep one byte for the CR of a CRLF */
		size_t run = n - i < room ? n - i : room;
		const char *lf = memchr(src + i, '\n', run);
		size_t plain = lf ? (size_t)(lf - (src + i)) : run;
		memcpy(out + *o, src + i, plain);
		*o += plain;
		i += plain;
		if (lf) {
			out[(*o)++] = '\r';
			out[(*o)++] = '\n';
			i++;
		}
	}
	return i;
}

/* Some recipients refused and on_partial is not accept: stop before the
 * first byte, so the connection drops mid-DATA and the server discards
 * the message for the recipients it accepted too. */
static int refused_some(const struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++)
		if (!strcmp(d->ex[i].cmd, "RCPT") && d->ex[i].code / 100 != 2)
			return 1;
	return 0;
}

static size_t on_read(char *out, size_t size, size_t nitems, void *arg)
{
	struct reader *r = arg;
	size_t cap = size * nitems, o = 0;
	if (!r->started) {
		r->started = 1;
		if (!r->partial_ok && refused_some(r->dlg)) {
			r->aborted = 1;
			return CURL_READFUNC_ABORT;
		}
	}
	while (o + 1 < cap) {
		const char *p;
		size_t n;
		if (next_span(r, &p, &n) < 0) {
			r->failed = 1;
			return CURL_READFUNC_ABORT;
		}
		if (n == 0)
			break;
		r->off += crlf_copy(p, n, out, cap, &o);
	}
	return o;
}

/* ------------------------------------------------------------ setup */

static int loopback(const char *host)
{
	return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

static const char *mechanism(enum auth_mode m)
{
	switch (m) {
	case AUTH_PLAIN:    return "AUTH=PLAIN";
	case AUTH_LOGIN:    return "AUTH=LOGIN";
	case AUTH_CRAM_MD5: return "AUTH=CRAM-MD5";
	case AUTH_XOAUTH2:  return "AUTH=XOAUTH2";
	case AUTH_OAUTHBEARER: return "AUTH=OAUTHBEARER";
	default:            return NULL;
	}
}

/* The SMTP settings of `popsift filter`, which has no account. */
static const struct account no_account = {
	.name = "filter", .smtp_host = "localhost", .smtp_port = 25, .smtp_tls = TLS_OFF,
	.timeout = 60,
};

static int get_secret(struct smtp *s, const char *host, char **err)
{
	const struct account *a = s->a;
	if (a->smtp_user == NULL)
		return 0;
	if (a->smtp_tls == TLS_OFF && !loopback(host) && a->smtp_auth != AUTH_CRAM_MD5)
		return seterr(err, "refusing to send the SMTP password to %s in clear text: "
			      "use smtp_tls starttls or on", host);
	if (a->smtp_password_command)
		return run_password_command(a->smtp_password_command, &s->secret, err);
	s->secret = xstrdup(a->smtp_password ? a->smtp_password : "");
	return 0;
}

static struct curl_slist *recipients(char **argv, char **err)
{
	struct curl_slist *l = NULL;
	for (size_t i = 0; argv && argv[i]; i++) {
		if (argv[i][0] == '\0' || strpbrk(argv[i], "\r\n<> \t")) {
			curl_slist_free_all(l);
			seterr(err, "forward: \"%s\" is not a mail address", argv[i]);
			return NULL;
		}
		l = curl_slist_append(l, argv[i]);
	}
	if (l == NULL)
		seterr(err, "forward: no address");
	return l;
}

/* On the first message of a batch: the account is known only now. */
static int start(struct smtp *s, struct target *t, const struct envelope *e, char **err)
{
	s->a = e->account ? e->account : &no_account;
	const struct account *a = s->a;
	const char *host = a->smtp_host ? a->smtp_host : "localhost";
	int v6 = strchr(host, ':') != NULL;
	char *helo = curl_easy_escape(NULL, a->smtp_helo ? a->smtp_helo : "", 0);
	s->url = xasprintf("%s://%s%s%s:%d/%s", a->smtp_tls == TLS_ON ? "smtps" : "smtp",
			   v6 ? "[" : "", host, v6 ? "]" : "", a->smtp_port, helo ? helo : "");
	curl_free(helo);
	s->where = xasprintf("%s:%d", host, a->smtp_port);
	if ((s->rcpt = recipients(t->dest.argv, err)) == NULL)
		return -1;
	return get_secret(s, host, err);
}

static void setup(const struct smtp *s, CURL *h, const char *from)
{
	const struct account *a = s->a;
	long secs = a->timeout > 0 ? a->timeout : 60;
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, secs);
	curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, secs);
	/* a stalled upload has no reply to time out on */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
	if (a->smtp_tls == TLS_STARTTLS)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	const char *ca = a->smtp_tls_ca_file ? a->smtp_tls_ca_file : a->tls_ca_file;
	if (ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	if (a->smtp_user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, a->smtp_user);
		if (a->smtp_auth == AUTH_XOAUTH2 || a->smtp_auth == AUTH_OAUTHBEARER)
			curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, s->secret);
		else
			curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret);
		if (mechanism(a->smtp_auth))
			curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, mechanism(a->smtp_auth));
		curl_easy_setopt(h, CURLOPT_SASL_IR, 1L);
	}
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, s->rcpt);
	/* 7.69+: go on past refused recipients, so all of them can be named
	 * (the spelling of 7.88; later versions keep it as an alias) */
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)CHUNK);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &conn.rd);
	/* the debug callback is how the replies are seen, so always on */
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, dialog_trace);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &conn.dlg);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, conn.detail);
}

/* Envelope sender: smtp_from, else the message's Return-Path ("<>" for
 * a bounce stays null), else the account's user if it is an address,
 * else the From address, else the null sender. */
static char *envelope_from(const struct account *a, struct msg *m, const struct envelope *e)
{
	if (a->smtp_from)
		return xstrdup(a->smtp_from);
	size_t hl;
	const char *hdr = msg_header(m, &hl);
	char *rp = mime_header_get(hdr, hl, "Return-Path", NULL);
	char *addr = rp ? mime_address(rp, strlen(rp)) : NULL;
	free(rp);
	if (addr)
		return addr;
	if (a->user && strchr(a->user, '@'))
		return xstrdup(a->user);
	return xstrdup(e->sender ? e->sender : "");
}

/* ------------------------------------------------------------ outcome */

static int permanent(int code)
{
	return code >= 500 && code <= 599;
}

/* "a@x (550 no such user), b@y (451 try later)" for the recipients that
 * were (ok = 0) refused or (ok = 1) accepted. */
static char *rcpt_list(const struct dialog *d, int ok)
{
	char *out = NULL;
	for (size_t i = 0; i < d->nex; i++) {
		const struct exch *e = &d->ex[i];
		if (strcmp(e->cmd, "RCPT") != 0 || (e->code / 100 == 2) != ok)
			continue;
		char *prev = out;
		if (ok)
			out = xasprintf("%s%s%s", prev ? prev : "", prev ? ", " : "", e->arg ? e->arg : "?");
		else
			out = xasprintf("%s%s%s (%d %s)", prev ? prev : "", prev ? ", " : "",
					e->arg ? e->arg : "?", e->code, e->text ? e->text : "");
		free(prev);
	}
	return out ? out : xstrdup("nobody");
}

/* Refused recipients: rejected when every refusal is permanent. */
static int all_refusals_permanent(const struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++)
		if (!strcmp(d->ex[i].cmd, "RCPT") && d->ex[i].code / 100 != 2 && !permanent(d->ex[i].code))
			return 0;
	return 1;
}

static int outcome(struct outcome *o, int rejected, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int outcome(struct outcome *o, int rejected, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	o->rejected = rejected;
	o->fail_code = rejected ? EX_DATAERR : EX_TEMPFAIL;
	seterr(&o->err, "%s%s", msg ? msg : "forward failed",
	       rejected ? " (rejected: not retried)" : " (deferred: retried next run)");
	free(msg);
	return -1;
}

/* Nothing of the message was said yet: the connection, TLS or the login
 * failed.  The rest of the run skips this server. */
static int unreachable(const struct smtp *s, CURLcode rc, struct outcome *o)
{
	const char *why = *conn.detail ? conn.detail : curl_easy_strerror(rc);
	const struct exch *auth = dialog_find(&conn.dlg, "AUTH");
	char *msg;
	if (rc == CURLE_LOGIN_DENIED) {
		o->fail_code = EX_NOPERM;
		msg = xasprintf("SMTP login refused for user %s at %s: %d %s", s->a->smtp_user,
				s->where, auth ? auth->code : 0, auth && auth->text ? auth->text : why);
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
		   rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_USE_SSL_FAILED) {
		o->fail_code = EX_UNAVAILABLE;
		msg = xasprintf("TLS with SMTP server %s failed: %s", s->where, why);
	} else {
		o->fail_code = EX_TEMPFAIL;
		msg = xasprintf("cannot forward through %s: %s", s->where, why);
	}
	mark_down(s->a, o->fail_code, msg);
	seterr(&o->err, "%s", msg);
	free(msg);
	return -1;
}

/* The first reply that refused the message, in SMTP order. */
static const struct exch *refusal(const struct dialog *d)
{
	for (size_t i = 0; i < d->nex; i++) {
		const struct exch *e = &d->ex[i];
		if (e->code >= 400 && (!strcmp(e->cmd, "MAIL") || !strcmp(e->cmd, "DATA") ||
				       !strcmp(e->cmd, ".")))
			return e;
	}
	return NULL;
}

static int refused_rcpts(const struct smtp *s, struct outcome *o)
{
	const struct dialog *d = &conn.dlg;
	char *bad = rcpt_list(d, 0), *good = rcpt_list(d, 1);
	int perm = all_refusals_permanent(d);
	int r = conn.rd.aborted
		? outcome(o, perm, "%s refused %s and accepted %s: sent to nobody (on_partial keep)",
			  s->where, bad, good)
		: outcome(o, perm, "%s refused %s", s->where, bad);
	free(bad);
	free(good);
	return r;
}

static int judge(const struct smtp *s, CURLcode rc, struct outcome *o)
{
	const struct dialog *d = &conn.dlg;
	if (rc == CURLE_OK) {
		if (refused_some(d)) {
			char *bad = rcpt_list(d, 0), *good = rcpt_list(d, 1);
			log_err(s->a->name, "forwarded to %s only: %s refused %s (on_partial accept)",
				good, s->where, bad);
			free(bad);
			free(good);
		}
		return 0;
	}
	if (conn.rd.failed)
		return outcome(o, 0, "reading the message back failed: %s", strerror(errno));
	if (dialog_find(d, "MAIL") == NULL)
		return unreachable(s, rc, o);
	if (conn.rd.aborted || (dialog_find(d, "DATA") == NULL && refused_some(d)))
		return refused_rcpts(s, o);
	const struct exch *e = refusal(d);
	if (e)
		return outcome(o, permanent(e->code), "%s answered %s%s%s: %d %s", s->where,
			       e->cmd[0] == '.' ? "the end of the message" : e->cmd,
			       e->arg ? " " : "", e->arg ? e->arg : "", e->code, e->text ? e->text : "");
	return outcome(o, 0, "the connection to %s failed during the transfer: %s", s->where,
		       *conn.detail ? conn.detail : curl_easy_strerror(rc));
}

/* A kept connection the server has closed meanwhile fails before any
 * reply: nothing was accepted, so one retry on a new connection is safe. */
static int stale(CURL *h, CURLcode rc, const struct dialog *d)
{
	long fresh = 0;
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &fresh);
	for (size_t i = 0; i < d->nex; i++)
		if (d->ex[i].code != 0)
			return 0;
	return fresh == 0 && (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
			      rc == CURLE_GOT_NOTHING);
}

/* ------------------------------------------------------------ sending thread */

static void reader_start(const struct smtp *s, const struct job *j)
{
	struct reader *r = &conn.rd;
	char *buf = r->buf;
	memset(r, 0, sizeof *r);
	r->buf = buf;
	if (j->m->fd >= 0 && r->buf == NULL)
		r->buf = xmalloc(CHUNK);
	r->pre = j->pre;
	r->prelen = j->prelen;
	r->m = j->m;
	r->partial_ok = s->a->on_partial_accept;
	r->dlg = &conn.dlg;
}

static int transfer(const struct smtp *s, const struct job *j, struct outcome *o)
{
	CURL *h = conn.h;
	if (h == NULL) {
		o->fail_code = EX_TEMPFAIL;
		return seterr(&o->err, "libcurl initialisation failed");
	}
	conn.dlg.acct = s->a->name;
	CURLcode rc;
	for (int attempt = 0;; attempt++) {
		conn.detail[0] = '\0';
		dialog_reset(&conn.dlg);
		reader_start(s, j);
		curl_easy_reset(h);
		setup(s, h, j->from);
		if (attempt > 0)
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		rc = curl_easy_perform(h);
		if (attempt > 0 || !stale(h, rc, &conn.dlg))
			break;
		log_debug(s->a->name, "%s closed the kept connection: connecting again", s->where);
	}
	int r = judge(s, rc, o);
	/* keep the connections, drop every pointer into this job and target */
	curl_easy_reset(h);
	return r;
}

static int send_leg(const struct smtp *s, const struct job *j, struct outcome *o)
{
	const struct down *dn = down_for(s->a);
	if (dn) {
		o->fail_code = dn->code;
		return seterr(&o->err, "%s", dn->why);
	}
	return transfer(s, j, o);
}

void smtp_send(struct job *j)
{
	j->out.rc = 0;
	for (size_t i = 0; j->out.rc == 0 && i < j->nlegs; i++)
		j->out.rc = send_leg(j->legs[i], j, &j->out);
}

/* ------------------------------------------------------------ calling thread */

/* The target's settings, made on its first message; -1 if it cannot work. */
static int prepare(struct target *t, const struct envelope *e, char **err)
{
	struct smtp *s = t->smtp;
	t->rejected = 0;
	t->fail_code = 0;
	if (s->a == NULL && start(s, t, e, &s->bad) < 0 && s->bad == NULL)
		s->bad = xstrdup("forward: cannot start");
	if (s->bad) {   /* a bad address or password command: no use trying */
		t->fail_code = EX_CONFIG;
		return seterr(err, "%s", s->bad);
	}
	return 0;
}

static struct job *job_new(struct target **ts, size_t n, struct msg *m, const struct envelope *e)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->legs = xcalloc(n, sizeof *j->legs);
	for (size_t i = 0; i < n; i++)
		j->legs[i] = ts[i]->smtp;
	j->nlegs = n;
	j->from = envelope_from(j->legs[0]->a, m, e);
	j->m = m;
	j->pre = e->prepend;
	j->prelen = e->prependlen;
	msg_init(&j->copy);
	return j;
}

/* The job's own message: the caller reuses its buffers for the next one.
 * A spilled message's unlinked temp file lives on through the dup. */
static int keep_msg(struct job *j, const struct msg *m, const struct envelope *e, char **err)
{
	struct msg *c = &j->copy;
	if (m->fd >= 0 && (c->fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return seterr(err, "cannot keep the message's temp file: %s", strerror(errno));
	if (m->fd < 0 && m->memlen > 0) {
		c->mem = xmalloc(m->memlen);
		memcpy(c->mem, m->mem, m->memlen);
		c->memlen = c->memcap = m->memlen;
	}
	c->size = m->size;
	j->m = c;
	j->precopy = xmalloc(e->prependlen + 1);
	memcpy(j->precopy, e->prepend, e->prependlen);
	j->pre = j->precopy;
	/* a spilled message costs disk rather than memory: bounded all the same */
	j->charge = e->prependlen + m->size;
	return 0;
}

int forward_later(struct target **ts, size_t n, struct msg *m, const struct envelope *e,
		  void *arg, char **err)
{
	for (size_t i = 0; i < n; i++)
		if (prepare(ts[i], e, err) < 0)
			return -1;
	struct job *j = job_new(ts, n, m, e);
	if (keep_msg(j, m, e, err) < 0) {
		ts[0]->fail_code = EX_TEMPFAIL;
		job_free(j);
		return -1;
	}
	j->out.arg = arg;
	sendq_put(j);
	return 0;
}

/* Mixed with local destinations (deliver_to()'s order and undo) and in
 * `popsift filter`: queued behind the background ones and waited for. */
static int smtp_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	if (prepare(t, e, err) < 0)
		return -1;
	struct job *j = job_new(&t, 1, m, e);
	j->waited = 1;
	sendq_put(j);
	sendq_wait(j);
	int rc = j->out.rc;
	t->rejected = j->out.rejected;
	t->fail_code = j->out.fail_code;
	if (rc < 0) {
		free(*err);
		*err = j->out.err;
		j->out.err = NULL;
	}
	job_free(j);
	return rc;
}

static int smtp_open(struct target *t, char **err)
{
	(void)err;   /* nothing to do before the first message names the account */
	t->smtp = xcalloc(1, sizeof(struct smtp));
	return 0;
}

static void smtp_close(struct target *t)
{
	struct smtp *s = t->smtp;
	if (s == NULL)
		return;
	sendq_idle();   /* no job may still read these settings */
	if (s->secret)
		memset(s->secret, 0, strlen(s->secret));
	free(s->secret);
	free(s->url);
	free(s->where);
	free(s->bad);
	curl_slist_free_all(s->rcpt);
	free(s);
	t->smtp = NULL;
}

static void smtp_undo(struct target *t) { (void)t; }
/* Each message was accepted with its own 250: nothing more to make durable. */
static int smtp_commit(struct target *t, char **err) { (void)t; (void)err; return 0; }
static int smtp_recover(const struct journal *j, char **err) { (void)j; (void)err; return 0; }

const struct deliverer deliver_smtp = {
	.name = "forward",
	.undoable = 0,
	.open = smtp_open,
	.write = smtp_write,
	.undo = smtp_undo,
	.commit = smtp_commit,
	.close = smtp_close,
	.recover = smtp_recover,
};
