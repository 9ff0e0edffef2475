/* fuzz-mime.c — libFuzzer target: header iteration and RFC 2047 /
 * body decoding (src/mime.h).  The input is a whole message; every API
 * takes (pointer, length), so it is passed as libFuzzer's exactly sized
 * buffer (no terminator) and an overread is an ASan report.  Outputs are
 * checked to be NUL-terminated valid UTF-8 where the header promises it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) */
static int valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned min, cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, min = 0x80, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, min = 0x800, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static void check_utf8(const char *s)
{
	if (s != NULL && !valid_utf8((const unsigned char *)s, strlen(s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	char *notes = NULL;

	/* every header field: decode its value; addresses from any field */
	size_t pos = 0, fields = 0;
	const char *name, *val;
	size_t namelen, vallen;
	while (mime_next_header(msg, size, &pos, &name, &namelen, &val, &vallen)) {
		if (pos > size || name < msg || name + namelen > msg + size ||
		    val < msg || val + vallen > msg + size)
			abort();
		if (++fields > size + 1)     /* must make progress */
			abort();
		char *d = mime_decode_value(val, vallen, &notes);
		if (d == NULL)
			abort();             /* "always returns a malloc'd string" */
		check_utf8(d);
		free(d);
		free(notes);
		notes = NULL;
		char *a = mime_address(val, vallen);
		free(a);
		if (namelen == 12 && strncasecmp(name, "Content-Type", 12) == 0) {
			char *b = mime_param(val, vallen, "boundary");
			free(b);
			char *c = mime_param(val, vallen, "charset");
			free(c);
		}
	}

	char *subj = mime_header_get(msg, size, "Subject", &notes);
	check_utf8(subj);
	free(subj);
	free(notes);
	notes = NULL;

	char *from = mime_header_get(msg, size, "From", NULL);
	if (from != NULL) {
		char *a = mime_address(from, strlen(from));
		free(a);
	}
	free(from);

	size_t he = mime_header_end(msg, size);
	if (he > size)
		abort();

	size_t outlen = 0;
	char *body = mime_body_text(msg, size, &outlen, &notes);
	if (body == NULL || body[outlen] != '\0' ||
	    !valid_utf8((const unsigned char *)body, outlen))
		abort();
	free(body);
	free(notes);
	return 0;
}
