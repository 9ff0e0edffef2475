/* sched.c — `popsift daemon`: polls each account every `interval`
 * seconds in a child process (up to max_parallel at once, so a hung
 * server never delays the others), backs off after failures, pauses an
 * account whose login keeps being refused, and handles signals:
 * TERM/INT stop safely, HUP reloads, USR1 polls now.  Every wait is
 * bounded: a poll that outlives session_timeout (plus CAP_GRACE) is
 * ended, and so is one that ignores TERM at shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fetch.h"
#include "oauth.h"
#include "ops.h"
#include "sched.h"
#include "shard.h"
#include "state.h"

#define AUTH_PAUSE 3   /* refused logins in a row before pausing */
/* After session_timeout a poll still has its last reply's timeout and
 * a batch commit to finish (the child ends its session itself). */
#define CAP_GRACE  10
/* Between TERM and KILL: time to commit or abandon a batch safely. */
#define KILL_GRACE 5
/* The longest a poll's packed result may be (its error is cut to fit). */
#define RES_MAX    16384

struct slot {
	char   *name;
	double  next;
	int     fails, auth_fails, paused;
	int     again;     /* SIGUSR1 came during a poll: poll again after it */
	int     orphan;    /* its account left the config while it polled */
	pid_t   pid;
	char   *ident;     /* login identity: a change unpauses */
	double  started;   /* when the poll began */
	double  term_at;   /* TERM sent (its cap passed, or shutdown); 0 not yet */
	int     killed;    /* KILL sent */
	int     res_fd;    /* the running poll's result pipe (report.c result_pack) */
	double  cur;       /* the adaptive interval now */
	double  asked;     /* `run` asked over the control socket then; 0 not */
	int     ask_all, poll_all;   /* ... with --all; the running poll has it */
	int     timed;     /* the next poll is on the schedule (not first, not asked) */
};

static volatile sig_atomic_t got_hup, got_usr1;
/* A signal that lands between reap() and poll() must still wake the
 * loop: the handler writes to this pipe, which poll() watches. */
static int wake_fd[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	if (wake_fd[1] >= 0 && write(wake_fd[1], "", 1) < 0)
		(void)0;   /* full pipe: a wake-up is pending anyway */
	errno = saved;
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else if (sig != SIGCHLD)
		stop_requested = 1;
}

static void install_signals(void)
{
	if (pipe2(wake_fd, O_NONBLOCK | O_CLOEXEC) < 0)
		wake_fd[0] = wake_fd[1] = -1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;   /* no SA_RESTART: waits must wake up */
	sigemptyset(&sa.sa_mask);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD };
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaction(sigs[i], &sa, NULL);
}

int lock_state(const struct config *cf, int wait_s, char **err)
{
	char *path = xasprintf("%s.lock", cf->state);
	mkdir_parent(path, 0700);   /* a failure shows in the open */
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		seterr(err, "cannot open lock file %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited++) {
		if (errno != EWOULDBLOCK || waited >= wait_s * 10 || stop_requested) {
			seterr(err, "another popsift is using %s (waited %d s): try again later",
			       cf->state, wait_s);
			close(fd);
			free(path);
			return -1;
		}
		usleep(100000);
	}
	free(path);
	return fd;
}

int lock_busy(const struct config *cf)
{
	char *path = xasprintf("%s.lock", cf->state);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	int busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

static double rnd(void)
{
	return (double)random() / (double)RAND_MAX;
}

/* `popsift authorize` after a revoked grant writes new token files: a
 * login change as much as a new password. */
static char *oauth_ident(const struct account *a)
{
	char *id = xstrdup("");
	for (int side = SIDE_POP3; side <= SIDE_IMAP; side++) {
		struct stat st = { 0 };
		char *path = account_oauth(a, (enum side)side) ? token_path(a, (enum side)side) : NULL;
		if (path && stat(path, &st) < 0)
			memset(&st, 0, sizeof st);
		char *n = xasprintf("%s\n%llu.%lld.%ld", id, (unsigned long long)st.st_ino,
				    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		free(id);
		free(path);
		id = n;
	}
	return id;
}

static char *ident_of(const struct account *a)
{
	char *oauth = oauth_ident(a);
	char *id = xasprintf("%s\n%d\n%s\n%s\n%s\n%d%s", a->host, a->port, a->user,
			     a->password ? a->password : "",
			     a->password_command ? a->password_command : "", (int)a->auth, oauth);
	free(oauth);
	return id;
}

struct sched {
	const char *path;
	struct config cf;
	struct slot *slots;
	size_t nslots;
	int running;
	struct ctl *ctl;
	unsigned long polls, timed;   /* started since the daemon started; on schedule */
	double lag_sum, lag_max;      /* of those on schedule */
	int dirty;          /* the schedule file is out of date */
	double written;     /* ... was last written then */
};

static struct account *account_named(struct config *cf, const char *name)
{
	for (struct account *a = cf->accounts; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

/* Slots follow the config: new accounts are polled now, kept ones keep
 * their schedule, and a changed login unpauses. */
static void sync_slots(struct sched *s)
{
	struct slot *old = s->slots;
	size_t nold = s->nslots, n = 0;
	for (struct account *a = s->cf.accounts; a; a = a->next)
		n++;
	s->slots = xcalloc(n + nold + 1, sizeof *s->slots);
	s->nslots = 0;
	for (struct account *a = s->cf.accounts; a; a = a->next) {
		struct slot *ns = &s->slots[s->nslots++];
		char *ident = ident_of(a);
		struct slot *os = NULL;
		for (size_t i = 0; i < nold; i++)
			if (old[i].name && strcmp(old[i].name, a->name) == 0)
				os = &old[i];
		if (os) {
			*ns = *os;
			ns->orphan = 0;
			os->name = NULL;
			os->ident = NULL;
			if (ns->paused && strcmp(ns->ident, ident) != 0) {
				ns->paused = ns->auth_fails = 0;
				ns->next = now_sec();
				log_info(a->name, "login settings changed: polling again");
			}
			free(ns->ident);
			ns->cur = sched_clamp(a, ns->cur);   /* into the new bounds */
		} else {
			ns->name = xstrdup(a->name);
			ns->next = now_sec();
			ns->cur = sched_clamp(a, 0);
			ns->res_fd = -1;
		}
		ns->ident = ident;
	}
	/* a removed account still polling: kept, so it is reaped and stopped */
	for (size_t i = 0; i < nold; i++) {
		if (old[i].name && old[i].pid) {
			s->slots[s->nslots] = old[i];
			s->slots[s->nslots++].orphan = 1;
			continue;
		}
		free(old[i].name);
		free(old[i].ident);
	}
	free(old);
}

/* A poll of name may still come: it is in the config, or it runs. */
static int has_slot(void *ctx, const char *name)
{
	const struct sched *s = ctx;
	for (size_t i = 0; i < s->nslots; i++)
		if (strcmp(s->slots[i].name, name) == 0 && (!s->slots[i].orphan || s->slots[i].pid))
			return 1;
	return 0;
}

static void reload(struct sched *s)
{
	struct config cf;
	char *err = NULL;
	got_hup = 0;
	log_reopen();
	if (conf_load(s->path, &cf, &err) < 0) {
		log_err(NULL, "reload failed, keeping the running config: %s", err);
		free(err);
		return;
	}
	shard_apply(&cf);
	conf_free(&s->cf);
	s->cf = cf;
	sync_slots(s);
	ctl_forget(s->ctl, has_slot, s);
	size_t n = 0;
	for (const struct account *a = cf.accounts; a; a = a->next)
		n++;
	log_info(NULL, "reloaded %s: %zu account%s", s->path, n, n == 1 ? "" : "s");
}

static void poll_now(struct sched *s)
{
	got_usr1 = 0;
	s->dirty = 1;
	for (size_t i = 0; i < s->nslots; i++) {
		s->slots[i].next = now_sec();
		s->slots[i].timed = 0;
		s->slots[i].paused = 0;
		s->slots[i].auth_fails = 0;
		s->slots[i].again = s->slots[i].pid != 0;
	}
}

/* The parent's descriptors are not the poll's: its wake-up pipe, the
 * control socket and the other polls' result pipes. */
static void child_fds(struct sched *s)
{
	for (int i = 0; i < 2; i++) {
		if (wake_fd[i] >= 0)
			close(wake_fd[i]);
		wake_fd[i] = -1;
	}
	ctl_child(s->ctl);
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].res_fd >= 0)
			close(s->slots[i].res_fd);
}

/* The result goes up the pipe for a `run` that asked the daemon. */
static void send_result(int fd, struct result *r)
{
	if (r->error && strlen(r->error) > RES_MAX / 4)
		r->error[RES_MAX / 4] = '\0';
	char *line = result_pack(r);
	if (fd >= 0 && write_all(fd, line, strlen(line)) < 0)
		(void)0;   /* the daemon then says how the poll ended */
	free(line);
}

static void child(struct sched *s, const struct account *a, int res_fd, int all)
{
	/* its own process group: a KILL reaches a password_command or an MDA too */
	setpgid(0, 0);
	child_fds(s);
	struct state *st = NULL;
	char *err = NULL;
	struct runopts o = { .all = all };
	struct result r;
	if (state_open(s->cf.state, &st, &err) < 0) {
		log_err(a->name, "%s", err);
		_exit(EX_TEMPFAIL);
	}
	int code = fetch_account(a, st, &o, &r);
	result_print(a, &r, 0, 1);
	send_result(res_fd, &r);
	after_account(&s->cf, a, st, &r, 0);
	state_close(st);
	if (r.nnew == 0) {
		/* nothing new, so no deliverer has an atexit goodbye to say: skip
		 * the libraries' destructors (OpenSSL frees every table it built),
		 * a tenth of what an empty poll costs */
		fflush(NULL);
		_exit(code);
	}
	exit(code);   /* not _exit: atexit handlers QUIT the SMTP connection */
}

/* How late polls start after their due time: the measure of keeping up.
 * The first poll of each account and polls asked for (SIGUSR1, `run`)
 * are left out: every one of them is due at once. */
static void note_lag(struct sched *s, struct slot *sl)
{
	double lag = now_sec() - sl->next;
	s->polls++;
	if (!sl->timed)
		return;
	s->timed++;
	s->lag_sum += lag;
	if (lag > s->lag_max)
		s->lag_max = lag;
}

static void start(struct sched *s, struct slot *sl)
{
	struct account *a = account_named(&s->cf, sl->name);
	int res[2] = { -1, -1 };
	if (a == NULL)
		return;
	if (pipe2(res, O_CLOEXEC | O_NONBLOCK) < 0)
		log_err(a->name, "pipe: %s (a `run` waiting for this poll gets no counts)",
			strerror(errno));
	sl->poll_all = sl->ask_all;
	fflush(NULL);   /* the child must not write the parent's buffers again */
	pid_t pid = fork();
	if (pid == 0) {
		close(res[0]);
		child(s, a, res[1], sl->poll_all);
	}
	if (res[1] >= 0)
		close(res[1]);
	if (pid < 0) {
		log_err(a->name, "fork: %s", strerror(errno));
		if (res[0] >= 0)
			close(res[0]);
		sl->next = now_sec() + 60;
		return;
	}
	setpgid(pid, pid);   /* also here: whichever of the two runs first */
	note_lag(s, sl);
	sl->ask_all = 0;
	sl->res_fd = res[0];
	s->dirty = 1;
	sl->pid = pid;
	sl->started = now_sec();
	sl->term_at = 0;
	sl->killed = 0;
	s->running++;
}

/* Signal names for the log: "killed by signal 9 (KILL)". */
static const char *sig_name(int sig)
{
	static const struct { int sig; const char *name; } t[] = {
		{ SIGTERM, "TERM" }, { SIGKILL, "KILL" }, { SIGINT, "INT" }, { SIGHUP, "HUP" },
		{ SIGSEGV, "SEGV" }, { SIGABRT, "ABRT" }, { SIGBUS, "BUS" }, { SIGFPE, "FPE" },
		{ SIGILL, "ILL" }, { SIGPIPE, "PIPE" }, { SIGXFSZ, "XFSZ" }, { SIGXCPU, "XCPU" },
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (t[i].sig == sig)
			return t[i].name;
	return "?";
}

/* How a poll ended, in words, for a poll that did not exit 0. */
static char *how_ended(int capped, const struct account *a, int status)
{
	char cap[64] = "";
	if (capped)
		snprintf(cap, sizeof cap, "ended after session_timeout (%d s)", a->session_timeout);
	if (WIFSIGNALED(status))
		return xasprintf("%s%skilled by signal %d (%s)", cap, capped ? ": " : "",
				 WTERMSIG(status), sig_name(WTERMSIG(status)));
	if (capped)
		return xasprintf("%s (exit %d)", cap, WEXITSTATUS(status));
	return xasprintf("failed (exit %d)", WEXITSTATUS(status));
}

/* The deadline of a running poll: its cap, or KILL_GRACE after TERM. */
static double deadline_of(struct sched *s, const struct slot *sl)
{
	if (sl->term_at > 0)
		return sl->killed ? 0 : sl->term_at + KILL_GRACE;
	const struct account *a = sl->orphan ? NULL : account_named(&s->cf, sl->name);
	if (a == NULL || a->session_timeout <= 0)
		return 0;
	return sl->started + a->session_timeout + a->timeout + CAP_GRACE;
}

static void end_poll(struct slot *sl, int sig)
{
	if (sig == SIGKILL) {
		kill(-sl->pid, SIGKILL);
		kill(sl->pid, SIGKILL);
		sl->killed = 1;
	} else {
		kill(sl->pid, sig);
		sl->term_at = now_sec();
	}
}

/* Polls past their deadline: TERM, then KILL.  Returns the next deadline. */
static double enforce_caps(struct sched *s)
{
	double t = now_sec(), wake = 0;
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		double d = sl->pid ? deadline_of(s, sl) : 0;
		if (d > 0 && t >= d) {
			if (sl->term_at == 0)
				log_err(sl->name, "the poll has run %.0f s, past session_timeout: ending it",
					t - sl->started);
			end_poll(sl, sl->term_at > 0 ? SIGKILL : SIGTERM);
			d = deadline_of(s, sl);
		}
		if (d > 0 && (wake == 0 || d < wake))
			wake = d;
	}
	return wake;
}

/* The poll's own result from its pipe, or one saying how it ended. */
static void take_result(struct slot *sl, const struct account *a, int status, int capped,
			struct result *r)
{
	char buf[RES_MAX + 1];
	size_t len = 0;
	ssize_t n;
	while (sl->res_fd >= 0 && len < RES_MAX &&
	       (n = read(sl->res_fd, buf + len, RES_MAX - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (sl->res_fd >= 0)
		close(sl->res_fd);
	sl->res_fd = -1;
	if (len > 0 && buf[len - 1] == '\n' && result_unpack(buf, r) == 0)
		return;
	memset(r, 0, sizeof *r);
	r->code = WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
	r->error = a ? how_ended(capped, a, status)
		     : xstrdup("the account left the config during the poll");
}

/* A `run` that asked over the socket gets its answer; one that asked
 * during this poll gets the next, which starts now. */
static void answer(struct sched *s, struct slot *sl, const struct account *a, int status,
		   int capped)
{
	struct result r;
	take_result(sl, a, status, capped, &r);
	char *line = result_pack(&r);
	ctl_result(s->ctl, sl->name, sl->started, line);
	free(line);
	if (a && status == 0 && !capped)
		sl->cur = sched_adapt(a, sl->cur, r.nnew > 0);
	result_free(&r);
	if (sl->asked > 0 && sl->asked <= sl->started)
		sl->asked = 0;
}

static void finished(struct sched *s, struct slot *sl, int status)
{
	struct account *a = sl->orphan ? NULL : account_named(&s->cf, sl->name);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
	if (sl->term_at > 0 && code == 0)
		code = EX_TEMPFAIL;   /* cut short: back off all the same */
	int capped = sl->term_at > 0;
	answer(s, sl, a, status, capped);
	sl->pid = 0;
	sl->term_at = 0;
	sl->killed = 0;
	s->running--;
	s->dirty = 1;
	if (a == NULL) {
		sl->orphan = 1;   /* never polled again */
		ctl_forget(s->ctl, has_slot, s);
		return;
	}
	sl->fails = code == 0 ? 0 : sl->fails + 1;
	sl->auth_fails = code == EX_NOPERM ? sl->auth_fails + 1 : 0;
	double d = sched_delay(a, sl->cur, sl->fails, rnd());
	sl->next = now_sec() + d;
	sl->timed = 1;
	if (sl->auth_fails >= AUTH_PAUSE) {
		sl->paused = 1;
		log_err(a->name, "paused after %d refused logins in a row (so the provider does "
			"not lock the account): fix the login and send SIGHUP, or SIGUSR1 to retry",
			sl->auth_fails);
	} else if (code != 0) {
		char *how = how_ended(capped, a, status);
		if (capped || WIFSIGNALED(status))
			log_err(a->name, "%s: next try in %.0f s", how, d);
		else
			log_info(a->name, "%s: next try in %.0f s", how, d);
		free(how);
	}
	if (sl->again && !sl->paused)
		sl->next = now_sec();
	sl->timed = !(sl->again && !sl->paused);
	sl->again = 0;
	if (sl->asked > 0) {   /* asked by the user: as SIGUSR1, a pause does not hold */
		sl->paused = sl->auth_fails = 0;
		sl->next = now_sec();
		sl->timed = 0;
	}
}

static void reap(struct sched *s)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < s->nslots; i++)
			if (s->slots[i].pid == pid)
				finished(s, &s->slots[i], status);
	}
}

/* The due poll to start next: one a `run` waits for, else the longest
 * overdue, so that when polls cannot keep up every account is late
 * alike, rather than the first in the config polled again and again and
 * the last never. */
static struct slot *most_due(struct sched *s, double t)
{
	struct slot *best = NULL;
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->pid || sl->paused || sl->orphan || sl->next > t)
			continue;
		int asked = sl->asked > 0, best_asked = best && best->asked > 0;
		if (best == NULL || asked > best_asked ||
		    (asked == best_asked && sl->next < best->next))
			best = sl;
	}
	return best;
}

static double start_due(struct sched *s)
{
	double t = now_sec(), wake = t + 3600;
	struct slot *sl;
	/* bounded: a slot start() cannot start stays due */
	for (int n = 0; n < s->cf.max_parallel && s->running < s->cf.max_parallel &&
			(sl = most_due(s, t)) != NULL; n++)
		start(s, sl);
	for (size_t i = 0; i < s->nslots; i++) {
		sl = &s->slots[i];
		if (!sl->pid && !sl->paused && !sl->orphan && sl->next < wake)
			wake = sl->next > t ? sl->next : t + 0.1;
	}
	return wake;
}

static void gone(struct sched *s, pid_t pid)
{
	for (size_t i = 0; pid > 0 && i < s->nslots; i++)
		if (s->slots[i].pid == pid) {
			s->slots[i].pid = 0;
			s->running--;
			if (s->slots[i].res_fd >= 0)
				close(s->slots[i].res_fd);
			s->slots[i].res_fd = -1;
		}
}

/* Children finish or abandon their batch safely on SIGTERM; one that has
 * not within KILL_GRACE (a login or a password_command that ignores it)
 * is killed, so the daemon stops in bounded time. */
static void stop_children(struct sched *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].pid && s->slots[i].term_at == 0)
			end_poll(&s->slots[i], SIGTERM);
	double until = now_sec() + KILL_GRACE;
	while (s->running > 0 && now_sec() < until) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno != EINTR)
			return;
		if (pid > 0)
			gone(s, pid);
		else
			usleep(20000);
	}
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].pid) {
			log_err(s->slots[i].name, "the poll did not stop within %d s of TERM: killing it",
				KILL_GRACE);
			end_poll(&s->slots[i], SIGKILL);
		}
	while (s->running > 0) {
		int status;
		pid_t pid = wait(&status);
		if (pid < 0 && errno != EINTR)
			break;
		gone(s, pid);
	}
}

/* For `popsift status`: when each account is polled next, and how often
 * ("NAME EPOCH STATE INTERVAL MIN MAX").  At most once a second: with a
 * thousand accounts a rewrite per poll's start and end cost more than
 * the scheduling itself. */
static double write_schedule(struct sched *s)
{
	double t = now_sec();
	if (!s->dirty)
		return 0;
	if (t < s->written + 1)
		return s->written + 1;
	s->dirty = 0;
	s->written = t;
	char *path = xasprintf("%s.sched", s->cf.state);
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f) {
		double mono = now_sec();
		long long wall = (long long)time(NULL);
		for (size_t i = 0; i < s->nslots; i++) {
			const struct slot *sl = &s->slots[i];
			const struct account *a = sl->orphan ? NULL : account_named(&s->cf, sl->name);
			if (a == NULL)
				continue;
			fprintf(f, "%s %lld %s %.0f %.0f %.0f\n", sl->name,
				wall + (long long)(sl->next - mono),
				sl->pid ? "polling" : sl->paused ? "paused" : "waiting", sl->cur,
				sched_clamp(a, 0), sched_max_interval(a));
		}
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	free(tmp);
	free(path);
	return 0;
}

/* ---- what the control socket may ask of the scheduler ---- */

static void ctl_ask(void *ctx, const char *name, int all, double when)
{
	struct sched *s = ctx;
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];
		if (sl->orphan || strcmp(sl->name, name) != 0)
			continue;
		sl->asked = when;
		sl->ask_all |= all;
		sl->paused = sl->auth_fails = 0;
		if (sl->pid == 0) {
			sl->next = now_sec();
			sl->timed = 0;
		}
	}
	s->dirty = 1;
}

/* The longest a poll of this config may run before it is ended. */
static int poll_bound(const struct config *cf)
{
	int m = 60;
	for (const struct account *a = cf->accounts; a; a = a->next) {
		int b = (a->session_timeout > 0 ? a->session_timeout : 86400) + a->timeout +
			CAP_GRACE + KILL_GRACE;
		m = b > m ? b : m;
	}
	return m;
}

static double earliest(double a, double b)
{
	return a > 0 && (b <= 0 || a < b) ? a : b;
}

static void loop(struct sched *s)
{
	struct ctl_ops ops = { .ctx = s, .ask = ctl_ask };
	while (!stop_requested) {
		if (got_hup)
			reload(s);
		if (got_usr1)
			poll_now(s);
		reap(s);
		double due = start_due(s), cap = enforce_caps(s);   /* caps of polls just started too */
		double wake = earliest(earliest(cap, due), write_schedule(s));
		struct pollfd pfd[20] = { { .fd = wake_fd[0], .events = POLLIN } };
		double ctl_wake;
		int n = 1 + ctl_pollfds(s->ctl, pfd + 1, 19, &ctl_wake);
		double wait = earliest(wake, ctl_wake) - now_sec();
		int ms = wait < 0 ? 0 : wait > 60 ? 60000 : (int)(wait * 1000) + 1;
		if (!got_hup && !got_usr1 && !stop_requested)
			poll(pfd, (nfds_t)n, ms);   /* signals (SIGCHLD too) cut it short */
		char buf[64];
		while (wake_fd[0] >= 0 && read(wake_fd[0], buf, sizeof buf) > 0)
			;
		ops.accounts = s->cf.accounts;
		ops.wait_s = poll_bound(&s->cf);
		ctl_service(s->ctl, pfd + 1, n - 1, &ops);
	}
	ctl_close(s->ctl);   /* a waiting `run` learns at once; a new one waits for the lock */
	s->ctl = NULL;
	stop_children(s);
}

/* At the stop: whether it kept up, and what it cost (bench/daemon.py
 * reads this line). */
static void report_usage(const struct sched *s)
{
	struct rusage self, kids;
	if (getrusage(RUSAGE_SELF, &self) < 0 || getrusage(RUSAGE_CHILDREN, &kids) < 0)
		return;
	double cs = (double)self.ru_utime.tv_sec + self.ru_utime.tv_usec / 1e6 +
		    (double)self.ru_stime.tv_sec + self.ru_stime.tv_usec / 1e6;
	double ck = (double)kids.ru_utime.tv_sec + kids.ru_utime.tv_usec / 1e6 +
		    (double)kids.ru_stime.tv_sec + kids.ru_stime.tv_usec / 1e6;
	log_info(NULL, "usage: %lu polls (%lu on schedule: started %.3f s late at most, %.3f s "
		 "on average), CPU %.3f s in the daemon and %.3f s in its polls, peak RSS %ld KB "
		 "in the daemon and %ld KB in a poll", s->polls, s->timed, s->lag_max,
		 s->timed ? s->lag_sum / (double)s->timed : 0.0, cs, ck, self.ru_maxrss,
		 kids.ru_maxrss);
}

int sched_run(const char *path)
{
	struct sched s = { .path = path };
	char *err = NULL;
	if (conf_load(path, &s.cf, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		return EX_CONFIG;
	}
	log_daemon = 1;
	shard_apply(&s.cf);
	/* a second daemon gives up soon, but not at once: `status` probes
	 * the lock (lock_busy) and holds it for an instant */
	if (log_open(s.cf.log, &err) < 0 || lock_state(&s.cf, 1, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		conf_free(&s.cf);
		return EX_TEMPFAIL;
	}
	/* create and migrate the database once, before children race to */
	struct state *st = NULL;
	if (state_open(s.cf.state, &st, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
		conf_free(&s.cf);
		return EX_TEMPFAIL;
	}
	state_close(st);
	s.ctl = ctl_open(s.cf.state, &err);
	if (s.ctl == NULL) {
		log_err(NULL, "%s: `run` will wait for the state lock rather than ask the daemon", err);
		free(err);
	}
	install_signals();
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	sync_slots(&s);
	log_info(NULL, "daemon started: %zu account%s, up to %d at once", s.nslots,
		 s.nslots == 1 ? "" : "s", s.cf.max_parallel);
	loop(&s);
	report_usage(&s);
	char *sched = xasprintf("%s.sched", s.cf.state);
	unlink(sched);
	free(sched);
	log_info(NULL, "daemon stopped");
	for (size_t i = 0; i < s.nslots; i++) {
		free(s.slots[i].name);
		free(s.slots[i].ident);
	}
	free(s.slots);
	conf_free(&s.cf);
	return 0;
}
