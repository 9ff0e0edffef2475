/* run.h — `popsift run`: one pass over the accounts (run.c). */
#ifndef RUN_H
#define RUN_H

struct run_req {
	const char *config;   /* the config file's path */
	int    json, all, dry_run;
	char **names;         /* the accounts named on the command line, or none: all */
	int    nnames;
};

/* Returns the exit code: the worst of the accounts'. */
int cmd_run(const struct run_req *q);

#endif
