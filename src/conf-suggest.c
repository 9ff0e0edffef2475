/* conf-suggest.c — "did you mean": the known key nearest to a mistyped
 * one, by edit distance (a swap of two neighbours counts as one edit,
 * case does not count).  conf.c offers it its key table; the keys it
 * handles by hand are listed here. */
#include <ctype.h>
#include <string.h>

#include "conf-suggest.h"

/* Keys conf.c (and route.c) read outside its keys[] table. */
static const char *const special[] = {
	"defaults", "account", "state", "max_parallel", "lock_wait", "log", "provider",
	"imap_provider", "deliver", "envelope_header", "local_domains", "local_user",
	"local_users",
};

#define MAXLEN 64

/* Optimal string alignment distance; words past MAXLEN are far from all. */
int edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n >= MAXLEN || m >= MAXLEN)
		return MAXLEN;
	int d[MAXLEN + 1][MAXLEN + 1];
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			int v = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[n][m];
}

void suggest_try(struct suggest *s, const char *cand)
{
	int d = edit_distance(s->word, cand);
	if (s->best == NULL || d < s->dist) {
		s->best = cand;
		s->dist = d;
	}
}

/* Close enough to be the likely meaning: a typo or two, not another word. */
const char *suggest_result(struct suggest *s)
{
	for (size_t i = 0; i < sizeof special / sizeof *special; i++)
		suggest_try(s, special[i]);
	size_t len = strlen(s->word);
	int most = len <= 3 ? 1 : len <= 8 ? 2 : 3;
	return s->best && s->dist <= most ? s->best : NULL;
}
