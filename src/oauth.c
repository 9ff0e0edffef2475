/* oauth.c — OAuth2 access tokens for the three sides of an account (POP3
 * login, SMTP submission, IMAP delivery): each side has its own client
 * and tokens, since one account may fetch from Outlook and deliver into
 * Gmail.  An access token is refreshed (RFC 6749 section 6) when it
 * expires within a minute or a server refused it.  The refresh token
 * never leaves the token file and the token endpoint's request. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "oauth-http.h"
#include "oauth.h"

#define EARLY 60          /* refresh this many seconds before expiry */
#define HTTP_TIMEOUT 60
/* a longer expires_in is a server's mistake; capped, time + it cannot overflow */
#define EXPIRES_MAX (365LL * 86400)

static int check_side(const struct oauth_conf *o, const char *pre, char **err)
{
	const char *urls[] = { o->auth_url, o->token_url, o->device_url };
	if (o->client_secret && o->client_secret_command)
		return seterr(err, "%soauth_client_secret and %soauth_client_secret_command: "
			      "give one", pre, pre);
	for (size_t i = 0; i < 3; i++)
		if (urls[i] && http_url_ok(urls[i], err) < 0)
			return -1;
	if (o->client_id && o->token_url == NULL)
		return seterr(err, "%soauth_client_id without %soauth_token_url (or a provider)",
			      pre, pre);
	return 0;
}

int oauth_check(const struct account *a, char **err)
{
	return check_side(&a->oauth, "", err) < 0 || check_side(&a->smtp_oauth, "smtp_", err) < 0 ||
	       check_side(&a->imap_oauth, "imap_", err) < 0 ? -1 : 0;
}

char *oauth_token_dir(const char *state_path)
{
	const char *slash = strrchr(state_path, '/');
	if (slash == NULL)
		return xstrdup("oauth");
	return xasprintf("%.*s/oauth", (int)(slash - state_path), state_path);
}

int oauth_post(const struct account *a, enum side side, const char *url, char *form,
	       struct http_reply *r, char **err)
{
	const struct oauth_conf *o = oauth_conf(a, side);
	char *secret = NULL, *e = NULL;
	form_add(&form, "client_id", o->client_id);
	if (o->client_secret_command &&
	    run_password_command(o->client_secret_command, &secret, &e) < 0) {
		seterr(err, "oauth_client_secret_command: %s", e);
		free(e);
		free(form);
		return -1;
	}
	if (secret || o->client_secret)
		form_add(&form, "client_secret", secret ? secret : o->client_secret);
	if (secret)
		memset(secret, 0, strlen(secret));
	free(secret);
	log_debug(a->name, "oauth: POST %s", url);
	int rc = http_request(url, form, HTTP_TIMEOUT, r, err);
	memset(form, 0, strlen(form));
	free(form);
	return rc;
}

static int reply_error(const struct http_reply *r, char **ecode, char **err)
{
	char *code = NULL, *desc = NULL, *e = NULL;
	if (r->status >= 400 && json_get(r->body, r->len, "$.error", &code, &e) == 1) {
		json_get(r->body, r->len, "$.error_description", &desc, &e);
		char *sc = text_safe(code), *sd = text_safe(desc);
		seterr(err, "the token endpoint said %s%s%s (HTTP %ld)", sc, desc ? ": " : "", sd,
		       r->status);
		free(sc);
		free(sd);
		*ecode = code;
	} else {
		seterr(err, "the token endpoint answered HTTP %ld without %s", r->status,
		       r->status == 200 ? "an access_token" : "an OAuth2 error");
		free(code);
	}
	free(desc);
	free(e);
	return -1;
}

/* A token goes into a token file line and a SASL blob: one line of
 * printable text, as the token file's writer checks again. */
static int token_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int oauth_parse_tokens(const struct http_reply *r, struct token *t, char **ecode, char **err)
{
	long long in = 0;
	char *e = NULL;
	memset(t, 0, sizeof *t);
	*ecode = NULL;
	if (r->status != 200 || json_get_string(r->body, r->len, "$.access_token", &t->access,
						&e) != 1) {
		free(e);
		return reply_error(r, ecode, err);
	}
	json_get_string(r->body, r->len, "$.refresh_token", &t->refresh, &e);
	if (!token_ok(t->access) || (t->refresh && !token_ok(t->refresh))) {
		free(e);
		token_free(t);
		return seterr(err, "the token endpoint sent an empty token or one with control "
			      "characters");
	}
	if (json_get_long(r->body, r->len, "$.expires_in", &in, &e) != 1 || in <= 0)
		in = 3600;   /* RFC 6749 5.1: RECOMMENDED, not required */
	t->expires = (long long)time(NULL) + (in < EXPIRES_MAX ? in : EXPIRES_MAX);
	free(e);
	return 0;
}

static int revoked(const struct account *a, int *code, char **err)
{
	*code = EX_NOPERM;
	return seterr(err, "the OAuth2 authorization was revoked or expired: run popsift "
		      "authorize %s", a->name);
}

/* An OAuth2 error that the user must act on (77, which pauses a daemon's
 * account), not a provider's outage that the next poll may not see. */
static int refused(long status, const char *ecode)
{
	return ecode && status < 500 && strcmp(ecode, "server_error") != 0 &&
	       strcmp(ecode, "temporarily_unavailable") != 0;
}

/* Take the new tokens (the old ones wiped by token_free); the provider
 * may send a new refresh token (Microsoft rotates them), else the old
 * one stays. */
static void adopt(struct token *t, struct token *n)
{
	struct token old = { .access = t->access };
	t->access = n->access;
	t->expires = n->expires;
	n->access = NULL;
	if (n->refresh) {
		old.refresh = t->refresh;
		t->refresh = n->refresh;
		n->refresh = NULL;
	}
	token_free(&old);
}

/* A provider may quote the refresh token in its error_description; the
 * error goes to logs and `status`, where the token must never be. */
static void mask(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	for (char *p = s && n ? strstr(s, secret) : NULL; p; p = strstr(p + n, secret))
		memset(p, '*', n);
}

/* The refresh_token grant. */
static int refresh_tokens(const struct account *a, enum side side, struct token *t, int *code,
			  char **err)
{
	char *form = NULL, *ecode = NULL;
	struct http_reply r;
	struct token n;
	form_add(&form, "grant_type", "refresh_token");
	form_add(&form, "refresh_token", t->refresh);
	log_debug(a->name, "oauth: refreshing the %s access token", side_name(side));
	if (oauth_post(a, side, oauth_conf(a, side)->token_url, form, &r, err) < 0) {
		*code = EX_TEMPFAIL;
		return -1;
	}
	int rc = oauth_parse_tokens(&r, &n, &ecode, err);
	long status = r.status;
	http_reply_free(&r);
	if (rc < 0 && ecode && !strcmp(ecode, "invalid_grant")) {
		free(*err);
		*err = NULL;
		rc = revoked(a, code, err);
	} else if (rc < 0) {
		*code = refused(status, ecode) ? EX_NOPERM : EX_TEMPFAIL;
		mask(*err, t->refresh);
	} else {
		adopt(t, &n);
	}
	free(ecode);
	token_free(&n);
	return rc;
}

static int fresh(const struct token *t, int refresh)
{
	return !refresh && t->access && t->expires > (long long)time(NULL) + EARLY;
}

static int locked_token(const struct account *a, enum side side, const char *path, int refresh,
			char **tok, int *code, char **err)
{
	struct token t;
	int rc = token_read(path, &t, err);
	if (rc == 1) {
		*code = EX_NOPERM;
		return seterr(err, "no OAuth2 authorization stored for %s (%s): run popsift "
			      "authorize %s", side_name(side), path, a->name);
	}
	if (rc < 0) {
		*code = EX_NOPERM;
		return -1;
	}
	if (!fresh(&t, refresh)) {
		if (t.refresh == NULL)
			rc = revoked(a, code, err);
		else if ((rc = refresh_tokens(a, side, &t, code, err)) == 0 &&
			 (rc = token_write(path, &t, err)) < 0)
			*code = EX_CANTCREAT;
	}
	if (rc == 0) {
		*tok = t.access;
		t.access = NULL;
	}
	token_free(&t);
	return rc;
}

int oauth_access_token(const struct account *a, enum side side, int refresh, char **tok,
		       int *code, char **err)
{
	*tok = NULL;
	*code = 0;
	char *path = token_path(a, side);
	int fd = token_lock(path, err);
	int rc = -1;
	if (fd < 0)
		*code = EX_CANTCREAT;
	else
		rc = locked_token(a, side, path, refresh, tok, code, err);
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* `popsift check -v`: which sides log in with OAuth2, and whether
 * `popsift authorize` was run for them (never a token). */
void oauth_describe(const struct account *a, FILE *out)
{
	for (int s = SIDE_POP3; s <= SIDE_IMAP; s++) {
		if (!oauth_side_on(a, (enum side)s))
			continue;
		char *path = token_path(a, (enum side)s);
		fprintf(out, "account %s: %s login: OAuth2 (token URL %s), ", a->name,
			side_name((enum side)s), oauth_conf(a, (enum side)s)->token_url);
		if (access(path, F_OK) == 0)
			fprintf(out, "authorized\n");
		else
			fprintf(out, "not authorized yet: run popsift authorize %s\n", a->name);
		free(path);
	}
}
