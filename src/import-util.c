/* import-util.c — what the config converters (fetchmailrc, mpoprc,
 * getmailrc) share: writing a value or a command so that popsift's
 * config reader (conf.c split_line) and split_args read back exactly
 * what the old tool meant, and commenting an account out. */
#include <limits.h>
#include <stdarg.h>
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

void inotes_add(struct inotes *ns, int line, int lost, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text;
	if (vasprintf(&text, fmt, ap) < 0)
		text = xstrdup(fmt);
	va_end(ap);
	ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
	ns->v[ns->n++] = (struct inote){ .line = line, .lost = lost, .text = text };
}

void inotes_flush(FILE *out, const char *file, struct inotes *from, struct inotes *all)
{
	for (size_t i = 0; i < from->n; i++) {
		struct inote *n = &from->v[i];
		fprintf(out, "# %s %s (%s:%d)\n", n->lost ? IMPORT_LOST_MARK : "note:", n->text,
			file, n->line);
		all->v = xrealloc(all->v, (all->n + 1) * sizeof *all->v);
		all->v[all->n++] = *n;
	}
	free(from->v);
	from->v = NULL;
	from->n = 0;
}

/* An inherited setting (mpop's account X : Y) is said in each account
 * but counted and listed once. */
static int repeated(const struct inotes *all, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (all->v[j].line == all->v[i].line && !strcmp(all->v[j].text, all->v[i].text))
			return 1;
	return 0;
}

void inotes_summary(FILE *s, const char *file, int naccounts, const struct inotes *all)
{
	size_t lost = 0;
	for (size_t i = 0; i < all->n; i++)
		lost += (size_t)(all->v[i].lost && !repeated(all, i));
	fprintf(s, "popsift: %s: %d account%s converted", file, naccounts,
		naccounts == 1 ? "" : "s");
	fprintf(s, lost ? "; could not convert %zu setting%s:\n" : "; everything converted\n",
		lost, lost == 1 ? "" : "s");
	for (int line = 0, next; line != INT_MAX; line = next) {   /* by line, stable */
		next = INT_MAX;
		for (size_t i = 0; i < all->n; i++) {
			const struct inote *n = &all->v[i];
			if (n->lost && n->line == line && !repeated(all, i))
				fprintf(s, "  %s:%d: %s\n", file, n->line, n->text);
			if (n->lost && n->line > line && n->line < next)
				next = n->line;
		}
	}
}

void inotes_free(struct inotes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].text);
	free(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

#define SHELL_SYNTAX "|&;<>()$`\\\"'*?[]{}~=#!\t"

char *import_sh_command(const char *cmd)
{
	if (strpbrk(cmd, "\r\n") != NULL)
		return NULL;
	if (strpbrk(cmd, SHELL_SYNTAX) == NULL)
		return xstrdup(cmd + strspn(cmd, " "));
	char *q = import_shell_quote(cmd);
	char *all = q ? xasprintf("/bin/sh -c %s", q) : NULL;
	free(q);
	return all;
}

/* Letters, digits and . _ - + @ : an account name conf.c accepts. */
char *import_account_name(const char *s)
{
	char *n = xstrdup(*s ? s : "mail");
	for (char *p = n; *p; p++)
		if (strchr(" \t/#\"'\\", *p) || (unsigned char)*p < 0x20)
			*p = '_';
	return n;
}
