/* secret.c — the credentials of each side of an account. */
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "secret.h"

static int from_config(const char *password, const char *command, char **secret, char **err)
{
	if (command)
		return run_password_command(command, secret, err);
	*secret = xstrdup(password ? password : "");
	return 0;
}

/* oauth.c gives the exit code; the contract here is minus it. */
static int from_oauth(const struct account *a, enum side side, int refresh, char **secret,
		      char **err)
{
	int code = 0;
	if (oauth_access_token(a, side, refresh, secret, &code, err) == 0)
		return 0;
	return code > 0 && code != EX_CONFIG ? -code : -1;
}

int account_secret(const struct account *a, enum side side, int refresh,
		   char **secret, char **err)
{
	*secret = NULL;
	if (account_oauth(a, side))
		return from_oauth(a, side, refresh, secret, err);
	switch (side) {
	case SIDE_POP3:
		return from_config(a->password, a->password_command, secret, err);
	case SIDE_SMTP:
		if (a->smtp_user == NULL)
			return 0;
		return from_config(a->smtp_password, a->smtp_password_command, secret, err);
	case SIDE_IMAP:
		if (a->imap_user == NULL)
			return 0;
		return from_config(a->imap_password, a->imap_password_command, secret, err);
	}
	return 0;
}

int account_oauth(const struct account *a, enum side side)
{
	return oauth_side_on(a, side);
}

void secret_free(char *s)
{
	if (s == NULL)
		return;
	memset(s, 0, strlen(s));
	free(s);
}
