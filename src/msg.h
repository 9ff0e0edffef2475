/* msg.h — one message as fetched: LF line endings, dot-unstuffed.
 * Held in memory until it grows past a threshold, then spilled to an
 * unlinked temp file, so memory stays flat as message size grows.  The
 * header section always stays in memory for matching.  With a `max` set,
 * disk use is bounded by what arrives, not by what the server announced. */
#ifndef MSG_H
#define MSG_H

#include <stddef.h>
#include <sys/types.h>

struct msg {
	char   *mem;            /* in-memory bytes (whole message, or header part when spilled) */
	size_t  memlen, memcap;
	int     fd;             /* spill file or -1 */
	size_t  size;           /* total bytes */
	size_t  hdrlen;         /* length of header section incl. blank line; 0 until known */
	int     hdr_done;
	char   *map;            /* msg_map() result when spilled */
	size_t  maplen;
	/* where it came from */
	unsigned long num;      /* POP3 message number */
	char   *uidl;
	size_t  list_size;      /* size per LIST (octets, CRLF) */
	/* bound on the bytes stored (0: none), kept across msg_reset */
	size_t  max;
	int     over;           /* more than max arrived: only the header is kept */
};

void msg_init(struct msg *m);
void msg_reset(struct msg *m);          /* ready for the next message, keeps buffers */
void msg_free(struct msg *m);
/* m gets from's content (a filter's output), keeping its origin (num,
 * uidl, list_size, max); from ends up empty. */
void msg_take(struct msg *m, struct msg *from);
/* Past m->max the body is dropped and the rest discarded (m->over set):
 * the caller reads on to the end of the reply and does not deliver it. */
int  msg_append(struct msg *m, const char *p, size_t n, char **err);
int  msg_finish(struct msg *m, char **err);
/* The header section (always in memory). */
const char *msg_header(const struct msg *m, size_t *len);
/* The whole message contiguous (mmap when spilled); valid until reset. */
const char *msg_map(struct msg *m, size_t *len, char **err);
/* Visit the message in order, in chunks; cb returns 0 or -1 to stop. */
int  msg_chunks(const struct msg *m, int (*cb)(void *arg, const char *p, size_t n), void *arg,
		char **err);

#endif
