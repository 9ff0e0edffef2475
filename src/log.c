/* log.c — messages to stderr, each about an account starting with its
 * name; the protocol trace of -v. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "popsift.h"

int log_level;

static void vlog(const char *acct, const char *fmt, va_list ap)
{
	char line[8192];
	int n = 0;
	if (acct != NULL)
		n = snprintf(line, sizeof line, "%s: ", acct);
	else
		n = snprintf(line, sizeof line, "popsift: ");
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	/* one write per line keeps lines whole when accounts run in parallel */
	fprintf(stderr, "%s\n", line);
}

void log_err(const char *acct, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(acct, fmt, ap);
	va_end(ap);
}

void log_info(const char *acct, const char *fmt, ...)
{
	if (log_level < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(acct, fmt, ap);
	va_end(ap);
}

void log_debug(const char *acct, const char *fmt, ...)
{
	if (log_level < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(acct, fmt, ap);
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
