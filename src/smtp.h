/* smtp.h — the inside of `forward` (deliver-smtp.c).  libcurl runs the
 * SMTP dialogue and reports only a result code and the last reply code;
 * smtp-dialog.c follows the dialogue through libcurl's debug callback,
 * so the outcome can name every refused recipient and quote the
 * server's words, and -v can show the dialogue with credentials masked.
 * Only deliver-smtp.c and smtp-dialog.c (with curlconn.c) use libcurl. */
#ifndef SMTP_H
#define SMTP_H

#include <stddef.h>

#include <curl/curl.h>

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
	int           data_started;/* 354 seen: the next reply answers "." */
};

void dialog_reset(struct dialog *d);
void dialog_free(struct dialog *d);
/* CURLOPT_DEBUGFUNCTION, with the dialog as CURLOPT_DEBUGDATA. */
int  dialog_trace(CURL *h, curl_infotype type, char *data, size_t size, void *arg);
/* The last exchange for cmd, or NULL. */
const struct exch *dialog_find(const struct dialog *d, const char *cmd);
/* A new connection said hello during this transfer. */
int  dialog_greeted(const struct dialog *d);

#endif
