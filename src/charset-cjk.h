/* charset-cjk.h — byte-level rewrites of the 7-bit CJK encodings that
 * iconv lacks or decodes without the extensions mail carries, into the
 * EUC form of the same character sets, which mime-decode.c converts;
 * and how many bytes a character that iconv rejects spans. */
#ifndef CHARSET_CJK_H
#define CHARSET_CJK_H

#include <stddef.h>

/* ISO-2022-JP (RFC 1468, with JIS X 0201 katakana by ESC ( I or SO/SI
 * and JIS X 0212 by ESC $ ( D) to EUC-JP bytes.  out has room for
 * 2 * len bytes.  Returns the length written, or (size_t)-1 at an
 * escape sequence for a set EUC-JP cannot hold (ISO-2022-JP-2's GB2312,
 * KS C 5601, ISO-8859 G2): the caller uses iconv's decoder then. */
size_t cjk_jis_to_euc(const char *p, size_t len, char *out);

/* HZ-GB-2312 (RFC 1843) to EUC-CN bytes.  out has room for len bytes. */
size_t cjk_hz_to_euc(const char *p, size_t len, char *out);

/* The Shift_JIS form of the EUC-JP pair a b (both 0xA1-0xFE). */
void cjk_euc_to_sjis(unsigned char a, unsigned char b, char out[2]);

/* Is iconv's charset `name` one of one- and two-byte characters
 * (GB18030, CP932, CP949, Big5, EUC-*)? */
int cjk_is_dbcs(const char *name);

/* Bytes a character iconv rejected at u spans (left bytes remain);
 * dbcs: 'D' double-byte, 'J' EUC-JP, else a one-byte charset. */
size_t cjk_bad_width(int dbcs, const unsigned char *u, size_t left);

#endif
