/* proxy.c — connections through a SOCKS or HTTP proxy (Tor's SOCKS port,
 * a corporate HTTP proxy).  libcurl does the proxying: SOCKS directly,
 * and HTTP with a CONNECT tunnel, since POP3, SMTP and IMAP are not HTTP.
 * The rest of popsift sees the same connection (CONNECT_ONLY), TLS and
 * certificate checks included: they are end to end with the server. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "proxy.h"

static const char *const schemes[] = { "socks5h://", "socks5://", "socks4a://", "socks4://",
				       "http://", NULL };

const char *proxy_for(const struct account *a, enum side side)
{
	const char *p = side == SIDE_SMTP && a->smtp_proxy ? a->smtp_proxy :
			side == SIDE_IMAP && a->imap_proxy ? a->imap_proxy : a->proxy;
	return p && strcmp(p, "none") != 0 ? p : NULL;
}

void proxy_setup(void *curl, const struct account *a, enum side side)
{
	CURL *h = curl;
	const char *p = proxy_for(a, side);
	if (p == NULL)
		return;
	curl_easy_setopt(h, CURLOPT_PROXY, p);
	if (strncmp(p, "http://", 7) == 0)
		curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	/* a proxy is asked for everything: no_proxy from the environment
	 * must not send some of it around Tor */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "");
}

int proxy_check(const char *url, char **err)
{
	if (strcmp(url, "none") == 0)
		return 0;
	for (int i = 0; schemes[i]; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(url, schemes[i], n) == 0 && url[n] != '\0' && url[n] != '/')
			return 0;
	}
	return seterr(err, "expected socks5h://HOST:PORT, socks5://, socks4a://, socks4:// "
		      "or http://HOST:PORT (or none), not \"%s\"", url);
}

void proxy_blame(const struct account *a, enum side side, char **err)
{
	const char *p = proxy_for(a, side);
	if (p == NULL || *err == NULL)
		return;
	/* user:password@ of a proxy URL stays out of the log */
	const char *at = strchr(p, '@'), *rest = strstr(p, "://");
	char *shown = at && rest && at > rest ? xasprintf("%.*s%s", (int)(rest + 3 - p), p, at + 1)
					      : xstrdup(p);
	char *e = xasprintf("%s (via proxy %s)", *err, shown);
	free(shown);
	free(*err);
	*err = e;
}
