/* fetch-session.c — the start of a session: the secret, the connection
 * and the login.  A server whose capabilities are remembered from its
 * last full login (state-caps.c) and that pipelines is reached the
 * short way: no CAPA, and USER/PASS go out in one write with the first
 * commands (the listing), so an empty poll costs the connect, the
 * greeting and one round trip.  Anything that fails on the short way
 * forgets what was remembered: the next session looks again. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "fetch.h"
#include "pop3.h"
#include "secret.h"
#include "state-caps.h"

/* How long what CAPA said is trusted without asking again. */
#define CAPS_MAX_AGE (24 * 3600)

/* The password, password_command's output or an OAuth2 access token
 * (refresh: the server refused the last one). */
int fetch_secret(struct fetch *f, int refresh)
{
	char *err = NULL;
	secret_free(f->secret);
	f->secret = NULL;
	int rc = account_secret(f->a, SIDE_POP3, refresh, &f->secret, &err);
	if (rc < 0) {
		fetch_fail(f, SECRET_CODE(rc), "%s", err);
		free(err);
		return -1;
	}
	if (f->secret == NULL)
		f->secret = xstrdup("");
	return 0;
}

/* An OAuth2 access token can be refused before it expires (revoked, or
 * the clock is off): one new token, one more login. */
static int open_full(struct fetch *f, struct conn *c)
{
	int code = 0;
	char *err = NULL;
	int rc = conn_open(c, f->a, f->secret, &code, &err);
	if (rc < 0 && code == EX_NOPERM && account_oauth(f->a, SIDE_POP3)) {
		log_info(f->a->name, "%s: getting a new OAuth2 access token", err);
		free(err);
		err = NULL;
		if (fetch_secret(f, 1) < 0)
			return -1;
		rc = conn_open(c, f->a, f->secret, &code, &err);
	}
	if (rc < 0) {
		fetch_fail(f, code, "%s", err);
		free(err);
	}
	return rc;
}

static char *caps_key(const struct account *a)
{
	return xasprintf("%s:%d:%s", a->host, a->port, a->tls == TLS_ON ? "tls" : "plain");
}

static void caps_note(struct fetch *f, const char *what, int rc, char *err)
{
	if (rc < 0)
		log_err(f->a->name, "%s: %s", what, err);
	free(err);
}

/* 1 when the account may take the short way with what *k remembers. */
static int remembered(struct fetch *f, const char *key, struct caps *k)
{
	char *err = NULL;
	long long checked = 0;
	if (!conn_fast_ok(f->a, NULL))
		return 0;
	int rc = state_caps_get(f->st, key, k, &checked, &err);
	caps_note(f, "remembered capabilities", rc, err);
	if (rc <= 0 || (long long)time(NULL) - checked >= CAPS_MAX_AGE)
		return 0;
	return conn_fast_ok(f->a, k);
}

/* The short way: 0 open, 1 take the long way, -1 failed. */
static int open_fast(struct fetch *f, struct conn *c, const char *key, const struct caps *k)
{
	int code = 0;
	char *err = NULL;
	log_debug(f->a->name, "%s pipelines (CAPA of an earlier session): no CAPA, the login "
		  "goes with the first commands", f->a->host);
	int rc = conn_open_fast(c, f->a, k, &code, &err);
	if (rc != 0)
		state_caps_forget(f->st, key, NULL);
	if (rc > 0)
		log_info(f->a->name, "%s is not as remembered (%s): asking CAPA", f->a->host, err);
	else if (rc < 0)
		fetch_fail(f, code, "%s", err);
	free(err);
	return rc;
}

static int on_login(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	const struct fetch *f = arg;
	return ev == P3_ERR ? pop3_login_refused(p, f->a, s, n) : 0;
}

int session_open(struct fetch *f, struct conn *c)
{
	struct caps k = { 0 };
	char *key = caps_key(f->a);
	int rc = remembered(f, key, &k) ? open_fast(f, c, key, &k) : 1;
	if (rc > 0 && (rc = open_full(f, c)) == 0 && conn_fast_ok(f->a, NULL)) {
		char *err = NULL;
		c->caps.pipelining &= !c->caps.split_login;
		int w = c->caps.known ? state_caps_put(f->st, key, &c->caps, &err) :
			state_caps_forget(f->st, key, &err);
		caps_note(f, "remembering capabilities", w, err);
	}
	free(key);
	if (rc < 0)
		return -1;
	f->p = pop3_new(c, f->a->name, FETCH_WINDOW);
	pop3_stoppable(f->p, 1);
	if (c->need_login) {
		pop3_queue(f->p, P3_SINGLE, 0, on_login, f, "USER %s", f->a->user);
		pop3_queue(f->p, P3_SINGLE, 1, on_login, f, "PASS %s", f->secret);
		/* on the short way the listing's commands go behind them, in the
		 * same write; on the long way the login is answered first, as a
		 * server may lose what follows PASS though CAPA says PIPELINING
		 * (Courier): the short way's failure is remembered, a login's
		 * would be every session's */
		if (!c->fast && pop3_flush(f->p) < 0)
			return fetch_fail(f, pop3_code(f->p) ? pop3_code(f->p) : EX_TEMPFAIL, "%s",
				     pop3_error(f->p));
	}
	return 0;
}

/* A session on the short way failed before its listing came: the next
 * one asks CAPA again, and unless the login was refused (a wrong
 * password is no fault of the way in) the short way is not taken again
 * until the server's CAPA changes.  A failure after the listing (a full
 * disk, a message's delivery) or a stop by a signal says nothing about
 * the way in: a daemon restarted mid-poll must not cost every account
 * on that server a round trip from then on. */
void session_failed(struct fetch *f, const struct conn *c)
{
	if (!c->fast || f->r.code == 0 || f->listed || stop_requested)
		return;
	char *err = NULL, *key = caps_key(f->a);
	int refused = f->r.code == EX_NOPERM;
	log_debug(f->a->name, "the short way failed: %s", refused ? "asking CAPA next time" :
		  "not taking it again until the server's CAPA changes");
	caps_note(f, "forgetting capabilities", refused ? state_caps_forget(f->st, key, &err) :
		  state_caps_failed(f->st, key, &err), err);
	free(key);
}
