/* action.c — what a matched rule does: deliver (mbox, maildir, mda,
 * forward, imap, lmtp), discard, skip, keep, add-header, filter, continue.
 * Arguments are templates: $1..$9 and ${header:Name} expand from the message, and
 * whatever comes from the message is sanitised so that a path built from
 * it can never leave its base directory nor smuggle in an option. */
#include <stdlib.h>
#include <string.h>

#include "match.h"

#define MAX_EXPANSION 200       /* bytes of one expansion: below NAME_MAX */

enum tseg_kind { TS_LIT, TS_CAP, TS_HDR };
enum tmode { M_PATH, M_ARG, M_HEADER, M_FOLDER };

struct tseg {
	enum tseg_kind kind;
	char  *lit;
	int    n;               /* capture number or header id */
};

struct tmpl {
	char  *src;             /* as written, for dump */
	enum tmode mode;
	struct tseg *segs;
	size_t nsegs;
};

struct sbuf {
	char  *p;
	size_t n, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* ---- templates ---- */

static void add_seg(struct tmpl *t, enum tseg_kind k, char *lit, int n)
{
	t->segs = xrealloc(t->segs, (t->nsegs + 1) * sizeof *t->segs);
	t->segs[t->nsegs++] = (struct tseg){ .kind = k, .lit = lit, .n = n };
}

static void tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nsegs; i++)
		free(t->segs[i].lit);
	free(t->segs);
	free(t->src);
	free(t);
}

static int parse_capture(struct parser *p, size_t at, int n, struct tmpl *t)
{
	if (p->nregex == 0)
		return lx_error(&p->lx, at, "$%d but the condition has no regex", n);
	if ((unsigned)n > p->ncaps)
		return lx_error(&p->lx, at, "$%d but the condition's regexes have %u capture group%s",
				n, p->ncaps, p->ncaps == 1 ? "" : "s");
	add_seg(t, TS_CAP, NULL, n);
	return 0;
}

/* "${header:Name}" at s; *used gets its length. */
static int parse_hdr_ref(struct parser *p, size_t at, const char *s, size_t *used,
			 struct tmpl *t)
{
	const char *close = strchr(s, '}');
	if (close == NULL)
		return lx_error(&p->lx, at, "unterminated \"${\"");
	if (strncmp(s, "${header:", 9) != 0 || close == s + 9)
		return lx_error(&p->lx, at, "bad \"%.*s\" (expected ${header:Name})",
				(int)(close - s + 1), s);
	char *name = xstrndup(s + 9, (size_t)(close - s - 9));
	add_seg(t, TS_HDR, NULL, rules_header_id(p->r, name));
	free(name);
	*used = (size_t)(close - s + 1);
	return 0;
}

static int parse_dollar(struct parser *p, size_t at, const char *s, size_t *used,
			struct tmpl *t)
{
	*used = 2;
	if (s[1] == '$') {
		add_seg(t, TS_LIT, xstrdup("$"), 0);
		return 0;
	}
	if (s[1] >= '0' && s[1] <= '9')
		return parse_capture(p, at, s[1] - '0', t);
	if (s[1] == '{')
		return parse_hdr_ref(p, at, s, used, t);
	return lx_error(&p->lx, at, "bad \"$\" (expected $1..$9, $$ or ${header:Name})");
}

/* at: where the word starts in the line, for errors (columns inside a
 * quoted word are approximate). */
static struct tmpl *tmpl_parse(struct parser *p, const char *s, size_t at, enum tmode mode)
{
	struct tmpl *t = xcalloc(1, sizeof *t);
	t->src = xstrdup(s);
	t->mode = mode;
	const char *start = s;
	/* ~ comes from the rules file, never from the message: expand it now */
	if (mode != M_HEADER && mode != M_FOLDER && s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
		add_seg(t, TS_LIT, expand_tilde("~"), 0);
		s++;
	}
	while (*s) {
		size_t lit = strcspn(s, "$"), used;
		if (lit > 0)
			add_seg(t, TS_LIT, xstrndup(s, lit), 0);
		s += lit;
		if (*s == '\0')
			break;
		if (parse_dollar(p, at + (size_t)(s - start), s, &used, t) < 0) {
			tmpl_free(t);
			return NULL;
		}
		s += used;
	}
	return t;
}

/* ---- expansion ---- */

static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* Message data in a path: no "/", no leading ".", no "..", no control
 * characters; in an argument also no leading "-" (an option); in an IMAP
 * folder name as in a path (no new level of the hierarchy, no ".."),
 * and no LIST wildcard ("%", "*"). */
static void put_value(struct sbuf *b, const char *s, size_t n, enum tmode mode)
{
	n = utf8_cut(s, n, MAX_EXPANSION);
	if (n == 0 && mode != M_HEADER) {
		sb_put(b, "_", 1);
		return;
	}
	int first = b->n == 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '_';
		else if (mode != M_HEADER && c == '/')
			c = '_';
		else if (mode != M_HEADER && c == '.' && (i == 0 || s[i - 1] == '.'))
			c = '_';
		else if (mode == M_ARG && c == '-' && i == 0 && first)
			c = '_';
		else if (mode == M_FOLDER && (c == '%' || c == '*'))
			c = '_';
		sb_put(b, &c, 1);
	}
}

static int expand(const struct tmpl *t, struct evalctx *x, char **out)
{
	struct sbuf b = { 0 };
	sb_put(&b, "", 0);
	for (size_t i = 0; i < t->nsegs; i++) {
		const struct tseg *g = &t->segs[i];
		const struct span *v = NULL;
		size_t n = 0;
		if (g->kind == TS_LIT) {
			sb_str(&b, g->lit);
			continue;
		}
		if (g->kind == TS_CAP) {
			put_value(&b, x->cap[g->n].p, x->cap[g->n].n, t->mode);
			continue;
		}
		if (ev_header(x, g->n, &v, &n) < 0) {
			free(b.p);
			return -1;
		}
		put_value(&b, n ? v[0].p : "", n ? v[0].n : 0, t->mode);
	}
	*out = b.p;
	return 0;
}

/* ---- actions ---- */

static const struct {
	const char *name;
	enum act_kind kind;
} act_names[] = {
	{ "mbox", A_MBOX }, { "maildir", A_MAILDIR }, { "mda", A_MDA },
	{ "forward", A_FORWARD }, { "discard", A_DISCARD }, { "skip", A_SKIP },
	{ "keep", A_KEEP }, { "add-header", A_ADDHDR }, { "continue", A_CONTINUE },
	{ "imap", A_IMAP }, { "lmtp", A_LMTP }, { "filter", A_FILTER },
};

#define NACT_NAMES (sizeof act_names / sizeof act_names[0])

static const char *act_name(enum act_kind k)
{
	for (size_t i = 0; i < NACT_NAMES; i++)
		if (act_names[i].kind == k)
			return act_names[i].name;
	return "?";
}

static int is_action_word(const char *w)
{
	for (size_t i = 0; i < NACT_NAMES; i++)
		if (strcmp(act_names[i].name, w) == 0)
			return 1;
	return 0;
}

static void push_arg(struct action *a, struct tmpl *t)
{
	a->args = xrealloc(a->args, (a->nargs + 1) * sizeof *a->args);
	a->args[a->nargs++] = t;
}

static int parse_path(struct parser *p, struct action *a)
{
	size_t at;
	char *w;
	int rc = lx_word(&p->lx, &w, &at);
	if (rc < 0)
		return -1;
	if (rc == 0 || w[0] == '\0') {
		free(w);
		return lx_error(&p->lx, at, "expected a %s after %s",
				a->kind == A_IMAP ? "folder" : "path", act_name(a->kind));
	}
	struct tmpl *t = tmpl_parse(p, w, at, a->kind == A_IMAP ? M_FOLDER : M_PATH);
	free(w);
	if (t == NULL)
		return -1;
	push_arg(a, t);
	return 0;
}

/* ---- no message data in code: a shell's script, a -c argument ---- */

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

static int is_shell(const char *path)
{
	static const char *const shells[] = { "sh", "bash", "dash", "ksh", "ksh93", "mksh",
		"pdksh", "zsh", "ash", "yash", "posh", "csh", "tcsh", "fish", "rc", "es", NULL };
	for (size_t i = 0; shells[i]; i++)
		if (strcmp(base_name(path), shells[i]) == 0)
			return 1;
	return 0;
}

static int has_expansion(const struct tmpl *t)
{
	for (size_t i = 0; i < t->nsegs; i++)
		if (t->segs[i].kind != TS_LIT)
			return 1;
	return 0;
}

/* The first expansion of a word as written: "$1", "${header:X}". */
static int first_expansion(const char *s, const char **at)
{
	for (; (s = strchr(s, '$')) != NULL; s += 2) {
		if (s[1] == '$')
			continue;
		*at = s;
		return s[1] == '{' ? (int)strcspn(s, "}") + 1 : 2;
	}
	*at = "";
	return 0;
}

/* env NAME=$1 is safe (the script reads "$NAME"); a name or an option
 * from the message is not. */
static int env_word_ok(const struct tmpl *t)
{
	if (!has_expansion(t))
		return 1;
	const struct tseg *g = &t->segs[0];
	return t->src[0] != '-' && g->kind == TS_LIT && strchr(g->lit, '=') != NULL &&
	       g->lit[0] != '=';
}

/* env options that take the next word: -u NAME, -C DIR, -S STRING. */
static int env_takes_word(const char *o)
{
	return !strcmp(o, "-u") || !strcmp(o, "-C") || !strcmp(o, "-S") || !strcmp(o, "--unset") ||
	       !strcmp(o, "--chdir") || !strcmp(o, "--split-string");
}

/* Index of the program an mda line runs, past env (options and
 * NAME=value words) and busybox; *bad: a word that lets the message
 * choose the program, an option, its argument or a variable's name. */
static size_t program_at(const struct action *a, size_t *bad)
{
	size_t i = 0, n = a->nargs;
	*bad = n;
	if (strcmp(base_name(a->args[0]->src), "env") == 0) {
		for (i = 1; i < n && *bad == n; i++) {
			const char *w = a->args[i]->src;
			if (w[0] != '-' && strchr(w, '=') == NULL)
				break;
			if (!env_word_ok(a->args[i]))
				*bad = i;
			else if (env_takes_word(w) && ++i < n && has_expansion(a->args[i]))
				*bad = i;   /* -S splits its string into words: no message data */
		}
	}
	if (i < n && strcmp(base_name(a->args[i]->src), "busybox") == 0)
		i++;
	if (*bad == n && i < n && has_expansion(a->args[i]))
		*bad = i;
	if (*bad == n && has_expansion(a->args[0]))
		*bad = 0;
	return i;
}

/* Shell options that take the next word: -o NAME, +O NAME, --rcfile F. */
static int takes_word(const char *o)
{
	return !strcmp(o, "-o") || !strcmp(o, "+o") || !strcmp(o, "-O") || !strcmp(o, "+O") ||
	       !strcmp(o, "--rcfile") || !strcmp(o, "--init-file");
}

/* The word a shell runs as its script ("sh -c SCRIPT NAME ARGS"), or
 * nargs when it runs none; *bad: an option or its argument from the
 * message. */
static size_t script_at(const struct action *a, size_t sh, size_t *bad)
{
	int dash_c = 0;
	size_t j = sh + 1, n = a->nargs;
	for (; j < n && a->args[j]->src[0] && strchr("-+", a->args[j]->src[0]); j++) {
		const char *o = a->args[j]->src;
		if (strcmp(o, "--") == 0) {
			j++;
			break;
		}
		if (o[0] == '-' && o[1] != '-' && strchr(o, 'c'))
			dash_c = 1;
		if (takes_word(o) && j + 1 < n)
			j++;
		if (has_expansion(a->args[j]) && *bad == n)
			*bad = j;
	}
	return dash_c ? j : n;
}

enum refusal { R_NAME, R_SCRIPT, R_DASH_C };

static int refuse_code(struct parser *p, size_t at, const struct action *a, size_t prog,
		       size_t w, enum refusal why)
{
	const char *x;
	int xn = first_expansion(a->args[w]->src, &x);
	const char *prg = a->args[prog < a->nargs ? prog : 0]->src;
	if (why == R_NAME)
		return lx_error(&p->lx, at, "mda: %.*s in \"%s\" would let a sender choose a "
				"program, an option or a variable name: write it literally",
				xn, x, a->args[w]->src);
	if (why == R_DASH_C)
		return lx_error(&p->lx, at, "mda: %.*s right after -c would let a sender run "
				"commands: pass message data as an argument of its own", xn, x);
	return lx_error(&p->lx, at, "mda: %.*s inside the script of %s -c would let a sender "
			"run commands; pass it as an argument after the script and quote it "
			"there: mda %s -c '... \"$$1\" ...' sh %.*s", xn, x, prg, prg, xn, x);
}

/* A sender's "$(...)" or backticks must never reach code: refuse an
 * expansion in a shell's script (sh -c '... $1 ...'), in the word after
 * any -c (su -c, python -c), and in the program or an option of a shell
 * or env. */
static int check_mda(struct parser *p, size_t at, const struct action *a)
{
	size_t n = a->nargs, bad, prog = program_at(a, &bad);
	if (bad < n)
		return refuse_code(p, at, a, prog, bad, R_NAME);
	if (prog < n && is_shell(a->args[prog]->src)) {
		size_t sc = script_at(a, prog, &bad);
		if (bad < n)
			return refuse_code(p, at, a, prog, bad, R_NAME);
		if (sc < n && has_expansion(a->args[sc]))
			return refuse_code(p, at, a, prog, sc, R_SCRIPT);
		return 0;
	}
	for (size_t i = prog + 1; i + 1 < n; i++)
		if (strcmp(a->args[i]->src, "-c") == 0 && has_expansion(a->args[i + 1]))
			return refuse_code(p, at, a, prog, i + 1, R_DASH_C);
	return 0;
}

static int parse_mda(struct parser *p, struct action *a)
{
	size_t at;
	char *rest = lx_rest(&p->lx, &at), *e = NULL;
	char **argv = split_args(rest, &e);
	free(rest);
	if (argv == NULL) {
		lx_error(&p->lx, at, "mda: %s", e);
		free(e);
		return -1;
	}
	int rc = argv[0] ? 0 : lx_error(&p->lx, at, "expected a command after %s",
					act_name(a->kind));
	for (size_t i = 0; rc == 0 && argv[i]; i++) {
		struct tmpl *t = tmpl_parse(p, argv[i], at, M_ARG);
		if (t == NULL)
			rc = -1;
		else
			push_arg(a, t);
	}
	free_argv(argv);
	return rc == 0 ? check_mda(p, at, a) : rc;
}

/* forward ADDRESS...; lmtp SERVER [RCPT...]: words up to the next action. */
static int parse_forward(struct parser *p, struct action *a)
{
	for (;;) {
		size_t save = p->lx.pos, at;
		char *w;
		int rc = lx_word(&p->lx, &w, &at);
		if (rc < 0)
			return -1;
		if (rc == 0 || is_action_word(w)) {
			free(w);
			p->lx.pos = save;
			break;
		}
		struct tmpl *t = tmpl_parse(p, w, at, M_ARG);
		free(w);
		if (t == NULL)
			return -1;
		push_arg(a, t);
		/* the message must not choose where it is sent */
		if (a->kind == A_LMTP && a->nargs == 1 && has_expansion(t))
			return lx_error(&p->lx, at, "lmtp: the server cannot come from the message");
	}
	if (a->nargs == 0)
		return lx_error(&p->lx, p->lx.pos, a->kind == A_LMTP
				? "expected unix:/PATH or HOST:PORT after lmtp"
				: "expected an address after forward");
	return 0;
}

static int valid_field(const char *s)
{
	size_t n = strcspn(s, ":");
	if (n == 0 || s[n] != ':')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 127 || s[i] == '$')
			return 0;
	return 1;
}

static int parse_addhdr(struct parser *p, struct action *a)
{
	size_t at;
	char *w;
	int rc = lx_word(&p->lx, &w, &at);
	if (rc < 0)
		return -1;
	if (rc == 0 || !valid_field(w)) {
		free(w);
		return lx_error(&p->lx, at, "add-header needs \"Name: value\"");
	}
	struct tmpl *t = tmpl_parse(p, w, at, M_HEADER);
	free(w);
	if (t == NULL)
		return -1;
	push_arg(a, t);
	return 0;
}

static int parse_args(struct parser *p, struct action *a)
{
	switch (a->kind) {
	case A_MBOX:
	case A_MAILDIR:
	case A_IMAP:
		return parse_path(p, a);
	case A_MDA:
		return parse_mda(p, a);
	case A_FILTER:
		/* filter [returns CODES] COMMAND...: the command takes the rest */
		codes_default(&a->ok);
		if (lx_keyword(&p->lx, "returns") && codes_parse(p, &a->ok) < 0)
			return -1;
		return parse_mda(p, a);
	case A_FORWARD:
	case A_LMTP:
		return parse_forward(p, a);
	case A_ADDHDR:
		return parse_addhdr(p, a);
	default:
		return 0;
	}
}

static int lookup(struct parser *p, struct action *a, size_t *at)
{
	char *name;
	lx_ws(&p->lx);
	*at = p->lx.pos;
	if (!lx_ident(&p->lx, &name))
		return lx_error(&p->lx, *at, "expected an action");
	for (size_t i = 0; i < NACT_NAMES; i++) {
		if (strcmp(act_names[i].name, name) == 0) {
			a->kind = act_names[i].kind;
			free(name);
			return 0;
		}
	}
	lx_error(&p->lx, *at, "unknown action \"%s\"", name);
	free(name);
	return -1;
}

static int is_delivery(enum act_kind k)
{
	return k == A_MBOX || k == A_MAILDIR || k == A_MDA || k == A_FORWARD || k == A_IMAP ||
	       k == A_LMTP;
}

/* skip and discard say "deliver nothing", so they stand alone. */
static int check_combination(struct parser *p, const struct rule *ru, size_t at)
{
	const struct action *last = &ru->acts[ru->nacts - 1];
	for (size_t i = 0; i + 1 < ru->nacts; i++) {
		enum act_kind k = ru->acts[i].kind;
		if (k == A_CONTINUE)
			return lx_error(&p->lx, at, "\"continue\" must be the last action");
		int lone = k == A_SKIP || k == A_DISCARD ||
			   last->kind == A_SKIP || last->kind == A_DISCARD;
		if (lone && k != last->kind)
			return lx_error(&p->lx, at, "\"%s\" cannot be combined with \"%s\"",
					act_name(last->kind), act_name(k));
	}
	return 0;
}

int action_parse(struct parser *p, struct rule *ru)
{
	size_t first_at = 0;
	ru->final = 1;
	if (lx_eol(&p->lx))
		return lx_error(&p->lx, p->lx.pos, "expected an action");
	while (!lx_eol(&p->lx)) {
		struct action a = { 0 };
		size_t at;
		if (lookup(p, &a, &at) < 0)
			return -1;
		ru->acts = xrealloc(ru->acts, (ru->nacts + 1) * sizeof *ru->acts);
		ru->acts[ru->nacts++] = a;
		if (parse_args(p, &ru->acts[ru->nacts - 1]) < 0 || check_combination(p, ru, at) < 0)
			return -1;
		/* a filter changes the message for the rules below: it goes on */
		ru->final &= a.kind != A_CONTINUE && a.kind != A_FILTER;
		ru->delivers |= is_delivery(a.kind);
		if (ru->nacts == 1)
			first_at = at;
	}
	if (ru->nacts == 1 && ru->acts[0].kind == A_CONTINUE)
		return lx_error(&p->lx, first_at, "\"continue\" alone does nothing");
	return 0;
}

void action_free(struct action *a)
{
	for (size_t i = 0; i < a->nargs; i++)
		tmpl_free(a->args[i]);
	free(a->args);
	a->args = NULL;
	a->nargs = 0;
}

static void dump_word(const char *s, FILE *out)
{
	if (*s != '\0' && strpbrk(s, " \t\"#\\") == NULL) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

void action_dump(const struct action *a, FILE *out)
{
	fputs(act_name(a->kind), out);
	struct codes dflt;
	codes_default(&dflt);
	if (a->kind == A_FILTER && memcmp(&a->ok, &dflt, sizeof dflt) != 0)
		codes_dump(&a->ok, out);
	for (size_t i = 0; i < a->nargs; i++) {
		fputc(' ', out);
		dump_word(a->args[i]->src, out);
	}
}

/* The i-th argument as written (for mbox and maildir: the path
 * template, ~ not yet expanded), or NULL. */
const char *action_arg_text(const struct action *a, size_t i)
{
	return i < a->nargs ? a->args[i]->src : NULL;
}

/* ---- applying ---- */

static struct dest *new_dest(struct decision *d, enum dest_kind k)
{
	d->dests = xrealloc(d->dests, (d->ndests + 1) * sizeof *d->dests);
	struct dest *dst = &d->dests[d->ndests++];
	memset(dst, 0, sizeof *dst);
	dst->kind = k;
	return dst;
}

static int expand_argv(const struct action *a, struct evalctx *x, char ***out)
{
	char **argv = xcalloc(a->nargs + 1, sizeof *argv);
	for (size_t i = 0; i < a->nargs; i++) {
		if (expand(a->args[i], x, &argv[i]) < 0) {
			free_argv(argv);
			return -1;
		}
	}
	*out = argv;
	return 0;
}

static void text_add(char **text, const char *name, char **argv, size_t n)
{
	struct sbuf b = { 0 };
	if (*text != NULL) {
		sb_str(&b, *text);
		sb_str(&b, ", ");
	}
	sb_str(&b, name);
	for (size_t i = 0; i < n; i++) {
		sb_put(&b, " ", 1);
		sb_str(&b, argv[i]);
	}
	free(*text);
	*text = b.p;
}

static enum dest_kind dest_kind_of(enum act_kind k)
{
	return k == A_MBOX ? DEST_MBOX : k == A_MAILDIR ? DEST_MAILDIR
	     : k == A_MDA ? DEST_MDA : k == A_IMAP ? DEST_IMAP : k == A_LMTP ? DEST_LMTP
	     : DEST_FORWARD;
}

static int apply_delivery(const struct action *a, struct evalctx *x, struct decision *d,
			  char **text)
{
	char **argv;
	if (expand_argv(a, x, &argv) < 0)
		return -1;
	text_add(text, act_name(a->kind), argv, a->nargs);
	struct dest *dst = new_dest(d, dest_kind_of(a->kind));
	if (a->kind == A_MBOX || a->kind == A_MAILDIR || a->kind == A_IMAP) {
		dst->path = argv[0];
		free(argv);
	} else {
		dst->argv = argv;
	}
	return 0;
}

static int apply_filter(const struct action *a, struct evalctx *x, char **text)
{
	char **argv;
	if (x->v->msg == NULL)
		return 1;       /* before the download: it needs the message */
	if (expand_argv(a, x, &argv) < 0)
		return -1;
	text_add(text, "filter", argv, a->nargs);
	int rc = ev_filter(x, argv, &a->ok);
	free_argv(argv);
	return rc;
}

int action_apply(const struct action *a, struct evalctx *x, struct decision *d, char **text)
{
	char *h;
	switch (a->kind) {
	case A_FILTER:
		return apply_filter(a, x, text);
	case A_MBOX: case A_MAILDIR: case A_MDA: case A_FORWARD: case A_IMAP: case A_LMTP:
		return apply_delivery(a, x, d, text);
	case A_ADDHDR:
		if (expand(a->args[0], x, &h) < 0)
			return -1;
		text_add(text, "add-header", &h, 1);
		d->add_headers = xrealloc(d->add_headers, (d->nadd + 1) * sizeof *d->add_headers);
		d->add_headers[d->nadd++] = h;
		return 0;
	case A_DISCARD: d->discard = 1; break;
	case A_SKIP:    d->skip = 1; break;
	case A_KEEP:    d->keep = 1; break;
	case A_CONTINUE: return 0;
	}
	text_add(text, act_name(a->kind), NULL, 0);
	return 0;
}
