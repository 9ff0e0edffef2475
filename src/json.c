/* json.c — json_extract on an in-memory SQLite database.  A connection per
 * call: the sending thread and the fetch thread both refresh tokens, and
 * an in-memory database costs microseconds next to an HTTPS round trip. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "json.h"
#include "popsift.h"

/* Replies are bounded by oauth-http.c; this is a second fence. */
#define JSON_MAX (1 << 20)

enum { KIND_INT = 1, KIND_REAL, KIND_TEXT };

static int query(sqlite3 *db, const char *json, size_t n, const char *path, char **out,
		 int *kind, char **err)
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
		*kind = type == NULL ? 0 : !strcmp(type, "integer") ? KIND_INT :
			!strcmp(type, "real") ? KIND_REAL : !strcmp(type, "text") ? KIND_TEXT : 0;
		*out = rc == 1 ? xstrdup(v) : NULL;
	}
	sqlite3_finalize(st);
	return rc;
}

static int extract(const char *json, size_t n, const char *path, char **out, int *kind,
		   char **err)
{
	*out = NULL;
	*kind = 0;
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
	int rc = query(db, json, n, path, out, kind, err);
	sqlite3_close(db);
	return rc;
}

int json_get(const char *json, size_t n, const char *path, char **out, char **err)
{
	int kind;
	return extract(json, n, path, out, &kind, err);
}

int json_get_string(const char *json, size_t n, const char *path, char **out, char **err)
{
	int kind, rc = extract(json, n, path, out, &kind, err);
	if (rc == 1 && kind != KIND_TEXT) {
		free(*out);
		*out = NULL;
		rc = 0;
	}
	return rc;
}

/* strtoll saturates; 1e300 must not read as 1 (strtoll stops at '.') */
static long long real_to_long(const char *v)
{
	double d = strtod(v, NULL);
	return d >= 9.2e18 ? LLONG_MAX : d <= -9.2e18 ? LLONG_MIN : (long long)d;
}

int json_get_long(const char *json, size_t n, const char *path, long long *out, char **err)
{
	char *v = NULL;
	int kind, rc = extract(json, n, path, &v, &kind, err);
	if (rc == 1 && kind == KIND_INT) {
		*out = strtoll(v, NULL, 10);
	} else if (rc == 1 && kind == KIND_REAL) {
		*out = real_to_long(v);
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
