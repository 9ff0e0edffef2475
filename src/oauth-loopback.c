/* oauth-loopback.c — the redirect end of the authorization code flow
 * (RFC 8252 section 7.3): a listener on 127.0.0.1, an ephemeral port,
 * which takes the browser's GET /?code=...&state=... and answers with a
 * short page.  Requests without the right state are answered and
 * ignored: another local process cannot inject its own code. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "oauth.h"

#define REQ_MAX 8192

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
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0 ||
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

/* The request line's target, once the headers are in: malloc'd or NULL. */
static char *read_target(int fd)
{
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char *buf = xcalloc(1, REQ_MAX + 1);
	size_t n = 0;
	while (n < REQ_MAX && strstr(buf, "\r\n\r\n") == NULL && strstr(buf, "\n\n") == NULL) {
		ssize_t r = read(fd, buf + n, REQ_MAX - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	char *target = NULL;
	if (strncmp(buf, "GET ", 4) == 0)
		target = xstrndup(buf + 4, strcspn(buf + 4, " \r\n"));
	free(buf);
	return target;
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

int loopback_wait(int lfd, const char *state, int timeout_s, char **code, char **err)
{
	double end = now_sec() + timeout_s;
	*code = NULL;
	for (;;) {
		double left = end - now_sec();
		if (left <= 0 || stop_requested)
			return seterr(err, stop_requested ? "stopped by a signal" :
				      "no answer from the browser within %d s", timeout_s);
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		char *target = read_target(fd);
		int rc = take(fd, target, state, code, err);
		free(target);
		close(fd);
		if (rc != 0)
			return rc > 0 ? 0 : -1;
	}
}
