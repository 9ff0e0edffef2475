/* shard.c — which host of N polls an account.  The name is hashed
 * (FNV-1a, 64 bits) and the hash placed with Lamping and Veach's jump
 * consistent hash: adding an account moves no other, and going from N
 * to N+1 hosts moves only the accounts that land on the new one (about
 * 1/(N+1) of them), where hash % N would move nearly all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard.h"

static unsigned chosen_k, chosen_n;

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014). */
static unsigned jump_hash(uint64_t key, unsigned n)
{
	int64_t b = -1, j = 0;
	while (j < (int64_t)n) {
		b = j;
		key = key * 2862933555777941757ULL + 1;
		j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
	}
	return (unsigned)b;
}

unsigned shard_of(const char *name, unsigned n)
{
	return n <= 1 ? 1 : jump_hash(fnv1a(name), n) + 1;
}

static int parse_num(const char *s, const char **end, unsigned *out)
{
	char *e;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long v = strtoul(s, &e, 10);
	if (v == 0 || v > 1000000)
		return -1;
	*out = (unsigned)v;
	*end = e;
	return 0;
}

int shard_select(const char *spec, char **err)
{
	unsigned k, n;
	const char *e;
	if (spec == NULL || parse_num(spec, &e, &k) < 0 || *e != '/' ||
	    parse_num(e + 1, &e, &n) < 0 || *e != '\0' || k > n)
		return seterr(err, "--shard %s: expected K/N with 1 <= K <= N (this host's share "
			      "of N), e.g. --shard 2/3", spec ? spec : "");
	chosen_k = k;
	chosen_n = n;
	return 0;
}

void shard_chosen(unsigned *k, unsigned *n)
{
	*k = chosen_k;
	*n = chosen_n;
}

void shard_apply(struct config *cf)
{
	if (chosen_n == 0)
		return;
	struct config dropped = { 0 };
	struct account *a = cf->accounts, *next, **keep = &cf->accounts, **drop = &dropped.accounts;
	for (; a; a = next) {
		next = a->next;
		a->next = NULL;
		if (shard_of(a->name, chosen_n) == chosen_k) {
			*keep = a;
			keep = &a->next;
		} else {
			*drop = a;
			drop = &a->next;
		}
	}
	*keep = NULL;
	conf_free(&dropped);
}

int shard_check_names(const struct config *cf, char *const *names, int n_names)
{
	unsigned k, n;
	shard_chosen(&k, &n);
	for (int i = 0; i < n_names; i++) {
		const struct account *a = cf->accounts;
		while (a && strcmp(a->name, names[i]) != 0)
			a = a->next;
		if (a == NULL) {
			log_err(NULL, "no account \"%s\" in %s", names[i], cf->file);
			return EX_USAGE;
		}
		if (n > 0 && shard_of(a->name, n) != k) {
			log_err(NULL, "account \"%s\" is in shard %u/%u, not %u/%u", a->name,
				shard_of(a->name, n), n, k, n);
			return EX_USAGE;
		}
	}
	return 0;
}
