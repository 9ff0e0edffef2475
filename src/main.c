/* main.c — command line: run, daemon, check, filter, status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fetch.h"
#include "import.h"
#include "oauth.h"
#include "provider.h"
#include "sched.h"
#include "rules.h"
#include "run.h"
#include "shard.h"
#include "state.h"

int cmd_filter(int argc, char **argv);

struct cli {
	const char *config;
	const char *since;
	const char *shard;
	int json, all, dry_run;
	const char *cmd;
	char **args;
	int nargs;
};

static void usage(void)
{
	fputs("usage: popsift [-f CONFIG] [-v | -vv | -q] run [--all] [--dry-run] [--json]\n"
	      "               [--shard K/N] [ACCOUNT...]\n"
	      "       popsift [-f CONFIG] daemon [--shard K/N]\n"
	      "       popsift [-f CONFIG] check\n"
	      "       popsift filter -r RULES [--dry-run] [--mbox F | --maildir D | FILE... | < MSG]\n"
	      "       popsift [-f CONFIG] status [--json] [ACCOUNT]\n"
	      "       popsift [-f CONFIG] log [--since 2d|DATE] [--json] [ACCOUNT]\n"
	      "       popsift import fetchmailrc [FILE]\n"
	      "       popsift [-f CONFIG] [--dry-run] import fetchids|mpop-uidls|getmail-oldmail\n"
	      "               FILE [ACCOUNT]\n"
	      "       popsift providers [NAME]\n"
	      "       popsift [-f CONFIG] authorize ACCOUNT\n", stderr);
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
	c->args = xcalloc((size_t)argc + 1, sizeof *c->args);
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "-f") && i + 1 < argc)
			c->config = argv[++i];
		else if (!strcmp(s, "-v"))
			log_level = log_level < 0 ? 1 : log_level + 1;
		else if (!strcmp(s, "-vv"))
			log_level = 2;
		else if (!strcmp(s, "-q"))
			log_level = -1;
		else if (!strcmp(s, "--since") && i + 1 < argc)
			c->since = argv[++i];
		else if (!strcmp(s, "--shard") && i + 1 < argc)
			c->shard = argv[++i];
		else if (!strcmp(s, "--json"))
			c->json = 1;
		else if (!strcmp(s, "--all"))
			c->all = 1;
		else if (!strcmp(s, "--dry-run") || !strcmp(s, "-n"))
			c->dry_run = 1;
		else if (s[0] == '-' && s[1] != '\0')
			return fprintf(stderr, "popsift: unknown option %s\n", s), -1;
		else if (c->cmd == NULL)
			c->cmd = s;
		else
			c->args[c->nargs++] = argv[i];
	}
	return c->cmd ? 0 : -1;
}

/* --shard K/N: this host's share of the config's accounts (run, daemon). */
static int pick_shard(const struct cli *c)
{
	char *err = NULL;
	if (c->shard == NULL)
		return 0;
	if (strcmp(c->cmd, "run") != 0 && strcmp(c->cmd, "daemon") != 0)
		return fprintf(stderr, "popsift: --shard is for run and daemon\n"), -1;
	if (shard_select(c->shard, &err) < 0) {
		fprintf(stderr, "popsift: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
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
	if (code == 0)
		log_info(NULL, "%s: %d account%s, OK", cf.file, n, n == 1 ? "" : "s");
	conf_free(&cf);
	return code;
}

/* --since 2d | 12h | 2026-11-01: the start of the log to show. */
static long long parse_since(const char *s)
{
	if (s == NULL)
		return 0;
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%d", &tm);
	if (end && *end == '\0')
		return (long long)mktime(&tm);
	char *e;
	long n = strtol(s, &e, 10);
	long unit = *e == 'd' ? 86400 : *e == 'h' ? 3600 : *e == 'm' ? 60 : *e == 'w' ? 604800 : 1;
	return (long long)time(NULL) - (long long)n * unit;
}

static int cmd_status(const struct cli *c)
{
	struct config cf;
	int code = load_config(c, &cf);
	if (code)
		return code;
	struct state *st = NULL;
	char *err = NULL;
	const char *acct = c->nargs ? c->args[0] : NULL;
	int rc = state_open(cf.state, &st, &err);
	if (rc == 0 && strcmp(c->cmd, "log") == 0)
		rc = state_log(st, acct, parse_since(c->since), c->json, &err);
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
	if (c->nargs != 1) {
		usage();
		return EX_USAGE;
	}
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
	if (argc > 1 && strcmp(argv[1], "filter") == 0)
		return cmd_filter(argc - 1, argv + 1);
	if (parse_cli(argc, argv, &c) < 0 || pick_shard(&c) < 0) {
		usage();
		free(c.args);
		return EX_USAGE;
	}
	if (conn_global_init() < 0)
		return EX_SOFTWARE;
	int code;
	if (!strcmp(c.cmd, "run"))
		code = cmd_run_cli(&c);
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
	else {
		usage();
		code = EX_USAGE;
	}
	free(c.args);
	return code;
}
