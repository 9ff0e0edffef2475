/* oauth-http.h — the HTTP side of OAuth2 (token, device and authorization
 * endpoints) through libcurl. */
#ifndef OAUTH_HTTP_H
#define OAUTH_HTTP_H

#include <stddef.h>

struct http_reply {
	long   status;          /* HTTP status code */
	char  *body;            /* NUL-terminated, at most HTTP_MAX bytes */
	size_t len;
};
#define HTTP_MAX (256 * 1024)

/* POST form (application/x-www-form-urlencoded) to url, or GET when form
 * is NULL; TLS verified, no redirects, timeout seconds in all.  0 with
 * the reply (any status), -1 when no reply came (*err). */
int  http_request(const char *url, const char *form, int timeout, struct http_reply *r,
		  char **err);
void http_reply_free(struct http_reply *r);
/* Only https:// endpoints, or http:// to 127.0.0.1 or localhost (tests,
 * RFC 8252 loopback): 0, or -1 with *err. */
int  http_url_ok(const char *url, char **err);
/* Append key=value, percent-encoded, to the form in *buf (malloc'd). */
void form_add(char **buf, const char *key, const char *value);
/* Percent-encode s for a form or a URL query (unreserved characters kept). */
char *form_escape(const char *s);

#endif
