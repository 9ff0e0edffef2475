/* smtp-sink.c — an SMTP server on 127.0.0.1 that answers at once and keeps
 * nothing: what forwarding costs popsift itself, with a server that costs
 * next to nothing (bench/smtp.py builds and runs it).
 *
 *   smtp-sink PORT [COUNTFILE]
 *                       prints "ready", serves one connection at a time
 *                       until SIGTERM, then prints
 *                       "messages=M connections=C bytes=B"; with
 *                       COUNTFILE, appends a line to it per message
 *
 * Not an SMTP implementation: every command gets 250, DATA gets 354 and
 * the data is skipped up to CRLF.CRLF. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static int countfd = -1;
static long messages, connections;
static long long bytes;

static void on_term(int sig) { (void)sig; stop = 1; }

static void say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		return;   /* the client went away: the read loop notices */
}

/* Consume what buf holds; returns bytes used.  *data: inside DATA. */
static size_t serve(int fd, char *buf, size_t len, int *data)
{
	size_t used = 0;
	for (;;) {
		char *p = buf + used;
		size_t n = len - used;
		if (*data) {
			char *e = memmem(p, n, "\r\n.\r\n", 5);
			if (e == NULL && n <= 4)
				return used;
			if (e == NULL) {   /* keep a tail that may hold half the marker */
				bytes += (long long)n - 4;
				return len - 4;
			}
			bytes += e - p;
			used += (size_t)(e - p) + 5;
			*data = 0;
			messages++;
			if (countfd >= 0)
				dprintf(countfd, "%ld\n", messages);
			say(fd, "250 2.0.0 ok\r\n");
			continue;
		}
		char *nl = memmem(p, n, "\r\n", 2);
		if (nl == NULL)
			return used;
		if (!strncasecmp(p, "EHLO", 4))
			say(fd, "250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n");
		else if (!strncasecmp(p, "QUIT", 4))
			say(fd, "221 bye\r\n");
		else if (!strncasecmp(p, "DATA", 4)) {
			say(fd, "354 go\r\n");
			*data = 1;
			used += (size_t)(nl - p);   /* the CRLF starts the CRLF.CRLF search */
			continue;
		} else
			say(fd, "250 ok\r\n");
		used += (size_t)(nl - p) + 2;
	}
}

static void client(int fd)
{
	static char buf[1 << 20];
	size_t len = 0;
	int data = 0, one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	connections++;
	say(fd, "220 smtp-sink\r\n");
	while (!stop) {
		ssize_t r = read(fd, buf + len, sizeof buf - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		size_t used = serve(fd, buf, len, &data);
		memmove(buf, buf + used, len - used);
		len -= used;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return fprintf(stderr, "usage: smtp-sink PORT [COUNTFILE]\n"), 64;
	if (argc == 3 && (countfd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644)) < 0) {
		perror(argv[2]);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0) {
		perror("smtp-sink");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int fd = accept(ls, NULL, NULL);
		if (fd >= 0)
			client(fd);
		else if (errno != EINTR)
			break;
	}
	printf("messages=%ld connections=%ld bytes=%lld\n", messages, connections, bytes);
	return 0;
}
