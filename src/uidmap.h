/* uidmap.h — UIDL -> state, an open-addressing hash table, so the diff
 * against thousands of kept messages costs one pass.  Keys live in the
 * map's own chunks, not one malloc each: a listing of a million
 * messages must stay in bounded memory per message. */
#ifndef UIDMAP_H
#define UIDMAP_H

#include <stddef.h>

/* M_DEFERRED: the SMTP server said "later" (retried); M_REJECTED: it
 * refused (5xx), left on the server and reported, not retried. */
enum mstate { M_NONE = 0, M_SEEN, M_DELIVERED, M_DELETED, M_SKIPPED, M_FAILED,
	      M_DEFERRED, M_REJECTED, M_LAST = M_REJECTED };

struct uident {
	char *key;
	int   val;
	long long first_seen;    /* unix time, 0 if unknown */
};
struct uidchunk;
struct uidmap {
	struct uident *tab;
	size_t cap, n;
	struct uidchunk *chunks;   /* the keys */
};

/* A set of borrowed strings (the listing's UIDLs, which outlive it):
 * one pointer a slot, for "listed twice?" and "still listed?". */
struct uidset {
	const char **slot;
	size_t cap, n;
};

void uidmap_init(struct uidmap *m);
void uidmap_free(struct uidmap *m);
void uidmap_put(struct uidmap *m, const char *key, int val);
int  uidmap_get(const struct uidmap *m, const char *key);   /* M_NONE if absent */
struct uident *uidmap_find(const struct uidmap *m, const char *key);   /* NULL if absent */

void uidset_init(struct uidset *s);
void uidset_free(struct uidset *s);
int  uidset_add(struct uidset *s, const char *key);        /* 1 added, 0 already there */
int  uidset_has(const struct uidset *s, const char *key);

const char *mstate_name(int st);
int  mstate_parse(const char *s);

#endif
