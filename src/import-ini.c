/* import-ini.c — the INI files getmail6 reads with Python's ConfigParser
 * ([section], `key = value` or `key: value`, # and ; comment lines,
 * indented continuation lines, keys case-insensitive), and the Python
 * tuples of strings its values hold: ('a', "b").  Pure: text in. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import-ini.h"
#include "popsift.h"

static void add(struct ini *in, const char *sec, const char *key, const char *val, int line)
{
	in->v = xrealloc(in->v, (in->n + 1) * sizeof *in->v);
	struct ini_kv *kv = &in->v[in->n++];
	*kv = (struct ini_kv){ xstrdup(sec), xstrdup(key), xstrdup(val), line };
	for (char *p = kv->key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* An indented line goes on the value above it, after a newline. */
static void continue_value(struct ini *in, const char *s)
{
	struct ini_kv *kv = &in->v[in->n - 1];
	char *n = xasprintf("%s\n%s", kv->val, s);
	free(kv->val);
	kv->val = n;
}

static int one_line(struct ini *in, const char *file, int line, char *s, char **sec, char **err)
{
	int indented = *s == ' ' || *s == '\t';
	s += strspn(s, " \t");
	trim(s);
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (indented && in->n > 0 && *sec && strcmp(in->v[in->n - 1].section, *sec) == 0) {
		continue_value(in, s);
		return 0;
	}
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (end == NULL)
			return seterr(err, "%s:%d: a section name without ]", file, line);
		free(*sec);
		*sec = xstrndup(s + 1, (size_t)(end - s - 1));
		return 0;
	}
	size_t k = strcspn(s, "=:");
	if (s[k] == '\0' || *sec == NULL)
		return seterr(err, "%s:%d: %s", file, line, *sec ? "expected key = value" :
			      "a key before any [section]");
	char *val = s + k + 1;
	s[k] = '\0';
	trim(s);
	val += strspn(val, " \t");
	add(in, *sec, s, val, line);
	return 0;
}

int ini_parse(const char *file, const char *text, struct ini *in, char **err)
{
	char *copy = xstrdup(text), *sec = NULL;
	int line = 0, rc = 0;
	for (char *s = copy, *next; rc == 0 && s && *s; s = next) {
		next = strchr(s, '\n');
		if (next)
			*next++ = '\0';
		rc = one_line(in, file, ++line, s, &sec, err);
	}
	free(sec);
	free(copy);
	return rc;
}

const char *ini_get(const struct ini *in, const char *sec, const char *key, int *line)
{
	for (size_t i = in->n; i-- > 0;)
		if (strcmp(in->v[i].section, sec) == 0 && strcasecmp(in->v[i].key, key) == 0) {
			if (line)
				*line = in->v[i].line;
			return in->v[i].val;
		}
	return NULL;
}

int ini_bool(const char *v, int dflt)
{
	static const char *const yes[] = { "1", "yes", "true", "on", NULL };
	static const char *const no[] = { "0", "no", "false", "off", NULL };
	for (int i = 0; v && yes[i]; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return dflt;
}

void ini_free(struct ini *in)
{
	for (size_t i = 0; i < in->n; i++) {
		free(in->v[i].section);
		free(in->v[i].key);
		free(in->v[i].val);
	}
	free(in->v);
	in->v = NULL;
	in->n = 0;
}

/* One Python string literal at *s ('...' or "..."), escapes resolved. */
static char *py_string(const char **s)
{
	char q = **s;
	if (q != '\'' && q != '"')
		return NULL;
	const char *p = *s + 1;
	char *o = xmalloc(strlen(p) + 1), *w = o;
	for (; *p && *p != q; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			*w++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	if (*p != q) {
		free(o);
		return NULL;
	}
	*s = p + 1;
	return o;
}

char **py_tuple(const char *s)
{
	size_t n = 0;
	char **v = xcalloc(1, sizeof *v);
	s += strspn(s, " \t\n");
	int paren = *s == '(';
	s += paren;
	for (;;) {
		s += strspn(s, " \t\n");
		if (*s == ')' || *s == '\0')
			break;
		char *w = py_string(&s);
		if (w == NULL)
			goto bad;
		v = xrealloc(v, (n + 2) * sizeof *v);
		v[n++] = w;
		v[n] = NULL;
		s += strspn(s, " \t\n");
		if (*s == ',')
			s++;
		else if (*s != ')' && *s != '\0')
			goto bad;
	}
	if ((paren && *s != ')') || (!paren && n != 1) || (*s == ')' && s[1 + strspn(s + 1,
								      " \t\n")] != '\0'))
		goto bad;
	return v;
bad:
	free_argv(v);
	return NULL;
}
