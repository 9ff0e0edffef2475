/* pop3-parse.c — the words of POP3 replies (RFC 1939, CAPA of RFC
 * 2449, the greeting's APOP timestamp), pure and bounded, unit tested:
 * the command engine (pop3.c) and the short way in (curlconn.c) both
 * read them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pop3.h"
#include "popsift.h"

int pop3_status(const char *line, size_t n)
{
	/* lenient on what follows, as real servers vary ("+OK.", "-ERR:") */
	if (n >= 3 && memcmp(line, "+OK", 3) == 0)
		return 1;
	if (n >= 4 && memcmp(line, "-ERR", 4) == 0)
		return 0;
	return -1;
}

static int parse_num(const char **s, const char *end, unsigned long long *v)
{
	const char *p = *s;
	unsigned long long n = 0;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (n > (~0ull - 9) / 10)
			return -1;
		n = n * 10 + (unsigned)(*p - '0');
	}
	*s = p;
	*v = n;
	return 0;
}

/* "N UID": the UID is 1-70 printable characters (RFC 1939 7).  "N" or
 * "N " alone is a message the server gives no UID (1), which costs that
 * message its identity, not the whole listing. */
int pop3_parse_uidl(const char *line, size_t n, unsigned long *num, const char **uid,
		    size_t *uidlen)
{
	const char *s = line, *end = line + n;
	unsigned long long v;
	if (parse_num(&s, end, &v) < 0 || v == 0 || (s < end && *s != ' ' && *s != '\t'))
		return -1;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	const char *u = s;
	while (s < end && *s > 0x20 && *s < 0x7f)
		s++;
	if (s - u > 512)
		return -1;
	const char *t = s;
	while (t < end && (*t == ' ' || *t == '\t'))
		t++;
	if (t != end)
		return -1;
	*num = (unsigned long)v;
	*uid = u;
	*uidlen = (size_t)(s - u);
	return s == u;
}

/* STAT's "COUNT SIZE [anything]"; unlike a LIST line the count may be 0. */
int pop3_parse_stat(const char *line, size_t n, unsigned long *count, unsigned long long *size)
{
	const char *s = line, *end = line + n;
	unsigned long long v;
	if (parse_num(&s, end, &v) < 0 || s >= end || *s != ' ')
		return -1;
	while (s < end && *s == ' ')
		s++;
	if (parse_num(&s, end, size) < 0 || (s < end && *s != ' '))
		return -1;
	*count = (unsigned long)v;
	return 0;
}

/* "N SIZE [anything]" */
int pop3_parse_list(const char *line, size_t n, unsigned long *num, unsigned long long *size)
{
	const char *s = line, *end = line + n;
	unsigned long long v;
	if (parse_num(&s, end, &v) < 0 || v == 0 || s >= end || *s != ' ')
		return -1;
	while (s < end && *s == ' ')
		s++;
	if (parse_num(&s, end, size) < 0)
		return -1;
	if (s < end && *s != ' ')
		return -1;
	*num = (unsigned long)v;
	return 0;
}

static int strcasestr_n(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp(s + i, word, w) == 0)
			return 1;
	return 0;
}

static int capa_is(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n >= k && strncasecmp(line, name, k) == 0 &&
	       (n == k || line[k] == ' ' || line[k] == '\t');
}

void pop3_capa_line(struct caps *k, const char *line, size_t n)
{
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	k->pipelining |= capa_is(line, n, "PIPELINING");
	k->user |= capa_is(line, n, "USER");
	k->uidl |= capa_is(line, n, "UIDL");
	k->top |= capa_is(line, n, "TOP");
	k->stls |= capa_is(line, n, "STLS");
	if (capa_is(line, n, "IMPLEMENTATION"))
		k->split_login |= strcasestr_n(line, n, "courier");
	if (capa_is(line, n, "SASL")) {
		size_t skip = 4;
		while (skip < n && (line[skip] == ' ' || line[skip] == '\t'))
			skip++;
		/* an empty list offers nothing, as no SASL line */
		snprintf(k->sasl, sizeof k->sasl, "%.*s", (int)(n - skip), line + skip);
	}
}

/* As libcurl decides it (a '<' with an '@' after it): where libcurl
 * would log in with APOP, the short way must not send USER/PASS. */
int pop3_greeting_ts(const char *line, size_t n)
{
	const char *lt = memchr(line, '<', n);
	return lt != NULL && memchr(lt, '@', n - (size_t)(lt - line)) != NULL;
}
