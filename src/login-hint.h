/* login-hint.h — what a refused login's message adds (login-hint.c). */
#ifndef LOGIN_HINT_H
#define LOGIN_HINT_H

#include "popsift.h"
#include "secret.h"

/* "account NAME (FILE:LINE): check ...; PROVIDER wants: ..." (malloc'd). */
char *login_hint(const struct account *a, enum side side);

#endif
