/* uidmap.h — UIDL -> state, an open-addressing hash table, so the diff
 * against thousands of kept messages costs one pass. */
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
struct uidmap {
	struct uident *tab;
	size_t cap, n;
};

void uidmap_init(struct uidmap *m);
void uidmap_free(struct uidmap *m);
void uidmap_put(struct uidmap *m, const char *key, int val);
int  uidmap_get(const struct uidmap *m, const char *key);   /* M_NONE if absent */
struct uident *uidmap_find(const struct uidmap *m, const char *key);   /* NULL if absent */

const char *mstate_name(int st);
int  mstate_parse(const char *s);

#endif
