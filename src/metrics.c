/* metrics.c — `metrics FILE`: per-account counters and gauges in the
 * Prometheus text exposition format, for node_exporter's textfile
 * collector.  Rewritten from the state database after every account's
 * run: a temporary file in the same directory, renamed over the old one,
 * so the collector never reads half a file.  Writers (the daemon's poll
 * children) take turns through a lock on the directory, so an older
 * snapshot never replaces a newer one. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "state.h"

struct family {
	const char *name, *type, *help;
	size_t off;      /* of a long long or a double in struct acct_totals */
	int is_double;
};

#define LL(n, t, h, f) { n, t, h, offsetof(struct acct_totals, f), 0 }
#define DB(n, t, h, f) { n, t, h, offsetof(struct acct_totals, f), 1 }
static const struct family families[] = {
	LL("popsift_runs_total", "counter", "Polls of the account.", runs),
	LL("popsift_messages_new_total", "counter", "Messages found new on the server.", nnew),
	LL("popsift_messages_delivered_total", "counter", "Messages delivered.", delivered),
	LL("popsift_messages_deleted_total", "counter", "Messages deleted from the server.",
	   deleted),
	LL("popsift_bytes_total", "counter", "Bytes of the messages fetched.", bytes),
	LL("popsift_errors_total", "counter", "Polls that ended with a non-zero exit code.",
	   errors),
	LL("popsift_messages_undelivered", "gauge",
	   "Messages that could not be delivered and stay on the server.", undelivered),
	DB("popsift_last_run_timestamp_seconds", "gauge", "When the last poll ended.",
	   last_ended),
	DB("popsift_last_success_timestamp_seconds", "gauge",
	   "When the last poll that exited 0 ended (0: never).", last_success),
	DB("popsift_last_run_duration_seconds", "gauge", "How long the last poll took.",
	   last_duration),
	LL("popsift_last_exit_code", "gauge", "The last poll's exit code (sysexits.h).",
	   last_exit),
};
#undef LL
#undef DB

struct rows {
	struct acct_totals *t;
	size_t n;
};

static int collect(void *arg, const struct acct_totals *t)
{
	struct rows *r = arg;
	r->t = xrealloc(r->t, (r->n + 1) * sizeof *r->t);
	r->t[r->n] = *t;
	r->t[r->n++].account = xstrdup(t->account);
	return 0;
}

static const struct acct_totals *find(const struct rows *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->t[i].account, name) == 0)
			return &r->t[i];
	return NULL;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_family(FILE *f, const struct config *cf, const struct rows *r,
		       const struct family *fam)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
	for (const struct account *a = cf->accounts; a; a = a->next) {
		static const struct acct_totals none;
		const struct acct_totals *t = find(r, a->name);
		if (t == NULL)
			t = &none;
		fprintf(f, "%s{account=\"", fam->name);
		put_label(f, a->name);
		const char *v = (const char *)t + fam->off;
		if (fam->is_double)
			fprintf(f, "\"} %.3f\n", *(const double *)(const void *)v);
		else
			fprintf(f, "\"} %lld\n", *(const long long *)(const void *)v);
	}
}

static int write_file(const struct config *cf, const struct rows *r, char **err)
{
	const char *path = cf->metrics, *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
	char *tmp = xasprintf("%s/.%s.XXXXXX", dir, slash ? slash + 1 : path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1, rc = -1;
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0 || (fd = mkstemp(tmp)) < 0) {
		seterr(err, "metrics %s: %s", path, strerror(errno));
		goto out;
	}
	fchmod(fd, 0644);   /* node_exporter runs as its own user */
	FILE *f = fdopen(fd, "w");
	if (f == NULL)
		close(fd);
	for (size_t i = 0; f && i < sizeof families / sizeof *families; i++)
		put_family(f, cf, r, &families[i]);
	if (f == NULL || fflush(f) != 0 || ferror(f) || fclose(f) != 0) {
		seterr(err, "metrics %s: writing %s: %s", path, tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		seterr(err, "metrics %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	if (dfd >= 0)
		close(dfd);   /* and the lock with it */
	free(tmp);
	free(dir);
	return rc;
}

void metrics_write(const struct config *cf, struct state *st)
{
	if (cf->metrics == NULL || st == NULL)
		return;
	struct rows r = { 0 };
	char *err = NULL;
	if (state_metrics(st, collect, &r, &err) < 0 || write_file(cf, &r, &err) < 0) {
		log_err(NULL, "%s", err);
		free(err);
	}
	for (size_t i = 0; i < r.n; i++)
		free((char *)r.t[i].account);
	free(r.t);
}
