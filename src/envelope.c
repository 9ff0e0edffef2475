/* envelope.c — the envelope sender and the MDA's %F/%T.  What comes from
 * the message is checked against a narrow idea of an address, so that a
 * sender can never become an option, a second word or shell syntax
 * (even in `sh -c '... %F ...'`), whatever command it is passed to. */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "mime.h"
#include "popsift.h"

#define ADDR_MAX 254    /* RFC 5321's path limit, less the brackets */

char *envelope_sender(const char *hdr, size_t hl)
{
	char *v = mime_header_get(hdr, hl, "Return-Path", NULL);
	if (v == NULL)
		v = mime_header_get(hdr, hl, "From", NULL);
	char *a = v ? mime_address(v, strlen(v)) : NULL;
	free(v);
	return a ? a : xstrdup("");
}

static int local_ok(unsigned char c)
{
	return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("._+=-", c) != NULL;
}

static int domain_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

int envelope_plausible(const char *s)
{
	size_t n = strlen(s), i = 0;
	if (n == 0 || n > ADDR_MAX || s[0] == '-' || s[0] == '.' || s[0] == '@')
		return 0;
	for (; s[i] && s[i] != '@'; i++)
		if (!local_ok((unsigned char)s[i]))
			return 0;
	if (s[i] == '\0')
		return 1;
	if (s[++i] == '\0' || s[i] == '.' || s[i] == '-')
		return 0;
	for (; s[i]; i++)
		if (!domain_ok((unsigned char)s[i]))
			return 0;
	return 1;
}

int envelope_wants_rcpt(char *const *argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		for (const char *p = argv[i]; (p = strchr(p, '%')) != NULL; p += 2) {
			if (p[1] == 'T')
				return 1;
			if (p[1] == '\0')
				break;
		}
	return 0;
}

static char *expand_word(const char *w, const char *sender, const char *rcpt)
{
	size_t cap = strlen(w) + 2 * ADDR_MAX + 1, o = 0;
	char *out = xmalloc(cap);
	for (; *w; w++) {
		const char *v = NULL;
		if (w[0] == '%' && (w[1] == 'F' || w[1] == 'T' || w[1] == '%')) {
			v = w[1] == 'F' ? sender : w[1] == 'T' ? rcpt : "%";
			if (w[1] != '%' && (v == NULL || !envelope_plausible(v)))
				v = "";
			w++;
		}
		size_t n = v ? strlen(v) : 1;
		if (o + n + 1 > cap)
			out = xrealloc(out, cap = (o + n + 1) * 2);
		memcpy(out + o, v ? v : w, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

char **envelope_dup(char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **d = xcalloc(n + 1, sizeof *d);
	for (size_t i = 0; i < n; i++)
		d[i] = xstrdup(v[i]);
	return d;
}

char **envelope_argv(char *const *argv, const char *sender, const char *rcpt)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = expand_word(argv[i], sender, rcpt);
	return v;
}
