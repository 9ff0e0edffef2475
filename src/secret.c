/* secret.c — TEMPORARY stand-in for the foundation's secret.c (main):
 * replaced at the merge, keeping the OAuth2 branch below. */
#include <stdlib.h>
#include <string.h>

#include "oauth.h"
#include "secret.h"

int account_oauth(const struct account *a, enum side side)
{
	return oauth_side_on(a, side);
}

int account_secret_code(const struct account *a, enum side side, int refresh, char **secret,
			int *code, char **err)
{
	*secret = NULL;
	*code = 0;
	if (account_oauth(a, side))
		return oauth_access_token(a, side, refresh, secret, code, err);
	const char *cmd = side == SIDE_SMTP ? a->smtp_password_command : a->password_command;
	const char *pw = side == SIDE_SMTP ? a->smtp_password : a->password;
	if (cmd && run_password_command(cmd, secret, err) < 0) {
		*code = EX_CONFIG;
		return -1;
	}
	if (cmd == NULL && pw)
		*secret = xstrdup(pw);
	return 0;
}

int account_secret(const struct account *a, enum side side, int refresh, char **secret,
		   char **err)
{
	int code;
	return account_secret_code(a, side, refresh, secret, &code, err);
}
