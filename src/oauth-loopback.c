/* oauth-loopback.c — the redirect end of the authorization code flow
 * (RFC 8252 section 7.3): a listener on 127.0.0.1, an ephemeral port,
 * which takes the browser's GET /?code=...&state=... and answers with a
 * short page.  Requests without the right state are answered and
 * ignored: another local process cannot inject its own code.  Several
 * connections are read at once, each for a few seconds at most, so one
 * that is slow or idle cannot keep the browser's out past the deadline. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "oauth.h"

#define REQ_MAX 8192
#define CLIENTS 16        /* connections read at once */
#define CLIENT_S 10       /* seconds a connection has to send its request */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *query_param(const char *query, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		size_t n = strcspn(v, "&"), o = 0;
		char *out = xmalloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			if (v[i] == '%' && i + 2 < n && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
				out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
				i += 2;
			} else {
				out[o++] = v[i] == '+' ? ' ' : v[i];
			}
		}
		out[o] = '\0';
		return out;
	}
	return NULL;
}

int loopback_listen(int *port, char **err)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		seterr(err, "cannot listen on 127.0.0.1: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static void answer(int fd, int status, const char *text)
{
	char *r = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
			    "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
			    "<!doctype html><title>popsift</title><p>%s</p>\n", status,
			    status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", text);
	write_all(fd, r, strlen(r));
	free(r);
}

/* A connection that has not sent its whole request yet. */
struct client {
	int     fd;             /* -1: a free slot */
	double  end;            /* dropped then */
	size_t  n;
	char    buf[REQ_MAX + 1];
};

static void drop(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* A new connection takes a free slot, else the oldest one's: a local
 * process that opens many and sends nothing cannot keep the browser out. */
static void admit(int lfd, struct client *cs)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct client *c = &cs[0];
	for (size_t i = 0; i < CLIENTS && c->fd >= 0; i++)
		if (cs[i].fd < 0 || cs[i].end < c->end)
			c = &cs[i];
	drop(c);
	c->fd = fd;
	c->end = now_sec() + CLIENT_S;
	c->n = 0;
	c->buf[0] = '\0';
}

/* Read what came: the request line's target once the headers are in
 * (malloc'd, "" when it is not a GET), NULL while more is to come. */
static char *read_target(struct client *c)
{
	ssize_t r = read(c->fd, c->buf + c->n, REQ_MAX - c->n);
	if (r > 0) {
		c->n += (size_t)r;
		c->buf[c->n] = '\0';
	}
	if (r > 0 && c->n < REQ_MAX && !strstr(c->buf, "\r\n\r\n") && !strstr(c->buf, "\n\n"))
		return NULL;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return NULL;
	if (strncmp(c->buf, "GET ", 4) != 0)
		return xstrdup("");
	return xstrndup(c->buf + 4, strcspn(c->buf + 4, " \r\n"));
}

/* 1: the code, 0: not for us (keep waiting), -1: the provider said no. */
static int take(int fd, const char *target, const char *state, char **code, char **err)
{
	if (target == NULL || strncmp(target, "/?", 2) != 0) {
		answer(fd, 404, "Not found.");
		return 0;
	}
	const char *q = target + 2;
	char *st = query_param(q, "state");
	int ours = st && strcmp(st, state) == 0;
	free(st);
	if (!ours) {
		answer(fd, 400, "Wrong or missing state: ignored.");
		return 0;
	}
	*code = query_param(q, "code");
	if (*code && **code) {
		answer(fd, 200, "popsift is authorized. You can close this page.");
		return 1;
	}
	free(*code);
	*code = NULL;
	char *e = query_param(q, "error"), *d = query_param(q, "error_description");
	char *se = text_safe(e ? e : "no code"), *sd = text_safe(d);
	seterr(err, "the authorization was refused: %s%s%s", se, d ? ": " : "", sd);
	answer(fd, 400, "popsift was not authorized. You can close this page.");
	free(e), free(d), free(se), free(sd);
	return -1;
}

/* The poll timeout: until the first client's or the whole wait's end. */
static int next_ms(const struct client *cs, double end)
{
	for (size_t i = 0; i < CLIENTS; i++)
		if (cs[i].fd >= 0 && cs[i].end < end)
			end = cs[i].end;
	double left = end - now_sec();
	return left > 0 ? (int)(left * 1000) + 1 : 0;
}

/* One round of poll over the listener and the clients: 1 the code, 0
 * keep waiting, -1 the provider said no. */
static int serve(int lfd, struct client *cs, double end, const char *state, char **code,
		 char **err)
{
	struct pollfd p[CLIENTS + 1] = { { .fd = lfd, .events = POLLIN } };
	for (size_t i = 0; i < CLIENTS; i++)
		p[i + 1] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
	if (poll(p, CLIENTS + 1, next_ms(cs, end)) < 0)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < CLIENTS && rc == 0; i++) {
		char *target = p[i + 1].revents && cs[i].fd >= 0 ? read_target(&cs[i]) : NULL;
		if (target) {
			rc = take(cs[i].fd, *target ? target : NULL, state, code, err);
			drop(&cs[i]);
		} else if (cs[i].fd >= 0 && now_sec() >= cs[i].end) {
			drop(&cs[i]);
		}
		free(target);
	}
	if (rc == 0 && (p[0].revents & POLLIN))
		admit(lfd, cs);
	return rc;
}

int loopback_wait(int lfd, const char *state, int timeout_s, char **code, char **err)
{
	double end = now_sec() + timeout_s;
	struct client *cs = xcalloc(CLIENTS, sizeof *cs);
	int rc = 0;
	*code = NULL;
	for (size_t i = 0; i < CLIENTS; i++)
		cs[i].fd = -1;
	while (rc == 0) {
		if (now_sec() >= end || stop_requested) {
			rc = seterr(err, stop_requested ? "stopped by a signal" :
				    "no answer from the browser within %d s", timeout_s);
			break;
		}
		rc = serve(lfd, cs, end, state, code, err);
	}
	for (size_t i = 0; i < CLIENTS; i++)
		drop(&cs[i]);
	free(cs);
	return rc > 0 ? 0 : -1;
}
