/* import-uidl.c — read the UIDL lists that fetchmail (.fetchids), mpop
 * (uidls file) and getmail (oldmail-*) keep of what they already fetched.
 * Formats checked against files the Debian packages wrote (fetchmail
 * 6.4, mpop 1.4, getmail6 6.18). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"
#include "popsift.h"

static struct uidlist *list_new(struct uidlist **head, const char *user, const char *host)
{
	struct uidlist *l = xcalloc(1, sizeof *l), **tail = head;
	l->user = xstrdup(user);
	l->host = xstrdup(host);
	while (*tail)
		tail = &(*tail)->next;
	*tail = l;
	return l;
}

static struct uidlist *list_for(struct uidlist **head, const char *user, const char *host)
{
	for (struct uidlist *l = *head; l; l = l->next)
		if (strcmp(l->user, user) == 0 && strcmp(l->host, host) == 0)
			return l;
	return list_new(head, user, host);
}

static void list_add(struct uidlist *l, const char *uidl, size_t len, long long when)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->uidls = xrealloc(l->uidls, l->cap * sizeof *l->uidls);
		l->when = xrealloc(l->when, l->cap * sizeof *l->when);
	}
	l->uidls[l->n] = xstrndup(uidl, len);
	l->when[l->n++] = when;
}

void uidlists_free(struct uidlist *l)
{
	while (l) {
		struct uidlist *next = l->next;
		for (size_t i = 0; i < l->n; i++)
			free(l->uidls[i]);
		free(l->uidls);
		free(l->when);
		free(l->user);
		free(l->host);
		free(l->raw);
		free(l);
		l = next;
	}
}

/* The next line of text (without its CR LF), or NULL at the end. */
static char *next_line(const char **p)
{
	if (**p == '\0')
		return NULL;
	size_t n = strcspn(*p, "\n");
	char *line = xstrndup(*p, n);
	*p += n + ((*p)[n] == '\n');
	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	return line;
}

static int fail(struct uidlist **out, char *line, char **err, int lineno, const char *what)
{
	seterr(err, "line %d: %s", lineno, what);
	free(line);
	uidlists_free(*out);
	*out = NULL;
	return -1;
}

/* "user@host UIDL": the user may hold an '@', the UIDL no blank. */
static int fetchids_line(struct uidlist **out, char *line)
{
	char *sp = strrchr(line, ' ');
	if (sp == NULL || sp[1] == '\0')
		return -1;
	*sp = '\0';
	char *at = strrchr(line, '@');
	if (at == NULL || at == line || at[1] == '\0')
		return -1;
	*at = '\0';
	struct uidlist *l = list_for(out, line, at + 1);
	list_add(l, sp + 1, strlen(sp + 1), 0);
	return 0;
}

int parse_fetchids(const char *text, struct uidlist **out, char **err)
{
	*out = NULL;
	char *line;
	for (int n = 1; (line = next_line(&text)) != NULL; n++) {
		if (line[0] != '\0' && line[0] != '#' && fetchids_line(out, line) < 0)
			return fail(out, line, err, n, "expected \"user@host UIDL\"");
		free(line);
	}
	return 0;
}

/* " N host user": the start of a list of N UIDLs. */
static int mpop_header(struct uidlist **out, const char *line, long *count)
{
	char *end;
	if (line[0] != ' ' || !isdigit((unsigned char)line[1]))
		return -1;
	*count = strtol(line + 1, &end, 10);
	if (*count < 1 || *end != ' ')
		return -1;
	const char *host = end + 1, *sp = strchr(host, ' ');
	if (sp == NULL || sp == host || sp[1] == '\0')
		return -1;
	char *h = xstrndup(host, (size_t)(sp - host));
	list_new(out, sp + 1, h);
	free(h);
	return 0;
}

int parse_mpop_uidls(const char *text, struct uidlist **out, char **err)
{
	*out = NULL;
	struct uidlist *cur = NULL;
	long left = 0;
	int comments = 1;       /* mpop allows them only at the top */
	char *line;
	int n = 1;
	for (; (line = next_line(&text)) != NULL; n++, free(line)) {
		if (comments && line[0] == '#')
			continue;
		comments = 0;
		if (left > 0) {
			list_add(cur, line, strlen(line), 0);
			left--;
			continue;
		}
		if (line[0] == '\0')
			continue;
		if (mpop_header(out, line, &left) < 0)
			return fail(out, line, err, n,
				    "expected \" number-of-uids hostname user\"");
		for (cur = *out; cur->next; cur = cur->next)
			;
	}
	if (left > 0)
		return fail(out, NULL, err, n, "the file ends inside a list of UIDs");
	return 0;
}

/* "HOST-PORT-USER": the first "-digits-" separates them (a host name with
 * such a part is ambiguous; raw keeps the whole for matching). */
static int getmail_name(struct uidlist **out, const char *name, char **err)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(base, "oldmail-", 8) != 0)
		return seterr(err, "%s: not a getmail oldmail-HOST-PORT-USER file name", base);
	const char *raw = base + 8;
	for (const char *d = strchr(raw, '-'); d; d = strchr(d + 1, '-')) {
		size_t digits = strspn(d + 1, "0123456789");
		if (d == raw || digits == 0 || d[1 + digits] != '-' || d[2 + digits] == '\0')
			continue;
		char *host = xstrndup(raw, (size_t)(d - raw));
		struct uidlist *l = list_new(out, d + 2 + digits, host);
		free(host);
		l->port = atoi(d + 1);
		l->raw = xstrdup(raw);
		return 0;
	}
	return seterr(err, "%s: not a getmail oldmail-HOST-PORT-USER file name", base);
}

int parse_getmail_oldmail(const char *name, const char *data, size_t len,
			  struct uidlist **out, char **err)
{
	*out = NULL;
	if (getmail_name(out, name, err) < 0)
		return -1;
	const char *p = data, *end = data + len;
	for (int n = 1; p < end; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *nul = memchr(p, '\0', (size_t)(eol - p));
		if (eol > p && (nul == NULL || nul == p))
			return fail(out, NULL, err, n, "expected \"UIDL\\0timestamp\"");
		if (eol > p) {
			char ts[32];
			size_t tl = (size_t)(eol - nul - 1);
			int w = (int)(tl < sizeof ts ? tl : sizeof ts - 1);
			snprintf(ts, sizeof ts, "%.*s", w, nul + 1);
			list_add(*out, p, (size_t)(nul - p), strtoll(ts, NULL, 10));
		}
		p = eol + 1;
	}
	return 0;
}
