/* import-mpop.c — `popsift import mpoprc`: an mpop configuration (one
 * "command argument" a line, `defaults`, `account NAME [: OTHER,...]`)
 * as a popsift config.  Pure: text in, text out.  What has no popsift
 * equivalent becomes a "# could not convert:" comment in the account and
 * a line of the summary, as for a .fetchmailrc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import.h"
#include "popsift.h"

struct kv {
	char *key, *val;
	int   line;
};

struct macct {
	char      *name;
	int        line;
	struct kv *kv;
	size_t     n;
};

struct mp {
	const char   *file;
	struct kv    *defs;
	size_t        ndefs;
	struct macct *a;
	size_t        na;
	struct inotes notes, all;
	FILE         *out;
	char        **hints;    /* import mpop-uidls lines for the summary */
	size_t        nhints;
};

static void kv_add(struct kv **v, size_t *n, const char *key, const char *val, int line)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = (struct kv){ xstrdup(key), xstrdup(val), line };
}

/* The argument: the rest of the line, or one "quoted" string with \" and \\. */
static int argument(struct mp *m, int line, char *s, char **err)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (*s != '"')
		return 0;
	char *o = s;
	for (s++; *s && *s != '"'; s++) {
		if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
			s++;
		*o++ = *s;
	}
	if (*s != '"' || s[1] != '\0')
		return seterr(err, "%s:%d: %s", m->file, line, *s ? "text after the closing quote" :
			      "unterminated quote");
	*o = '\0';
	return 0;
}

static struct macct *find(struct mp *m, const char *name)
{
	for (size_t i = 0; i < m->na; i++)
		if (strcmp(m->a[i].name, name) == 0)
			return &m->a[i];
	return NULL;
}

/* `account NAME [: A,B]`: the defaults, then what A and B set. */
static int new_account(struct mp *m, int line, char *arg, char **err)
{
	char *colon = strchr(arg, ':'), *list = colon ? colon + 1 : NULL;
	if (colon)
		*colon = '\0';
	char *name = arg + strspn(arg, " \t");
	name[strcspn(name, " \t")] = '\0';
	if (*name == '\0' || find(m, name))
		return seterr(err, "%s:%d: account %s", m->file, line,
			      *name ? "defined twice" : "needs a name");
	m->a = xrealloc(m->a, (m->na + 1) * sizeof *m->a);
	struct macct *a = &m->a[m->na++];
	*a = (struct macct){ .name = xstrdup(name), .line = line };
	for (size_t i = 0; i < m->ndefs; i++)
		kv_add(&a->kv, &a->n, m->defs[i].key, m->defs[i].val, m->defs[i].line);
	for (char *tok = list ? strtok(list, ", \t") : NULL; tok; tok = strtok(NULL, ", \t")) {
		const struct macct *from = find(m, tok);
		if (from == NULL || from == a)
			return seterr(err, "%s:%d: account %s: no earlier account %s", m->file, line,
				      name, tok);
		for (size_t i = 0; i < from->n; i++)
			kv_add(&a->kv, &a->n, from->kv[i].key, from->kv[i].val, from->kv[i].line);
	}
	return 0;
}

static int parse(struct mp *m, char *text, char **err)
{
	int line = 0, in_defaults = 0;
	for (char *s = text, *next; s && *s; s = next) {
		next = strchr(s, '\n');
		if (next)
			*next++ = '\0';
		line++;
		s += strspn(s, " \t");
		if (*s == '\0' || *s == '#' || *s == '\r')
			continue;
		char *key = s;
		s += strcspn(s, " \t\r");
		if (*s)
			*s++ = '\0';
		s += strspn(s, " \t");
		if (argument(m, line, s, err) < 0)
			return -1;
		if (strcmp(key, "defaults") == 0) {
			in_defaults = 1;
		} else if (strcmp(key, "account") == 0) {
			in_defaults = 0;
			if (new_account(m, line, s, err) < 0)
				return -1;
		} else if (!in_defaults && m->na == 0) {
			return seterr(err, "%s:%d: first command must be account or defaults (as "
				      "mpop says)", m->file, line);
		} else if (in_defaults) {
			kv_add(&m->defs, &m->ndefs, key, s, line);
		} else {
			struct macct *a = &m->a[m->na - 1];
			kv_add(&a->kv, &a->n, key, s, line);
		}
	}
	return 0;
}

/* The last value the account gives key (its own over inherited over
 * defaults); NULL if none. */
static const char *get(const struct macct *a, const char *key, int *line)
{
	for (size_t i = a->n; i-- > 0;)
		if (strcmp(a->kv[i].key, key) == 0) {
			if (line)
				*line = a->kv[i].line;
			return a->kv[i].val;
		}
	return NULL;
}

static int on(const char *v)
{
	return v && (*v == '\0' || strcmp(v, "on") == 0);
}

/* ------------------------------------------------------------ writing */

#define lost(m, line, ...) inotes_add(&(m)->notes, line, 1, __VA_ARGS__)

static void emit_tls(struct mp *m, const struct macct *a)
{
	int line = a->line;
	const char *tls = get(a, "tls", &line), *st = get(a, "tls_starttls", NULL);
	if (on(tls))
		fprintf(m->out, "tls %s\n", st && !on(st) ? "on" : "starttls");
	else if (tls == NULL || strcmp(tls, "off") == 0) {
		fputs("tls starttls\n", m->out);
		inotes_add(&m->notes, line, 0, "tls off (mpop's default too): popsift asks for STLS; "
			   "write tls off only for a server without it (the password then goes "
			   "in clear text)");
	}
	const char *v = get(a, "tls_trust_file", &line);
	if (v && *v && strcmp(v, "system") != 0)
		import_put(m->out, "tls_ca_file", v);
	else if (v && *v == '\0')
		lost(m, line, "tls_trust_file (empty): popsift always trusts a CA list "
		     "or a pin");
	if ((v = get(a, "tls_fingerprint", &line)) && *v)
		lost(m, line, "tls_fingerprint %s: that is the certificate's hash; popsift pins the "
		     "public key: tls_fingerprint sha256//BASE64 (see popsift.conf(5))", v);
	if ((v = get(a, "tls_certcheck", &line)) && !on(v))
		lost(m, line, "tls_certcheck off: popsift always checks the certificate "
		     "(tls_ca_file for a private CA, tls_fingerprint to pin a key)");
	static const char *const no[] = { "tls_cert_file", "tls_key_file", "tls_crl_file",
		"tls_priorities", "tls_host_override", "tls_min_dh_prime_bits", NULL };
	for (int i = 0; no[i]; i++)
		if ((v = get(a, no[i], &line)) && *v)
			lost(m, line, "%s %s: no equivalent", no[i], v);
}

/* mpop speaks SOCKS 5 and lets the proxy resolve names (Tor's way):
 * socks5h, its default port 1080. */
static void emit_proxy(struct mp *m, const struct macct *a)
{
	const char *h = get(a, "proxy_host", NULL), *p = get(a, "proxy_port", NULL);
	if (h == NULL || *h == '\0')
		return;
	char *url = xasprintf("socks5h://%s%s%s:%s", strchr(h, ':') ? "[" : "", h,
			      strchr(h, ':') ? "]" : "", p && *p ? p : "1080");
	import_put(m->out, "proxy", url);
	free(url);
}

static void emit_login(struct mp *m, const struct macct *a)
{
	int line = a->line;
	const char *v = get(a, "user", NULL), *host = get(a, "host", NULL);
	if (v && *v)
		import_put(m->out, "user", v);
	else
		inotes_add(&m->notes, a->line, 0, "no user: add one");
	const char *pw = get(a, "password", NULL), *ev = get(a, "passwordeval", &line);
	char *cmd = ev && *ev ? import_sh_command(ev) : NULL;
	if (pw && *pw && import_put(m->out, "password", pw) < 0)
		lost(m, a->line, "password with a line break: use password_command");
	else if (!(pw && *pw) && cmd)
		fprintf(m->out, "password_command %s\n", cmd);
	else if (!(pw && *pw) && ev && *ev)
		lost(m, line, "passwordeval %s: a \" #\" or a line break: write a script and "
		     "name it in password_command", ev);
	else if (!(pw && *pw))
		inotes_add(&m->notes, a->line, 0, "no password (mpop used the key ring, ~/.netrc "
			   "or asked): add password_command, e.g. password_command secret-tool "
			   "lookup host %s service pop3 user %s", host ? host : "HOST",
			   v && *v ? v : "USER");
	free(cmd);
	static const char *const same[] = { "user", "plain", "login", "cram-md5", "apop",
					    "xoauth2", "oauthbearer", NULL };
	if ((v = get(a, "auth", &line)) && !on(v)) {
		int known = 0;
		for (int i = 0; same[i]; i++)
			known |= strcasecmp(v, same[i]) == 0;
		if (known)
			fprintf(m->out, "auth %s\n", v);
		else
			lost(m, line, "auth %s: popsift knows user, plain, login, cram-md5, apop, "
			     "xoauth2 and oauthbearer", v);
	}
}

static void emit_delivery(struct mp *m, const struct macct *a)
{
	int line = a->line;
	const char *v = get(a, "delivery", &line);
	if (v == NULL) {
		lost(m, a->line, "no delivery: add a deliver line");
		return;
	}
	size_t k = strcspn(v, " \t");
	const char *arg = v + k + strspn(v + k, " \t");
	char *cmd = NULL;
	if (k == 4 && strncmp(v, "mbox", 4) == 0 && import_put(m->out, "deliver mbox", arg) == 0)
		return;
	if (k == 7 && strncmp(v, "maildir", 7) == 0 &&
	    import_put(m->out, "deliver maildir", arg) == 0)
		return;
	if (k == 3 && strncmp(v, "mda", 3) == 0 && (cmd = import_sh_command(arg)) != NULL) {
		fprintf(m->out, "deliver mda %s\n", cmd);   /* %F is popsift's too */
		free(cmd);
		return;
	}
	lost(m, line, "delivery %s: no equivalent%s", v,
	     k == 8 && !strncmp(v, "exchange", 8) ? " (an Exchange pickup directory)" : "");
}

static int size_set(const char *v)
{
	return v && *v && strcmp(v, "off") != 0;
}

/* skipsize leaves a big message on the server, as max_size does; so
 * does killsize with keep on (mpop then skips too); killsize without
 * keep deletes it: a rule. */
static void emit_sizes(struct mp *m, const struct macct *a)
{
	int line = a->line, keep = on(get(a, "keep", NULL));
	const char *skip = get(a, "skipsize", NULL), *kill = get(a, "killsize", &line);
	if (size_set(skip))
		fprintf(m->out, "max_size %s\n", skip);
	else if (size_set(kill) && keep)
		fprintf(m->out, "max_size %s\n", kill);
	if (size_set(kill) && !keep)
		lost(m, line, "killsize %s: put \"match size > %s discard\" in a rules file "
		     "(rules FILE)", kill, kill);
	else if (size_set(kill) && size_set(skip))
		lost(m, line, "killsize %s with keep: mpop skipped those too; max_size is "
		     "skipsize's", kill);
}

/* filter decides before the download, as popsift's rules on the header do. */
static void emit_limits(struct mp *m, const struct macct *a)
{
	int line = a->line;
	const char *v;
	if ((v = get(a, "filter", &line)) && *v)
		lost(m, line, "filter %s: popsift's rules decide on the header (rules FILE); "
		     "an exit code can decide with match pipe \"sh -c '...'\" returns 1 discard, "
		     "after the download", v);
	if ((v = get(a, "only_new", &line)) && !on(v))
		lost(m, line, "only_new off: popsift fetches what it has not delivered; run --all "
		     "fetches everything");
	if ((v = get(a, "timeout", NULL)) && strcmp(v, "off") != 0 && *v)
		fprintf(m->out, "timeout %s\n", v);
	if ((v = get(a, "received_header", NULL)))
		fprintf(m->out, "received_header %s\n", on(v) ? "yes" : "no");
}

static const char *const known[] = {
	"host", "port", "user", "password", "passwordeval", "tls", "tls_starttls",
	"tls_trust_file", "tls_fingerprint", "tls_certcheck", "tls_cert_file", "tls_key_file",
	"tls_crl_file", "tls_priorities", "tls_host_override", "tls_min_dh_prime_bits", "auth",
	"delivery", "keep", "only_new", "killsize", "skipsize", "filter", "timeout",
	"received_header", "uidls_file", "pipelining", "proxy_host", "proxy_port", NULL,
};

/* What the account sets that nothing above reads; each key once. */
static void emit_unknown(struct mp *m, const struct macct *a)
{
	for (size_t i = 0; i < a->n; i++) {
		int seen = 0;
		for (int k = 0; known[k] && !seen; k++)
			seen = strcmp(known[k], a->kv[i].key) == 0;
		for (size_t j = i + 1; j < a->n && !seen; j++)
			seen = strcmp(a->kv[j].key, a->kv[i].key) == 0;
		const char *k = a->kv[i].key, *v = a->kv[i].val;
		if (seen || *v == '\0')
			continue;
		if (!strcmp(k, "eval"))
			lost(m, a->kv[i].line, "eval %s: not run while converting: write what it "
			     "prints", v);
		else if (!strcmp(k, "socket") || !strcmp(k, "source_ip") || !strcmp(k, "ntlmdomain"))
			lost(m, a->kv[i].line, "%s %s: no equivalent", k, v);
		else
			lost(m, a->kv[i].line, "%s %s: not understood", k, v);
	}
}

/* mpop's %U and %H; its default ~/.mpop_uidls/%U_at_%H. */
static void uidl_hint(struct mp *m, const struct macct *a, const char *name)
{
	const char *f = get(a, "uidls_file", NULL), *u = get(a, "user", NULL);
	const char *h = get(a, "host", NULL);
	char *p = xstrdup(f && *f ? f : "~/.mpop_uidls/%U_at_%H");
	for (char *q; (q = strstr(p, "%U")) || (q = strstr(p, "%H"));) {
		char *n = xasprintf("%.*s%s%s", (int)(q - p), p, q[1] == 'U' ? (u ? u : "") :
				    (h ? h : ""), q + 2);
		free(p);
		p = n;
	}
	int home = strncmp(p, "~/", 2) == 0;        /* the shell's tilde stays unquoted */
	char *qp = import_shell_quote(p + 2 * home);
	m->hints = xrealloc(m->hints, (m->nhints + 1) * sizeof *m->hints);
	m->hints[m->nhints++] = xasprintf("popsift import mpop-uidls %s%s %s", home ? "~/" : "",
					  qp ? qp : p + 2 * home, name);
	free(qp);
	free(p);
}

static void emit_account(struct mp *m, const struct macct *a)
{
	char *name = import_account_name(a->name);
	const char *host = get(a, "host", NULL), *v;
	fprintf(m->out, "\n# %s:%d: account %s\naccount %s\n", m->file, a->line, a->name, name);
	if (host && *host)
		import_put(m->out, "host", host);
	else
		lost(m, a->line, "account %s: no host (mpop would refuse it too)", a->name);
	if ((v = get(a, "port", NULL)))
		fprintf(m->out, "port %s\n", v);
	emit_login(m, a);
	emit_tls(m, a);
	emit_proxy(m, a);
	v = get(a, "keep", NULL);
	fprintf(m->out, "keep %s\n", on(v) ? "yes" : "no");
	emit_sizes(m, a);
	emit_limits(m, a);
	emit_delivery(m, a);
	emit_unknown(m, a);
	inotes_flush(m->out, m->file, &m->notes, &m->all);
	uidl_hint(m, a, name);
	free(name);
}

static void mp_free(struct mp *m)
{
	for (size_t i = 0; i < m->na; i++) {
		for (size_t j = 0; j < m->a[i].n; j++) {
			free(m->a[i].kv[j].key);
			free(m->a[i].kv[j].val);
		}
		free(m->a[i].kv);
		free(m->a[i].name);
	}
	for (size_t j = 0; j < m->ndefs; j++) {
		free(m->defs[j].key);
		free(m->defs[j].val);
	}
	for (size_t i = 0; i < m->nhints; i++)
		free(m->hints[i]);
	free(m->hints);
	free(m->defs);
	free(m->a);
	inotes_free(&m->notes);
	inotes_free(&m->all);
}

int mpop_convert(const char *file, const char *text, FILE *out, FILE *summary,
		 int *naccounts, char **err)
{
	struct mp m = { .file = file, .out = out };
	char *copy = xstrdup(text);
	int rc = parse(&m, copy, err);
	*naccounts = 0;
	if (rc == 0) {
		fprintf(out, "# popsift config converted from %s by popsift import mpoprc.\n"
			"# Check it with popsift -f FILE check -v; it may hold passwords: "
			"chmod 600 FILE.\n", file);
		for (size_t i = 0; i < m.na; i++)
			emit_account(&m, &m.a[i]);
		*naccounts = (int)m.na;
		inotes_summary(summary, file, *naccounts, &m.all);
		if (m.nhints)
			fputs("popsift: so that mail mpop kept on the server is not fetched again "
			      "(once the config is in place):\n", summary);
		for (size_t i = 0; i < m.nhints; i++)
			fprintf(summary, "  %s\n", m.hints[i]);
	}
	mp_free(&m);
	free(copy);
	return rc;
}
