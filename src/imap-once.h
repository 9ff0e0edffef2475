/* imap-once.h — suspect folders and appends left in doubt (imap-once.c). */
#ifndef IMAP_ONCE_H
#define IMAP_ONCE_H

/* A run of acct begins: forget what an earlier run of it in this process said. */
void imap_run_start(const char *acct);
/* A journal row of an earlier run names this folder ("" the default). */
void imap_suspect(const char *acct, const char *folder);
int  imap_is_suspect(const char *acct, const char *folder);
/* An append whose data went out without a reply: it may have landed. */
void imap_doubt(const char *acct, const char *folder);
/* The run of acct ends: 1 when no append of it was left in doubt (its
 * IMAP journal rows may go, and its folders are no longer suspect). */
int  imap_run_clean(const char *acct);

#endif
