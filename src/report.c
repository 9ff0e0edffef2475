/* report.c — the per-account summary line, or its JSON form. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

void result_print(const struct account *a, const struct result *r, int json, int first)
{
	if (json) {
		printf("%s{\"account\":", first ? "" : ",");
		json_puts(a->name);
		printf(",\"new\":%d,\"delivered\":%d,\"kept\":%d,\"deleted\":%d,\"failed\":%d,"
		       "\"skipped\":%d,\"bytes\":%llu,\"seconds\":%.3f,\"exit\":%d,",
		       r->nnew, r->delivered, r->kept, r->deleted, r->failed, r->skipped,
		       r->bytes, r->seconds, r->code);
		fputs(r->dry_run ? "\"dry_run\":true,\"error\":" : "\"error\":", stdout);
		if (r->error)
			json_puts(r->error);
		else
			fputs("null", stdout);
		putchar('}');
		return;
	}
	if (r->error)
		log_err(a->name, "%s", r->error);
	if (r->error && r->nnew == 0 && r->delivered == 0 && r->deleted == 0)
		return;   /* the error says it all */
	/* the daemon's log says what changed and what failed: a poll that
	 * found nothing is a line only at -v */
	if (log_daemon && log_level < 1 && r->nnew == 0 && r->delivered == 0 &&
	    r->deleted == 0 && r->failed == 0)
		return;
	log_info(a->name, "%d new, %d delivered, %d kept, %d deleted, %.1f MB in %.1f s%s",
		 r->nnew, r->delivered, r->kept, r->deleted, (double)r->bytes / 1e6, r->seconds,
		 r->dry_run ? " (dry run: what a run would do; nothing was done)" : "");
}

/* A result crosses a pipe or a socket (a `run` child to its parent, the
 * daemon to a `run` that asked it) as one line: the counts, then the
 * error with every byte outside printable ASCII or '%' as %XX, so the
 * line can hold neither a newline nor a tab. */
char *result_pack(const struct result *r)
{
	const char *e = r->error ? r->error : "";
	char *esc = xmalloc(strlen(e) * 3 + 1), *w = esc;
	for (const unsigned char *s = (const unsigned char *)e; *s; s++)
		w += (*s < 0x21 || *s > 0x7e || *s == '%') ? sprintf(w, "%%%02X", *s)
							: sprintf(w, "%c", *s);
	*w = '\0';
	char *line = xasprintf("%d %d %d %d %d %d %llu %.3f %d %d %s\n", r->nnew, r->delivered,
			       r->kept, r->deleted, r->failed, r->skipped, r->bytes, r->seconds,
			       r->code, r->error != NULL, esc);
	free(esc);
	return line;
}

static char *unescape(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *w = out;
	for (; *s && *s != '\n'; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			*w++ = (char)v;
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return out;
}

/* 0, or -1 when the line is not one result_pack wrote. */
int result_unpack(const char *line, struct result *r)
{
	int has_err = 0, off = 0;
	memset(r, 0, sizeof *r);
	if (sscanf(line, "%d %d %d %d %d %d %llu %lf %d %d %n", &r->nnew, &r->delivered,
		   &r->kept, &r->deleted, &r->failed, &r->skipped, &r->bytes, &r->seconds,
		   &r->code, &has_err, &off) != 10 || off == 0)
		return -1;
	r->error = has_err ? unescape(line + off) : NULL;
	return 0;
}

/* The most telling code when accounts fail differently: `run`'s exit
 * status, whether it polled them itself or the daemon did. */
int result_worse(int a, int b)
{
	static const int order[] = { EX_CONFIG, EX_NOPERM, EX_UNAVAILABLE, EX_DATAERR,
				     EX_SOFTWARE, EX_TEMPFAIL, 0 };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (a == order[i] || b == order[i])
			return order[i];
	return a ? a : b;
}
