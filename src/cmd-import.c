/* cmd-import.c — `popsift import`: convert a .fetchmailrc to a config,
 * and seed the state database from the UIDL lists of fetchmail, mpop and
 * getmail, so that switching fetches again nothing they already fetched.
 * (also an mpop or getmail configuration: import-mpop.c, import-getmail.c).
 * Seeded messages are "delivered": with keep no, the next run deletes
 * them from the server (the old tool delivered them); with keep yes or
 * keep AGE they stay, AGE counted from the import (getmail: from when it
 * fetched them). */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "import.h"
#include "popsift.h"
#include "sched.h"
#include "state.h"
#include "usage.h"

/* The whole file (NUL bytes allowed), NUL-terminated; "-" is stdin. */
static char *read_all(const char *path, size_t *len, char **err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		seterr(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t n = 0, cap = 4096, got;
	char *buf = xmalloc(cap);
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0)
		if ((n += got) == cap - 1)
			buf = xrealloc(buf, cap *= 2);
	int bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		free(buf);
		seterr(err, "%s: read error", path);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

typedef int convert_fn(const char *file, const char *text, FILE *out, FILE *summary,
		       int *naccounts, char **err);

/* A config converter: the file's text to stdout, the summary to stderr. */
static int import_rc(const char *what, convert_fn *conv, char *path)
{
	char *err = NULL;
	size_t len;
	char *text = read_all(path, &len, &err);
	int code = text ? 0 : EX_NOINPUT, n = 0;
	if (text && memchr(text, '\0', len)) {
		seterr(&err, "%s: contains a NUL byte: not a %s", path, what);
		code = EX_DATAERR;
	} else if (text && conv(path, text, stdout, stderr, &n, &err) < 0) {
		code = EX_DATAERR;
	} else if (text && n == 0) {
		seterr(&err, "%s: no POP3 account to convert", path);
		code = EX_DATAERR;
	}
	if (err)
		log_err(NULL, "%s", err);
	free(err);
	free(text);
	free(path);
	return code;
}

/* mpop reads ~/.mpoprc, else $XDG_CONFIG_HOME/mpop/config. */
static char *mpoprc_path(void)
{
	char *rc = expand_tilde("~/.mpoprc");
	if (access(rc, F_OK) == 0)
		return rc;
	free(rc);
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x == '/')
		return xasprintf("%s/mpop/config", x);
	return expand_tilde("~/.config/mpop/config");
}

/* getmail6's getmaildir: ~/.config/getmail if it exists, else ~/.getmail;
 * every getmailrc* file in it. */
static int getmail_default(glob_t *g)
{
	char *dir = expand_tilde("~/.config/getmail");
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x == '/') {
		free(dir);
		dir = xasprintf("%s/getmail", x);
	}
	if (access(dir, F_OK) != 0) {
		free(dir);
		dir = expand_tilde("~/.getmail");
	}
	char *pat = xasprintf("%s/getmailrc*", dir);
	int rc = glob(pat, 0, NULL, g);
	if (rc != 0)
		log_err(NULL, "%s: no getmail rc file: name one (popsift import getmailrc FILE)",
			pat);
	free(pat);
	free(dir);
	return rc == 0 ? 0 : EX_NOINPUT;
}

static int import_getmailrc(int n, char **files)
{
	glob_t g = { 0 };
	if (n == 0) {
		int code = getmail_default(&g);
		if (code)
			return code;
		n = (int)g.gl_pathc;
		files = g.gl_pathv;
	}
	char **texts = xcalloc((size_t)n, sizeof *texts), *err = NULL;
	size_t len;
	int code = 0, count = 0;
	for (int i = 0; i < n && code == 0; i++)
		if ((texts[i] = read_all(files[i], &len, &err)) == NULL)
			code = EX_NOINPUT;
		else if (memchr(texts[i], '\0', len))
			code = EX_DATAERR, seterr(&err, "%s: contains a NUL byte: not a getmail rc "
						  "file", files[i]);
	if (code == 0 && getmail_convert((const char *const *)files, (const char *const *)texts,
					 (size_t)n, stdout, stderr, &count, &err) < 0)
		code = EX_DATAERR;
	else if (code == 0 && count == 0)
		code = EX_DATAERR, seterr(&err, "%s: no POP3 account to convert", files[0]);
	if (err)
		log_err(NULL, "%s", err);
	for (int i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(err);
	globfree(&g);
	return code;
}

static int parse_kind(const char *kind, const char *path, const char *data, size_t len,
		      struct uidlist **out, char **err)
{
	if (memchr(data, '\0', len) && strcmp(kind, "getmail-oldmail") != 0)
		return seterr(err, "%s: contains a NUL byte: not a %s file", path, kind);
	int rc;
	if (strcmp(kind, "fetchids") == 0)
		rc = parse_fetchids(data, out, err);
	else if (strcmp(kind, "mpop-uidls") == 0)
		rc = parse_mpop_uidls(data, out, err);
	else
		rc = parse_getmail_oldmail(path, data, len, out, err);
	if (rc < 0) {
		char *e = xasprintf("%s: %s", path, *err);
		free(*err);
		*err = e;
	}
	return rc;
}

/* getmail names its file oldmail-HOST-PORT-USER, '/' and ':' made '-'. */
static int getmail_raw_match(const struct account *a, const struct uidlist *l)
{
	char *raw = xasprintf("%s-%d-%s", a->host, a->port, a->user);
	for (char *p = raw; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '-';
	int same = strcasecmp(raw, l->raw) == 0;
	free(raw);
	return same;
}

/* With ACCOUNT named on the command line the host is not compared: the
 * old tool may have known the server by another name. */
static int matches(const struct account *a, const struct uidlist *l, const struct account *only)
{
	if (only)
		return a == only && strcmp(a->user, l->user) == 0;
	if (l->raw && getmail_raw_match(a, l))
		return 1;
	return strcmp(a->user, l->user) == 0 && strcasecmp(a->host, l->host) == 0 &&
	       (l->port == 0 || l->port == a->port);
}

struct job {
	const char *kind, *path;
	struct config cf;
	struct state *st;
	const struct account *only;
	int dry_run;
};

static int seed(struct job *j, const struct account *a, const struct uidlist *l)
{
	char *err = NULL, *source = xasprintf("import %s", j->kind);
	size_t added = 0;
	int rc = state_begin(j->st, &err);
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		int one = 0;
		rc = state_seed(j->st, a->name, l->uidls[i], l->when[i], source, &one, &err);
		added += (size_t)one;
	}
	if (rc == 0)
		rc = state_commit(j->st, &err);
	if (rc < 0) {
		state_rollback(j->st);
		log_err(a->name, "%s", err);
	} else {
		printf("%s: %zu UIDL%s of %s@%s: %zu imported, %zu already known\n", a->name, l->n,
		       l->n == 1 ? "" : "s", l->user, l->host, added, l->n - added);
	}
	free(err);
	free(source);
	return rc;
}

static void unmatched(const struct job *j, const struct uidlist *l)
{
	char port[16] = "";
	if (l->port)
		snprintf(port, sizeof port, ":%d", l->port);
	log_err(NULL, "%s: %s@%s%s (%zu UIDL%s): no account in %s has user %s%s%s: not imported "
		"(name one: popsift import %s %s ACCOUNT)", j->path, l->user, l->host, port, l->n,
		l->n == 1 ? "" : "s", j->cf.file, l->user, j->only ? "" : " and host ",
		j->only ? "" : l->host, j->kind, j->path);
}

/* Each list into every account it matches; the exit code. */
static int import_lists(struct job *j, const struct uidlist *lists)
{
	int any = 0, failed = 0;
	for (const struct uidlist *l = lists; l; l = l->next) {
		int hit = 0;
		for (const struct account *a = j->cf.accounts; a; a = a->next) {
			if (!matches(a, l, j->only))
				continue;
			hit = 1;
			if (j->dry_run)
				printf("%s: would import %zu UIDL%s of %s@%s\n", a->name, l->n,
				       l->n == 1 ? "" : "s", l->user, l->host);
			else if (seed(j, a, l) < 0)
				failed = 1;
		}
		if (!hit)
			unmatched(j, l);
		any |= hit;
	}
	if (lists == NULL)
		log_info(NULL, "%s: no UIDLs in it: nothing to import", j->path);
	return failed ? EX_TEMPFAIL : any || lists == NULL ? 0 : EX_DATAERR;
}

static const struct account *account_named(const struct config *cf, const char *name)
{
	for (const struct account *a = cf->accounts; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

/* Load the config, name the account, lock and open the database. */
static int prepare(struct job *j, const char *config, const char *acct, int *lockfd)
{
	char *err = NULL;
	if (conf_load(config, &j->cf, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		return EX_CONFIG;
	}
	if (acct && (j->only = account_named(&j->cf, acct)) == NULL) {
		log_err(NULL, "no account \"%s\" in %s", acct, j->cf.file);
		return EX_USAGE;
	}
	if (j->dry_run)
		return 0;
	if ((*lockfd = lock_state(&j->cf, j->cf.lock_wait, &err)) < 0 ||
	    state_open(j->cf.state, &j->st, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	return 0;
}

static int import_uidls(const char *kind, const char *config, const char *path,
			const char *acct, int dry_run)
{
	struct job j = { .kind = kind, .path = path, .dry_run = dry_run };
	struct uidlist *lists = NULL;
	char *err = NULL;
	size_t len = 0;
	int lockfd = -1;
	char *data = read_all(path, &len, &err);
	int code = data ? 0 : EX_NOINPUT;
	if (data && parse_kind(kind, path, data, len, &lists, &err) < 0)
		code = EX_DATAERR;
	if (code) {
		log_err(NULL, "%s", err);
		free(err);
		free(data);
		return code;
	}
	code = prepare(&j, config, acct, &lockfd);
	if (code == 0)
		code = import_lists(&j, lists);
	state_close(j.st);
	if (lockfd >= 0)
		close(lockfd);
	if (j.cf.file)
		conf_free(&j.cf);
	uidlists_free(lists);
	free(data);
	return code;
}

int cmd_import(const char *config, int nargs, char **args, int dry_run)
{
	static const char *const kinds[] = { "fetchids", "mpop-uidls", "getmail-oldmail", NULL };
	if (nargs >= 1 && strcmp(args[0], "fetchmailrc") == 0 && nargs <= 2)
		return import_rc(".fetchmailrc", fm_convert, nargs == 2 ? xstrdup(args[1]) :
				 expand_tilde("~/.fetchmailrc"));
	if (nargs >= 1 && strcmp(args[0], "mpoprc") == 0 && nargs <= 2)
		return import_rc("mpop configuration", mpop_convert, nargs == 2 ?
				 xstrdup(args[1]) : mpoprc_path());
	if (nargs >= 1 && strcmp(args[0], "getmailrc") == 0)
		return import_getmailrc(nargs - 1, args + 1);
	for (int i = 0; nargs >= 2 && nargs <= 3 && kinds[i]; i++)
		if (strcmp(args[0], kinds[i]) == 0)
			return import_uidls(kinds[i], config, args[1], nargs == 3 ? args[2] : NULL,
					    dry_run);
	usage_print(stderr, "import");
	return EX_USAGE;
}
