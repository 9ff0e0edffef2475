/* main.c — command line: run, daemon, check, filter, status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "ctl.h"
#include "fetch.h"
#include "import.h"
#include "oauth.h"
#include "ops.h"
#include "provider.h"
#include "sched.h"
#include "rules.h"
#include "run.h"
#include "shard.h"
#include "state.h"
#include "usage.h"

int cmd_filter(int argc, char **argv);
/* cmd-new.c: the accounts named (all when nargs is 0) */
int cmd_new(const struct config *cf, int nargs, char **args, int json);

struct cli {
	const char *config;
	const char *since;
	const char *shard;
	int json, all, dry_run;
	int flags;           /* F_*: the options given, for check_usage */
	const char *cmd;
	char **args;
	int nargs;
};

enum { F_JSON = 1, F_ALL = 2, F_DRY = 4, F_SINCE = 8, F_SHARD = 16 };

/* What each command takes: its options, and how many words after it. */
static const struct cmdspec {
	const char *name;
	int flags, min, max;
} specs[] = {
	{ "run", F_JSON | F_ALL | F_DRY | F_SHARD, 0, -1 }, { "new", F_JSON, 0, -1 },
	{ "daemon", F_SHARD, 0, 0 }, { "check", 0, 0, 0 }, { "status", F_JSON, 0, 1 },
	{ "log", F_JSON | F_SINCE, 0, 1 }, { "import", F_DRY, 1, -1 },
	{ "providers", 0, 0, 1 }, { "authorize", 0, 1, 1 }, { "help", 0, 0, 1 },
};

static const char *const flag_names[] = { "--json", "--all", "--dry-run", "--since", "--shard" };

/* An option the command does not take, or too few or many words. */
static int check_usage(const struct cli *c)
{
	const struct cmdspec *sp = NULL;
	for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
		if (strcmp(specs[i].name, c->cmd) == 0)
			sp = &specs[i];
	if (sp == NULL && strcmp(c->cmd, "filter") == 0)
		return usage_error("filter", "filter must be the first word");
	if (sp == NULL)
		return usage_error(NULL, "no command \"%s\"", c->cmd);
	for (int b = 0; b < 5; b++)
		if ((c->flags & (1 << b)) && !(sp->flags & (1 << b)))
			return usage_error(sp->name, "%s takes no %s", sp->name, flag_names[b]);
	if (c->nargs < sp->min)
		return usage_error(sp->name, "%s needs %s", sp->name,
				   strcmp(sp->name, "import") == 0 ? "what to import" : "an account");
	if (sp->max >= 0 && c->nargs > sp->max)
		return usage_error(sp->name, "%s: unexpected \"%s\"", sp->name, c->args[sp->max]);
	return 0;
}

/* The release, and the libraries' versions that decide what it can do. */
static int cmd_version(void)
{
	printf("popsift %s\n", POPSIFT_VERSION);
	printf("libcurl %s, PCRE2 %s, SQLite %s\n", conn_lib_version(), rules_lib_version(),
	       state_lib_version());
	return 0;
}

/* 1 when a word asks for help or the version: answered then and there. */
static int special(const char *s, const char *cmd, int *code)
{
	if (!strcmp(s, "--help") || !strcmp(s, "-h"))
		*code = cmd_help(cmd);
	else if (!strcmp(s, "--version") || !strcmp(s, "-V"))
		*code = cmd_version();
	else
		return 0;
	return 1;
}

/* 0, or -1 with *code: a usage error, or --help/--version answered. */
static int parse_cli(int argc, char **argv, struct cli *c, int *code)
{
	c->args = xcalloc((size_t)argc + 1, sizeof *c->args);
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (special(s, c->cmd, code))
			return -1;
		if ((!strcmp(s, "-f") || !strcmp(s, "--since") || !strcmp(s, "--shard")) && i + 1 >= argc)
			return *code = usage_error(c->cmd, "%s needs a value", s), -1;
		if (!strcmp(s, "-f"))
			c->config = argv[++i];
		else if (!strcmp(s, "--since"))
			c->since = argv[++i], c->flags |= F_SINCE;
		else if (!strcmp(s, "-v"))
			log_level = log_level < 0 ? 1 : log_level + 1;
		else if (!strcmp(s, "-vv"))
			log_level = 2;
		else if (!strcmp(s, "-q"))
			log_level = -1;
		else if (!strcmp(s, "--shard"))
			c->shard = argv[++i], c->flags |= F_SHARD;
		else if (!strcmp(s, "--json"))
			c->json = 1, c->flags |= F_JSON;
		else if (!strcmp(s, "--all"))
			c->all = 1, c->flags |= F_ALL;
		else if (!strcmp(s, "--dry-run") || !strcmp(s, "-n"))
			c->dry_run = 1, c->flags |= F_DRY;
		else if (s[0] == '-' && s[1] != '\0')
			return *code = usage_error(c->cmd, "unknown option %s", s), -1;
		else if (c->cmd == NULL)
			c->cmd = s;
		else
			c->args[c->nargs++] = argv[i];
	}
	if (c->cmd == NULL)
		return *code = usage_error(NULL, "no command given (popsift help lists them)"), -1;
	return (*code = check_usage(c)) != 0 ? -1 : 0;
}

/* --shard K/N: this host's share of the config's accounts (run, daemon). */
/* 0, or the usage error (64) of a --shard that is not K/N. */
static int pick_shard(const struct cli *c)
{
	char *err = NULL;
	if (c->shard == NULL || shard_select(c->shard, &err) == 0)
		return 0;
	int code = usage_error(c->cmd, "%s", err);
	free(err);
	return code;
}

static char *config_path(const struct cli *c)
{
	if (c->config)
		return xstrdup(c->config);
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && *xdg)
		return xasprintf("%s/popsift/config", xdg);
	return expand_tilde("~/.config/popsift/config");
}

static int load_config(const struct cli *c, struct config *cf)
{
	char *path = config_path(c), *err = NULL;
	int rc = conf_load(path, cf, &err);
	if (rc < 0) {
		log_err(NULL, "%s", err);
		free(err);
	}
	free(path);
	return rc < 0 ? EX_CONFIG : 0;
}

static int cmd_run_cli(const struct cli *c)
{
	char *path = config_path(c);
	struct run_req q = { .config = path, .json = c->json, .all = c->all,
			     .dry_run = c->dry_run, .names = c->args, .nnames = c->nargs };
	int code = cmd_run(&q);
	free(path);
	return code;
}

static int cmd_check(const struct cli *c)
{
	struct config cf;
	int code = load_config(c, &cf);
	if (code)
		return code;
	int n = 0;
	for (const struct account *a = cf.accounts; a; a = a->next, n++) {
		if (log_level >= 1) {
			provider_describe(a, stdout);
			oauth_describe(a, stdout);
		}
		if (a->rules == NULL)
			continue;
		char *err = NULL;
		struct rules *r = rules_load(a->rules, &err);
		if (r == NULL) {
			log_err(NULL, "%s", err);
			free(err);
			code = EX_CONFIG;
			continue;
		}
		if (log_level >= 1)
			rules_dump(r, stdout);
		rules_free(r);
	}
	int lost = import_list_lost(cf.file, log_level >= 1 ? stdout : NULL);
	if (lost && log_level < 1)
		log_info(NULL, "%s: %d \"could not convert\" comment%s from popsift import: "
			 "check -v lists them", cf.file, lost, lost == 1 ? "" : "s");
	if (code == 0)
		log_info(NULL, "%s: %d account%s, OK", cf.file, n, n == 1 ? "" : "s");
	conf_free(&cf);
	return code;
}

/* --since 2d | 12h | 30m | 1w | 2026-11-01: the start of the log to
 * show, or -1 for anything else (a usage error, not an empty log). */
static long long parse_since(const char *s)
{
	if (s == NULL)
		return 0;
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end && *end == '\0') {
		tm.tm_isdst = -1;
		return (long long)mktime(&tm);
	}
	char *e;
	errno = 0;
	long n = strtol(s, &e, 10);
	long unit = *e == 'd' ? 86400 : *e == 'h' ? 3600 : *e == 'm' ? 60 : *e == 'w' ? 604800 :
		    *e == 's' || *e == '\0' ? 1 : 0;
	if (e == s || *s == '-' || *s == '+' || errno || unit == 0 || (*e && e[1]) ||
	    n > 100L * 366 * 86400 / unit)
		return -1;
	return (long long)time(NULL) - (long long)n * unit;
}

static int cmd_status(const struct cli *c)
{
	long long since = parse_since(c->since);
	if (since < 0)
		return usage_error(c->cmd, "--since \"%s\": expected an age (30m, 12h, 2d, 1w) "
				   "or a date (2026-11-01)", c->since);
	struct config cf;
	int code = load_config(c, &cf);
	if (code == 0 && (code = shard_check_names(&cf, c->args, c->nargs)) != 0)
		conf_free(&cf);
	if (code)
		return code;
	struct state *st = NULL;
	char *err = NULL;
	const char *acct = c->nargs ? c->args[0] : NULL;
	int rc = state_open(cf.state, &st, &err);
	if (rc == 0 && strcmp(c->cmd, "log") == 0)
		rc = state_log(st, acct, since, c->json, &err);
	else if (rc == 0) {
		/* the schedule is only current while the daemon holds the lock */
		char *sched = xasprintf("%s.sched", cf.state);
		int busy = access(sched, R_OK) == 0 && lock_busy(&cf);
		rc = state_status(st, acct, busy ? sched : NULL, c->json, &err);
		free(sched);
	}
	if (rc < 0) {
		log_err(NULL, "%s", err);
		free(err);
		code = EX_TEMPFAIL;
	}
	state_close(st);
	conf_free(&cf);
	return code;
}

static int cmd_new_cli(const struct cli *c)
{
	struct config cf;
	int code = load_config(c, &cf);
	if (code)
		return code;
	if ((code = shard_check_names(&cf, c->args, c->nargs)) == 0)
		code = cmd_new(&cf, c->nargs, c->args, c->json);
	conf_free(&cf);
	return code;
}

static int cmd_daemon(const struct cli *c)
{
	char *path = config_path(c);
	int code = sched_run(path);
	free(path);
	return code;
}

static int cmd_import_cli(const struct cli *c)
{
	char *path = config_path(c);
	int code = cmd_import(path, c->nargs, c->args, c->dry_run);
	free(path);
	return code;
}

static int cmd_authorize_cli(const struct cli *c)
{
	struct config cf;
	int code = load_config(c, &cf);
	if (code)
		return code;
	code = cmd_authorize(&cf, c->args[0]);
	conf_free(&cf);
	return code;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);   /* a file size limit is a failed write, not a death */
	struct sigaction sa = { .sa_handler = on_stop };   /* no SA_RESTART */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	umask(077);
	int code;
	if (argc > 1 && strcmp(argv[1], "filter") == 0) {
		for (int i = 2; i < argc; i++)
			if (special(argv[i], "filter", &code))
				return code;
		return cmd_filter(argc - 1, argv + 1);
	}
	if (parse_cli(argc, argv, &c, &code) < 0 || (code = pick_shard(&c)) != 0) {
		free(c.args);
		return code;
	}
	if (conn_global_init() < 0)
		return EX_SOFTWARE;
	if (!strcmp(c.cmd, "run"))
		code = cmd_run_cli(&c);
	else if (!strcmp(c.cmd, "new"))
		code = cmd_new_cli(&c);
	else if (!strcmp(c.cmd, "check"))
		code = cmd_check(&c);
	else if (!strcmp(c.cmd, "status") || !strcmp(c.cmd, "log"))
		code = cmd_status(&c);
	else if (!strcmp(c.cmd, "daemon"))
		code = cmd_daemon(&c);
	else if (!strcmp(c.cmd, "providers"))
		code = cmd_providers(c.nargs, c.args);
	else if (!strcmp(c.cmd, "import"))
		code = cmd_import_cli(&c);
	else if (!strcmp(c.cmd, "authorize"))
		code = cmd_authorize_cli(&c);
	else
		code = cmd_help(c.nargs ? c.args[0] : NULL);
	free(c.args);
	return code;
}
