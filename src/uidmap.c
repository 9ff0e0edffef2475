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

/* Keys are copied into 64 KB chunks, freed together. */
struct uidchunk {
	struct uidchunk *next;
	size_t used, cap;
	char data[];
};
#define CHUNK (64u << 10)

/* Grow at 3/4 full: linear probing stays short, a slot costs 24 bytes. */
static int full(size_t n, size_t cap)
{
	return (n + 1) * 4 > cap * 3;
}

void uidmap_init(struct uidmap *m)
{
	memset(m, 0, sizeof *m);
}

void uidmap_free(struct uidmap *m)
{
	while (m->chunks) {
		struct uidchunk *c = m->chunks;
		m->chunks = c->next;
		free(c);
	}
	free(m->tab);
	memset(m, 0, sizeof *m);
}

static char *intern(struct uidmap *m, const char *key)
{
	size_t n = strlen(key) + 1;
	struct uidchunk *c = m->chunks;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > CHUNK ? n : CHUNK;
		c = xmalloc(sizeof *c + cap);
		c->used = 0;
		c->cap = cap;
		c->next = m->chunks;
		m->chunks = c;
	}
	char *k = memcpy(c->data + c->used, key, n);
	c->used += n;
	return k;
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
	if (full(m->n, m->cap))
		grow(m);
	struct uident *e = slot(m, key);
	if (e->key == NULL) {
		e->key = intern(m, key);
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

void uidset_init(struct uidset *s)
{
	memset(s, 0, sizeof *s);
}

void uidset_free(struct uidset *s)
{
	free(s->slot);
	memset(s, 0, sizeof *s);
}

static const char **set_slot(const struct uidset *s, const char *key)
{
	size_t i = hash(key) & (s->cap - 1);
	while (s->slot[i] && strcmp(s->slot[i], key) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->slot[i];
}

int uidset_add(struct uidset *s, const char *key)
{
	if (full(s->n, s->cap)) {
		struct uidset old = *s;
		s->cap = old.cap ? old.cap * 2 : 1024;
		s->slot = xcalloc(s->cap, sizeof *s->slot);
		for (size_t i = 0; i < old.cap; i++)
			if (old.slot[i])
				*set_slot(s, old.slot[i]) = old.slot[i];
		free(old.slot);
	}
	const char **e = set_slot(s, key);
	if (*e)
		return 0;
	*e = key;
	s->n++;
	return 1;
}

int uidset_has(const struct uidset *s, const char *key)
{
	return s->cap > 0 && *set_slot(s, key) != NULL;
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
