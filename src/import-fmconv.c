/* import-fmconv.c — write what import-fmparse.c read from a .fetchmailrc
 * as a popsift config: one account per user clause of a POP3 poll.  What
 * has no equivalent is said twice: a "# could not convert:" comment in
 * the account, and a line of the summary (stderr). */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "import-fm.h"
#include "popsift.h"

struct conv {
	struct fm *c;
	FILE   *out;
	char  **names;          /* account names written */
	size_t  n, skipped;     /* skipped: written commented out */
};

/* fetchmail's default local name: the user running it. */
static const char *login_name(void)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *u = pw ? pw->pw_name : getenv("USER");
	return u && *u ? u : "root";
}

static int taken(const struct conv *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->names[i], name) == 0)
			return 1;
	return 0;
}

/* The remote user's local part; on a clash, -host, then -2, -3 ... */
static const char *account_name(struct conv *v, const char *remote, const char *host)
{
	char *base = xstrndup(remote, strcspn(remote, "@"));
	for (char *p = base; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '/' || *p == '#' || *p == '"')
			*p = '_';
	char *name = xstrdup(*base ? base : "mail");
	if (taken(v, name)) {
		free(name);
		name = xasprintf("%s-%s", *base ? base : "mail", host);
	}
	for (int i = 2; taken(v, name); i++) {
		free(name);
		name = xasprintf("%s-%s-%d", *base ? base : "mail", host, i);
	}
	free(base);
	v->names = xrealloc(v->names, (v->n + 1) * sizeof *v->names);
	v->names[v->n++] = name;
	return name;
}

static void emit_notes(struct conv *v, const void *owner);

/* POP3 or not; proto apop becomes auth apop. */
static int pop3_proto(struct conv *v, const struct fmpoll *p, const char **auth)
{
	const char *pr = p->proto;
	if (pr == NULL || !strcasecmp(pr, "pop3"))
		return 0;
	if (!strcasecmp(pr, "apop")) {
		*auth = "apop";
		return 0;
	}
	if (!strcasecmp(pr, "auto")) {
		fm_note(v->c, p->line, 0, p, "proto auto: converted as POP3");
		return 0;
	}
	if (!strcasecmp(pr, "kpop") || !strcasecmp(pr, "rpop") || !strcasecmp(pr, "sdps")) {
		fm_note(v->c, p->line, 1, p, "proto %s: converted as plain POP3", pr);
		return 0;
	}
	fm_note(v->c, p->line, 1, p, "poll %s: proto %s: popsift speaks POP3 only "
		"(no account written)", p->name, pr);
	fputc('\n', v->out);
	emit_notes(v, p);
	return -1;
}

static const char *auth_of(struct conv *v, const struct fmpoll *p, const struct fmuser *u,
			   const char *apop)
{
	static const char *const same[] = { "cram-md5", "apop", "xoauth2", "oauthbearer", NULL };
	const char *a = p->auth;
	if (apop || a == NULL || !strcasecmp(a, "any"))
		return apop;
	if (!strcasecmp(a, "password"))
		return "user";
	for (int i = 0; same[i]; i++)
		if (!strcasecmp(a, same[i]))
			return same[i];
	fm_note(v->c, p->line, 1, u, "auth %s: popsift knows user, apop, plain, login, cram-md5, "
		"xoauth2 and oauthbearer (auth any tries them)", a);
	return NULL;
}

static const char *tls_of(struct conv *v, const struct fmuser *u)
{
	if (u->ssl == 1)
		return "on";
	if (u->sslproto == 0)
		return "off";
	if (u->sslproto == 1)
		return "starttls";
	fm_note(v->c, u->line, 0, u, "no ssl: fetchmail used STLS when the server offered it; "
		"popsift insists on it (tls off would allow clear text)");
	return "starttls";
}

static void emit_port(struct conv *v, const struct fmpoll *p, const struct fmuser *u)
{
	const char *port = p->port;
	if (port == NULL)
		return;
	if (!strcasecmp(port, "pop3"))
		port = "110";
	else if (!strcasecmp(port, "pop3s"))
		port = "995";
	if (strspn(port, "0123456789") == strlen(port))
		fprintf(v->out, "port %s\n", port);
	else
		fm_note(v->c, p->line, 1, u, "service %s: give the port number", port);
}

#define SHELL_CHARS "|&;<>()$`\\\"'*?[]{}~="

/* %T is the local name; %F stays for popsift to expand (deliver-mda.c),
 * quoted when a shell will read it (it may be empty: a bounce) unless
 * the user quoted it already, and %% stays %%, popsift's percent sign too. */
static char *expand_mda(const char *s, const char *local, int shell)
{
	size_t cap = strlen(s) * 2 + strlen(local) * 4 + 1, n = 0;
	char *o = xmalloc(cap);
	for (const char *start = s; *s; s++) {
		int quoted = s > start && (s[-1] == '\'' || s[-1] == '"');
		if (s[0] == '%' && s[1] == 'T' && n + strlen(local) < cap) {
			memcpy(o + n, local, strlen(local));
			n += strlen(local);
			s++;
		} else if (s[0] == '%' && s[1] == 'F' && shell && !quoted) {
			memcpy(o + n, "\"%F\"", 4);
			n += 4;
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			o[n++] = '%';
			o[n++] = *++s;
		} else if (n + 1 < cap) {
			o[n++] = *s;
		}
	}
	o[n] = '\0';
	return o;
}

/* `sh -c 'SCRIPT'` as fetchmail's whole mda: fetchmail's own sh -c
 * only ran it, so it is written as it stands, not wrapped again.  Only
 * when the shell and split_args read the same three words: outside the
 * quotes nothing but plain characters, inside "..." nothing the shell
 * would expand. */
static int runs_shell(const char *cmd)
{
	const char *sh[] = { "sh -c ", "/bin/sh -c ", "bash -c ", "/bin/bash -c ",
			     "dash -c ", "/bin/dash -c ", "/usr/bin/bash -c ", NULL };
	size_t k = 0;
	for (int i = 0; sh[i] && k == 0; i++)
		if (strncmp(cmd, sh[i], strlen(sh[i])) == 0)
			k = strlen(sh[i]);
	if (k == 0)
		return 0;
	char quote = 0;
	int words = 0, inword = 0;
	for (const char *p = cmd + k; *p; p++) {
		if (quote && *p == quote)
			quote = 0;
		else if (quote == '"' && strchr("$`\\!", *p))
			return 0;
		else if (!quote && (*p == '\'' || *p == '"'))
			quote = *p;
		else if (!quote && (*p == ' ' || *p == '\t'))
			inword = 0;
		else if (!quote && strchr(SHELL_CHARS, *p))
			return 0;
		if (!inword && *p != ' ' && *p != '\t')
			words++, inword = 1;
	}
	return quote == 0 && words >= 1;
}

/* fetchmail runs the mda with sh -c: keep a shell where one is needed. */
static void put_mda(FILE *out, const char *cmd)
{
	if (strpbrk(cmd, SHELL_CHARS) == NULL || runs_shell(cmd)) {
		fprintf(out, "deliver mda %s\n", cmd);
		return;
	}
	fputs("deliver mda /bin/sh -c '", out);
	for (; *cmd; cmd++)
		fputs(*cmd == '\'' ? "'\\''" : (char[]){ *cmd, '\0' }, out);
	fputs("'\n", out);
}

static void emit_mda(struct conv *v, const struct fmuser *u, const char *local)
{
	int shell = runs_shell(u->mda) || strpbrk(u->mda, SHELL_CHARS) != NULL;
	char *cmd = expand_mda(u->mda, local, shell);
	if (strstr(cmd, " #") || strstr(cmd, "\t#") || strpbrk(cmd, "\r\n")) {
		fm_note(v->c, u->line, 1, u, "mda \"%s\": no equivalent (a # or newline "
			"in the command): write a deliver line", u->mda);
	} else {
		put_mda(v->out, cmd);
	}
	free(cmd);
}

/* fetchmail's default: SMTP to smtphost (localhost), RCPT TO the local
 * name @ smtpaddress (else the SMTP host's name). */
static void emit_forward(struct conv *v, const struct fmuser *u, const char *local)
{
	char *host = xstrdup(u->smtphost ? u->smtphost : "localhost");
	char *slash = strchr(host, '/');
	if (host[0] == '/') {
		fm_note(v->c, u->line, 1, u, "smtphost %s: a socket (LMTP): use deliver mda with "
			"an LDA", host);
		free(host);
		return;
	}
	if (slash)
		*slash++ = '\0';
	char *rcpt = u->smtpname ? xstrdup(u->smtpname) : strchr(local, '@') ? xstrdup(local) :
		xasprintf("%s@%s", local, u->smtpaddress ? u->smtpaddress : host);
	fprintf(v->out, "deliver forward %s\n", rcpt);
	if (strcasecmp(host, "localhost") != 0)
		import_put(v->out, "smtp_host", host);
	if (slash && *slash)
		fprintf(v->out, "smtp_port %d\n", atoi(slash));
	free(rcpt);
	free(host);
}

static void emit_notes(struct conv *v, const void *owner)
{
	for (const struct fmnote *n = v->c->notes; n; n = n->next)
		if (n->owner == owner)
			fprintf(v->out, "# %s: %s (%s:%d)\n",
				n->lost ? "could not convert" : "note", n->text, v->c->file,
				n->line);
}

/* passwordfile (newer fetchmails): the first line of FILE, as cat gives
 * it and password_command takes it. */
static void emit_passwordfile(struct conv *v, const struct fmuser *u)
{
	char *q = import_shell_quote(u->passwordfile);
	if (q == NULL)
		fm_note(v->c, u->line, 1, u, "passwordfile %s: a path with \" #\" or a line break: "
			"write password_command cat -- FILE", u->passwordfile);
	else
		fprintf(v->out, "password_command cat -- %s\n", q);
	free(q);
}

static void emit_login(struct conv *v, const struct fmpoll *p, const struct fmuser *u,
		       const char *remote, const char *apop)
{
	FILE *out = v->out;
	import_put(out, "host", p->via ? p->via : p->name);
	emit_port(v, p, u);
	import_put(out, "user", remote);
	if (u->password && *u->password && import_put(out, "password", u->password) < 0)
		fm_note(v->c, u->line, 1, u, "password with a line break: use password_command");
	if (u->password == NULL && u->passwordfile)
		emit_passwordfile(v, u);
	else if (u->password == NULL)
		fm_note(v->c, u->line, 0, u, "no password (fetchmail asked, or read ~/.netrc): "
			"add password_command or password");
	fprintf(out, "tls %s\n", tls_of(v, u));
	if (u->sslcertfile)
		import_put(out, "tls_ca_file", u->sslcertfile);
	if (u->sslcertck == 0)
		fm_note(v->c, u->line, 1, u, "no sslcertck: popsift always checks certificates "
			"(tls_ca_file for a private CA, tls_fingerprint to pin a key)");
	const char *auth = auth_of(v, p, u, apop);
	if (auth)
		fprintf(out, "auth %s\n", auth);
	if (p->timeout > 0)
		fprintf(out, "timeout %d\n", p->timeout);
}

static void user_body(struct conv *v, const struct fmpoll *p, const struct fmuser *u,
		      const char *apop, const char *name)
{
	const char *remote = u->remote ? u->remote : login_name();
	const char *local = u->nlocals ? u->locals[0] : login_name();
	fprintf(v->out, "# %s:%d: %s %s\naccount %s\n", v->c->file, u->line ? u->line : p->line,
		p->skip ? "skip" : "poll", p->name, name);
	if (u->remote == NULL)
		fm_note(v->c, p->line, 0, u, "no user: fetchmail's default, the login name %s",
			remote);
	if (u->nlocals > 1)
		fm_note(v->c, u->line, 1, u, "is %s ... (multidrop): all mail goes to %s; sort it "
			"with rules on the headers", local, local);
	emit_login(v, p, u, remote, apop);
	fprintf(v->out, "keep %s\n", u->keep == 1 ? "yes" : "no");
	if (u->limit > 0)
		fprintf(v->out, "max_size %d\n", u->limit);
	if (u->fetchlimit > 0)
		fprintf(v->out, "max_messages %d\n", u->fetchlimit);
	if (p->interval > 0 && v->c->daemon > 0)
		fprintf(v->out, "interval %d\n", p->interval * v->c->daemon);
	if (u->mda)
		emit_mda(v, u, local);
	else
		emit_forward(v, u, local);
	if (u->mda && u->smtphost)
		fm_note(v->c, u->line, 0, u, "smtphost %s not used: fetchmail prefers the mda",
			u->smtphost);
	emit_notes(v, p);
	emit_notes(v, u);
}

/* A skip poll is one fetchmail does not poll: a live account could empty
 * a mailbox the user had switched off (keep no), so it is written
 * commented out, every line, whole, ready to be switched back on. */
static void emit_user(struct conv *v, const struct fmpoll *p, const struct fmuser *u,
		      const char *apop)
{
	const char *remote = u->remote ? u->remote : login_name();
	const char *name = account_name(v, remote, p->via ? p->via : p->name);
	fputc('\n', v->out);
	if (!p->skip) {
		user_body(v, p, u, apop, name);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *out = v->out;
	v->out = open_memstream(&text, &len);
	if (v->out == NULL) {           /* never a live account: none at all */
		v->out = out;
		fprintf(out, "# skip %s: not converted (out of memory)\n", p->name);
		return;
	}
	user_body(v, p, u, apop, name);
	fclose(v->out);
	v->out = out;
	fprintf(out, "# skip %s: fetchmail does not poll it, so it is left commented out; "
		"remove the \"#~ \" to switch it on\n", p->name);
	import_comment_out(out, text, "#~ ");
	v->skipped++;
	free(text);
}

static void emit_poll(struct conv *v, struct fmpoll *p)
{
	const char *apop = NULL;
	if (pop3_proto(v, p, &apop) < 0)
		return;
	if (p->users == NULL) {      /* no user clause: one implicit user */
		p->users = xcalloc(1, sizeof *p->users);
		struct fmuser *u = p->users;
		u->ssl = u->sslcertck = u->keep = u->sslproto = -1;
		u->line = p->line;
	}
	for (const struct fmuser *u = p->users; u; u = u->next)
		emit_user(v, p, u, apop);
}

static void emit_head(struct conv *v)
{
	struct fm *c = v->c;
	fprintf(v->out, "# popsift config converted from %s by popsift import fetchmailrc.\n"
		"# Check it with popsift -f FILE check -v; it may hold passwords: "
		"chmod 600 FILE.\n",
		c->file);
	if (c->daemon <= 0 && !c->logfile && !c->reject_discard)
		return;
	fputs("\ndefaults\n", v->out);
	if (c->daemon > 0)
		fprintf(v->out, "interval %d\n", c->daemon);
	if (c->logfile)
		import_put(v->out, "log", c->logfile);
	if (c->reject_discard)
		fputs("on_reject discard\n", v->out);
}

static void summary_of(const struct fm *c, FILE *s, int naccounts, size_t skipped)
{
	size_t lost = 0;
	for (const struct fmnote *n = c->notes; n; n = n->next)
		lost += (size_t)n->lost;
	fprintf(s, "popsift: %s: %d account%s converted", c->file, naccounts,
		naccounts == 1 ? "" : "s");
	if (skipped)
		fprintf(s, " (%zu commented out: skip)", skipped);
	fprintf(s, lost ? "; could not convert %zu setting%s:\n" : "; everything converted\n",
		lost, lost == 1 ? "" : "s");
	const struct fmnote **v = xcalloc(lost + 1, sizeof *v);
	size_t k = 0;
	for (const struct fmnote *n = c->notes; n; n = n->next)
		if (n->lost)
			v[k++] = n;
	for (size_t i = 1; i < k; i++)      /* by line, stable */
		for (size_t j = i; j > 0 && v[j - 1]->line > v[j]->line; j--) {
			const struct fmnote *t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (size_t i = 0; i < k; i++)
		fprintf(s, "  %s:%d: %s\n", c->file, v[i]->line, v[i]->text);
	free(v);
	if (naccounts > 0)
		fprintf(s, "popsift: so that mail fetchmail kept on the server is not fetched "
			"again: popsift import fetchids %s\n",
			c->idfile ? c->idfile : "~/.fetchids");
}

int fm_convert(const char *file, const char *text, FILE *out, FILE *summary,
	       int *naccounts, char **err)
{
	struct fm c = { .file = file };
	*naccounts = 0;
	if (fm_lex(file, text, &c.t, err) < 0)
		return -1;
	int rc = fm_parse(&c, err);
	if (rc == 0) {
		struct conv v = { .c = &c, .out = out };
		emit_head(&v);
		emit_notes(&v, NULL);
		for (struct fmpoll *p = c.polls; p; p = p->next)
			emit_poll(&v, p);
		*naccounts = (int)v.n;
		summary_of(&c, summary, *naccounts, v.skipped);
		for (size_t i = 0; i < v.n; i++)
			free(v.names[i]);
		free(v.names);
	}
	fm_free(&c);
	fm_tokens_free(c.t);
	return rc;
}
