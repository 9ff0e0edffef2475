/* import-fmparse.c — read a .fetchmailrc into polls and user clauses.
 * fetchmail's grammar is free-form: `poll HOST [server options] user NAME
 * [there] [with password P] [is LOCAL [here]] [options...]`, with the
 * noise words and/with/has/wants/options anywhere, `no X` or `noX` for a
 * flag, and a `defaults` statement whose options later polls inherit.
 * Settings popsift has no use for are recorded as notes, not errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import-fm.h"
#include "popsift.h"

enum kind {
	P_STR, U_STR, P_INT, U_FLAG,    /* stored at off in the poll or user */
	U_INT,
	P_FINE, U_FINE,                 /* popsift does this anyway */
	P_LOST, U_LOST,                 /* lost whatever the value */
	U_LOSTON,                       /* lost when on, fine when `no` */
	U_LOSTOFF,                      /* lost when `no`, fine when on */
	SPECIAL,
};

struct kw {
	const char *name;
	int args;               /* 0 a flag, 1 one value, 2 a list */
	enum kind kind;
	size_t off;
	const char *why;
};

#define PO(f) offsetof(struct fmpoll, f)
#define UO(f) offsetof(struct fmuser, f)
static const struct kw kws[] = {
	{ "via", 1, P_STR, PO(via), NULL },
	{ "proto", 1, P_STR, PO(proto), NULL }, { "protocol", 1, P_STR, PO(proto), NULL },
	{ "port", 1, P_STR, PO(port), NULL }, { "service", 1, P_STR, PO(port), NULL },
	{ "auth", 1, P_STR, PO(auth), NULL }, { "authenticate", 1, P_STR, PO(auth), NULL },
	{ "timeout", 1, P_INT, PO(timeout), NULL }, { "interval", 1, P_INT, PO(interval), NULL },
	{ "uidl", 0, P_FINE, 0, "popsift always uses UIDL" },
	{ "dns", 0, P_FINE, 0, NULL }, { "checkalias", 0, P_FINE, 0, NULL },
	{ "envelope", 1, SPECIAL, 0, NULL },
	{ "qvirtual", 1, P_LOST, 0, "multidrop: sort with rules on the headers instead" },
	{ "local", 2, P_LOST, 0, "multidrop: sort with rules on the headers instead" },
	{ "localdomains", 2, P_LOST, 0, "multidrop: sort with rules on the headers instead" },
	{ "aka", 2, P_LOST, 0, "multidrop: sort with rules on the headers instead" },
	{ "interface", 1, P_LOST, 0, "no interface check" },
	{ "monitor", 1, P_LOST, 0, "no interface monitor" },
	{ "plugin", 1, P_LOST, 0, "no plugin: popsift connects itself" },
	{ "plugout", 1, P_LOST, 0, "no plugout" },
	{ "principal", 1, P_LOST, 0, "no Kerberos" },
	{ "esmtpname", 1, P_LOST, 0, "use smtp_user and smtp_password_command" },
	{ "esmtppassword", 1, P_LOST, 0, "use smtp_user and smtp_password_command" },
	{ "tracepolls", 0, P_LOST, 0, "no poll trace header" },
	{ "bad-header", 1, P_FINE, 0, NULL },
	{ "passwordfile", 1, U_STR, UO(passwordfile), NULL },
	{ "pass", 1, U_STR, UO(password), NULL }, { "password", 1, U_STR, UO(password), NULL },
	{ "ssl", 0, U_FLAG, UO(ssl), NULL }, { "sslcertck", 0, U_FLAG, UO(sslcertck), NULL },
	{ "sslproto", 1, SPECIAL, 0, NULL },
	{ "sslcertfile", 1, U_STR, UO(sslcertfile), NULL },
	{ "sslcertpath", 1, U_LOST, 0, "give the CA file with tls_ca_file" },
	{ "sslfingerprint", 1, U_LOST, 0,
	  "popsift pins the key's SHA-256: tls_fingerprint sha256//BASE64" },
	{ "sslcommonname", 1, U_LOST, 0, "the certificate must name the host" },
	{ "sslcert", 1, U_LOST, 0, "no client certificates" },
	{ "sslkey", 1, U_LOST, 0, "no client certificates" },
	{ "folder", 2, U_LOST, 0, "IMAP folders: popsift speaks POP3" },
	{ "smtphost", 2, SPECIAL, 0, NULL },
	{ "fetchdomains", 2, U_LOST, 0, "ETRN/ODMR" },
	{ "smtpaddress", 1, U_STR, UO(smtpaddress), NULL },
	{ "smtpname", 1, U_STR, UO(smtpname), NULL },
	{ "antispam", 2, U_LOST, 0, "spam answers from the MTA are treated as rejections" },
	{ "mda", 1, U_STR, UO(mda), NULL },
	{ "bsmtp", 1, U_LOST, 0, "no BSMTP output" },
	{ "lmtp", 0, U_LOSTON, 0, "no LMTP: use deliver mda with an LDA" },
	{ "preconnect", 1, U_LOST, 0, "no preconnect command" },
	{ "postconnect", 1, U_LOST, 0, "no postconnect command" },
	{ "keep", 0, U_FLAG, UO(keep), NULL },
	{ "flush", 0, U_LOSTON, 0, "popsift deletes only what it delivered" },
	{ "limitflush", 0, U_LOSTON, 0, "use a rules file: match size > N discard" },
	{ "fetchall", 0, U_LOSTON, 0,
	  "popsift fetches what it has not delivered before; run --all fetches everything" },
	{ "rewrite", 0, U_LOSTON, 0, "popsift never rewrites addresses" },
	{ "stripcr", 0, U_FINE, 0, NULL }, { "forcecr", 0, U_FINE, 0, NULL },
	{ "pass8bits", 0, U_FINE, 0, NULL },
	{ "dropstatus", 0, U_LOSTON, 0, "Status: lines are kept" },
	{ "dropdelivered", 0, U_LOSTON, 0, "Delivered-To: lines are kept" },
	{ "mimedecode", 0, U_LOSTON, 0, "messages are delivered as received" },
	{ "idle", 0, U_LOSTON, 0, "IMAP IDLE: popsift polls every interval seconds" },
	{ "limit", 1, U_INT, UO(limit), NULL },
	{ "warnings", 1, U_FINE, 0, NULL }, { "batchlimit", 1, U_FINE, 0, NULL },
	{ "fetchlimit", 1, U_INT, UO(fetchlimit), NULL },
	{ "fetchsizelimit", 1, U_FINE, 0, NULL }, { "fastuidl", 1, U_FINE, 0, NULL },
	{ "expunge", 1, U_FINE, 0, NULL }, { "properties", 1, U_FINE, 0, NULL },
};
#undef PO
#undef UO

static const char *const structural[] = {
	"poll", "skip", "server", "defaults", "set", "user", "username", "is", "to", "here",
	"there", "no", NULL,
};
static const char *const noise[] = { "and", "with", "has", "wants", "options", NULL };

static int in(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcasecmp(*list, s) == 0)
			return 1;
	return 0;
}

static const struct kw *keyword(const char *s)
{
	for (size_t i = 0; i < sizeof kws / sizeof *kws; i++)
		if (strcasecmp(kws[i].name, s) == 0)
			return &kws[i];
	return NULL;
}

/* `noX` for a flag X */
static const struct kw *negated(const char *s)
{
	const struct kw *k = strncasecmp(s, "no", 2) == 0 ? keyword(s + 2) : NULL;
	return k && k->args == 0 ? k : NULL;
}

static int is_word(const struct fmtok *t, const char *w)
{
	return t->s && !t->quoted && strcasecmp(t->s, w) == 0;
}

static int is_keyword(const struct fmtok *t)
{
	return t->s && !t->quoted && (in(structural, t->s) || keyword(t->s) || negated(t->s));
}

static void skip_noise(struct fm *c)
{
	while (c->t[c->i].s && !c->t[c->i].quoted && in(noise, c->t[c->i].s))
		c->i++;
}

static const struct fmtok *take(struct fm *c)
{
	skip_noise(c);
	const struct fmtok *t = &c->t[c->i];
	if (t->s)
		c->i++;
	return t;
}

static const struct fmtok *peek(struct fm *c)
{
	skip_noise(c);
	return &c->t[c->i];
}

void fm_note(struct fm *c, int line, int lost, const void *owner, const char *fmt, ...)
{
	struct fmnote *n = xcalloc(1, sizeof *n);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&n->text, fmt, ap) < 0)
		n->text = xstrdup(fmt);
	va_end(ap);
	n->line = line;
	n->lost = lost;
	n->owner = owner;
	*c->ntail = n;
	c->ntail = &n->next;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static void add_local(struct fmuser *u, const char *name)
{
	u->locals = xrealloc(u->locals, (u->nlocals + 1) * sizeof *u->locals);
	u->locals[u->nlocals++] = xstrdup(name);
}

static void user_copy(struct fmuser *u, const struct fmuser *d)
{
	*u = *d;
	u->remote = d->remote ? xstrdup(d->remote) : NULL;
	u->password = d->password ? xstrdup(d->password) : NULL;
	u->passwordfile = d->passwordfile ? xstrdup(d->passwordfile) : NULL;
	u->sslcertfile = d->sslcertfile ? xstrdup(d->sslcertfile) : NULL;
	u->mda = d->mda ? xstrdup(d->mda) : NULL;
	u->smtphost = d->smtphost ? xstrdup(d->smtphost) : NULL;
	u->smtpaddress = d->smtpaddress ? xstrdup(d->smtpaddress) : NULL;
	u->smtpname = d->smtpname ? xstrdup(d->smtpname) : NULL;
	u->locals = NULL;
	u->nlocals = 0;
	for (size_t i = 0; i < d->nlocals; i++)
		add_local(u, d->locals[i]);
	u->next = NULL;
}

static void user_clear(struct fmuser *u)
{
	char *strs[] = { u->remote, u->password, u->passwordfile, u->sslcertfile, u->mda, u->smtphost,
			 u->smtpaddress, u->smtpname };
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
		free(strs[i]);
	for (size_t i = 0; i < u->nlocals; i++)
		free(u->locals[i]);
	free(u->locals);
}

static void poll_clear(struct fmpoll *p)
{
	free(p->name); free(p->via); free(p->proto); free(p->auth); free(p->port);
	for (struct fmuser *u = p->users, *n; u; u = n) {
		n = u->next;
		user_clear(u);
		free(u);
	}
}

static void user_init(struct fmuser *u)
{
	memset(u, 0, sizeof *u);
	u->ssl = u->sslcertck = u->keep = u->sslproto = -1;
}

/* A user clause: from the defaults, added to the current poll. */
static struct fmuser *new_user(struct fm *c, int line)
{
	struct fmuser *u = xcalloc(1, sizeof *u), **tail = &c->poll->users;
	user_copy(u, &c->duser);
	u->line = line;
	while (*tail)
		tail = &(*tail)->next;
	*tail = u;
	c->user = u;
	return u;
}

static int need(struct fm *c, const struct fmtok *kw, const struct fmtok *v, char **err)
{
	if (v->s && !is_keyword(v))
		return 0;
	return seterr(err, "%s:%d: \"%s\" needs a value", c->file, kw->line, kw->s);
}

/* Values up to the next keyword, joined by blanks (for notes); *first
 * gets the first one. */
static char *take_list(struct fm *c, char **first)
{
	char *all = xstrdup("");
	for (const struct fmtok *t = peek(c); t->s && !is_keyword(t); t = peek(c)) {
		c->i++;
		char *n = xasprintf("%s%s%s", all, *all ? " " : "", t->s);
		free(all);
		all = n;
		if (first && *first == NULL)
			*first = xstrdup(t->s);
	}
	return all;
}

/* `user NAME [here|there]`: NAME is remote unless `here` follows. */
static int user_clause(struct fm *c, const struct fmtok *kw, char **err)
{
	const struct fmtok *v = take(c);
	if (need(c, kw, v, err) < 0)
		return -1;
	if (c->poll == &c->dpoll) {
		fm_note(c, kw->line, 1, NULL, "user %s in defaults (name the user in each poll)",
			v->s);
		return 0;
	}
	struct fmuser *u = new_user(c, kw->line);
	if (is_word(peek(c), "here")) {
		c->i++;
		add_local(u, v->s);
		return 0;
	}
	set_str(&u->remote, v->s);
	if (is_word(peek(c), "there"))
		c->i++;
	return 0;
}

static struct fmuser *cur_user(struct fm *c, int line)
{
	return c->user ? c->user : new_user(c, line);
}

/* `is NAME... [here]` (local names), or `is NAME there` after `user X here`. */
static int is_clause(struct fm *c, const struct fmtok *kw, char **err)
{
	struct fmuser *u = c->poll == &c->dpoll ? &c->duser : cur_user(c, kw->line);
	size_t start = c->i;
	char *first = NULL, *all = take_list(c, &first);
	if (first == NULL) {
		free(all);
		return seterr(err, "%s:%d: \"%s\" needs a name", c->file, kw->line, kw->s);
	}
	if (is_word(peek(c), "there")) {
		c->i++;
		set_str(&u->remote, first);
	} else {
		for (size_t i = start; i < c->i; i++)
			if (c->t[i].quoted || !in(noise, c->t[i].s))
				add_local(u, c->t[i].s);
		if (is_word(peek(c), "here"))
			c->i++;
	}
	free(first);
	free(all);
	return 0;
}

static int special(struct fm *c, const struct fmtok *kw, int no, char **err)
{
	const void *owner = c->poll == &c->dpoll ? NULL : (const void *)c->poll;
	if (strcasecmp(kw->s, "envelope") == 0) {
		if (no)
			return 0;
		char *all = take_list(c, NULL);
		fm_note(c, kw->line, 1, owner, "envelope %s (multidrop: sort with rules)", all);
		free(all);
		return 0;
	}
	struct fmuser *u = c->poll == &c->dpoll ? &c->duser : cur_user(c, kw->line);
	if (strcasecmp(kw->s, "sslproto") == 0) {
		const struct fmtok *v = take(c);
		if (v->s == NULL || (!v->quoted && is_keyword(v)))
			return need(c, kw, v, err);
		u->sslproto = v->s[0] != '\0';
		return 0;
	}
	char *first = NULL, *all = take_list(c, &first);   /* smtphost */
	if (first == NULL) {
		free(all);
		return need(c, kw, peek(c), err);
	}
	set_str(&u->smtphost, first);
	if (strcmp(first, all) != 0)
		fm_note(c, kw->line, 1, u == &c->duser ? NULL : (const void *)u,
			"smtphost %s: only the first host is used (%s)", all, first);
	free(first);
	free(all);
	return 0;
}

static int set_flag_or_str(struct fm *c, const struct kw *k, struct fmuser *u,
			   const char *val, int no)
{
	if (k->kind == U_FLAG) {
		*(int *)(void *)((char *)u + k->off) = !no;
		return 0;
	}
	char **f = (char **)(void *)((char *)(k->kind == U_STR ? (void *)u : (void *)c->poll) +
				     k->off);
	free(*f);
	*f = no ? NULL : xstrdup(val);
	return 0;
}

static int store(struct fm *c, const struct fmtok *kw, const struct kw *k, const char *val,
		 int no, char **err)
{
	struct fmuser *u = k->kind == P_STR || k->kind == P_INT ? NULL :
		c->poll == &c->dpoll ? &c->duser : cur_user(c, kw->line);
	if (k->kind != P_INT && k->kind != U_INT)
		return set_flag_or_str(c, k, u, val, no);
	char *end;
	long n = no ? 0 : strtol(val, &end, 10);
	if (!no && (*val == '\0' || *end != '\0' || n < 0 || n > 1 << 30))
		return seterr(err, "%s:%d: %s: expected a number, not \"%s\"", c->file, kw->line,
			      kw->s, val);
	*(int *)(void *)((char *)(u ? (void *)u : (void *)c->poll) + k->off) = (int)n;
	return 0;
}

static int lost(struct fm *c, const struct fmtok *kw, const struct kw *k, const char *val)
{
	int poll_level = k->kind == P_LOST;
	const void *owner = c->poll == &c->dpoll ? NULL :
		poll_level ? (const void *)c->poll : (const void *)cur_user(c, kw->line);
	fm_note(c, kw->line, 1, owner, "%s%s%s: %s", kw->s, *val ? " " : "", val, k->why);
	return 0;
}

static int option(struct fm *c, const struct fmtok *kw, char **err)
{
	int no = 0;
	const struct kw *k = keyword(kw->s);
	if (is_word(kw, "no")) {
		no = 1;
		kw = take(c);
		k = kw->s && !kw->quoted ? keyword(kw->s) : NULL;
	} else if (k == NULL && (k = negated(kw->s)) != NULL) {
		no = 1;
	}
	if (k == NULL || kw->quoted) {
		fm_note(c, kw->line, 1, c->poll == &c->dpoll ? NULL : (const void *)c->poll,
			"%s%s: not understood", no ? "no " : "", kw->s ? kw->s : "(end of file)");
		return 0;
	}
	if (k->kind == SPECIAL)
		return special(c, kw, no, err);
	char *val = NULL;
	if (k->args == 1 && !no) {
		const struct fmtok *v = take(c);
		if (v->s == NULL || (!v->quoted && is_keyword(v)))
			return need(c, kw, v, err);
		val = xstrdup(v->s);
	} else if (k->args == 2 && !no) {
		val = take_list(c, NULL);
	}
	int rc = 0;
	const char *v = val ? val : "";
	if (k->kind <= U_INT)
		rc = store(c, kw, k, v, no, err);
	else if (k->kind == P_LOST || k->kind == U_LOST || (k->kind == U_LOSTON && !no) ||
		 (k->kind == U_LOSTOFF && no))
		rc = lost(c, kw, k, v);
	free(val);
	return rc;
}

static const char *const set_with_value[] = {
	"daemon", "logfile", "idfile", "postmaster", "properties", "pidfile", NULL,
};

static void set_word(struct fm *c, const struct fmtok *w, const char *v, int no)
{
	const char *s = w->s;
	if (!strcasecmp(s, "daemon"))
		c->daemon = atoi(v);
	else if (!strcasecmp(s, "logfile"))
		set_str(&c->logfile, v);
	else if (!strcasecmp(s, "syslog") && !no)
		set_str(&c->logfile, "syslog");
	else if (!strcasecmp(s, "idfile"))
		set_str(&c->idfile, v);
	else if (!strcasecmp(s, "softbounce"))
		c->reject_discard = no;
	else if ((!strcasecmp(s, "bouncemail") || !strcasecmp(s, "spambounce")) && !no)
		fm_note(c, w->line, 1, NULL, "set %s: popsift never bounces: refused mail stays "
			"on the server and is reported (or on_reject discard)", s);
	else if (!strcasecmp(s, "postmaster"))
		fm_note(c, w->line, 1, NULL, "set postmaster %s: popsift never bounces", v);
	else if (!in((const char *const[]){ "syslog", "bouncemail", "spambounce", "invisible",
					      "showdots", "properties", "pidfile", NULL }, s))
		fm_note(c, w->line, 1, NULL, "set %s%s: not understood", no ? "no " : "", s);
}

static int set_stmt(struct fm *c, const struct fmtok *kw, char **err)
{
	int no = 0;
	const struct fmtok *w = take(c);
	if (is_word(w, "no")) {
		no = 1;
		w = take(c);
	}
	if (w->s == NULL)
		return seterr(err, "%s:%d: \"set\" needs a word", c->file, kw->line);
	const char *v = "";
	if (!no && !w->quoted && in(set_with_value, w->s)) {
		const struct fmtok *vt = take(c);
		if (vt->s == NULL)
			return need(c, w, vt, err);
		v = vt->s;
	}
	set_word(c, w, v, no);
	return 0;
}

static int poll_stmt(struct fm *c, const struct fmtok *kw, char **err)
{
	const struct fmtok *name = take(c);
	if (need(c, kw, name, err) < 0)
		return -1;
	struct fmpoll *p = xcalloc(1, sizeof *p);
	const struct fmpoll *d = &c->dpoll;
	p->name = xstrdup(name->s);
	p->via = d->via ? xstrdup(d->via) : NULL;
	p->proto = d->proto ? xstrdup(d->proto) : NULL;
	p->auth = d->auth ? xstrdup(d->auth) : NULL;
	p->port = d->port ? xstrdup(d->port) : NULL;
	p->timeout = d->timeout;
	p->interval = d->interval;
	p->skip = is_word(kw, "skip");
	p->line = kw->line;
	*c->ptail = p;
	c->ptail = &p->next;
	c->poll = p;
	c->user = NULL;
	return 0;
}

static int statement(struct fm *c, char **err)
{
	const struct fmtok *t = take(c);
	if (is_word(t, "set"))
		return set_stmt(c, t, err);
	if (is_word(t, "poll") || is_word(t, "server") || is_word(t, "skip"))
		return poll_stmt(c, t, err);
	if (is_word(t, "defaults")) {
		c->poll = &c->dpoll;
		c->user = &c->duser;
		return 0;
	}
	if (c->poll == NULL)
		return seterr(err, "%s:%d: \"%s\": expected poll, skip, defaults or set", c->file,
			      t->line, t->s);
	if (is_word(t, "user") || is_word(t, "username"))
		return user_clause(c, t, err);
	if (is_word(t, "is") || is_word(t, "to"))
		return is_clause(c, t, err);
	if (is_word(t, "here") || is_word(t, "there"))
		return 0;
	return option(c, t, err);
}

int fm_parse(struct fm *c, char **err)
{
	c->ptail = &c->polls;
	c->ntail = &c->notes;
	user_init(&c->duser);
	while (peek(c)->s)
		if (statement(c, err) < 0)
			return -1;
	return 0;
}

void fm_free(struct fm *c)
{
	for (struct fmpoll *p = c->polls, *n; p; p = n) {
		n = p->next;
		poll_clear(p);
		free(p);
	}
	c->dpoll.users = NULL;
	poll_clear(&c->dpoll);
	user_clear(&c->duser);
	for (struct fmnote *n = c->notes, *x; n; n = x) {
		x = n->next;
		free(n->text);
		free(n);
	}
	free(c->logfile);
	free(c->idfile);
}
