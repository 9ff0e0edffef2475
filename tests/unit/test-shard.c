/* test-shard.c — an account's shard depends on its name and N alone, the
 * shards partition the accounts, and growing N moves few of them. */
#include <stdlib.h>
#include "unit.h"
#include "shard.h"

/* Pinned: a change of hash would move accounts between hosts that share
 * a config.  Computed apart (FNV-1a 64 + jump consistent hash, Python). */
static void pinned(void)
{
	static const struct { const char *name; unsigned s2, s3, s10, s1000; } t[] = {
		{ "alice", 1, 1, 5, 962 },
		{ "bob", 1, 3, 3, 750 },
		{ "work", 1, 1, 1, 384 },
		{ "user0@example.org", 2, 2, 7, 124 },
		{ "\xe6\x9d\x8e", 1, 1, 9, 782 },
	};
	int ok = 1;
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		ok &= shard_of(t[i].name, 2) == t[i].s2 && shard_of(t[i].name, 3) == t[i].s3 &&
		      shard_of(t[i].name, 10) == t[i].s10 && shard_of(t[i].name, 1000) == t[i].s1000;
	CHECK(ok, "pinned shards of known names");
	CHECK(shard_of("anything", 1) == 1 && shard_of("", 1) == 1, "1 shard: everything in it");
}

static void spread_and_growth(void)
{
	enum { NAMES = 10000, N = 10 };
	int count[N + 2] = { 0 }, in_range = 1, moved_only_to_new = 1, moved = 0;
	char name[32];
	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof name, "user%d@example.org", i);
		unsigned s = shard_of(name, N), s1 = shard_of(name, N + 1);
		in_range &= s >= 1 && s <= N && s1 >= 1 && s1 <= N + 1;
		if (s >= 1 && s <= N)
			count[s]++;
		if (s1 != s) {
			moved++;
			moved_only_to_new &= s1 == N + 1;
		}
	}
	CHECK(in_range, "shards are 1..N");
	int balanced = 1;
	for (int k = 1; k <= N; k++)
		balanced &= count[k] > NAMES / N * 8 / 10 && count[k] < NAMES / N * 12 / 10;
	CHECK(balanced, "10,000 names spread evenly over 10 shards (within 20%)");
	CHECK(moved_only_to_new, "N -> N+1: an account moves only to the new shard");
	CHECK(moved > NAMES / (N + 1) * 8 / 10 && moved < NAMES / (N + 1) * 12 / 10,
	      "N -> N+1: about 1/(N+1) of the accounts move");
}

static void parse(void)
{
	char *err = NULL;
	unsigned k, n;
	const char *bad[] = { "0/3", "4/3", "1/0", "a/b", "1/3x", "13", "", "-1/2", "1/", "/2",
			      " 1/2", "1/2000000" };
	int refused = 1;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		refused &= shard_select(bad[i], &err) < 0 && err != NULL;
		free(err);
		err = NULL;
	}
	CHECK(refused, "bad K/N refused with a message");
	shard_chosen(&k, &n);
	CHECK(k == 0 && n == 0, "nothing chosen after refusals");
	CHECK(shard_select("2/3", &err) == 0, "2/3 accepted");
	shard_chosen(&k, &n);
	CHECK(k == 2 && n == 3, "2/3 chosen");
}

static void apply(void)
{
	struct config cf;
	char *err = NULL, text[4096] = "defaults\nstate /tmp/popsift-test-shard.db\n";
	const char *names[] = { "alice", "bob", "work", "user0@example.org", "x", "y", "z" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text),
			 "account %s\nhost localhost\nuser u\npassword p\ndeliver mbox /tmp/x\n",
			 names[i]);
	CHECK(conf_parse("test", text, &cf, &err) == 0, "config parsed");
	shard_apply(&cf);   /* 2/3 from parse() */
	int ok = 1;
	const struct account *a = cf.accounts;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (shard_of(names[i], 3) != 2)
			continue;
		ok &= a != NULL && strcmp(a->name, names[i]) == 0;
		a = a ? a->next : NULL;
	}
	CHECK(ok && a == NULL, "shard_apply keeps exactly its shard's accounts, in order");
	conf_free(&cf);
}

int main(void)
{
	pinned();
	spread_and_growth();
	parse();
	apply();
	return UNIT_DONE();
}
