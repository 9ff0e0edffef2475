/* ctl.c — the daemon's control socket, both ends (protocol: ctl.h).
 *
 * The daemon's end never blocks its scheduler: sockets are non-blocking,
 * a request must arrive whole within REQ_WAIT seconds and REQ_MAX bytes,
 * a client that does not read its results is dropped, and at most
 * MAX_CLIENTS wait at once.  Only the daemon's user or root may ask
 * (SO_PEERCRED), and the client trusts only a daemon of its own user or
 * root the same way, so neither side believes a stranger's bytes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "fetch.h"

#define REQ_MAX     (64 * 1024)    /* a request line */
#define REQ_WAIT    5              /* s from connect to a whole request */
#define MAX_CLIENTS 16
#define ACK_WAIT    15             /* s the client waits for "ok" */
#define LINE_MAX_C  (4 << 20)      /* a line the client accepts (the ack lists names) */

struct client {
	int     fd;
	double  since;       /* connected; then when it asked */
	char   *buf;         /* the request as read so far */
	size_t  len;
	char  **names;       /* asked for, each NULL once answered */
	size_t  n, left;
};

struct ctl {
	int     lfd;
	char   *path;
	struct client cl[MAX_CLIENTS];
	int     ncl;
};

static char *sock_path(const char *state)
{
	return xasprintf("%s.ctl", state);
}

/* Nobody but the user (or root) may plant or swap a socket here. */
static int dir_safe(const char *path, char **err)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");
	struct stat st;
	int rc = 0;
	if (stat(dir, &st) < 0)
		rc = seterr(err, "%s: %s", dir, strerror(errno));
	else if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022))
		rc = seterr(err, "%s may be written by others: no control socket there", dir);
	free(dir);
	return rc;
}

static int fill_addr(struct sockaddr_un *sa, const char *path, char **err)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path)
		return seterr(err, "%s: path too long for a unix socket", path);
	strcpy(sa->sun_path, path);
	return 0;
}

/* We hold the state lock, so a socket already there is a dead daemon's. */
static int clear_stale(const char *path, char **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : seterr(err, "%s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return seterr(err, "%s exists and is not a socket: leaving it alone", path);
	if (unlink(path) < 0)
		return seterr(err, "%s: %s", path, strerror(errno));
	return 0;
}

struct ctl *ctl_open(const char *state, char **err)
{
	char *path = sock_path(state);
	struct sockaddr_un sa;
	int fd = -1;
	if (dir_safe(path, err) < 0 || fill_addr(&sa, path, err) < 0 || clear_stale(path, err) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(077);   /* the socket is 0600 from its first moment */
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, MAX_CLIENTS) < 0) {
		seterr(err, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	struct ctl *c = xcalloc(1, sizeof *c);
	c->lfd = fd;
	c->path = path;
	return c;
fail:
	if (fd >= 0)
		close(fd);
	free(path);
	return NULL;
}

static void drop(struct ctl *c, int i)
{
	struct client *k = &c->cl[i];
	close(k->fd);
	free(k->buf);
	for (size_t j = 0; j < k->n; j++)
		free(k->names[j]);
	free(k->names);
	c->cl[i] = c->cl[--c->ncl];
}

/* A whole line or the client goes: it asked, so it reads. */
static int say(struct client *k, const char *line)
{
	size_t len = strlen(line);
	ssize_t w = send(k->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return w == (ssize_t)len ? 0 : -1;
}

static void refuse(struct ctl *c, int i, int code, const char *msg)
{
	char *line = xasprintf("err %d %s\n", code, msg);
	say(&c->cl[i], line);
	free(line);
	drop(c, i);
}

static int peer_ok(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return 0;
	return uc.uid == geteuid() || uc.uid == 0;
}

static void accept_one(struct ctl *c)
{
	int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (c->ncl >= MAX_CLIENTS) {
		send(fd, "err 75 the daemon is busy with other requests\n", 46, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	struct client *k = &c->cl[c->ncl++];
	memset(k, 0, sizeof *k);
	k->fd = fd;
	k->since = now_sec();
	if (!peer_ok(fd))
		refuse(c, c->ncl - 1, EX_NOPERM, "this daemon belongs to another user");
}

static int find(const struct ctl_ops *ops, const char *name)
{
	for (const struct account *a = ops->accounts; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return 1;
	return 0;
}

static void want(struct client *k, const char *name)
{
	for (size_t j = 0; j < k->n; j++)
		if (strcmp(k->names[j], name) == 0)
			return;
	k->names = xrealloc(k->names, (k->n + 1) * sizeof *k->names);
	k->names[k->n++] = xstrdup(name);
	k->left++;
}

/* The names a request asks for, checked against the running config. */
static int parse_request(struct client *k, char *req, const struct ctl_ops *ops,
			 int *all, char **err)
{
	char *save = NULL, *w = strtok_r(req, " ", &save);
	if (w == NULL || strcmp(w, "run") != 0)
		return seterr(err, "not a request this daemon knows");
	while ((w = strtok_r(NULL, " ", &save)) != NULL) {
		if (strcmp(w, "all") == 0 && k->n == 0 && !*all)
			*all = 1;
		else if (strcmp(w, "*") == 0)
			for (const struct account *a = ops->accounts; a; a = a->next)
				want(k, a->name);
		else if (find(ops, w))
			want(k, w);
		else {
			char *safe = text_safe(w);
			seterr(err, "no account \"%s\" in the daemon's config (after editing "
			       "the config, send the daemon SIGHUP)", safe);
			free(safe);
			return -1;
		}
	}
	return k->n ? 0 : seterr(err, "no account to poll");
}

static char *ack_line(const struct client *k, int wait_s)
{
	size_t len = 32;
	for (size_t j = 0; j < k->n; j++)
		len += strlen(k->names[j]) + 1;
	char *line = xmalloc(len), *w = line + sprintf(line, "ok %d", wait_s);
	for (size_t j = 0; j < k->n; j++)
		w += sprintf(w, " %s", k->names[j]);
	strcpy(w, "\n");
	return line;
}

static void handle_request(struct ctl *c, int i, const struct ctl_ops *ops)
{
	struct client *k = &c->cl[i];
	char *err = NULL;
	int all = 0;
	k->buf[strcspn(k->buf, "\r\n")] = '\0';
	if (parse_request(k, k->buf, ops, &all, &err) < 0) {
		refuse(c, i, EX_USAGE, err);
		free(err);
		return;
	}
	k->since = now_sec();
	char *ack = ack_line(k, ops->wait_s);
	int rc = say(k, ack);
	free(ack);
	if (rc < 0) {
		drop(c, i);
		return;
	}
	for (size_t j = 0; j < k->n; j++)
		ops->ask(ops->ctx, k->names[j], all, k->since);
	log_info(NULL, "run asked over %s: polling %zu account%s now", c->path, k->n,
		 k->n == 1 ? "" : "s");
}

static void read_client(struct ctl *c, int i, const struct ctl_ops *ops)
{
	struct client *k = &c->cl[i];
	char tmp[4096];
	ssize_t n = recv(k->fd, tmp, sizeof tmp, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || k->names) {   /* gone, or talking after its request: hang up */
		drop(c, i);
		return;
	}
	if (k->len + (size_t)n > REQ_MAX) {
		refuse(c, i, EX_USAGE, "request too long");
		return;
	}
	k->buf = xrealloc(k->buf, k->len + (size_t)n + 1);
	memcpy(k->buf + k->len, tmp, (size_t)n);
	k->len += (size_t)n;
	k->buf[k->len] = '\0';
	if (memchr(k->buf, '\n', k->len) == NULL)
		return;
	if (strlen(k->buf) != k->len)
		refuse(c, i, EX_USAGE, "NUL in request");
	else
		handle_request(c, i, ops);
}

int ctl_pollfds(const struct ctl *c, struct pollfd *p, int max, double *wake)
{
	int n = 0;
	*wake = 0;
	if (c == NULL || max < 1)
		return 0;
	p[n++] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
	for (int i = 0; i < c->ncl && n < max; i++) {
		p[n++] = (struct pollfd){ .fd = c->cl[i].fd, .events = POLLIN };
		double d = c->cl[i].names ? 0 : c->cl[i].since + REQ_WAIT;
		if (d > 0 && (*wake == 0 || d < *wake))
			*wake = d;
	}
	return n;
}

void ctl_service(struct ctl *c, const struct pollfd *p, int n, const struct ctl_ops *ops)
{
	if (c == NULL)
		return;
	double t = now_sec();
	/* clients first, by fd (drop() reorders the array), then new ones */
	for (int j = 1; j < n; j++) {
		if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		for (int i = 0; i < c->ncl; i++)
			if (c->cl[i].fd == p[j].fd) {
				read_client(c, i, ops);
				break;
			}
	}
	for (int i = c->ncl - 1; i >= 0; i--)
		if (c->cl[i].names == NULL && t >= c->cl[i].since + REQ_WAIT)
			refuse(c, i, EX_USAGE, "no request within 5 s");
	if (n > 0 && (p[0].revents & POLLIN))
		accept_one(c);
}

/* Client i's answer for its j-th name: 1 when that was its last (or it
 * would not take it) and it is gone. */
static int answer_one(struct ctl *c, int i, size_t j, const char *packed)
{
	struct client *k = &c->cl[i];
	char *line = xasprintf("res %s %s", k->names[j], packed);
	int rc = say(k, line);
	free(line);
	free(k->names[j]);
	k->names[j] = NULL;
	if (rc == 0 && --k->left > 0)
		return 0;
	drop(c, i);
	return 1;
}

void ctl_result(struct ctl *c, const char *name, double started, const char *packed)
{
	for (int i = 0; c && i < c->ncl; i++) {
		struct client *k = &c->cl[i];
		if (k->names == NULL || k->since > started)
			continue;   /* asked during this poll: the next one is its */
		for (size_t j = 0; j < k->n; j++)
			if (k->names[j] && strcmp(k->names[j], name) == 0) {
				i -= answer_one(c, i, j, packed);
				break;
			}
	}
}

void ctl_forget(struct ctl *c, int (*has)(void *ctx, const char *name), void *ctx)
{
	struct result r = { .code = EX_USAGE,
			    .error = "the account left the daemon's config (reloaded) before its poll" };
	char *line = result_pack(&r);
	for (int i = 0; c && i < c->ncl; i++) {
		struct client *k = &c->cl[i];
		for (size_t j = 0; k->names && j < k->n; j++)
			if (k->names[j] && !has(ctx, k->names[j]) && answer_one(c, i, j, line)) {
				i--;   /* gone: another client moved to i */
				break;
			}
	}
	free(line);
}

void ctl_child(struct ctl *c)
{
	if (c == NULL)
		return;
	close(c->lfd);
	for (int i = 0; i < c->ncl; i++)
		close(c->cl[i].fd);
}

void ctl_close(struct ctl *c)
{
	if (c == NULL)
		return;
	while (c->ncl > 0)
		drop(c, c->ncl - 1);
	close(c->lfd);
	unlink(c->path);
	free(c->path);
	free(c);
}

/* ---- `popsift run`'s side ---- */

struct lines {
	int     fd;
	char   *buf;
	size_t  len, cap;
};

/* The next line (without its '\n'): 1; 0 when the daemon hung up; -1
 * past the deadline or a line longer than LINE_MAX_C; -2 when we are
 * asked to stop. */
static int next_line(struct lines *l, double deadline, char **line)
{
	for (;;) {
		char *nl = l->len ? memchr(l->buf, '\n', l->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - l->buf);
			*line = xstrndup(l->buf, n);
			memmove(l->buf, nl + 1, l->len - n - 1);
			l->len -= n + 1;
			return 1;
		}
		if (stop_requested)
			return -2;
		double left = deadline - now_sec();
		if (l->len >= LINE_MAX_C || left <= 0)
			return -1;
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;   /* EINTR or the deadline: both checked above */
		if (l->cap - l->len < 65536) {
			l->cap = l->cap * 2 + 65536;
			l->buf = xrealloc(l->buf, l->cap);
		}
		ssize_t n = recv(l->fd, l->buf + l->len, l->cap - l->len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 0;
		if (n > 0)
			l->len += (size_t)n;
	}
}

/* Connect to a daemon of our own user or root: the fd, or -1 (with *err
 * when something answered that we will not talk to, or could not reach). */
static int dial(const char *path, char **err)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path, err) < 0) {   /* no daemon can listen there either */
		free(*err);
		*err = NULL;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = ACK_WAIT };   /* bounds connect() on a full backlog */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (fd >= 0 && errno != ENOENT && errno != ECONNREFUSED && errno != ENOTDIR)
			seterr(err, "cannot reach the daemon at %s: %s", path, strerror(errno));
		else if (errno != ENOENT)   /* no socket: no daemon, nothing to say */
			log_debug(NULL, "%s: no daemon answers (%s)", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct ucred uc;
	socklen_t len = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
	    (uc.uid != geteuid() && uc.uid != 0)) {
		seterr(err, "%s is served by a process of uid %u, not yours: not asking it", path,
		       (unsigned)uc.uid);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static char *request(char **names, int nnames, int all)
{
	size_t len = 16;
	for (int i = 0; i < nnames; i++)
		len += strlen(names[i]) + 1;
	char *req = xmalloc(len), *w = req + sprintf(req, "run%s", all ? " all" : "");
	for (int i = 0; i < nnames; i++)
		w += sprintf(w, " %s", names[i]);
	strcpy(w, nnames ? "\n" : " *\n");
	return req;
}

/* What the daemon promised: names in config order, each result once. */
struct answer {
	char  **names;
	struct result *res;
	int    *got;
	size_t  n, left;
	int     wait_s;
};

static void answer_free(struct answer *an)
{
	for (size_t i = 0; i < an->n; i++) {
		free(an->names[i]);
		if (an->got[i])
			result_free(&an->res[i]);
	}
	free(an->names);
	free(an->res);
	free(an->got);
}

/* "ok WAIT NAME..." -> an; "err CODE MSG" -> its code, printed. */
static int read_ack(char *line, struct answer *an)
{
	int code = 0, off = 0;
	if (sscanf(line, "err %d %n", &code, &off) == 1 && off > 0 && code > 0 && code < 256) {
		char *msg = text_safe(line + off);
		log_err(NULL, "the daemon: %s", msg);
		free(msg);
		return code;
	}
	if (sscanf(line, "ok %d %n", &an->wait_s, &off) != 1 || off == 0 || an->wait_s < 1)
		return -1;
	if (an->wait_s > 7 * 86400)
		an->wait_s = 7 * 86400;
	char *save = NULL;
	for (char *w = strtok_r(line + off, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		an->names = xrealloc(an->names, (an->n + 1) * sizeof *an->names);
		an->names[an->n++] = text_safe(w);
	}
	an->res = xcalloc(an->n + 1, sizeof *an->res);
	an->got = xcalloc(an->n + 1, sizeof *an->got);
	an->left = an->n;
	return an->n ? 0 : -1;
}

static int take_result(struct answer *an, const char *line)
{
	const char *name = line + 4, *sp = strchr(name, ' ');
	if (strncmp(line, "res ", 4) != 0 || sp == NULL)
		return -1;
	for (size_t i = 0; i < an->n; i++) {
		if (an->got[i] || strlen(an->names[i]) != (size_t)(sp - name) ||
		    strncmp(an->names[i], name, (size_t)(sp - name)) != 0)
			continue;
		if (result_unpack(sp + 1, &an->res[i]) < 0)
			return -1;
		an->got[i] = 1;
		an->left--;
		return 0;
	}
	return -1;
}

/* Results as run prints them, in the daemon's (config) order. */
static int print_answer(const struct answer *an, int json)
{
	int code = 0, first = 1;
	if (json)
		fputs("{\"accounts\":[", stdout);
	for (size_t i = 0; i < an->n; i++) {
		if (!an->got[i])
			continue;
		struct account a = { .name = an->names[i] };
		result_print(&a, &an->res[i], json, first);
		code = result_worse(code, an->res[i].code);
		first = 0;
	}
	if (an->left)
		code = result_worse(code, EX_TEMPFAIL);
	if (json)
		printf("],\"exit\":%d}\n", code);
	fflush(stdout);
	return code;
}

static void report_missing(const struct answer *an, const char *path, int rc)
{
	const char *why = rc == -2 ? "interrupted" : rc == 0 ? "the daemon stopped"
			: "the daemon did not answer in time";
	log_err(NULL, "%s before %zu of %zu polls asked at %s ended (first: %s): they may or may "
		"not have run; `popsift status` tells", why, an->left, an->n, path,
		an->names[0]);
	for (size_t i = 0; i < an->n; i++)
		if (!an->got[i]) {
			log_err(an->names[i], "no result from the daemon");
			break;
		}
}

static int converse(struct lines *l, const char *path, int json)
{
	struct answer an = { 0 };
	char *line = NULL;
	int rc = next_line(l, now_sec() + ACK_WAIT, &line);
	int code = rc == 1 ? read_ack(line, &an) : -1;
	free(line);
	if (code != 0) {
		answer_free(&an);
		if (code < 0)
			log_err(NULL, "the daemon at %s did not accept the request", path);
		return code < 0 ? EX_TEMPFAIL : code;
	}
	/* each poll may take wait_s, and one running when we asked ends first */
	double idle = 2.0 * an.wait_s + 30;
	while (an.left > 0 && (rc = next_line(l, now_sec() + idle, &line)) == 1) {
		if (take_result(&an, line) < 0)
			log_debug(NULL, "the daemon sent a line run does not know");
		free(line);
	}
	if (an.left > 0)
		report_missing(&an, path, rc);
	code = print_answer(&an, json);
	answer_free(&an);
	return code;
}

int ctl_run(const struct config *cf, char **names, int nnames, int json, int all, int dry_run)
{
	char *path = sock_path(cf->state), *err = NULL;
	int fd = dial(path, &err), code = CTL_NO_DAEMON;
	if (fd < 0) {
		if (err)
			log_err(NULL, "%s; waiting for the state lock instead", err);
		free(err);
		free(path);
		return CTL_NO_DAEMON;
	}
	char *req = request(names, nnames, all);
	if (dry_run) {
		log_err(NULL, "the daemon is polling these accounts (%s): --dry-run does not go "
			"through it; stop the daemon, or run without --dry-run", path);
		code = EX_TEMPFAIL;
	} else if (strlen(req) > REQ_MAX) {
		log_err(NULL, "too many accounts named for the daemon: name none to poll them all");
		code = EX_USAGE;
	} else if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		log_err(NULL, "the daemon at %s hung up: %s", path, strerror(errno));
		code = EX_TEMPFAIL;
	} else {
		struct lines l = { .fd = fd };
		code = converse(&l, path, json);
		free(l.buf);
	}
	free(req);
	close(fd);
	free(path);
	return code;
}
