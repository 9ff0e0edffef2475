/* deliver-smtp.c — `forward ADDRESS…`: hand the message to an SMTP
 * server (a local MTA on port 25, a submission server on 587/465).
 * libcurl connects, does TLS or STARTTLS, EHLO and AUTH (CONNECT_ONLY);
 * smtp-tx.c runs each transaction over that connection, pipelined when
 * the server allows.  One connection, owned by the sending thread
 * (dqueue.c), carries every message of a run, across batches; it
 * is opened again only for another server or after a failure.  The
 * message is streamed from memory or, when spilled, from its temp file
 * in chunks; smtp-tx.c turns every line end into CRLF and dot-stuffs.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "deliver.h"
#include "proxy.h"
#include "login-hint.h"
#include "secret.h"
#include "msg.h"
#include "smtp.h"
#include "dqueue.h"

/* A forward target's settings: written on the calling thread before its
 * first job is queued, read-only to the sending thread after that. */
struct smtp {
	const struct account *a;
	char   *url, *where;        /* smtp://host:port/helo, and "host:port" for messages */
	char   *key;                /* what a connection must match to be reused */
	char   *secret;
	char   *bad;            /* why this target cannot work (set up once) */
	int     bad_code;       /* and the exit code it implies */
	char  **rcpt;
};

/* The sending thread's (set up on its first use, closed at exit after
 * the thread ended). */
static struct sender conn;
static char detail[CURL_ERROR_SIZE];

static void smtp_shutdown(void)
{
	sender_shutdown(&conn);
}

static const struct down *down_for(const struct account *a)
{
	return down_find(conn.downs, a->name);
}

static void mark_down(const struct account *a, int code, const char *why)
{
	down_mark(&conn.downs, a->name, code, why);
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

static const char *smtp_ca(const struct account *a)
{
	return a->smtp_tls_ca_file ? a->smtp_tls_ca_file : a->tls_ca_file;
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
	int rc = account_secret(a, SIDE_SMTP, 0, &s->secret, err);
	s->bad_code = rc < 0 ? SECRET_CODE(rc) : 0;
	return rc < 0 ? -1 : 0;
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
	s->key = xasprintf("%s\n%d\n%s\n%s", s->url, (int)a->smtp_tls,
			   smtp_ca(a) ? smtp_ca(a) : "", a->smtp_user ? a->smtp_user : "");
	if ((s->rcpt = smtp_rcpts(t->dest.argv, "forward", err)) == NULL)
		return -1;
	return get_secret(s, host, err);
}

/* libcurl's part: connect, TLS, EHLO, AUTH; smtp-tx.c does the rest. */
static void setup(const struct smtp *s, CURL *h, const char *secret)
{
	const struct account *a = s->a;
	long secs = a->timeout > 0 ? a->timeout : 60;
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	proxy_setup(h, a, SIDE_SMTP);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, secs);
	curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, secs);
	if (a->smtp_tls == TLS_STARTTLS)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (smtp_ca(a))
		curl_easy_setopt(h, CURLOPT_CAINFO, smtp_ca(a));
	if (a->smtp_user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, a->smtp_user);
		if (a->smtp_auth == AUTH_XOAUTH2 || a->smtp_auth == AUTH_OAUTHBEARER)
			curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, secret);
		else
			curl_easy_setopt(h, CURLOPT_PASSWORD, secret);
		if (mechanism(a->smtp_auth))
			curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, mechanism(a->smtp_auth));
		curl_easy_setopt(h, CURLOPT_SASL_IR, 1L);
	}
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	/* the debug callback is how the EHLO and AUTH replies are seen */
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, dialog_trace);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &conn.dlg);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
}

/* Envelope sender: smtp_from, else the message's Return-Path ("<>" for
 * a bounce stays null), else the account's user if it is an address,
 * else the From address, else the null sender. */
static char *envelope_from(const struct account *a, const struct msg *m,
			   const struct envelope *e)
{
	if (a->smtp_from)
		return xstrdup(a->smtp_from);
	char *addr = return_path(m);
	if (addr)
		return addr;
	if (a->user && strchr(a->user, '@'))
		return xstrdup(a->user);
	return xstrdup(e->sender ? e->sender : "");
}

/* ------------------------------------------------------------ outcome */

/* The connection, TLS or the login failed: nothing of the message was
 * said yet.  The rest of the run skips this server. */
static int unreachable(const struct smtp *s, CURLcode rc, struct outcome *o)
{
	const char *why = *detail ? detail : curl_easy_strerror(rc);
	const struct exch *auth = dialog_find(&conn.dlg, "AUTH");
	char *msg;
	if (rc == CURLE_LOGIN_DENIED) {
		o->fail_code = EX_NOPERM;
		char *hint = login_hint(s->a, SIDE_SMTP);
		msg = xasprintf("SMTP login refused for user %s at %s: %d %s (%s)", s->a->smtp_user,
				s->where, auth ? auth->code : 0, auth && auth->text ? auth->text : why,
				hint);
		free(hint);
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
		   rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_USE_SSL_FAILED) {
		o->fail_code = EX_UNAVAILABLE;
		msg = xasprintf("TLS with SMTP server %s failed: %s", s->where, why);
	} else {
		o->fail_code = EX_TEMPFAIL;
		msg = xasprintf("cannot forward through %s: %s", s->where, why);
		proxy_blame(s->a, SIDE_SMTP, &msg);
	}
	mark_down(s->a, o->fail_code, msg);
	seterr(&o->err, "%s", msg);
	free(msg);
	return -1;
}

/* ------------------------------------------------------------ sending thread */

/* Connect and log in with secret: CURLE_OK with *hp and *sock. */
static CURLcode dial_once(const struct smtp *s, const char *secret, CURL **hp,
			  curl_socket_t *sock)
{
	CURL *h = curl_easy_init();
	*hp = NULL;
	*sock = CURL_SOCKET_BAD;
	if (h == NULL)
		return CURLE_FAILED_INIT;
	detail[0] = '\0';
	dialog_reset(&conn.dlg);
	sender_name(&conn, s->a->name);
	setup(s, h, secret);
	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, sock);
	if (rc == CURLE_OK && *sock == CURL_SOCKET_BAD)
		rc = CURLE_COULDNT_CONNECT;
	if (rc != CURLE_OK)
		curl_easy_cleanup(h);
	else
		*hp = h;
	return rc;
}

/* An OAuth2 side reads its token at each connection (a run may outlast
 * it) and, when the server refuses it, refreshes it once. */
static int oauth_token(const struct smtp *s, int refresh, char **tok, struct outcome *o)
{
	int rc = account_secret(s->a, SIDE_SMTP, refresh, tok, &o->err);
	if (rc == 0)
		return 0;
	o->fail_code = SECRET_CODE(rc);
	mark_down(s->a, o->fail_code, o->err);
	return -1;
}

static int dial(const struct smtp *s, struct outcome *o)
{
	int oauth = account_oauth(s->a, SIDE_SMTP);
	char *tok = NULL;
	CURL *h;
	curl_socket_t sock;
	if (oauth && oauth_token(s, 0, &tok, o) < 0)
		return -1;
	CURLcode rc = dial_once(s, oauth ? tok : s->secret, &h, &sock);
	if (rc == CURLE_LOGIN_DENIED && oauth) {
		log_info(s->a->name, "%s refused the OAuth2 access token: getting a new one",
			 s->where);
		secret_free(tok);
		tok = NULL;
		if (oauth_token(s, 1, &tok, o) < 0)
			return -1;
		rc = dial_once(s, tok, &h, &sock);
	}
	secret_free(tok);
	if (rc != CURLE_OK) {
		o->fail_code = EX_TEMPFAIL;
		return rc == CURLE_FAILED_INIT ? seterr(&o->err, "libcurl initialisation failed")
					       : unreachable(s, rc, o);
	}
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);   /* smtp-tx.c logs from here on */
	struct link *l = &conn.link;
	conn.acct = xstrdup(s->a->name);
	l->c = (struct conn){ .curl = h, .sock = (int)sock, .acct = conn.acct,
			      .timeout_ms = (s->a->timeout > 0 ? s->a->timeout : 60) * 1000 };
	l->pipelining = dialog_ehlo_has(&conn.dlg, "PIPELINING");
	l->broken = 0;
	l->ilen = l->olen = 0;
	conn.key = xstrdup(s->key);
	return 0;
}

/* The open connection if it is to this target's server as this user,
 * else a new one; *kept: it carried an earlier message. */
static int connection(const void *target, int *kept, struct outcome *o)
{
	const struct smtp *s = target;
	*kept = sender_kept(&conn, conn.link.c.curl != NULL, s->key, s->a->name, s->where);
	return *kept ? 0 : dial(s, o);
}

/* The job after j, when its envelope may go out with j's end: the same
 * server, one target, not given up on. */
static const struct job *follower(const struct smtp *s, const struct job *j)
{
	const struct job *nx = dqueue_peek(j);
	if (nx == NULL || nx->nlegs != 1 || nx->legs[0].ops != &deliver_smtp)
		return NULL;
	const struct smtp *ns = nx->legs[0].priv;
	if (ns->key == NULL || strcmp(ns->key, s->key) != 0 || down_for(ns->a))
		return NULL;
	return nx;
}

static int transfer(const struct smtp *s, const struct job *j, int last, struct outcome *o)
{
	const struct job *nx = last ? follower(s, j) : NULL;
	const struct smtp *ns = nx ? nx->legs[0].priv : NULL;
	struct leg_tx t = { .s = s, .connect = connection, .next = nx, .rcpt = s->rcpt,
			    .next_rcpt = ns ? ns->rcpt : NULL,
			    .v = { .acct = s->a->name, .where = s->where, .done = "forwarded to",
				   .partial_ok = s->a->on_partial_accept } };
	return sender_transfer(&conn, j, &t, o);
}

static int send_leg(const struct smtp *s, const struct job *j, int last, struct outcome *o)
{
	const struct down *dn = down_for(s->a);
	if (dn) {
		o->fail_code = dn->code;
		return seterr(&o->err, "%s", dn->why);
	}
	return transfer(s, j, last, o);
}

static int smtp_send(struct job *j, size_t i, struct outcome *o)
{
	sender_first_use(&conn);
	o->rc = send_leg(j->legs[i].priv, j, i + 1 == j->nlegs, o);
	return 0;
}

/* ------------------------------------------------------------ calling thread */

/* The target's settings, made on its first message; -1 if it cannot work. */
static int smtp_prepare(struct target *t, struct job *j, const struct envelope *e, char **err)
{
	struct smtp *s = t->priv;
	if (s->a == NULL && start(s, t, e, &s->bad) < 0 && s->bad == NULL)
		s->bad = xstrdup("forward: cannot start");
	if (s->bad) {   /* a bad address, password command or OAuth2 grant: no use trying */
		t->fail_code = s->bad_code ? s->bad_code : EX_CONFIG;
		return seterr(err, "%s", s->bad);
	}
	if (j->from == NULL)
		j->from = envelope_from(s->a, j->m, e);
	return 0;
}

/* Mixed with local destinations (deliver_to()'s order and undo) and in
 * `popsift filter`: queued behind the background ones and waited for. */
static int smtp_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	return dqueue_write(t, m, e, err);
}

static int smtp_open(struct target *t, char **err)
{
	(void)err;   /* nothing to do before the first message names the account */
	t->priv = xcalloc(1, sizeof(struct smtp));
	return 0;
}

static void smtp_close(struct target *t)
{
	struct smtp *s = t->priv;
	if (s == NULL)
		return;
	dqueue_idle();   /* no job may still read these settings */
	if (s->secret)
		memset(s->secret, 0, strlen(s->secret));
	free(s->secret);
	free(s->url);
	free(s->where);
	free(s->bad);
	free(s->key);
	smtp_rcpts_free(s->rcpt);
	free(s);
	t->priv = NULL;
}


static const struct async_ops smtp_async = {
	.prepare = smtp_prepare,
	.send = smtp_send,
	.shutdown = smtp_shutdown,
};

const struct deliverer deliver_smtp = {
	.name = "forward",
	.undoable = 0,
	.open = smtp_open,
	.write = smtp_write,
	.undo = deliver_no_undo,
	.commit = deliver_no_commit,
	.close = smtp_close,
	.recover = deliver_no_recover,
	.async = &smtp_async,
};
