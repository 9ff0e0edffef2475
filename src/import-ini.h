/* import-ini.h — getmail6's INI files and Python tuples (import-ini.c),
 * for the getmailrc converter (import-getmail.c). */
#ifndef IMPORT_INI_H
#define IMPORT_INI_H

#include <stddef.h>

struct ini_kv {
	char *section, *key, *val;      /* key lower-cased */
	int   line;
};

struct ini {
	struct ini_kv *v;
	size_t n;
};

/* -1 with *err ("file:line: ...") on a line ConfigParser refuses too. */
int  ini_parse(const char *file, const char *text, struct ini *in, char **err);
/* The last value of key in sec; NULL if none. */
const char *ini_get(const struct ini *in, const char *sec, const char *key, int *line);
/* ConfigParser's booleans; dflt when v is NULL or none of them. */
int  ini_bool(const char *v, int dflt);
void ini_free(struct ini *in);
/* ('a', "b") or ("a",) or "a": the strings, NULL-terminated (free_argv);
 * NULL if it is not such a tuple. */
char **py_tuple(const char *s);

#endif
