/* cmd-new.c — popsift new: is there new mail, and how much?  As
 * fetchmail -c and mpop -s: per account, UIDL and LIST only (no RETR,
 * TOP or DELE), compared with the state database, which is read and
 * never written.  "New" is what a run's "N new" counts: a UIDL the
 * database has no row for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "pop3.h"
#include "popsift.h"
#include "secret.h"
#include "state.h"
#include "uidmap.h"

#define WINDOW 8   /* USER, PASS, UIDL, LIST, QUIT: a few in flight at most */

struct newmail {
	const struct account *a;
	struct uidmap known;
	unsigned long *nums;      /* numbers of the new messages, as listed */
	size_t nnew, cap;
	unsigned long total;      /* messages on the server */
	unsigned long long bytes, total_bytes;
	int no_uidl, code;
	char *error;
};

static int on_login(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	const struct newmail *m = arg;
	return ev == P3_ERR ? pop3_login_refused(p, m->a, s, n) : 0;
}

static int on_uidl(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct newmail *m = arg;
	unsigned long num;
	const char *u;
	size_t ulen;
	int rc = pop3_uidl_event(p, ev, s, n, &m->no_uidl, &num, &u, &ulen);
	if (rc <= 0)
		return rc;
	m->total++;
	if (u == NULL)
		return 0;   /* no UID: a run names it by its headers, which LIST cannot show */
	char *uid = xstrndup(u, ulen);
	int known = uidmap_get(&m->known, uid) != M_NONE;
	free(uid);
	if (known)
		return 0;
	if (m->nnew == m->cap)
		m->nums = xrealloc(m->nums, (m->cap = m->cap ? m->cap * 2 : 64) * sizeof *m->nums);
	m->nums[m->nnew++] = num;
	return 0;
}

static int by_num(const void *x, const void *y)
{
	unsigned long a = *(const unsigned long *)x, b = *(const unsigned long *)y;
	return a < b ? -1 : a > b;
}

static int on_list(struct pop3 *p, void *arg, enum pop3_ev ev, const char *s, size_t n)
{
	struct newmail *m = arg;
	if (ev == P3_ERR)
		return pop3_fail(p, EX_UNAVAILABLE, "LIST refused: %.*s", (int)n, s);
	if (ev != P3_DATA)
		return 0;
	unsigned long num;
	unsigned long long size;
	if (pop3_parse_list(s, n, &num, &size) < 0)
		return pop3_fail(p, EX_UNAVAILABLE, "malformed LIST line \"%.*s\"",
				 (int)(n > 80 ? 80 : n), s);
	m->total_bytes += size;
	if (m->nnew > 0 && bsearch(&num, m->nums, m->nnew, sizeof *m->nums, by_num))
		m->bytes += size;
	return 0;
}

static int fail(struct newmail *m, int code, const char *msg)
{
	if (m->error == NULL) {
		m->code = code;
		m->error = xstrdup(msg);
	}
	return -1;
}

/* Log in (a refused OAuth2 token: one new token, one more try), as a run. */
static int login(struct newmail *m, struct conn *c, char **secret)
{
	char *err = NULL;
	int code = 0, rc = account_secret(m->a, SIDE_POP3, 0, secret, &err);
	if (rc < 0)
		code = SECRET_CODE(rc);
	else
		rc = conn_open(c, m->a, *secret ? *secret : "", &code, &err);
	if (rc < 0 && code == EX_NOPERM && account_oauth(m->a, SIDE_POP3)) {
		free(err);
		err = NULL;
		secret_free(*secret);
		*secret = NULL;
		rc = account_secret(m->a, SIDE_POP3, 1, secret, &err);
		code = rc < 0 ? SECRET_CODE(rc) : 0;
		if (rc == 0)
			rc = conn_open(c, m->a, *secret ? *secret : "", &code, &err);
	}
	if (rc < 0)
		fail(m, code, err ? err : "login failed");
	free(err);
	return rc;
}

static int dialogue(struct newmail *m, struct pop3 *p, struct conn *c, const char *secret)
{
	if (c->need_login) {
		pop3_queue(p, P3_SINGLE, 0, on_login, m, "USER %s", m->a->user);
		pop3_queue(p, P3_SINGLE, 1, on_login, m, "PASS %s", secret ? secret : "");
	}
	pop3_queue(p, P3_LINES, 0, on_uidl, m, "UIDL");
	if (pop3_flush(p) < 0)
		return -1;
	if (m->no_uidl)
		return fail(m, EX_UNAVAILABLE, "the server has no UIDL: popsift cannot tell new "
			    "mail without downloading headers (popsift run can)");
	if (m->nnew > 0)   /* nums is NULL with none */
		qsort(m->nums, m->nnew, sizeof *m->nums, by_num);
	pop3_queue(p, P3_LINES, 0, on_list, m, "LIST");
	pop3_queue(p, P3_SINGLE, 0, NULL, NULL, "QUIT");
	return pop3_flush(p);
}

static void check_account(struct newmail *m)
{
	struct conn c = { .sock = -1 };
	char *secret = NULL;
	if (login(m, &c, &secret) == 0) {
		struct pop3 *p = pop3_new(&c, m->a->name, WINDOW);
		pop3_stoppable(p, 1);
		if (dialogue(m, p, &c, secret) < 0 && m->error == NULL)
			fail(m, pop3_code(p) == POP3_STOPPED ? EX_TEMPFAIL :
			     pop3_code(p) ? pop3_code(p) : EX_TEMPFAIL, pop3_error(p));
		pop3_free(p);
	}
	conn_close(&c);
	secret_free(secret);
}

static void report(const struct newmail *m, int json, int first)
{
	if (m->error)
		log_err(m->a->name, "%s", m->error);
	if (json) {
		printf("%s{\"account\":", first ? "" : ",");
		json_puts(m->a->name);
		printf(",\"new\":%zu,\"bytes\":%llu,\"messages\":%lu,\"messages_bytes\":%llu,"
		       "\"exit\":%d,\"error\":", m->nnew, m->bytes, m->total, m->total_bytes,
		       m->code);
		if (m->error)
			json_puts(m->error);
		else
			fputs("null", stdout);
		putchar('}');
	} else if (m->error == NULL && log_level >= 0) {
		printf("%s: %zu new, %llu bytes (%lu message%s on the server)\n", m->a->name,
		       m->nnew, m->bytes, m->total, m->total == 1 ? "" : "s");
	}
}

/* The code that tells most when accounts fail differently (as run). */
static int worse(int a, int b)
{
	static const int order[] = { EX_CONFIG, EX_NOPERM, EX_UNAVAILABLE, EX_DATAERR,
				     EX_SOFTWARE, EX_TEMPFAIL };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (a == order[i] || b == order[i])
			return order[i];
	return a ? a : b;
}

static int wanted(const char *name, int nargs, char **args)
{
	for (int i = 0; i < nargs; i++)
		if (strcmp(args[i], name) == 0)
			return 1;
	return nargs == 0;
}

/* The database as it is; none yet means every message is new.  It is
 * only read: a run may hold its lock meanwhile (SQLite's WAL lets it). */
static int open_state(const struct config *cf, struct state **st)
{
	char *err = NULL;
	if (access(cf->state, F_OK) != 0)
		return 0;
	if (state_open(cf->state, st, &err) == 0)
		return 0;
	log_err(NULL, "%s", err);
	free(err);
	return -1;
}

int cmd_new(const struct config *cf, int nargs, char **args, int json)
{
	struct state *st = NULL;
	if (open_state(cf, &st) < 0)
		return EX_TEMPFAIL;
	int code = 0, first = 1;
	size_t total = 0;
	if (json)
		fputs("{\"accounts\":[", stdout);
	for (const struct account *a = cf->accounts; a; a = a->next) {
		if (!wanted(a->name, nargs, args))
			continue;
		struct newmail m = { .a = a };
		uidmap_init(&m.known);
		char *err = NULL;
		if (st && state_load(st, a->name, &m.known, &err) < 0) {
			fail(&m, EX_TEMPFAIL, err);
			free(err);
		} else {
			check_account(&m);
		}
		report(&m, json, first);
		first = 0;
		code = worse(code, m.code);
		total += m.error ? 0 : m.nnew;
		uidmap_free(&m.known);
		free(m.nums);
		free(m.error);
	}
	/* errors first: a script must not take a broken account for "no mail" */
	code = code ? code : total > 0 ? 0 : 1;
	if (json)
		printf("],\"new\":%zu,\"exit\":%d}\n", total, code);
	state_close(st);
	return code;
}
