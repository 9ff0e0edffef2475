/* deliver-mda.c — pipe the message to a command (procmail,
 * dovecot-lda…), run without a shell and with a minimal environment.
 * Exit 0 delivered; 75 (EX_TEMPFAIL) try later; anything else failed.
 * It cannot be taken back: at-least-once.
 *
 * The envelope goes with it as fetchmail's and mpop's do: %F (sender)
 * and %T (recipient) in its words, SENDER, RECIPIENT and
 * ORIGINAL_RECIPIENT in its environment (envelope.c checks them).  A
 * command with %T runs once per routed recipient. */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver.h"
#include "envelope.h"
#include "msg.h"

static int mda_open(struct target *t, char **err)
{
	(void)err;
	t->fd = -1;
	return 0;
}

/* The envelope's values, each plausible or "" (envelope.c). */
struct mda_env {
	const char *sender, *rcpt, *orig;
};

static const char *safe(const char *v)
{
	return v && envelope_plausible(v) ? v : "";
}

static void child(char **argv, int in, const struct mda_env *ev)
{
	char *env[9];
	int n = command_env(env);
	env[n++] = xasprintf("SENDER=%s", safe(ev->sender));
	env[n++] = xasprintf("RECIPIENT=%s", safe(ev->rcpt));
	env[n++] = xasprintf("ORIGINAL_RECIPIENT=%s", safe(ev->orig ? ev->orig : ev->rcpt));
	env[n] = NULL;
	dup2(in, 0);
	if (in != 0)
		close(in);
	signal(SIGPIPE, SIG_DFL);
	execvpe(argv[0], argv, env);
	_exit(127);
}

static int feed(void *arg, const char *p, size_t n)
{
	return write_all(*(int *)arg, p, n);
}

static int run_once(struct target *t, char **argv, struct msg *m, const struct envelope *e,
		    const struct mda_env *ev, char **err)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return seterr(err, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0)
		child(argv, pfd[0], ev);
	close(pfd[0]);
	char *e2 = NULL;
	int rc = pid < 0 ? -1 : write_all(pfd[1], e->prepend, e->prependlen);
	if (rc == 0)
		rc = msg_chunks(m, feed, &pfd[1], &e2);
	int werr = errno;
	close(pfd[1]);
	int status = 0;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	t->temp_fail = WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL;
	if (pid < 0)
		rc = seterr(err, "cannot start %s: %s", argv[0], strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = seterr(err, "%s %s %d%s", argv[0],
			    WIFEXITED(status) ? "exited with" : "killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
			    t->temp_fail ? " (try later)" :
			    WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (not found?)" : "");
	else if (rc < 0)
		rc = seterr(err, "writing to %s: %s", argv[0], e2 ? e2 : strerror(werr));
	free(e2);
	return rc;
}

/* %T without routed recipients: the account's mda_rcpt, else the user
 * popsift runs as (the local user, as fetchmail's default). */
static const char *default_rcpt(const struct envelope *e)
{
	if (e->account && e->account->mda_rcpt)
		return e->account->mda_rcpt;
	const char *u = getenv("USER");
	struct passwd *pw = u ? NULL : getpwuid(getuid());
	return u ? u : pw ? pw->pw_name : "";
}

static int mda_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	char *const dflt[] = { (char *)default_rcpt(e), NULL };
	char *const *rcpts = e->rcpts && e->rcpts[0] ? e->rcpts : dflt;
	/* without %T one run takes the message for every recipient */
	size_t n = envelope_wants_rcpt(t->dest.argv) ? SIZE_MAX : 1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n && rcpts[i]; i++) {
		struct mda_env ev = { e->sender, rcpts[i],
				      rcpts == e->rcpts && e->orig_rcpts ? e->orig_rcpts[i] : NULL };
		char **argv = envelope_argv(t->dest.argv, e->sender, rcpts[i]);
		rc = run_once(t, argv, m, e, &ev, err);
		free_argv(argv);
	}
	return rc;
}

static void mda_close(struct target *t) { (void)t; }

const struct deliverer deliver_mda = {
	.name = "mda",
	.undoable = 0,
	.open = mda_open,
	.write = mda_write,
	.undo = deliver_no_undo,
	.commit = deliver_no_commit,
	.close = mda_close,
	.recover = deliver_no_recover,
};
