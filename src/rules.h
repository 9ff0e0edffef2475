/* rules.h — the rules language (see doc/popsift.rules.5): parse a rules
 * file once, evaluate it per message.  Evaluation can run before the
 * download (headers from TOP n 0 and size from LIST): conditions that
 * need the body then make the decision "need_body". */
#ifndef RULES_H
#define RULES_H

#include <stddef.h>
#include <stdio.h>
#include "popsift.h"

struct msg;
struct rules;

struct msgview {
	const char  *account;
	const char  *hdr;        /* raw header section */
	size_t       hdrlen;
	size_t       size;       /* message size in octets */
	struct msg  *msg;        /* whole message, or NULL before download */
	/* duplicate: is this Message-ID already delivered (any account)?
	 * Gets the decoded field as written, "<id@host>"; returns 1 yes,
	 * 0 no, -1 error (the decision then carries an error).  NULL: never. */
	int        (*is_duplicate)(void *arg, const char *message_id);
	void        *dup_arg;
	int          timeout;    /* seconds for a filter or pipe command (0: 60) */
};

struct decision {
	int     need_body;       /* cannot decide without the body */
	int     matched;         /* a final rule decided; else use the account's deliver */
	int     skip;            /* leave on server, do not download */
	int     discard;         /* delete from server, deliver nowhere */
	int     keep;            /* deliver and leave on server */
	struct dest *dests;      /* expanded destinations, in rule order */
	size_t  ndests;
	char  **add_headers;     /* "Name: value" lines to prepend */
	size_t  nadd;
	char   *rule;            /* "file:line" of the deciding rule, or NULL */
	char   *action;          /* the action as text, for logs and state */
	char   *error;           /* e.g. match limit hit: leave the message on the server */
	int     use_default;     /* also deliver to the account's deliver: no final rule
	                          * matched, or it only said keep/add-header */
};

struct rules *rules_load(const char *path, char **err);   /* err: "file:line:col: msg" */
struct rules *rules_parse(const char *path, const char *text, char **err);
void rules_free(struct rules *r);
/* Fills *d (overwritten: decision_free the previous one first).
 * Returns 0 (decided, or d->need_body when v->msg is NULL and a body
 * condition was reached), -1 with d->error set (match limit, a failed
 * duplicate lookup): leave the message on the server.  Not reentrant:
 * one struct rules per thread. */
int  rules_eval(struct rules *r, const struct msgview *v, struct decision *d);
void decision_free(struct decision *d);
/* Print the rules as understood (popsift check -v). */
void rules_dump(const struct rules *r, FILE *out);
size_t rules_count(const struct rules *r);
/* 1 if some skip or discard can be decided from TOP n 0 and LIST alone,
 * i.e. fetching the headers first can save a download. */
int  rules_prefetch_useful(const struct rules *r);

/* popsift filter -r RULES [--dry-run] [--mbox F | --maildir D | FILE... | < MSG]
 * argv[0] is "filter"; returns an exit code (sysexits). */
int  cmd_filter(int argc, char **argv);

/* "10.42 2022-12-11": for popsift --version */
const char *rules_lib_version(void);

#endif
