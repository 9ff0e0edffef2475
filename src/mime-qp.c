/* mime-qp.c — the two Content-Transfer-Encodings (RFC 2045), also the
 * Q and B of RFC 2047 encoded words (mime-decode.c), lenient as mail
 * readers are. */
#include <stdint.h>
#include <stdlib.h>

#include "mime.h"
#include "popsift.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int mime_qp_escape(const char *p, size_t len, size_t i)
{
	if (i + 2 >= len)
		return -1;
	int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
	return h < 0 || l < 0 ? -1 : h << 4 | l;
}

/* Index after a soft line break whose '=' is at i ("=", white space
 * that a transport may have added, then a newline or the end), else 0. */
static size_t qp_soft_break(const char *p, size_t len, size_t i)
{
	size_t j = i + 1;
	while (j < len && (p[j] == ' ' || p[j] == '\t'))
		j++;
	if (j < len && p[j] == '\r')
		j++;
	if (j < len && p[j] == '\n')
		return j + 1;
	return j == len ? len : 0;
}

char *mime_qp_decode(const char *p, size_t len, size_t *outlen)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0;
	while (i < len) {
		if (p[i] != '=') {
			out[o++] = p[i++];
			continue;
		}
		int c = mime_qp_escape(p, len, i);
		size_t soft;
		if (c >= 0) {
			out[o++] = (char)c;
			i += 3;
		} else if ((soft = qp_soft_break(p, len, i)) > 0) {
			i = soft;
		} else {
			out[o++] = p[i++];      /* a stray '=' is kept, as readers do */
		}
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Missing padding is accepted even when strict: many encoders drop it.
 * Lenient (RFC 2045 bodies) skips bytes outside the alphabet and restarts
 * after padding, so concatenated base64 chunks still decode. */
long mime_b64_into(const char *p, size_t len, char *out, int strict)
{
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	long o = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)p[i]);
		if (v < 0 || (strict && pad)) {
			if (strict && p[i] != '=')
				return -1;
			pad += p[i] == '=';
			if (!strict && p[i] == '=')
				bits = 0;
			continue;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xFF);
		}
	}
	return strict && (bits >= 6 || pad > 2) ? -1 : o;
}

char *mime_b64_decode(const char *p, size_t len, size_t *outlen)
{
	char *out = xmalloc(len / 4 * 3 + 4);
	long n = mime_b64_into(p, len, out, 0);
	out[n] = '\0';
	if (outlen != NULL)
		*outlen = (size_t)n;
	return out;
}
