/* provider.c — the provider table behind `provider NAME`, and
 * `popsift providers`.  One row per service: POP3 and SMTP host, port and
 * TLS mode, what the login needs and what to switch on first.  Checked
 * against the providers' own help pages (2024); `popsift providers` prints
 * it, doc/popsift.conf.5 repeats it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "provider.h"
#include "secret.h"
#include "usage.h"

#define CODE   "authorization code (授权码) made in the web settings, not the web password"
#define ENABLE "enable POP3/SMTP in the web mail settings first"

static const struct provider table[] = {
	{ "gmail", "gmail.com", "pop.gmail.com", 995, TLS_ON, "smtp.gmail.com", 465, TLS_ON,
	  "app password (needs 2-Step Verification) or OAuth2 (auth xoauth2)",
	  "enable POP in Gmail: Settings > Forwarding and POP/IMAP" },
	{ "outlook", "outlook.com", "outlook.office365.com", 995, TLS_ON,
	  "smtp-mail.outlook.com", 587, TLS_STARTTLS,
	  "OAuth2 required (auth xoauth2, smtp_auth xoauth2): passwords are refused",
	  "enable POP in Outlook.com: Settings > Mail > Forwarding and IMAP" },
	{ "office365", NULL, "outlook.office365.com", 995, TLS_ON, "smtp.office365.com", 587,
	  TLS_STARTTLS, "OAuth2 required (auth xoauth2, smtp_auth xoauth2)",
	  "the tenant administrator must allow POP (and SMTP AUTH for forward)" },
	{ "yahoo", "yahoo.com", "pop.mail.yahoo.com", 995, TLS_ON, "smtp.mail.yahoo.com", 465,
	  TLS_ON, "app password (Account security > Generate app password)", NULL },
	{ "icloud", "icloud.com", NULL, 0, TLS_ON, "smtp.mail.me.com", 587, TLS_STARTTLS,
	  "app-specific password (appleid.apple.com)",
	  "iCloud Mail has no POP3 (IMAP only): only its SMTP half can be used" },
	{ "163", "163.com", "pop.163.com", 995, TLS_ON, "smtp.163.com", 465, TLS_ON, CODE, ENABLE },
	{ "126", "126.com", "pop.126.com", 995, TLS_ON, "smtp.126.com", 465, TLS_ON, CODE, ENABLE },
	{ "yeah", "yeah.net", "pop.yeah.net", 995, TLS_ON, "smtp.yeah.net", 465, TLS_ON, CODE,
	  ENABLE },
	{ "qq", "qq.com", "pop.qq.com", 995, TLS_ON, "smtp.qq.com", 465, TLS_ON, CODE,
	  "enable POP3/SMTP in QQ Mail: Settings > Account" },
	{ "sina", "sina.com", "pop.sina.com", 995, TLS_ON, "smtp.sina.com", 465, TLS_ON, CODE,
	  ENABLE "; sina.cn addresses: host pop.sina.cn, smtp_host smtp.sina.cn" },
	{ "sohu", "sohu.com", "pop3.sohu.com", 995, TLS_ON, "smtp.sohu.com", 465, TLS_ON,
	  "the mail password, or the client password if one is set", ENABLE },
	{ "aliyun", "aliyun.com", "pop3.aliyun.com", 995, TLS_ON, "smtp.aliyun.com", 465, TLS_ON,
	  "the mail password", ENABLE },
};
#define NPROVIDERS (sizeof table / sizeof *table)

/* The IMAP half (imap_provider, for deliver imap), apart from the rows
 * above: the services whose IMAP server popsift appends to. */
static const struct {
	const char *name;
	const char *host;
	int         port;
	enum tls_mode tls;
} imap_table[] = {
	{ "gmail", "imap.gmail.com", 993, TLS_ON },
	{ "outlook", "outlook.office365.com", 993, TLS_ON },
	{ "office365", "outlook.office365.com", 993, TLS_ON },
};
#define NIMAP (sizeof imap_table / sizeof *imap_table)
/* OAuth2 presets, by provider name: everything but the client id, which
 * users register themselves.  Google offers no device flow for the mail
 * scope: `popsift authorize` uses PKCE over a loopback redirect there;
 * Microsoft offers the device flow.  Microsoft's POP3 and IMAP want
 * XOAUTH2 in two steps (sasl_ir no). */
#define MS "https://login.microsoftonline.com/"
#define MS_SCOPE "https://outlook.office.com/"
struct oauth_preset {
	const char *name, *auth_url, *token_url, *device_url;
	const char *scope[3];      /* POP3, SMTP, IMAP */
	int two_step;
};
static const struct oauth_preset oauth_presets[] = {
	{ "gmail", "https://accounts.google.com/o/oauth2/v2/auth",
	  "https://oauth2.googleapis.com/token", NULL,
	  { "https://mail.google.com/", "https://mail.google.com/", "https://mail.google.com/" },
	  0 },
	{ "outlook", MS "consumers/oauth2/v2.0/authorize", MS "consumers/oauth2/v2.0/token",
	  MS "consumers/oauth2/v2.0/devicecode",
	  { MS_SCOPE "POP.AccessAsUser.All offline_access", MS_SCOPE "SMTP.Send offline_access",
	    MS_SCOPE "IMAP.AccessAsUser.All offline_access" }, 1 },
	{ "office365", MS "organizations/oauth2/v2.0/authorize",
	  MS "organizations/oauth2/v2.0/token", MS "organizations/oauth2/v2.0/devicecode",
	  { MS_SCOPE "POP.AccessAsUser.All offline_access", MS_SCOPE "SMTP.Send offline_access",
	    MS_SCOPE "IMAP.AccessAsUser.All offline_access" }, 1 },
};

static const struct oauth_preset *oauth_preset(const struct provider *p)
{
	for (size_t i = 0; p && i < sizeof oauth_presets / sizeof *oauth_presets; i++)
		if (!strcmp(oauth_presets[i].name, p->name))
			return &oauth_presets[i];
	return NULL;
}

static void fill(char **dst, const char *v)
{
	if (*dst == NULL && v)
		*dst = xstrdup(v);
}

void provider_oauth_fill(struct oauth_conf *o, const struct provider *p, int side)
{
	const struct oauth_preset *op = oauth_preset(p);
	if (op == NULL)
		return;
	fill(&o->auth_url, op->auth_url);
	fill(&o->token_url, op->token_url);
	fill(&o->device_url, op->device_url);
	fill(&o->scope, op->scope[side]);
}

void provider_imap_oauth(struct account *a, const struct provider *p)
{
	provider_oauth_fill(&a->imap_oauth, p, SIDE_IMAP);
	if (provider_two_step(p) && !(a->keys_set & PRESET_IMAP_SASL_IR))
		a->imap_sasl_ir = 0;
}

int provider_two_step(const struct provider *p)
{
	const struct oauth_preset *op = oauth_preset(p);
	return op && op->two_step;
}

const struct provider *provider_at(size_t i)
{
	return i < NPROVIDERS ? &table[i] : NULL;
}

const struct provider *provider_find(const char *name)
{
	for (size_t i = 0; i < NPROVIDERS; i++)
		if (strcasecmp(table[i].name, name) == 0 ||
		    (table[i].domain && strcasecmp(table[i].domain, name) == 0))
			return &table[i];
	return NULL;
}

int provider_set(struct account *a, const char *name)
{
	const struct provider *p = provider_find(name);
	if (p == NULL)
		return -1;
	a->provider = (int)(p - table) + 1;
	return 0;
}

int provider_set_imap(struct account *a, const char *name)
{
	const struct provider *p = provider_find(name);
	for (size_t i = 0; p && i < NIMAP; i++)
		if (strcmp(imap_table[i].name, p->name) == 0) {
			a->imap_provider = (int)i + 1;
			return 0;
		}
	return -1;
}

unsigned provider_key_bit(const char *key)
{
	static const struct { const char *key; unsigned bit; } bits[] = {
		{ "host", PRESET_HOST }, { "port", PRESET_PORT }, { "tls", PRESET_TLS },
		{ "smtp_host", PRESET_SMTP_HOST }, { "smtp_port", PRESET_SMTP_PORT },
		{ "smtp_tls", PRESET_SMTP_TLS },
		{ "imap_host", PRESET_IMAP_HOST }, { "imap_port", PRESET_IMAP_PORT },
		{ "imap_tls", PRESET_IMAP_TLS },
		{ "sasl_ir", PRESET_SASL_IR }, { "imap_sasl_ir", PRESET_IMAP_SASL_IR },
	};
	for (size_t i = 0; i < sizeof bits / sizeof *bits; i++)
		if (strcmp(bits[i].key, key) == 0)
			return bits[i].bit;
	return 0;
}

static int smtp_default_port(enum tls_mode m)
{
	return m == TLS_ON ? 465 : m == TLS_STARTTLS ? 587 : 25;
}

/* The SMTP half applies only to an account that logs in to SMTP
 * (smtp_user): without it, forward keeps going to smtp_host (localhost). */
static void apply_smtp(struct account *a, const struct provider *p)
{
	unsigned set = a->keys_set;
	if (a->smtp_user == NULL)
		return;
	if (!(set & PRESET_SMTP_HOST)) {
		free(a->smtp_host);
		a->smtp_host = xstrdup(p->smtp_host);
	}
	if (!(set & PRESET_SMTP_TLS))
		a->smtp_tls = p->smtp_tls;
	if (!(set & PRESET_SMTP_PORT))
		a->smtp_port = (set & PRESET_SMTP_TLS) ? smtp_default_port(a->smtp_tls)
						       : p->smtp_port;
}

/* imap_provider: the IMAP keys the config did not write. */
static void apply_imap(struct account *a)
{
	unsigned set = a->keys_set;
	if (a->imap_provider <= 0 || (size_t)a->imap_provider > NIMAP)
		return;
	size_t i = (size_t)a->imap_provider - 1;
	if (!(set & PRESET_IMAP_HOST)) {
		free(a->imap_host);
		a->imap_host = xstrdup(imap_table[i].host);
	}
	if (!(set & PRESET_IMAP_TLS))
		a->imap_tls = imap_table[i].tls;
	if (!(set & (PRESET_IMAP_PORT | PRESET_IMAP_TLS)))
		a->imap_port = imap_table[i].port;
	provider_imap_oauth(a, provider_find(imap_table[i].name));
}

int provider_apply(struct account *a, char **err)
{
	const struct provider *p = a->provider > 0 ? provider_at((size_t)a->provider - 1) : NULL;
	apply_imap(a);
	if (p == NULL)
		return 0;
	unsigned set = a->keys_set;
	if (!(set & PRESET_HOST)) {
		if (p->host == NULL)
			return seterr(err, "provider %s has no POP3 server (%s): set host", p->name,
				      p->note);
		free(a->host);
		a->host = xstrdup(p->host);
	}
	if (!(set & PRESET_TLS))
		a->tls = p->tls;
	/* an explicit tls without a port takes that mode's standard port */
	if (!(set & (PRESET_PORT | PRESET_TLS)))
		a->port = p->port;
	apply_smtp(a, p);
	provider_oauth_fill(&a->oauth, p, SIDE_POP3);
	provider_oauth_fill(&a->smtp_oauth, p, SIDE_SMTP);
	if (provider_two_step(p) && !(set & PRESET_SASL_IR))
		a->sasl_ir = 0;
	return 0;
}

static const char *tls_name(enum tls_mode m)
{
	return m == TLS_ON ? "on" : m == TLS_STARTTLS ? "starttls" : "off";
}

void provider_describe(const struct account *a, FILE *out)
{
	fprintf(out, "account %s: %s:%d tls %s; smtp %s:%d tls %s", a->name, a->host, a->port,
		tls_name(a->tls), a->smtp_host ? a->smtp_host : "localhost", a->smtp_port,
		tls_name(a->smtp_tls));
	if (a->imap_host)
		fprintf(out, "; imap %s:%d tls %s", a->imap_host, a->imap_port, tls_name(a->imap_tls));
	const struct provider *p = a->provider > 0 ? provider_at((size_t)a->provider - 1) : NULL;
	if (p)
		fprintf(out, "; provider %s (login: %s)", p->name, p->login);
	fputc('\n', out);
}

static void print_one(const struct provider *p, FILE *out)
{
	char pop[64], smtp[64];
	if (p->host)
		snprintf(pop, sizeof pop, "%s:%d tls %s", p->host, p->port, tls_name(p->tls));
	else
		snprintf(pop, sizeof pop, "(no POP3)");
	snprintf(smtp, sizeof smtp, "%s:%d tls %s", p->smtp_host, p->smtp_port,
		 tls_name(p->smtp_tls));
	fprintf(out, "%-10s %-34s %-38s %s\n", p->name, pop, smtp, p->domain ? p->domain : "");
	fprintf(out, "%-10s login: %s\n", "", p->login);
	if (p->note)
		fprintf(out, "%-10s note: %s\n", "", p->note);
	for (size_t i = 0; i < NIMAP; i++)
		if (strcmp(imap_table[i].name, p->name) == 0)
			fprintf(out, "%-10s imap_provider: %s:%d tls %s\n", "", imap_table[i].host,
				imap_table[i].port, tls_name(imap_table[i].tls));
}

int cmd_providers(int nargs, char **args)
{
	if (nargs > 1) {
		usage_print(stderr, "providers");
		return EX_USAGE;
	}
	if (nargs == 1) {
		const struct provider *p = provider_find(args[0]);
		if (p == NULL) {
			log_err(NULL, "unknown provider \"%s\" (popsift providers lists them)",
				args[0]);
			return EX_USAGE;
		}
		print_one(p, stdout);
		return 0;
	}
	printf("%-10s %-34s %-38s %s\n", "NAME", "POP3: host, port, tls",
	       "SMTP: smtp_host, port, tls", "DOMAIN");
	for (size_t i = 0; i < NPROVIDERS; i++)
		print_one(&table[i], stdout);
	puts("\nUse: provider NAME in an account (or defaults); keys written in the config win.\n"
	     "The smtp half applies when smtp_user is set (forward through the provider).");
	return 0;
}
