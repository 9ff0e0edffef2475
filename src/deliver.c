/* deliver.c — open, write, commit and recover deliveries through the
 * vtable, whatever the kind. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "msg.h"

const struct deliverer *deliverer_for(enum dest_kind k)
{
	switch (k) {
	case DEST_MBOX:    return &deliver_mbox;
	case DEST_MAILDIR: return &deliver_maildir;
	case DEST_MDA:     return &deliver_mda;
	case DEST_FORWARD: return &deliver_smtp;
	case DEST_IMAP:    return &deliver_imap;
	case DEST_LMTP:    return &deliver_lmtp;
	}
	return NULL;
}

static void dest_dup(struct dest *dst, const struct dest *src)
{
	dst->kind = src->kind;
	dst->path = src->path ? xstrdup(src->path) : NULL;
	size_t n = 0;
	while (src->argv && src->argv[n])
		n++;
	dst->argv = src->argv ? xcalloc(n + 1, sizeof *dst->argv) : NULL;
	for (size_t i = 0; i < n; i++)
		dst->argv[i] = xstrdup(src->argv[i]);
}

int dest_same(const struct dest *a, const struct dest *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->path || b->path)
		return a->path && b->path && strcmp(a->path, b->path) == 0;
	if (a->argv == NULL || b->argv == NULL)   /* imap to the default folder */
		return a->argv == b->argv;
	size_t i = 0;
	for (; a->argv[i] && b->argv[i]; i++)
		if (strcmp(a->argv[i], b->argv[i]) != 0)
			return 0;
	return a->argv[i] == b->argv[i];
}

struct target *target_open(const struct dest *d, char **err)
{
	struct target *t = xcalloc(1, sizeof *t);
	t->ops = deliverer_for(d->kind);
	t->fd = -1;
	dest_dup(&t->dest, d);
	if (t->ops->open(t, err) < 0) {
		target_close(t);
		return NULL;
	}
	return t;
}

void target_close(struct target *t)
{
	if (t == NULL)
		return;
	t->ops->close(t);
	dest_free(&t->dest);
	free(t);
}

static int write_pass(struct target **ts, size_t n, int undoable, struct msg *m,
		      const struct envelope *e, size_t *done, struct target **written, char **err)
{
	for (size_t i = 0; i < n; i++) {
		if (ts[i]->ops->undoable != undoable)
			continue;
		if (ts[i]->ops->write(ts[i], m, e, err) < 0)
			return -1;
		written[(*done)++] = ts[i];
	}
	return 0;
}

int deliver_to(struct target **ts, size_t n, struct msg *m, const struct envelope *e, char **err)
{
	struct target **written = xcalloc(n + 1, sizeof *written);
	size_t done = 0;
	/* commands first: if one fails, nothing local has been written yet */
	int rc = write_pass(ts, n, 0, m, e, &done, written, err);
	if (rc == 0)
		rc = write_pass(ts, n, 1, m, e, &done, written, err);
	if (rc < 0)
		for (size_t i = done; i-- > 0;)
			if (written[i]->ops->undoable)
				written[i]->ops->undo(written[i]);
	free(written);
	return rc;
}

int deliver_message(const struct dest *dests, size_t n, struct msg *m, char **err)
{
	struct target **ts = xcalloc(n + 1, sizeof *ts);
	struct envelope e = { .prepend = "", .prependlen = 0 };
	int rc = 0;
	size_t opened = 0;
	for (; rc == 0 && opened < n; opened++)
		if ((ts[opened] = target_open(&dests[opened], err)) == NULL)
			rc = -1;
	if (rc == 0)
		rc = deliver_to(ts, n, m, &e, err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = ts[i]->ops->commit(ts[i], err);
	for (size_t i = 0; i < n; i++)
		target_close(ts[i]);
	free(ts);
	return rc;
}

/* A failed batch takes back what it wrote while t still holds its locks:
 * an mbox is cut back to its size at open (under the lock nobody else
 * can have appended), and a Maildir loses the batch's files (by its
 * prefix: a failed commit may have moved some to new/).  Released first,
 * another program's append could land in between and be cut away. */
int target_rollback(struct target *t, char **err)
{
	if (!t->ops->undoable)
		return 0;
	if (t->ops == &deliver_mbox) {
		if (t->fd < 0)
			return seterr(err, "cannot roll back %s: not open", t->dest.path);
		if (ftruncate(t->fd, t->start) < 0 || fsync(t->fd) < 0)
			return seterr(err, "cannot roll back %s to %lld bytes: %s", t->dest.path,
				      (long long)t->start, strerror(errno));
		t->last = t->start;
		return 0;
	}
	while (t->npending > 0)
		t->ops->undo(t);
	struct journal j = t->journal;
	j.path = t->dest.path;
	j.prefix = t->prefix;
	return deliver_recover(&j, err);
}

int deliver_recover(const struct journal *j, char **err)
{
	if (strcmp(j->kind, "mbox") == 0)
		return deliver_mbox.recover(j, err);
	if (strcmp(j->kind, "maildir") == 0)
		return deliver_maildir.recover(j, err);
	return 0;
}
