/* test-envelope.c — the MDA's %F/%T (a sender never becomes an option,
 * a second word or shell syntax) and domain-mailbox routing. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "envelope.h"
#include "popsift.h"
#include "route.h"

static void plausible(void)
{
	const char *good[] = { "a@b.example", "bounces+x=y@lists.example.com", "MAILER-DAEMON",
			       "o.brien@example.org", "\xc3\xa9t\xc3\xa9@example.fr" };
	const char *bad[] = { "", "-oQ/tmp/x@evil", ".a@b", "@b", "a@", "a@-b", "a b@c", "a@b c",
			      "\"$(touch x)\"@evil", "a`id`@b", "a;b@c", "a@b@c", "a|b@c", "a\t@b",
			      "a@b/c", "a'b@c" };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		CHECK(envelope_plausible(good[i]), good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CHECK(!envelope_plausible(bad[i]), bad[i]);
}

static void words(void)
{
	char *argv[] = { "mda", "-f%F", "%T", "100%%", "50%", "%X", "%", "%F%T", NULL };
	char **v = envelope_argv(argv, "s@x.org", "bob");
	const char *want[] = { "mda", "-fs@x.org", "bob", "100%", "50%", "%X", "%", "s@x.orgbob" };
	for (size_t i = 0; i < 8; i++)
		CHECK_STR(v[i], want[i], "expanded word");
	CHECK(v[8] == NULL, "argv ends");
	free_argv(v);
	v = envelope_argv(argv, "-oQ@evil", NULL);
	CHECK_STR(v[1], "-f", "a sender that is an option becomes empty");
	CHECK_STR(v[2], "", "no recipient: empty");
	free_argv(v);
	CHECK(envelope_wants_rcpt(argv), "%T wanted");
	char *no[] = { "procmail", "-f", "%F", "100%%T", NULL };
	CHECK(!envelope_wants_rcpt(no), "%%T is no %T");
}

static struct route *conf(const char *const *kv)
{
	struct route *r = NULL;
	for (; kv[0]; kv += 2) {
		char *e = NULL;
		CHECK(route_key(&r, kv[0], kv[1], &e) == 1, kv[0]);
		free(e);
	}
	return r;
}

static void routing(void)
{
	const char *kv[] = { "envelope_header", "X-Original-To", "envelope_header", "Envelope-To first",
			     "local_domains", "example.org", "local_user", "bob@example.org bob",
			     "local_user", "*@example.org carol", NULL };
	struct route *r = conf(kv);
	char *e = NULL;
	CHECK(route_check(r, &e) == 0, "config fits");
	struct routed o;
	const char *h1 = "Envelope-To: bob@example.org, x@example.org, y@other.net\n"
			 "Envelope-To: z@example.org\nTo: z@example.org\n\n";
	route_message(r, h1, strlen(h1), &o);
	CHECK(o.n == 2 && !strcmp(o.rcpt[0], "bob") && !strcmp(o.rcpt[1], "carol"),
	      "Envelope-To list, first occurrence, * default");
	CHECK(o.rcpt[2] == NULL && !strcmp(o.orig[1], "x@example.org"), "orig in step");
	routed_free(&o);
	const char *h2 = "X-Original-To: Bob@Example.org\nEnvelope-To: x@example.org\n\n";
	route_message(r, h2, strlen(h2), &o);
	CHECK(o.n == 1 && !strcmp(o.rcpt[0], "bob"), "the first header that names one wins");
	routed_free(&o);
	const char *h3 = "To: bob@example.org\nCc: x@example.org\n\n";
	route_message(r, h3, strlen(h3), &o);
	CHECK(o.n == 0 && o.nloops == 0, "To/Cc never route");
	routed_free(&o);
	const char *h4 = "Delivered-To: bob\nX-Original-To: bob@example.org\n\n";
	route_message(r, h4, strlen(h4), &o);
	CHECK(o.n == 0 && o.nloops == 1 && !strcmp(o.loops[0], "bob"), "a loop");
	routed_free(&o);
	route_free(r);
	struct route *none = NULL;
	CHECK(route_key(&none, "host", "x", &e) == 0 && none == NULL, "not a routing key");
	CHECK(route_key(NULL, "local_domains", "x", &e) == -1, "refused in defaults");
	free(e);
}

int main(void)
{
	plausible();
	words();
	routing();
	return UNIT_DONE();
}
