/* shard.h — several hosts share one config: `--shard K/N` keeps the
 * accounts whose name hashes to shard K of N; the others are as if
 * absent from the config. */
#ifndef SHARD_H
#define SHARD_H

#include "popsift.h"

/* The shard (1..n) of an account name out of n: a function of the name
 * and n alone, never of the config's order or of the host. */
unsigned shard_of(const char *name, unsigned n);

/* Parse "K/N" (1 <= K <= N <= 1000000) and make it this process's
 * shard: 0, or -1 with *err (a usage error). */
int shard_select(const char *spec, char **err);

/* The shard chosen, or k = n = 0 when none was. */
void shard_chosen(unsigned *k, unsigned *n);

/* Drop the accounts outside the chosen shard from cf (nothing when no
 * shard was chosen). */
void shard_apply(struct config *cf);

/* Every account named is in the config and in this host's shard: 0, or
 * EX_USAGE with the reason logged. */
int shard_check_names(const struct config *cf, char *const *names, int n_names);

#endif
