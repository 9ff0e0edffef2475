/* imap.h — the inside of `deliver imap`.  deliver-imap.c has libcurl
 * open the connection (TLS, STARTTLS, certificate checks, LOGIN or
 * AUTHENTICATE) in CONNECT_ONLY mode; imap-tx.c then runs popsift's own
 * commands over it: APPEND without flags (libcurl's upload marks every
 * message \Seen), with LITERAL+ many in flight, CREATE, EXAMINE and UID
 * SEARCH for the check after a crash.  imap-util.c holds the pure parts
 * (the response parser, modified UTF-7, quoting, the internal date, the
 * CRLF converter), unit-tested.  No libcurl in imap-tx.c nor imap-util.c. */
#ifndef IMAP_H
#define IMAP_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "conn.h"

#define IMAP_MAX_LINE    (64u << 10)   /* a response's text, literals' contents left out */
#define IMAP_MAX_LITERAL (1u << 20)    /* one literal in a response (skipped) */
#define IMAP_WINDOW      64            /* APPENDs in flight with LITERAL+ */
#define IMAP_SYNC_LITERAL_MAX 4096     /* LITERAL-: bigger literals wait for "+" */

enum imap_kind   { IR_TAGGED, IR_UNTAGGED, IR_CONT };
enum imap_status { IS_NONE, IS_OK, IS_NO, IS_BAD, IS_BYE, IS_PREAUTH };

/* One whole response: a line with its literals (their contents dropped). */
struct imap_resp {
	enum imap_kind kind;
	char   tag[32];
	enum imap_status status;     /* IS_NONE: "* 3 EXISTS", "* SEARCH ...", "+" */
	char   code[256];            /* "TRYCREATE", "APPENDUID 38505 3955" (no brackets) */
	char  *text;                 /* after the tag (or "*", "+"), NUL-terminated */
	size_t tlen, tcap;
};

/* The parser's state between calls. */
struct imap_rd {
	size_t lit_left;             /* bytes of a literal still to skip */
	int    in_resp;              /* text of an unfinished response is in resp->text */
};

void imap_rd_start(struct imap_rd *rd, struct imap_resp *r);
void imap_resp_free(struct imap_resp *r);
/* Feed buf: 1 when a response is complete in r (*used bytes taken), 0
 * when buf is all taken and more is needed, -1 (*err) on a line longer
 * than IMAP_MAX_LINE or a literal bigger than IMAP_MAX_LITERAL. */
int  imap_parse(struct imap_rd *rd, struct imap_resp *r, const char *buf, size_t len,
		size_t *used, char **err);
/* The response code names kw ("TRYCREATE"), as its first word. */
int  imap_code_is(const struct imap_resp *r, const char *kw);
/* A word of an untagged response's text ("CAPABILITY IMAP4rev1 LITERAL+"). */
int  imap_has_word(const char *text, const char *word);

/* A UTF-8 folder name in modified UTF-7 (RFC 3501 5.1.3), malloc'd; NULL
 * if it is not valid UTF-8 or holds a control character. */
char *imap_mutf7(const char *utf8);
/* An IMAP quoted string, malloc'd; NULL for bytes a quoted string cannot
 * hold (CR, LF, NUL, 8-bit). */
char *imap_quote(const char *s);

/* The internal date for APPEND: the newest Received: date of the header,
 * else its Date:, as "01-Jul-2003 10:52:37 +0200" in out (32 bytes); 0
 * when neither gives a date. */
int  imap_internal_date(const char *hdr, size_t len, char out[32]);

/* Line ends as IMAP wants them: a bare LF or a lone CR becomes CRLF. */
struct crlf { int cr; };
/* out has room for 2 * n bytes; NULL out only counts. */
size_t crlf_put(struct crlf *c, const char *p, size_t n, char *out);
/* A CR left at the end gets its LF; out has room for 2.  */
size_t crlf_end(struct crlf *c, char *out);

/* ------------------------------------------------------------ imap-tx.c */

/* The reply to one command, once read. */
struct imap_reply {
	int    done;
	enum imap_status status;
	char   code[256];
	char   text[256];
};

struct imap_ses {
	struct conn c;
	struct imap_rd rd;
	struct imap_resp resp;
	char    in[16384];
	size_t  ioff, ilen;
	unsigned long tagn;
	int     literal_plus, literal_minus, multiappend, uidplus;
	unsigned long long appendlimit;   /* 0: none said */
	int     broken;                   /* BYE, timeout, dropped: hang up */
	/* commands sent and not yet claimed by imap_wait() */
	struct { unsigned long tag; struct imap_reply rep; } fly[IMAP_WINDOW + 4];
	size_t  nfly;
	char   *found;                    /* imap_search: "* SEARCH" numbers */
};

/* The message data for APPEND: prepend lines, then the message; any
 * line ends.  Bytes put in out, 0 at the end, -1 when unreadable. */
struct imap_src {
	ssize_t (*fill)(char *out, size_t cap, void *arg);
	void     *arg;
	void    (*rewind)(void *arg);
};

void imap_ses_init(struct imap_ses *s);
void imap_ses_free(struct imap_ses *s);
/* The capabilities from the login's trace (the last CAPABILITY list
 * libcurl saw), or ask the server when that is NULL. */
int  imap_capabilities(struct imap_ses *s, const char *seen, char **err);
/* One APPEND of the data (already sized: n bytes after CRLF conversion)
 * to the quoted folder, no flags, the date if any.  *tag gets its tag;
 * 1: in flight (the reply comes with imap_wait), 0: answered before the
 * data went out (imap_wait has the reply at once), -1 (*err, broken). */
int  imap_append(struct imap_ses *s, const char *qfolder, const char *date, size_t n,
		 const struct imap_src *src, unsigned long *tag, char **err);
/* The reply to tag (read until it comes). */
int  imap_wait(struct imap_ses *s, unsigned long tag, struct imap_reply *rep, char **err);
/* One command and its tagged reply ("CREATE %s", "EXAMINE %s", ...). */
int  imap_simple(struct imap_ses *s, struct imap_reply *rep, char **err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Commands still in flight. */
size_t imap_pending(const struct imap_ses *s);
/* A kept connection is still usable: no BYE, no end of stream came
 * while it was idle (0: hang up and dial again). */
int  imap_alive(struct imap_ses *s);
/* LOGOUT unless broken, then close. */
void imap_logout(struct imap_ses *s);

#endif
