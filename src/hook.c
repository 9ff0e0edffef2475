/* hook.c — `after_run COMMAND`: a command run after each poll of an
 * account (notify-send, biff, a metrics push), without a shell unless
 * the user writes one, with the run's counts in its environment.  It
 * cannot change what happened to the mail: its failure is only logged. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.h"

#define NVARS 9

static void child(char **argv, const struct account *a, const struct result *r)
{
	char *env[4 + NVARS + 1];
	int n = command_env(env);
	char *error = text_safe(r->error);
	env[n++] = xasprintf("POPSIFT_ACCOUNT=%s", a->name);
	env[n++] = xasprintf("POPSIFT_NEW=%d", r->nnew);
	env[n++] = xasprintf("POPSIFT_DELIVERED=%d", r->delivered);
	env[n++] = xasprintf("POPSIFT_KEPT=%d", r->kept);
	env[n++] = xasprintf("POPSIFT_DELETED=%d", r->deleted);
	env[n++] = xasprintf("POPSIFT_FAILED=%d", r->failed);
	env[n++] = xasprintf("POPSIFT_BYTES=%llu", r->bytes);
	env[n++] = xasprintf("POPSIFT_EXIT=%d", r->code);
	env[n++] = xasprintf("POPSIFT_ERROR=%s", error);
	env[n] = NULL;
	/* its own group, so a timeout reaches what it started too */
	setpgid(0, 0);
	int nul = open("/dev/null", O_RDONLY);
	dup2(nul, 0);
	/* stdout is popsift's (run --json): what the hook prints goes to stderr */
	dup2(2, 1);
	signal(SIGPIPE, SIG_DFL);
	execvpe(argv[0], argv, env);
	_exit(127);
}

/* The hook's wait status, or -1 when it outlived `seconds` (killed). */
static int wait_bounded(pid_t pid, int seconds)
{
	double until = now_sec() + seconds;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return status;
		if (w < 0 && errno != EINTR)
			return 0;
		if (now_sec() >= until)
			break;
		usleep(10000);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

void hook_run(const struct account *a, const struct result *r)
{
	if (a->after_run == NULL)
		return;
	char *err = NULL;
	char **argv = split_args(a->after_run, &err);
	if (argv == NULL || argv[0] == NULL) {
		log_err(a->name, "after_run: %s", err ? err : "empty command");
		free(err);
		free_argv(argv);
		return;
	}
	fflush(NULL);   /* the child must not write our buffers again */
	pid_t pid = fork();
	if (pid == 0)
		child(argv, a, r);
	if (pid < 0) {
		log_err(a->name, "after_run: cannot start %s: %s", argv[0], strerror(errno));
	} else {
		setpgid(pid, pid);
		int status = wait_bounded(pid, a->after_run_timeout);
		if (status == -1)
			log_err(a->name, "after_run %s did not finish within %d s: killed", argv[0],
				a->after_run_timeout);
		else if (WIFSIGNALED(status))
			log_err(a->name, "after_run %s killed by signal %d", argv[0], WTERMSIG(status));
		else if (WEXITSTATUS(status) != 0)
			log_err(a->name, "after_run %s exited with %d%s", argv[0], WEXITSTATUS(status),
				WEXITSTATUS(status) == 127 ? " (not found?)" : "");
	}
	free_argv(argv);
}

void after_account(const struct config *cf, const struct account *a, struct state *st,
		   const struct result *r, int dry_run)
{
	if (dry_run)
		return;
	metrics_write(cf, st);
	hook_run(a, r);
}
