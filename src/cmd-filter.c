/* cmd-filter.c — `popsift filter`: run a rules file over local mail (an
 * mbox, a Maildir, files, or stdin), to try rules out (--dry-run) or to
 * sort mail already fetched.  Messages get LF line ends, as fetched mail
 * has, so a rule behaves here as it does in `popsift run`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver.h"
#include "envelope.h"
#include "filter-pool.h"
#include "mime.h"
#include "msg.h"
#include "rules.h"
#include "usage.h"

#define FILTER_BATCH 10000      /* messages per commit: the input is never deleted, so a
				 * crash costs a re-run, and each commit is an fsync per folder */

struct filter {
	struct rules *r;
	int     dry_run;
	const char *account;
	struct dest *dflt;      /* --deliver: where "default" goes */
	size_t  ndflt;
	struct msg m;
	char   *in;             /* a file as read */
	size_t  incap;
	char   *buf;            /* a message after normalisation */
	size_t  cap;
	char  **ids;            /* Message-IDs delivered so far, for `duplicate` */
	size_t  nids, idcap;
	struct target **ts;     /* destinations open in this batch */
	size_t  nts, inbatch;
	struct pool *pool;      /* writer threads; NULL: this thread writes */
	int     bad, tempfail;
	unsigned long n, delivered, defaulted, errors;
};

/* ---- duplicate: the Message-IDs this run has delivered ---- */

/* An open-addressing hash set: a run over a big mbox must not go
 * quadratic. */
static size_t id_hash(const char *s)
{
	size_t h = 14695981039346656037u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static char **id_slot(char **tab, size_t cap, const char *id)
{
	size_t i = id_hash(id) & (cap - 1);
	while (tab[i] != NULL && strcmp(tab[i], id) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int seen(void *arg, const char *id)
{
	const struct filter *f = arg;
	return f->idcap > 0 && *id_slot(f->ids, f->idcap, id) != NULL;
}

static void grow_ids(struct filter *f)
{
	size_t cap = f->idcap ? f->idcap * 2 : 1024;
	char **tab = xcalloc(cap, sizeof *tab);
	for (size_t i = 0; i < f->idcap; i++)
		if (f->ids[i] != NULL)
			*id_slot(tab, cap, f->ids[i]) = f->ids[i];
	free(f->ids);
	f->ids = tab;
	f->idcap = cap;
}

static void remember(struct filter *f, const char *hdr, size_t hl)
{
	char *id = mime_header_get(hdr, hl, "Message-ID", NULL);
	if (id == NULL || *id == '\0' || seen(f, id)) {
		free(id);
		return;
	}
	if (2 * (f->nids + 1) > f->idcap)
		grow_ids(f);
	*id_slot(f->ids, f->idcap, id) = id;
	f->nids++;
}

/* ---- one message ---- */

static void print_line(const char *hdr, size_t hl, const struct decision *d)
{
	char *raw = mime_header_get(hdr, hl, "Subject", NULL);
	/* one line per message, tab separated: no control bytes from the mail */
	char *subj = text_safe(raw && *raw ? raw : "(no subject)");
	char *what = text_safe(d->error ? d->error : d->action ? d->action : "default");
	printf("%s\t%s\t%s\n", subj, d->error ? "error" : d->rule ? d->rule : "default", what);
	free(what);
	free(subj);
	free(raw);
}

/* Destinations stay open for a batch of messages and are committed
 * (fsync) once per batch: an fsync per message would cost more than
 * everything else together. */
static struct target *target_for(struct filter *f, const struct dest *d, char **err)
{
	for (size_t i = 0; i < f->nts; i++)
		if (dest_same(&f->ts[i]->dest, d))
			return f->ts[i];
	struct target *t = target_open(d, err);
	if (t == NULL)
		return NULL;
	f->ts = xrealloc(f->ts, (f->nts + 1) * sizeof *f->ts);
	f->ts[f->nts++] = t;
	return t;
}

/* Messages the writer threads could not write were counted as delivered
 * when they were handed over. */
static void drain(struct filter *f)
{
	unsigned long failed_commits = 0, failed = pool_drain(f->pool, &failed_commits);
	if (failed > 0)
		f->delivered -= failed;
	if (failed > 0 || failed_commits > 0)
		f->tempfail = 1;
}

static void commit_here(struct filter *f, struct target *t)
{
	char *err = NULL;
	if (t->ops->commit(t, &err) < 0) {
		log_err(NULL, "%s", err ? err : "commit failed");
		f->tempfail = 1;
	}
	free(err);
}

/* The first commit's syncfs covers the whole filesystem, so the other
 * Maildirs' commits are renames only: the workers do those side by side. */
static void end_batch(struct filter *f)
{
	drain(f);
	int nw = pool_workers(f->pool);
	for (size_t i = 0; i < f->nts; i++) {
		if (i > 0 && nw > 0 && f->ts[i]->ops->undoable)
			pool_commit(f->pool, (int)(i % (size_t)nw), f->ts[i]);
		else
			commit_here(f, f->ts[i]);
	}
	drain(f);
	for (size_t i = 0; i < f->nts; i++)
		target_close(f->ts[i]);
	f->nts = 0;
	f->inbatch = 0;
}

static char *prepend_of(const struct decision *d)
{
	size_t len = 0;
	for (size_t i = 0; i < d->nadd; i++)
		len += strlen(d->add_headers[i]) + 1;
	char *p = xmalloc(len + 1), *o = p;
	for (size_t i = 0; i < d->nadd; i++)
		o += sprintf(o, "%s\n", d->add_headers[i]);
	*o = '\0';
	return p;
}

/* The worker that owns every one of ts, or -1: a message for several
 * workers' targets, a command, a forward or a spilled message is written
 * by this thread once the workers are idle. */
static int owner_of(const struct filter *f, struct target **ts, size_t n)
{
	int nw = pool_workers(f->pool), owner = -1;
	if (nw == 0 || f->m.fd >= 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (f->ts[k] != ts[i])
			k++;
		int w = (int)(k % (size_t)nw);
		if (!ts[i]->ops->undoable || (owner >= 0 && w != owner))
			return -1;
		owner = w;
	}
	return owner;
}

static int write_out(struct filter *f, struct target **ts, size_t n, const struct envelope *e,
		     const char *label, char **err)
{
	int w = owner_of(f, ts, n);
	if (w >= 0)
		return pool_submit(f->pool, w, ts, n, &f->m, e, label, err);
	drain(f);
	return deliver_to(ts, n, &f->m, e, err);
}

static int deliver(struct filter *f, const struct decision *d, size_t n, const char *label,
		   char **err)
{
	struct target **ts = xcalloc(n + 1, sizeof *ts);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct dest *dst = i < d->ndests ? &d->dests[i] : &f->dflt[i - d->ndests];
		if ((ts[i] = target_for(f, dst, err)) == NULL)
			rc = -1;
	}
	size_t hl;
	const char *hdr = msg_header(&f->m, &hl);
	char *pre = prepend_of(d), *sender = envelope_sender(hdr, hl);
	struct envelope e = { .prepend = pre, .prependlen = strlen(pre), .sender = sender };
	if (rc == 0)
		rc = write_out(f, ts, n, &e, label, err);
	free(pre);
	free(sender);
	free(ts);
	if (++f->inbatch >= FILTER_BATCH)
		end_batch(f);
	return rc < 0 ? -1 : 1;
}

static void act(struct filter *f, const char *label, const struct decision *d)
{
	size_t hl;
	const char *hdr = msg_header(&f->m, &hl);
	if (d->error != NULL) {
		log_err(NULL, "%s: %s", label, d->error);
		f->bad = 1;
		f->errors++;
	}
	if (f->dry_run)
		print_line(hdr, hl, d);
	if (d->error != NULL || d->skip)
		return;
	f->defaulted += d->use_default;
	char *err = NULL;
	size_t n = d->ndests + (d->use_default ? f->ndflt : 0);
	int rc = f->dry_run || n == 0 ? n > 0 : deliver(f, d, n, label, &err);
	if (rc < 0) {
		log_err(NULL, "%s: %s", label, err ? err : "delivery failed");
		f->tempfail = 1;
	} else if (rc > 0) {
		f->delivered++;
		remember(f, hdr, hl);
	}
	free(err);
}

static void one(struct filter *f, const char *p, size_t n, const char *label)
{
	char *err = NULL;
	f->n++;
	msg_reset(&f->m);
	if ((n > 0 && msg_append(&f->m, p, n, &err) < 0) || msg_finish(&f->m, &err) < 0) {
		log_err(NULL, "%s: %s", label, err);
		free(err);
		f->tempfail = 1;
		return;
	}
	struct msgview v = {
		.account = f->account, .size = f->m.size, .msg = &f->m,
		.is_duplicate = seen, .dup_arg = f,
	};
	v.hdr = msg_header(&f->m, &v.hdrlen);
	struct decision d;
	rules_eval(f->r, &v, &d);
	act(f, label, &d);
	decision_free(&d);
}

/* ---- inputs ---- */

/* One line from p[0..n) into out: CRLF to LF; with mboxrd, ">From "
 * quoting taken off one level.  Returns the bytes of p used. */
static size_t copy_line(const char *p, size_t n, char *out, size_t *o, int mboxrd)
{
	const char *nl = memchr(p, '\n', n);
	size_t len = nl ? (size_t)(nl - p) + 1 : n, skip = 0;
	if (mboxrd && p[0] == '>') {
		size_t k = 0;
		while (k < len && p[k] == '>')
			k++;
		skip = len - k >= 5 && memcmp(p + k, "From ", 5) == 0;
	}
	size_t body = len - skip;
	memcpy(out + *o, p + skip, body);
	*o += body;
	if (nl != NULL && body >= 2 && out[*o - 2] == '\r') {
		out[*o - 2] = '\n';
		(*o)--;
	}
	return len;
}

/* Messages get LF line ends; an mbox's quoting comes off. */
static const char *normalise(struct filter *f, const char *p, size_t *n, int mboxrd)
{
	if (!mboxrd && memchr(p, '\r', *n) == NULL)
		return p;
	if (*n + 1 > f->cap) {
		f->cap = *n + 1;
		f->buf = xrealloc(f->buf, f->cap);
	}
	size_t o = 0;
	for (size_t i = 0; i < *n;)
		i += copy_line(p + i, *n - i, f->buf, &o, mboxrd);
	*n = o;
	return f->buf;
}

/* Read a whole file into f->in, which is reused from file to file. */
static int read_fd(struct filter *f, int fd, size_t *len)
{
	size_t n = 0;
	ssize_t r;
	for (;;) {
		if (n + 1 >= f->incap) {
			f->incap = f->incap ? f->incap * 2 : 65536;
			f->in = xrealloc(f->in, f->incap);
		}
		r = read(fd, f->in + n, f->incap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return r < 0 ? -1 : 0;
}

static int load(struct filter *f, const char *path, size_t *len)
{
	if (strcmp(path, "-") == 0)
		return read_fd(f, 0, len);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = read_fd(f, fd, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static void do_file(struct filter *f, const char *path)
{
	size_t len;
	if (load(f, path, &len) < 0) {
		log_err(NULL, "%s: %s", path, strerror(errno));
		f->bad = 1;
		return;
	}
	const char *p = normalise(f, f->in, &len, 0);
	one(f, p, len, strcmp(path, "-") ? path : "stdin");
}

static int name_ok(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int do_subdir(struct filter *f, const char *dir, const char *sub)
{
	char *path = xasprintf("%s/%s", dir, sub);
	struct dirent **names;
	int n = scandir(path, &names, name_ok, alphasort);
	if (n < 0) {
		free(path);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", path, names[i]->d_name);
		do_file(f, file);
		free(file);
		free(names[i]);
	}
	free(names);
	free(path);
	return 0;
}

static void do_maildir(struct filter *f, const char *dir)
{
	int a = do_subdir(f, dir, "new"), b = do_subdir(f, dir, "cur");
	if (a < 0 && b < 0) {
		log_err(NULL, "%s: not a Maildir (no new/ or cur/)", dir);
		f->bad = 1;
	}
}

/* "From sender date": a sender, then a time somewhere in the date. */
static int from_line(const char *p, size_t n, size_t i)
{
	const char *nl = memchr(p + i, '\n', n - i);
	size_t e = nl ? (size_t)(nl - p) : n, k = i + 5;
	while (k < e && p[k] != ' ' && p[k] != '\t')
		k++;
	if (k == i + 5 || k == e)
		return 0;
	for (; k + 3 < e; k++)
		if (p[k] >= '0' && p[k] <= '9' && p[k + 1] == ':' &&
		    p[k + 2] >= '0' && p[k + 2] <= '9' && p[k + 3] >= '0' && p[k + 3] <= '9')
			return 1;
	return 0;
}

/* A line that starts a message: "From " with a sender and a date, at the
 * start or after a blank line.  Not every tool quotes body lines that
 * start with "From ", so those two checks keep such a line in its body. */
static int is_sep(const char *p, size_t n, size_t i)
{
	if (n - i < 5 || memcmp(p + i, "From ", 5) != 0)
		return 0;
	int after_blank = i == 0 || (i >= 2 && p[i - 1] == '\n' && p[i - 2] == '\n') ||
		(i >= 3 && p[i - 1] == '\n' && p[i - 2] == '\r' && p[i - 3] == '\n');
	return after_blank && from_line(p, n, i);
}

static size_t next_sep(const char *p, size_t n, size_t i)
{
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		if (nl == NULL)
			return n;
		i = (size_t)(nl - p) + 1;
		if (is_sep(p, n, i))
			return i;
	}
	return n;
}

/* The blank line that ends each message in an mbox belongs to the mbox,
 * not to the message: cut it. */
static size_t blank_end(const char *p, size_t body, size_t e)
{
	if (e <= body || p[e - 1] != '\n')
		return e;
	size_t k = e - 1;
	if (k > body && p[k - 1] == '\r')
		k--;
	return (k > body && p[k - 1] == '\n') ? k : e;
}

static void split_mbox(struct filter *f, const char *path, const char *p, size_t n)
{
	if (n > 0 && !is_sep(p, n, 0)) {
		log_err(NULL, "%s: not an mbox (no \"From \" line at the start)", path);
		f->bad = 1;
		return;
	}
	unsigned long k = 0;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t body = nl ? (size_t)(nl - p) + 1 : n;
		size_t end = next_sep(p, n, body);
		size_t e = blank_end(p, body, end);
		char *label = xasprintf("%s: message %lu", path, ++k);
		size_t len = e - body;
		const char *m = normalise(f, p + body, &len, 1);
		one(f, m, len, label);
		free(label);
		i = end;
	}
}

static void do_mbox(struct filter *f, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_err(NULL, "%s: %s", path, strerror(errno));
		f->bad = 1;
		if (fd >= 0)
			close(fd);
		return;
	}
	size_t n = (size_t)st.st_size;
	void *p = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (p == MAP_FAILED) {
		log_err(NULL, "%s: %s", path, strerror(errno));
		f->bad = 1;
		return;
	}
	split_mbox(f, path, p, n);
	if (p != NULL)
		munmap(p, n);
}

/* ---- command line ---- */

static int usage(void)
{
	usage_print(stderr, "filter");
	return EX_USAGE;
}

static int add_default(struct filter *f, const char *text)
{
	char *err = NULL;
	f->dflt = xrealloc(f->dflt, (f->ndflt + 1) * sizeof *f->dflt);
	if (dest_parse(text, &f->dflt[f->ndflt], &err) < 0) {
		log_err(NULL, "--deliver: %s", err);
		free(err);
		return -1;
	}
	f->ndflt++;
	return 0;
}

enum { OPT_MBOX = 256, OPT_MAILDIR };

struct input {
	int kind;               /* OPT_MBOX, OPT_MAILDIR or 0: a file */
	const char *path;
};

static int parse_args(int argc, char **argv, struct filter *f, const char **rules,
		      struct input *in, size_t *nin)
{
	static const struct option opts[] = {
		{ "rules", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "account", required_argument, NULL, 'a' },
		{ "deliver", required_argument, NULL, 'd' },
		{ "mbox", required_argument, NULL, OPT_MBOX },
		{ "maildir", required_argument, NULL, OPT_MAILDIR },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "r:na:d:vq", opts, NULL)) != -1) {
		switch (c) {
		case 'r': *rules = optarg; break;
		case 'n': f->dry_run = 1; break;
		case 'a': f->account = optarg; break;
		case 'd': if (add_default(f, optarg) < 0) return -1; break;
		case 'v': log_level = log_level < 0 ? 1 : log_level + 1; break;
		case 'q': log_level = -1; break;
		case OPT_MBOX: case OPT_MAILDIR:
			in[(*nin)++] = (struct input){ c, optarg };
			break;
		default: return -1;
		}
	}
	for (int i = optind; i < argc; i++)
		in[(*nin)++] = (struct input){ 0, argv[i] };
	return *rules ? 0 : -1;
}

static void cleanup(struct filter *f)
{
	rules_free(f->r);
	msg_free(&f->m);
	free(f->buf);
	free(f->in);
	for (size_t i = 0; i < f->idcap; i++)
		free(f->ids[i]);
	free(f->ids);
	for (size_t i = 0; i < f->ndflt; i++)
		dest_free(&f->dflt[i]);
	free(f->dflt);
	free(f->ts);
}

int cmd_filter(int argc, char **argv)
{
	struct filter f = { 0 };
	const char *rules = NULL;
	struct input *in = xcalloc((size_t)argc + 1, sizeof *in);
	size_t nin = 0;
	msg_init(&f.m);
	if (parse_args(argc, argv, &f, &rules, in, &nin) < 0) {
		free(in);
		cleanup(&f);
		return usage();
	}
	char *err = NULL;
	f.r = rules_load(rules, &err);
	if (f.r == NULL) {
		log_err(NULL, "%s", err);
		free(err);
		free(in);
		cleanup(&f);
		return EX_CONFIG;
	}
	if (nin == 0)
		in[nin++] = (struct input){ 0, "-" };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (!f.dry_run && cpus > 1)
		f.pool = pool_new(cpus > 4 ? 4 : (int)cpus);
	for (size_t i = 0; i < nin; i++) {
		if (in[i].kind == OPT_MBOX)
			do_mbox(&f, in[i].path);
		else if (in[i].kind == OPT_MAILDIR)
			do_maildir(&f, in[i].path);
		else
			do_file(&f, in[i].path);
	}
	end_batch(&f);
	pool_free(f.pool);
	log_debug(NULL, "%lu message%s: %lu delivered%s, %lu to the default, %lu errors",
		  f.n, f.n == 1 ? "" : "s", f.delivered, f.dry_run ? " (dry run)" : "",
		  f.defaulted, f.errors);
	free(in);
	cleanup(&f);
	return f.tempfail ? EX_TEMPFAIL : f.bad ? EX_DATAERR : 0;
}
