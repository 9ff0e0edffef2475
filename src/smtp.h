/* smtp.h — the inside of `forward` and `lmtp`.  deliver-smtp.c has libcurl open
 * the connection (TLS, STARTTLS, EHLO, AUTH) in CONNECT_ONLY mode;
 * smtp-tx.c then runs each mail transaction over it, pipelined when the
 * server offers PIPELINING.  smtp-dialog.c records every command with
 * its reply — through libcurl's debug callback while connecting, then
 * from smtp-tx.c — so the outcome can name every refused recipient and
 * quote the server's words, and -v can show the dialogue with
 * credentials masked.  Only deliver-smtp.c and smtp-dialog.c (with
 * curlconn.c) use libcurl.
 *
 * The inside of `lmtp` too: deliver-lmtp.c opens a plain socket itself
 * (libcurl has no LMTP) and smtp_greet() sends LHLO; the end of the data
 * then gets a reply per accepted recipient (RFC 2033), one "." each in
 * the dialog.  smtp-job.c holds what both deliverers share. */
#ifndef SMTP_H
#define SMTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "conn.h"

/* One command and the reply it got.  cmd is the verb ("MAIL", "RCPT",
 * "DATA", "AUTH", "EHLO"…), "." for the end of the message data and ""
 * for the greeting; arg is the RCPT address. */
struct exch {
	char  cmd[12];
	char *arg;
	int   code;        /* 0: no reply (yet) */
	char *text;        /* the reply, continuation lines joined by " / " */
};

struct dialog {
	const char   *acct;        /* log lines start with it */
	struct exch  *ex;
	size_t        nex, cap;
	int           in_auth;     /* client lines are secrets until AUTH ends */
	char         *part;        /* a multi-line reply being assembled */
	size_t        plen, pcap;  /* its length and room */
	unsigned      plines;      /* its lines so far */
	int           poverlong;   /* past DIALOG_MAX_*: a bad reply */
	int           data_started;/* 354 seen: the next reply answers "." */
	size_t        next;        /* the first command still without a reply */
};

/* A multi-line reply past either bound is a bad reply (code 0: the
 * message is deferred), its text cut at the bound. */
#define DIALOG_MAX_BYTES (64u << 10)
#define DIALOG_MAX_LINES 1000u

void dialog_reset(struct dialog *d);
void dialog_free(struct dialog *d);
/* CURLOPT_DEBUGFUNCTION, with the dialog as CURLOPT_DEBUGDATA. */
int  dialog_trace(CURL *h, curl_infotype type, char *data, size_t size, void *arg);
/* A command sent (a line without its CRLF; "." for the end of the data)
 * and a reply line received: 1 when the line completed a reply. */
void dialog_command(struct dialog *d, const char *p, size_t n);
int  dialog_reply(struct dialog *d, const char *p, size_t n);
/* The end of the data sent: one "." to answer or, LMTP, one per
 * recipient accepted (arg: the recipient), in RCPT order. */
void dialog_dot(struct dialog *d, int lmtp);
/* A greeting to wait for, before the first command. */
void dialog_greeting(struct dialog *d);
/* RCPTs answered 2xx (accepted 1), or refused with 3xx-5xx (accepted 0). */
size_t dialog_rcpts(const struct dialog *d, int accepted);
/* Commands still waiting for their reply. */
size_t dialog_pending(const struct dialog *d);
const struct exch *dialog_last(const struct dialog *d);
/* The EHLO (or LHLO) reply names the extension kw (a word of it, any case). */
int  dialog_ehlo_has(const struct dialog *d, const char *kw);
/* The last exchange for cmd, or NULL. */
const struct exch *dialog_find(const struct dialog *d, const char *cmd);

/* The message data as RFC 5321 2.3.8 and 4.5.2 want it, streamed in
 * chunks that may split a CRLF or a line start from its dot: a lone CR
 * or a lone LF becomes CRLF, CRLF stays CRLF, and a line that starts
 * with "." after that gets another. */
struct stuffer {
	int bol;           /* the next byte starts a line */
	int cr;            /* a CR went out: an LF follows, read or not */
};
void   stuffer_start(struct stuffer *s);
/* out has room for 3 * n bytes (a lone CR's LF, a stuffed dot, the byte). */
size_t stuffer_put(struct stuffer *s, const char *p, size_t n, char *out);
/* The last line's end if it lacks one, then ".\r\n"; out has room for 5. */
size_t stuffer_end(struct stuffer *s, char *out);

/* The SMTP connection of the sending thread (deliver-smtp.c owns it). */
struct link {
	struct conn    c;           /* libcurl's handle and socket */
	struct dialog *d;           /* this message's commands and replies */
	struct dialog *ahead;       /* the next one's envelope, sent with this one's dot */
	struct dialog *spare;       /* the one to use for that */
	int     pipelining;         /* the server offers PIPELINING */
	int     lmtp;               /* LMTP (RFC 2033): LHLO, and a reply per
	                             * recipient to the end of the data */
	int     broken;             /* it went away, timed out or was left mid-DATA */
	char    garbled[120];       /* a reply line without a 2xx-5xx code */
	struct stuffer st;          /* the data's line ends and dots */
	char    in[8192];
	size_t  ilen;
	char   *out;
	size_t  olen, ocap;
	char    scratch[64u << 10];
};

struct tx_msg {
	const char   *from;
	char *const  *rcpt;         /* NULL-terminated */
	int           partial_ok;   /* on_partial accept */
	/* the data with any line ends (LF, CRLF or CR), not dot-stuffed:
	 * bytes put in out, 0 at the end, -1 when it cannot be read (errno) */
	ssize_t     (*fill)(char *out, size_t cap, void *arg);
	void         *arg;
};

struct tx_end {
	int aborted;       /* refused recipients and on_partial keep: sent to nobody */
	int read_failed;
	int data_out;      /* the data began to go out: the server may hold the
	                    * message though no reply to its end came */
};

/* One transaction: 0 when it ran to an end the dialog records (accepted
 * or refused), -1 when the connection failed (*err; link->broken).
 * next: the message to send after it, whose envelope may go out with
 * m's end (link->ahead); its smtp_tx must come next on this link. */
int  smtp_tx(struct link *l, const struct tx_msg *m, const struct tx_msg *next,
	     struct tx_end *end, char **err);
/* On a connection that is not libcurl's (LMTP): the greeting, then
 * LHLO (l->lmtp) or EHLO with name; sets l->pipelining.  0, or -1 with
 * *err (l->broken). */
int  smtp_greet(struct link *l, const char *name, char **err);
/* A kept connection is still open and quiet (0: hang up and dial again). */
int  smtp_alive(struct link *l);
/* QUIT, unless the connection is broken. */
void smtp_quit(struct link *l);

/* ---- smtp-job.c: what forward and lmtp share about one message ---- */
struct job;
struct msg;
struct outcome;

/* The recipients as written (what: "forward", "lmtp" for the errors). */
char **smtp_rcpts(char *const *argv, const char *what, char **err);
void   smtp_rcpts_free(char **v);
/* The address in the message's Return-Path ("" for <>), or NULL. */
char  *return_path(const struct msg *m);

/* A job's prepend lines, then its message, for tx_msg.fill. */
struct reader {
	const char *pre;
	size_t      prelen;
	const struct msg *m;
	size_t      off;            /* bytes of prepend + message consumed */
	char       *buf;            /* a chunk of the spill file ... */
	size_t      bufoff, buflen; /* ... starting at this message offset */
};
void    reader_start(struct reader *r, const struct job *j);
ssize_t reader_fill(char *out, size_t cap, void *arg);
void    reader_free(struct reader *r);

/* Who judges, and how. */
struct verdict {
	const char *acct;       /* log lines start with it */
	const char *where;      /* "host:port" or the socket, for messages */
	const char *done;       /* "forwarded to", "delivered to" */
	int   lmtp;             /* a reply per recipient to the end of the data */
	int   partial_ok;       /* on_partial accept */
};
/* The dialogue of one transaction into o: 0 delivered, -1 with o->err,
 * o->rejected and o->fail_code. */
int smtp_judge(const struct verdict *v, const struct dialog *d, const struct tx_end *end,
	       const char *err, struct outcome *o);

/* ---- smtp-sender.c: the sending thread's connection of one deliverer ---- */
struct down;

/* forward's or lmtp's (dqueue.c's sending thread owns it): one
 * connection that carries every message of a run to one server, opened
 * again only for another server or after a failure. */
struct sender {
	struct link link;
	char  *key;                 /* the open connection's target key */
	char  *acct;                /* and its account's name: QUIT outlives the account */
	const struct job *ahead_job;   /* whose envelope went out ahead (link.ahead) */
	struct reader rd;
	struct dialog dlg, dlg2;       /* the connect and one message, the next one */
	struct down *downs;         /* servers given up on for the rest of the run */
};

/* One leg's transaction: how to reach its server and who judges. */
struct leg_tx {
	const void *s;              /* the deliverer's target settings, for connect */
	/* The connection to use: 0 (*kept: it carried an earlier message),
	 * or -1 with o filled. */
	int  (*connect)(const void *s, int *kept, struct outcome *o);
	const struct job *next;     /* the job whose envelope may go with this end */
	char *const *rcpt;          /* the target's recipients, for a job without */
	char *const *next_rcpt;     /* the same for next */
	struct verdict v;
};

void sender_first_use(struct sender *c);
void sender_name(struct sender *c, const char *acct);
void sender_hang_up(struct sender *c);
void sender_shutdown(struct sender *c);
/* 1 when the open connection (open: there is one) is to key and alive;
 * else it is closed with a QUIT and 0. */
int  sender_kept(struct sender *c, int open, const char *key, const char *acct,
		 const char *where);
/* Send job j and judge its dialogue into o: 0 delivered, -1 not. */
int  sender_transfer(struct sender *c, const struct job *j, const struct leg_tx *t,
		     struct outcome *o);

#endif
