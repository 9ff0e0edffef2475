/* match.h — internals of the rules engine, shared by rules*.c, action.c
 * and match-*.c only.  The public face is rules.h.
 *
 * A rules file parses into rules, each a condition tree and a list of
 * actions.  Leaves of the tree are conditions of one kind behind
 * struct match_ops; evaluation is three-valued so that it can run before
 * the download, when the body is not there yet. */
#ifndef MATCH_H
#define MATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rules.h"

/* A body condition before the download is neither true nor false. */
enum tri { T_FALSE = 0, T_TRUE = 1, T_UNKNOWN = 2 };

/* ---- rules-lex.c: logical lines and tokens ---- */

struct lexer {
	const char *file;
	const char *src;        /* the whole rules text */
	size_t  srclen, srcpos;
	int     srcline;        /* physical lines consumed so far */
	char   *text;           /* current logical line, continuations joined */
	size_t  len, cap, pos;
	/* where each physical line starts in text, for line:col in errors */
	size_t *segoff;
	int    *segline;
	size_t  nseg, segcap;
	char  **err;
};

void lx_init(struct lexer *lx, const char *file, const char *src, size_t len, char **err);
void lx_free(struct lexer *lx);
int  lx_next_line(struct lexer *lx);                 /* 1: a line is ready, 0: end */
int  lx_line(const struct lexer *lx);                /* first physical line of it */
void lx_ws(struct lexer *lx);                        /* blanks and a trailing comment */
int  lx_eol(struct lexer *lx);
int  lx_peek(struct lexer *lx);                      /* next byte after blanks, 0 at end */
int  lx_keyword(struct lexer *lx, const char *kw);   /* consume kw if it is the next word */
int  lx_ident(struct lexer *lx, char **out);         /* [A-Za-z0-9_-]+, NULL if none */
int  lx_word(struct lexer *lx, char **out, size_t *start); /* "string" or bare word */
char *lx_rest(struct lexer *lx, size_t *start);      /* rest of line, comment cut */
int  lx_error(struct lexer *lx, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- the parsed rules ---- */

struct parser {
	struct lexer  lx;
	struct rules *r;
	unsigned      ncaps;    /* most capture groups of a regex in this condition */
	int           nregex;   /* regexes so far in this condition, in text order */
};

enum cond_kind { C_LEAF, C_NOT, C_AND, C_OR };

struct cond {
	enum cond_kind kind;
	struct cond *a, *b;
	const struct match_ops *ops;    /* C_LEAF */
	void *data;
	int   needs_body;               /* some leaf below needs the body */
};

enum act_kind { A_MBOX, A_MAILDIR, A_MDA, A_FORWARD, A_DISCARD, A_SKIP,
                A_KEEP, A_ADDHDR, A_CONTINUE, A_IMAP, A_LMTP, A_FILTER };

/* A set of exit codes 0..255 (`returns 0,1`, `returns 0-2`). */
struct codes {
	uint64_t w[4];
};

struct tmpl;

struct action {
	enum act_kind kind;
	struct tmpl **args;
	size_t nargs;
	struct codes ok;        /* filter: the exit codes that mean success */
};

struct rule {
	int     line;
	struct cond *cond;
	struct action *acts;
	size_t  nacts;
	int     final;          /* no `continue` */
	int     delivers;       /* mbox, maildir, mda, forward or imap */
};

struct regex_env;

struct rules {
	char   *file;
	struct rule *v;
	size_t  n, cap;
	char  **hnames;         /* header names the rules reference */
	size_t  nh;
	struct regex_env *env;
};

int rules_header_id(struct rules *r, const char *name);

/* ---- evaluation (rules-eval.c) ---- */

struct span {
	const char *p;
	size_t n;
};

struct hslot {
	int     done;
	struct span *v;         /* decoded values of every field of this name */
	size_t  n;
};

struct evalctx {
	const struct rules   *r;
	const struct msgview *v;        /* &view */
	struct msgview view;            /* a filter changes msg, hdr and size */
	const struct rule    *rule;
	int     scanned;
	struct rawfield { int hid; const char *p; size_t n; } *raw;
	size_t  nraw, rawcap;
	struct hslot *slots;
	int     all_done;
	struct span *all;       /* every field as "Name: value" */
	size_t  nall;
	int     body_done;
	struct span body;
	int     cs_done;
	char   *charset;        /* for raw 8-bit header bytes (rules-eval.c) */
	char  **pool;           /* strings to free after the evaluation */
	size_t  npool, poolcap;
	struct span cap[10];    /* $0..$9 of the last regex (in text order) that matched */
	int     capid;
	char   *error;
};

int  ev_header(struct evalctx *x, int hid, const struct span **v, size_t *n);
int  ev_headers(struct evalctx *x, const struct span **v, size_t *n);
int  ev_body(struct evalctx *x, struct span *out);
int  ev_rawbody(struct evalctx *x, struct span *out);
int  ev_error(struct evalctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ev_note(struct evalctx *x, char *note);
/* Free s after the evaluation (regex captures may point into it). */
void ev_keep(struct evalctx *x, char *s);
/* match-pipe.c: run the message through argv; its output is the message
 * from now on.  0, or -1 with x->error (the message stays on the server). */
int  ev_filter(struct evalctx *x, char **argv, const struct codes *ok);

/* ---- condition kinds (match-*.c) ---- */

struct match_ops {
	const char *name;
	int  (*parse)(struct parser *p, void **data);     /* after the keyword */
	int  (*eval)(const void *data, struct evalctx *x);  /* enum tri or -1 */
	void (*free)(void *data);
	int    needs_body;
	void (*dump)(const void *data, FILE *out);
};

extern const struct match_ops match_header, match_headers, match_body,
	match_rawbody, match_size, match_account, match_all, match_duplicate, match_pipe;
extern const struct match_ops match_age;                             /* match-age.c */
extern const struct match_ops match_attachments, match_attachment;   /* match-attachment.c */

/* match-pipe.c: exit code sets. */
int  codes_parse(struct parser *p, struct codes *c);    /* the word after "returns" */
int  codes_has(const struct codes *c, int code);
void codes_default(struct codes *c);                    /* {0} */
void codes_dump(const struct codes *c, FILE *out);      /* " returns 0,2-3" */

/* `=~` (0) or `!~` (1); -1 with an error if neither is next. */
int match_parse_op(struct parser *p, const char *what);

/* ---- match-regex.c: the only user of PCRE2 ---- */

struct regex;
struct regex *regex_parse(struct parser *p, int utf);
int  regex_match(const struct regex *re, struct evalctx *x, const char *s, size_t n);
void regex_free(struct regex *re);
void regex_dump(const struct regex *re, FILE *out);
struct regex_env *regex_env_new(void);
void regex_env_free(struct regex_env *env);

/* ---- action.c ---- */

int  action_parse(struct parser *p, struct rule *ru);
void action_free(struct action *a);
void action_dump(const struct action *a, FILE *out);
const char *action_arg_text(const struct action *a, size_t i);
/* Apply one action of a matched rule to the decision; text gets the
 * action as shown in logs.  0, 1 (a filter before the download: needs
 * the body) or -1 with x->error. */
int  action_apply(const struct action *a, struct evalctx *x, struct decision *d,
		  char **text);

#endif
