/* run.c — `popsift run`: one pass over the accounts, up to max_parallel
 * at once.  As in the daemon, each account is polled in a child process
 * of its own with its own state database connection (a SQLite handle
 * never crosses a fork); the child sends its result back as one line
 * (report.c result_pack) and the parent prints the results in config
 * order, each as soon as it and every account before it are done.
 *
 * One account, or max_parallel 1, is polled in this process as before:
 * nothing to overlap, and the progress line stays.  Children stay in
 * run's process group, so a password_command may still ask on the
 * terminal and ^C reaches every poll at once, as it reached the one. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetch.h"
#include "run.h"
#include "sched.h"
#include "shard.h"
#include "state.h"

/* After session_timeout a poll still has its last reply's timeout and a
 * batch commit to finish, as in the daemon (sched.c). */
#define CAP_GRACE  10
/* Between TERM and KILL: time to commit or abandon a batch safely. */
#define KILL_GRACE 10

struct job {
	const struct account *a;
	pid_t  pid;        /* running while nonzero */
	int    fd;         /* the child's result pipe, -1 when closed */
	char  *buf;        /* what the child wrote */
	size_t len;
	double started, term_at;
	int    killed, done;
	struct result r;
};

struct run {
	const struct config *cf;
	const struct runopts *o;
	struct job *jobs;
	size_t n, next_start, next_print, running, ndone;
	int    json, first, code, progress;
	double progress_at;
};

/* The most telling code when accounts fail differently. */
static int worse(int a, int b)
{
	static const int order[] = { EX_CONFIG, EX_NOPERM, EX_UNAVAILABLE, EX_DATAERR,
				     EX_SOFTWARE, EX_TEMPFAIL, 0 };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (a == order[i] || b == order[i])
			return order[i];
	return a ? a : b;
}

/* ---- which accounts ---- */

static int wanted(const struct run_req *q, const char *name)
{
	if (q->nnames == 0)
		return 1;
	for (int i = 0; i < q->nnames; i++)
		if (strcmp(q->names[i], name) == 0)
			return 1;
	return 0;
}

/* Names on the command line must be accounts of the config, and of this
 * host's shard. */
static int check_names(const struct run_req *q, const struct config *cf)
{
	unsigned k, n;
	shard_chosen(&k, &n);
	for (int i = 0; i < q->nnames; i++) {
		const struct account *a = cf->accounts;
		while (a && strcmp(a->name, q->names[i]) != 0)
			a = a->next;
		if (a == NULL) {
			log_err(NULL, "no account \"%s\" in %s", q->names[i], cf->file);
			return EX_USAGE;
		}
		if (n > 0 && shard_of(a->name, n) != k) {
			log_err(NULL, "account \"%s\" is in shard %u/%u, not %u/%u", a->name,
				shard_of(a->name, n), n, k, n);
			return EX_USAGE;
		}
	}
	return 0;
}

static size_t collect(struct run *R, const struct run_req *q)
{
	size_t n = 0;
	for (const struct account *a = R->cf->accounts; a; a = a->next)
		n++;
	R->jobs = xcalloc(n + 1, sizeof *R->jobs);
	for (const struct account *a = R->cf->accounts; a; a = a->next)
		if (wanted(q, a->name)) {
			R->jobs[R->n].a = a;
			R->jobs[R->n++].fd = -1;
		}
	return R->n;
}

/* ---- results, in config order ---- */

/* The parallel run's progress line: accounts done, not messages. */
static void progress_line(struct run *R, int erase)
{
	double t = now_sec();
	if (!R->progress || (!erase && t - R->progress_at < 0.5))
		return;
	if (erase) {
		if (R->progress_at > 0)
			fprintf(stderr, "\r%*s\r", 60, "");
		R->progress_at = 0;
		return;
	}
	R->progress_at = t;
	fprintf(stderr, "\rpopsift: %zu/%zu accounts done, %zu polling ", R->ndone, R->n,
		R->running);
}

static void print_ready(struct run *R)
{
	while (R->next_print < R->n && R->jobs[R->next_print].done) {
		struct job *j = &R->jobs[R->next_print++];
		progress_line(R, 1);
		R->code = worse(R->code, j->r.code);
		result_print(j->a, &j->r, R->json, R->first);
		R->first = 0;
		result_free(&j->r);
		free(j->buf);
		j->buf = NULL;
	}
	fflush(stdout);
	progress_line(R, 0);
}

static void job_error(struct job *j, int code, char *error)
{
	memset(&j->r, 0, sizeof j->r);
	j->r.code = code;
	j->r.error = error;
	j->done = 1;
}

/* ---- one child per account ---- */

static int child_code;

/* The child's last exit handler: registered right after the fork, it
 * runs after those the poll registered (the deliverers' goodbyes, such
 * as an SMTP QUIT) and before those inherited from the parent (OpenSSL's
 * and the libraries' teardown), which would only free memory the
 * process is about to lose, copying on write every page they touch: on
 * a virtual machine that tripled the CPU time of an empty poll. */
static void child_exit(void)
{
	fflush(NULL);
	_exit(child_code);
}

static _Noreturn void child(struct run *R, struct job *j, int wfd)
{
	atexit(child_exit);
	for (size_t i = 0; i < R->n; i++)   /* the others' pipes are the parent's */
		if (R->jobs[i].fd >= 0)
			close(R->jobs[i].fd);
	if (R->o->dry_run)   /* whole lines: accounts' --dry-run lines interleave */
		setvbuf(stdout, NULL, _IOLBF, 0);
	struct state *st = NULL;
	struct result r = { 0 };
	char *err = NULL;
	int code;
	if (state_open(R->cf->state, &st, &err) < 0) {
		r.code = code = EX_TEMPFAIL;
		r.error = err;
	} else {
		code = fetch_account(j->a, st, R->o, &r);
		r.code = code;
	}
	char *line = result_pack(&r);
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t w = write(wfd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(line);
	result_free(&r);
	state_close(st);
	child_code = code;
	exit(code);   /* not _exit: atexit handlers QUIT the SMTP connection */
}

/* 0, or -1 when no process could be started (retry when one ends). */
static int start(struct run *R, struct job *j)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);   /* the child must not write the parent's buffers again */
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(R, j, p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	j->pid = pid;
	j->fd = p[0];
	j->started = now_sec();
	R->running++;
	return 0;
}

static void start_due(struct run *R)
{
	while (!stop_requested && R->next_start < R->n &&
	       R->running < (size_t)R->cf->max_parallel) {
		struct job *j = &R->jobs[R->next_start];
		if (start(R, j) < 0) {
			if (R->running > 0)
				return;   /* out of processes: wait for one to end */
			job_error(j, EX_TEMPFAIL, xasprintf("cannot start a process for the poll: %s",
							    strerror(errno)));
			R->ndone++;
		}
		R->next_start++;
	}
}

/* >0 bytes read, 0 at EOF, -1 on an error or nothing to read yet. */
static ssize_t append(struct job *j)
{
	char tmp[4096];
	ssize_t got = read(j->fd, tmp, sizeof tmp);
	if (got > 0) {
		j->buf = xrealloc(j->buf, j->len + (size_t)got + 1);
		memcpy(j->buf + j->len, tmp, (size_t)got);
		j->len += (size_t)got;
	}
	return got;
}

/* A poll that ended without a result line is that account's error, not
 * the run's: every other account's result is still printed. */
static void finish(struct run *R, struct job *j, int status)
{
	R->running--;
	R->ndone++;
	j->pid = 0;
	if (j->fd >= 0) {   /* what it wrote before it ended */
		fcntl(j->fd, F_SETFL, O_NONBLOCK);
		while (append(j) > 0)
			;
		close(j->fd);
		j->fd = -1;
	}
	j->buf = j->buf ? j->buf : xstrdup("");
	j->buf[j->len] = '\0';
	if (result_unpack(j->buf, &j->r) == 0) {
		j->done = 1;
		return;
	}
	int code = j->term_at > 0 ? EX_TEMPFAIL : EX_SOFTWARE;
	if (WIFSIGNALED(status))
		job_error(j, code, xasprintf("the poll ended without a result: killed by signal %d%s",
					     WTERMSIG(status), j->killed ? " (it did not stop "
					     "within the grace time after TERM)" : ""));
	else
		job_error(j, code, xasprintf("the poll ended without a result (exit %d)",
					     WEXITSTATUS(status)));
	log_err(j->a->name, "%s", j->r.error);
}

static struct job *job_of(struct run *R, pid_t pid)
{
	for (size_t i = 0; i < R->n; i++)
		if (R->jobs[i].pid == pid)
			return &R->jobs[i];
	return NULL;
}

/* Read what a child wrote; at EOF it is exiting: reap it. */
static void drain(struct run *R, struct job *j)
{
	ssize_t got = append(j);
	if (got > 0 || (got < 0 && (errno == EINTR || errno == EAGAIN)))
		return;
	close(j->fd);
	j->fd = -1;
	int status;
	while (waitpid(j->pid, &status, 0) < 0)
		if (errno != EINTR)
			return;
	finish(R, j, status);
}

/* ---- deadlines and signals ---- */

static double deadline_of(const struct job *j)
{
	if (j->term_at > 0)
		return j->killed ? 0 : j->term_at + KILL_GRACE;
	if (j->a->session_timeout <= 0)
		return 0;
	return j->started + j->a->session_timeout + j->a->timeout + CAP_GRACE;
}

/* TERM to polls past their cap (or every poll once the run is told to
 * stop), KILL to those that outlive KILL_GRACE after it.  Returns the
 * next deadline, 0 for none. */
static double enforce(struct run *R)
{
	double t = now_sec(), wake = 0;
	for (size_t i = 0; i < R->n; i++) {
		struct job *j = &R->jobs[i];
		if (j->pid == 0)
			continue;
		double d = deadline_of(j);
		if ((stop_requested && j->term_at == 0) || (d > 0 && t >= d)) {
			if (j->term_at > 0) {
				log_err(j->a->name, "the poll did not stop within %d s of TERM: "
					"killing it", KILL_GRACE);
				kill(j->pid, SIGKILL);
				j->killed = 1;
			} else {
				if (!stop_requested)
					log_err(j->a->name, "the poll has run %.0f s, past "
						"session_timeout: ending it", t - j->started);
				kill(j->pid, SIGTERM);
				j->term_at = t;
			}
			d = deadline_of(j);
		}
		if (d > 0 && (wake == 0 || d < wake))
			wake = d;
	}
	return wake;
}

/* Told to stop: accounts not started yet are not polled this run. */
static void skip_rest(struct run *R)
{
	for (; R->next_start < R->n; R->next_start++) {
		job_error(&R->jobs[R->next_start], EX_TEMPFAIL,
			  xstrdup("not polled: stopped by a signal"));
		R->ndone++;
	}
}

/* Wait for output, an exit or a deadline, whichever comes first. */
static void wait_some(struct run *R, double wake)
{
	struct pollfd *pf = xcalloc(R->n + 1, sizeof *pf);
	struct job **who = xcalloc(R->n + 1, sizeof *who);
	nfds_t np = 0;
	for (size_t i = 0; i < R->n; i++)
		if (R->jobs[i].pid && R->jobs[i].fd >= 0) {
			pf[np].fd = R->jobs[i].fd;
			pf[np].events = POLLIN;
			who[np++] = &R->jobs[i];
		}
	/* a child whose pipe a grandchild still holds is found by waitpid */
	int ms = 250;
	if (wake > 0) {
		double left = (wake - now_sec()) * 1000;
		ms = left < 0 ? 0 : left < ms ? (int)left + 1 : ms;
	}
	if (poll(pf, np, ms) > 0)
		for (nfds_t k = 0; k < np; k++)
			if (pf[k].revents)
				drain(R, who[k]);
	free(pf);
	free(who);
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct job *j = job_of(R, pid);
		if (j)
			finish(R, j, status);
	}
}

static void run_parallel(struct run *R)
{
	while (R->next_print < R->n) {
		start_due(R);
		if (stop_requested)
			skip_rest(R);
		double wake = enforce(R);
		if (R->running > 0)
			wait_some(R, wake);
		print_ready(R);
	}
}

static void run_here(struct run *R, struct state *st)
{
	for (size_t i = 0; i < R->n; i++) {
		struct job *j = &R->jobs[i];
		fetch_account(j->a, st, R->o, &j->r);
		j->done = 1;
		print_ready(R);
	}
}

/* ---- the command ---- */

static int open_run(struct config *cf, int *lockfd, struct state **st)
{
	char *err = NULL;
	/* logrotate's SIGHUP is for the daemon; a one-shot run carries on */
	signal(SIGHUP, SIG_IGN);
	if (log_open(cf->log, &err) < 0 || (*lockfd = lock_state(cf, cf->lock_wait, &err)) < 0 ||
	    state_open(cf->state, st, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	return 0;
}

int cmd_run(const struct run_req *q)
{
	struct config cf;
	char *err = NULL;
	if (conf_load(q->config, &cf, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		return EX_CONFIG;
	}
	int code = check_names(q, &cf), lockfd = -1;
	shard_apply(&cf);
	/* (a daemon holding the state is asked to poll instead: here, before the lock) */
	struct state *st = NULL;
	if (code == 0)
		code = open_run(&cf, &lockfd, &st);
	if (code) {
		if (lockfd >= 0)
			close(lockfd);
		conf_free(&cf);
		return code;
	}
	struct runopts o = { .all = q->all, .dry_run = q->dry_run };
	struct run R = { .cf = &cf, .o = &o, .json = q->json, .first = 1 };
	int parallel = collect(&R, q) > 1 && cf.max_parallel > 1;
	/* the progress line counts messages of one account, or accounts */
	o.progress = !parallel && isatty(2) && log_level == 0 && !q->json;
	R.progress = parallel && isatty(2) && log_level == 0 && !q->json;
	if (q->json)
		fputs("{\"accounts\":[", stdout);
	if (parallel) {
		state_close(st);   /* created and migrated once, before children race to */
		st = NULL;
		run_parallel(&R);
	} else {
		run_here(&R, st);
	}
	if (q->json)
		printf("],\"exit\":%d}\n", R.code);
	free(R.jobs);
	state_close(st);
	close(lockfd);
	conf_free(&cf);
	return R.code;
}
