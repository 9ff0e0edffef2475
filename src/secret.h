/* secret.h — TEMPORARY copy of the foundation's API (main has the real
 * one): replaced at the merge. */
#ifndef SECRET_H
#define SECRET_H

#include "popsift.h"

enum side { SIDE_POP3, SIDE_SMTP, SIDE_IMAP };
int account_secret(const struct account *a, enum side side, int refresh,
		   char **secret, char **err);
/* account_secret with the exit code of a failure in *code: EX_NOPERM when
 * the OAuth2 authorization is gone (run popsift authorize), EX_TEMPFAIL
 * when the token endpoint cannot be reached, EX_CONFIG for a failed
 * password_command. */
int account_secret_code(const struct account *a, enum side side, int refresh,
			char **secret, int *code, char **err);
int account_oauth(const struct account *a, enum side side);

#endif
