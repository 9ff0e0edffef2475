/* json.c — json_extract on an in-memory SQLite database.  A connection per
 * call: the sending thread and the fetch thread both refresh tokens, and
 * an in-memory database costs microseconds next to an HTTPS round trip. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "json.h"
#include "popsift.h"

/* Replies are bounded by oauth-http.c; this is a second fence. */
#define JSON_MAX (1 << 20)

static int query(sqlite3 *db, const char *json, size_t n, const char *path, char **out,
		 int *type_num, char **err)
{
	sqlite3_stmt *st = NULL;
	const char *sql = "SELECT json_valid(?1), json_type(?1, ?2), json_extract(?1, ?2)";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return seterr(err, "JSON: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, json, (int)n, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	int rc = -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		seterr(err, "JSON: %s", sqlite3_errmsg(db));
	} else if (sqlite3_column_int(st, 0) != 1) {
		seterr(err, "the reply is not valid JSON");
	} else {
		const char *type = (const char *)sqlite3_column_text(st, 1);
		const char *v = (const char *)sqlite3_column_text(st, 2);
		rc = type != NULL && strcmp(type, "null") != 0 && v != NULL;
		*type_num = type && (!strcmp(type, "integer") || !strcmp(type, "real"));
		*out = rc == 1 ? xstrdup(v) : NULL;
	}
	sqlite3_finalize(st);
	return rc;
}

static int extract(const char *json, size_t n, const char *path, char **out, int *num,
		   char **err)
{
	*out = NULL;
	*num = 0;
	if (n > JSON_MAX)
		return seterr(err, "the reply is too long for JSON (%zu bytes)", n);
	if (memchr(json, '\0', n))
		return seterr(err, "the reply is not valid JSON (a NUL byte)");
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY,
			    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return seterr(err, "JSON: cannot open SQLite in memory");
	}
	int rc = query(db, json, n, path, out, num, err);
	sqlite3_close(db);
	return rc;
}

int json_get(const char *json, size_t n, const char *path, char **out, char **err)
{
	int num;
	return extract(json, n, path, out, &num, err);
}

int json_get_long(const char *json, size_t n, const char *path, long long *out, char **err)
{
	char *v = NULL;
	int num, rc = extract(json, n, path, &v, &num, err);
	if (rc == 1 && num) {
		*out = strtoll(v, NULL, 10);
	} else if (rc == 1) {
		/* "expires_in": "3599" — some servers quote numbers */
		char *end;
		long long x = strtoll(v, &end, 10);
		rc = *v && *end == '\0';
		if (rc)
			*out = x;
	}
	free(v);
	return rc;
}
