/* deliver-lmtp.c — `lmtp unix:/path [RCPT…]` or `lmtp HOST:PORT
 * [RCPT…]`: hand the message to a local delivery agent over LMTP (RFC
 * 2033; Dovecot's, Cyrus's).  libcurl has no LMTP: the socket is opened
 * here (plain: LMTP is local), and smtp-tx.c runs LHLO and each
 * transaction over it, pipelined when the server offers PIPELINING, with
 * one reply per accepted recipient to the end of the data.  One
 * connection, owned by the sending thread (dqueue.c), carries every
 * message of a run; it is opened again only for another server or after
 * a failure.  The outcome is smtp-job.c's: per recipient after the data.
 *
 * Without recipients the account's lmtp_rcpt, else its user name, is
 * the one.  The envelope sender is the message's Return-Path, else its
 * From address. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "deliver.h"
#include "dqueue.h"
#include "msg.h"
#include "smtp.h"

/* An lmtp target's settings: written on the calling thread before its
 * first job is queued, read-only to the sending thread after that. */
struct lmtp {
	const struct account *a;
	const char *where;      /* "unix:/path" or "host:port", as written */
	char  *key;             /* what a connection must match to be reused */
	char  *bad;             /* why this target cannot work (set up once) */
	char **rcpt;
};

/* The sending thread's (set up on its first use, closed at exit). */
static struct sender conn;

static void lmtp_shutdown(void)
{
	sender_shutdown(&conn);
}

static const struct down *down_for(const char *where)
{
	return down_find(conn.downs, where);
}

static void mark_down(const char *where, const char *why)
{
	down_mark(&conn.downs, where, EX_TEMPFAIL, why);
}

/* ------------------------------------------------------------ connecting */

/* Wait until a non-blocking connect ends: 0, or -1 with errno. */
static int connected(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int r, soerr = 0;
	socklen_t len = sizeof soerr;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r == 0)
		errno = ETIMEDOUT;
	if (r <= 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	errno = soerr;
	return soerr ? -1 : 0;
}

static int try_connect(int family, const struct sockaddr *sa, socklen_t len, int ms)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, len) == 0 ||
	    ((errno == EINPROGRESS || errno == EAGAIN) && connected(fd, ms) == 0))
		return fd;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int dial_unix(const char *path, int ms, char **err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sun.sun_path)
		return seterr(err, "the socket path is too long");
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = try_connect(AF_UNIX, (struct sockaddr *)&sun, sizeof sun, ms);
	if (fd < 0)
		seterr(err, "%s", strerror(errno));
	return fd;
}

/* "host:port", "[v6]:port". */
static int dial_tcp(const char *where, int ms, char **err)
{
	const char *colon = strrchr(where, ':');
	const char *h = where, *he = colon;
	if (*h == '[' && he > h && he[-1] == ']')
		h++, he--;
	char *host = xstrndup(h, (size_t)(he - h));
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
	int rc = getaddrinfo(host, colon + 1, &hints, &res), fd = -1;
	free(host);
	if (rc != 0)
		return seterr(err, "%s", gai_strerror(rc));
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = try_connect(ai->ai_family, ai->ai_addr, ai->ai_addrlen, ms);
	int one = 1;   /* as libcurl does: a short write (a command) must not wait */
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd < 0)
		seterr(err, "%s", strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static char *lhlo_name(void)
{
	char name[256];
	if (gethostname(name, sizeof name) < 0 || name[0] == '\0')
		return xstrdup("localhost");
	name[sizeof name - 1] = '\0';
	return xstrdup(name);
}

/* Connect and greet: 0, or -1 with o filled (deferred) and the server
 * marked down for the rest of the run. */
static int dial(const struct lmtp *s, struct outcome *o)
{
	int ms = (s->a->timeout > 0 ? s->a->timeout : 60) * 1000;
	char *err = NULL;
	int fd = strncmp(s->where, "unix:", 5) == 0 ? dial_unix(s->where + 5, ms, &err)
						    : dial_tcp(s->where, ms, &err);
	struct link *l = &conn.link;
	if (fd >= 0) {
		conn.acct = xstrdup(s->a->name);
		l->c = (struct conn){ .raw = 1, .sock = fd, .acct = conn.acct, .timeout_ms = ms };
		l->lmtp = 1;
		l->broken = 0;
		l->ilen = l->olen = 0;
		conn.key = xstrdup(s->key);
		log_debug(s->a->name, "*: Connected to %s", s->where);
		char *name = lhlo_name();
		int rc = smtp_greet(l, name, &err);
		free(name);
		if (rc == 0)
			return 0;
		sender_hang_up(&conn);
	}
	o->fail_code = EX_TEMPFAIL;
	seterr(&o->err, "cannot deliver through LMTP at %s: %s (deferred: retried next run)",
	       s->where, err);
	mark_down(s->where, o->err);
	free(err);
	return -1;
}

/* The open connection if it is to this server, else a new one; *kept:
 * it carried an earlier message. */
static int connection(const void *target, int *kept, struct outcome *o)
{
	const struct lmtp *s = target;
	*kept = sender_kept(&conn, conn.link.c.raw, s->key, s->a->name, s->where);
	if (*kept)
		return 0;
	sender_name(&conn, s->a->name);
	return dial(s, o);
}

/* The job after j, when its envelope may go out with j's end. */
static const struct job *follower(const struct lmtp *s, const struct job *j)
{
	const struct job *nx = dqueue_peek(j);
	if (nx == NULL || nx->nlegs != 1 || nx->legs[0].ops != &deliver_lmtp)
		return NULL;
	const struct lmtp *ns = nx->legs[0].priv;
	if (ns->key == NULL || strcmp(ns->key, s->key) != 0)
		return NULL;
	return nx;
}

static int transfer(const struct lmtp *s, const struct job *j, int last, struct outcome *o)
{
	const struct job *nx = last ? follower(s, j) : NULL;
	const struct lmtp *ns = nx ? nx->legs[0].priv : NULL;
	struct leg_tx t = { .s = s, .connect = connection, .next = nx, .rcpt = s->rcpt,
			    .next_rcpt = ns ? ns->rcpt : NULL,
			    .v = { .acct = s->a->name, .where = s->where, .done = "delivered to",
				   .lmtp = 1, .partial_ok = s->a->on_partial_accept } };
	return sender_transfer(&conn, j, &t, o);
}

static int lmtp_send(struct job *j, size_t i, struct outcome *o)
{
	const struct lmtp *s = j->legs[i].priv;
	const struct down *dn = down_for(s->where);
	sender_first_use(&conn);
	if (dn) {
		o->fail_code = EX_TEMPFAIL;
		o->rc = seterr(&o->err, "%s", dn->why);
		return 0;
	}
	o->rc = transfer(s, j, i + 1 == j->nlegs, o);
	return 0;
}

/* ------------------------------------------------------------ calling thread */

/* The settings of `popsift filter`, which has no account. */
static const struct account no_account = { .name = "filter", .timeout = 60 };

/* "unix:/absolute/path" or "host:port". */
static int check_where(const char *w, char **err)
{
	if (strncmp(w, "unix:", 5) == 0)
		return w[5] == '/' ? 0 : seterr(err, "lmtp: \"%s\": unix: needs an absolute path", w);
	const char *colon = strrchr(w, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (colon == NULL || colon == w || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
		return seterr(err, "lmtp: \"%s\" is neither unix:/PATH nor HOST:PORT", w);
	return 0;
}

/* On the first message: the account is known only now. */
static int start(struct lmtp *s, struct target *t, const struct envelope *e, char **err)
{
	s->a = e->account ? e->account : &no_account;
	char **argv = t->dest.argv;
	if (argv == NULL || argv[0] == NULL)
		return seterr(err, "lmtp: no server (unix:/PATH or HOST:PORT)");
	s->where = argv[0];
	if (check_where(s->where, err) < 0)
		return -1;
	s->key = xasprintf("lmtp\n%s", s->where);
	char *dflt[] = { s->a->lmtp_rcpt ? s->a->lmtp_rcpt : s->a->user, NULL };
	if (argv[1] == NULL && dflt[0] == NULL)   /* popsift filter has no account */
		return seterr(err, "lmtp: no recipient after %s (nor lmtp_rcpt, nor user)", s->where);
	s->rcpt = smtp_rcpts(argv[1] ? argv + 1 : dflt, "lmtp", err);
	return s->rcpt ? 0 : -1;
}

static int lmtp_prepare(struct target *t, struct job *j, const struct envelope *e, char **err)
{
	struct lmtp *s = t->priv;
	if (s->a == NULL && start(s, t, e, &s->bad) < 0 && s->bad == NULL)
		s->bad = xstrdup("lmtp: cannot start");
	if (s->bad) {
		t->fail_code = EX_CONFIG;
		return seterr(err, "%s", s->bad);
	}
	if (j->from == NULL) {
		char *rp = return_path(j->m);
		j->from = rp ? rp : xstrdup(e->sender ? e->sender : "");
	}
	return 0;
}

static int lmtp_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	return dqueue_write(t, m, e, err);
}

static int lmtp_open(struct target *t, char **err)
{
	(void)err;   /* nothing to do before the first message names the account */
	t->priv = xcalloc(1, sizeof(struct lmtp));
	return 0;
}

static void lmtp_close(struct target *t)
{
	struct lmtp *s = t->priv;
	if (s == NULL)
		return;
	dqueue_idle();   /* no job may still read these settings */
	free(s->bad);
	free(s->key);
	smtp_rcpts_free(s->rcpt);
	free(s);
	t->priv = NULL;
}


static const struct async_ops lmtp_async = {
	.prepare = lmtp_prepare,
	.send = lmtp_send,
	.shutdown = lmtp_shutdown,
};

const struct deliverer deliver_lmtp = {
	.name = "lmtp",
	.undoable = 0,
	.open = lmtp_open,
	.write = lmtp_write,
	.undo = deliver_no_undo,
	.commit = deliver_no_commit,
	.close = lmtp_close,
	.recover = deliver_no_recover,
	.async = &lmtp_async,
};
