/* match-account.c — `account "name"` (which account the message came
 * from) and `all` (always true): conditions on the envelope, known
 * before the download. */
#include <stdlib.h>
#include <string.h>

#include "match.h"

static int parse_account(struct parser *p, void **data)
{
	size_t at;
	char *name;
	int rc = lx_word(&p->lx, &name, &at);
	if (rc < 0)
		return -1;
	if (rc == 0 || name[0] == '\0') {
		free(name);
		return lx_error(&p->lx, at, "expected an account name");
	}
	*data = name;
	return 0;
}

static int eval_account(const void *data, struct evalctx *x)
{
	return x->v->account != NULL && strcmp(x->v->account, data) == 0;
}

static void dump_account(const void *data, FILE *out)
{
	fprintf(out, " \"%s\"", (const char *)data);
}

static int eval_all(const void *data, struct evalctx *x)
{
	(void)data;
	(void)x;
	return T_TRUE;
}

const struct match_ops match_account = {
	.name = "account",
	.parse = parse_account,
	.eval = eval_account,
	.free = free,
	.needs_body = 0,
	.dump = dump_account,
};

const struct match_ops match_all = {
	.name = "all",
	.eval = eval_all,
	.needs_body = 0,
};
