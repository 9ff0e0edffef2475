/* secret.h — what each side of an account logs in with.  One place
 * decides between a password, a password_command and an OAuth2 access
 * token, so POP3 login, SMTP submission and IMAP delivery agree. */
#ifndef SECRET_H
#define SECRET_H

#include "popsift.h"

enum side { SIDE_POP3, SIDE_SMTP, SIDE_IMAP };

/* The password or token one side of an account logs in with:
 * password_command's output, the password, or an OAuth2 access token.
 * refresh: the last one was refused, get a new token (OAuth2 only).
 * 0 with *secret NULL when that side has no credentials.  On failure a
 * negative number and *err: -1 for a configuration error (EX_CONFIG), or
 * minus the exit code it implies (-EX_NOPERM, -EX_TEMPFAIL...); see
 * SECRET_CODE. */
int  account_secret(const struct account *a, enum side side, int refresh,
		    char **secret, char **err);
#define SECRET_CODE(rc) ((rc) < -1 ? -(rc) : EX_CONFIG)
/* 1 when that side logs in with an OAuth2 access token popsift gets itself. */
int  account_oauth(const struct account *a, enum side side);
/* Wipe and free a secret. */
void secret_free(char *s);

#endif
