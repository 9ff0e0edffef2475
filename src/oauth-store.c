/* oauth-store.c — OAuth2 tokens on disk: oauth/ACCOUNT.SIDE next to the
 * state database, mode 0600 in a 0700 directory.  Written to a new file
 * (O_EXCL|O_NOFOLLOW), fsync'd and renamed over the old one, so a crash
 * leaves the old tokens or the new, never half of either.  Read only if
 * it belongs to this user and nobody else can read it, as the config. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oauth.h"

#define TOKEN_FILE_MAX 65536

char *token_path(const struct account *a, enum side side)
{
	return xasprintf("%s/%s.%s", a->token_dir ? a->token_dir : ".", a->name, side_name(side));
}

void token_free(struct token *t)
{
	if (t->access)
		memset(t->access, 0, strlen(t->access));
	if (t->refresh)
		memset(t->refresh, 0, strlen(t->refresh));
	free(t->access);
	free(t->refresh);
	memset(t, 0, sizeof *t);
}

static int check_owner(const char *path, const struct stat *st, char **err)
{
	if (st->st_uid != geteuid())
		return seterr(err, "%s: owned by another user (uid %u): refusing its tokens", path,
			      (unsigned)st->st_uid);
	if (st->st_mode & 077)
		return seterr(err, "%s: readable by others (mode %04o): run chmod 600 %s and "
			      "popsift authorize again (the tokens may have leaked)", path,
			      (unsigned)(st->st_mode & 07777), path);
	if (!S_ISREG(st->st_mode))
		return seterr(err, "%s: not a regular file", path);
	return 0;
}

static int parse_line(struct token *t, char *line)
{
	char *v = strchr(line, ' ');
	if (line[0] == '#' || line[0] == '\0')
		return 0;
	if (v == NULL || v[1] == '\0')
		return -1;
	*v++ = '\0';
	if (!strcmp(line, "access_token"))
		t->access = xstrdup(v);
	else if (!strcmp(line, "refresh_token"))
		t->refresh = xstrdup(v);
	else if (!strcmp(line, "expires_at"))
		t->expires = strtoll(v, NULL, 10);
	return 0;
}

static int parse_file(const char *path, char *buf, struct token *t, char **err)
{
	for (char *s = buf, *nl; s && *s; s = nl) {
		nl = strchr(s, '\n');
		if (nl)
			*nl++ = '\0';
		if (parse_line(t, s) < 0) {
			token_free(t);
			return seterr(err, "%s: damaged: run popsift authorize again", path);
		}
	}
	return 0;
}

int token_read(const char *path, struct token *t, char **err)
{
	memset(t, 0, sizeof *t);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0)
		return seterr(err, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? seterr(err, "%s: %s", path, strerror(errno))
				    : check_owner(path, &st, err);
	if (rc == 0 && st.st_size >= TOKEN_FILE_MAX)
		rc = seterr(err, "%s: too big for a token file", path);
	if (rc == 0) {
		char *buf = xcalloc(1, TOKEN_FILE_MAX);
		ssize_t n = read(fd, buf, TOKEN_FILE_MAX - 1);
		rc = n < 0 ? seterr(err, "%s: %s", path, strerror(errno))
			   : parse_file(path, buf, t, err);
		memset(buf, 0, TOKEN_FILE_MAX);
		free(buf);
	}
	close(fd);
	return rc;
}

/* A token goes on one line: nothing a server sends may add another. */
static int clean(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int write_tmp(const char *tmp, const struct token *t, char **err)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return seterr(err, "%s: %s", tmp, strerror(errno));
	char *text = xasprintf("# popsift OAuth2 tokens: private, never share this file\n"
			       "%s%s%sexpires_at %lld\n%s%s%s",
			       t->access ? "access_token " : "", t->access ? t->access : "",
			       t->access ? "\n" : "", t->expires,
			       t->refresh ? "refresh_token " : "", t->refresh ? t->refresh : "",
			       t->refresh ? "\n" : "");
	int rc = write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 ? -1 : 0;
	if (rc < 0)
		seterr(err, "%s: %s", tmp, strerror(errno));
	memset(text, 0, strlen(text));
	free(text);
	if (close(fd) < 0 && rc == 0)
		rc = seterr(err, "%s: %s", tmp, strerror(errno));
	return rc;
}

int token_write(const char *path, const struct token *t, char **err)
{
	if (!clean(t->access) || !clean(t->refresh))
		return seterr(err, "the token endpoint sent a token with control characters");
	if (mkdir_parent(path, 0700) < 0)
		return seterr(err, "%s: cannot make its directory: %s", path, strerror(errno));
	char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	unlink(tmp);   /* a crashed earlier write of this pid */
	int rc = write_tmp(tmp, t, err);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = seterr(err, "%s: %s", path, strerror(errno));
	if (rc < 0) {
		unlink(tmp);
	} else {
		char *slash = strrchr(tmp, '/');
		if (slash)
			*slash = '\0';
		fsync_dir(slash ? tmp : ".");
	}
	free(tmp);
	return rc;
}

int token_lock(const char *path, char **err)
{
	if (mkdir_parent(path, 0700) < 0) {
		seterr(err, "%s: cannot make its directory: %s", path, strerror(errno));
		return -1;
	}
	char *lp = xasprintf("%s.lock", path);
	int fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		seterr(err, "%s: %s", lp, strerror(errno));
	else
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	free(lp);
	return fd;
}
