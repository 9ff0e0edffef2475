/* conf-suggest.h — the nearest known key to an unknown one (conf-suggest.c). */
#ifndef CONF_SUGGEST_H
#define CONF_SUGGEST_H

struct suggest {
	const char *word;    /* the unknown key */
	const char *best;    /* the nearest candidate so far */
	int dist;
};

int  edit_distance(const char *a, const char *b);
/* Offer a candidate. */
void suggest_try(struct suggest *s, const char *cand);
/* After the caller's candidates: tries the keys conf.c reads by hand,
 * and returns the best if it is near enough, else NULL. */
const char *suggest_result(struct suggest *s);

#endif
