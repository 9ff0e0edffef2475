/* state-caps.c — see state-caps.h.  The table is made on the first
 * write, so a database no session has written to needs no migration;
 * a read from a database without it finds nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "popsift.h"
#include "state-caps.h"

sqlite3 *state_db(struct state *st);

static const char q_make[] =
	"CREATE TABLE IF NOT EXISTS caps(server TEXT PRIMARY KEY, known INTEGER, "
	"pipelining INTEGER, user INTEGER, uidl INTEGER, top INTEGER, stls INTEGER, "
	"apop_ts INTEGER, sasl TEXT, checked INTEGER, split_login INTEGER, fast_failed INTEGER)";
static const char q_get[] =
	"SELECT known,pipelining,user,uidl,top,stls,apop_ts,sasl,checked,split_login,"
	"fast_failed FROM caps "
	"WHERE server=?1";
/* a failure of the short way is remembered until the server changes */
#define CAPS_DIFFER "known IS NOT ?2 OR pipelining IS NOT ?3 OR user IS NOT ?4 OR " \
	"uidl IS NOT ?5 OR top IS NOT ?6 OR stls IS NOT ?7 OR apop_ts IS NOT ?8 OR " \
	"sasl IS NOT ?9 OR split_login IS NOT ?11"
static const char q_put[] =
	"INSERT INTO caps(server,known,pipelining,user,uidl,top,stls,apop_ts,sasl,checked,"
	"split_login,fast_failed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,strftime('%s','now'),?11,0) "
	"ON CONFLICT(server) DO UPDATE SET fast_failed=CASE WHEN " CAPS_DIFFER " THEN 0 "
	"ELSE fast_failed END,known=?2,pipelining=?3,user=?4,uidl=?5,top=?6,stls=?7,"
	"apop_ts=?8,sasl=?9,split_login=?11,checked=excluded.checked WHERE " CAPS_DIFFER
	" OR checked < excluded.checked - ?10";
static const char q_failed[] = "UPDATE caps SET fast_failed=1 WHERE server=?1";
static const char q_forget[] = "DELETE FROM caps WHERE server=?1";

static int one_key(struct state *st, const char *sql, const char *key, char **err);

static int db_fail(sqlite3 *db, sqlite3_stmt *s, char **err)
{
	seterr(err, "state database: server capabilities: %s", sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return -1;
}

static int no_table(sqlite3 *db)
{
	return strstr(sqlite3_errmsg(db), "no such table") != NULL;
}

int state_caps_get(struct state *st, const char *key, struct caps *k, long long *checked,
		   char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, q_get, -1, &s, NULL) != SQLITE_OK)
		return no_table(db) ? 0 : db_fail(db, s, err);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int *f[] = { &k->known, &k->pipelining, &k->user, &k->uidl, &k->top, &k->stls,
			     &k->apop_ts };
		for (int i = 0; i < 7; i++)
			*f[i] = sqlite3_column_int(s, i);
		const unsigned char *sasl = sqlite3_column_text(s, 7);
		snprintf(k->sasl, sizeof k->sasl, "%s", sasl ? (const char *)sasl : "");
		*checked = sqlite3_column_int64(s, 8);
		k->split_login = sqlite3_column_int(s, 9);
		k->fast_failed = sqlite3_column_int(s, 10);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, s, err);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW;
}

int state_caps_put(struct state *st, const char *key, const struct caps *k, char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, q_put, -1, &s, NULL) != SQLITE_OK) {
		if (!no_table(db) || sqlite3_exec(db, q_make, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, q_put, -1, &s, NULL) != SQLITE_OK)
			return db_fail(db, s, err);
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	const int f[] = { k->known, k->pipelining, k->user, k->uidl, k->top, k->stls,
			  k->apop_ts };
	for (int i = 0; i < 7; i++)
		sqlite3_bind_int(s, i + 2, f[i] != 0);
	sqlite3_bind_text(s, 9, k->sasl, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 10, CAPS_REWRITE);
	sqlite3_bind_int(s, 11, k->split_login != 0);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(db, s, err);
	sqlite3_finalize(s);
	return 0;
}

int state_caps_forget(struct state *st, const char *key, char **err)
{
	return one_key(st, q_forget, key, err);
}

int state_caps_failed(struct state *st, const char *key, char **err)
{
	return one_key(st, q_failed, key, err);
}

static int one_key(struct state *st, const char *sql, const char *key, char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return no_table(db) ? 0 : db_fail(db, s, err);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_DONE)
		return db_fail(db, s, err);
	sqlite3_finalize(s);
	return 0;
}
