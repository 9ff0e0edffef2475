/* date.c — RFC 5322 dates, as IMAP's internal date and the `age` rule
 * read them.  Pure: unit-tested in tests/unit/test-imap.c and test-rules.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "date.h"

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* The next word of a date: letters, digits or a sign and digits;
 * comments and separators skipped. */
static size_t date_word(const char **p, const char *end, const char **w)
{
	const char *s = *p;
	for (int depth = 0; s < end; s++) {
		if (*s == '(')
			depth++;
		else if (*s == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !strchr(" \t\r\n,", *s))
			break;
	}
	*w = s;
	if (s < end && (*s == '+' || *s == '-'))
		s++;
	while (s < end && (isalnum((unsigned char)*s) || *s == ':'))
		s++;
	*p = s;
	return (size_t)(s - *w);
}

static int zone_offset(const char *w, size_t n, int *off)
{
	static const struct { const char *z; int h; } zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 }, { "EST", -5 }, { "EDT", -4 },
		{ "CST", -6 }, { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 },
		{ "PDT", -7 },
	};
	*off = 0;
	if (n == 5 && (w[0] == '+' || w[0] == '-') && strspn(w + 1, "0123456789") >= 4) {
		int v = (w[1] - '0') * 600 + (w[2] - '0') * 60 + (w[3] - '0') * 10 + (w[4] - '0');
		*off = w[0] == '-' ? -v : v;
		return (w[3] - '0') * 10 + (w[4] - '0') < 60 ? 0 : -1;
	}
	for (size_t i = 0; i < sizeof zones / sizeof *zones; i++)
		if (strlen(zones[i].z) == n && strncasecmp(w, zones[i].z, n) == 0) {
			*off = zones[i].h * 60;
			return 0;
		}
	return 0;   /* an unknown zone is -0000 (RFC 5322 4.3) */
}

static int month_of(const char *w, size_t n)
{
	for (int m = 0; m < 12; m++)
		if (n >= 3 && strncasecmp(w, months[m], 3) == 0)
			return m;
	return -1;
}

int date_parse(const char *s, size_t n, time_t *t, int *off_min)
{
	const char *end = s + n, *w;
	size_t wl = date_word(&s, end, &w);
	if (wl > 0 && isalpha((unsigned char)w[0]))   /* the day of the week */
		wl = date_word(&s, end, &w);
	struct tm tm = { 0 };
	int hh = 0, mi = 0, ss = 0;
	if (wl == 0 || wl > 2 || !isdigit((unsigned char)w[0]))
		return -1;
	tm.tm_mday = atoi(w);
	wl = date_word(&s, end, &w);
	if ((tm.tm_mon = month_of(w, wl)) < 0)
		return -1;
	wl = date_word(&s, end, &w);
	if (wl < 2 || wl > 4 || strspn(w, "0123456789") < wl)
		return -1;
	int year = atoi(w);
	year += wl == 2 ? (year < 50 ? 2000 : 1900) : wl == 3 ? 1900 : 0;
	wl = date_word(&s, end, &w);
	if (wl < 4 || sscanf(w, "%2d:%2d:%2d", &hh, &mi, &ss) < 2)
		return -1;
	wl = date_word(&s, end, &w);
	if (zone_offset(w, wl, off_min) < 0 || year < 1970 || year > 9999 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || hh > 23 || mi > 59 || ss > 60)
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mi;
	tm.tm_sec = ss > 59 ? 59 : ss;
	*t = timegm(&tm) - (time_t)*off_min * 60;
	return 0;
}

const char *date_month_name(int m)
{
	return m >= 0 && m < 12 ? months[m] : "???";
}
