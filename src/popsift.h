/* popsift — shared types: accounts, destinations, logging, exit codes. */
#ifndef POPSIFT_H
#define POPSIFT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

#include "version.h"   /* POPSIFT_VERSION */

enum tls_mode  { TLS_ON, TLS_STARTTLS, TLS_OFF };
enum auth_mode { AUTH_ANY, AUTH_USER, AUTH_APOP, AUTH_PLAIN, AUTH_LOGIN,
                 AUTH_CRAM_MD5, AUTH_XOAUTH2, AUTH_OAUTHBEARER };

/* Where a message goes: an account's `deliver` line or a rule action. */
enum dest_kind { DEST_MBOX, DEST_MAILDIR, DEST_MDA, DEST_FORWARD, DEST_IMAP, DEST_LMTP };
struct dest {
	enum dest_kind kind;
	char  *path;    /* mbox file or Maildir directory, ~ expanded; IMAP folder
	                 * (UTF-8; NULL: the account's imap_folder) */
	char **argv;    /* MDA command, forward addresses, or the LMTP server and
	                 * its recipients; NULL-terminated */
};

/* OAuth2 for one side (POP3, SMTP or IMAP) of an account: the client
 * popsift is registered as and the provider's endpoints (oauth.c). */
struct route;

struct oauth_conf {
	char   *client_id, *client_secret, *client_secret_command;
	char   *scope, *auth_url, *token_url, *device_url;
};

struct account {
	char   *name;
	char   *file;           /* config file and line of the `account` line */
	int     line;
	char   *host;
	int     port;           /* 0: default for the TLS mode */
	char   *user;
	char   *password;
	char   *password_command;
	enum tls_mode  tls;
	int     tls_explicit;   /* `tls` was written in the config */
	char   *tls_ca_file;
	char   *tls_fingerprint;
	enum auth_mode auth;
	int     keep;
	long    delete_after;   /* keep, but delete this many seconds after first seen */
	int     fast_uidl;      /* kept mail: STAT and UIDL n instead of the whole UIDL list */
	char   *rules;
	struct dest *dests;
	size_t  ndests;
	int     interval;
	int     interval_set;   /* `interval` written: pinned unless max_interval is too */
	int     max_interval;   /* daemon: adaptive up to this (-1: not written) */
	int     max_backoff;    /* daemon: longest wait after failures */
	int     timeout;
	int     session_timeout;   /* seconds from connect to QUIT (0: no limit) */
	int     received_header;
	size_t  batch;          /* messages per group commit */
	int     filter_parallel;   /* messages whose filter/pipe commands run at once */
	long long max_size;     /* bigger messages stay on the server (bytes, 0: no limit) */
	int     max_messages;   /* messages fetched per run (0: no limit) */
	char   *smtp_host, *smtp_user, *smtp_password, *smtp_password_command;
	char   *smtp_from, *smtp_helo;
	int     smtp_port;
	enum tls_mode smtp_tls;
	enum auth_mode smtp_auth;       /* any | plain | login | cram-md5 | xoauth2 */
	char   *smtp_tls_ca_file;       /* else tls_ca_file */
	int     on_reject_discard;      /* on_reject discard: delete what the MTA refused (5xx) */
	int     on_partial_accept;      /* on_partial accept: some recipients refused is delivered */
	char   *imap_host, *imap_user, *imap_password, *imap_password_command;
	char   *imap_folder;            /* `deliver imap` without a folder: default INBOX */
	char   *imap_tls_ca_file;       /* else tls_ca_file */
	int     imap_port;              /* 0: 993 with imap_tls on, else 143 */
	enum tls_mode imap_tls;
	enum auth_mode imap_auth;       /* any | plain | login | cram-md5 | xoauth2 | oauthbearer */
	int     imap_create;            /* create a missing folder (NO [TRYCREATE]) */
	int     imap_provider;          /* `imap_provider NAME`: as provider, for the IMAP keys */
	char   *lmtp_rcpt;              /* lmtp without recipients: this one, else user */
	char   *mda_rcpt;               /* an MDA's %T: this one, else the local user */
	struct route *route;            /* domain mailbox routing (route.h), or NULL */
	struct oauth_conf oauth, smtp_oauth, imap_oauth;   /* oauth_*, smtp_oauth_*, imap_oauth_* */
	int     sasl_ir;            /* POP3 SASL initial response: 0 two steps (Microsoft), 1 one */
	int     imap_sasl_ir;       /* the same for IMAP (default 1; 0 for Microsoft) */
	char   *token_dir;          /* OAuth2 token files: oauth/ next to the state database */
	int     provider;           /* `provider NAME`: 1 + its row in provider.c's table, 0 none */
	unsigned keys_set;          /* PRESET_* bits (provider.h) of keys the config wrote */
	char   *after_run;          /* command run after each poll (hook.c) */
	int     after_run_timeout;  /* seconds before it is killed */
	char   *proxy, *smtp_proxy, *imap_proxy;   /* socks5h://, http://... (proxy.c) */
	struct account *next;
};

struct config {
	char   *file;
	char   *state;          /* state database path */
	struct account *accounts;
	int     has_password;   /* a literal password is stored in the file */
	int     max_parallel;   /* daemon: accounts polled at once */
	int     lock_wait;      /* seconds `run` waits for the state lock */
	char   *log;            /* stderr | syslog | FILE */
	char   *metrics;        /* Prometheus text file (metrics.c), or NULL */
};

/* conf.c */
int  conf_load(const char *path, struct config *cf, char **err);
int  conf_parse(const char *path, const char *text, struct config *cf, char **err);
void conf_free(struct config *cf);
int  dest_parse(const char *text, struct dest *d, char **err);
void dest_free(struct dest *d);
char *expand_tilde(const char *path);
struct stat;
/* A config or rules file: refused unless owned by the user or root and
 * writable by nobody else. */
char *read_trusted_file(const char *path, struct stat *st, char **err);

/* Set by SIGTERM/SIGINT: finish what is safe, then stop. */
extern volatile int stop_requested;

/* log.c: every line about an account starts with its name. */
extern int log_level;           /* -1 quiet, 0 normal, 1 -v, 2 -vv */
extern int log_daemon;          /* set before log_open: never copy lines to a terminal */
int  log_open(const char *target, char **err);   /* stderr | syslog | FILE */
void log_reopen(void);
void log_err(const char *acct, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info(const char *acct, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_debug(const char *acct, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_proto(const char *acct, char dir, const char *line, size_t len);
/* Text from a server or a message made safe for a terminal or a log (one
 * escaper for the whole program): controls, bidi overrides and bytes that
 * are not UTF-8 become \xHH, \uHHHH, \n, \r or \t.  Malloc'd. */
char *text_escape(const char *s, size_t n);
char *text_safe(const char *s);         /* NUL-terminated; NULL gives "" */

/* util.c */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
void *xcalloc(size_t n, size_t m);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
int   seterr(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double now_sec(void);
int   fsync_dir(const char *dir);
int   write_all(int fd, const void *buf, size_t len);
int   mkdirs(const char *path, int mode);
int   mkdir_parent(const char *path, int mode);
void  json_puts(const char *s);
int   run_password_command(const char *cmd, char **out, char **err);
char **split_args(const char *s, char **err);
void  free_argv(char **argv);
int   command_env(char **env);

#endif
