/* fuzz-pop3.c — libFuzzer target: POP3 reply-line parsing (src/pop3.h).
 * The input is split into lines as a server would send them (LF ends a
 * line, a CR before it is dropped); every line is fed to pop3_status,
 * pop3_parse_uidl, pop3_parse_stat and pop3_parse_list from its own
 * exactly sized heap copy, so a read one byte past the line is an ASan
 * report.  The results are checked against the documented contracts,
 * and STAT's and LIST's parsers against each other: the same grammar
 * but for LIST refusing message number 0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

static void one_line(const char *p, size_t n)
{
	/* exact-size copy: no terminator, nothing after the last byte */
	char *line = malloc(n ? n : 1);
	if (line == NULL)
		return;
	memcpy(line, p, n);

	int st = pop3_status(line, n);
	if (st != 1 && st != 0 && st != -1)
		abort();
	if (st == 1 && (n < 3 || memcmp(line, "+OK", 3) != 0))
		abort();
	if (st == 0 && (n < 4 || memcmp(line, "-ERR", 4) != 0))
		abort();

	unsigned long num = 0;
	const char *uid = NULL;
	size_t uidlen = 0;
	int u = pop3_parse_uidl(line, n, &num, &uid, &uidlen);
	if (u < -1 || u > 1)
		abort();
	if (u == 0) {
		/* the uid lies inside the line, is non-empty, bounded and printable */
		if (num == 0 || uid == NULL || uidlen == 0 || uidlen > 512 ||
		    uid < line || uid + uidlen > line + n)
			abort();
		for (size_t i = 0; i < uidlen; i++)
			if ((unsigned char)uid[i] <= 0x20 || (unsigned char)uid[i] >= 0x7f)
				abort();
	}
	if (u == 1) {
		/* no UID: a message number, then nothing but blanks */
		if (num == 0 || uid == NULL || uidlen != 0 || uid < line || uid > line + n ||
		    line[0] < '0' || line[0] > '9')
			abort();
		const char *q = line;
		while (q < line + n && *q >= '0' && *q <= '9')
			q++;
		for (; q < line + n; q++)
			if (*q != ' ' && *q != '\t')
				abort();
	}

	unsigned long count = 0;
	unsigned long long ssize = 0, size = 0;
	int st_ok = pop3_parse_stat(line, n, &count, &ssize);
	if (st_ok != 0 && st_ok != -1)
		abort();
	if (st_ok == 0 && (line[0] < '0' || line[0] > '9'))
		abort();

	num = 0;
	int li_ok = pop3_parse_list(line, n, &num, &size);
	if (li_ok != 0 && li_ok != -1)
		abort();
	if (li_ok == 0 && num == 0)
		abort();
	/* "N SIZE" parses alike as a STAT reply and a LIST line, except N = 0 */
	if (li_ok == 0 && (st_ok != 0 || count != num || ssize != size))
		abort();
	if (st_ok == 0 && count != 0 && li_ok != 0)
		abort();
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	/* the whole input as one line too: NULs, CRs and all */
	one_line(p, size);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t m = n;
		if (m > 0 && p[m - 1] == '\r')
			m--;
		one_line(p, m);
		p += n + (nl != NULL);
	}
	return 0;
}
