/* curlconn.c — connect and log in with libcurl's CONNECT_ONLY mode, then
 * carry the session with curl_easy_send/recv.  libcurl owns TLS,
 * certificate checks, STLS, SASL and APOP. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "conn.h"
#include "login-hint.h"
#include "pop3.h"
#include "popsift.h"
#include "proxy.h"

int conn_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Mask what must never reach a log: passwords, APOP digests, SASL blobs. */
static void trace_out(const char *acct, const char *p, size_t n)
{
	static const char *const shown[] = { "CAPA", "STLS", "QUIT", "USER ", "STAT", NULL };
	for (int i = 0; shown[i]; i++) {
		if (n >= strlen(shown[i]) && strncasecmp(p, shown[i], strlen(shown[i])) == 0) {
			log_proto(acct, 'C', p, n);
			return;
		}
	}
	size_t w = 0;
	while (w < n && w < 12 && p[w] != ' ' && p[w] != '\r')
		w++;
	int is_auth = n > 5 && strncasecmp(p, "AUTH ", 5) == 0;
	if (is_auth) {
		size_t m = 5;
		while (m < n && p[m] != ' ' && p[m] != '\r')
			m++;
		w = m;
	}
	int cmd = is_auth || (n >= 4 && (strncasecmp(p, "PASS", 4) == 0 ||
					  strncasecmp(p, "APOP", 4) == 0));
	char line[64];
	if (cmd && strncasecmp(p, "APOP", 4) == 0) {
		const char *sp = memchr(p + 5, ' ', n > 5 ? n - 5 : 0);
		w = sp ? (size_t)(sp - p) : w;
	}
	snprintf(line, sizeof line, "%.*s%s****", cmd ? (int)w : 0, p, cmd ? " " : "");
	log_proto(acct, 'C', line, strlen(line));
}

/* The method libcurl chose, never more of the line: an AUTH line may
 * carry the initial response. */
static void note_mech(struct conn *c, const char *p, size_t n)
{
	if (n >= 5 && strncasecmp(p, "APOP ", 5) == 0) {
		snprintf(c->mech, sizeof c->mech, "APOP");
	} else if (n > 5 && strncasecmp(p, "AUTH ", 5) == 0) {
		size_t w = strcspn(p + 5, " \r\n");
		snprintf(c->mech, sizeof c->mech, "%.*s", (int)(w < n - 5 ? w : n - 5), p + 5);
	}
}

/* CAPA's reply, line by line as libcurl reads it, for the next
 * session (state-caps.c); the first line after CAPA went out is its status. */
static void observe_caps(struct conn *c, const char *p, size_t n)
{
	if (c->capa_sent) {
		c->capa_sent = 0;
		c->caps.known = n >= 3 && memcmp(p, "+OK", 3) == 0;
		return;
	}
	if (c->caps.known)
		pop3_capa_line(&c->caps, p, n);
}

/* Note what the server offered and whether credentials went out. */
static void observe(struct conn *c, curl_infotype type, const char *p, size_t n)
{
	if (type == CURLINFO_HEADER_OUT && n >= 4 && strncasecmp(p, "CAPA", 4) == 0) {
		/* again after STLS: only the last answer counts */
		c->capa_sent = 1;
		c->caps = (struct caps){ .apop_ts = c->greeting_ts };
		return;
	}
	if (type == CURLINFO_HEADER_OUT) {
		static const char *const login[] = { "USER ", "PASS ", "APOP ", "AUTH ", NULL };
		for (int i = 0; login[i]; i++)
			c->sent_credentials |= n >= 5 && strncasecmp(p, login[i], 5) == 0;
		note_mech(c, p, n);
		return;
	}
	if (type != CURLINFO_HEADER_IN)
		return;
	c->heard = 1;
	if (n >= 3 && memcmp(p, "+OK", 3) == 0 && memchr(p, '<', n) && memchr(p, '@', n))
		c->greeting_ts = 1;
	if (n > 5 && strncasecmp(p, "SASL ", 5) == 0)
		snprintf(c->sasl, sizeof c->sasl, "%.*s", (int)strcspn(p, "\r\n"), p);
	observe_caps(c, p, n);
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	(void)h;
	struct conn *c = arg;
	observe(c, type, data, size);
	if (log_level < 1)
		return 0;
	if (type == CURLINFO_HEADER_OUT) {
		trace_out(c->acct, data, size);
	} else if (type == CURLINFO_HEADER_IN) {
		log_proto(c->acct, 'S', data, size);
	} else if (type == CURLINFO_TEXT && log_level >= 2) {
		log_proto(c->acct, '*', data, size);
	}
	return 0;
}

/* A TERM during the connect or login (a server that never greets) ends
 * it now rather than at the timeout. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg, (void)dt, (void)dn, (void)ut, (void)un;
	return stop_requested != 0;
}

static const char *auth_name(enum auth_mode m)
{
	static const char *const names[] = { "any", "user", "apop", "plain", "login",
					     "cram-md5", "xoauth2", "oauthbearer" };
	return (unsigned)m < sizeof names / sizeof *names ? names[m] : "?";
}

static const char *login_option(enum auth_mode m)
{
	switch (m) {
	case AUTH_APOP:        return "AUTH=+APOP";
	case AUTH_PLAIN:       return "AUTH=PLAIN";
	case AUTH_LOGIN:       return "AUTH=LOGIN";
	case AUTH_CRAM_MD5:    return "AUTH=CRAM-MD5";
	case AUTH_XOAUTH2:     return "AUTH=XOAUTH2";
	case AUTH_OAUTHBEARER: return "AUTH=OAUTHBEARER";
	default:               return NULL;
	}
}

/* What both ways in share: timeouts, TLS trust, the stop, the trace. */
static void setup_common(struct conn *c, CURL *h, const struct account *a)
{
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	proxy_setup(h, a, SIDE_POP3);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)a->timeout);
	curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)a->timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	/* the login is part of the session: session_timeout caps it too */
	if (a->session_timeout > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)a->session_timeout);
	if (a->tls_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, a->tls_ca_file);
	if (a->tls_fingerprint)
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, a->tls_fingerprint);
	/* a pin alone trusts the key it names (a self-signed server), as with
	 * mpop and fetchmail: libcurl checks the pin with VERIFYPEER off too */
	if (a->tls_fingerprint && a->tls_ca_file == NULL) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	/* always on: the dialogue also tells a refused login from a missing method */
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, c);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
}

static int setup(struct conn *c, CURL *h, const struct account *a, const char *secret)
{
	char url[1024];
	snprintf(url, sizeof url, "%s://%s:%d/", a->tls == TLS_ON ? "pop3s" : "pop3",
		 a->host, a->port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	setup_common(c, h, a);
	if (a->tls == TLS_STARTTLS)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (a->auth != AUTH_USER) {
		curl_easy_setopt(h, CURLOPT_USERNAME, a->user);
		if (a->auth == AUTH_XOAUTH2 || a->auth == AUTH_OAUTHBEARER)
			curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, secret);
		else
			curl_easy_setopt(h, CURLOPT_PASSWORD, secret);
		if (login_option(a->auth))
			curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, login_option(a->auth));
		/* off by default, as libcurl: Microsoft wants XOAUTH2 in two steps */
		curl_easy_setopt(h, CURLOPT_SASL_IR, a->sasl_ir ? 1L : 0L);
	}
	c->need_login = a->auth == AUTH_USER;
	return 0;
}

/* libcurl says "login denied" also when it sent nothing: the method
 * asked for is not on offer.  That is the server's or the config's
 * problem, not a wrong password. */
static int no_method(const struct conn *c, const struct account *a, char **err)
{
	if (a->auth == AUTH_APOP && !c->greeting_ts)
		seterr(err, "auth apop: the greeting of %s has no APOP timestamp; nothing was sent",
		       a->host);
	else
		seterr(err, "auth %s: %s does not offer it (%s); nothing was sent",
		       auth_name(a->auth), a->host, c->sasl[0] ? c->sasl : "no SASL in CAPA");
	return EX_UNAVAILABLE;
}

/* Silence, or a TLS handshake that fails at once, before any line from
 * the server: the commonest slip when moving from mpop (tls on means
 * STARTTLS there unless tls_starttls off) or fetchmail (ssl). */
static const char *tls_port_hint(const struct account *a)
{
	if (a->tls == TLS_ON)
		return " (if this port speaks plain POP3 first, as 110 does, write "
		       "tls starttls; tls on is for POP3S, usually 995)";
	return " (no greeting: if this port speaks TLS from the start, as POP3S on 995 "
	       "does, write tls on)";
}

/* libcurl's failure, in the user's terms, and its sysexits code. */
static int classify(const struct conn *c, CURLcode rc, const struct account *a,
		    const char *detail, char **err)
{
	const char *why = *detail ? detail : curl_easy_strerror(rc);
	if (rc == CURLE_LOGIN_DENIED && !c->sent_credentials)
		return no_method(c, a, err);
	switch (rc) {
	case CURLE_LOGIN_DENIED: {
		char *hint = login_hint(a, SIDE_POP3);
		seterr(err, "login refused for user %s at %s: %s (%s)", a->user, a->host, why, hint);
		free(hint);
		return EX_NOPERM;
	}
	case CURLE_USE_SSL_FAILED:
		seterr(err, "%s does not offer STLS; not continuing without TLS", a->host);
		return EX_UNAVAILABLE;
	case CURLE_ABORTED_BY_CALLBACK:
		seterr(err, "stopped by a signal while connecting to %s:%d", a->host, a->port);
		return EX_TEMPFAIL;
	case CURLE_OPERATION_TIMEDOUT:
		seterr(err, "%s:%d timed out after %d s%s", a->host, a->port, a->timeout,
		       c->heard ? "" : tls_port_hint(a));
		return EX_TEMPFAIL;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		seterr(err, "cannot connect to %s:%d: %s", a->host, a->port, why);
		return EX_UNAVAILABLE;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CACERT_BADFILE:
		seterr(err, "TLS with %s:%d failed verification: %s%s", a->host, a->port, why,
		       rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ? " (the server's key is not the one "
		       "tls_fingerprint names)" : a->tls_ca_file || a->tls_fingerprint ? "" :
		       " (for a self-signed server: tls_fingerprint sha256//BASE64 pins its key, "
		       "tls_ca_file trusts its CA; see popsift.conf(5))");
		return EX_UNAVAILABLE;
	default:
		seterr(err, "connection to %s:%d failed during greeting, TLS or login: %s%s",
		       a->host, a->port, why, rc == CURLE_SSL_CONNECT_ERROR && !c->heard ?
		       tls_port_hint(a) : "");
		return rc == CURLE_WEIRD_SERVER_REPLY ? EX_UNAVAILABLE : EX_TEMPFAIL;
	}
}

static int cleartext_refused(const struct account *a)
{
	int sends_password = a->auth == AUTH_ANY || a->auth == AUTH_USER ||
			     a->auth == AUTH_PLAIN || a->auth == AUTH_LOGIN;
	return a->tls == TLS_OFF && sends_password && !a->tls_explicit;
}

/* The connection's fields, the clear-text check and a libcurl handle. */
static int begin(struct conn *c, const struct account *a, int *code, char **err)
{
	memset(c, 0, sizeof *c);
	c->sock = -1;
	c->acct = a->name;
	c->timeout_ms = a->timeout > 0 ? a->timeout * 1000 : 60000;
	c->session_s = a->session_timeout;
	c->session_end = a->session_timeout > 0 ? now_sec() + a->session_timeout : 0;
	if (cleartext_refused(a)) {
		*code = EX_CONFIG;
		return seterr(err, "refusing to send a password in clear text: say \"tls off\" "
			      "in the account to allow it, or use tls on/starttls");
	}
	CURL *h = curl_easy_init();
	if (h == NULL) {
		*code = EX_SOFTWARE;
		return seterr(err, "libcurl initialisation failed");
	}
	c->curl = h;
	return 0;
}

/* libcurl's part: connect, TLS, and with CONNECT_ONLY on a pop3 URL the
 * greeting, CAPA, STLS and the login; then the socket for the session. */
static int perform(struct conn *c, const struct account *a, int *code, char **err)
{
	CURL *h = c->curl;
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (rc != CURLE_OK) {
		*code = classify(c, rc, a, detail, err);
		proxy_blame(a, SIDE_POP3, err);
		conn_close(c);
		return -1;
	}
	curl_socket_t s;
	if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD) {
		*code = EX_SOFTWARE;
		conn_close(c);
		return seterr(err, "libcurl gave no socket");
	}
	c->sock = (int)s;
	c->tls = a->tls != TLS_OFF;
	return 0;
}

static int open_once(struct conn *c, const struct account *a, const char *secret, int *code,
		     char **err)
{
	if (begin(c, a, code, err) < 0)
		return -1;
	setup(c, c->curl, a, secret);
	return perform(c, a, code, err);
}

/* `auth any` lets libcurl pick the strongest method on offer; a server
 * may offer APOP or CRAM-MD5 to users who have no such secret (Debian's
 * solid-pop3d, Courier), so a refusal of that method is followed by
 * USER/PASS, as fetchmail's `auth any` does.  The clear-text check
 * above answers the same for any and user. */
int conn_open(struct conn *c, const struct account *a, const char *secret, int *code, char **err)
{
	if (open_once(c, a, secret, code, err) == 0)
		return 0;
	if (a->auth != AUTH_ANY || *code != EX_NOPERM || c->mech[0] == '\0')
		return -1;
	log_info(a->name, "%s refused %s: trying USER/PASS (%s)", a->host, c->mech, *err);
	free(*err);
	*err = NULL;
	struct account plain = *a;
	plain.auth = AUTH_USER;
	return open_once(c, &plain, secret, code, err);
}

/* A socket popsift connected itself (LMTP): no libcurl, no TLS. */
static ssize_t raw_io(struct conn *c, char *buf, size_t len, int out, char **err)
{
	ssize_t n;
	do
		n = out ? send(c->sock, buf, len, MSG_NOSIGNAL) : recv(c->sock, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		seterr(err, "%s: %s", out ? "send failed" : "connection lost", strerror(errno));
		return -1;
	}
	return n == 0 && !out ? -2 : n;
}

ssize_t conn_send(struct conn *c, const char *buf, size_t len, char **err)
{
	if (c->raw)
		return raw_io(c, (char *)buf, len, 1, err);
	size_t n = 0;
	CURLcode rc = curl_easy_send(c->curl, buf, len, &n);
	if (rc == CURLE_AGAIN)
		return 0;
	if (rc != CURLE_OK) {
		seterr(err, "send failed: %s", curl_easy_strerror(rc));
		return -1;
	}
	return (ssize_t)n;
}

ssize_t conn_recv(struct conn *c, char *buf, size_t len, char **err)
{
	if (c->raw)
		return raw_io(c, buf, len, 0, err);
	size_t n = 0;
	CURLcode rc = curl_easy_recv(c->curl, buf, len, &n);
	if (rc == CURLE_AGAIN)
		return 0;
	if (rc != CURLE_OK) {
		seterr(err, "connection lost: %s", curl_easy_strerror(rc));
		return -1;
	}
	if (n == 0)
		return -2;
	return (ssize_t)n;
}

int conn_wait(struct conn *c, int want_write)
{
	return conn_wait_ms(c, want_write, c->timeout_ms);
}

int conn_wait_ms(struct conn *c, int want_write, int ms)
{
	struct pollfd p = { .fd = c->sock, .events = POLLIN | (want_write ? POLLOUT : 0) };
	for (;;) {
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR && stop_requested)
			return -2;
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r > 0;
	}
}

void conn_close(struct conn *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	else if (c->raw && c->sock >= 0)
		close(c->sock);
	c->curl = NULL;
	c->raw = 0;
	c->sock = -1;
	free(c->greeting);
	c->greeting = NULL;
}

const char *conn_lib_version(void)
{
	return curl_version_info(CURLVERSION_NOW)->version;
}

/* ---- the short way in: no CAPA, the login left to the caller ---- */

/* A proxy popsift would reach the server through (libcurl honours these
 * for pop3 URLs) takes libcurl's own way: the short way asks for none. */
static int proxied(void)
{
	static const char *const vars[] = { "all_proxy", "ALL_PROXY", "pop3_proxy",
					    "pop3s_proxy", NULL };
	for (int i = 0; vars[i]; i++)
		if (getenv(vars[i]) && *getenv(vars[i]))
			return 1;
	return 0;
}

/* USER/PASS as libcurl would have chosen them: `auth user`, or `auth any`
 * where the server offered no SASL and no APOP, which libcurl prefers
 * (never a downgrade), and USER.  STLS must come before anything, so
 * STARTTLS accounts keep libcurl's way. */
int conn_fast_ok(const struct account *a, const struct caps *k)
{
	if (a->tls == TLS_STARTTLS || (a->auth != AUTH_USER && a->auth != AUTH_ANY) ||
	    cleartext_refused(a) || proxied() || proxy_for(a, SIDE_POP3) != NULL)
		return 0;
	if (k == NULL)
		return 1;
	if (!k->known || !k->pipelining || k->split_login || k->fast_failed)
		return 0;
	return a->auth == AUTH_USER || (k->user && !k->sasl[0] && !k->apop_ts);
}

/* An http(s) URL with CONNECT_ONLY makes libcurl stop once connected
 * (and, for https, once TLS is up, the certificate and host name checked
 * as for pop3s).  No ALPN: a POP3S server has no http/1.1 to agree to;
 * no proxy: http_proxy is for the web. */
static void setup_fast(struct conn *c, CURL *h, const struct account *a)
{
	char url[1024];
	snprintf(url, sizeof url, "%s://%s:%d/", a->tls == TLS_ON ? "https" : "http",
		 a->host, a->port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_SSL_ENABLE_ALPN, 0L);
	setup_common(c, h, a);
	c->need_login = 1;
	c->fast = 1;
}

/* The greeting line (without CRLF) into buf: its length, -1 when no
 * line came (err), -2 stopped or timed out (err). */
static ssize_t read_greeting(struct conn *c, char *buf, size_t cap, char **err)
{
	size_t n = 0;
	double end = now_sec() + c->timeout_ms / 1000.0;
	while (n == 0 || memchr(buf, '\n', n) == NULL) {
		if (n == cap)
			return seterr(err, "the greeting is longer than %zu bytes", cap);
		ssize_t r = conn_recv(c, buf + n, cap - n, err);
		if (r == -2)
			return seterr(err, "the server closed the connection before its greeting");
		if (r < 0)
			return -1;
		n += (size_t)r;
		if (r > 0)
			continue;
		int ms = (int)((end - now_sec()) * 1000);
		if (ms <= 0 || (r = conn_wait_ms(c, 0, ms)) == 0) {
			seterr(err, "no greeting within %d s%s", c->timeout_ms / 1000,
			       c->tls ? "" : " (if this port speaks TLS from the start, as POP3S "
			       "on 995 does, write tls on)");
			return -2;
		}
		if (r == -2) {
			seterr(err, "stopped by a signal while waiting for the greeting");
			return -2;
		}
	}
	size_t len = (size_t)((char *)memchr(buf, '\n', n) - buf);
	if (len + 1 != n)
		return seterr(err, "the server said more than its greeting before any command");
	return (ssize_t)(len > 0 && buf[len - 1] == '\r' ? len - 1 : len);
}

/* 0 the greeting is as remembered, 1 not (err says why). */
static int greeting_fits(struct conn *c, const struct account *a, const char *g, size_t n,
			 char **err)
{
	c->greeting_ts = pop3_greeting_ts(g, n);
	if (pop3_status(g, n) != 1) {
		seterr(err, "greeting \"%.*s\"", (int)(n > 60 ? 60 : n), g);
		return 1;
	}
	if (a->auth == AUTH_ANY && c->greeting_ts) {
		seterr(err, "the greeting now has an APOP timestamp");
		return 1;
	}
	c->greeting = xstrndup(g, n);
	return 0;
}

int conn_open_fast(struct conn *c, const struct account *a, const struct caps *k, int *code,
		   char **err)
{
	if (begin(c, a, code, err) < 0)
		return -1;
	setup_fast(c, c->curl, a);
	if (perform(c, a, code, err) < 0)
		return -1;
	c->caps = *k;
	char g[POP3_MAXLINE];
	ssize_t n = read_greeting(c, g, sizeof g, err);
	if (n >= 0)
		log_proto(a->name, 'S', g, (size_t)n);
	if (n == -2) {
		*code = EX_TEMPFAIL;
		conn_close(c);
		return -1;
	}
	if (n == -1 || greeting_fits(c, a, g, (size_t)n, err) != 0) {
		conn_close(c);
		return 1;
	}
	return 0;
}
