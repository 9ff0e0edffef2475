/* state-status.c — `popsift status`: what the state database knows, per
 * account.  With state.c the only users of sqlite3.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "popsift.h"
#include "state.h"

sqlite3 *state_db(struct state *st);

static const char q_accounts[] =
	"SELECT account FROM runs WHERE ?1 IS NULL OR account=?1 "
	"UNION SELECT account FROM messages WHERE ?1 IS NULL OR account=?1 ORDER BY 1";
static const char q_last[] =
	"SELECT ended,status,new,delivered,deleted,bytes,error FROM runs "
	"WHERE account=?1 ORDER BY id DESC LIMIT 1";
static const char q_counts[] =
	"SELECT sum(state='delivered'),sum(state='deleted'),"
	"sum(state IN ('failed','deferred','rejected')),"
	"sum(state='skipped'),sum(coalesce(size,0)) FROM messages WHERE account=?1";
static const char q_failed[] =
	"SELECT uidl,coalesce(subject,''),coalesce(error,'') FROM messages "
	"WHERE account=?1 AND state IN ('failed','deferred','rejected') ORDER BY first_seen LIMIT 20";

static sqlite3_stmt *prep(sqlite3 *db, const char *sql, const char *acct)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	if (acct)
		sqlite3_bind_text(s, 1, acct, -1, SQLITE_TRANSIENT);
	return s;
}

static const char *col(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t ? t : "";
}

/* Columns for a text line: a subject or an error from a server must not
 * drive the terminal (--json prints them exactly, JSON-escaped). */
struct tcols {
	char *v[9];
};

static const char *tcol(struct tcols *t, sqlite3_stmt *s, int i)
{
	free(t->v[i]);
	return t->v[i] = text_safe(col(s, i));
}

static void tcols_free(struct tcols *t)
{
	for (size_t i = 0; i < sizeof t->v / sizeof *t->v; i++)
		free(t->v[i]);
}

static const char q_today[] =
	"SELECT coalesce(sum(delivered),0),coalesce(sum(bytes),0) FROM runs "
	"WHERE account=?1 AND started>=?2";

/* Messages and bytes delivered since local midnight. */
static void show_today(sqlite3 *db, const char *acct, int json)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	sqlite3_stmt *s = prep(db, q_today, acct);
	if (s == NULL)
		return;
	sqlite3_bind_int64(s, 2, (sqlite3_int64)mktime(&tm));
	if (sqlite3_step(s) == SQLITE_ROW) {
		long long n = sqlite3_column_int64(s, 0), b = sqlite3_column_int64(s, 1);
		if (json)
			printf(",\"today_messages\":%lld,\"today_bytes\":%lld", n, b);
		else
			printf("  today      %lld messages, %.1f MB\n", n, (double)b / 1e6);
	}
	sqlite3_finalize(s);
}

/* The daemon's schedule file: "NAME EPOCH STATE [INTERVAL MIN MAX]". */
static void show_interval(double cur, double lo, double hi, int json)
{
	if (json)
		printf(",\"interval\":%.0f,\"min_interval\":%.0f,\"max_interval\":%.0f", cur, lo, hi);
	else if (hi > lo)
		printf("  interval   %.0f s (adaptive, %.0f to %.0f s)\n", cur, lo, hi);
	else
		printf("  interval   %.0f s\n", cur);
}

static void show_next(const char *schedfile, const char *acct, int json)
{
	FILE *f = schedfile ? fopen(schedfile, "r") : NULL;
	char line[512], name[256], st[32];
	long long when;
	double cur, lo, hi;
	while (f && fgets(line, sizeof line, f)) {
		int n = sscanf(line, "%255s %lld %31s %lf %lf %lf", name, &when, st, &cur, &lo, &hi);
		if (n < 3 || strcmp(name, acct) != 0)
			continue;
		time_t t = (time_t)when;
		char buf[64];
		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (json) {
			printf(",\"next_poll\":");
			json_puts(buf);
			printf(",\"daemon_state\":");
			json_puts(st);
		} else {
			printf("  next poll  %s (%s)\n", buf, st);
		}
		if (n == 6)
			show_interval(cur, lo, hi, json);
	}
	if (f)
		fclose(f);
}

static void show_last(sqlite3 *db, const char *acct, int json)
{
	sqlite3_stmt *s = prep(db, q_last, acct);
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		time_t t = (time_t)sqlite3_column_double(s, 0);
		char when[64];
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (json) {
			printf(",\"last_run\":");
			json_puts(when);
			printf(",\"last_exit\":%d,\"last_error\":", sqlite3_column_int(s, 1));
			json_puts(col(s, 6));
		} else {
			struct tcols tc = { 0 };
			printf("  last run   %s: exit %d, %d new, %d delivered, %d deleted%s%s\n",
			       when, sqlite3_column_int(s, 1), sqlite3_column_int(s, 2),
			       sqlite3_column_int(s, 3), sqlite3_column_int(s, 4),
			       *col(s, 6) ? ", error: " : "", tcol(&tc, s, 6));
			tcols_free(&tc);
		}
	}
	sqlite3_finalize(s);
}

static void show_counts(sqlite3 *db, const char *acct, int json)
{
	sqlite3_stmt *s = prep(db, q_counts, acct);
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		long long v[5];
		for (int i = 0; i < 5; i++)
			v[i] = sqlite3_column_int64(s, i);
		if (json)
			printf(",\"on_server_delivered\":%lld,\"deleted\":%lld,\"failed\":%lld,"
			       "\"skipped\":%lld,\"bytes\":%lld", v[0], v[1], v[2], v[3], v[4]);
		else
			printf("  messages   %lld delivered and kept, %lld delivered and deleted, "
			       "%lld failed, %lld skipped\n", v[0], v[1], v[2], v[3]);
	}
	sqlite3_finalize(s);
	if (json)
		return;
	s = prep(db, q_failed, acct);
	while (s && sqlite3_step(s) == SQLITE_ROW) {
		struct tcols t = { 0 };
		printf("  not delivered  %s  %s: %s\n", tcol(&t, s, 0), tcol(&t, s, 1),
		       tcol(&t, s, 2));
		tcols_free(&t);
	}
	sqlite3_finalize(s);
}

int state_status(struct state *st, const char *acct, const char *schedfile, int json, char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = prep(db, q_accounts, acct);
	if (s == NULL)
		return seterr(err, "state database: %s", sqlite3_errmsg(db));
	if (json)
		fputs("{\"accounts\":[", stdout);
	for (int n = 0; sqlite3_step(s) == SQLITE_ROW; n++) {
		const char *a = col(s, 0);
		if (json) {
			printf("%s{\"account\":", n ? "," : "");
			json_puts(a);
		} else {
			char *t = text_safe(a);
			printf("%s\n", t);
			free(t);
		}
		show_last(db, a, json);
		show_next(schedfile, a, json);
		show_today(db, a, json);
		show_counts(db, a, json);
		if (json)
			putchar('}');
	}
	if (json)
		puts("]}");
	sqlite3_finalize(s);
	return 0;
}

static const char q_log[] =
	"SELECT coalesce(delivered,first_seen),account,uidl,coalesce(message_id,''),"
	"coalesce(subject,''),coalesce(rule,''),coalesce(action,''),state,coalesce(error,'') "
	"FROM messages WHERE (?1 IS NULL OR account=?1) AND coalesce(delivered,first_seen)>=?2 "
	"ORDER BY 1, account, uidl";

static void log_line(sqlite3_stmt *s, const char *when)
{
	struct tcols t = { 0 };
	printf("%s %s %s %s \"%s\" %s %s %s%s%s\n", when, tcol(&t, s, 1), tcol(&t, s, 2),
	       *col(s, 3) ? tcol(&t, s, 3) : "-", tcol(&t, s, 4),
	       *col(s, 5) ? tcol(&t, s, 5) : "default", *col(s, 6) ? tcol(&t, s, 6) : "deliver",
	       tcol(&t, s, 7), *col(s, 8) ? ": " : "", tcol(&t, s, 8));
	tcols_free(&t);
}

/* `popsift log`: one line per message, oldest first. */
int state_log(struct state *st, const char *acct, long long since, int json, char **err)
{
	sqlite3 *db = state_db(st);
	sqlite3_stmt *s = prep(db, q_log, acct);
	if (s == NULL)
		return seterr(err, "state database: %s", sqlite3_errmsg(db));
	sqlite3_bind_int64(s, 2, since);
	if (json)
		fputs("[", stdout);
	for (int n = 0; sqlite3_step(s) == SQLITE_ROW; n++) {
		time_t t = (time_t)sqlite3_column_int64(s, 0);
		char when[64];
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (!json) {
			log_line(s, when);
			continue;
		}
		static const char *const keys[] = { "account", "uidl", "message_id", "subject",
						     "rule", "action", "state", "error" };
		printf("%s{\"time\":", n ? "," : "");
		json_puts(when);
		for (int i = 0; i < 8; i++) {
			printf(",\"%s\":", keys[i]);
			json_puts(col(s, i + 1));
		}
		putchar('}');
	}
	if (json)
		puts("]");
	sqlite3_finalize(s);
	return 0;
}
