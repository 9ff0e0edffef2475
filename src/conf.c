/* conf.c — the config file (msmtp/mpop style): `defaults` and `account`
 * sections of `key value` lines; keys under defaults are inherited by
 * the accounts that follow.  Errors name file:line. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "popsift.h"
#include "oauth.h"
#include "conf-suggest.h"
#include "provider.h"
#include "proxy.h"
#include "route.h"
#include "state.h"

struct pctx {
	const char *file;
	int line;
	struct config *cf;
	struct account tmpl;      /* the current defaults */
	struct account *cur;      /* NULL while in a defaults section */
	struct account **tail;
	int own_dests;            /* the account has its own deliver line */
	int section;              /* a defaults or account line was seen */
	const char *key;          /* the line's key, for value errors */
	char **err;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct pctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return seterr(c->err, "%s:%d: %s", c->file, c->line, msg);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static int parse_bool(struct pctx *c, const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false"))
		*out = 0;
	else
		return perr(c, "expected yes or no, not \"%s\"", v);
	return 0;
}

static int parse_int(struct pctx *c, const char *v, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi)
		return perr(c, "%s: expected a number from %d to %d, not \"%s\"", c->key, lo, hi, v);
	*out = (int)n;
	return 0;
}

static int parse_tls(struct pctx *c, const char *v, enum tls_mode *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes"))
		*out = TLS_ON;
	else if (!strcmp(v, "starttls"))
		*out = TLS_STARTTLS;
	else if (!strcmp(v, "off") || !strcmp(v, "no"))
		*out = TLS_OFF;
	else
		return perr(c, "tls must be on, starttls or off, not \"%s\"", v);
	return 0;
}

/* "100M", "512K", "2G", "1000" (bytes); 0 means no limit */
static int parse_size(struct pctx *c, const char *v, long long *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	long long unit = *end == 'K' || *end == 'k' ? 1024LL : *end == 'M' || *end == 'm' ?
			 1LL << 20 : *end == 'G' || *end == 'g' ? 1LL << 30 : 1;
	if (unit > 1)
		end++;
	if (*v == '\0' || *end != '\0' || errno || n < 0 || n > (1LL << 50) / unit)
		return perr(c, "expected a size such as 100M or 512K, not \"%s\"", v);
	*out = n * unit;
	return 0;
}

/* "30d", "12h", "90m", "3600" (seconds), "2w" */
static int parse_age(struct pctx *c, const char *v, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	long unit = 1;
	switch (*end) {
	case '\0': break;
	case 's': unit = 1; end++; break;
	case 'm': unit = 60; end++; break;
	case 'h': unit = 3600; end++; break;
	case 'd': unit = 86400; end++; break;
	case 'w': unit = 7 * 86400; end++; break;
	default: unit = 0;
	}
	if (*v == '\0' || *end != '\0' || errno || n <= 0 || unit == 0 || n > 100L * 365 * 86400 / unit)
		return perr(c, "expected an age such as 30d, 12h or 90m, not \"%s\"", v);
	*out = n * unit;
	return 0;
}

/* keep yes | no | AGE: an age keeps mail, then deletes it that long after
 * it was first seen. */
static int parse_keep(struct pctx *c, struct account *a, const char *v)
{
	if (*v >= '0' && *v <= '9') {
		a->keep = 1;
		return parse_age(c, v, &a->delete_after);
	}
	a->delete_after = 0;
	return parse_bool(c, v, &a->keep);
}

static const char *const auth_names[] = {
	[AUTH_ANY] = "any", [AUTH_USER] = "user", [AUTH_APOP] = "apop",
	[AUTH_PLAIN] = "plain", [AUTH_LOGIN] = "login", [AUTH_CRAM_MD5] = "cram-md5",
	[AUTH_XOAUTH2] = "xoauth2", [AUTH_OAUTHBEARER] = "oauthbearer",
};

static int parse_auth(struct pctx *c, const char *v, enum auth_mode *out)
{
	for (size_t i = 0; i < sizeof auth_names / sizeof *auth_names; i++) {
		if (strcasecmp(v, auth_names[i]) == 0) {
			*out = (enum auth_mode)i;
			return 0;
		}
	}
	return perr(c, "unknown auth method \"%s\"", v);
}

/* `imap [FOLDER]`: no folder means the account's imap_folder. */
static int imap_dest(const char *arg, struct dest *d, char **err)
{
	d->kind = DEST_IMAP;
	char **w = split_args(arg, err);
	if (w == NULL)
		return -1;
	int bad = w[0] && (w[1] || w[0][0] == '\0' || strpbrk(w[0], "\r\n"));
	d->path = w[0] && !bad ? xstrdup(w[0]) : NULL;
	free_argv(w);
	return bad ? seterr(err, "imap takes at most one folder name") : 0;
}

int dest_parse(const char *text, struct dest *d, char **err)
{
	memset(d, 0, sizeof *d);
	size_t kw = strcspn(text, " \t");
	const char *arg = text + kw + strspn(text + kw, " \t");
	if (kw == 4 && !strncmp(text, "imap", kw))
		return imap_dest(arg, d, err);
	if (*arg == '\0')
		return seterr(err, "\"%.*s\" needs an argument", (int)kw, text);
	if (!strncmp(text, "mbox", kw) && kw == 4)
		d->kind = DEST_MBOX;
	else if (!strncmp(text, "maildir", kw) && kw == 7)
		d->kind = DEST_MAILDIR;
	else if (!strncmp(text, "mda", kw) && kw == 3)
		d->kind = DEST_MDA;
	else if (!strncmp(text, "forward", kw) && kw == 7)
		d->kind = DEST_FORWARD;
	else if (!strncmp(text, "lmtp", kw) && kw == 4)
		d->kind = DEST_LMTP;
	else
		return seterr(err, "unknown delivery \"%.*s\" (mbox, maildir, mda, forward, imap or lmtp)",
			      (int)kw, text);
	if (d->kind == DEST_MBOX || d->kind == DEST_MAILDIR) {
		char **w = split_args(arg, err);
		if (w == NULL)
			return -1;
		d->path = w[0] ? expand_tilde(w[0]) : NULL;
		int extra = w[0] && w[1];
		free_argv(w);
		if (d->path == NULL || extra) {
			const char *kind = d->kind == DEST_MBOX ? "mbox" : "maildir";
			dest_free(d);
			return seterr(err, "%s takes one path", kind);
		}
		return 0;
	}
	d->argv = split_args(arg, err);
	return d->argv ? 0 : -1;
}

void dest_free(struct dest *d)
{
	free(d->path);
	free_argv(d->argv);
	memset(d, 0, sizeof *d);
}

static void dest_copy(struct dest *dst, const struct dest *src)
{
	dst->kind = src->kind;
	dst->path = src->path ? xstrdup(src->path) : NULL;
	dst->argv = NULL;
	if (src->argv) {
		size_t n = 0;
		while (src->argv[n])
			n++;
		dst->argv = xcalloc(n + 1, sizeof *dst->argv);
		for (size_t i = 0; i < n; i++)
			dst->argv[i] = xstrdup(src->argv[i]);
	}
}

#define DUP(f) (a->f = src->f ? xstrdup(src->f) : NULL)
static void oauth_copy(struct oauth_conf *a, const struct oauth_conf *src)
{
	DUP(client_id); DUP(client_secret); DUP(client_secret_command);
	DUP(scope); DUP(auth_url); DUP(token_url); DUP(device_url);
}

static void account_copy(struct account *a, const struct account *src)
{
	*a = *src;
	DUP(name); DUP(file); DUP(host); DUP(user); DUP(password);
	DUP(password_command); DUP(tls_ca_file); DUP(tls_fingerprint); DUP(rules);
	DUP(smtp_host); DUP(smtp_user); DUP(smtp_password); DUP(smtp_password_command);
	DUP(imap_host); DUP(imap_user); DUP(imap_password); DUP(imap_password_command);
	DUP(imap_folder); DUP(imap_tls_ca_file);
	DUP(smtp_from); DUP(smtp_helo); DUP(smtp_tls_ca_file); DUP(token_dir);
	DUP(lmtp_rcpt); DUP(mda_rcpt);
	DUP(after_run); DUP(proxy); DUP(smtp_proxy); DUP(imap_proxy);
	oauth_copy(&a->oauth, &src->oauth);
	oauth_copy(&a->smtp_oauth, &src->smtp_oauth);
	oauth_copy(&a->imap_oauth, &src->imap_oauth);
	a->dests = src->ndests ? xcalloc(src->ndests, sizeof *a->dests) : NULL;
	for (size_t i = 0; i < src->ndests; i++)
		dest_copy(&a->dests[i], &src->dests[i]);
	a->next = NULL;
}
#undef DUP

static void oauth_clear(struct oauth_conf *o)
{
	char **strs[] = { &o->client_id, &o->client_secret, &o->client_secret_command,
		&o->scope, &o->auth_url, &o->token_url, &o->device_url };
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
		if (*strs[i] && strs[i] == &o->client_secret)
			memset(*strs[i], 0, strlen(*strs[i]));
		free(*strs[i]);
	}
}

static void account_clear(struct account *a)
{
	char **strs[] = { &a->name, &a->file, &a->host, &a->user, &a->password,
		&a->password_command, &a->tls_ca_file, &a->tls_fingerprint, &a->rules,
		&a->smtp_host, &a->smtp_user, &a->smtp_password, &a->smtp_password_command,
		&a->smtp_from, &a->smtp_helo, &a->smtp_tls_ca_file, &a->token_dir,
		&a->imap_host, &a->imap_user, &a->imap_password, &a->imap_password_command,
		&a->imap_folder, &a->imap_tls_ca_file, &a->lmtp_rcpt, &a->mda_rcpt,
		&a->after_run, &a->proxy, &a->smtp_proxy, &a->imap_proxy };
	route_free(a->route);
	oauth_clear(&a->oauth);
	oauth_clear(&a->smtp_oauth);
	oauth_clear(&a->imap_oauth);
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
		if (*strs[i] && (strs[i] == &a->password || strs[i] == &a->smtp_password ||
				 strs[i] == &a->imap_password))
			memset(*strs[i], 0, strlen(*strs[i]));
		free(*strs[i]);
	}
	for (size_t i = 0; i < a->ndests; i++)
		dest_free(&a->dests[i]);
	free(a->dests);
	memset(a, 0, sizeof *a);
}

static void account_defaults(struct account *a)
{
	memset(a, 0, sizeof *a);
	a->tls = TLS_ON;
	a->auth = AUTH_ANY;
	a->interval = 300;
	a->max_interval = -1;
	a->max_backoff = 3600;
	a->timeout = 60;
	a->session_timeout = 1800;
	a->after_run_timeout = 30;
	a->received_header = 1;
	a->fast_uidl = 1;
	a->batch = 500;
	a->filter_parallel = 4;
	a->max_size = 100LL << 20;
	a->smtp_tls = TLS_OFF;
	a->imap_tls = TLS_ON;
	a->imap_sasl_ir = 1;
}

enum ktype { K_STR, K_PATH, K_INT, K_BOOL, K_TLS, K_AUTH, K_PORT, K_KEEP, K_AGE, K_SIZE,
	     K_ONREJECT, K_ONPARTIAL };
struct key {
	const char *name;
	enum ktype type;
	size_t off;
};
#define K(n, t) { #n, t, offsetof(struct account, n) }
static const struct key keys[] = {
	K(host, K_STR), K(port, K_PORT), K(user, K_STR), K(password, K_STR),
	K(password_command, K_STR), K(tls, K_TLS), K(tls_ca_file, K_PATH),
	K(tls_fingerprint, K_STR), K(auth, K_AUTH), K(keep, K_KEEP), K(delete_after, K_AGE), K(rules, K_PATH),
	K(interval, K_INT), K(max_interval, K_INT), K(max_size, K_SIZE), K(max_messages, K_INT), K(max_backoff, K_INT), K(timeout, K_INT), K(received_header, K_BOOL),
	K(session_timeout, K_INT), K(filter_parallel, K_INT),
	K(fast_uidl, K_BOOL),
	K(smtp_host, K_STR), K(smtp_port, K_PORT), K(smtp_tls, K_TLS), K(smtp_user, K_STR),
	K(smtp_password, K_STR), K(smtp_password_command, K_STR), K(smtp_from, K_STR),
	K(smtp_helo, K_STR), K(smtp_auth, K_AUTH), K(smtp_tls_ca_file, K_PATH),
	K(imap_host, K_STR), K(imap_port, K_PORT), K(imap_tls, K_TLS), K(imap_user, K_STR),
	K(imap_password, K_STR), K(imap_password_command, K_STR), K(imap_auth, K_AUTH),
	K(imap_tls_ca_file, K_PATH), K(imap_folder, K_STR), K(imap_create, K_BOOL),
	{ "on_reject", K_ONREJECT, offsetof(struct account, on_reject_discard) },
	{ "on_partial", K_ONPARTIAL, offsetof(struct account, on_partial_accept) },
	K(sasl_ir, K_BOOL), K(imap_sasl_ir, K_BOOL), K(lmtp_rcpt, K_STR), K(mda_rcpt, K_STR),
	K(after_run, K_STR), K(after_run_timeout, K_INT), K(proxy, K_STR), K(smtp_proxy, K_STR), K(imap_proxy, K_STR),
#define O3(f) { "oauth_" #f, K_STR, offsetof(struct account, oauth.f) }, \
	{ "smtp_oauth_" #f, K_STR, offsetof(struct account, smtp_oauth.f) }, \
	{ "imap_oauth_" #f, K_STR, offsetof(struct account, imap_oauth.f) }
	O3(client_id), O3(client_secret), O3(client_secret_command), O3(scope),
	O3(auth_url), O3(token_url), O3(device_url),
#undef O3
};
#undef K

/* A key with two words: the first (the default) stored as 0, the other as 1. */
static int parse_pair(struct pctx *c, const char *v, const char *w0, const char *w1, int *out)
{
	if (strcmp(v, w0) != 0 && strcmp(v, w1) != 0)
		return perr(c, "expected %s or %s, not \"%s\"", w0, w1, v);
	*out = strcmp(v, w1) == 0;
	return 0;
}

static int set_key(struct pctx *c, struct account *a, const struct key *k, const char *v)
{
	void *f = (char *)a + k->off;
	switch (k->type) {
	case K_STR:  set_str(f, v); return 0;
	case K_PATH: free(*(char **)f); *(char **)f = expand_tilde(v); return 0;
	case K_INT:  return parse_int(c, v, 0, 1 << 30, f);
	case K_PORT: return parse_int(c, v, 1, 65535, f);
	case K_BOOL: return parse_bool(c, v, f);
	case K_TLS:  return parse_tls(c, v, f);
	case K_AUTH: return parse_auth(c, v, f);
	case K_KEEP: return parse_keep(c, a, v);
	case K_SIZE: return parse_size(c, v, f);
	case K_AGE:  a->keep = 1; return parse_age(c, v, &a->delete_after);
	case K_ONREJECT:  return parse_pair(c, v, "keep", "discard", f);
	case K_ONPARTIAL: return parse_pair(c, v, "keep", "accept", f);
	}
	return -1;
}

static int add_dest(struct pctx *c, struct account *a, const char *v)
{
	struct dest d;
	char *e = NULL;
	if (dest_parse(v, &d, &e) < 0) {
		perr(c, "deliver: %s", e);
		free(e);
		return -1;
	}
	a->dests = xrealloc(a->dests, (a->ndests + 1) * sizeof *a->dests);
	a->dests[a->ndests++] = d;
	return 0;
}

static int new_account(struct pctx *c, const char *name)
{
	if (*name == '\0' || strcspn(name, " \t/") != strlen(name))
		return perr(c, "bad account name \"%s\"", name);
	for (struct account *a = c->cf->accounts; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return perr(c, "account \"%s\" defined twice", name);
	struct account *a = xcalloc(1, sizeof *a);
	account_copy(a, &c->tmpl);
	set_str(&a->name, name);
	set_str(&a->file, c->file);
	a->line = c->line;
	a->batch = a->batch ? a->batch : 500;
	*c->tail = a;
	c->tail = &a->next;
	c->cur = a;
	return 0;
}

static int unknown_key(struct pctx *c, const char *key)
{
	struct suggest sg = { .word = key };
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		suggest_try(&sg, keys[i].name);
	const char *best = suggest_result(&sg);
	return best ? perr(c, "unknown key \"%s\" (did you mean \"%s\"?)", key, best)
		    : perr(c, "unknown key \"%s\"", key);
}

/* A key of the whole config rather than of an account (state, log, ...):
 * allowed before any section too.  -2 when key is not one. */
static int global_key(struct pctx *c, const char *key, const char *v)
{
	static const char *const names[] = { "state", "max_parallel", "lock_wait", "log",
					     "metrics" };
	size_t i = 0;
	while (i < sizeof names / sizeof *names && strcmp(names[i], key) != 0)
		i++;
	if (i == sizeof names / sizeof *names)
		return -2;
	if (*v == '\0')
		return perr(c, "%s needs a value", key);
	if (strcmp(key, "state") == 0) {
		char *p = expand_tilde(v);
		if (c->cf->state && strcmp(c->cf->state, p) != 0) {
			free(p);
			return perr(c, "state is already %s: one state database per config", c->cf->state);
		}
		free(c->cf->state);
		c->cf->state = p;
		return 0;
	}
	if (strcmp(key, "max_parallel") == 0)
		return parse_int(c, v, 1, 256, &c->cf->max_parallel);
	if (strcmp(key, "lock_wait") == 0)
		return parse_int(c, v, 0, 86400, &c->cf->lock_wait);
	if (strcmp(key, "log") == 0) {
		set_str(&c->cf->log, v);
		return 0;
	}
	if (strcmp(key, "metrics") == 0) {
		free(c->cf->metrics);
		c->cf->metrics = expand_tilde(v);
		return 0;
	}
	return -1;
}

static int do_line(struct pctx *c, const char *key, const char *v)
{
	c->key = key;
	int g = global_key(c, key, v);
	if (g != -2)
		return g;
	c->section |= !strcmp(key, "defaults") || !strcmp(key, "account");
	if (!c->section)   /* as mpop: an account's key belongs to a section */
		return perr(c, "\"%s\" comes before any defaults or account line: put a "
			    "\"defaults\" line above it (keys there apply to every account)", key);
	if (strcmp(key, "defaults") == 0) {
		c->cur = NULL;
		return *v ? perr(c, "defaults takes no value (\"%s\")", v) : 0;
	}
	if (strcmp(key, "account") == 0) {
		c->own_dests = 0;
		return new_account(c, v);
	}
	struct account *a = c->cur ? c->cur : &c->tmpl;
	if (*v == '\0')
		return perr(c, "%s needs a value", key);
	if (strcmp(key, "provider") == 0)
		return provider_set(a, v) == 0 ? 0 :
			perr(c, "unknown provider \"%s\" (popsift providers lists them)", v);
	if (strcmp(key, "imap_provider") == 0)
		return provider_set_imap(a, v) == 0 ? 0 :
			perr(c, "imap_provider: no IMAP preset for \"%s\" (gmail, outlook, "
			     "office365)", v);
	char *re = NULL;
	int rk = route_key(c->cur ? &c->cur->route : NULL, key, v, &re);
	if (rk != 0) {
		rk = rk < 0 ? perr(c, "%s", re) : 0;
		free(re);
		return rk;
	}
	if (!strcmp(key, "proxy") || !strcmp(key, "smtp_proxy") || !strcmp(key, "imap_proxy")) {
		char *pe = NULL;
		if (proxy_check(v, &pe) < 0) {
			perr(c, "%s: %s", key, pe);
			free(pe);
			return -1;
		}
	}
	if (strcmp(key, "deliver") == 0) {
		/* an account's own deliver lines replace what defaults gave it */
		if (c->cur && !c->own_dests) {
			for (size_t i = 0; i < a->ndests; i++)
				dest_free(&a->dests[i]);
			a->ndests = 0;
			c->own_dests = 1;
		}
		return add_dest(c, a, v);
	}
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		if (strcmp(keys[i].name, key) != 0)
			continue;
		if (!strcmp(key, "password") || !strcmp(key, "smtp_password") ||
		    !strcmp(key, "imap_password") ||
		    (strlen(key) >= 19 && !strcmp(key + strlen(key) - 19, "oauth_client_secret")))
			c->cf->has_password = 1;
		if (!strcmp(key, "tls"))
			a->tls_explicit = 1;
		if (!strcmp(key, "interval"))
			a->interval_set = 1;
		a->keys_set |= provider_key_bit(key);
		return set_key(c, a, &keys[i], v);
	}
	return unknown_key(c, key);
}

/* Split "key value  # comment" into key and value.  A value in double
 * quotes may hold '#' and escapes; otherwise '#' after white space
 * starts a comment.  Command-like values keep their quotes for
 * split_args. */
static int split_line(struct pctx *c, char *line, char **key, char **val)
{
	char *s = line + strspn(line, " \t");
	*key = s;
	s += strcspn(s, " \t");
	if (*s)
		*s++ = '\0';
	s += strspn(s, " \t");
	*val = s;
	int raw = strcmp(*key, "deliver") == 0 || strstr(*key, "_command") != NULL;
	if (*s == '"' && !raw) {
		char *o = s;
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			*o++ = *s;
		}
		if (*s != '"')
			return perr(c, "unterminated quote in \"%s\"", *key);
		*o = '\0';
		s++;
		s += strspn(s, " \t");
		if (*s && *s != '#')
			return perr(c, "text after the closing quote of \"%s\"", *key);
		return 0;
	}
	for (char *p = s; *p; p++) {
		if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return 0;
}

static int uses_imap(const struct account *a)
{
	for (size_t i = 0; i < a->ndests; i++)
		if (a->dests[i].kind == DEST_IMAP)
			return 1;
	return 0;
}

/* The IMAP keys are checked whether or not a deliver line uses them: a
 * rule may. */
static int check_imap(struct pctx *c, struct account *a)
{
	if (a->imap_port == 0)
		a->imap_port = a->imap_tls == TLS_ON ? 993 : 143;
	if (a->imap_auth == AUTH_USER || a->imap_auth == AUTH_APOP)
		return perr(c, "account \"%s\": imap_auth must be any, plain, login, cram-md5, "
			    "xoauth2 or oauthbearer", a->name);
	if (a->imap_password && a->imap_password_command)
		return perr(c, "account \"%s\" has both imap_password and imap_password_command",
			    a->name);
	if (a->imap_folder && strpbrk(a->imap_folder, "\r\n") != NULL)
		return perr(c, "account \"%s\": imap_folder has a line break", a->name);
	if (uses_imap(a) && (a->imap_host == NULL || a->imap_user == NULL))
		return perr(c, "account \"%s\": deliver imap needs imap_host (or imap_provider) "
			    "and imap_user", a->name);
	return 0;
}

/* A side with an OAuth2 client id and `auth any` logs in with XOAUTH2:
 * a token sent as a password would only be refused. */
static void oauth_default_auth(struct account *a)
{
	if (a->oauth.client_id && a->auth == AUTH_ANY && a->password_command == NULL)
		a->auth = AUTH_XOAUTH2;
	if (a->smtp_oauth.client_id && a->smtp_auth == AUTH_ANY && a->smtp_password_command == NULL)
		a->smtp_auth = AUTH_XOAUTH2;
	if (a->imap_oauth.client_id && a->imap_auth == AUTH_ANY && a->imap_password_command == NULL)
		a->imap_auth = AUTH_XOAUTH2;
}

/* libcurl's form, sha256//BASE64 of the public key (';' between several),
 * or a key file; a certificate's hex digest (mpop, fetchmail) is another
 * hash, of another thing, that no pin can be made from. */
static int check_pin(struct pctx *c, const struct account *a)
{
	const char *s = a->tls_fingerprint;
	if (s == NULL || *s == '/')
		return 0;
	for (;;) {
		size_t n = strcspn(s, ";"), b = strspn(s + 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789+/=");
		if (strncmp(s, "sha256//", 8) != 0 || n != 8 + 44 || b != 44 || s[51] != '=')
			return perr(c, "account \"%s\": tls_fingerprint \"%s\" is not sha256//BASE64, "
				    "the SHA-256 of the server's public key (as curl --pinnedpubkey; "
				    "mpop's and fetchmail's hex fingerprints are of the certificate and "
				    "cannot be used): see popsift.conf(5) for the openssl command that "
				    "prints it", a->name, a->tls_fingerprint);
		if (s[n] == '\0')
			return 0;
		s += n + 1;
	}
}

static int check_account(struct pctx *c, struct account *a)
{
	c->line = a->line;
	char *e = NULL;
	if (provider_apply(a, &e) < 0) {
		perr(c, "account \"%s\": %s", a->name, e);
		free(e);
		return -1;
	}
	if (a->host == NULL)
		return perr(c, "account \"%s\" has no host", a->name);
	if (a->user == NULL)
		return perr(c, "account \"%s\" has no user", a->name);
	if (a->ndests == 0 && a->rules == NULL)
		return perr(c, "account \"%s\" has no deliver line and no rules", a->name);
	if (a->password && a->password_command)
		return perr(c, "account \"%s\" has both password and password_command", a->name);
	if (check_pin(c, a) < 0)
		return -1;
	if (route_check(a->route, &e) < 0) {
		perr(c, "account \"%s\": %s", a->name, e);
		free(e);
		return -1;
	}
	if (oauth_check(a, &e) < 0) {
		perr(c, "account \"%s\": %s", a->name, e);
		free(e);
		return -1;
	}
	oauth_default_auth(a);
	if (a->port == 0)
		a->port = a->tls == TLS_ON ? 995 : 110;
	if (a->smtp_port == 0)   /* local MTA, submission, SMTPS */
		a->smtp_port = a->smtp_tls == TLS_OFF ? 25 : a->smtp_tls == TLS_STARTTLS ? 587 : 465;
	if (a->smtp_auth == AUTH_USER || a->smtp_auth == AUTH_APOP)
		return perr(c, "account \"%s\": smtp_auth must be any, plain, login, cram-md5, "
			    "xoauth2 or oauthbearer", a->name);
	return check_imap(c, a);
}

int conf_parse(const char *path, const char *text, struct config *cf, char **err)
{
	memset(cf, 0, sizeof *cf);
	cf->file = xstrdup(path);
	cf->max_parallel = 16;   /* popsift.conf.5 says why */
	cf->lock_wait = 60;
	struct pctx c = { .file = path, .cf = cf, .tail = &cf->accounts, .err = err };
	account_defaults(&c.tmpl);
	char *buf = xstrdup(text);
	int rc = 0;
	c.line = 0;
	for (char *s = buf, *nl; rc == 0 && s; s = nl) {
		nl = strchr(s, '\n');
		if (nl)
			*nl++ = '\0';
		c.line++;
		s[strcspn(s, "\r")] = '\0';
		char *key, *val;
		const char *t = s + strspn(s, " \t");
		if (*t == '\0' || *t == '#')
			continue;
		rc = split_line(&c, s, &key, &val);
		if (rc == 0)
			rc = do_line(&c, key, val);
	}
	for (struct account *a = cf->accounts; rc == 0 && a; a = a->next)
		rc = check_account(&c, a);
	if (rc == 0 && cf->state == NULL)
		cf->state = expand_tilde("~/.local/state/popsift/state.db");
	for (struct account *a = cf->accounts; rc == 0 && a; a = a->next)
		a->token_dir = oauth_token_dir(cf->state);
	account_clear(&c.tmpl);
	free(buf);
	if (rc < 0)
		conf_free(cf);
	return rc;
}

/* ---- files popsift obeys ---- */

/* As fetchmail and procmail: a file that tells popsift what to run and
 * where to write belongs to its user (or root) and only they may change
 * it. */
static int check_trusted(const char *path, const struct stat *st, char **err)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return seterr(err, "%s: owned by another user (uid %u): popsift obeys only files "
			      "of its own user or root: run chown %u %s", path, (unsigned)st->st_uid,
			      (unsigned)geteuid(), path);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return seterr(err, "%s: writable by others (mode %04o), who could make popsift "
			      "run their commands: run chmod go-w %s", path,
			      (unsigned)(st->st_mode & 07777), path);
	return 0;
}

static char *read_stream(FILE *f, const char *path, char **err)
{
	size_t n = 0, cap = 4096, got;
	char *buf = xmalloc(cap);
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0)
			buf = xrealloc(buf, cap *= 2);
	}
	if (ferror(f) || memchr(buf, '\0', n) != NULL) {
		seterr(err, "%s: %s", path, ferror(f) ? "read error" : "contains a NUL byte");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The whole file, checked through the descriptor it is read from, so
 * that what was checked is what is read; *st gets its status. */
char *read_trusted_file(const char *path, struct stat *st, char **err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		seterr(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *text = NULL;
	if (fstat(fileno(f), st) < 0)
		seterr(err, "%s: %s", path, strerror(errno));
	else if (check_trusted(path, st, err) == 0)
		text = read_stream(f, path, err);
	fclose(f);
	return text;
}

int conf_load(const char *path, struct config *cf, char **err)
{
	struct stat st;
	char *text = read_trusted_file(path, &st, err);
	if (text == NULL)
		return -1;
	int rc = conf_parse(path, text, cf, err);
	free(text);
	if (rc == 0 && state_check(cf->state, err) < 0) {
		conf_free(cf);
		return -1;
	}
	if (rc == 0 && cf->has_password && (st.st_mode & 077)) {
		seterr(err, "%s: holds a password but is readable by others (mode %04o): "
		       "run chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
		conf_free(cf);
		return -1;
	}
	return rc;
}

void conf_free(struct config *cf)
{
	struct account *a = cf->accounts, *n;
	for (; a; a = n) {
		n = a->next;
		account_clear(a);
		free(a);
	}
	free(cf->file);
	free(cf->state);
	free(cf->log);
	free(cf->metrics);
	memset(cf, 0, sizeof *cf);
}
