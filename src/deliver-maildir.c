/* deliver-maildir.c — write into tmp/, fsync, rename into new/, fsync
 * the directory.  Every name of a batch starts with the batch's prefix,
 * which the journal records so a crashed batch can be taken back. */
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver.h"
#include "msg.h"

/* Maildir files written by this process; `popsift filter` writes from
 * several threads (filter-pool.c) */
static _Atomic unsigned long writes;

/* tmp/, new/ and cur/ must be real directories of the user popsift runs
 * as: a link planted there would send mail where another user chose.
 * (The Maildir itself may be a link: users point ~/Maildir elsewhere.)
 * 1: fine, 0: missing, -1: cannot tell, REFUSED: someone else's. */
#define REFUSED (-2)

static int check_sub(const char *p, char **err)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return errno == ENOENT ? 0 : seterr(err, "cannot use Maildir %s: %s", p,
						      strerror(errno));
	if (S_ISLNK(st.st_mode))
		seterr(err, "refusing Maildir %s: it is a symbolic link", p);
	else if (!S_ISDIR(st.st_mode))
		seterr(err, "refusing Maildir %s: not a directory", p);
	else if (st.st_uid != geteuid())
		seterr(err, "refusing Maildir %s: owned by uid %ld, not by uid %ld "
		       "that popsift runs as", p, (long)st.st_uid, (long)geteuid());
	else
		return 1;
	return REFUSED;
}

/* Create dir (and its missing parents) like mkdir -p, fsyncing each
 * directory it creates and the parent that now names it, so a Maildir
 * (or an mbox's directory) a rule makes during a run survives a power
 * cut with the mail in it. */
int mkdirs_durable(const char *dir, char **err)
{
	char *p = xstrdup(dir);
	int rc = 0;
	for (char *s = p + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == 0) {
			char *slash = strrchr(p, '/');
			char *parent = slash == p ? xstrdup("/") :
				       slash ? xstrndup(p, (size_t)(slash - p)) : xstrdup(".");
			if (fsync_dir(p) < 0 || fsync_dir(parent) < 0)
				rc = seterr(err, "cannot sync %s: %s", p, strerror(errno));
			free(parent);
		} else if (errno != EEXIST) {
			rc = seterr(err, "cannot create %s: %s", p, strerror(errno));
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static int make_maildir(const char *dir, char **err)
{
	static const char *const sub[] = { "/tmp", "/new", "/cur" };
	int state[3], have = 0, rc = 0;
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", dir, sub[i]);
		state[i] = check_sub(p, err);
		free(p);
		if (state[i] < 0)
			return -1;
		have += state[i];
	}
	if (have == 3)
		return 0;   /* the usual case: no mkdir at all */
	if (mkdirs_durable(dir, err) < 0)
		return -1;
	for (size_t i = 0; rc == 0 && i < 3; i++) {
		char *p = xasprintf("%s%s", dir, sub[i]);
		if (state[i] == 0)
			rc = mkdirs_durable(p, err) < 0 || check_sub(p, err) < 0 ? -1 : 0;
		free(p);
	}
	return rc;
}

static const char *hostname(void);

static int maildir_open(struct target *t, char **err)
{
	struct stat st;
	if (make_maildir(t->dest.path, err) < 0)
		return -1;
	if (stat(t->dest.path, &st) < 0)
		return seterr(err, "cannot use Maildir %s: %s", t->dest.path, strerror(errno));
	(void)hostname();   /* filled here, before any writer thread reads it */
	struct timeval tv;
	gettimeofday(&tv, NULL);
	/* time.M<usec>P<pid>: unique to this batch, the Maildir convention */
	t->prefix = xasprintf("%lld.M%06ldP%ld", (long long)tv.tv_sec, (long)tv.tv_usec,
			      (long)getpid());
	t->journal.kind = "maildir";
	t->journal.path = t->dest.path;
	t->journal.prefix = t->prefix;
	t->journal.dev = (int64_t)st.st_dev;
	t->journal.ino = (int64_t)st.st_ino;
	return 0;
}

static int copy_cb(void *arg, const char *p, size_t n)
{
	return write_all(*(int *)arg, p, n);
}

static const char *hostname(void)
{
	static char host[256];
	if (host[0] == '\0') {
		if (gethostname(host, sizeof host - 1) < 0 || host[0] == '\0')
			strcpy(host, "localhost");
		host[strcspn(host, "/:")] = '\0';
	}
	return host;
}

static int maildir_write(struct target *t, struct msg *m, const struct envelope *e, char **err)
{
	const char *host = hostname();
	char *name = xasprintf("%sQ%lu.%s,S=%zu", t->prefix, ++t->seq, host,
			       m->size + e->prependlen);
	char *tmp = xasprintf("%s/tmp/%s", t->dest.path, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : 0;
	char *e2 = NULL;
	if (rc == 0 && e->prependlen)
		rc = write_all(fd, e->prepend, e->prependlen);
	if (rc == 0)
		rc = msg_chunks(m, copy_cb, &fd, &e2);
	/* no fsync per file: commit makes the whole batch durable at once */
	if (rc < 0) {
		seterr(err, "cannot write %s: %s", tmp, e2 ? e2 : strerror(errno));
		if (fd >= 0)
			unlink(tmp);   /* ours; after EEXIST the file is someone else's */
		free(name);
	} else {
		writes++;
		t->pending = xrealloc(t->pending, (t->npending + 1) * sizeof *t->pending);
		t->pending[t->npending++] = name;
	}
	if (fd >= 0)
		close(fd);
	free(e2);
	free(tmp);
	return rc;
}

static void maildir_undo(struct target *t)
{
	if (t->npending == 0)
		return;
	char *name = t->pending[--t->npending];
	char *tmp = xasprintf("%s/tmp/%s", t->dest.path, name);
	unlink(tmp);
	free(tmp);
	free(name);
}

/* One syncfs for the batch's files (instead of an fsync per file), then
 * the renames, then one fsync of new/.  Several Maildirs on one
 * filesystem committed in a row need one syncfs: remember, per device,
 * how many writes the last one covered.  The lock is for `popsift
 * filter`, whose threads commit Maildirs side by side. */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { dev_t dev; unsigned long upto; } synced[8];

static int already_synced(dev_t dev, unsigned long upto, int record)
{
	for (size_t i = 0; i < 8; i++) {
		if (synced[i].upto != 0 && synced[i].dev != dev)
			continue;
		if (record) {
			synced[i].dev = dev;
			synced[i].upto = upto;
		}
		return synced[i].upto == upto;
	}
	return 0;
}

static int sync_dev(int fd, const char *dir, char **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return seterr(err, "cannot sync %s: %s", dir, strerror(errno));
	pthread_mutex_lock(&sync_mu);
	unsigned long upto = writes;
	int rc = 0;
	if (!already_synced(st.st_dev, upto, 0)) {
		rc = syncfs(fd) < 0 ? seterr(err, "cannot sync %s: %s", dir, strerror(errno)) : 0;
		if (rc == 0)
			already_synced(st.st_dev, upto, 1);
	}
	pthread_mutex_unlock(&sync_mu);
	return rc;
}

static int sync_tmp(struct target *t, char **err)
{
	char *tmpdir = xasprintf("%s/tmp", t->dest.path);
	int fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? seterr(err, "cannot sync %s: %s", tmpdir, strerror(errno))
			: sync_dev(fd, tmpdir, err);
	if (fd >= 0)
		close(fd);
	free(tmpdir);
	return rc;
}

static int maildir_commit(struct target *t, char **err)
{
	int rc = t->npending ? sync_tmp(t, err) : 0;
	for (size_t i = 0; i < t->npending; i++) {
		char *from = xasprintf("%s/tmp/%s", t->dest.path, t->pending[i]);
		char *to = xasprintf("%s/new/%s", t->dest.path, t->pending[i]);
		if (rc == 0 && rename(from, to) < 0)
			rc = seterr(err, "cannot move %s into new/: %s", from, strerror(errno));
		free(from);
		free(to);
		free(t->pending[i]);
	}
	t->npending = 0;
	char *newdir = xasprintf("%s/new", t->dest.path);
	if (rc == 0 && fsync_dir(newdir) < 0)
		rc = seterr(err, "cannot sync %s: %s", newdir, strerror(errno));
	free(newdir);
	return rc;
}

static void maildir_close(struct target *t)
{
	while (t->npending > 0)
		maildir_undo(t);
	free(t->pending);
	t->pending = NULL;
	free(t->prefix);
	t->prefix = NULL;
}

/* Remove the batch's files from dir: those named prefix + "Q" (in cur/
 * a mail client may have added ":2,S" since). */
static int remove_prefixed(const char *dir, const char *prefix, char **err)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : seterr(err, "cannot read %s: %s", dir, strerror(errno));
	size_t n = strlen(prefix);
	int rc = 0, removed = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, n) != 0 || de->d_name[n] != 'Q')
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		log_info(NULL, "recovering: removing %s of an unfinished delivery", p);
		if (unlink(p) == 0)
			removed = 1;
		else if (errno != ENOENT && rc == 0)
			rc = seterr(err, "cannot remove %s: %s", p, strerror(errno));
		free(p);
	}
	closedir(d);
	if (rc == 0 && removed && fsync_dir(dir) < 0)
		rc = seterr(err, "cannot sync %s: %s", dir, strerror(errno));
	return rc;
}

static int maildir_recover(const struct journal *j, char **err)
{
	if (j->prefix == NULL || *j->prefix == '\0')
		return 0;
	struct stat st;
	if (stat(j->path, &st) < 0)
		return errno == ENOENT ? 0 : seterr(err, "cannot use Maildir %s: %s", j->path,
						    strerror(errno));
	if (j->dev && (j->dev != (int64_t)st.st_dev || j->ino != (int64_t)st.st_ino)) {
		log_err(NULL, "recovering %s: left alone, another directory is at that path now; "
			"messages of the unfinished delivery may show twice", j->path);
		return 0;
	}
	static const char *const sub[] = { "tmp", "new", "cur" };
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < 3; i++) {
		char *dir = xasprintf("%s/%s", j->path, sub[i]);
		if ((rc = check_sub(dir, err)) > 0)
			rc = remove_prefixed(dir, j->prefix, err);
		if (rc == REFUSED) {
			log_err(NULL, "recovering: %s: left alone", err && *err ? *err : dir);
			if (err) {
				free(*err);
				*err = NULL;
			}
			rc = 0;
		}
		free(dir);
	}
	return rc;
}

const struct deliverer deliver_maildir = {
	.name = "maildir",
	.undoable = 1,
	.open = maildir_open,
	.write = maildir_write,
	.undo = maildir_undo,
	.commit = maildir_commit,
	.close = maildir_close,
	.recover = maildir_recover,
};
