/* floor.c — the fastest POP3 client possible for the benchmark: the floor.
 *
 *   floor HOST PORT USER PASS COUNT OUT [CAFILE]
 *
 * Logs in (USER/PASS, one round trip), then sends every command at once —
 * UIDL, RETR 1..COUNT (none when COUNT is 0), QUIT — and writes the whole
 * reply stream to OUT until the server closes the connection.  It parses
 * nothing, unstuffs nothing and fsyncs nothing: no real client can do less.
 * With CAFILE the connection is POP3S (TLS from the start, certificate
 * checked against CAFILE).  Exits 0 when the stream ends with QUIT's +OK.
 *
 * Built by bench/run.sh: cc -O2 -o floor floor.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int fd = -1;
static SSL *ssl;

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, errno ? strerror(errno) : "failed");
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* >0 bytes, 0 EOF, -1 would block */
static ssize_t rd(char *b, size_t n)
{
	if (ssl) {
		int r = SSL_read(ssl, b, (int)n);
		if (r > 0)
			return r;
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -1;
		if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
			return 0;
		die("SSL_read");
	}
	ssize_t r = read(fd, b, n);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (r < 0)
		die("read");
	return r;
}

static ssize_t wr(const char *b, size_t n)
{
	if (ssl) {
		int r = SSL_write(ssl, b, (int)n);
		if (r > 0)
			return r;
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -1;
		die("SSL_write");
	}
	ssize_t r = write(fd, b, n);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (r < 0)
		die("write");
	return r;
}

/* Blocking-style: wait until one full line starting "+OK" arrives. */
static void expect_ok(char *buf, size_t *have)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *have);
		if (nl) {
			if (strncmp(buf, "+OK", 3) != 0) {
				fprintf(stderr, "floor: server said: %.*s\n", (int)(nl - buf), buf);
				exit(1);
			}
			size_t used = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, *have - used);
			*have -= used;
			return;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		if (!(ssl && SSL_pending(ssl)))
			poll(&p, 1, -1);
		ssize_t r = rd(buf + *have, 4096 - *have);
		if (r == 0) {
			fprintf(stderr, "floor: connection closed during login\n");
			exit(1);
		}
		if (r > 0)
			*have += (size_t)r;
	}
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: floor HOST PORT USER PASS COUNT OUT [CAFILE]\n");
		return 64;
	}
	long count = atol(argv[5]);
	int out = open(argv[6], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0)
		die(argv[6]);

	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	if (argc > 7) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[7], NULL) != 1)
			die("CA file");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		SSL_set1_host(ssl, argv[1]);
		if (SSL_connect(ssl) != 1)
			die("TLS handshake");
	}

	char lb[4096];
	size_t have = 0;
	expect_ok(lb, &have);                           /* greeting */
	char login[600];
	int ln = snprintf(login, sizeof login, "USER %s\r\nPASS %s\r\n", argv[3], argv[4]);
	for (int off = 0; off < ln;) {
		ssize_t w = wr(login + off, (size_t)(ln - off));
		if (w > 0)
			off += (int)w;
	}
	expect_ok(lb, &have);
	expect_ok(lb, &have);

	/* every command at once */
	size_t cap = 64 + (size_t)count * 24, len = 0;
	char *cmds = malloc(cap);
	len += (size_t)sprintf(cmds + len, "UIDL\r\n");
	for (long i = 1; i <= count; i++)
		len += (size_t)sprintf(cmds + len, "RETR %ld\r\n", i);
	len += (size_t)sprintf(cmds + len, "QUIT\r\n");

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	size_t bufsz = 1 << 20, sent = 0;
	char *buf = malloc(bufsz);
	char tail[8] = { 0 };
	if (have)
		write(out, lb, have);
	int eof = 0;
	unsigned long long total = have;
	while (!eof) {
		if (sent < len) {
			ssize_t w = wr(cmds + sent, len - sent);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r;
		int got = 0;
		while ((r = rd(buf, bufsz)) > 0) {
			if (write(out, buf, (size_t)r) != r)
				die("write OUT");
			total += (unsigned long long)r;
			if (r >= 5)
				memcpy(tail, buf + r - 5, 5);
			else {
				memmove(tail, tail + r, (size_t)(5 - r));
				memcpy(tail + 5 - r, buf, (size_t)r);
			}
			got = 1;
		}
		if (r == 0) {
			eof = 1;
			break;
		}
		if (!got) {
			struct pollfd p = { fd, POLLIN | (sent < len ? POLLOUT : 0), 0 };
			poll(&p, 1, -1);
		}
	}
	close(out);
	if (ssl)
		SSL_shutdown(ssl);
	close(fd);
	fprintf(stderr, "floor: %llu bytes\n", total);
	/* QUIT's reply is the last line: "+OK Logging out.\r\n" for Dovecot */
	return memmem(tail, 5, "\r\n", 2) ? 0 : 1;
}
