/* cmd-authorize.c — `popsift authorize ACCOUNT`: once per account, get
 * and store OAuth2 tokens for each side that logs in with OAuth2.  The
 * device authorization grant (RFC 8628) where the side has a device URL
 * (Microsoft), else the authorization code flow with PKCE (RFC 7636)
 * over a loopback redirect (RFC 8252; Google).  What the user must open
 * goes to stdout; tokens go only to the token file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "oauth-http.h"
#include "oauth.h"
#include "pkce.h"

#define WAIT_BROWSER 300      /* seconds for the user to answer in the browser */
#define WAIT_DEVICE 900       /* and to enter a device code (Microsoft's last that long) */

static int wait_limit(int dflt)
{
	const char *s = getenv("POPSIFT_AUTHORIZE_TIMEOUT");
	int n = s ? atoi(s) : 0;
	return n > 0 ? n : dflt;
}

/* Sleep s seconds unless a signal asks to stop: 0, or -1 when stopping. */
static int pause_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };
	while (!stop_requested && nanosleep(&ts, &ts) < 0)
		;
	return stop_requested ? -1 : 0;
}

/* ------------------------------------------------------------ device flow */

struct device {
	char *device_code, *user_code, *uri;
	long long interval, expires_in;
};

static void device_free(struct device *d)
{
	free(d->device_code), free(d->user_code), free(d->uri);
}

static int device_start(const struct account *a, enum side side, struct device *d, char **err)
{
	const struct oauth_conf *o = oauth_conf(a, side);
	char *form = NULL, *e = NULL;
	struct http_reply r;
	if (o->scope)
		form_add(&form, "scope", o->scope);
	if (oauth_post(a, side, o->device_url, form, &r, err) < 0)
		return -1;
	int ok = r.status == 200 &&
		 json_get(r.body, r.len, "$.device_code", &d->device_code, &e) == 1 &&
		 json_get(r.body, r.len, "$.user_code", &d->user_code, &e) == 1 &&
		 (json_get(r.body, r.len, "$.verification_uri", &d->uri, &e) == 1 ||
		  json_get(r.body, r.len, "$.verification_url", &d->uri, &e) == 1);
	if (json_get_long(r.body, r.len, "$.interval", &d->interval, &e) != 1 || d->interval < 1)
		d->interval = 5;
	if (json_get_long(r.body, r.len, "$.expires_in", &d->expires_in, &e) != 1)
		d->expires_in = 900;
	if (!ok)
		seterr(err, "%s answered HTTP %ld without a device_code, user_code and "
		       "verification_uri", o->device_url, r.status);
	free(e);
	http_reply_free(&r);
	return ok ? 0 : -1;
}

/* One poll of the token endpoint: 1 tokens, 0 not yet, -1 failed. */
static int device_poll(const struct account *a, enum side side, struct device *d,
		       struct token *t, char **err)
{
	char *form = NULL, *ecode = NULL;
	struct http_reply r;
	form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:device_code");
	form_add(&form, "device_code", d->device_code);
	if (oauth_post(a, side, oauth_conf(a, side)->token_url, form, &r, err) < 0)
		return -1;
	int rc = oauth_parse_tokens(&r, t, &ecode, err) == 0 ? 1 : -1;
	http_reply_free(&r);
	if (rc < 0 && ecode && (!strcmp(ecode, "authorization_pending") ||
				!strcmp(ecode, "slow_down"))) {
		if (!strcmp(ecode, "slow_down"))
			d->interval += 5;   /* RFC 8628 3.5 */
		free(*err);
		*err = NULL;
		rc = 0;
	}
	free(ecode);
	return rc;
}

static int device_flow(const struct account *a, enum side side, struct token *t, char **err)
{
	struct device d = { 0 };
	if (device_start(a, side, &d, err) < 0) {
		device_free(&d);
		return -1;
	}
	char *uri = text_safe(d.uri), *code = text_safe(d.user_code);
	printf("To authorize popsift for %s (%s): open %s\nand enter the code %s\n"
	       "Waiting for the authorization...\n", a->name, side_name(side), uri, code);
	fflush(stdout);
	free(uri), free(code);
	/* our own limit too: the provider's expires_in and interval are its word */
	long long limit = wait_limit(WAIT_DEVICE);
	limit = d.expires_in > 0 && d.expires_in < limit ? d.expires_in : limit;
	double end = now_sec() + (double)limit;
	int rc = 0;
	while (rc == 0) {
		if (now_sec() + (double)d.interval > end) {
			rc = seterr(err, "the code was not entered within %lld s: run popsift "
				    "authorize %s again", limit, a->name);
			break;
		}
		if (pause_s((double)d.interval) < 0)
			rc = seterr(err, "stopped by a signal");
		else
			rc = device_poll(a, side, &d, t, err);
	}
	device_free(&d);
	return rc > 0 ? 0 : -1;
}

/* ------------------------------------------------------------ code flow with PKCE */

static char *auth_url(const struct oauth_conf *o, const char *redirect, const char *state,
		      const char *challenge)
{
	char *q = NULL;
	form_add(&q, "response_type", "code");
	form_add(&q, "client_id", o->client_id);
	form_add(&q, "redirect_uri", redirect);
	if (o->scope)
		form_add(&q, "scope", o->scope);
	form_add(&q, "state", state);
	form_add(&q, "code_challenge", challenge);
	form_add(&q, "code_challenge_method", "S256");
	/* Google gives a refresh token only with these; others ignore them */
	form_add(&q, "access_type", "offline");
	form_add(&q, "prompt", "consent");
	char *url = xasprintf("%s%c%s", o->auth_url, strchr(o->auth_url, '?') ? '&' : '?', q);
	free(q);
	return url;
}

static int redeem(const struct account *a, enum side side, const char *code,
		  const char *redirect, const char *verifier, struct token *t, char **err)
{
	char *form = NULL, *ecode = NULL;
	struct http_reply r;
	form_add(&form, "grant_type", "authorization_code");
	form_add(&form, "code", code);
	form_add(&form, "redirect_uri", redirect);
	form_add(&form, "code_verifier", verifier);
	if (oauth_post(a, side, oauth_conf(a, side)->token_url, form, &r, err) < 0)
		return -1;
	int rc = oauth_parse_tokens(&r, t, &ecode, err);
	http_reply_free(&r);
	free(ecode);
	return rc;
}

static int code_flow(const struct account *a, enum side side, struct token *t, char **err)
{
	const struct oauth_conf *o = oauth_conf(a, side);
	char verifier[64], state[32], challenge[44], *code = NULL;
	int port, fd;
	if (random_token(32, verifier, err) < 0 || random_token(16, state, err) < 0 ||
	    (fd = loopback_listen(&port, err)) < 0)
		return -1;
	pkce_challenge(verifier, challenge);
	char *redirect = xasprintf("http://127.0.0.1:%d/", port);
	char *url = auth_url(o, redirect, state, challenge);
	int limit = wait_limit(WAIT_BROWSER);
	printf("To authorize popsift for %s (%s), open this address in a browser:\n\n%s\n\n"
	       "Waiting up to %d s for the browser to come back to %s\n", a->name,
	       side_name(side), url, limit, redirect);
	fflush(stdout);
	int rc = loopback_wait(fd, state, limit, &code, err);
	close(fd);
	if (rc == 0)
		rc = redeem(a, side, code, redirect, verifier, t, err);
	free(code);
	free(url);
	free(redirect);
	return rc;
}

/* ------------------------------------------------------------ the command */

static int store(const struct account *a, enum side side, const struct token *t, char **err)
{
	char *path = token_path(a, side);
	int fd = token_lock(path, err);
	int rc = fd < 0 ? -1 : token_write(path, t, err);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		printf("%s: stored the %s OAuth2 tokens in %s (access token for %lld s%s)\n",
		       a->name, side_name(side), path, t->expires - (long long)time(NULL),
		       t->refresh ? ", refresh token kept" :
		       "; no refresh token given: authorize again when it expires");
	free(path);
	return rc;
}

static int authorize_side(const struct account *a, enum side side, struct token *t, int *code,
			  char **err)
{
	const struct oauth_conf *o = oauth_conf(a, side);
	if (o->device_url)
		return device_flow(a, side, t, err);
	if (o->auth_url)
		return code_flow(a, side, t, err);
	*code = EX_CONFIG;
	return seterr(err, "the %s side has neither %soauth_device_url nor %soauth_auth_url "
		      "(nor a provider)", side_name(side), side == SIDE_POP3 ? "" :
		      side_name(side), side == SIDE_POP3 ? "" : "_");
}

static int authorize(const struct account *a, int *code, char **err)
{
	int any = 0, rc = 0;
	for (int s = SIDE_POP3; rc == 0 && s <= SIDE_IMAP; s++) {
		enum side side = (enum side)s, owner = oauth_token_side(a, side);
		if (!account_oauth(a, side))
			continue;
		any = 1;
		struct token t = { 0 };
		if (owner != side)   /* one consent, one token file for both */
			printf("%s: the %s side uses the %s side's OAuth2 tokens\n", a->name,
			       side_name(side), side_name(owner));
		else if ((rc = authorize_side(a, side, &t, code, err)) == 0)
			rc = store(a, side, &t, err);
		token_free(&t);
	}
	if (!any)
		*code = EX_CONFIG;
	if (!any)
		return seterr(err, "no side of the account logs in with OAuth2 (auth xoauth2 or "
			      "oauthbearer, and oauth_client_id)");
	return rc;
}

int cmd_authorize(const struct config *cf, const char *name)
{
	const struct account *a = cf->accounts;
	while (a && strcmp(a->name, name) != 0)
		a = a->next;
	if (a == NULL) {
		log_err(NULL, "no account \"%s\" in %s", name, cf->file);
		return EX_USAGE;
	}
	char *err = NULL;
	int code = EX_NOPERM;
	if (authorize(a, &code, &err) == 0)
		return 0;
	log_err(a->name, "%s", err);
	free(err);
	return stop_requested ? EX_TEMPFAIL : code;
}
