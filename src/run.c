/* run.c — `popsift run`: one pass over the accounts, up to max_parallel
 * at once.  As in the daemon, polls run in child processes, each with
 * its own state database connection (a SQLite handle never crosses a
 * fork); unlike the daemon's one process per poll, a worker polls the
 * accounts it is handed one after the other, as `run` itself did, since
 * a fork, a database open and an exit per account cost ten times the
 * CPU of an empty poll.  A worker sends each result back as one line
 * (report.c result_pack); the parent prints the results in config
 * order, each as soon as it and every account before it are done.
 *
 * One account, or max_parallel 1, is polled in this process as before:
 * nothing to overlap, and the message progress line stays.  Workers stay
 * in run's process group, so a password_command may still ask on the
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

#include "ctl.h"
#include "fetch.h"
#include "ops.h"
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
	int    done;
	struct result r;
};

/* A worker process: polls the accounts it is handed, one at a time. */
struct worker {
	pid_t  pid;        /* alive while nonzero */
	int    cmd;        /* account numbers to it, -1 once told to finish */
	int    res;        /* "N result" lines from it, -1 when closed */
	char  *buf;        /* what it wrote, up to a whole line */
	size_t len;
	long   cur;        /* the account it polls, -1 none */
	double started, term_at;
	int    killed;
};

struct run {
	const struct config *cf;
	const struct runopts *o;
	struct job *jobs;
	struct worker *w;
	size_t n, nw, next_start, next_print, alive, ndone;
	int    json, first, code, progress, progress_shown;
	double progress_at;
};

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
static size_t collect(struct run *R, const struct run_req *q)
{
	size_t n = 0;
	for (const struct account *a = R->cf->accounts; a; a = a->next)
		n++;
	R->jobs = xcalloc(n + 1, sizeof *R->jobs);
	for (const struct account *a = R->cf->accounts; a; a = a->next)
		if (wanted(q, a->name))
			R->jobs[R->n++].a = a;
	return R->n;
}

/* ---- results, in config order ---- */

/* The parallel run's progress line: accounts done, not messages. */
static void progress_line(struct run *R, int erase)
{
	double t = now_sec();
	if (!R->progress)
		return;
	if (erase) {
		if (R->progress_shown)
			fprintf(stderr, "\r%*s\r", 60, "");
		R->progress_shown = 0;
		return;
	}
	if (R->progress_shown && t - R->progress_at < 0.5)
		return;
	R->progress_shown = 1;
	R->progress_at = t;
	fprintf(stderr, "\rpopsift: %zu/%zu accounts done, %zu processes ", R->ndone, R->n,
		R->alive);
}

static void print_ready(struct run *R)
{
	while (R->next_print < R->n && R->jobs[R->next_print].done) {
		struct job *j = &R->jobs[R->next_print++];
		progress_line(R, 1);
		R->code = result_worse(R->code, j->r.code);
		result_print(j->a, &j->r, R->json, R->first);
		R->first = 0;
		result_free(&j->r);
	}
	fflush(stdout);
	if (R->next_print < R->n)
		progress_line(R, 0);
}

/* ---- worker processes ---- */

static int child_code;

/* The worker's last exit handler: registered right after the fork, it
 * runs after those its polls registered (the deliverers' goodbyes, such
 * as an SMTP QUIT) and before those inherited from the parent (OpenSSL's
 * and the libraries' teardown), which would only free memory the
 * process is about to lose, copying on write every page they touch. */
static void child_exit(void)
{
	fflush(NULL);
	_exit(child_code);
}

/* The next account number from the parent, -1 at EOF. */
static long next_order(int fd)
{
	char line[32];
	size_t n = 0;
	while (n < sizeof line - 1) {
		ssize_t got = read(fd, line + n, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return strtol(line, NULL, 10);
}

static void poll_one(struct run *R, struct state *st, long i, int res)
{
	struct result r = { 0 };
	r.code = fetch_account(R->jobs[i].a, st, R->o, &r);
	after_account(R->cf, R->jobs[i].a, st, &r, R->o->dry_run);
	child_code = result_worse(child_code, r.code);
	char *packed = result_pack(&r), *line = xasprintf("%ld %s", i, packed);
	write_all(res, line, strlen(line));
	free(line);
	free(packed);
	result_free(&r);
}

/* A worker opens its own connection to the state database (a SQLite
 * handle never crosses a fork) and polls the accounts it is handed, as
 * the whole of `run` did before: forking for every account cost ten
 * times the CPU of an empty poll. */
static _Noreturn void worker_main(struct run *R, int cmd, int res)
{
	atexit(child_exit);
	for (size_t i = 0; i < R->nw; i++) {   /* the other workers' pipes are the parent's */
		if (R->w[i].cmd >= 0)
			close(R->w[i].cmd);
		if (R->w[i].res >= 0)
			close(R->w[i].res);
	}
	if (R->o->dry_run)   /* whole lines: the accounts' --dry-run lines interleave */
		setvbuf(stdout, NULL, _IOLBF, 0);
	struct state *st = NULL;
	char *err = NULL;
	long i = next_order(cmd);
	if (i >= 0 && state_open(R->cf->state, &st, &err) < 0) {
		for (; i >= 0; i = next_order(cmd)) {
			struct result r = { .code = EX_TEMPFAIL, .error = err };
			char *packed = result_pack(&r), *line = xasprintf("%ld %s", i, packed);
			write_all(res, line, strlen(line));
			free(line);
			free(packed);
		}
		child_code = EX_TEMPFAIL;
	}
	for (; i >= 0 && (size_t)i < R->n; i = next_order(cmd))
		poll_one(R, st, i, res);
	state_close(st);
	exit(child_code);   /* not _exit: atexit handlers QUIT the SMTP connection */
}

/* 0, or -1 when no process could be started. */
static int spawn(struct run *R, struct worker *w)
{
	int c[2], r[2];
	if (pipe2(c, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(r, O_CLOEXEC) < 0) {
		close(c[0]);
		close(c[1]);
		return -1;
	}
	fflush(NULL);   /* the child must not write the parent's buffers again */
	pid_t pid = fork();
	if (pid == 0) {
		close(c[1]);
		close(r[0]);
		worker_main(R, c[0], r[1]);
	}
	close(c[0]);
	close(r[1]);
	if (pid < 0) {
		close(c[1]);
		close(r[0]);
		return -1;
	}
	*w = (struct worker){ .pid = pid, .cmd = c[1], .res = r[0], .cur = -1 };
	R->alive++;
	return 0;
}

static void finish_job(struct run *R, long i, struct result *r)
{
	R->jobs[i].r = *r;
	R->jobs[i].done = 1;
	R->ndone++;
}

static void job_error(struct run *R, long i, int code, char *error)
{
	struct result r = { .code = code, .error = error };
	finish_job(R, i, &r);
}

static void retire(struct worker *w)
{
	if (w->cmd >= 0)
		close(w->cmd);
	w->cmd = -1;
}

/* Hand idle workers the next accounts; start workers up to max_parallel
 * while accounts wait; tell idle ones to finish once none do. */
static void dispatch(struct run *R)
{
	for (size_t k = 0; k < R->nw; k++) {
		struct worker *w = &R->w[k];
		if (w->pid == 0 && R->next_start < R->n && !stop_requested && spawn(R, w) < 0) {
			if (R->alive > 0)
				continue;   /* out of processes: the others carry on */
			job_error(R, (long)R->next_start++,
				  EX_TEMPFAIL, xasprintf("cannot start a process for the poll: %s",
							 strerror(errno)));
			continue;
		}
		if (w->pid == 0 || w->cur >= 0 || w->cmd < 0)
			continue;
		if (R->next_start >= R->n || stop_requested) {
			retire(w);
			continue;
		}
		char line[32];
		int len = snprintf(line, sizeof line, "%zu\n", R->next_start);
		w->cur = (long)R->next_start++;
		w->started = now_sec();
		if (write_all(w->cmd, line, (size_t)len) < 0)
			retire(w);   /* it died: its end (ended) reports the account */
	}
}

/* One "N result" line from a worker. */
static void take_line(struct run *R, struct worker *w, char *line)
{
	char *rest;
	long i = strtol(line, &rest, 10);
	struct result r;
	if (i != w->cur || i < 0 || *rest != ' ' || result_unpack(rest + 1, &r) < 0) {
		log_err(NULL, "a poll's worker sent a garbled result: stopping it");
		kill(w->pid, SIGKILL);
		w->killed = 1;
		retire(w);
		return;
	}
	finish_job(R, i, &r);
	w->cur = -1;
}

/* A worker ended: an account it was polling ends without a result, an
 * error of that account alone, not of the run. */
static void ended(struct run *R, struct worker *w, int status)
{
	if (w->res >= 0)
		close(w->res);
	retire(w);
	R->alive--;
	free(w->buf);
	long i = w->cur;
	struct worker gone = *w;
	*w = (struct worker){ .cmd = -1, .res = -1, .cur = -1 };
	if (i < 0)
		return;
	int code = gone.term_at > 0 ? EX_TEMPFAIL : EX_SOFTWARE;
	char *why = WIFSIGNALED(status)
		? xasprintf("the poll ended without a result: killed by signal %d%s",
			    WTERMSIG(status), gone.killed ? " (it did not stop in time after TERM)" : "")
		: xasprintf("the poll ended without a result (exit %d)", WEXITSTATUS(status));
	log_err(R->jobs[i].a->name, "%s", why);
	job_error(R, i, code, why);
}

static struct worker *worker_of(struct run *R, pid_t pid)
{
	for (size_t k = 0; k < R->nw; k++)
		if (R->w[k].pid == pid)
			return &R->w[k];
	return NULL;
}

/* Read what a worker wrote; at EOF it is exiting: reap it. */
static void drain(struct run *R, struct worker *w)
{
	char tmp[4096];
	ssize_t got = read(w->res, tmp, sizeof tmp);
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (got > 0) {
		w->buf = xrealloc(w->buf, w->len + (size_t)got + 1);
		memcpy(w->buf + w->len, tmp, (size_t)got);
		w->len += (size_t)got;
		char *nl;
		while (w->pid && (nl = memchr(w->buf, '\n', w->len)) != NULL) {
			*nl = '\0';
			take_line(R, w, w->buf);
			size_t used = (size_t)(nl + 1 - w->buf);
			memmove(w->buf, nl + 1, w->len - used);
			w->len -= used;
		}
		return;
	}
	close(w->res);
	w->res = -1;
	int status;
	pid_t pid = w->pid;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return;
	ended(R, w, status);
}

/* ---- deadlines and signals ---- */

static double deadline_of(const struct run *R, const struct worker *w)
{
	if (w->term_at > 0)
		return w->killed ? 0 : w->term_at + KILL_GRACE;
	const struct account *a = w->cur >= 0 ? R->jobs[w->cur].a : NULL;
	if (a == NULL || a->session_timeout <= 0)
		return 0;
	return w->started + a->session_timeout + a->timeout + CAP_GRACE;
}

/* TERM to a poll past its cap (or to every poll once the run is told to
 * stop), KILL to one that outlives KILL_GRACE after it.  A worker told
 * TERM polls nothing more.  Returns the next deadline, 0 for none. */
static double enforce(struct run *R)
{
	double t = now_sec(), wake = 0;
	for (size_t k = 0; k < R->nw; k++) {
		struct worker *w = &R->w[k];
		if (w->pid == 0)
			continue;
		double d = deadline_of(R, w);
		if (w->term_at == 0 && (stop_requested || (d > 0 && t >= d))) {
			if (!stop_requested)
				log_err(R->jobs[w->cur].a->name, "the poll has run %.0f s, past "
					"session_timeout: ending it", t - w->started);
			kill(w->pid, SIGTERM);
			w->term_at = t;
			retire(w);
		} else if (d > 0 && t >= d) {
			log_err(w->cur >= 0 ? R->jobs[w->cur].a->name : NULL, "the poll did not "
				"stop within %d s of TERM: killing it", KILL_GRACE);
			kill(w->pid, SIGKILL);
			w->killed = 1;
		}
		d = deadline_of(R, w);
		if (d > 0 && (wake == 0 || d < wake))
			wake = d;
	}
	return wake;
}

/* Told to stop: accounts not started yet are not polled this run. */
static void skip_rest(struct run *R)
{
	for (; R->next_start < R->n; R->next_start++)
		job_error(R, (long)R->next_start, EX_TEMPFAIL,
			  xstrdup("not polled: stopped by a signal"));
}

/* Wait for output, an exit or a deadline, whichever comes first. */
static void wait_some(struct run *R, double wake)
{
	struct pollfd *pf = xcalloc(R->nw + 1, sizeof *pf);
	struct worker **who = xcalloc(R->nw + 1, sizeof *who);
	nfds_t np = 0;
	for (size_t k = 0; k < R->nw; k++)
		if (R->w[k].pid && R->w[k].res >= 0) {
			pf[np].fd = R->w[k].res;
			pf[np].events = POLLIN;
			who[np++] = &R->w[k];
		}
	/* a worker whose pipe a grandchild still holds is found by waitpid */
	int ms = 250;
	if (wake > 0) {
		double left = (wake - now_sec()) * 1000;
		ms = left < 0 ? 0 : left < ms ? (int)left + 1 : ms;
	}
	if (poll(pf, np, ms) > 0)
		for (nfds_t k = 0; k < np; k++)
			if (pf[k].revents && who[k]->pid && who[k]->res == pf[k].fd)
				drain(R, who[k]);
	free(pf);
	free(who);
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker *w = worker_of(R, pid);
		if (w == NULL)
			continue;
		if (w->res >= 0) {   /* what it wrote before it ended */
			fcntl(w->res, F_SETFL, O_NONBLOCK);
			for (int i = 0; i < 1024 && w->res >= 0 && w->pid == pid; i++)
				drain(R, w);
		}
		if (w->pid == pid)
			ended(R, w, status);
	}
}

static void run_parallel(struct run *R)
{
	R->nw = R->n < (size_t)R->cf->max_parallel ? R->n : (size_t)R->cf->max_parallel;
	R->w = xcalloc(R->nw + 1, sizeof *R->w);
	for (size_t k = 0; k < R->nw; k++)
		R->w[k] = (struct worker){ .cmd = -1, .res = -1, .cur = -1 };
	while (R->next_print < R->n) {
		if (stop_requested)
			skip_rest(R);
		dispatch(R);
		double wake = enforce(R);
		if (R->alive > 0)
			wait_some(R, wake);
		print_ready(R);
	}
	while (R->alive > 0) {   /* idle workers told to finish */
		for (size_t k = 0; k < R->nw; k++)
			retire(&R->w[k]);
		wait_some(R, enforce(R));
	}
	free(R->w);
}

static void run_here(struct run *R, struct state *st)
{
	for (size_t i = 0; i < R->n; i++) {
		struct job *j = &R->jobs[i];
		fetch_account(j->a, st, R->o, &j->r);
		after_account(R->cf, j->a, st, &j->r, R->o->dry_run);
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
	int code = shard_check_names(&cf, q->names, q->nnames), lockfd = -1;
	shard_apply(&cf);
	/* the daemon holds the state: it polls them now, we print (ctl.c) */
	if (code == 0) {
		signal(SIGHUP, SIG_IGN);   /* logrotate's is for the daemon */
		int dc = ctl_run(&cf, q->names, q->nnames, q->json, q->all, q->dry_run);
		if (dc != CTL_NO_DAEMON) {
			conf_free(&cf);
			return dc;
		}
	}
	struct state *st = NULL;
	if (code == 0)
		code = open_run(&cf, &lockfd, &st);
	if (code) {
		if (lockfd >= 0)
			close(lockfd);
		conf_free(&cf);
		return code;
	}
	struct runopts o = { .all = q->all, .dry_run = q->dry_run, .json = q->json };
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
