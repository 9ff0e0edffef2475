/* msg.c — a fetched message: in memory while small, spilled to an
 * unlinked temp file past MSG_SPILL so peak memory stays flat. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "msg.h"
#include "popsift.h"

#define MSG_SPILL   (2u << 20)
#define MSG_MAXHDR  (1u << 20)   /* headers past this are not kept for matching */

void msg_init(struct msg *m)
{
	memset(m, 0, sizeof *m);
	m->fd = -1;
}

static void msg_unmap(struct msg *m)
{
	if (m->map != NULL)
		munmap(m->map, m->maplen);
	m->map = NULL;
	m->maplen = 0;
}

void msg_reset(struct msg *m)
{
	msg_unmap(m);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->memlen = m->size = m->hdrlen = 0;
	m->hdr_done = 0;
	m->over = 0;
	free(m->uidl);
	m->uidl = NULL;
	m->num = 0;
	m->list_size = 0;
	/* a huge buffer from a big message is not worth keeping around */
	if (m->memcap > MSG_SPILL) {
		free(m->mem);
		m->mem = NULL;
		m->memcap = 0;
	}
}

/* A filter's output becomes m; where m came from stays.  from is
 * left empty. */
void msg_take(struct msg *m, struct msg *from)
{
	struct msg old = *m;
	*m = *from;
	m->num = old.num;
	m->uidl = old.uidl;
	m->list_size = old.list_size;
	m->max = old.max;
	old.uidl = NULL;
	*from = old;
	msg_free(from);
	msg_init(from);
}

void msg_free(struct msg *m)
{
	msg_reset(m);
	free(m->mem);
	m->mem = NULL;
	m->memcap = 0;
}

/* Find the end of the header section as bytes arrive: "\n\n" (LF). */
static void find_header_end(struct msg *m, size_t from)
{
	if (m->hdr_done)
		return;
	size_t start = from > 0 ? from - 1 : 0;
	if (m->memlen > 0 && m->mem[0] == '\n') {
		m->hdrlen = 1;
		m->hdr_done = 1;
		return;
	}
	for (size_t i = start; i + 1 < m->memlen; i++) {
		if (m->mem[i] == '\n' && m->mem[i + 1] == '\n') {
			m->hdrlen = i + 2;
			m->hdr_done = 1;
			return;
		}
	}
	if (m->memlen >= MSG_MAXHDR) {
		m->hdrlen = m->memlen;
		m->hdr_done = 1;
	}
}

static int spill(struct msg *m, char **err)
{
	const char *dir = getenv("TMPDIR");
	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	m->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (m->fd < 0)
		return seterr(err, "cannot create a temp file in %s: %s", dir, strerror(errno));
	size_t keep = m->hdr_done ? m->hdrlen : m->memlen;
	if (write_all(m->fd, m->mem, m->memlen) < 0)
		return seterr(err, "cannot write temp file: %s", strerror(errno));
	m->memlen = keep;   /* only the header stays in memory */
	return 0;
}

/* More than max arrived, whatever LIST said: the header stays (all that
 * TOP n 0 is for), the body and its spill file go, the rest is ignored. */
static int overflow(struct msg *m)
{
	msg_unmap(m);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (!m->hdr_done) {
		m->hdrlen = m->memlen;
		m->hdr_done = 1;
	}
	if (m->memlen > m->hdrlen)
		m->memlen = m->hdrlen;
	m->size = m->memlen;
	m->over = 1;
	return 0;
}

int msg_append(struct msg *m, const char *p, size_t n, char **err)
{
	if (n == 0 || m->over)
		return 0;
	if (m->fd >= 0) {
		/* checked before the write: the spill never outgrows max */
		if (m->max > 0 && m->size + n > m->max)
			return overflow(m);
		m->size += n;
		if (write_all(m->fd, p, n) < 0)
			return seterr(err, "cannot write temp file: %s", strerror(errno));
		return 0;
	}
	if (m->memlen + n > m->memcap) {
		size_t cap = m->memcap ? m->memcap : 65536;
		while (cap < m->memlen + n)
			cap *= 2;
		m->mem = xrealloc(m->mem, cap);
		m->memcap = cap;
	}
	size_t from = m->memlen;
	memcpy(m->mem + m->memlen, p, n);
	m->memlen += n;
	m->size += n;
	find_header_end(m, from);
	if (m->max > 0 && m->size > m->max)
		return overflow(m);
	if (m->memlen > MSG_SPILL)
		return spill(m, err);
	return 0;
}

int msg_finish(struct msg *m, char **err)
{
	(void)err;
	if (!m->hdr_done) {
		/* no body: the whole message is header */
		m->hdrlen = m->fd >= 0 ? m->memlen : m->size;
		m->hdr_done = 1;
	}
	return 0;
}

const char *msg_header(const struct msg *m, size_t *len)
{
	*len = m->hdr_done ? m->hdrlen : m->memlen;
	if (*len > m->memlen)
		*len = m->memlen;
	return m->mem ? m->mem : "";
}

const char *msg_map(struct msg *m, size_t *len, char **err)
{
	if (m->fd < 0) {
		*len = m->memlen;
		return m->mem ? m->mem : "";
	}
	if (m->map == NULL) {
		void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, m->fd, 0);
		if (p == MAP_FAILED) {
			seterr(err, "cannot map temp file: %s", strerror(errno));
			return NULL;
		}
		m->map = p;
		m->maplen = m->size;
	}
	*len = m->size;
	return m->map;
}

int msg_chunks(const struct msg *m, int (*cb)(void *arg, const char *p, size_t n), void *arg,
	       char **err)
{
	if (m->fd < 0)
		return m->memlen ? cb(arg, m->mem, m->memlen) : 0;
	size_t cap = 1 << 16;
	char *buf = xmalloc(cap);
	off_t off = 0;
	int rc = 0;
	while (rc == 0 && (size_t)off < m->size) {
		ssize_t r = pread(m->fd, buf, cap, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = seterr(err, "cannot read temp file: %s", r < 0 ? strerror(errno) : "short");
		else if (cb(arg, buf, (size_t)r) < 0)
			rc = -1;
		off += r > 0 ? r : 0;
	}
	free(buf);
	return rc;
}
