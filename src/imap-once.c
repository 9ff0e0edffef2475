/* imap-once.c — what makes an IMAP append happen once across crashes.
 * An append cannot be taken back, and a crash (or a connection lost
 * after the data went out) leaves no way to know whether it landed: the
 * message stays on the POP3 server and comes again.  So each IMAP target
 * is journaled when a batch opens it (fetch-batch.c), and the journal
 * row stays until a run of that account ends with nothing left in doubt.
 * While such a row exists for an account and folder, that folder is
 * "suspect": deliver-imap.c searches it for each message (by Message-ID
 * and the UIDL in popsift's Received: line) before it appends, and
 * reports a message it finds delivered without appending it again.
 *
 * Shared by the calling thread (fetch-recover.c, prepare) and the
 * sending thread (an append left in doubt): under a lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "imap-once.h"

struct entry {
	char *acct, *folder;   /* folder "" : the account's imap_folder */
	struct entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *suspects, *doubts;   /* doubts: folder unused */

static int has(const struct entry *l, const char *acct, const char *folder)
{
	for (; l; l = l->next)
		if (!strcmp(l->acct, acct) && (folder == NULL || !strcmp(l->folder, folder)))
			return 1;
	return 0;
}

static void add(struct entry **l, const char *acct, const char *folder)
{
	if (has(*l, acct, folder))
		return;
	struct entry *e = xcalloc(1, sizeof *e);
	e->acct = xstrdup(acct);
	e->folder = xstrdup(folder ? folder : "");
	e->next = *l;
	*l = e;
}

static void drop(struct entry **l, const char *acct)
{
	for (struct entry **pp = l; *pp; ) {
		struct entry *e = *pp;
		if (strcmp(e->acct, acct) == 0) {
			*pp = e->next;
			free(e->acct);
			free(e->folder);
			free(e);
		} else {
			pp = &e->next;
		}
	}
}

void imap_suspect(const char *acct, const char *folder)
{
	pthread_mutex_lock(&lock);
	add(&suspects, acct, folder);
	pthread_mutex_unlock(&lock);
}

int imap_is_suspect(const char *acct, const char *folder)
{
	pthread_mutex_lock(&lock);
	int r = has(suspects, acct, folder ? folder : "");
	pthread_mutex_unlock(&lock);
	return r;
}

void imap_doubt(const char *acct, const char *folder)
{
	pthread_mutex_lock(&lock);
	add(&doubts, acct, NULL);
	add(&suspects, acct, folder);
	pthread_mutex_unlock(&lock);
}

int imap_run_clean(const char *acct)
{
	pthread_mutex_lock(&lock);
	int clean = !has(doubts, acct, NULL);
	if (clean)
		drop(&suspects, acct);
	pthread_mutex_unlock(&lock);
	return clean;
}

void imap_run_start(const char *acct)
{
	pthread_mutex_lock(&lock);
	drop(&doubts, acct);
	drop(&suspects, acct);
	pthread_mutex_unlock(&lock);
}
