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
	/* duplicate: is this Message-ID already delivered (any account)? */
	int        (*is_duplicate)(void *arg, const char *message_id);
	void        *dup_arg;
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
};

struct rules *rules_load(const char *path, char **err);   /* err: "file:line:col: msg" */
struct rules *rules_parse(const char *path, const char *text, char **err);
void rules_free(struct rules *r);
int  rules_eval(struct rules *r, const struct msgview *v, struct decision *d);
void decision_free(struct decision *d);
/* Print the rules as understood (popsift check -v). */
void rules_dump(const struct rules *r, FILE *out);

#endif
