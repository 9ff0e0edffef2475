/* envelope.h — the envelope a fetched message lost: its sender (from
 * Return-Path, else From) and its local recipients (from the account or
 * the envelope headers a provider adds to a domain mailbox), and their
 * expansion as %F and %T in an MDA's words. */
#ifndef ENVELOPE_H
#define ENVELOPE_H

#include <stddef.h>

/* The envelope sender of a header section: Return-Path's address ("<>"
 * gives ""), else the From address, else "".  As written: %F and
 * SENDER check it (envelope_plausible).  malloc'd, never NULL. */
char *envelope_sender(const char *hdr, size_t hl);

/* 1 if s is a plausible address (or local name) safe as a command
 * argument: letters, digits, 8-bit bytes and ._+=- in the local part, at
 * most one '@' followed by a domain of letters, digits, '.', '-'; no
 * leading '-' or '.', at most 254 bytes. */
int envelope_plausible(const char *s);

/* 1 if a word of argv holds %T (the MDA runs once per recipient). */
int envelope_wants_rcpt(char *const *argv);

/* argv with %F replaced by sender, %T by rcpt, %% by %; other % are
 * kept.  A value that is not plausible becomes "" (the null sender).
 * malloc'd, NULL-terminated. */
char **envelope_argv(char *const *argv, const char *sender, const char *rcpt);

/* A copy of a NULL-terminated vector. */
char **envelope_dup(char *const *v);

#endif
