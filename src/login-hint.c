/* login-hint.c — what to check when a server refuses a login: where the
 * account is configured, which key holds the secret, and what the
 * provider wants instead of the web password (an app password, an
 * authorization code, OAuth2). */
#include <stdlib.h>
#include <strings.h>

#include "login-hint.h"
#include "provider.h"

/* The provider the account names, else the one whose server it uses. */
static const struct provider *provider_of(const struct account *a, enum side side)
{
	if (a->provider > 0 && side != SIDE_IMAP)
		return provider_at((size_t)a->provider - 1);
	const char *host = side == SIDE_POP3 ? a->host : side == SIDE_SMTP ? a->smtp_host :
			   a->imap_host;
	const struct provider *p;
	for (size_t i = 0; host && (p = provider_at(i)) != NULL; i++)
		if ((side == SIDE_POP3 && p->host && strcasecmp(p->host, host) == 0) ||
		    (side == SIDE_SMTP && p->smtp_host && strcasecmp(p->smtp_host, host) == 0))
			return p;
	return NULL;
}

/* The key that holds the side's secret, in the words of the config. */
static const char *secret_key(const struct account *a, enum side side)
{
	static const char *const cmd[] = { "what password_command prints",
		"what smtp_password_command prints", "what imap_password_command prints" };
	static const char *const pw[] = { "password", "smtp_password", "imap_password" };
	const char *c = side == SIDE_POP3 ? a->password_command : side == SIDE_SMTP ?
			a->smtp_password_command : a->imap_password_command;
	return c ? cmd[side] : pw[side];
}

char *login_hint(const struct account *a, enum side side)
{
	static const char *const user[] = { "user", "smtp_user", "imap_user" };
	const char *where = a->file ? a->file : "the configuration";
	if (account_oauth(a, side))
		return xasprintf("account %s (%s:%d) logs in with OAuth2: run popsift authorize %s",
				 a->name, where, a->line, a->name);
	const struct provider *p = provider_of(a, side);
	if (p)
		return xasprintf("account %s (%s:%d): check %s and %s; %s wants: %s", a->name,
				 where, a->line, user[side], secret_key(a, side), p->name, p->login);
	return xasprintf("account %s (%s:%d): check %s and %s; many providers refuse the web "
			 "password and want an app password, an authorization code (QQ, 163, "
			 "NetEase) or OAuth2 (Gmail, Outlook): popsift providers lists them",
			 a->name, where, a->line, user[side], secret_key(a, side));
}
