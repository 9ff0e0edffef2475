/* state.c — SQLite state (WAL, synchronous=FULL so a commit is durable
 * before any DELE).  The only file that includes sqlite3.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "popsift.h"
#include "state.h"

#define SCHEMA_VERSION 4

enum { S_PUT, S_SET, S_LOAD, S_JADD, S_JEACH, S_JCLEAR, S_RUN, S_DUP, S_SEED, S_ONE, S_MBGET,
       S_MBPUT, S_MBDEL, S_OLDEST, S_JDEL, S_RUNUPD, S_RUNMERGE, S_NSTMT };

static const char *const sql_text[S_NSTMT] = {
	[S_PUT] = "INSERT INTO messages(account,uidl,state,first_seen,delivered,size,"
		  "message_id,subject,rule,action,error) VALUES(?1,?2,?3,?4,"
		  "CASE WHEN ?3='delivered' THEN ?4 END,?5,?6,?7,?8,?9,?10) "
		  "ON CONFLICT(account,uidl) DO UPDATE SET state=?3,"
		  "delivered=CASE WHEN ?3='delivered' THEN ?4 ELSE delivered END,"
		  "size=coalesce(?5,size),message_id=coalesce(?6,message_id),"
		  "subject=coalesce(?7,subject),rule=coalesce(?8,rule),"
		  "action=coalesce(?9,action),error=?10",
	[S_SET] = "UPDATE messages SET state=?3 WHERE account=?1 AND uidl=?2",
	[S_LOAD] = "SELECT uidl,state,first_seen FROM messages WHERE account=?1",
	[S_JADD] = "INSERT INTO journal(account,kind,path,offset,prefix,created,dev,ino) "
		   "VALUES(?1,?2,?3,?4,?5,strftime('%s','now'),?6,?7)",
	[S_JEACH] = "SELECT id,kind,path,offset,prefix,dev,ino FROM journal WHERE account=?1 "
		    "ORDER BY id",
	[S_JCLEAR] = "DELETE FROM journal WHERE account=?1",
	[S_JDEL] = "DELETE FROM journal WHERE id=?1",
	[S_RUNUPD] = "UPDATE runs SET started=?2,ended=?3,new=?4,delivered=?5,kept=?6,deleted=?7,"
		     "bytes=?8,status=?9,error=?10 WHERE id=?1",
	/* an empty poll after an empty poll: one row for the quiet spell (its
	 * started and ended are the last poll's), or a daemon polling 1,000
	 * accounts a minute adds 1.4 million rows a day */
	[S_RUNMERGE] = "UPDATE runs SET started=?2,ended=?3,polls=polls+1 WHERE id="
		       "(SELECT max(id) FROM runs WHERE account=?1) AND status=0 AND new=0 AND "
		       "delivered=0 AND kept=0 AND deleted=0 AND bytes=0 AND error IS NULL",
	[S_RUN] = "INSERT INTO runs(account,started,ended,new,delivered,kept,deleted,bytes,"
		  "status,error) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
	/* the message's own row (a kept message fetched again by run --all)
	 * is not an earlier delivery of it */
	[S_DUP] = "SELECT 1 FROM messages WHERE message_id=?1 AND state IN "
		  "('delivered','deleted') AND (account IS NOT ?2 OR uidl IS NOT ?3) LIMIT 1",
	[S_SEED] = "INSERT INTO messages(account,uidl,state,first_seen,delivered,action) "
		   "VALUES(?1,?2,'delivered',?3,?3,?4) ON CONFLICT(account,uidl) DO NOTHING",
	[S_ONE] = "SELECT state,first_seen FROM messages WHERE account=?1 AND uidl=?2",
	[S_MBGET] = "SELECT server,settled,last_uidl FROM mailbox WHERE account=?1",
	/* an unchanged row is not rewritten: a poll that found nothing writes nothing */
	[S_MBPUT] = "INSERT INTO mailbox(account,server,settled,last_uidl,updated) "
		    "VALUES(?1,?2,?3,?4,strftime('%s','now')) ON CONFLICT(account) DO UPDATE SET "
		    "server=?2,settled=?3,last_uidl=?4,updated=excluded.updated "
		    "WHERE server IS NOT ?2 OR settled IS NOT ?3 OR last_uidl IS NOT ?4",
	[S_MBDEL] = "DELETE FROM mailbox WHERE account=?1",
	[S_OLDEST] = "SELECT min(first_seen) FROM messages WHERE account=?1 AND "
		     "state='delivered' AND first_seen>0",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS messages("
	" account TEXT NOT NULL, uidl TEXT NOT NULL, state TEXT NOT NULL,"
	" first_seen INTEGER, delivered INTEGER, size INTEGER, message_id TEXT,"
	" subject TEXT, rule TEXT, action TEXT, error TEXT,"
	" PRIMARY KEY(account, uidl)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS messages_mid ON messages(message_id);"
	"CREATE TABLE IF NOT EXISTS journal("
	" id INTEGER PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL,"
	" path TEXT NOT NULL, offset INTEGER, prefix TEXT, created INTEGER,"
	" dev INTEGER, ino INTEGER);"
	"CREATE TABLE IF NOT EXISTS runs("
	" id INTEGER PRIMARY KEY, account TEXT NOT NULL, started REAL, ended REAL,"
	" new INTEGER, delivered INTEGER, kept INTEGER, deleted INTEGER,"
	" bytes INTEGER, status INTEGER, error TEXT, polls INTEGER NOT NULL DEFAULT 1);"
	/* version 4: consecutive empty polls share a row (polls counts them) */
	"CREATE INDEX IF NOT EXISTS runs_account ON runs(account, id);"
	/* version 2: fast_uidl.  Messages 1..settled on the server were all
	 * delivered (and kept) when a run last saw them; the triggers forget
	 * that the moment any delivered message changes state, whoever
	 * changes it, so the claim never outlives its truth. */
	"CREATE TABLE IF NOT EXISTS mailbox("
	" account TEXT PRIMARY KEY, server TEXT NOT NULL, settled INTEGER NOT NULL,"
	" last_uidl TEXT NOT NULL, updated INTEGER);"
	"CREATE TRIGGER IF NOT EXISTS mailbox_unsettled AFTER UPDATE ON messages"
	" WHEN OLD.state='delivered' AND (NEW.state IS NOT 'delivered' OR"
	" NEW.uidl IS NOT OLD.uidl OR NEW.account IS NOT OLD.account)"
	" BEGIN DELETE FROM mailbox WHERE account=OLD.account; END;"
	"CREATE TRIGGER IF NOT EXISTS mailbox_forgotten AFTER DELETE ON messages"
	" WHEN OLD.state='delivered'"
	" BEGIN DELETE FROM mailbox WHERE account=OLD.account; END;"
	/* keep AGE: is anything due, without reading every row */
	"CREATE INDEX IF NOT EXISTS messages_kept ON messages(account, first_seen)"
	" WHERE state='delivered';";

struct state {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_NSTMT];
};


static int dberr(struct state *st, char **err, const char *what)
{
	return seterr(err, "state database: %s: %s", what, sqlite3_errmsg(st->db));
}

static int exec(struct state *st, const char *sql, char **err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		seterr(err, "state database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int user_version(struct state *st)
{
	sqlite3_stmt *s;
	int v = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	return v;
}

/* Version 3: the journal names the file it wrote to (device, inode), so
 * recovery never cuts another file put at that path. */
static int add_journal_file(struct state *st, char **err)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "SELECT dev FROM journal", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_finalize(s);
		return 0;   /* made by `schema` just now */
	}
	return exec(st, "ALTER TABLE journal ADD COLUMN dev INTEGER;"
		    "ALTER TABLE journal ADD COLUMN ino INTEGER;", err);
}

/* Version 4: a row counts the empty polls it stands for. */
static int add_run_polls(struct state *st, char **err)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "SELECT polls FROM runs", -1, &s, NULL) == SQLITE_OK) {
		sqlite3_finalize(s);
		return 0;
	}
	return exec(st, "ALTER TABLE runs ADD COLUMN polls INTEGER NOT NULL DEFAULT 1;", err);
}

/* Forward-only migrations: 0 (new file), 1, 2 or 3 -> 4; `schema` only
 * creates what is missing, so it serves every step. */
static int migrate(struct state *st, char **err)
{
	int v = user_version(st);
	if (v > SCHEMA_VERSION)
		return seterr(err, "state database has schema %d, newer than this popsift (%d)",
			      v, SCHEMA_VERSION);
	if (v == SCHEMA_VERSION)
		return 0;
	char pragma[64];
	snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", SCHEMA_VERSION);
	if (exec(st, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (exec(st, schema, err) < 0 || add_journal_file(st, err) < 0 ||
	    add_run_polls(st, err) < 0 || exec(st, pragma, err) < 0) {
		state_rollback(st);
		return -1;
	}
	if (exec(st, "COMMIT", err) < 0) {
		state_rollback(st);   /* a retry (setup) must not find it open */
		return -1;
	}
	return 0;
}

static int make_parent(const char *path, char **err)
{
	if (mkdir_parent(path, 0700) < 0)
		return seterr(err, "cannot create the directory of %s: %s", path, strerror(errno));
	return 0;
}

/* ---- nobody else's state ---- */

static const char *const state_files[] = { "", "-wal", "-shm", "-journal", ".lock", NULL };

/* A journal row planted by another user would make recovery cut a file
 * of popsift's user, a readable WAL shows every subject: the state is
 * the user's (or root's) and nobody else may write it. */
static int trusted(const char *what, const char *path, const struct stat *sb, int dir,
		   char **err)
{
	if (sb->st_uid != 0 && sb->st_uid != geteuid())
		return seterr(err, "%s %s is owned by another user (uid %u): refusing to use it; "
			      "remove it or choose another state path", what, path,
			      (unsigned)sb->st_uid);
	if (dir ? !S_ISDIR(sb->st_mode) : !S_ISREG(sb->st_mode))
		return seterr(err, "%s %s is not a %s", what, path, dir ? "directory" : "regular file");
	if (sb->st_mode & (S_IWGRP | S_IWOTH) && dir)
		return seterr(err, "%s %s is writable by others (mode %04o): choose a state path "
			      "in a directory only you can write", what, path,
			      (unsigned)(sb->st_mode & 07777));
	if (sb->st_mode & (S_IWGRP | S_IWOTH))
		return seterr(err, "%s %s is writable by others (mode %04o): run chmod 600 %s",
			      what, path, (unsigned)(sb->st_mode & 07777), path);
	return 0;
}

int state_check(const char *path, char **err)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	struct stat sb;
	if (slash == dir)
		slash[1] = '\0';   /* "/state.db": the root directory */
	else if (slash)
		*slash = '\0';
	int rc = stat(slash ? dir : ".", &sb) == 0 ?
		 trusted("state directory", slash ? dir : ".", &sb, 1, err) : 0;
	free(dir);
	for (int i = 0; rc == 0 && state_files[i]; i++) {
		char *p = xasprintf("%s%s", path, state_files[i]);
		if (stat(p, &sb) == 0)
			rc = trusted("state database", p, &sb, 0, err);
		free(p);
	}
	return rc;
}

/* A database made readable by someone else's tool (or an older popsift)
 * becomes private: SQLite gives the -wal and -shm files its mode. */
static void make_private(const char *path)
{
	for (int i = 0; state_files[i]; i++) {
		char *p = xasprintf("%s%s", path, state_files[i]);
		struct stat sb;
		if (stat(p, &sb) == 0 && sb.st_uid == geteuid() && (sb.st_mode & 077))
			chmod(p, sb.st_mode & 0700);
		free(p);
	}
}

/* Two processes opening a new database at once (a daemon's first start
 * and a `status` beside it): SQLite answers the race for the switch to
 * WAL with SQLITE_BUSY at once, without calling the busy handler.  The
 * loser tries again a moment later; the database is WAL by then. */
static int setup(struct state *st, char **err)
{
	double give_up = now_sec() + 5;
	for (;;) {
		if (exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) == 0 &&
		    migrate(st, err) == 0)
			return 0;
		if ((sqlite3_errcode(st->db) & 0xff) != SQLITE_BUSY || now_sec() > give_up ||
		    stop_requested)
			return -1;
		usleep(50000);
	}
}

int state_open(const char *path, struct state **out, char **err)
{
	if (make_parent(path, err) < 0 || state_check(path, err) < 0)
		return -1;
	make_private(path);
	struct state *st = xcalloc(1, sizeof *st);
	mode_t old = umask(077);
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		seterr(err, "cannot open state database %s: %s", path, sqlite3_errmsg(st->db));
		state_close(st);
		return -1;
	}
	sqlite3_busy_timeout(st->db, 30000);
	/* the WAL is checkpointed as it grows, not by every run's exit (which
	 * would cost fsyncs on a poll that found nothing) */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (setup(st, err) < 0) {
		state_close(st);
		return -1;
	}
	for (int i = 0; i < S_NSTMT; i++) {
		if (sqlite3_prepare_v2(st->db, sql_text[i], -1, &st->stmt[i], NULL) != SQLITE_OK) {
			dberr(st, err, "prepare");
			state_close(st);
			return -1;
		}
	}
	*out = st;
	return 0;
}

/* Whoever opens the database first replays the whole WAL to rebuild its
 * index: 20,000 rows written once cost every later poll ~1,000 page
 * reads.  So a WAL past this size is checkpointed into the database and
 * truncated at close — one fsync now and then, none on a poll that
 * found the WAL small.  Never waits: a busy database is left to a later
 * run. */
#define WAL_TRUNCATE_AT (1L << 20)

static void shrink_wal(struct state *st)
{
	const char *db = sqlite3_db_filename(st->db, "main");
	if (db == NULL || *db == '\0')
		return;
	char *wal = xasprintf("%s-wal", db);
	struct stat sb;
	if (stat(wal, &sb) == 0 && sb.st_size > WAL_TRUNCATE_AT) {
		sqlite3_busy_timeout(st->db, 0);
		sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	free(wal);
}

void state_close(struct state *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < S_NSTMT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL)
		shrink_wal(st);
	sqlite3_close(st->db);
	free(st);
}

int state_begin(struct state *st, char **err)
{
	return exec(st, "BEGIN IMMEDIATE", err);
}

int state_commit(struct state *st, char **err)
{
	return exec(st, "COMMIT", err);
}

void state_rollback(struct state *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *stmt(struct state *st, int which)
{
	sqlite3_stmt *s = st->stmt[which];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static int step_done(struct state *st, sqlite3_stmt *s, char **err, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : dberr(st, err, what);
}

int state_load(struct state *st, const char *acct, struct uidmap *map, char **err)
{
	sqlite3_stmt *s = stmt(st, S_LOAD);
	bind_text(s, 1, acct);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(s, 0);
		const char *v = (const char *)sqlite3_column_text(s, 1);
		if (u) {
			uidmap_put(map, u, mstate_parse(v));
			uidmap_find(map, u)->first_seen = sqlite3_column_int64(s, 2);
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : dberr(st, err, "load");
}

int state_put(struct state *st, const char *acct, const struct msgrow *r, char **err)
{
	sqlite3_stmt *s = stmt(st, S_PUT);
	bind_text(s, 1, acct);
	bind_text(s, 2, r->uidl);
	bind_text(s, 3, mstate_name(r->state));
	sqlite3_bind_int64(s, 4, (sqlite3_int64)time(NULL));
	if (r->size >= 0)
		sqlite3_bind_int64(s, 5, r->size);
	bind_text(s, 6, r->message_id);
	bind_text(s, 7, r->subject);
	bind_text(s, 8, r->rule);
	bind_text(s, 9, r->action);
	bind_text(s, 10, r->error);
	return step_done(st, s, err, "put");
}

int state_set(struct state *st, const char *acct, const char *uidl, int mstate, char **err)
{
	sqlite3_stmt *s = stmt(st, S_SET);
	bind_text(s, 1, acct);
	bind_text(s, 2, uidl);
	bind_text(s, 3, mstate_name(mstate));
	return step_done(st, s, err, "set");
}

int state_journal_add(struct state *st, const char *acct, struct journal *j, char **err)
{
	sqlite3_stmt *s = stmt(st, S_JADD);
	bind_text(s, 1, acct);
	bind_text(s, 2, j->kind);
	bind_text(s, 3, j->path);
	sqlite3_bind_int64(s, 4, j->offset);
	bind_text(s, 5, j->prefix);
	/* bindings outlive a reset: a Maildir row must not inherit an mbox's */
	if (j->dev || j->ino) {
		sqlite3_bind_int64(s, 6, j->dev);
		sqlite3_bind_int64(s, 7, j->ino);
	} else {
		sqlite3_bind_null(s, 6);
		sqlite3_bind_null(s, 7);
	}
	if (step_done(st, s, err, "journal") < 0)
		return -1;
	j->id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int state_journal_del(struct state *st, int64_t id, char **err)
{
	sqlite3_stmt *s = stmt(st, S_JDEL);
	sqlite3_bind_int64(s, 1, id);
	return step_done(st, s, err, "journal");
}

int state_journal_each(struct state *st, const char *acct,
		       int (*fn)(void *arg, const struct journal *j, char **err), void *arg, char **err)
{
	/* a private statement: fn may call back into the state */
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, sql_text[S_JEACH], -1, &s, NULL) != SQLITE_OK)
		return dberr(st, err, "journal");
	bind_text(s, 1, acct);
	int rc = 0, r;
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct journal j = {
			.id = sqlite3_column_int64(s, 0),
			.kind = (const char *)sqlite3_column_text(s, 1),
			.path = (const char *)sqlite3_column_text(s, 2),
			.offset = sqlite3_column_int64(s, 3),
			.prefix = (const char *)sqlite3_column_text(s, 4),
			.dev = sqlite3_column_int64(s, 5),
			.ino = sqlite3_column_int64(s, 6),
		};
		rc = fn(arg, &j, err);
	}
	sqlite3_finalize(s);
	return rc;
}

int state_journal_clear(struct state *st, const char *acct, char **err)
{
	sqlite3_stmt *s = stmt(st, S_JCLEAR);
	bind_text(s, 1, acct);
	return step_done(st, s, err, "journal");
}

/* An empty poll, never written before, after an empty poll of the same
 * account: 1 when that row now stands for this poll too, 0 when a row
 * of its own is needed, -1 on an error. */
static int run_merge(struct state *st, const char *acct, struct runrow *r, char **err)
{
	if (r->id || r->status || r->nnew || r->delivered || r->kept || r->deleted ||
	    r->bytes || r->error)
		return 0;
	sqlite3_stmt *s = stmt(st, S_RUNMERGE);
	bind_text(s, 1, acct);
	sqlite3_bind_double(s, 2, r->started);
	sqlite3_bind_double(s, 3, r->ended);
	if (step_done(st, s, err, "run") < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

/* The run row is history, not a delivery promise: it may wait for the
 * next durable commit instead of costing its own fsync. */
int state_run_add(struct state *st, const char *acct, struct runrow *r, char **err)
{
	exec(st, "PRAGMA synchronous=NORMAL", NULL);
	int rc = run_merge(st, acct, r, err);
	if (rc == 0)
		rc = state_run_put(st, acct, r, err);
	exec(st, "PRAGMA synchronous=FULL", NULL);
	return rc < 0 ? -1 : 0;
}

int state_run_put(struct state *st, const char *acct, struct runrow *r, char **err)
{
	sqlite3_stmt *s = stmt(st, r->id ? S_RUNUPD : S_RUN);
	if (r->id)
		sqlite3_bind_int64(s, 1, r->id);
	else
		bind_text(s, 1, acct);
	sqlite3_bind_double(s, 2, r->started);
	sqlite3_bind_double(s, 3, r->ended);
	sqlite3_bind_int(s, 4, r->nnew);
	sqlite3_bind_int(s, 5, r->delivered);
	sqlite3_bind_int(s, 6, r->kept);
	sqlite3_bind_int(s, 7, r->deleted);
	sqlite3_bind_int64(s, 8, r->bytes);
	sqlite3_bind_int(s, 9, r->status);
	bind_text(s, 10, r->error);
	if (step_done(st, s, err, "run") < 0)
		return -1;
	if (r->id == 0)
		r->id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int state_is_duplicate(struct state *st, const char *message_id, const char *acct,
		       const char *uidl)
{
	sqlite3_stmt *s = stmt(st, S_DUP);
	bind_text(s, 1, message_id);
	bind_text(s, 2, acct);
	bind_text(s, 3, uidl);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int state_seed(struct state *st, const char *acct, const char *uidl, long long when,
	       const char *source, int *added, char **err)
{
	sqlite3_stmt *s = stmt(st, S_SEED);
	bind_text(s, 1, acct);
	bind_text(s, 2, uidl);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)(when > 0 ? when : (long long)time(NULL)));
	bind_text(s, 4, source);
	if (step_done(st, s, err, "seed") < 0)
		return -1;
	*added = sqlite3_changes(st->db) > 0;
	return 0;
}

/* One message's row into map (nothing when the account never saw it). */
int state_load_one(struct state *st, const char *acct, const char *uidl, struct uidmap *map,
		   char **err)
{
	sqlite3_stmt *s = stmt(st, S_ONE);
	bind_text(s, 1, acct);
	bind_text(s, 2, uidl);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		uidmap_put(map, uidl, mstate_parse((const char *)sqlite3_column_text(s, 0)));
		uidmap_find(map, uidl)->first_seen = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : dberr(st, err, "load");
}

int state_snapshot_get(struct state *st, const char *acct, struct snapshot *snap, char **err)
{
	memset(snap, 0, sizeof *snap);
	sqlite3_stmt *s = stmt(st, S_MBGET);
	bind_text(s, 1, acct);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 1) > 0) {
		snap->server = xstrdup((const char *)sqlite3_column_text(s, 0));
		snap->settled = (unsigned long)sqlite3_column_int64(s, 1);
		snap->last_uidl = xstrdup((const char *)sqlite3_column_text(s, 2));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return dberr(st, err, "mailbox");
	return snap->settled > 0;
}

/* Like the run row, a snapshot promises nothing about delivery: it may
 * wait for the next durable commit (a lost one costs a full UIDL). */
int state_snapshot_put(struct state *st, const char *acct, const struct snapshot *snap,
		       char **err)
{
	int del = snap->settled == 0 || snap->server == NULL || snap->last_uidl == NULL;
	sqlite3_stmt *s = stmt(st, del ? S_MBDEL : S_MBPUT);
	bind_text(s, 1, acct);
	if (!del) {
		bind_text(s, 2, snap->server);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)snap->settled);
		bind_text(s, 4, snap->last_uidl);
	}
	exec(st, "PRAGMA synchronous=NORMAL", NULL);
	int rc = step_done(st, s, err, "mailbox");
	exec(st, "PRAGMA synchronous=FULL", NULL);
	return rc;
}

void snapshot_free(struct snapshot *snap)
{
	free(snap->server);
	free(snap->last_uidl);
	memset(snap, 0, sizeof *snap);
}

int state_oldest_kept(struct state *st, const char *acct, long long *when, char **err)
{
	sqlite3_stmt *s = stmt(st, S_OLDEST);
	bind_text(s, 1, acct);
	int rc = sqlite3_step(s);
	*when = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : dberr(st, err, "mailbox");
}

sqlite3 *state_db(struct state *st)
{
	return st->db;
}

const char *state_lib_version(void)
{
	return sqlite3_libversion();
}
