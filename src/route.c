/* route.c — domain mailboxes, done safely.  Only the envelope headers a
 * provider adds when it delivers (never To/Cc, which name whoever the
 * sender chose), only addresses in the local domains, each mapped to one
 * local user; a message for two users reaches each once, and a user whose
 * local delivery already stamped the message (Delivered-To: that user)
 * does not get it again: it looped back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "mime.h"
#include "popsift.h"
#include "route.h"

enum which { W_ALL, W_FIRST, W_LAST };

struct ehdr {
	char *name;
	enum which which;
};

struct route {
	struct ehdr *hdrs;
	size_t nhdrs;
	char **domains, **map;   /* map: address, user, address, user... */
	size_t ndomains, nmap;
	char *dflt;
};

static void push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof **v);
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

/* ---- keys ---- */

static int add_header(struct route *r, char **w, char **err)
{
	if (w[0] == NULL || (w[1] && w[2]) || strpbrk(w[0], ": \t"))
		return seterr(err, "envelope_header NAME [all|first|last]");
	enum which k = W_ALL;
	if (w[1] && !strcmp(w[1], "first"))
		k = W_FIRST;
	else if (w[1] && !strcmp(w[1], "last"))
		k = W_LAST;
	else if (w[1] && strcmp(w[1], "all"))
		return seterr(err, "envelope_header %s: \"%s\" is not all, first or last", w[0], w[1]);
	r->hdrs = xrealloc(r->hdrs, (r->nhdrs + 1) * sizeof *r->hdrs);
	r->hdrs[r->nhdrs++] = (struct ehdr){ xstrdup(w[0]), k };
	return 0;
}

static int add_user(struct route *r, const char *addr, const char *user, char **err)
{
	const char *at = strrchr(addr, '@');
	if (at == NULL || at[1] == '\0' || (at != addr && addr[0] == '*' && at != addr + 1))
		return seterr(err, "local_user: \"%s\" is no address (user@domain or *@domain)", addr);
	if (!envelope_plausible(user))
		return seterr(err, "local_user: \"%s\" is no plausible user name", user);
	push(&r->map, &r->nmap, addr);
	push(&r->map, &r->nmap, user);
	return 0;
}

/* A map file: "ADDRESS USER" lines, # comments. */
static int read_map(struct route *r, const char *path, char **err)
{
	char *p = expand_tilde(path), line[1024];
	FILE *f = fopen(p, "r");
	int rc = f ? 0 : seterr(err, "local_users: cannot open %s", p);
	for (int no = 1; rc == 0 && fgets(line, sizeof line, f); no++) {
		char a[512], u[512];
		int k = sscanf(line, " %511s %511s", a, u);
		if (k <= 0 || a[0] == '#')
			continue;
		if (k != 2 || add_user(r, a, u, err) < 0)
			rc = seterr(err, "%s:%d: expected ADDRESS USER", p, no);
	}
	if (f)
		fclose(f);
	free(p);
	return rc;
}

static int take_key(struct route *r, const char *key, char **w, char **err)
{
	if (!strcmp(key, "envelope_header"))
		return add_header(r, w, err);
	if (!strcmp(key, "local_domains")) {
		for (size_t i = 0; w[i]; i++)
			push(&r->domains, &r->ndomains, w[i][0] == '@' ? w[i] + 1 : w[i]);
		return 0;
	}
	if (!strcmp(key, "local_user"))
		return w[0] && w[1] && !w[2] ? add_user(r, w[0], w[1], err)
		     : seterr(err, "local_user ADDRESS USER");
	if (!strcmp(key, "local_users"))
		return w[0] && !w[1] ? read_map(r, w[0], err) : seterr(err, "local_users FILE");
	if (!w[0] || w[1] || !envelope_plausible(w[0]))
		return seterr(err, "default_user USER");
	free(r->dflt);
	r->dflt = xstrdup(w[0]);
	return 0;
}

int route_key(struct route **r, const char *key, const char *val, char **err)
{
	static const char *const names[] = { "envelope_header", "local_domains", "local_user",
					     "local_users", "default_user" };
	size_t i = 0;
	while (i < 5 && strcmp(key, names[i]) != 0)
		i++;
	if (i == 5)
		return 0;
	if (r == NULL)
		return seterr(err, "%s belongs in an account, not in defaults", key), -1;
	char **w = split_args(val, err);
	if (w == NULL)
		return -1;
	if (*r == NULL)
		*r = xcalloc(1, sizeof **r);
	int rc = take_key(*r, key, w, err);
	free_argv(w);
	return rc < 0 ? -1 : 1;
}

int route_check(const struct route *r, char **err)
{
	if (r == NULL)
		return 0;
	if (r->nhdrs == 0)
		return seterr(err, "local_domains, local_user and default_user need envelope_header");
	if (r->ndomains == 0)
		return seterr(err, "envelope_header needs local_domains (the domains it may route)");
	return 0;
}

void route_free(struct route *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nhdrs; i++)
		free(r->hdrs[i].name);
	free(r->hdrs);
	free_argv(r->domains);
	free_argv(r->map);
	free(r->dflt);
	free(r);
}

/* ---- routing ---- */

static int is_local(const struct route *r, const char *addr)
{
	const char *at = strrchr(addr, '@');
	for (size_t i = 0; at && i < r->ndomains; i++)
		if (strcasecmp(at + 1, r->domains[i]) == 0)
			return 1;
	return 0;
}

/* The exact address's user, else its domain's (*@domain), else the default. */
static const char *user_of(const struct route *r, const char *addr)
{
	const char *dom = strrchr(addr, '@');
	for (size_t i = 0; i < r->nmap; i += 2)
		if (strcasecmp(r->map[i], addr) == 0)
			return r->map[i + 1];
	for (size_t i = 0; i < r->nmap; i += 2)
		if (r->map[i][0] == '*' && strcasecmp(r->map[i] + 1, dom) == 0)
			return r->map[i + 1];
	return r->dflt;
}

/* The values of header `name`, in order, raw. */
static char **values(const char *hdr, size_t hl, const char *name, size_t *n)
{
	char **v = NULL;
	size_t pos = 0, nl, vl;
	const char *nm, *val;
	*n = 0;
	while (mime_next_header(hdr, hl, &pos, &nm, &nl, &val, &vl))
		if (nl == strlen(name) && strncasecmp(nm, name, nl) == 0) {
			char *s = xstrndup(val, vl);
			push(&v, n, s);
			free(s);
		}
	return v;
}

static int has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* Each address of one header value (Envelope-To may list several). */
static void take_value(const struct route *r, const char *val, struct routed *o)
{
	char *copy = xstrdup(val), *save = NULL;
	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *addr = mime_address(part, strlen(part));
		const char *user = addr && is_local(r, addr) ? user_of(r, addr) : NULL;
		if (user && !has(o->rcpt, o->n, user)) {
			push(&o->orig, &o->n, addr);
			o->n--;
			push(&o->rcpt, &o->n, user);
		}
		free(addr);
	}
	free(copy);
}

/* The address of a Delivered-To, or its bare word: local delivery
 * stamps a user name without a domain ("Delivered-To: bob"). */
static char *stamp_of(const char *v)
{
	char *a = mime_address(v, strlen(v));
	if (a)
		return a;
	v += strspn(v, " \t\r\n<");
	return xstrndup(v, strcspn(v, " \t\r\n>"));
}

/* How many Delivered-To name user, beyond the one it was routed from. */
static int looped(const char *hdr, size_t hl, const char *user, const char *orig,
		  const char *from_hdr)
{
	size_t n;
	char **v = values(hdr, hl, "Delivered-To", &n);
	int hits = 0;
	for (size_t i = 0; i < n; i++) {
		char *a = stamp_of(v[i]);
		hits += strcasecmp(a, user) == 0;
		free(a);
	}
	free_argv(v);
	if (strcasecmp(from_hdr, "Delivered-To") == 0 && strcasecmp(orig, user) == 0)
		hits--;
	return hits > 0;
}

static void drop_loops(const char *hdr, size_t hl, const char *from_hdr, struct routed *o)
{
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++) {
		if (looped(hdr, hl, o->rcpt[i], o->orig[i], from_hdr)) {
			push(&o->loops, &o->nloops, o->rcpt[i]);
			free(o->rcpt[i]);
			free(o->orig[i]);
			continue;
		}
		o->rcpt[k] = o->rcpt[i];
		o->orig[k++] = o->orig[i];
	}
	o->n = k;
	if (o->rcpt) {
		o->rcpt[k] = NULL;
		o->orig[k] = NULL;
	}
}

int route_message(const struct route *r, const char *hdr, size_t hl, struct routed *o)
{
	memset(o, 0, sizeof *o);
	for (size_t h = 0; r && h < r->nhdrs && o->n == 0; h++) {
		size_t n;
		char **v = values(hdr, hl, r->hdrs[h].name, &n);
		size_t from = r->hdrs[h].which == W_LAST && n ? n - 1 : 0;
		size_t to = r->hdrs[h].which == W_ALL ? n : n ? from + 1 : 0;
		for (size_t i = from; i < to; i++)
			take_value(r, v[i], o);
		free_argv(v);
		if (o->n)
			drop_loops(hdr, hl, r->hdrs[h].name, o);
		if (o->nloops)
			break;   /* a loop stops the search: never reroute it elsewhere */
	}
	return 0;
}

void routed_free(struct routed *o)
{
	free_argv(o->rcpt);
	free_argv(o->orig);
	free_argv(o->loops);
	memset(o, 0, sizeof *o);
}
