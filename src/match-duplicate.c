/* match-duplicate.c — `duplicate`: the message's Message-ID was already
 * delivered, from any account.  The answer comes from the caller (the
 * state database, or the filter command's own memory) through the
 * msgview callback; a message without a Message-ID is never a duplicate. */
#include <stdlib.h>
#include <string.h>

#include "match.h"

static int parse_duplicate(struct parser *p, void **data)
{
	/* the id cache slot is shared with `header "Message-ID"` */
	*data = xmalloc(sizeof(int));
	*(int *)*data = rules_header_id(p->r, "Message-ID");
	return 0;
}

static int eval_duplicate(const void *data, struct evalctx *x)
{
	const struct span *v;
	size_t n;
	if (x->v->is_duplicate == NULL)
		return T_FALSE;
	if (ev_header(x, *(const int *)data, &v, &n) < 0)
		return -1;
	if (n == 0 || v[0].n == 0)
		return T_FALSE;
	char *id = xstrndup(v[0].p, v[0].n);
	int r = x->v->is_duplicate(x->v->dup_arg, id);
	free(id);
	if (r < 0)
		return ev_error(x, "cannot look up the Message-ID");
	return r > 0;
}

const struct match_ops match_duplicate = {
	.name = "duplicate",
	.parse = parse_duplicate,
	.eval = eval_duplicate,
	.free = free,
	.needs_body = 0,
};
