/* login-hint.c — what to check when a server refuses a login: where the
 * account is configured, which key holds the secret, and what the
 * provider wants instead of the web password (an app password, an
 * authorization code, OAuth2). */
#include <stdlib.h>
#include <strings.h>

#include "login-hint.h"
#include "provider.h"
#include "secret.h"

/* The provider the account names, else the one whose POP3 server it uses. */
static const struct provider *provider_of(const struct account *a)
{
	if (a->provider > 0)
		return provider_at((size_t)a->provider - 1);
	const struct provider *p;
	for (size_t i = 0; (p = provider_at(i)) != NULL; i++)
		if (p->host && a->host && strcasecmp(p->host, a->host) == 0)
			return p;
	return NULL;
}

char *login_hint(const struct account *a)
{
	const char *where = a->file ? a->file : "the configuration";
	if (account_oauth(a, SIDE_POP3))
		return xasprintf("account %s (%s:%d) logs in with OAuth2: run popsift authorize %s",
				 a->name, where, a->line, a->name);
	const char *key = a->password_command ? "what password_command prints" :
			  a->password ? "password" : "the password";
	const struct provider *p = provider_of(a);
	if (p)
		return xasprintf("account %s (%s:%d): check user and %s; %s wants: %s",
				 a->name, where, a->line, key, p->name, p->login);
	return xasprintf("account %s (%s:%d): check user and %s; many providers refuse the web "
			 "password and want an app password, an authorization code (QQ, 163, "
			 "NetEase) or OAuth2 (Gmail, Outlook): popsift providers lists them",
			 a->name, where, a->line, key);
}
