/* match-regex.c — /pattern/flags: parsed from the rules text, compiled
 * once (JIT when the platform has it), matched under a match and depth
 * limit so that a pattern that backtracks catastrophically fails with an
 * error instead of hanging the fetch.  The only file that sees PCRE2. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

/* The match limit is per pcre2_match call: generous enough for a plain
 * search over a body of many megabytes, small enough that (a+)+$ gives up
 * in well under a second. */
#define MATCH_LIMIT   10000000u
#define DEPTH_LIMIT   250000u
#define JIT_STACK_MAX (4u << 20)

struct regex_env {
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit;
};

struct regex {
	char   *pat;            /* the pattern, "\/" already turned into "/" */
	size_t  len;
	char    flags[8];
	int     id;             /* order in its rule's condition */
	pcre2_code *code;
	pcre2_match_data *md;
};

struct regex_env *regex_env_new(void)
{
	struct regex_env *env = xcalloc(1, sizeof *env);
	env->mctx = pcre2_match_context_create(NULL);
	if (env->mctx == NULL) {
		fputs("popsift: out of memory\n", stderr);
		exit(EX_OSERR);
	}
	pcre2_set_match_limit(env->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(env->mctx, DEPTH_LIMIT);
	env->jit = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL);
	if (env->jit != NULL)
		pcre2_jit_stack_assign(env->mctx, NULL, env->jit);
	return env;
}

void regex_env_free(struct regex_env *env)
{
	if (env == NULL)
		return;
	pcre2_match_context_free(env->mctx);
	pcre2_jit_stack_free(env->jit);
	free(env);
}

void regex_free(struct regex *re)
{
	if (re == NULL)
		return;
	pcre2_match_data_free(re->md);
	pcre2_code_free(re->code);
	free(re->pat);
	free(re);
}

/* Where byte `off` of the unescaped pattern is in the rules text. */
static size_t source_pos(const struct lexer *lx, size_t from, size_t off)
{
	size_t pos = from, out = 0;
	while (out < off && pos < lx->len) {
		pos += (lx->text[pos] == '\\' && lx->text[pos + 1] == '/') ? 2 : 1;
		out++;
	}
	return pos;
}

/* The text between the slashes; lx->pos ends after the closing slash. */
static int scan_pattern(struct lexer *lx, struct regex *re)
{
	size_t start = lx->pos++;
	re->pat = xmalloc(lx->len - lx->pos + 1);
	while (lx->pos < lx->len && lx->text[lx->pos] != '/') {
		const char *c = lx->text + lx->pos;
		if (c[0] == '\\' && c[1] == '/') {
			re->pat[re->len++] = '/';
			lx->pos += 2;
			continue;
		}
		if (c[0] == '\\' && c[1] != '\0')
			re->pat[re->len++] = lx->text[lx->pos++];
		re->pat[re->len++] = lx->text[lx->pos++];
	}
	re->pat[re->len] = '\0';
	if (lx->pos >= lx->len)
		return lx_error(lx, start, "unterminated regex (no closing \"/\")");
	lx->pos++;
	return 0;
}

static int scan_flags(struct lexer *lx, struct regex *re, uint32_t *opts)
{
	static const char names[] = "imsx";
	static const uint32_t bits[] = { PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_DOTALL,
					 PCRE2_EXTENDED };
	size_t n = 0;
	while (lx->pos < lx->len && lx->text[lx->pos] >= 'a' && lx->text[lx->pos] <= 'z') {
		char f = lx->text[lx->pos];
		const char *k = strchr(names, f);
		if (k == NULL)
			return lx_error(lx, lx->pos, "unknown regex flag \"%c\" (expected i, m, s or x)", f);
		*opts |= bits[k - names];
		if (strchr(re->flags, f) == NULL && n + 1 < sizeof re->flags)
			re->flags[n++] = f;
		lx->pos++;
	}
	return 0;
}

static int compile(struct parser *p, struct regex *re, uint32_t opts, size_t patpos)
{
	int ec;
	PCRE2_SIZE eo;
	re->code = pcre2_compile((PCRE2_SPTR)re->pat, re->len, opts, &ec, &eo, NULL);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(ec, msg, sizeof msg);
		return lx_error(&p->lx, source_pos(&p->lx, patpos, eo), "bad regex: %s", (char *)msg);
	}
	/* without JIT pcre2_match runs the interpreter: slower, same results */
	if (pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) != 0)
		log_debug(NULL, "%s:%d: regex runs without JIT", p->lx.file, lx_line(&p->lx));
	re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
	uint32_t caps = 0;
	pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &caps);
	if (caps > p->ncaps)
		p->ncaps = caps;
	return 0;
}

struct regex *regex_parse(struct parser *p, int utf)
{
	struct lexer *lx = &p->lx;
	if (lx_peek(lx) != '/') {
		lx_error(lx, lx->pos, "expected a /regex/");
		return NULL;
	}
	struct regex *re = xcalloc(1, sizeof *re);
	re->id = p->nregex++;
	size_t patpos = lx->pos + 1;
	/* UCP: \w, \d and \b know every script, as people writing rules for
	 * Chinese or Greek mail expect; rawbody stays bytes */
	uint32_t opts = utf ? PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF : 0;
	if (scan_pattern(lx, re) < 0 || scan_flags(lx, re, &opts) < 0 ||
	    compile(p, re, opts, patpos) < 0) {
		regex_free(re);
		return NULL;
	}
	return re;
}

static void keep_captures(const struct regex *re, struct evalctx *x, const char *s, int rc)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
	for (int i = 0; i < 10; i++) {
		int set = i < rc && ov[2 * i] != PCRE2_UNSET;
		x->cap[i].p = set ? s + ov[2 * i] : NULL;
		x->cap[i].n = set ? ov[2 * i + 1] - ov[2 * i] : 0;
	}
	x->capid = re->id;
}

int regex_match(const struct regex *re, struct evalctx *x, const char *s, size_t n)
{
	int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->md, x->r->env->mctx);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
	    rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
		return ev_error(x, "match limit exceeded");
	if (rc < 0) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(rc, msg, sizeof msg);
		return ev_error(x, "regex: %s", (char *)msg);
	}
	/* $1.. come from the last regex in the text that matched, whatever
	 * order the evaluation took */
	if (re->id >= x->capid)
		keep_captures(re, x, s, rc);
	return 1;
}

void regex_dump(const struct regex *re, FILE *out)
{
	fputc('/', out);
	for (size_t i = 0; i < re->len; i++) {
		if (re->pat[i] == '/')
			fputc('\\', out);
		fputc(re->pat[i], out);
	}
	fprintf(out, "/%s", re->flags);
}

const char *rules_lib_version(void)
{
	static char v[64];
	if (v[0] == '\0' && pcre2_config(PCRE2_CONFIG_VERSION, v) < 0)
		snprintf(v, sizeof v, "%d.%d", PCRE2_MAJOR, PCRE2_MINOR);
	return v;
}
