/* proxy.h — an account's `proxy`, `smtp_proxy` and `imap_proxy`: SOCKS
 * or HTTP CONNECT proxies for the connections libcurl opens. */
#ifndef PROXY_H
#define PROXY_H

#include "popsift.h"
#include "secret.h"

/* The proxy of one side: smtp_proxy or imap_proxy, else proxy; NULL for
 * none ("none" turns proxy off for that side). */
const char *proxy_for(const struct account *a, enum side side);

/* Point the libcurl handle (a CURL *) at the side's proxy, if any. */
void proxy_setup(void *curl, const struct account *a, enum side side);

/* A connection failed: *err (malloc'd) names the side's proxy too, if any. */
void proxy_blame(const struct account *a, enum side side, char **err);

/* A config value: 0, or -1 with *err naming what is wrong. */
int  proxy_check(const char *url, char **err);

#endif
