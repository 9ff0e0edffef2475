/* ctl.h — the daemon's control socket (<state>.ctl): `popsift run` while
 * the daemon holds the state asks it to poll accounts now and prints the
 * results of those polls as if it had run them itself.
 *
 * One line each way, every line bounded:
 *   run -> daemon  "run [all] NAME...\n"  or  "run [all] *\n" (every account)
 *   daemon -> run  "ok WAIT_S NAME...\n"  the accounts it will poll, config
 *                                         order; WAIT_S bounds one poll
 *             or   "err CODE MESSAGE\n"   and the connection closes
 *   then, as each poll ends, "res NAME RESULT" (RESULT: report.c's
 *   result_pack line); the daemon closes after the last. */
#ifndef CTL_H
#define CTL_H

#include <poll.h>

#include "popsift.h"

/* ctl_run() when no daemon answered: wait for the state lock as before. */
#define CTL_NO_DAEMON (-1)

/* `popsift run` (names: the accounts asked for, none = all): the exit
 * code, having printed each account's result (text or --json), or
 * CTL_NO_DAEMON.  --dry-run through a daemon is refused (EX_TEMPFAIL). */
int ctl_run(const struct config *cf, char **names, int nnames, int json, int all, int dry_run);

/* ---- the daemon's side ---- */
struct ctl;

/* What the scheduler lends the socket. */
struct ctl_ops {
	void *ctx;
	const struct account *accounts;   /* the running config's */
	/* poll it as soon as it may (after the running poll, if one is) */
	void (*ask)(void *ctx, const char *name, int all, double when);
	int wait_s;   /* the longest one poll may take */
};

/* Listen on <state>.ctl (0600, in a directory only the user or root may
 * write).  NULL with *err when it cannot: the daemon runs on without. */
struct ctl *ctl_open(const char *state, char **err);
/* The fds to watch (at most max), and the next read deadline in *wake (0: none). */
int  ctl_pollfds(const struct ctl *c, struct pollfd *p, int max, double *wake);
/* Accept, read requests, drop the slow; p/n as ctl_pollfds filled them. */
void ctl_service(struct ctl *c, const struct pollfd *p, int n, const struct ctl_ops *ops);
/* A poll of name that started at `started` ended with this packed result. */
void ctl_result(struct ctl *c, const char *name, double started, const char *packed);
/* After a reload: clients waiting for an account that has no poll to
 * come (has() says which still do) are told so. */
void ctl_forget(struct ctl *c, int (*has)(void *ctx, const char *name), void *ctx);
/* In a forked poll: close the fds, leave the socket file alone. */
void ctl_child(struct ctl *c);
/* Stop listening and remove the socket file. */
void ctl_close(struct ctl *c);

#endif
