/* deliver-mbox.c — append to an mbox in mboxrd format (RFC 4155 plus
 * quoting of ">*From " lines), locked with fcntl and a dotlock as
 * procmail and mutt expect, one fsync per batch. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>
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

/* Buffered writer that quotes ">*From " at line starts, across chunks.
 * While a line start is undecided it holds only a count of '>' and how
 * much of "From " matched, so a run of any length costs no memory. */
struct qwriter {
	int    fd;
	char   buf[65536];
	size_t len;
	int    bol;          /* at a line start, not decided yet */
	size_t ngt;          /* '>' seen there so far */
	size_t nfrom;        /* bytes of "From " matched after them */
	int    failed;
	char   last;
};

static const char from5[] = "From ";

/* Write whole lines when the buffer is full: a kill between two writes
 * then leaves the mbox ending at a line end, so what another program
 * appends starts a line of its own, which recovery can tell apart. */
static void qw_flush_lines(struct qwriter *w)
{
	const char *nl = memrchr(w->buf, '\n', w->len);
	size_t n = nl ? (size_t)(nl - w->buf) + 1 : w->len;   /* a line longer than buf: all */
	if (write_all(w->fd, w->buf, n) < 0)
		w->failed = errno;
	memmove(w->buf, w->buf + n, w->len - n);
	w->len -= n;
}

static void qw_emit(struct qwriter *w, const char *p, size_t n)
{
	if (n == 0 || w->failed)
		return;
	w->last = p[n - 1];
	while (w->len + n > sizeof w->buf && !w->failed) {
		size_t k = sizeof w->buf - w->len;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		qw_flush_lines(w);
	}
	if (w->failed)
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void qw_emit_gt(struct qwriter *w, size_t n)
{
	char gts[64];
	memset(gts, '>', sizeof gts);
	for (size_t k; n > 0; n -= k) {
		k = n < sizeof gts ? n : sizeof gts;
		qw_emit(w, gts, k);
	}
}

/* The held line start, with one more '>' if it turned out to be a
 * ">*From " line. */
static void qw_release(struct qwriter *w, int quote)
{
	qw_emit_gt(w, w->ngt + (quote ? 1 : 0));
	qw_emit(w, from5, w->nfrom);
	w->ngt = w->nfrom = 0;
	w->bol = 0;
}

/* Decide a line start from the bytes of p; returns how many it took. */
static size_t qw_line_start(struct qwriter *w, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && w->bol) {
		if (w->nfrom == 0 && p[i] == '>') {
			w->ngt++;
			i++;
		} else if (p[i] == from5[w->nfrom]) {
			i++;
			if (++w->nfrom == 5)
				qw_release(w, 1);
		} else {
			qw_release(w, 0);   /* p[i] is the rest of an ordinary line */
		}
	}
	return i;
}

static int qw_feed(void *arg, const char *p, size_t n)
{
	struct qwriter *w = arg;
	while (n > 0) {
		if (w->bol) {
			size_t used = qw_line_start(w, p, n);
			p += used;
			n -= used;
			if (w->bol)
				break;   /* undecided at the end of this chunk */
		}
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
	if (w->bol)
		qw_release(w, 0);
	if (w->last != '\n')
		qw_emit(w, "\n", 1);
	qw_emit(w, "\n", 1);   /* the blank line that ends an mbox message */
	if (!w->failed && w->len && write_all(w->fd, w->buf, w->len) < 0)
		w->failed = errno;
	w->len = 0;
	return w->failed ? -1 : 0;
}

int mboxrd_quote_chunks(int fd, const char *const *chunk, const size_t *len, size_t n)
{
	struct qwriter *w = xcalloc(1, sizeof *w);
	w->fd = fd;
	w->bol = 1;
	for (size_t i = 0; i < n; i++)
		qw_feed(w, chunk[i], len[i]);
	int rc = qw_finish(w);
	free(w);
	return rc;
}

/* Unpredictable bits for temp names and batch tokens. */
static uint64_t random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16);
	}
	return v;
}

/* Stale dotlocks, by the conventions of the programs that make them:
 * - a lock holding a process id (liblockfile's dotlockfile -p, mutt,
 *   popsift) is valid while that process lives on this host, and stale
 *   as soon as it is gone (kill(pid, 0) says ESRCH), whatever its age;
 * - a lock without one (procmail and its lockfile(1) write "0"; others
 *   leave it empty) is stale once it has not been touched for procmail's
 *   default LOCKTIMEOUT, 1024 s (liblockfile says 5 minutes: the longer
 *   of the two, since waiting only leaves the mail on the server).
 * *why says which, for the error when the wait runs out. */
#define DOTLOCK_TIMEOUT 1024

static int dotlock_stale(const char *lock, struct stat *seen, char *why, size_t whylen)
{
	if (lstat(lock, seen) < 0)
		return 0;   /* gone already: try again */
	char buf[32] = "";
	int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = S_ISREG(seen->st_mode) ? read(fd, buf, sizeof buf - 1) : 0;
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	char *end;
	long pid = strtol(buf, &end, 10);
	long age = (long)(time(NULL) - seen->st_mtime);
	if (pid > 0 && end != buf && (*end == '\0' || *end == '\n')) {
		snprintf(why, whylen, "held by process %ld", pid);
		return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
	}
	snprintf(why, whylen, "held by another program (no process id in it: procmail or "
		 "lockfile(1)?), %ld s old; broken at %d s", age, DOTLOCK_TIMEOUT);
	return age > DOTLOCK_TIMEOUT;
}

/* Remove a lock judged stale, unless it has been replaced since it was
 * judged (another program may have broken it and locked anew). */
static void dotlock_break(const char *lock, const struct stat *seen)
{
	struct stat now;
	if (lstat(lock, &now) == 0 && now.st_ino == seen->st_ino && now.st_dev == seen->st_dev &&
	    now.st_mtime == seen->st_mtime)
		unlink(lock);
}

/* The lock appears whole or not at all: the pid goes into a unique file
 * that is then linked to NAME.lock (as liblockfile does), so a kill can
 * never leave an empty lock nobody can judge stale.  The temp name is
 * unpredictable and made with O_EXCL|O_NOFOLLOW: in a shared directory
 * (/var/mail) another user cannot plant a link there for us to follow. */
static int dotlock_try(const char *lock)
{
	int fd = -1, rc = -1, saved;
	char *tmp = NULL;
	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		free(tmp);
		tmp = xasprintf("%s.%ld.%016llx.tmp", lock, (long)getpid(),
				(unsigned long long)random64());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd >= 0) {
		dprintf(fd, "%ld\n", (long)getpid());
		close(fd);
		rc = link(tmp, lock);
	}
	saved = errno;
	if (fd >= 0)
		unlink(tmp);
	free(tmp);
	errno = saved;
	return rc;
}

static int dotlock(struct target *t, char **err)
{
	char *lock = xasprintf("%s.lock", t->dest.path);
	char why[160] = "held by another program";
	int rc = 0;
	for (int tries = 0;; tries++) {
		if (dotlock_try(lock) == 0) {
			t->dotlocked = 1;
			break;
		}
		if (errno == EACCES || errno == EROFS || errno == EPERM)
			break;   /* a directory we may not write to: fcntl alone must do */
		if (errno != EEXIST || tries >= LOCK_WAIT * 10) {
			rc = seterr(err, "cannot lock %s: %s", lock, errno == EEXIST ? why :
				    strerror(errno));
			break;
		}
		struct stat seen;
		if (dotlock_stale(lock, &seen, why, sizeof why))
			dotlock_break(lock, &seen);
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

/* procmail's mailbox checks: never through a symbolic link, only a
 * regular file of the user popsift runs as, with no other name (a hard
 * link planted by another user would let them choose the file). */
static int mbox_check(int fd, const char *path, struct stat *st, char **err)
{
	if (fstat(fd, st) < 0)
		return seterr(err, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return seterr(err, "refusing mbox %s: not a regular file", path);
	if (st->st_uid != geteuid())
		return seterr(err, "refusing mbox %s: owned by uid %ld, not by uid %ld "
			      "that popsift runs as", path, (long)st->st_uid, (long)geteuid());
	if (st->st_nlink != 1)
		return seterr(err, "refusing mbox %s: it has %ld hard links", path,
			      (long)st->st_nlink);
	return 0;
}

/* Open without following a link at the last component; with created
 * set, create the file when missing (and say so, for its directory's
 * fsync). */
static int mbox_fd(const char *path, int flags, int *created, char **err)
{
	for (int tries = 0; tries < 5; tries++) {
		int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && created) {
			fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			*created = fd >= 0;
			if (fd < 0 && errno == EEXIST)
				continue;   /* made by someone else meanwhile: open theirs */
		}
		if (fd >= 0)
			return fd;
		if (errno == ELOOP)
			return seterr(err, "refusing mbox %s: it is a symbolic link", path);
		return seterr(err, "cannot open mbox %s: %s", path, strerror(errno));
	}
	return seterr(err, "cannot open mbox %s: it keeps appearing and vanishing", path);
}

static int mbox_lock_open(struct target *t, int flags, struct stat *st, char **err)
{
	int *created = flags & O_APPEND ? &t->created : NULL;
	t->fd = mbox_fd(t->dest.path, flags, created, err);
	if (t->fd < 0 || mbox_check(t->fd, t->dest.path, st, err) < 0)
		return -1;
	if (dotlock(t, err) < 0 || fcntl_lock(t, F_WRLCK, err) < 0)
		return -1;
	return fstat(t->fd, st) < 0 ? seterr(err, "%s: %s", t->dest.path, strerror(errno)) : 0;
}

/* A file that does not end in a newline (another program died while
 * writing) gets one, so this batch's first From_ line starts a line and
 * a recovery of that program's batch can tell the two apart. */
static int mbox_end_line(struct target *t, off_t size, char **err)
{
	char c = '\n';
	if (size > 0 && pread(t->fd, &c, 1, size - 1) != 1)
		return seterr(err, "cannot read %s: %s", t->dest.path, strerror(errno));
	if (c != '\n' && write_all(t->fd, "\n", 1) < 0)
		return seterr(err, "cannot write to %s: %s", t->dest.path, strerror(errno));
	t->start = t->last = size + (c != '\n');
	return 0;
}

static int mbox_open(struct target *t, char **err)
{
	struct stat st;
	char *slash = strrchr(t->dest.path, '/');
	if (slash && slash != t->dest.path) {
		char *dir = xstrndup(t->dest.path, (size_t)(slash - t->dest.path));
		int rc = mkdirs_durable(dir, err);
		free(dir);
		if (rc < 0)
			return -1;
	}
	if (mbox_lock_open(t, O_RDWR | O_APPEND, &st, err) < 0 ||
	    mbox_end_line(t, st.st_size, err) < 0)
		return -1;
	/* every From_ line of this batch carries the token: recovery cuts
	 * only what provably is this batch's */
	t->prefix = xasprintf("%016llx", (unsigned long long)random64());
	t->journal.kind = "mbox";
	t->journal.path = t->dest.path;
	t->journal.offset = (int64_t)t->start;
	t->journal.prefix = t->prefix;
	t->journal.dev = (int64_t)st.st_dev;
	t->journal.ino = (int64_t)st.st_ino;
	return 0;
}

#define TOKEN_TAG " popsift="

static void from_line(char *buf, size_t n, const struct envelope *e, const char *token)
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
	snprintf(buf + k, n - k, " %s%s%s\n", date, token ? TOKEN_TAG : "", token ? token : "");
}

static int mbox_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	struct qwriter *w = xcalloc(1, sizeof *w);
	char line[512];
	w->fd = t->fd;
	t->last = lseek(t->fd, 0, SEEK_END);
	from_line(line, sizeof line, e, t->prefix);
	qw_emit(w, line, strlen(line));
	w->bol = 1;   /* added header lines are quoted like the message */
	qw_feed(w, e->prepend, e->prependlen);
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
		/* a new file is durable only once its directory entry is */
		char *dir = xstrdup(t->dest.path), *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		const char *d = slash ? (*dir ? dir : "/") : ".";
		int rc = fsync_dir(d) < 0 ? seterr(err, "cannot sync %s: %s", d, strerror(errno)) : 0;
		free(dir);
		if (rc < 0)
			return -1;
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
	free(t->prefix);
	t->prefix = NULL;
}

/* Recovery.  A batch that died left its journal: the mbox's device,
 * inode and size before the batch, and the token of its From_ lines.
 * Other programs (the MTA, procmail, another account of this config)
 * may have appended since, so only the run of messages at that offset
 * whose From_ lines carry the token is cut; what follows is moved down
 * under the lock.  When in doubt, everything stays: a duplicate beats a
 * loss. */

static int in_list(const char *list, const char *w)
{
	for (; *list; list += 3)
		if (memcmp(list, w, 3) == 0)
			return 1;
	return 0;
}

/* "From SENDER Www Mmm ": the start of a From_ line as mbox writers make it */
static int from_shape(const char *s, size_t n)
{
	size_t i = 5;
	while (i < n && s[i] != ' ' && s[i] != '\n')
		i++;
	while (i < n && s[i] == ' ')
		i++;
	if (i + 8 > n || s[i + 3] != ' ' || s[i + 7] != ' ')
		return 0;
	return in_list("SunMonTueWedThuFriSat", s + i) &&
	       in_list("JanFebMarAprMayJunJulAugSepOctNovDec", s + i + 4);
}

/* A From_ line inside a line: another program appended behind a line
 * this batch had not finished. */
static int glued_from(const char *l, size_t n)
{
	size_t gt = 0;
	while (gt < n && l[gt] == '>')
		gt++;   /* ">From " at a line start is a quoted line, not glued */
	for (size_t i = gt + 1; i + 5 <= n; i++) {
		const char *f = memchr(l + i, 'F', n - i - 4);
		if (f == NULL)
			return 0;
		i = (size_t)(f - l);
		if (memcmp(f, from5, 5) == 0 && from_shape(f, n - i))
			return 1;
	}
	return 0;
}

static int our_from(const char *l, size_t n, const char *token)
{
	size_t tk = strlen(token), tag = strlen(TOKEN_TAG);
	if (n > 0 && l[n - 1] == '\n')
		n--;
	return n >= 5 + tag + tk && memcmp(l + n - tk, token, tk) == 0 &&
	       memcmp(l + n - tk - tag, TOKEN_TAG, tag) == 0;
}

/* How many bytes from the journaled offset (map[0..n)) provably are the
 * batch's: its messages run from there to the first other From_ line or
 * the end.  Mboxrd quoting means no line of its own starts with "From ".
 * The last one may have been cut off mid-line and another program's
 * message glued behind it: then that message stays, and *doubt says so. */
static size_t batch_end(const char *map, size_t n, const char *token, int *doubt)
{
	size_t pos = 0, rec = 0;
	int glued = 0;
	while (pos < n) {
		const char *l = map + pos, *nl = memchr(l, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - l) + 1 : n - pos;
		if (len >= 5 && memcmp(l, from5, 5) == 0) {
			if (!our_from(l, len, token))
				break;
			rec = pos;
			glued = 0;
		} else if (pos == 0) {
			return 0;
		} else if (!glued) {
			glued = glued_from(l, len);
		}
		pos += len;
	}
	*doubt = glued;
	return glued ? rec : pos;
}

static int pwrite_all(int fd, const char *p, size_t n, off_t at)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

/* Remove [off, off+len) of a file of size bytes: move the tail down,
 * front to back, so a crash in between duplicates bytes but never loses
 * any (every byte is read before anything is written over it). */
static int cut_range(int fd, off_t off, off_t len, off_t size)
{
	char *buf = xmalloc(1 << 16);
	off_t from = off + len, to = off;
	int rc = 0;
	while (rc == 0 && from < size) {
		ssize_t r = pread(fd, buf, 1 << 16, from);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || pwrite_all(fd, buf, (size_t)r, to) < 0)
			rc = -1;
		from += r > 0 ? r : 0;
		to += r > 0 ? r : 0;
	}
	free(buf);
	if (rc == 0 && ftruncate(fd, to) < 0)
		rc = -1;
	return rc == 0 ? fsync(fd) : -1;
}

/* The batch's bytes at j->offset in the open, locked mbox (*end: how
 * many; 0 when none provably are). */
static int batch_bytes(const struct journal *j, int fd, off_t size, off_t *end, char **err)
{
	long page = sysconf(_SC_PAGESIZE);
	off_t base = j->offset - j->offset % (page > 0 ? page : 4096);
	size_t n = (size_t)(size - base);
	char *map = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, base);
	if (map == MAP_FAILED)
		return seterr(err, "cannot read %s: %s", j->path, strerror(errno));
	int doubt = 0;
	*end = (off_t)batch_end(map + (j->offset - base), (size_t)(size - j->offset), j->prefix,
				&doubt);
	munmap(map, n);
	if (doubt)
		log_err(NULL, "recovering %s: another program's mail may be glued to the last "
			"message of the unfinished delivery at offset %lld: that message is kept "
			"(it may show twice)", j->path, (long long)(j->offset + *end));
	return 0;
}

/* Whether the file at j->path is still the one the batch wrote to, and
 * grew since: else it is left alone. */
static int still_ours(const struct journal *j, const struct stat *st)
{
	const char *why = NULL;
	if (j->dev && (j->dev != (int64_t)st->st_dev || j->ino != (int64_t)st->st_ino))
		why = "another file is at that path now";
	else if (st->st_size < j->offset)
		why = "it shrank since";
	else if (st->st_size > j->offset && (j->prefix == NULL || *j->prefix == '\0'))
		why = "the journal (of an older popsift) cannot tell its bytes from others'";
	if (why)
		log_err(NULL, "recovering %s: left alone, %s; messages of the unfinished "
			"delivery may show twice", j->path, why);
	return why == NULL && st->st_size > j->offset;
}

static int mbox_rollback(struct target *t, const struct journal *j, const struct stat *st,
			 char **err)
{
	off_t end = 0;
	if (!still_ours(j, st))
		return 0;
	if (batch_bytes(j, t->fd, st->st_size, &end, err) < 0)
		return -1;
	if (end == 0)
		return 0;   /* it wrote nothing; what is there is others' */
	off_t tail = st->st_size - j->offset - end;
	log_info(NULL, "recovering %s: removing %lld bytes of an unfinished delivery%s",
		 j->path, (long long)end, tail ? ", keeping the mail appended after it" : "");
	if (cut_range(t->fd, (off_t)j->offset, end, st->st_size) < 0)
		return seterr(err, "cannot roll back %s: %s", j->path, strerror(errno));
	return 0;
}

/* A link, a foreign file or no file at the path: nothing there is the
 * batch's to cut. */
static int untouchable(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT;
	if (S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1)
		return 0;
	log_err(NULL, "recovering %s: left alone: not a regular file of uid %ld with one link",
		path, (long)geteuid());
	return 1;
}

static int mbox_recover(const struct journal *j, char **err)
{
	if (untouchable(j->path))
		return 0;
	struct target t = { .fd = -1 };
	struct stat st;
	t.dest.path = (char *)j->path;
	int rc = mbox_lock_open(&t, O_RDWR, &st, err);
	if (rc == 0)
		rc = mbox_rollback(&t, j, &st, err);
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
