/* mime.h — headers and RFC 2047/2045 decoding for matching.  Pure
 * functions over in-memory bytes: no I/O, unit-tested. Output is UTF-8. */
#ifndef MIME_H
#define MIME_H

#include <stddef.h>

/* Iterate the header fields of a header section (LF or CRLF line ends;
 * stops at the blank line).  *pos starts at 0.  Returns 1 and sets
 * name/namelen and raw value/vallen (folded, as in the message, without
 * the final newline), 0 at the end.  Lines that are no field (no colon,
 * an mbox "From " line, a continuation of nothing) are skipped; NUL is
 * an ordinary byte; the scan never passes len. */
int mime_next_header(const char *hdr, size_t len, size_t *pos,
		     const char **name, size_t *namelen,
		     const char **val, size_t *vallen);

/* First field named `name` (case-insensitive), unfolded and RFC 2047
 * decoded to UTF-8; malloc'd, NULL if absent.  *notes (may be NULL)
 * receives a malloc'd note when something could not be decoded
 * (malformed encoded word, unknown charset): that part is kept raw. */
char *mime_header_get(const char *hdr, size_t len, const char *name, char **notes);

/* Unfold and decode one raw field value (RFC 2047 encoded words, Q and B,
 * adjacent words joined, charset via iconv).  8-bit bytes outside
 * encoded words are read as a whole: as UTF-8 if the whole value is
 * valid UTF-8, else in `charset` (the charset the message declares, see
 * mime_header_charset; may be NULL) if that reads them without error,
 * else as Windows-1252.  Always returns a malloc'd string that is valid
 * UTF-8 (invalid bytes replaced).  mime_decode_value: no declaration. */
char *mime_decode_value_cs(const char *val, size_t len, const char *charset, char **notes);
char *mime_decode_value(const char *val, size_t len, char **notes);

/* Does this raw value need the declared charset (8-bit, not UTF-8)? */
int mime_raw_needs_charset(const char *val, size_t len);

/* The charset a header section declares for the message's text: the
 * charset parameter of its Content-Type; malloc'd, NULL if none.  Only
 * the header: a rule decided from TOP must decide the same after the
 * download, so a multipart message's first text part does not count. */
char *mime_header_charset(const char *hdr, size_t len);

/* Convert `len` bytes in `charset` to UTF-8; malloc'd, NULL if the
 * charset is unknown (the caller makes the note).  outlen may be NULL.
 * A character invalid in the charset becomes one U+FFFD (a double-byte
 * character both its bytes); labels are read as their usual supersets
 * (GB2312/GBK as GB18030, ISO-8859-1 as Windows-1252, Shift_JIS as
 * CP932, ISO-2022-JP and EUC-JP with the NEC and IBM extensions as
 * CP50220/CP51932, half-width katakana included) and "us-ascii" as
 * mime_raw_to_utf8 does; HZ-GB-2312 is decoded too. */
char *mime_to_utf8(const char *charset, const char *p, size_t len, size_t *outlen);

/* The text of a whole message's text/ parts (walking multipart), decoded
 * from quoted-printable/base64 and converted to UTF-8, parts joined by
 * "\n".  malloc'd, length in *outlen. */
char *mime_body_text(const char *msg, size_t len, size_t *outlen, char **notes);

/* One entity of a message as mime_walk_parts sees it: its header
 * section, its type ("type/subtype", lowercase; text/plain when there is
 * none) and its body, still in its transfer encoding. */
struct mime_entity {
	const char *hdr;
	size_t      hlen;
	const char *type;
	const char *body;
	size_t      blen;
};
typedef void (*mime_part_fn)(void *arg, const struct mime_entity *e);

/* Call fn for each entity of a message that is no multipart container
 * (the message itself when it is single-part; an attached message and
 * then its own parts), in order, walking the MIME tree as mime_body_text
 * does and with its bounds (nesting depth, number of entities). */
void mime_walk_parts(const char *msg, size_t len, mime_part_fn fn, void *arg);

/* The file name of an entity: Content-Disposition's filename, else
 * Content-Type's name; RFC 2231 (filename*=utf-8''..., continuations
 * filename*0*=...) and RFC 2047 encoded words decoded as mail clients do,
 * to UTF-8.  malloc'd, NULL if there is none. */
char *mime_filename(const char *hdr, size_t hlen, char **notes);

/* The address in a Return-Path or From value: "<a@b>" -> "a@b";
 * malloc'd, NULL if none. "<>" gives "". */
char *mime_address(const char *val, size_t len);

/* Offset of the body: just past the blank line that ends the header
 * section, or len when there is none. */
size_t mime_header_end(const char *hdr, size_t len);

/* Parameter `name` (case-insensitive) of a Content-Type style value,
 * unquoted; malloc'd, NULL if absent.  RFC 2231 extended parameters
 * (name*=, name*0=) are not decoded. */
char *mime_param(const char *val, size_t len, const char *name);

/* Content-Transfer-Encoding decoders, lenient as mail readers are: a
 * stray '=' is kept, bytes outside the base64 alphabet are skipped.
 * malloc'd and NUL-terminated, length in *outlen (may be NULL). */
char *mime_qp_decode(const char *p, size_t len, size_t *outlen);
char *mime_b64_decode(const char *p, size_t len, size_t *outlen);
/* The byte of "=XX" at p[i] (i indexes the '='), or -1. */
int   mime_qp_escape(const char *p, size_t len, size_t i);
/* Base64 into out (room for len * 3 / 4 + 3 bytes): the length, or -1
 * when strict (RFC 2047 B) and p is not clean base64. */
long  mime_b64_into(const char *p, size_t len, char *out, int strict);

/* Text with no declared charset to UTF-8: valid UTF-8 sequences are
 * kept, every other byte is read as Latin-1, NUL becomes U+FFFD. */
char *mime_raw_to_utf8(const char *p, size_t len, size_t *outlen);

/* Append a note to *notes ("; " between notes); nothing if notes is NULL. */
void mime_add_note(char **notes, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
