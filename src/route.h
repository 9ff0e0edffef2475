/* route.h — domain mailboxes: each message of a catch-all mailbox goes
 * to the local users the provider's envelope headers (Delivered-To,
 * X-Original-To, Envelope-To...) name, limited to local domains and
 * mapped address by address.  Never guessed from To/Cc (see
 * popsift.conf(5), DOMAIN MAILBOXES). */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

struct route;

/* A config key of an account (r NULL: in defaults, refused): 1 taken,
 * 0 not a routing key, -1 err. */
int  route_key(struct route **r, const char *key, const char *val, char **err);
/* After the account: -1 and err if its routing keys do not fit together. */
int  route_check(const struct route *r, char **err);
void route_free(struct route *r);

/* Where one message goes: rcpt[i] (a local user) found as orig[i];
 * loops: users dropped since a Delivered-To shows they had it already. */
struct routed {
	char **rcpt, **orig, **loops;
	size_t n, nloops;
};

/* Route a header section; 0 with out->n == 0 when no local address was
 * found (the account's own recipients then). */
int  route_message(const struct route *r, const char *hdr, size_t hl, struct routed *out);
void routed_free(struct routed *o);

#endif
