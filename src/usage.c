/* usage.c — what `popsift --help`, `popsift help COMMAND`, `--version`
 * and every usage error print.  One table: the synopses here are the
 * manual's SYNOPSIS word for word (tests/integration/test_cli.py
 * compares them), so the two cannot drift apart. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "popsift.h"
#include "usage.h"

struct cmdhelp {
	const char *name;
	const char *synopsis;   /* continuation lines start with 8 spaces */
	const char *brief;      /* its line in `popsift --help` */
	const char *help;       /* what `help NAME` adds */
};

static const struct cmdhelp cmds[] = {
	{ "run", "popsift [-f CONFIG] [-v | -vv | -q] run [--all] [--dry-run] [--json]\n"
		 "        [--shard K/N] [ACCOUNT...]",
	  "fetch, sift and deliver new mail, once",
	  "One pass over every account, or the accounts named: fetch new mail, sift it\n"
	  "through the rules, deliver it, then delete it from the server unless kept.\n"
	  "  --all       fetch again what earlier runs delivered (while on the server)\n"
	  "  --dry-run   say what would be done with each message; change nothing\n"
	  "  --json      one JSON object on standard output\n"
	  "  --shard K/N only the accounts of share K of N (several hosts, one config)\n"
	  "Up to max_parallel accounts at once; while the daemon runs, it polls them.\n" },
	{ "new", "popsift [-f CONFIG] [-q] new [--json] [ACCOUNT...]",
	  "count new mail on the server without downloading it",
	  "Check for new mail without downloading it (UIDL and LIST only): per account,\n"
	  "how many messages a run has not seen yet and their size.  Writes nothing.\n"
	  "Exit status: 0 new mail, 1 none, else the error's (64, 69, 75, 77, 78).\n"
	  "  --json      one JSON object on standard output\n"
	  "  -q          print nothing: the exit status alone answers\n" },
	{ "daemon", "popsift [-f CONFIG] daemon [--shard K/N]",
	  "poll every account on its own schedule",
	  "Stay in the foreground and poll each account every `interval` seconds.\n"
	  "SIGHUP rereads the configuration, SIGUSR1 polls now, SIGTERM stops.\n" },
	{ "check", "popsift [-f CONFIG] [-v] check",
	  "validate the configuration and the rules",
	  "Read the configuration and every rules file; report the first error as\n"
	  "FILE:LINE: MESSAGE.  With -v: each account's servers and the rules as read.\n" },
	{ "status", "popsift [-f CONFIG] status [--json] [ACCOUNT]",
	  "the last runs, counts and errors",
	  "The last run of each account, today's counts, the next poll of the daemon,\n"
	  "and the messages that could not be delivered, with the reason.\n" },
	{ "log", "popsift [-f CONFIG] log [--since WHEN] [--json] [ACCOUNT]",
	  "what became of each message",
	  "One line per message: time, account, UIDL, Message-ID, subject, rule,\n"
	  "action, state.  WHEN is an age (30m, 12h, 2d, 1w) or a date (2026-11-01).\n" },
	{ "filter", "popsift filter -r RULES [--dry-run] [--account NAME] [--deliver DEST]\n"
		    "        [--mbox FILE | --maildir DIR | FILE... | < MESSAGE]",
	  "run rules over local mail",
	  "Run a rules file over local mail (filter must be the first word).\n"
	  "  -r, --rules RULES      the rules file\n"
	  "  -n, --dry-run          print what each message gets; deliver nothing\n"
	  "  -a, --account NAME     the account name `account` conditions see\n"
	  "  -d, --deliver DEST     where mail no rule takes goes (a deliver line)\n" },
	{ "import", "popsift import fetchmailrc [FILE]\n"
		    "popsift import mpoprc [FILE]\n"
		    "popsift import getmailrc [FILE...]\n"
		    "popsift [-f CONFIG] [-n] import fetchids|mpop-uidls|getmail-oldmail\n"
		    "        FILE [ACCOUNT]",
	  "convert another tool's configuration or UIDLs",
	  "fetchmailrc, mpoprc, getmailrc: convert fetchmail's, mpop's or getmail's\n"
	  "configuration into a popsift one (stdout); what cannot be converted is\n"
	  "left as a comment that `popsift -v check` lists.\n"
	  "fetchids, mpop-uidls, getmail-oldmail: record the UIDLs another tool fetched\n"
	  "as delivered, so that popsift does not fetch them again (-n: only say so).\n" },
	{ "providers", "popsift providers [NAME]",
	  "the provider presets",
	  "The presets of the `provider` key: servers, ports, TLS, and what the login\n"
	  "needs (an app password, an authorization code, OAuth2).\n" },
	{ "authorize", "popsift [-f CONFIG] authorize ACCOUNT",
	  "OAuth2 authorization of an account",
	  "Run the OAuth2 authorization of the account once and store its tokens.\n" },
	{ "help", "popsift help [COMMAND]",
	  "this help, or a command's",
	  "This help, or a command's.\n" },
	{ "--version", "popsift --help | --version", NULL, NULL },
};
#define NCMDS (sizeof cmds / sizeof *cmds)

static const struct cmdhelp *find(const char *name)
{
	for (size_t i = 0; name && i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

int usage_known(const char *cmd)
{
	return find(cmd) != NULL && cmd[0] != '-';
}

/* Each synopsis line: "usage: " before the first, 7 spaces before the
 * others; continuation lines keep their own indent on top. */
static void print_synopsis(FILE *out, const char *s, int *first)
{
	while (*s) {
		size_t n = strcspn(s, "\n");
		fprintf(out, "%s%.*s\n", *first ? "usage: " : "       ", (int)n, s);
		*first = 0;
		s += n + (s[n] == '\n');
	}
}

void usage_print(FILE *out, const char *cmd)
{
	const struct cmdhelp *h = find(cmd);
	int first = 1;
	for (size_t i = 0; i < NCMDS; i++)
		if (h == NULL || h == &cmds[i])
			print_synopsis(out, cmds[i].synopsis, &first);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("popsift: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	usage_print(stderr, usage_known(cmd) ? cmd : NULL);
	return EX_USAGE;
}

int cmd_help(const char *cmd)
{
	if (cmd == NULL) {
		usage_print(stdout, NULL);
		fputs("\nOptions:\n"
		      "  -f CONFIG      the configuration (default ~/.config/popsift/config)\n"
		      "  -v, -vv        the POP3 dialogue (passwords masked); -vv adds libcurl's trace\n"
		      "  -q             only errors\n"
		      "  -h, --help     this help; COMMAND --help or help COMMAND: one command's\n"
		      "  --version      the version of popsift and of its libraries\n"
		      "\nCommands:\n", stdout);
		for (size_t i = 0; i < NCMDS && cmds[i].brief; i++)
			printf("  %-10s %s\n", cmds[i].name, cmds[i].brief);
		fputs("\nManuals: popsift(1), popsift.conf(5), popsift.rules(5).\n", stdout);
		return 0;
	}
	if (!usage_known(cmd))
		return usage_error(NULL, "no command \"%s\"", cmd);
	const struct cmdhelp *h = find(cmd);
	usage_print(stdout, cmd);
	printf("\n%s", h->help);
	return 0;
}
