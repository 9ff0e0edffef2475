/* fetch-recover.c — before a run fetches anything, undo what a batch
 * that died (kill -9, power loss) left behind, as its journal says, so
 * the rerun delivers those messages once (doc/crash-safety.md).
 *
 * A journal row is only a claim read from a database file: recovery
 * cuts and unlinks only inside what the current configuration delivers
 * to, so a row planted by someone else cannot make a root run truncate
 * or unlink a file of its choosing. */
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "fetch.h"
#include "imap-once.h"
#include "match.h"
#include "state.h"

/* No "." or ".." component and no empty one: the path names what it
 * seems to name, so a prefix comparison means something. */
static int plain_path(const char *p)
{
	if (p[0] != '/')
		return 0;
	for (const char *c = p + 1;; ) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (c[n] == '\0')
			return 1;
		c += n + 1;
	}
}

static enum dest_kind journal_kind(const char *kind, int *ok)
{
	*ok = 1;
	if (strcmp(kind, "mbox") == 0)
		return DEST_MBOX;
	if (strcmp(kind, "maildir") == 0)
		return DEST_MAILDIR;
	*ok = 0;
	return DEST_MBOX;
}

/* A rule's path template covers path: the same text when it has no
 * expansion; else a path below the directory its fixed part names
 * ("~/Mail/lists/$1" covers anything under ~/Mail/lists/; expansions
 * can hold no "/" nor "..", see action.c), never "/" itself. */
static int template_covers(const char *tmpl, const char *path)
{
	char *t = expand_tilde(tmpl);
	int ok;
	char *dollar = strchr(t, '$');
	if (dollar == NULL) {
		ok = strcmp(t, path) == 0;
	} else {
		*dollar = '\0';
		char *slash = strrchr(t, '/');
		size_t n = slash ? (size_t)(slash - t) + 1 : 0;
		ok = n > 1 && t[0] == '/' && plain_path(path) && strncmp(path, t, n) == 0 &&
		     path[n] != '\0';
	}
	free(t);
	return ok;
}

static int rules_cover(const struct rules *r, enum dest_kind kind, const char *path)
{
	enum act_kind want = kind == DEST_MBOX ? A_MBOX : A_MAILDIR;
	for (size_t i = 0; r != NULL && i < r->n; i++)
		for (size_t k = 0; k < r->v[i].nacts; k++) {
			const struct action *act = &r->v[i].acts[k];
			const char *t = action_arg_text(act, 0);
			if (act->kind == want && t != NULL && template_covers(t, path))
				return 1;
		}
	return 0;
}

/* 1 if the current configuration delivers (or may deliver) to j. */
static int in_scope(const struct fetch *f, const struct journal *j)
{
	int ok;
	enum dest_kind kind = journal_kind(j->kind, &ok);
	if (!ok || j->path == NULL)
		return 0;
	for (size_t i = 0; i < f->a->ndests; i++) {
		const struct dest *d = &f->a->dests[i];
		if (d->kind == kind && d->path != NULL && strcmp(d->path, j->path) == 0)
			return 1;
	}
	return rules_cover(f->rules, kind, j->path);
}

/* The rows, copied: they are undone and deleted one by one after the
 * reading statement is done.  Every string field of struct journal must
 * be duplicated in collect() (SQLite's text dies with the statement). */
struct jlist {
	struct journal *v;
	size_t n;
};

static int collect(void *arg, const struct journal *j, char **err)
{
	(void)err;
	struct jlist *l = arg;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	struct journal *c = &l->v[l->n++];
	*c = *j;
	c->kind = xstrdup(j->kind ? j->kind : "");
	c->path = j->path ? xstrdup(j->path) : NULL;
	c->prefix = j->prefix ? xstrdup(j->prefix) : NULL;
	return 0;
}

static void jlist_free(struct jlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free((char *)l->v[i].kind);
		free((char *)l->v[i].path);
		free((char *)l->v[i].prefix);
	}
	free(l->v);
}

/* Undo one row, then forget it: a row is dropped only once its undo
 * succeeded, and a row undone is never undone again (a second cut
 * could take mail appended since). */
static int recover_row(struct fetch *f, const struct journal *j, char **err)
{
	if (!in_scope(f, j))
		return seterr(err, "the state database's journal names %s %s, which is not a "
			      "destination of this account: refusing to touch it (if you did not "
			      "just remove it from the configuration, someone else wrote it; "
			      "either way: sqlite3 STATE 'DELETE FROM journal WHERE id=%lld')",
			      j->kind, j->path ? j->path : "(none)", (long long)j->id);
	char *e = NULL;
	if (deliver_recover(j, &e) < 0) {
		seterr(err, "recovery of an unfinished delivery to %s failed: %s; the journal "
		       "keeps it and nothing is fetched until it succeeds", j->path, e);
		free(e);
		return -1;
	}
	return state_journal_del(f->st, j->id, err);
}

int fetch_recover(struct fetch *f)
{
	struct jlist l = { 0 };
	char *err = NULL;
	imap_run_start(f->a->name);
	int rc = state_journal_each(f->st, f->a->name, collect, &l, &err);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		/* an append cannot be undone: the row stays, and the folder is
		 * searched before each append until a run ends in no doubt */
		if (strcmp(l.v[i].kind, "imap") == 0)
			imap_suspect(f->a->name, l.v[i].path ? l.v[i].path : "");
		else
			rc = recover_row(f, &l.v[i], &err);
	}
	jlist_free(&l);
	if (rc < 0 && f->r.error == NULL) {
		f->r.error = err;
		f->r.code = EX_TEMPFAIL;
		err = NULL;
	}
	free(err);
	return rc;
}

static int drop_imap(void *arg, const struct journal *j, char **err)
{
	(void)err;
	if (strcmp(j->kind, "imap") == 0)
		collect(arg, j, NULL);
	return 0;
}

/* The run is over: its IMAP journal rows (and an earlier run's) go when
 * every append of it was answered and the run ended without failures,
 * so each message an earlier run may have appended came again and was
 * looked for.  Otherwise they stay for the next run's search. */
void fetch_recover_end(struct fetch *f)
{
	int full = f->r.code == 0 && f->r.failed == 0 &&
		   (f->a->max_messages == 0 || f->r.nnew < f->a->max_messages);
	if (!imap_run_clean(f->a->name) || !full || f->opts->dry_run)
		return;
	struct jlist l = { 0 };
	char *err = NULL;
	int rc = state_journal_each(f->st, f->a->name, drop_imap, &l, &err);
	for (size_t i = 0; rc == 0 && i < l.n; i++)
		rc = state_journal_del(f->st, l.v[i].id, &err);
	if (rc < 0)
		log_err(f->a->name, "%s", err);
	free(err);
	jlist_free(&l);
}
