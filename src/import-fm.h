/* import-fm.h — private to the .fetchmailrc converter: what the parser
 * (import-fmparse.c) understood, for the writer (import-fmconv.c). */
#ifndef IMPORT_FM_H
#define IMPORT_FM_H

#include "import.h"

/* One user clause of a poll: becomes one popsift account. */
struct fmuser {
	char   *remote;         /* user name on the server */
	char  **locals;         /* `is NAME... here` */
	size_t  nlocals;
	char   *password;
	char   *passwordfile;   /* newer fetchmails: its first line is the password */
	int     limit, fetchlimit;      /* 0: none */
	int     ssl, sslcertck, keep;      /* -1 unset, 0, 1 */
	int     sslproto;       /* -1 unset, 0 '' (no TLS at all), 1 a protocol */
	char   *sslcertfile;
	char   *mda;
	char   *smtphost;       /* the first one */
	char   *smtpaddress, *smtpname;
	int     bsmtp, lmtp;
	int     line;
	struct fmuser *next;
};

/* One poll (or skip) statement. */
struct fmpoll {
	char   *name, *via, *proto, *auth, *port;
	int     timeout, interval;
	int     skip, line;
	struct fmuser *users;
	struct fmpoll *next;
};

/* A setting that has no popsift equivalent (lost) or needs none. */
struct fmnote {
	int     line;
	int     lost;
	char   *text;
	const void *owner;      /* the poll or user it belongs to; NULL: global */
	struct fmnote *next;
};

struct fm {
	const char *file;
	struct fmtok *t;
	size_t  i;
	struct fmpoll *polls, **ptail;
	struct fmpoll *poll;    /* the statement being read (or &dpoll) */
	struct fmuser *user;    /* its current user clause (or &duser) */
	struct fmpoll dpoll;    /* `defaults` */
	struct fmuser duser;
	int     daemon;         /* set daemon N */
	char   *logfile;        /* set logfile F, or "syslog" */
	char   *idfile;
	int     reject_discard; /* set no softbounce */
	struct fmnote *notes, **ntail;
};

/* import-fmparse.c */
int  fm_parse(struct fm *c, char **err);
void fm_free(struct fm *c);
void fm_note(struct fm *c, int line, int lost, const void *owner, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
