/* fastuidl.c — see fastuidl.h.  Every answer is checked exactly; one
 * that does not fit sends the caller to the full UIDL listing, which
 * costs a round trip and is always right. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastuidl.h"
#include "pop3.h"
#include "popsift.h"
#include "state.h"

/* Beyond this many new messages, and an eighth of the maildrop, one
 * UIDL listing is cheaper than a command per message. */
#define TAIL_SMALL 64

struct probe {
	const struct snapshot *snap;
	struct fastlist *out;
	size_t  next;            /* the tail entry the next reply is for */
	int     counted;         /* STAT answered */
	int     bad;             /* something did not fit: out->why */
};

__attribute__((format(printf, 2, 3)))
static int misfit(struct probe *pr, const char *fmt, ...)
{
	if (pr->bad++)
		return 0;   /* the first misfit is the reason */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pr->out->why, sizeof pr->out->why, fmt, ap);
	va_end(ap);
	return 0;
}

static int on_stat(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct probe *pr = arg;
	unsigned long long size;
	(void)p;
	if (ev == P3_OK && pop3_parse_stat(s, n, &pr->out->count, &size) == 0)
		pr->counted = 1;
	else
		misfit(pr, "STAT answered \"%.*s\"", (int)(n > 60 ? 60 : n), s);
	return 0;
}

/* "+OK n uid" for `UIDL n`: the UID, or NULL when the reply is anything else. */
static char *single_uidl(enum pop3_ev ev, const char *s, size_t n, unsigned long want)
{
	unsigned long num;
	const char *u;
	size_t ulen;
	if (ev != P3_OK || pop3_parse_uidl(s, n, &num, &u, &ulen) != 0 || num != want)
		return NULL;
	return xstrndup(u, ulen);
}

static int on_last(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct probe *pr = arg;
	char *u = single_uidl(ev, s, n, pr->snap->settled);
	(void)p;
	if (u == NULL)
		misfit(pr, "UIDL %lu answered \"%.*s\"", pr->snap->settled,
		       (int)(n > 60 ? 60 : n), s);
	else if (strcmp(u, pr->snap->last_uidl) != 0)
		misfit(pr, "message %lu is %s, no longer %s", pr->snap->settled, u,
		       pr->snap->last_uidl);
	free(u);
	return 0;
}

static int on_tail(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct probe *pr = arg;
	struct tailmsg *t = &pr->out->tail[pr->next++];
	(void)p;
	t->uidl = single_uidl(ev, s, n, t->num);
	if (t->uidl == NULL)
		misfit(pr, "UIDL %lu answered \"%.*s\"", t->num, (int)(n > 60 ? 60 : n), s);
	return 0;
}

/* STAT and UIDL settled in one round trip: is the known part intact? */
static int probe_known(struct pop3 *p, struct probe *pr)
{
	const struct snapshot *snap = pr->snap;
	pop3_queue(p, P3_SINGLE, 0, on_stat, pr, "STAT");
	pop3_queue(p, P3_SINGLE, 0, on_last, pr, "UIDL %lu", snap->settled);
	if (pop3_flush(p) < 0)
		return -1;
	if (pr->counted && pr->out->count < snap->settled) {
		pr->bad = 0;   /* the clearer reason */
		misfit(pr, "%lu messages, fewer than the %lu known", pr->out->count,
		       snap->settled);
	}
	return pr->bad ? 0 : 1;
}

int fastuidl_list(struct pop3 *p, const struct snapshot *snap, struct fastlist *out)
{
	memset(out, 0, sizeof *out);
	struct probe pr = { .snap = snap, .out = out };
	int rc = probe_known(p, &pr);
	if (rc <= 0)
		return rc;
	unsigned long ntail = out->count - snap->settled;
	if (ntail > TAIL_SMALL && ntail > out->count / 8) {
		misfit(&pr, "%lu new messages: one listing is cheaper", ntail);
		return 0;
	}
	out->tail = xcalloc(ntail + 1, sizeof *out->tail);
	for (unsigned long i = 0; i < ntail; i++) {
		out->tail[i].num = snap->settled + 1 + i;
		pop3_queue(p, P3_SINGLE, 0, on_tail, &pr, "UIDL %lu", out->tail[i].num);
	}
	out->ntail = ntail;
	if (ntail > 0 && pop3_flush(p) < 0)
		return -1;
	if (pr.bad) {
		fastlist_free(out);
		return 0;
	}
	return 1;
}

void fastlist_free(struct fastlist *fl)
{
	for (size_t i = 0; i < fl->ntail; i++)
		free(fl->tail[i].uidl);
	free(fl->tail);
	fl->tail = NULL;
	fl->ntail = 0;
}
