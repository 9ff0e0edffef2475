/* deliver-mbox.c — append to an mbox in mboxrd format (RFC 4155 plus
 * quoting of ">*From " lines), locked with fcntl and a dotlock as
 * procmail and mutt expect, one fsync per batch. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "msg.h"

int mboxrd_from_line(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] == '>')
		i++;
	static const char from[] = "From ";
	for (size_t k = 0; k < 5; k++, i++) {
		if (i >= n)
			return -1;
		if (s[i] != from[k])
			return 0;
	}
	return 1;
}

/* Buffered writer that quotes ">*From " at line starts, across chunks. */
struct qwriter {
	int    fd;
	char   buf[65536];
	size_t len;
	int    bol;
	char   pend[80];
	size_t npend;
	int    failed;
	char   last;
};

static void qw_emit(struct qwriter *w, const char *p, size_t n)
{
	if (n == 0 || w->failed)
		return;
	w->last = p[n - 1];
	if (w->len + n > sizeof w->buf) {
		if (write_all(w->fd, w->buf, w->len) < 0)
			w->failed = errno;
		w->len = 0;
		if (n > sizeof w->buf) {
			if (!w->failed && write_all(w->fd, p, n) < 0)
				w->failed = errno;
			return;
		}
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

/* Decide the line start in pend+p; returns bytes of p consumed into pend
 * when still undecided, or (size_t)-1 once decided and emitted. */
static size_t qw_line_start(struct qwriter *w, const char *p, size_t n)
{
	char tmp[160];
	size_t take = n < 72 ? n : 72;
	memcpy(tmp, w->pend, w->npend);
	memcpy(tmp + w->npend, p, take);
	int r = mboxrd_from_line(tmp, w->npend + take);
	if (r < 0 && take == n && w->npend + n < sizeof w->pend) {
		memcpy(w->pend + w->npend, p, n);
		w->npend += n;
		return n;
	}
	if (r > 0)
		qw_emit(w, ">", 1);
	qw_emit(w, w->pend, w->npend);
	w->npend = 0;
	w->bol = 0;
	return (size_t)-1;
}

static int qw_feed(void *arg, const char *p, size_t n)
{
	struct qwriter *w = arg;
	while (n > 0) {
		if (w->bol && qw_line_start(w, p, n) == n)
			return 0;
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;
		qw_emit(w, p, len);
		p += len;
		n -= len;
		w->bol = nl != NULL;
	}
	return w->failed ? -1 : 0;
}

static int qw_finish(struct qwriter *w)
{
	qw_emit(w, w->pend, w->npend);
	w->npend = 0;
	if (w->last != '\n')
		qw_emit(w, "\n", 1);
	qw_emit(w, "\n", 1);   /* the blank line that ends an mbox message */
	if (!w->failed && w->len && write_all(w->fd, w->buf, w->len) < 0)
		w->failed = errno;
	w->len = 0;
	return w->failed ? -1 : 0;
}

/* A dotlock older than this, or whose owner is gone, is stale (procmail
 * uses the same age). */
#define DOTLOCK_STALE 300

static int dotlock_stale(const char *lock)
{
	struct stat st;
	if (stat(lock, &st) < 0)
		return 1;
	if (time(NULL) - st.st_mtime > DOTLOCK_STALE)
		return 1;
	char buf[32] = "";
	FILE *f = fopen(lock, "r");
	if (f) {
		if (fgets(buf, sizeof buf, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	long pid = atol(buf);
	if (pid <= 0)   /* empty or garbage: another program's half-made lock */
		return time(NULL) - st.st_mtime > 10;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* The lock appears whole or not at all: the pid goes into a unique file
 * that is then linked to NAME.lock (as liblockfile does), so a kill can
 * never leave an empty lock nobody can judge stale. */
static int dotlock_try(const char *lock)
{
	char *tmp = xasprintf("%s.%ld.tmp", lock, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1, saved;
	if (fd >= 0) {
		dprintf(fd, "%ld\n", (long)getpid());
		close(fd);
		rc = link(tmp, lock);
	}
	saved = errno;
	unlink(tmp);
	free(tmp);
	errno = saved;
	return rc;
}

static int dotlock(struct target *t, char **err)
{
	char *lock = xasprintf("%s.lock", t->dest.path);
	int rc = 0;
	for (int tries = 0;; tries++) {
		if (dotlock_try(lock) == 0) {
			t->dotlocked = 1;
			break;
		}
		if (errno == EACCES || errno == EROFS || errno == EPERM)
			break;   /* a directory we may not write to: fcntl alone must do */
		if (errno != EEXIST || tries >= LOCK_WAIT * 10) {
			rc = seterr(err, "cannot lock %s: %s", lock,
				    errno == EEXIST ? "held by another program" : strerror(errno));
			break;
		}
		if (dotlock_stale(lock))
			unlink(lock);
		else
			usleep(100000);
	}
	free(lock);
	return rc;
}

static int fcntl_lock(struct target *t, int type, char **err)
{
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET };
	for (int tries = 0; fcntl(t->fd, F_SETLK, &fl) < 0; tries++) {
		if ((errno != EAGAIN && errno != EACCES) || tries >= LOCK_WAIT * 10)
			return seterr(err, "cannot lock %s: %s", t->dest.path, strerror(errno));
		usleep(100000);
	}
	return 0;
}

static int mbox_lock_open(struct target *t, char **err)
{
	struct stat st;
	t->created = stat(t->dest.path, &st) < 0;
	t->fd = open(t->dest.path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (t->fd < 0)
		return seterr(err, "cannot open mbox %s: %s", t->dest.path, strerror(errno));
	if (dotlock(t, err) < 0 || fcntl_lock(t, F_WRLCK, err) < 0)
		return -1;
	if (fstat(t->fd, &st) < 0)
		return seterr(err, "%s: %s", t->dest.path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return seterr(err, "mbox %s is not a regular file", t->dest.path);
	t->start = t->last = st.st_size;
	return 0;
}

static int mbox_open(struct target *t, char **err)
{
	mkdir_parent(t->dest.path, 0700);   /* a failure shows in the open */
	if (mbox_lock_open(t, err) < 0)
		return -1;
	t->journal.kind = "mbox";
	t->journal.path = t->dest.path;
	t->journal.offset = (int64_t)t->start;
	return 0;
}

static void from_line(char *buf, size_t n, const struct envelope *e)
{
	char date[64];
	struct tm tm;
	time_t when = e->when ? e->when : time(NULL);
	localtime_r(&when, &tm);
	strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
	const char *s = e->sender && *e->sender ? e->sender : "MAILER-DAEMON";
	size_t k = (size_t)snprintf(buf, n, "From ");
	for (; *s && k + 2 < n && k < 300; s++)
		buf[k++] = (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') ? '_' : *s;
	snprintf(buf + k, n - k, " %s\n", date);
}

static int mbox_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	struct qwriter *w = xcalloc(1, sizeof *w);
	char line[512];
	w->fd = t->fd;
	t->last = lseek(t->fd, 0, SEEK_END);
	from_line(line, sizeof line, e);
	qw_emit(w, line, strlen(line));
	qw_emit(w, e->prepend, e->prependlen);
	w->bol = 1;
	char *e2 = NULL;
	int rc = msg_chunks(m, qw_feed, w, &e2);
	if (qw_finish(w) < 0 || rc < 0) {
		seterr(err, "cannot write to %s: %s", t->dest.path,
		       w->failed ? strerror(w->failed) : (e2 ? e2 : "error"));
		t->ops->undo(t);
		rc = -1;
	}
	free(e2);
	free(w);
	return rc;
}

static void mbox_undo(struct target *t)
{
	if (ftruncate(t->fd, t->last) < 0)
		log_err(NULL, "cannot truncate %s back to %lld: %s", t->dest.path,
			(long long)t->last, strerror(errno));
}

static int mbox_commit(struct target *t, char **err)
{
	if (fsync(t->fd) < 0)
		return seterr(err, "cannot sync %s: %s", t->dest.path, strerror(errno));
	if (t->created) {
		char *dir = xstrdup(t->dest.path), *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		fsync_dir(slash ? (*dir ? dir : "/") : ".");
		free(dir);
		t->created = 0;
	}
	return 0;
}

static void mbox_close(struct target *t)
{
	if (t->fd >= 0)
		close(t->fd);   /* drops the fcntl lock */
	t->fd = -1;
	if (t->dotlocked) {
		char *lock = xasprintf("%s.lock", t->dest.path);
		unlink(lock);
		free(lock);
		t->dotlocked = 0;
	}
}

/* A batch died between journal and commit: cut the mbox back. */
static int mbox_recover(const struct journal *j, char **err)
{
	struct target t = { .fd = -1 };
	t.dest.path = (char *)j->path;
	if (access(j->path, F_OK) < 0)
		return 0;
	int rc = mbox_lock_open(&t, err);
	if (rc == 0 && t.start > j->offset) {
		log_info(NULL, "recovering %s: removing %lld bytes of an unfinished delivery",
			 j->path, (long long)(t.start - j->offset));
		if (ftruncate(t.fd, j->offset) < 0 || fsync(t.fd) < 0)
			rc = seterr(err, "cannot roll back %s: %s", j->path, strerror(errno));
	}
	mbox_close(&t);
	return rc;
}

const struct deliverer deliver_mbox = {
	.name = "mbox",
	.undoable = 1,
	.open = mbox_open,
	.write = mbox_write,
	.undo = mbox_undo,
	.commit = mbox_commit,
	.close = mbox_close,
	.recover = mbox_recover,
};
