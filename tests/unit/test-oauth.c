/* test-oauth.c — the pure parts of OAuth2: SHA-256, PKCE S256 (RFC 7636
 * appendix B), base64url, JSON extraction through SQLite, form encoding,
 * endpoint URL policy. */
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "oauth.h"
#include "oauth-http.h"
#include "pkce.h"
#include "popsift.h"
#include "provider.h"
#include "secret.h"
#include "unit.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha256(void)
{
	uint8_t d[32];
	char h[65];
	sha256("abc", 3, d);
	hex(d, 32, h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 abc");
	sha256("", 0, d);
	hex(d, 32, h);
	CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 empty");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256(two, strlen(two), d);
	hex(d, 32, h);
	CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		  "sha256 two blocks");
	char *mil = malloc(1000000);
	memset(mil, 'a', 1000000);
	sha256(mil, 1000000, d);
	free(mil);
	hex(d, 32, h);
	CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		  "sha256 a million a");
}

static void test_pkce(void)
{
	char c[44];
	pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c);
	CHECK_STR(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "RFC 7636 appendix B challenge");
	uint8_t v[] = { 116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
			187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
			132, 141, 121 };
	char b[64];
	base64url(v, sizeof v, b);
	CHECK_STR(b, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "RFC 7636 appendix B verifier");
	char r1[64], r2[64];
	CHECK(random_token(32, r1, NULL) == 0 && random_token(32, r2, NULL) == 0 &&
	      strlen(r1) == 43 && strcmp(r1, r2) != 0, "random tokens: 43 chars, differ");
}

static void test_json(void)
{
	const char *j = "{\"access_token\":\"ya29.a\\u0041b\",\"expires_in\":3599,"
			"\"n\":null,\"s\":\"120\",\"o\":{\"x\":[1,2]}}";
	char *v = NULL, *err = NULL;
	long long n = 0;
	CHECK(json_get(j, strlen(j), "$.access_token", &v, &err) == 1, "json: string found");
	CHECK_STR(v, "ya29.aAb", "json: escapes decoded");
	free(v);
	CHECK(json_get_long(j, strlen(j), "$.expires_in", &n, &err) == 1 && n == 3599,
	      "json: number");
	CHECK(json_get_long(j, strlen(j), "$.s", &n, &err) == 1 && n == 120, "json: quoted number");
	CHECK(json_get(j, strlen(j), "$.n", &v, &err) == 0 && v == NULL, "json: null is absent");
	CHECK(json_get(j, strlen(j), "$.missing", &v, &err) == 0, "json: missing key");
	CHECK(json_get(j, strlen(j), "$.o.x[1]", &v, &err) == 1, "json: nested path");
	CHECK_STR(v, "2", "json: nested value");
	free(v);
	CHECK(json_get("{\"a\":", 5, "$.a", &v, &err) == -1 && err != NULL, "json: invalid refused");
	free(err);
	err = NULL;
	CHECK(json_get("{\"a\":\"b\"}\0x", 11, "$.a", &v, &err) == -1, "json: NUL refused");
	free(err);
	err = NULL;
	CHECK(json_get("<html>", 6, "$.a", &v, &err) == -1, "json: HTML refused");
	free(err);
}

static void test_form(void)
{
	char *f = NULL;
	form_add(&f, "grant_type", "refresh_token");
	form_add(&f, "scope", "https://mail.google.com/ offline_access");
	form_add(&f, "x", "a+b&c=d~_.-é");
	CHECK_STR(f, "grant_type=refresh_token&scope=https%3A%2F%2Fmail.google.com%2F%20"
		  "offline_access&x=a%2Bb%26c%3Dd~_.-%C3%A9", "form encoding");
	free(f);
	char *err = NULL;
	CHECK(http_url_ok("https://oauth2.googleapis.com/token", &err) == 0, "url: https ok");
	CHECK(http_url_ok("http://127.0.0.1:8080/token", &err) == 0, "url: loopback http ok");
	CHECK(http_url_ok("http://localhost/token", &err) == 0, "url: localhost http ok");
	CHECK(http_url_ok("http://example.com/token", &err) == -1, "url: remote http refused");
	free(err);
	err = NULL;
	CHECK(http_url_ok("ftp://127.0.0.1/x", &err) == -1, "url: ftp refused");
	free(err);
	err = NULL;
	CHECK(http_url_ok("http://127.0.0.1.evil.com/x", &err) == -1, "url: lookalike refused");
	free(err);
}

static void test_query(void)
{
	const char *q = "state=a%2Fb&code=4%2F0Ab+c&x=&error_description=no%20way";
	char *v = query_param(q, "code");
	CHECK_STR(v, "4/0Ab c", "query: code decoded");
	free(v);
	v = query_param(q, "state");
	CHECK_STR(v, "a/b", "query: state decoded");
	free(v);
	v = query_param(q, "x");
	CHECK_STR(v, "", "query: empty value");
	free(v);
	CHECK(query_param(q, "cod") == NULL, "query: no prefix match");
	v = query_param("a=%4", "a");
	CHECK_STR(v, "%4", "query: truncated escape kept");
	free(v);
}

static void test_store(void)
{
	char dir[] = "/tmp/popsift-oauth-unit-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "store: temp dir");
	struct account a = { .name = "acct" };
	a.token_dir = xasprintf("%s/oauth", dir);
	char *path = token_path(&a, SIDE_SMTP), *err = NULL;
	char *want = xasprintf("%s/oauth/acct.smtp", dir);
	CHECK_STR(path, want, "store: path is oauth/ACCOUNT.SIDE");
	struct token t = { .access = "at-1", .refresh = "rt-1", .expires = 1234 }, r;
	CHECK(token_write(path, &t, &err) == 0, "store: written");
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "store: file 0600");
	CHECK(stat(a.token_dir, &st) == 0 && (st.st_mode & 0777) == 0700, "store: dir 0700");
	CHECK(token_read(path, &r, &err) == 0 && r.access && !strcmp(r.access, "at-1") &&
	      r.refresh && !strcmp(r.refresh, "rt-1") && r.expires == 1234, "store: read back");
	token_free(&r);
	struct token bad = { .access = "at\nrefresh_token evil" };
	CHECK(token_write(path, &bad, &err) == -1, "store: control characters refused");
	free(err);
	err = NULL;
	chmod(path, 0640);
	CHECK(token_read(path, &r, &err) == -1 && strstr(err, "readable by others"),
	      "store: group-readable refused");
	free(err);
	err = NULL;
	char *link = xasprintf("%s/oauth/acct.pop3", dir);
	CHECK(symlink(path, link) == 0, "store: symlink planted");
	CHECK(token_read(link, &r, &err) == -1, "store: symlink not followed");
	free(err);
	err = NULL;
	char *none = xasprintf("%s/oauth/acct.imap", dir);
	CHECK(token_read(none, &r, &err) == 1, "store: absent file is 1");
	unlink(link), unlink(path);
	char *lock = xasprintf("%s.lock", path);
	unlink(lock);
	rmdir(a.token_dir);
	rmdir(dir);
	free(lock), free(none), free(link), free(want), free(path), free(a.token_dir);
}

static void test_presets(void)
{
	struct config cf;
	char *err = NULL;
	const char *text = "account o\nprovider outlook\nuser me@outlook.com\nauth xoauth2\n"
			   "oauth_client_id cid\nsmtp_user me@outlook.com\nsmtp_auth xoauth2\n"
			   "smtp_oauth_client_id cid\nsmtp_oauth_scope mine\ndeliver mbox /tmp/x\n"
			   "state /tmp/popsift-unit/state.db\n";
	CHECK(conf_parse("t", text, &cf, &err) == 0, "presets: outlook parses");
	const struct account *a = cf.accounts;
	CHECK_STR(a->oauth.device_url,
		  "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode",
		  "presets: outlook device URL");
	CHECK_STR(a->oauth.scope, "https://outlook.office.com/POP.AccessAsUser.All offline_access",
		  "presets: POP3 scope");
	CHECK_STR(a->smtp_oauth.scope, "mine", "presets: a written key wins");
	CHECK_STR(a->smtp_oauth.token_url,
		  "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
		  "presets: SMTP token URL");
	CHECK(a->sasl_ir == 0 && a->imap_sasl_ir == 1, "presets: Microsoft's POP3 in two steps");
	provider_imap_oauth(cf.accounts, provider_find("office365"));
	CHECK(a->imap_sasl_ir == 0, "presets: Microsoft's IMAP in two steps");
	CHECK_STR(a->imap_oauth.scope, "https://outlook.office.com/IMAP.AccessAsUser.All "
		  "offline_access", "presets: IMAP scope");
	CHECK_STR(a->imap_oauth.device_url,
		  "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode",
		  "presets: office365 device URL");
	CHECK(account_oauth(a, SIDE_POP3) && account_oauth(a, SIDE_SMTP) &&
	      !account_oauth(a, SIDE_IMAP), "presets: POP3 and SMTP sides use OAuth2");
	CHECK_STR(a->token_dir, "/tmp/popsift-unit/oauth", "presets: tokens next to the state");
	CHECK(!cf.has_password, "presets: no secret in the file");
	conf_free(&cf);
	text = "account g\nprovider gmail\nuser me\nauth xoauth2\noauth_client_id c\n"
	       "oauth_client_secret s\ndeliver mbox /tmp/x\n";
	CHECK(conf_parse("t", text, &cf, &err) == 0, "presets: gmail parses");
	CHECK(cf.accounts->oauth.device_url == NULL && cf.accounts->oauth.auth_url &&
	      cf.accounts->imap_sasl_ir == 1, "presets: gmail has no device flow");
	CHECK(cf.has_password, "presets: a client secret is a password");
	conf_free(&cf);
	text = "account p\nhost h\nuser me\nauth xoauth2\noauth_client_id c\n"
	       "password_command echo tok\noauth_token_url https://t/\ndeliver mbox /tmp/x\n";
	CHECK(conf_parse("t", text, &cf, &err) == 0 && !account_oauth(cf.accounts, SIDE_POP3),
	      "presets: password_command wins");
	conf_free(&cf);
	text = "account p\nhost h\nuser me\noauth_token_url http://example.com/t\n"
	       "deliver mbox /tmp/x\n";
	CHECK(conf_parse("t", text, &cf, &err) == -1 && strstr(err, "https"),
	      "presets: plain http endpoint refused");
	free(err);
}

int main(void)
{
	test_query();
	test_store();
	test_presets();
	test_sha256();
	test_pkce();
	test_json();
	test_form();
	return UNIT_DONE();
}
