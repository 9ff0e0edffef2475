/* log.c — messages to stderr, syslog or a file; each about an account
 * starts with its name.  A log file gets timestamps and is reopened on
 * SIGHUP so logrotate can move it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "popsift.h"

/* ---- text safe for a terminal or a log ---- */

/* Length of the UTF-8 sequence at s (at most n bytes) and its code
 * point, or 0 when it is not well-formed UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3
		   : s[0] < 0xF5 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	unsigned v = len == 1 ? s[0] : s[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

/* Code points that would act instead of show: C0, DEL and C1 controls,
 * the line and paragraph separators, and the bidirectional overrides
 * that reorder what a reader sees. */
static int acts(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

char *text_escape(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = xmalloc(n * 4 + 1), *o = out;   /* \xHH per byte is the most */
	for (size_t i = 0; i < n;) {
		unsigned cp = 0;
		size_t len = utf8_seq(p + i, n - i, &cp);
		if (len == 0)
			o += sprintf(o, "\\x%02x", p[i++]);
		else if (!acts(cp))
			for (size_t k = 0; k < len; k++)
				*o++ = (char)p[i++];
		else {
			i += len;
			if (cp == '\n' || cp == '\r' || cp == '\t')
				o += sprintf(o, "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
			else
				o += cp < 0x80 ? sprintf(o, "\\x%02x", cp) : sprintf(o, "\\u%04x", cp);
		}
	}
	*o = '\0';
	return out;
}

char *text_safe(const char *s)
{
	return text_escape(s ? s : "", s ? strlen(s) : 0);
}

int log_level;
volatile int stop_requested;

static enum { TO_STDERR, TO_SYSLOG, TO_FILE } target = TO_STDERR;
static FILE *logfile;
static char *logpath;
int log_daemon;
/* A person at a terminal sees what a one-shot command says even when
 * `log` sends it to a file or syslog too; the daemon, started from a
 * terminal or not, writes only where `log` says. */
static int tee_tty;

int log_open(const char *where, char **err)
{
	tee_tty = !log_daemon && isatty(2);
	if (where == NULL || strcmp(where, "stderr") == 0) {
		target = TO_STDERR;
		return 0;
	}
	if (strcmp(where, "syslog") == 0) {
		openlog("popsift", LOG_PID, LOG_MAIL);
		target = TO_SYSLOG;
		return 0;
	}
	/* as an mbox: a link planted in a shared log directory must not make
	 * a root run append to a file of the planter's choosing */
	int fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "a");
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return seterr(err, "cannot open log file %s: %s", where, strerror(errno));
	}
	setvbuf(f, NULL, _IOLBF, 0);
	if (logfile)
		fclose(logfile);
	logfile = f;
	if (logpath != where) {
		free(logpath);
		logpath = xstrdup(where);
	}
	target = TO_FILE;
	return 0;
}

void log_reopen(void)
{
	if (target == TO_FILE && logpath) {
		char *p = xstrdup(logpath), *err = NULL;
		if (log_open(p, &err) < 0) {
			fprintf(stderr, "popsift: %s\n", err);
			free(err);
		}
		free(p);
	}
}

static void vlog_line(int prio, const char *line);

__attribute__((format(printf, 3, 0)))
static void vlog(int prio, const char *acct, const char *fmt, va_list ap)
{
	char raw[8192];
	int n = snprintf(raw, sizeof raw, "%s: ", acct ? acct : "popsift");
	vsnprintf(raw + n, sizeof raw - (size_t)n, fmt, ap);
	/* server replies, subjects and errors quoting them end up here: no
	 * byte of them may move a terminal's cursor or start a new log line */
	char *line = text_safe(raw);
	vlog_line(prio, line);
	free(line);
}

static void vlog_line(int prio, const char *line)
{
	if (target != TO_STDERR && tee_tty)
		fprintf(stderr, "%s\n", line);
	if (target == TO_SYSLOG) {
		syslog(prio, "%s", line);
		return;
	}
	if (target == TO_FILE && logfile) {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
		fprintf(logfile, "%s %s\n", ts, line);
		return;
	}
	/* one write per line keeps lines whole when accounts run in parallel */
	fprintf(stderr, "%s\n", line);
}

void log_err(const char *acct, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, acct, fmt, ap);
	va_end(ap);
}

void log_info(const char *acct, const char *fmt, ...)
{
	if (log_level < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_INFO, acct, fmt, ap);
	va_end(ap);
}

void log_debug(const char *acct, const char *fmt, ...)
{
	if (log_level < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, acct, fmt, ap);
	va_end(ap);
}

/* One protocol line, as in a telnet session: "C: RETR 1", "S: +OK".
 * Secrets are masked by the caller's choice of what to pass. */
void log_proto(const char *acct, char dir, const char *line, size_t len)
{
	if (log_level < 1)
		return;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > 200)
		len = 200;
	log_debug(acct, "%c: %.*s", dir, (int)len, line);
}
