/* filter-run.c — run a command over a message: the rules' `filter`
 * action (its output becomes the message) and `pipe` condition (its
 * exit status and output are a verdict).
 *
 * No shell, a minimal environment, its own process group (a timeout
 * kills whatever it started), and a deadline on the whole run.  The
 * message goes in while the output comes out, under poll: a cat-like
 * filter writes while it reads, and with two full pipes a writer that
 * waited for the other side would wait forever.  The output is bounded
 * (a runaway filter must not fill the disk) and spilled to a temp file
 * past msg.c's threshold. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filter-run.h"
#include "msg.h"

static void child(char **argv, char **env, int in, int out)
{
	/* a filter worker blocks every signal (filter-ahead.c); exec keeps
	 * the mask, and the command must get its SIGPIPE and SIGTERM */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	dup2(in, 0);
	dup2(out, 1);
	signal(SIGPIPE, SIG_DFL);
	execvpe(argv[0], argv, env);
	_exit(127);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct run {
	const char *name;
	const char *in;
	size_t  inlen, sent;
	int     wfd, rfd;
	struct msg *out;
	size_t  max;
	long long deadline;
	char  **err;
};

static int feed(struct run *r)
{
	ssize_t k = write(r->wfd, r->in + r->sent, r->inlen - r->sent);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k < 0) {
		/* EPIPE: it stopped reading (spamc -c past its limit, `true`): its
		 * exit status says whether that was right */
		close(r->wfd);
		r->wfd = -1;
		return 0;
	}
	r->sent += (size_t)k;
	if (r->sent == r->inlen) {
		close(r->wfd);
		r->wfd = -1;
	}
	return 0;
}

static int drain(struct run *r)
{
	char buf[65536];
	ssize_t k = read(r->rfd, buf, sizeof buf);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k < 0)
		return seterr(r->err, "%s: reading its output: %s", r->name, strerror(errno));
	if (k == 0) {
		close(r->rfd);
		r->rfd = -1;
		return 0;
	}
	if (r->out->size + (size_t)k > r->max)
		return seterr(r->err, "%s: output larger than %zu bytes", r->name, r->max);
	return msg_append(r->out, buf, (size_t)k, r->err);
}

static int pump(struct run *r)
{
	while (r->rfd >= 0) {
		struct pollfd pf[2] = { { .fd = r->rfd, .events = POLLIN },
					{ .fd = r->wfd, .events = POLLOUT } };
		long long left = r->deadline - now_ms();
		if (left <= 0)
			return seterr(r->err, "%s: timed out", r->name);
		int k = poll(pf, r->wfd >= 0 ? 2 : 1, (int)(left > 60000 ? 60000 : left));
		if (k < 0 && errno != EINTR)
			return seterr(r->err, "%s: poll: %s", r->name, strerror(errno));
		if (k > 0 && r->wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)))
			feed(r);
		if (k > 0 && (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) && drain(r) < 0)
			return -1;
	}
	return 0;
}

/* Wait for the exit until the deadline; past it, or after a failure,
 * kill the whole group.  0 exited, -1 killed by us, -2 by a signal. */
static int reap(pid_t pid, int failed, long long deadline, int *status)
{
	int nap = 1;    /* ms: it usually exits right after closing its output */
	for (;;) {
		if (failed || now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			failed = 1;   /* it may be reaped right below: ours, not "by signal" */
		}
		pid_t w = waitpid(pid, status, failed ? 0 : WNOHANG);
		if (w == pid)
			return failed ? -1 : WIFSIGNALED(*status) ? -2 : 0;
		if (w < 0 && errno != EINTR)
			return -1;
		if (w == 0)
			poll(NULL, 0, nap);
		nap = nap < 32 ? nap * 2 : nap;
	}
}

static int start(char **argv, pid_t *pid, int *wfd, int *rfd, char **err)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return seterr(err, "pipe: %s", strerror(errno));
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return seterr(err, "pipe: %s", strerror(errno));
	}
	/* built before the fork: other threads may be running filters too,
	 * and the child of a threaded process should only exec */
	char *env[6];
	int nenv = command_env(env);
	env[nenv] = NULL;
	*pid = fork();
	if (*pid == 0)
		child(argv, env, in[0], out[1]);
	for (int i = 1; i < nenv; i++)   /* env[0] is a literal */
		free(env[i]);
	close(in[0]);
	close(out[1]);
	if (*pid < 0) {
		close(in[1]);
		close(out[0]);
		return seterr(err, "cannot start %s: %s", argv[0], strerror(errno));
	}
	setpgid(*pid, *pid);   /* both sides: no race with the kill */
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	*wfd = in[1];
	*rfd = out[0];
	return 0;
}

int filter_run(char **argv, struct msg *in, struct msg *out, size_t max, int timeout,
	       int *code, char **err)
{
	size_t inlen;
	const char *p = msg_map(in, &inlen, err);
	if (p == NULL)
		return -1;
	struct run r = { .name = argv[0], .in = p, .inlen = inlen, .out = out, .max = max,
			 .deadline = now_ms() + (long long)(timeout > 0 ? timeout : 60) * 1000,
			 .err = err };
	pid_t pid = -1;
	if (start(argv, &pid, &r.wfd, &r.rfd, err) < 0)
		return -1;
	if (inlen == 0) {
		close(r.wfd);
		r.wfd = -1;
	}
	int rc = pump(&r);
	if (r.wfd >= 0)
		close(r.wfd);
	if (r.rfd >= 0)
		close(r.rfd);
	int status = 0;
	int w = reap(pid, rc < 0, r.deadline, &status);
	if (rc < 0)
		return -1;
	if (w == -2)
		return seterr(err, "%s: killed by signal %d", argv[0], WTERMSIG(status));
	if (w < 0)
		return seterr(err, "%s: timed out", argv[0]);
	*code = WEXITSTATUS(status);
	return msg_finish(out, err);
}
