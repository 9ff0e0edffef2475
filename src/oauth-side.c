/* oauth-side.c — which OAuth2 settings and which token file each side of
 * an account (POP3, SMTP, IMAP) uses: the ground both the refresh
 * (oauth.c) and the token store (oauth-store.c) stand on. */
#include <string.h>

#include "oauth.h"

const char *side_name(enum side side)
{
	return side == SIDE_SMTP ? "smtp" : side == SIDE_IMAP ? "imap" : "pop3";
}

const struct oauth_conf *oauth_conf(const struct account *a, enum side side)
{
	return side == SIDE_SMTP ? &a->smtp_oauth : side == SIDE_IMAP ? &a->imap_oauth : &a->oauth;
}

static int bearer(enum auth_mode m)
{
	return m == AUTH_XOAUTH2 || m == AUTH_OAUTHBEARER;
}

/* A password_command (a token helper script) wins, as before OAuth2 was
 * built in.  The IMAP side's auth and password_command keys are the IMAP
 * delivery's: a client id there is enough. */
int oauth_side_on(const struct account *a, enum side side)
{
	const struct oauth_conf *o = oauth_conf(a, side);
	if (o->client_id == NULL)
		return 0;
	if (side == SIDE_POP3)
		return bearer(a->auth) && a->password_command == NULL;
	if (side == SIDE_SMTP)
		return bearer(a->smtp_auth) && a->smtp_password_command == NULL &&
		       a->smtp_user != NULL;
	return 1;
}

static int same_client(const struct oauth_conf *x, const struct oauth_conf *y)
{
#define EQ(f) ((x->f == NULL && y->f == NULL) || (x->f && y->f && !strcmp(x->f, y->f)))
	return EQ(client_id) && EQ(token_url) && EQ(scope);
#undef EQ
}

/* Sides with one client share one grant: with refresh token rotation, a
 * copy per side would die when another side refreshes. */
enum side oauth_token_side(const struct account *a, enum side side)
{
	for (int s = SIDE_POP3; s < (int)side; s++)
		if (oauth_side_on(a, (enum side)s) &&
		    same_client(oauth_conf(a, (enum side)s), oauth_conf(a, side)))
			return (enum side)s;
	return side;
}
