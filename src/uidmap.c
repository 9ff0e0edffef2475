/* uidmap.c — see uidmap.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "popsift.h"
#include "uidmap.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void uidmap_init(struct uidmap *m)
{
	memset(m, 0, sizeof *m);
}

void uidmap_free(struct uidmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->tab[i].key);
	free(m->tab);
	memset(m, 0, sizeof *m);
}

static struct uident *slot(const struct uidmap *m, const char *key)
{
	size_t i = hash(key) & (m->cap - 1);
	while (m->tab[i].key && strcmp(m->tab[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->tab[i];
}

static void grow(struct uidmap *m)
{
	struct uidmap old = *m;
	m->cap = old.cap ? old.cap * 2 : 1024;
	m->tab = xcalloc(m->cap, sizeof *m->tab);
	for (size_t i = 0; i < old.cap; i++)
		if (old.tab[i].key)
			*slot(m, old.tab[i].key) = old.tab[i];
	free(old.tab);
}

void uidmap_put(struct uidmap *m, const char *key, int val)
{
	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	struct uident *e = slot(m, key);
	if (e->key == NULL) {
		e->key = xstrdup(key);
		m->n++;
	}
	e->val = val;
}

struct uident *uidmap_find(const struct uidmap *m, const char *key)
{
	if (m->cap == 0)
		return NULL;
	struct uident *e = slot(m, key);
	return e->key ? e : NULL;
}

int uidmap_get(const struct uidmap *m, const char *key)
{
	if (m->cap == 0)
		return M_NONE;
	return slot(m, key)->val;
}

static const char *const names[] = {
	[M_NONE] = "none", [M_SEEN] = "seen", [M_DELIVERED] = "delivered",
	[M_DELETED] = "deleted", [M_SKIPPED] = "skipped", [M_FAILED] = "failed",
	[M_DEFERRED] = "deferred", [M_REJECTED] = "rejected",
};

const char *mstate_name(int st)
{
	return st >= 0 && st <= M_LAST ? names[st] : "none";
}

int mstate_parse(const char *s)
{
	for (int i = 0; i <= M_LAST; i++)
		if (s && strcmp(s, names[i]) == 0)
			return i;
	return M_NONE;
}
