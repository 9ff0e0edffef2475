/* conn.h — one POP3 connection: libcurl connects, does TLS/STLS and the
 * login, then hands over the socket (curlconn.c, with pop3.c the only
 * users of libcurl's POP3 side). */
#ifndef CONN_H
#define CONN_H

#include <stddef.h>
#include <sys/types.h>

struct account;

/* What a server said of itself before the login (CAPA, the greeting),
 * remembered between sessions (state-caps.c) so a later session can skip
 * CAPA and send its login with its first commands. */
struct caps {
	int     known;           /* CAPA was answered +OK */
	int     pipelining, user, uidl, top, stls;
	int     apop_ts;         /* the greeting had an APOP timestamp */
	/* Courier offers PIPELINING yet loses what follows PASS (its login
	 * program execs the mail one): pipelining stops at the login */
	int     split_login;
	int     fast_failed;     /* a session on the short way failed: not again */
	char    sasl[256];       /* the mechanisms of CAPA's SASL line, "" none */
};

struct conn {
	void   *curl;            /* CURL * */
	int     sock;
	int     raw;             /* sock is popsift's own (LMTP): no libcurl, no TLS */
	int     timeout_ms;
	double  session_end;     /* now_sec() when session_timeout ends it; 0 never */
	int     session_s;
	int     tls;             /* the session is encrypted */
	int     need_login;      /* libcurl did not log in: send USER/PASS ourselves */
	const char *acct;
	char   *greeting;
	/* what the login dialogue showed, to say why a login failed */
	int     sent_credentials;   /* USER/PASS, APOP or AUTH went out */
	char    mech[32];           /* "APOP" or the SASL mechanism libcurl chose */
	int     greeting_ts;        /* the greeting has an APOP timestamp */
	int     heard;              /* the server sent a line (before TLS: in clear) */
	char    sasl[256];          /* the SASL line of CAPA */
	struct caps caps;           /* what CAPA and the greeting said (or the cache) */
	int     capa_sent;          /* libcurl sent CAPA: its status line is next */
	int     fast;               /* opened by conn_open_fast: no CAPA this session */
};

/* 0, or -1 with *err and the exit code in *code. */
int  conn_open(struct conn *c, const struct account *a, const char *secret,
	       int *code, char **err);
/* The short way in, for a server whose capabilities are known (k):
 * libcurl connects (and does TLS, certificates checked as for pop3s) but
 * sends nothing; the greeting is read here and the login is left to the
 * caller (need_login), to go out with its first commands.  0 open, 1 the
 * server is not as remembered (nothing was sent; use conn_open), -1 with
 * *err and the exit code in *code. */
int  conn_open_fast(struct conn *c, const struct account *a, const struct caps *k,
		    int *code, char **err);
/* Could the account take the short way: 1 when k allows it (k NULL:
 * whatever the server says, e.g. STARTTLS never), else 0. */
int  conn_fast_ok(const struct account *a, const struct caps *k);
/* Bytes sent or received (through libcurl, or on a raw socket); 0 when nothing is ready (CURLE_AGAIN); -1
 * on error (*err set); conn_recv returns -2 at end of stream. */
ssize_t conn_send(struct conn *c, const char *buf, size_t len, char **err);
ssize_t conn_recv(struct conn *c, char *buf, size_t len, char **err);
/* Wait for the socket: 1 ready, 0 timeout, -1 error, -2 stop requested. */
int  conn_wait(struct conn *c, int want_write);
/* The same with a wait of ms milliseconds instead of the timeout. */
int  conn_wait_ms(struct conn *c, int want_write, int ms);
void conn_close(struct conn *c);
int  conn_global_init(void);

/* "7.88.1": for popsift --version */
const char *conn_lib_version(void);

#endif
