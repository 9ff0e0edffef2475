/* log.c — messages to stderr, syslog or a file; each about an account
 * starts with its name.  A log file gets timestamps and is reopened on
 * SIGHUP so logrotate can move it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "popsift.h"

int log_level;
volatile int stop_requested;

static enum { TO_STDERR, TO_SYSLOG, TO_FILE } target = TO_STDERR;
static FILE *logfile;
static char *logpath;

int log_open(const char *where, char **err)
{
	if (where == NULL || strcmp(where, "stderr") == 0) {
		target = TO_STDERR;
		return 0;
	}
	if (strcmp(where, "syslog") == 0) {
		openlog("popsift", LOG_PID, LOG_MAIL);
		target = TO_SYSLOG;
		return 0;
	}
	FILE *f = fopen(where, "a");
	if (f == NULL)
		return seterr(err, "cannot open log file %s: %s", where, strerror(errno));
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

__attribute__((format(printf, 3, 0)))
static void vlog(int prio, const char *acct, const char *fmt, va_list ap)
{
	char line[8192];
	int n = snprintf(line, sizeof line, "%s: ", acct ? acct : "popsift");
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
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
