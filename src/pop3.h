/* pop3.h — the pipelined POP3 transaction engine over a struct conn.
 * Commands are queued with a handler; up to `window` are in flight and
 * replies are matched to them in order (RFC 2449 PIPELINING; a bounded
 * window is safe even where the server does not advertise it).
 * Deadlines: each reply must be whole within the connection's timeout
 * (plus a second per KB that arrives, so a big message over a slow link
 * finishes and a trickle does not), and the session by session_timeout. */
#ifndef POP3_H
#define POP3_H

#include <stddef.h>
#include "conn.h"

enum pop3_ev {
	P3_OK,     /* "+OK" status; text after it */
	P3_ERR,    /* "-ERR" status; text after it; the command is done */
	P3_DATA,   /* multi-line payload: a chunk (stream mode) or one line
		      without its newline (line mode); dot-unstuffed, LF ends */
	P3_END,    /* the terminating "." of a multi-line reply */
};

enum pop3_mode { P3_SINGLE, P3_STREAM, P3_LINES };

struct pop3;
typedef int (*pop3_fn)(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n);

#define POP3_MAXLINE 4096   /* status and list lines; RFC 1939 says 512 */

struct pop3 *pop3_new(struct conn *c, const char *acct, size_t window);
void   pop3_free(struct pop3 *p);
/* Queue a command; `secret` masks it in the -v trace. */
void   pop3_queue(struct pop3 *p, enum pop3_mode mode, int secret, pop3_fn fn, void *arg,
		  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Queue a command about message num whose reply is multi-line (RETR,
 * TOP), followed by "LIST num": the reply's P3_END reaches fn only once
 * LIST has answered for the same message, proof that the replies are in
 * step with the commands (else the pump fails, exit 69). */
#define POP3_MSG_CMDS 2   /* commands pop3_queue_msg queues: the message's and LIST */
void   pop3_queue_msg(struct pop3 *p, unsigned long num, pop3_fn fn, void *arg,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Send what the window allows without waiting for replies. */
void   pop3_kick(struct pop3 *p);
/* Run until every queued command has its reply: 0, or -1 with the error. */
int    pop3_flush(struct pop3 *p);
/* The same until only the last `left` queued commands are unanswered:
 * their replies are not handed to their handlers yet (what arrived of
 * them waits), so the caller may queue more behind them first. */
int    pop3_flush_until(struct pop3 *p, size_t left);
/* Fail from inside a handler: the pump stops with this error and code. */
int    pop3_fail(struct pop3 *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *pop3_error(const struct pop3 *p);
int    pop3_code(const struct pop3 *p);
size_t pop3_pending(const struct pop3 *p);
/* Commands queued since the queue last drained: a mark that
 * pop3_flush_until can wait for (queued now minus the mark are the ones
 * after it), valid while any command queued before it is unanswered. */
size_t pop3_queued(const struct pop3 *p);
const char *pop3_account(const struct pop3 *p);
/* Let SIGTERM interrupt a flush (not for QUIT, which must be answered). */
void   pop3_stoppable(struct pop3 *p, int on);
#define POP3_STOPPED (-2)   /* pop3_code() after a stop */
unsigned long long pop3_bytes(const struct pop3 *p);
/* Pure parsing helpers, unit-tested. */
struct account;
/* USER or PASS refused: fails the session (EX_NOPERM) naming what to check; -1. */
int    pop3_login_refused(struct pop3 *p, const struct account *a, const char *s, size_t n);
/* One event of a UIDL listing: 1 a line (*num, and the UID in *u and
 * *ulen, *u NULL when the server gave none), 0 nothing to take (a -ERR
 * sets *no_uidl), -1 a malformed line (the session fails). */
int    pop3_uidl_event(struct pop3 *p, enum pop3_ev ev, const char *s, size_t n,
		       int *no_uidl, unsigned long *num, const char **u, size_t *ulen);
int    pop3_status(const char *line, size_t n);   /* 1 +OK, 0 -ERR, -1 malformed */
/* "N UID": 0; "N" with no UID: 1 (*uidlen 0); anything else -1. */
int    pop3_parse_uidl(const char *line, size_t n, unsigned long *num, const char **uid,
		       size_t *uidlen);
int    pop3_parse_stat(const char *line, size_t n, unsigned long *count,
		       unsigned long long *size);
/* One line of CAPA's reply into k (capability names are case-insensitive). */
void   pop3_capa_line(struct caps *k, const char *line, size_t n);
/* The greeting carries an APOP timestamp "<...@...>" (RFC 1939 7): 1, else 0. */
int    pop3_greeting_ts(const char *line, size_t n);
int    pop3_parse_list(const char *line, size_t n, unsigned long *num, unsigned long long *size);

#endif
