/* oauth.h — OAuth2 built in: per-side settings, the token store and the
 * refresh (oauth.c, oauth-store.c), `popsift authorize` (cmd-authorize.c). */
#ifndef OAUTH_H
#define OAUTH_H

#include <stdio.h>

#include "popsift.h"
#include "secret.h"

struct http_reply;

/* The tokens of one side of an account, as stored. */
struct token {
	char      *access;        /* NULL: none yet */
	char      *refresh;       /* NULL: the provider gave none */
	long long  expires;       /* epoch seconds; 0 unknown */
};

const char *side_name(enum side side);               /* "pop3" "smtp" "imap" */
const struct oauth_conf *oauth_conf(const struct account *a, enum side side);
/* 1 when the side logs in with an access token popsift gets itself. */
int  oauth_side_on(const struct account *a, enum side side);
/* The side whose token file this side uses: an earlier side with the
 * same client id, token URL and scope, else itself. */
enum side oauth_token_side(const struct account *a, enum side side);
/* conf.c: the settings make sense (URLs, one client secret). */
int  oauth_check(const struct account *a, char **err);
char *oauth_token_dir(const char *state_path);

/* A fresh access token for the side (refreshed when it expires within
 * 60 s, or when refresh is 1): 0, or -1 with *err and the exit code in
 * *code (EX_NOPERM: run popsift authorize; EX_TEMPFAIL: try later). */
int  oauth_access_token(const struct account *a, enum side side, int refresh, char **tok,
			int *code, char **err);

/* POST form plus client_id (and the client secret) to the token URL. */
int  oauth_post(const struct account *a, enum side side, const char *url, char *form,
		struct http_reply *r, char **err);
/* A token endpoint's reply: 0 with t filled; -1 with *err and, for an
 * OAuth2 error, its code ("invalid_grant", "authorization_pending") in *ecode. */
int  oauth_parse_tokens(const struct http_reply *r, struct token *t, char **ecode, char **err);

/* oauth-store.c: one file per account and side (oauth_token_side), mode 0600 */
char *token_path(const struct account *a, enum side side);
/* 0 read, 1 no file, -1 refused or unreadable (*err). */
int  token_read(const char *path, struct token *t, char **err);
/* Under token_lock(path). */
int  token_write(const char *path, const struct token *t, char **err);
/* An exclusive lock for the read-refresh-write of path: fd, or -1. */
int  token_lock(const char *path, char **err);
void token_free(struct token *t);

/* oauth-loopback.c: the redirect listener of the authorization code flow */
int  loopback_listen(int *port, char **err);          /* listening fd, or -1 */
/* Wait for GET /?code=...&state=STATE: 0 with *code, -1 (*err). */
int  loopback_wait(int fd, const char *state, int timeout_s, char **code, char **err);
/* The percent-decoded value of key in a query string: malloc'd, or NULL. */
char *query_param(const char *query, const char *key);

/* `popsift check -v`: the OAuth2 sides and whether they are authorized. */
void oauth_describe(const struct account *a, FILE *out);

/* `popsift authorize ACCOUNT`: exit code. */
int  cmd_authorize(const struct config *cf, const char *account);

#endif
