/* import.h — `popsift import`: migrate from fetchmail, mpop and getmail.
 * The parsers are pure (text in, structures or text out) so the unit
 * tests can feed them files written by the real tools. */
#ifndef IMPORT_H
#define IMPORT_H

#include <stdio.h>
#include <stddef.h>

/* ---------------------------------------------- UIDL lists (import-uidl.c) */

/* The UIDLs an old tool recorded for one mailbox. */
struct uidlist {
	char   *user, *host;
	int     port;           /* getmail: from the file name; 0 when the tool keeps none */
	char   *raw;            /* getmail: "HOST-PORT-USER" as in the file name */
	char  **uidls;
	long long *when;        /* getmail: when it was fetched (unix time); else 0 */
	size_t  n, cap;
	struct uidlist *next;
};

/* fetchmail's .fetchids: "user@host UIDL" lines, several mailboxes. */
int  parse_fetchids(const char *text, struct uidlist **out, char **err);
/* mpop's uidls file: " N host user" then N UIDL lines, repeated. */
int  parse_mpop_uidls(const char *text, struct uidlist **out, char **err);
/* getmail's oldmail-HOST-PORT-USER: "UIDL\0unixtime\n" lines; name is the
 * file name (its last path component tells the mailbox). */
int  parse_getmail_oldmail(const char *name, const char *data, size_t len,
			   struct uidlist **out, char **err);
void uidlists_free(struct uidlist *l);

/* ------------------------------------------- fetchmailrc (import-fm*.c) */

struct fmtok {
	char *s;
	int   quoted;           /* a "string" or 'string': never a keyword */
	int   line;
};

/* Split a .fetchmailrc into words: comments dropped, quotes and their
 * escapes resolved, the punctuation , : ; dropped.  *out ends with a
 * token whose s is NULL.  -1 with *err ("file:line: ...") on a bad quote. */
int  fm_lex(const char *file, const char *text, struct fmtok **out, char **err);
void fm_tokens_free(struct fmtok *t);

/* Convert to a popsift config written to out; what could not be converted
 * becomes "# could not convert:" comments there and a summary on summary.
 * *naccounts: accounts written.  -1 with *err on a syntax error. */
int  fm_convert(const char *file, const char *text, FILE *out, FILE *summary,
		int *naccounts, char **err);

/* ------------------------------------------ shared by the converters (import-util.c) */

/* What a converted config says about a setting it could not convert;
 * `popsift check -v` lists these lines. */
#define IMPORT_LOST_MARK "could not convert:"

/* `key value`, quoted when the config reader would otherwise cut or
 * unquote it; -1 when no config line can hold it (a line break). */
int   import_put(FILE *out, const char *key, const char *v);
/* s as one word for split_args and sh alike ('...' when needed); NULL
 * when no config line can hold it (a line break, or " #"). */
char *import_shell_quote(const char *s);
/* The words quoted and joined by blanks; NULL as import_shell_quote. */
char *import_join_argv(char *const *argv);
/* A command an old tool ran with sh -c, for password_command or deliver
 * mda (run without a shell): as it is when it holds no shell syntax, else
 * /bin/sh -c 'CMD'; NULL when no config line can hold it. */
char *import_sh_command(const char *cmd);
/* name with what an account name cannot hold made '_'. */
char *import_account_name(const char *s);
/* Each line of text written after prefix (an empty line as "#"). */
void  import_comment_out(FILE *out, const char *text, const char *prefix);
/* `check -v`: each "could not convert" comment in the config at path,
 * as "path:line: could not convert: ..." on out (NULL: none); how many. */
int   import_list_lost(const char *path, FILE *out);

/* What a converter could not convert (lost) or wants said (a note), for
 * the account's comments and the summary on stderr. */
struct inote {
	int   line, lost;
	char *text;
};
struct inotes {
	struct inote *v;
	size_t n;
};
void inotes_add(struct inotes *ns, int line, int lost, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Write from's notes as comments and move them to all. */
void inotes_flush(FILE *out, const char *file, struct inotes *from, struct inotes *all);
/* "FILE: N accounts converted; could not convert M settings:" and each. */
void inotes_summary(FILE *s, const char *file, int naccounts, const struct inotes *all);
void inotes_free(struct inotes *ns);

/* ------------------------------------------------- mpoprc (import-mpop.c) */

/* Convert an mpop configuration to a popsift config on out; notes and a
 * summary as fm_convert.  -1 with *err on a line mpop would refuse too. */
int  mpop_convert(const char *file, const char *text, FILE *out, FILE *summary,
		  int *naccounts, char **err);

/* ---------------------------------------------- getmailrc (import-getmail.c) */

/* Convert getmail6 rc files (INI) to one popsift config on out. */
int  getmail_convert(const char *const *files, const char *const *texts, size_t nfiles,
		     FILE *out, FILE *summary, int *naccounts, char **err);

/* ------------------------------------------------------ cmd-import.c */

/* `popsift import KIND [FILE] [ACCOUNT]`; returns the exit code. */
int  cmd_import(const char *config, int nargs, char **args, int dry_run);

#endif
