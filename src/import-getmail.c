/* import-getmail.c — `popsift import getmailrc`: getmail6 rc files
 * ([retriever], [destination], [options], [filter-*]; one mailbox each)
 * as one popsift config, an account per file.  Pure: text in, text out.
 * What has no popsift equivalent becomes a "# could not convert:"
 * comment in the account and a line of the summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import-ini.h"
#include "import.h"
#include "popsift.h"

struct gm {
	const char   *file;
	struct ini    in;
	FILE         *out;
	struct inotes notes, all;
	char        **names;
	size_t        nnames;
};

#define lost(g, line, ...) inotes_add(&(g)->notes, line, 1, __VA_ARGS__)
#define note(g, line, ...) inotes_add(&(g)->notes, line, 0, __VA_ARGS__)

static const char *get(struct gm *g, const char *sec, const char *key, int *line)
{
	return ini_get(&g->in, sec, key, line);
}

/* getmail's %(sender) is popsift's %F, %(recipient) its %T; the rest has
 * no equivalent (-1). */
static int map_word(const char *w, char **out)
{
	static const char *const from[] = { "%(sender)", "%(recipient)", NULL };
	static const char *const to[] = { "%F", "%T" };
	char *o = xstrdup("");
	while (*w) {
		int hit = -1;
		for (int i = 0; from[i] && hit < 0; i++)
			if (strncmp(w, from[i], strlen(from[i])) == 0)
				hit = i;
		char *n = hit >= 0 ? xasprintf("%s%s", o, to[hit]) :
			  strncmp(w, "%(", 2) == 0 ? NULL :
			  *w == '%' ? xasprintf("%s%%%%", o) : xasprintf("%s%c", o, *w);
		free(o);
		if ((o = n) == NULL)
			return -1;
		w += hit >= 0 ? strlen(from[hit]) : 1;
	}
	*out = o;
	return 0;
}

/* path and the arguments tuple as one command line for split_args. */
static char *command(const char *path, const char *args)
{
	char **argv = args ? py_tuple(args) : xcalloc(1, sizeof *argv);
	if (argv == NULL)
		return NULL;
	size_t n = 0;
	while (argv[n])
		n++;
	char **all = xcalloc(n + 2, sizeof *all);
	int bad = map_word(path, &all[0]) < 0;
	for (size_t i = 0; i < n && !bad; i++)
		bad = map_word(argv[i], &all[i + 1]) < 0;
	char *cmd = bad ? NULL : import_join_argv(all);
	free_argv(all);
	free_argv(argv);
	return cmd;
}

static void emit_retriever(struct gm *g, const char *type)
{
	int line = 0, ssl = strstr(type, "SSL") != NULL;
	const char *v, *host = get(g, "retriever", "server", &line);
	if (host)
		import_put(g->out, "host", host);
	else
		lost(g, line, "[retriever] has no server");
	if ((v = get(g, "retriever", "port", NULL)))
		fprintf(g->out, "port %s\n", v);
	if ((v = get(g, "retriever", "username", NULL)))
		import_put(g->out, "user", v);
	const char *pw = get(g, "retriever", "password", NULL);
	const char *pc = get(g, "retriever", "password_command", &line);
	if (pw && import_put(g->out, "password", pw) < 0)
		lost(g, line, "password with a line break: use password_command");
	char **argv = pc && !pw ? py_tuple(pc) : NULL;
	char *cmd = argv && argv[0] ? import_join_argv(argv) : NULL;
	if (cmd)
		fprintf(g->out, "password_command %s\n", cmd);
	else if (pc && !pw)
		lost(g, line, "password_command %s: not a tuple of strings popsift can write", pc);
	else if (!pw)
		note(g, line, "no password (getmail asked, or used a keyring): add "
		     "password_command or password");
	free(cmd);
	free_argv(argv);
	fprintf(g->out, "tls %s\n", ssl ? "on" : "starttls");
	if (!ssl)
		note(g, line, "%s: getmail spoke POP3 in clear text; popsift asks for STLS "
		     "(write tls off only for a server without it)", type);
	if ((v = get(g, "retriever", "ca_certs", &line)) ||
	    (v = get(g, "retriever", "ssl_ca_certs", &line)))
		import_put(g->out, "tls_ca_file", v);
	static const char *const no[] = { "ssl_fingerprints", "ssl_cert_hostname", "ssl_version",
		"ssl_ciphers", "keyfile", "certfile", NULL };
	for (int i = 0; no[i]; i++)
		if ((v = get(g, "retriever", no[i], &line)))
			lost(g, line, "%s %s: no equivalent%s", no[i], v, i == 0 ?
			     " (popsift pins the public key: tls_fingerprint sha256//BASE64)" : "");
	if (ini_bool(get(g, "retriever", "use_apop", NULL), 0))
		fputs("auth apop\n", g->out);
	else if (ini_bool(get(g, "retriever", "use_xoauth2", NULL), 0))
		fputs("auth xoauth2\n", g->out);
	if ((v = get(g, "retriever", "timeout", NULL)))
		fprintf(g->out, "timeout %s\n", v);
}

/* One destination: the section's type and its keys; depth bounds
 * MultiDestination's nesting. */
static void emit_dest(struct gm *g, const char *sec, int depth);

static void emit_path_dest(struct gm *g, const char *path)
{
	import_put(g->out, path[strlen(path) - 1] == '/' ? "deliver maildir" : "deliver mbox",
		   path);
}

static void emit_multi(struct gm *g, const char *sec, int depth)
{
	int line = 0;
	const char *v = get(g, sec, "destinations", &line);
	char **d = v ? py_tuple(v) : NULL;
	if (d == NULL || d[0] == NULL || depth > 4) {
		lost(g, line, "[%s] MultiDestination %s: not a tuple of destinations", sec,
		     v ? v : "");
		free_argv(d);
		return;
	}
	for (size_t i = 0; d[i]; i++) {
		size_t n = strlen(d[i]);
		if (d[i][0] == '[' && n > 2 && d[i][n - 1] == ']') {
			d[i][n - 1] = '\0';
			emit_dest(g, d[i] + 1, depth + 1);
		} else if (n > 0) {
			emit_path_dest(g, d[i]);
		}
	}
	free_argv(d);
}

static void emit_mda(struct gm *g, const char *sec, int line)
{
	const char *path = get(g, sec, "path", &line), *args = get(g, sec, "arguments", NULL);
	char *cmd = path ? command(path, args) : NULL;
	if (cmd)
		fprintf(g->out, "deliver mda %s\n", cmd);
	else
		lost(g, line, "[%s] MDA_external %s %s: popsift knows %%(sender) and "
		     "%%(recipient) (as %%F and %%T), not the others", sec, path ? path : "",
		     args ? args : "");
	if (ini_bool(get(g, sec, "unixfrom", NULL), 0))
		lost(g, line, "[%s] unixfrom: popsift passes the message without a From_ line",
		     sec);
	if (get(g, sec, "user", NULL) || get(g, sec, "group", NULL))
		lost(g, line, "[%s] user/group: popsift runs the MDA as itself", sec);
	free(cmd);
}

static void emit_lmtp(struct gm *g, const char *sec, int line)
{
	const char *host = get(g, sec, "host", &line), *port = get(g, sec, "port", NULL);
	const char *rcpt = get(g, sec, "override", NULL);
	if (host == NULL) {
		lost(g, line, "[%s] MDA_lmtp without a host", sec);
		return;
	}
	char *argv[3] = { host[0] == '/' ? xasprintf("unix:%s", host) :
			  xasprintf("%s:%s", host, port ? port : "24"),
			  rcpt ? xstrdup(rcpt) : NULL, NULL };
	char *v = import_join_argv(argv);
	if (v)
		fprintf(g->out, "deliver lmtp %s\n", v);
	else
		lost(g, line, "[%s] MDA_lmtp %s: cannot be written", sec, argv[0]);
	free(v);
	free(argv[0]);
	free(argv[1]);
}

static void emit_dest(struct gm *g, const char *sec, int depth)
{
	int line = 0;
	const char *type = get(g, sec, "type", &line), *path = get(g, sec, "path", NULL);
	if (type == NULL)
		lost(g, line, "[%s]: no destination type", sec);
	else if (!strcmp(type, "Maildir") && path)
		import_put(g->out, "deliver maildir", path);
	else if (!strcmp(type, "Mboxrd") && path)
		import_put(g->out, "deliver mbox", path);
	else if (!strcmp(type, "MDA_external"))
		emit_mda(g, sec, line);
	else if (!strcmp(type, "MDA_lmtp"))
		emit_lmtp(g, sec, line);
	else if (!strcmp(type, "MultiDestination"))
		emit_multi(g, sec, depth);
	else
		lost(g, line, "[%s] type %s: no equivalent (popsift's rules sort mail: "
		     "rules FILE)", sec, type);
}

static void emit_options(struct gm *g)
{
	int line = 0;
	const char *v;
	int del = ini_bool(get(g, "options", "delete", NULL), 0);
	if ((v = get(g, "options", "delete_after", &line)) && atoi(v) > 0 && !del)
		fprintf(g->out, "keep %dd\n", atoi(v));
	else
		fprintf(g->out, "keep %s\n", del ? "no" : "yes");
	if ((v = get(g, "options", "max_message_size", NULL)) && atoll(v) > 0)
		fprintf(g->out, "max_size %lld\n", atoll(v));
	if ((v = get(g, "options", "max_messages_per_session", NULL)) && atoi(v) > 0)
		fprintf(g->out, "max_messages %d\n", atoi(v));
	if ((v = get(g, "options", "received", NULL)) && !ini_bool(v, 1))
		fputs("received_header no\n", g->out);
	if ((v = get(g, "options", "delete_bigger_than", &line)) && atoll(v) > 0)
		lost(g, line, "delete_bigger_than %s: put \"match size > %s discard\" in a "
		     "rules file (rules FILE)", v, v);
	if ((v = get(g, "options", "max_bytes_per_session", &line)) && atoll(v) > 0)
		lost(g, line, "max_bytes_per_session %s: no equivalent (max_messages)", v);
	if (ini_bool(get(g, "options", "read_all", &line), 1) && !del)
		note(g, line, "read_all (getmail's default): popsift fetches what it has not "
		     "delivered; run --all fetches everything");
	if ((v = get(g, "options", "delivered_to", &line)) && ini_bool(v, 1))
		note(g, line, "delivered_to: popsift adds no Delivered-To: header");
	if ((v = get(g, "options", "message_log", &line)))
		lost(g, line, "message_log %s: popsift's log is per config (log FILE in defaults)",
		     v);
}

/* Keys of [retriever] and [options] that nothing above reads: said,
 * unless popsift needs nothing for them. */
static void emit_unknown(struct gm *g)
{
	static const char *const known[] = {
		"type", "server", "port", "username", "password", "password_command", "ca_certs",
		"ssl_ca_certs", "ssl_fingerprints", "ssl_cert_hostname", "ssl_version",
		"ssl_ciphers", "keyfile", "certfile", "use_apop", "use_xoauth2", "timeout",
		"delete", "delete_after", "max_message_size", "max_messages_per_session",
		"received", "delete_bigger_than", "max_bytes_per_session", "read_all",
		"delivered_to", "message_log", "verbose", "message_log_verbose",
		"to_oldmail_on_each_mail", "fingerprint", NULL,
	};
	for (size_t i = 0; i < g->in.n; i++) {
		const struct ini_kv *kv = &g->in.v[i];
		int seen = strcmp(kv->section, "retriever") != 0 &&
			   strcmp(kv->section, "options") != 0;
		for (int k = 0; known[k] && !seen; k++)
			seen = strcmp(known[k], kv->key) == 0;
		if (!seen)
			lost(g, kv->line, "[%s] %s = %s: not understood", kv->section, kv->key,
			     kv->val);
	}
}

/* [filter-*]: popsift filters in its rules file; say the rule to write. */
static void emit_filters(struct gm *g)
{
	for (size_t i = 0; i < g->in.n; i++) {
		const struct ini_kv *kv = &g->in.v[i];
		if (strncmp(kv->section, "filter", 6) != 0 || strcmp(kv->key, "type") != 0)
			continue;
		const char *path = get(g, kv->section, "path", NULL);
		char *cmd = path ? command(path, get(g, kv->section, "arguments", NULL)) : NULL;
		if (!strcmp(kv->val, "Filter_external") && cmd)
			lost(g, kv->line, "[%s] Filter_external: put \"match all filter %s\" in a "
			     "rules file (exitcodes_drop: match pipe ... returns CODES discard)",
			     kv->section, cmd);
		else if (!strcmp(kv->val, "Filter_classifier") && cmd)
			lost(g, kv->line, "[%s] Filter_classifier: getmail added its output as a "
			     "header; decide in a rules file with match pipe \"%s\" returns CODES "
			     "...", kv->section, cmd);
		else
			lost(g, kv->line, "[%s] %s: no equivalent", kv->section, kv->val);
		free(cmd);
	}
}

/* getmailrc-work -> work; getmailrc -> the user's local part. */
static char *account_name(struct gm *g)
{
	const char *base = strrchr(g->file, '/') ? strrchr(g->file, '/') + 1 : g->file;
	if (strncmp(base, "getmailrc", 9) == 0)
		base += 9;
	base += strspn(base, "-_.");
	const char *u = get(g, "retriever", "username", NULL);
	char *raw = *base ? xstrdup(base) : xstrndup(u ? u : "mail", strcspn(u ? u : "mail",
								      "@"));
	char *name = import_account_name(raw);
	for (int i = 2;; i++) {
		int clash = 0;
		for (size_t k = 0; k < g->nnames; k++)
			clash |= strcmp(g->names[k], name) == 0;
		if (!clash)
			break;
		free(name);
		name = xasprintf("%s-%d", raw, i);
	}
	free(raw);
	g->names = xrealloc(g->names, (g->nnames + 1) * sizeof *g->names);
	g->names[g->nnames++] = xstrdup(name);
	return name;
}

/* One rc file: 1 an account written, 0 none (IMAP), -1 a syntax error. */
static int convert_one(struct gm *g, const char *text, char **err)
{
	if (ini_parse(g->file, text, &g->in, err) < 0)
		return -1;
	int line = 0;
	const char *type = get(g, "retriever", "type", &line);
	fprintf(g->out, "\n# %s: getmail rc file\n", g->file);
	if (type == NULL || strstr(type, "POP3") == NULL || strstr(type, "Multidrop")) {
		lost(g, line, "[retriever] type %s: popsift speaks POP3 to one mailbox "
		     "(no account written)", type ? type : "(none)");
		inotes_flush(g->out, g->file, &g->notes, &g->all);
		return 0;
	}
	char *name = account_name(g);
	fprintf(g->out, "account %s\n", name);
	free(name);
	if (strstr(type, "BrokenUIDL"))
		note(g, line, "%s: popsift trusts UIDL; a server whose UIDLs change gets its "
		     "mail fetched again", type);
	emit_retriever(g, type);
	emit_options(g);
	emit_dest(g, "destination", 0);
	emit_filters(g);
	emit_unknown(g);
	inotes_flush(g->out, g->file, &g->notes, &g->all);
	return 1;
}

int getmail_convert(const char *const *files, const char *const *texts, size_t nfiles,
		    FILE *out, FILE *summary, int *naccounts, char **err)
{
	struct gm g = { .out = out };
	int rc = 0;
	*naccounts = 0;
	fputs("# popsift config converted from getmail rc files by popsift import getmailrc.\n"
	      "# Check it with popsift -f FILE check -v; it may hold passwords: "
	      "chmod 600 FILE.\n", out);
	for (size_t i = 0; i < nfiles && rc >= 0; i++) {
		g.file = files[i];
		rc = convert_one(&g, texts[i], err);
		*naccounts += rc > 0;
		inotes_summary(summary, files[i], rc > 0, &g.all);
		inotes_free(&g.all);
		ini_free(&g.in);
	}
	if (rc >= 0 && *naccounts > 0)
		fputs("popsift: so that mail getmail kept on the server is not fetched again: "
		      "popsift import getmail-oldmail ~/.getmail/oldmail-HOST-PORT-USER "
		      "(one per account)\n", summary);
	for (size_t i = 0; i < g.nnames; i++)
		free(g.names[i]);
	free(g.names);
	inotes_free(&g.notes);
	return rc < 0 ? -1 : 0;
}
