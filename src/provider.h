/* provider.h — `provider NAME`: server presets for common mail services,
 * one table in provider.c. */
#ifndef PROVIDER_H
#define PROVIDER_H

#include <stdio.h>
#include "popsift.h"

/* Keys a preset fills; a key written in the config (account or defaults)
 * keeps its value whatever the order of the lines. */
enum {
	PRESET_HOST = 1, PRESET_PORT = 2, PRESET_TLS = 4,
	PRESET_SMTP_HOST = 8, PRESET_SMTP_PORT = 16, PRESET_SMTP_TLS = 32,
	PRESET_IMAP_HOST = 64, PRESET_IMAP_PORT = 128, PRESET_IMAP_TLS = 256,
	PRESET_SASL_IR = 1 << 20, PRESET_IMAP_SASL_IR = 1 << 21,   /* OAuth2 presets */
};

struct provider {
	const char *name;
	const char *domain;          /* also accepted as the name */
	const char *host;            /* POP3; NULL: the service has no POP3 */
	int         port;
	enum tls_mode tls;
	const char *smtp_host;
	int         smtp_port;
	enum tls_mode smtp_tls;
	const char *login;           /* what the password must be */
	const char *note;            /* what to switch on first, caveats */
};

/* The table entry called name (or its domain), case-insensitive; NULL if none. */
const struct provider *provider_find(const char *name);
/* Entry i of the table (for `popsift providers` and tests); NULL past the end. */
const struct provider *provider_at(size_t i);

/* conf.c: `provider NAME` records the preset (-1: unknown name); each
 * key line marks its bit; provider_apply fills what was not written. */
int      provider_set(struct account *a, const char *name);
/* `imap_provider NAME`: where `deliver imap` appends (-1: no IMAP preset). */
int      provider_set_imap(struct account *a, const char *name);
unsigned provider_key_bit(const char *key);
int      provider_apply(struct account *a, char **err);

/* OAuth2 presets of a provider (provider.c, oauth_presets): endpoints and
 * the scope of each side; the client id is the user's own. */
struct oauth_conf;
/* Fill the unset OAuth2 keys of one side from provider p's preset. */
void provider_oauth_fill(struct oauth_conf *o, const struct provider *p, int side);
/* The IMAP side's OAuth2 preset and imap_sasl_ir, for imap_provider. */
void provider_imap_oauth(struct account *a, const struct provider *p);
/* The provider's login needs XOAUTH2 in two steps (no SASL initial
 * response): Microsoft's POP3 and IMAP. */
int  provider_two_step(const struct provider *p);

/* `popsift check -v`: where an account fetches from and forwards to. */
void provider_describe(const struct account *a, FILE *out);

/* `popsift providers [NAME]`: print the table, or one entry; exit code. */
int  cmd_providers(int nargs, char **args);

#endif
