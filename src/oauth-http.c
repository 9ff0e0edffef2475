/* oauth-http.c — HTTP for OAuth2 through libcurl (the only file besides
 * the connection files that uses it).  Bodies carry secrets: they are
 * never traced, only the method and URL are at -vv. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "oauth-http.h"
#include "popsift.h"

char *form_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(3 * n + 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return out;
}

void form_add(char **buf, const char *key, const char *value)
{
	char *k = form_escape(key), *v = form_escape(value);
	char *old = *buf;
	*buf = xasprintf("%s%s%s=%s", old ? old : "", old && *old ? "&" : "", k, v);
	if (old)
		memset(old, 0, strlen(old));   /* forms hold secrets */
	free(old);
	free(k);
	free(v);
}

static int loopback_host(const char *h)
{
	return !strcmp(h, "127.0.0.1") || !strcasecmp(h, "localhost") || !strcmp(h, "[::1]");
}

int http_url_ok(const char *url, char **err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		seterr(err, "\"%s\" is not a URL", url);
	else if (!strcasecmp(scheme, "https") || (!strcasecmp(scheme, "http") && loopback_host(host)))
		rc = 0;
	else
		seterr(err, "\"%s\": OAuth2 endpoints must be https:// (http:// only to 127.0.0.1)",
		       url);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_reply *r = arg;
	size_t n = size * nmemb;
	if (r->len + n > HTTP_MAX)
		return 0;   /* ends the transfer: CURLE_WRITE_ERROR */
	r->body = xrealloc(r->body, r->len + n + 1);
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg, (void)dt, (void)dn, (void)ut, (void)un;
	return stop_requested != 0;
}

static void setup(CURL *h, const char *url, const char *form, int timeout,
		  struct http_reply *r, struct curl_slist *hdrs)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(timeout > 0 ? timeout : 60));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(timeout > 0 ? timeout : 60));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "popsift/" POPSIFT_VERSION);
	if (form)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
}

int http_request(const char *url, const char *form, int timeout, struct http_reply *r,
		 char **err)
{
	memset(r, 0, sizeof *r);
	if (http_url_ok(url, err) < 0)
		return -1;
	CURL *h = curl_easy_init();
	if (h == NULL)
		return seterr(err, "libcurl initialisation failed");
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	setup(h, url, form, timeout, r, hdrs);
	log_debug(NULL, "oauth: %s %s", form ? "POST" : "GET", url);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_OK)
		return 0;
	if (rc == CURLE_WRITE_ERROR)
		seterr(err, "%s: the reply is longer than %d bytes", url, HTTP_MAX);
	else
		seterr(err, "%s: %s", url, *detail ? detail : curl_easy_strerror(rc));
	http_reply_free(r);
	return -1;
}

void http_reply_free(struct http_reply *r)
{
	if (r->body)
		memset(r->body, 0, r->len);
	free(r->body);
	memset(r, 0, sizeof *r);
}
