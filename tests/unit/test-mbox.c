/* Unit tests: mboxrd From-line quoting decisions and the UIDL map. */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "deliver.h"
#include "uidmap.h"

/* What the mbox writer makes of the chunks (quoted body and the blank
 * line that ends a message). */
static char *quoted(const char *const *chunk, const size_t *len, size_t n, size_t *outlen)
{
	char path[] = "/tmp/test-mbox.XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (fd < 0 || mboxrd_quote_chunks(fd, chunk, len, n) < 0)
		return NULL;
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)size + 1);
	if (pread(fd, buf, (size_t)size, 0) != size)
		size = 0;
	close(fd);
	*outlen = (size_t)size;
	return buf;
}

/* A line of ngt '>' and "From x", split after `split` bytes (0: one
 * chunk): quoted with one more '>'. */
static int quotes_run(size_t ngt, size_t split)
{
	size_t n = ngt + 8;
	char *in = malloc(n + 1), *want = malloc(n + 3);
	memset(in, '>', ngt);
	memcpy(in + ngt, "From x\n", 7);
	in[ngt + 7] = 'y';
	in[n - 1] = '\n';
	want[0] = '>';
	memcpy(want + 1, in, n);
	want[n + 1] = '\n';
	const char *chunk[2] = { in, in + split };
	size_t len[2] = { split ? split : n, n - split }, outlen = 0;
	char *out = quoted(chunk, len, split ? 2 : 1, &outlen);
	int ok = out && outlen == n + 2 && memcmp(out, want, n + 2) == 0;
	free(out);
	free(in);
	free(want);
	return ok;
}

static void quoting(void)
{
	static const size_t runs[] = { 1, 71, 72, 73, 79, 80, 5000, 70000 };
	char what[96];
	for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
		snprintf(what, sizeof what, "%zu '>' then From: quoted", runs[i]);
		CHECK(quotes_run(runs[i], 0), what);
		snprintf(what, sizeof what, "%zu '>' then From, split in the run: quoted", runs[i]);
		CHECK(quotes_run(runs[i], runs[i] / 2 + 1), what);
		snprintf(what, sizeof what, "%zu '>' then From, split in \"From\": quoted", runs[i]);
		CHECK(quotes_run(runs[i], runs[i] + 2), what);
	}
	CHECK(quotes_run(0, 3), "From split across writes: quoted");
	const char *c1[] = { ">>>>", ">>Fro", "m: x\n" };
	size_t l1[] = { 4, 5, 5 }, n1 = 0;
	char *o1 = quoted(c1, l1, 3, &n1);
	CHECK(o1 && n1 == 15 && memcmp(o1, ">>>>>>From: x\n\n", 15) == 0,
	      "a run before From: is left alone across writes");
	free(o1);
	const char *c2[] = { ">>>>" };
	size_t l2[] = { 4 }, n2 = 0;
	char *o2 = quoted(c2, l2, 1, &n2);
	CHECK(o2 && n2 == 6 && memcmp(o2, ">>>>\n\n", 6) == 0, "a run at the very end is kept");
	free(o2);
}

static void fromline(void)
{
	CHECK(mboxrd_from_line("From x", 6) == 1, "From line quoted");
	CHECK(mboxrd_from_line(">From x", 7) == 1, ">From quoted again (mboxrd)");
	CHECK(mboxrd_from_line(">>>From ", 8) == 1, "deep quoting");
	CHECK(mboxrd_from_line("From:", 5) == 0, "From: header is not a From line");
	CHECK(mboxrd_from_line("Fro", 3) == -1, "undecided at chunk end");
	CHECK(mboxrd_from_line(">>", 2) == -1, "only > so far");
	CHECK(mboxrd_from_line("from x", 6) == 0, "case matters");
	CHECK(mboxrd_from_line(" From x", 7) == 0, "indented");
}

/* Each write() the mbox writer makes is one packet here: every one must
 * end at a line end, so a kill between two leaves whole lines.  A child
 * reads them and exits 0 (all whole, several), 1 or 2. */
static int read_packets(int fd)
{
	static char buf[1 << 17];
	ssize_t r;
	int n = 0, whole = 1;
	while ((r = read(fd, buf, sizeof buf)) > 0) {
		n++;
		whole &= buf[r - 1] == '\n';
	}
	return !whole ? 1 : n < 2 ? 2 : 0;
}

static void whole_lines(void)
{
	int sv[2], status = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
		CHECK(0, "socketpair");
		return;
	}
	int big = 1 << 18;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(read_packets(sv[1]));
	}
	close(sv[1]);
	size_t n = 300000;
	char *body = malloc(n);
	/* quoted lines: the writer emits them in pieces ('>', "From ", rest) */
	for (size_t i = 0; i < n; i++)
		body[i] = i % 97 == 96 ? '\n' : i % 97 < 6 ? ">From "[i % 97] : (char)('a' + i % 23);
	body[n - 1] = '\n';
	const char *chunk[] = { body };
	size_t len[] = { n };
	int rc = mboxrd_quote_chunks(sv[0], chunk, len, 1);
	close(sv[0]);
	waitpid(pid, &status, 0);
	free(body);
	CHECK(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) != 2,
	      "a large message takes several writes");
	CHECK(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "every write ends at a line end");
}

static void map(void)
{
	struct uidmap m;
	char key[32];
	uidmap_init(&m);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "uid-%d", i);
		uidmap_put(&m, key, i % 2 ? M_DELIVERED : M_DELETED);
	}
	CHECK(m.n == 5000, "5000 entries");
	CHECK(uidmap_get(&m, "uid-4999") == M_DELIVERED, "lookup after growth");
	CHECK(uidmap_get(&m, "uid-0") == M_DELETED, "first entry kept");
	CHECK(uidmap_get(&m, "nope") == M_NONE, "absent key");
	uidmap_put(&m, "uid-0", M_FAILED);
	CHECK(uidmap_get(&m, "uid-0") == M_FAILED && m.n == 5000, "overwrite");
	CHECK(mstate_parse("delivered") == M_DELIVERED, "state names round-trip");
	CHECK(mstate_parse("bogus") == M_NONE, "unknown state name");
	uidmap_free(&m);
}

int main(void)
{
	fromline();
	quoting();
	whole_lines();
	map();
	return UNIT_DONE();
}
