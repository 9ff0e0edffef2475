/* Unit tests (issue 17): config mistakes a user makes in the first week
 * get errors that say what to do: a key before any section, a port out
 * of range, an unknown key with "did you mean". */
#include <stdlib.h>
#include "unit.h"
#include "popsift.h"
#include "conf-suggest.h"

static char *err;

static void bad(const char *text, const char *want, const char *what)
{
	struct config cf;
	free(err);
	err = NULL;
	int rc = conf_parse("cfg", text, &cf, &err);
	CHECK(rc < 0 && err && strstr(err, want) != NULL, what);
	if (rc == 0)
		conf_free(&cf);
	else if (!err || !strstr(err, want))
		printf("# got: %s\n", err ? err : "(none)");
}

static void distances(void)
{
	CHECK(edit_distance("host", "host") == 0, "same word: 0");
	CHECK(edit_distance("hots", "host") == 1, "swapped neighbours: 1");
	CHECK(edit_distance("pasword", "password") == 1, "missing letter: 1");
	CHECK(edit_distance("Host", "host") == 0, "case does not count");
	CHECK(edit_distance("", "abc") == 3, "empty: the other's length");
	CHECK(edit_distance("tls_fingerprnt", "tls_fingerprint") == 1, "long key");
}

static void suggestions(void)
{
	const char *acct = "account a\nhost h\nuser u\ndeliver mbox /x\n";
	char buf[512];
	snprintf(buf, sizeof buf, "%spasword x\n", acct);
	bad(buf, "cfg:5: unknown key \"pasword\" (did you mean \"password\"?)", "pasword");
	snprintf(buf, sizeof buf, "%stls_fingerprnt x\n", acct);
	bad(buf, "did you mean \"tls_fingerprint\"?", "tls_fingerprnt");
	snprintf(buf, sizeof buf, "%sdelivr mbox /y\n", acct);
	bad(buf, "did you mean \"deliver\"?", "a key read by hand: deliver");
	snprintf(buf, sizeof buf, "%smax_paralel 3\n", acct);
	bad(buf, "did you mean \"max_parallel\"?", "a global key");
	snprintf(buf, sizeof buf, "%slocal_usr x\n", acct);
	bad(buf, "did you mean \"local_user\"?", "a routing key");
	snprintf(buf, sizeof buf, "%sKeep yes\n", acct);
	bad(buf, "did you mean \"keep\"?", "wrong case");
	snprintf(buf, sizeof buf, "%sfrobnicate 1\n", acct);
	bad(buf, "cfg:5: unknown key \"frobnicate\"", "far from every key");
	CHECK(err && strstr(err, "did you mean") == NULL, "no suggestion for a word far from all");
}

static void sections(void)
{
	bad("host h\naccount a\nuser u\ndeliver mbox /x\n",
	    "cfg:1: \"host\" comes before any defaults or account line: put a \"defaults\" line above it",
	    "a key before any section");
	struct config cf;
	free(err);
	err = NULL;
	/* the config's own keys (state, log, max_parallel...) belong to no
	 * account: nothing is ambiguous about them at the top */
	int rc = conf_parse("cfg", "# comment\n\nstate /tmp/s.db\nmax_parallel 8\naccount a\n"
			    "host h\nuser u\ndeliver mbox /x\n", &cf, &err);
	CHECK(rc == 0 && cf.max_parallel == 8, "a global key before any section is fine");
	if (rc == 0)
		conf_free(&cf);
	free(err);
	err = NULL;
	rc = conf_parse("cfg", "# c\ndefaults\nstate /tmp/s.db\naccount a\nhost h\nuser u\n"
			    "deliver mbox /x\n", &cf, &err);
	CHECK(rc == 0, "under defaults it is fine");
	if (rc == 0)
		conf_free(&cf);
}

static void ranges(void)
{
	bad("account a\nport 99999\n", "cfg:2: port: expected a number from 1 to 65535, not \"99999\"",
	    "port out of range names the range");
	bad("account a\nport 0\n", "from 1 to 65535", "port 0");
	bad("account a\nsmtp_port 70000\n", "cfg:2: smtp_port: expected a number from 1 to 65535",
	    "smtp_port");
	bad("defaults\nmax_parallel 1000\n", "max_parallel: expected a number from 1 to 256",
	    "max_parallel");
}

int main(void)
{
	distances();
	suggestions();
	sections();
	ranges();
	free(err);
	return UNIT_DONE();
}
