/* util.c — allocation, strings, small file-system helpers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "popsift.h"

static void oom(void)
{
	fputs("popsift: out of memory\n", stderr);
	exit(EX_OSERR);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (p == NULL)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	char *p = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

/* Set *err (freeing an older message) and return -1, so callers can
 * write `return seterr(err, "...")`. */
int seterr(char **err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *p = xvasprintf(fmt, ap);
	va_end(ap);
	free(*err);
	*err = p;
	return -1;
}

double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* mkdir -p, leaving existing directories alone. */
int mkdirs(const char *path, int mode)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	int r = mkdir(p, (mode_t)mode);
	free(p);
	return (r < 0 && errno != EEXIST) ? -1 : 0;
}

/* s as a JSON string on stdout; NULL prints "". */
void json_puts(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* mkdir -p of the directory holding path (nothing for a bare name). */
int mkdir_parent(const char *path, int mode)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int rc = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		rc = mkdirs(dir, mode);
	}
	free(dir);
	return rc;
}

char *expand_tilde(const char *path)
{
	if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
		return xstrdup(path);
	const char *home = getenv("HOME");
	if (home == NULL)
		home = "/";
	return xasprintf("%s%s", home, path + 1);
}

void free_argv(char **argv)
{
	if (argv == NULL)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* Split a command line into words: whitespace separates, double and
 * single quotes group, backslash escapes.  No shell is ever involved. */
char **split_args(const char *s, char **err)
{
	size_t n = 0, cap = 4;
	char **argv = xmalloc(cap * sizeof *argv);
	char *word = xmalloc(strlen(s) + 1);
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		size_t w = 0;
		char quote = 0;
		for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
			if (quote && *s == quote)
				quote = 0;
			else if (!quote && (*s == '"' || *s == '\''))
				quote = *s;
			else if (*s == '\\' && s[1] && quote != '\'')
				word[w++] = *++s;
			else
				word[w++] = *s;
		}
		if (quote) {
			free(word);
			argv[n] = NULL;
			free_argv(argv);
			seterr(err, "unterminated quote");
			return NULL;
		}
		if (n + 2 > cap)
			argv = xrealloc(argv, (cap *= 2) * sizeof *argv);
		argv[n++] = xstrndup(word, w);
	}
	argv[n] = NULL;
	free(word);
	return argv;
}

/* A password command gets this long to print its line and exit (an
 * agent prompting at a terminal included); then it is killed. */
#define PASSWORD_COMMAND_SECONDS 120
#define PASSWORD_MAX 4095

/* Read the command's output to EOF or the deadline, keeping the first
 * PASSWORD_MAX bytes: a command that writes more is drained, never left
 * blocked on a full pipe while we wait for it.  0 at EOF, -1 at the
 * deadline or on a read error. */
static int drain(int fd, char *buf, size_t *len, double deadline)
{
	char scratch[4096];
	int rc = 1;
	while (rc == 1) {
		int ms = (int)((deadline - now_sec()) * 1000);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = ms > 0 ? poll(&p, 1, ms) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = -1;
			break;
		}
		size_t room = PASSWORD_MAX - *len;
		ssize_t n = room ? read(fd, buf + *len, room) : read(fd, scratch, sizeof scratch);
		if (n == 0)
			rc = 0;
		else if (n < 0 && errno != EINTR && errno != EAGAIN)
			rc = -1;
		else if (n > 0 && room)
			*len += (size_t)n;
	}
	memset(scratch, 0, sizeof scratch);
	return rc;
}

/* The child's exit status; killed first if it is still running. */
static int reap(pid_t pid, int kill_it)
{
	int status = 0;
	pid_t r;
	if (kill_it) {
		while ((r = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR)
			;
		if (r == pid)
			return status;
		kill(pid, SIGKILL);
	}
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	return r == pid ? status : -1;
}

static pid_t spawn(char **argv, int out)
{
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(out, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run a password command without a shell; its first output line is the
 * secret.  stdin is /dev/null so a command that prompts fails fast. */
int run_password_command(const char *cmd, char **out, char **err)
{
	char **argv = split_args(cmd, err);
	if (argv == NULL)
		return -1;
	if (argv[0] == NULL) {
		free_argv(argv);
		return seterr(err, "empty password command");
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free_argv(argv);
		return seterr(err, "pipe: %s", strerror(errno));
	}
	pid_t pid = spawn(argv, pfd[1]);
	close(pfd[1]);
	char buf[PASSWORD_MAX + 1];
	size_t len = 0;
	int late = pid > 0 && drain(pfd[0], buf, &len, now_sec() + PASSWORD_COMMAND_SECONDS) < 0;
	close(pfd[0]);
	int status = pid > 0 ? reap(pid, late) : -1;
	int fail = status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	if (fail)
		seterr(err, late && !WIFEXITED(status) ? "password command \"%s\" did not finish "
		       "within %d s: killed" : "password command \"%s\" failed", argv[0],
		       PASSWORD_COMMAND_SECONDS);
	free_argv(argv);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!fail)
		*out = xstrdup(buf);
	memset(buf, 0, sizeof buf);
	return fail ? -1 : 0;
}

/* The environment a command popsift starts gets (an MDA, a filter):
 * PATH, HOME, USER and LOGNAME, nothing inherited beyond them.  env has
 * room for 4 more than the caller adds; returns how many were set. */
int command_env(char **env)
{
	const char *home = getenv("HOME"), *user = getenv("USER");
	int n = 0;
	env[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
	env[n++] = xasprintf("HOME=%s", home ? home : "/");
	if (user) {
		env[n++] = xasprintf("USER=%s", user);
		env[n++] = xasprintf("LOGNAME=%s", user);
	}
	return n;
}
