/* state-caps.h — what each server said of itself at its last full
 * login (CAPA and the greeting), kept in the state database so a later
 * session can skip CAPA (conn_open_fast).  Keyed by "host:port:tls". */
#ifndef STATE_CAPS_H
#define STATE_CAPS_H

#include "conn.h"

struct state;

/* 1 found (*checked: when, Unix time), 0 none, -1 error (*err). */
int  state_caps_get(struct state *st, const char *key, struct caps *k, long long *checked,
		    char **err);
/* Written only when it differs from the row or the row is older than
 * CAPS_REWRITE seconds: a session that learnt nothing new writes nothing. */
int  state_caps_put(struct state *st, const char *key, const struct caps *k, char **err);
int  state_caps_forget(struct state *st, const char *key, char **err);
/* The short way failed on this server: not again until its CAPA changes. */
int  state_caps_failed(struct state *st, const char *key, char **err);

#define CAPS_REWRITE (12 * 3600)

#endif
