/* import-util.c — what the config converters (fetchmailrc, mpoprc,
 * getmailrc) share: writing a value or a command so that popsift's
 * config reader (conf.c split_line) and split_args read back exactly
 * what the old tool meant, and commenting an account out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "popsift.h"

int import_put(FILE *out, const char *key, const char *v)
{
	if (strpbrk(v, "\r\n") != NULL)
		return -1;
	if (*v != '\0' && strpbrk(v, " \t#\"\\") == NULL) {
		fprintf(out, "%s %s\n", key, v);
		return 0;
	}
	fprintf(out, "%s \"", key);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', out);
		fputc(*v, out);
	}
	fputs("\"\n", out);
	return 0;
}

/* A config line cuts a command at " #" even inside quotes (split_line
 * keeps a command's quotes for split_args), so such a word has no form. */
static int unwritable(const char *s)
{
	return strpbrk(s, "\r\n") != NULL || strstr(s, " #") != NULL || strstr(s, "\t#") != NULL;
}

char *import_shell_quote(const char *s)
{
	if (unwritable(s))
		return NULL;
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789/._-+=:,@%") == strlen(s))
		return xstrdup(s);
	size_t n = 2;
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *o = xmalloc(n + 1), *w = o;
	*w++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(w, "'\\''", 4);
			w += 4;
		} else {
			*w++ = *s;
		}
	}
	*w++ = '\'';
	*w = '\0';
	return o;
}

char *import_join_argv(char *const *argv)
{
	char *all = xstrdup("");
	for (size_t i = 0; argv[i]; i++) {
		char *q = import_shell_quote(argv[i]);
		if (q == NULL) {
			free(all);
			return NULL;
		}
		char *n = xasprintf("%s%s%s", all, i ? " " : "", q);
		free(q);
		free(all);
		all = n;
	}
	return all;
}

void import_comment_out(FILE *out, const char *text, const char *prefix)
{
	while (*text) {
		size_t n = strcspn(text, "\n");
		fprintf(out, "%s%.*s\n", n ? prefix : "#", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

/* Lines a converter left: "# could not convert: ..." (also in a
 * commented-out account, "#~ # could not convert: ...").  A count;
 * out NULL only counts. */
int import_list_lost(const char *path, FILE *out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int n = 0;
	for (long no = 1; getline(&line, &cap, f) >= 0; no++) {
		const char *s = line + strspn(line, " \t#~");
		if (line[strspn(line, " \t")] != '#' ||
		    strncmp(s, IMPORT_LOST_MARK, strlen(IMPORT_LOST_MARK)) != 0)
			continue;
		s += strlen(IMPORT_LOST_MARK);
		if (out)
			fprintf(out, "%s:%ld: could not convert:%.*s\n", path, no, (int)strcspn(s, "\r\n"), s);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}
