/* fastuidl.h — fast_uidl: a poll of a kept mailbox asks STAT and
 * `UIDL n` for the last message it already knows instead of the whole
 * UIDL list, then `UIDL n` for each message after it.
 *
 * Safe because POP3 servers number messages in arrival order and append
 * new mail (RFC 1939 does not say so, but every server does: Maildir and
 * mbox stores list by arrival), and a UIDL is never given to another
 * message in the maildrop (RFC 1939 7).  Then if message `settled` still
 * has the UIDL it had, no message before it went away, so messages
 * 1..settled are the ones the last run saw.  Anything else — a count
 * that shrank, another UIDL there, a -ERR, a reply that is not exactly
 * "+OK n uid" — means the full listing. */
#ifndef FASTUIDL_H
#define FASTUIDL_H

#include <stddef.h>

struct pop3;
struct snapshot;

struct tailmsg {
	unsigned long num;
	char   *uidl;
};

struct fastlist {
	unsigned long count;       /* STAT */
	struct tailmsg *tail;      /* messages settled+1..count, in order */
	size_t  ntail;
	char    why[160];          /* when it answers 0: why the full listing */
};

/* 1: messages 1..snap->settled are unchanged and out->tail lists the
 * rest; 0: list in full (out->why); -1: the session failed (pop3_error). */
int  fastuidl_list(struct pop3 *p, const struct snapshot *snap, struct fastlist *out);
void fastlist_free(struct fastlist *fl);

#endif
