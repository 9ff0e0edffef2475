/* json.h — read values out of a JSON reply (OAuth2 token endpoints) with
 * SQLite's JSON functions: no JSON parser of our own, no new dependency.
 * json.c and state*.c are the only files that include sqlite3.h. */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>

/* The value at path ("$.access_token") of the n bytes of json, as text
 * (numbers in their JSON spelling, objects and arrays as JSON), malloc'd
 * in *out: 1 found, 0 absent or null, -1 not valid JSON (*err set). */
int json_get(const char *json, size_t n, const char *path, char **out, char **err);

/* The same for a number: 1 found (*out), 0 absent or not a number, -1 bad JSON. */
int json_get_long(const char *json, size_t n, const char *path, long long *out, char **err);

#endif
