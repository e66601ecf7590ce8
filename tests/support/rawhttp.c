#include "tests/support/rawhttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RAWHTTP_MAX (1u << 20)

char *rawhttp_exchange(unsigned port, const char *request, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	struct timeval tv = {10, 0};
	size_t cap = 65536, n = 0;
	char *buf;
	ssize_t got;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || !(buf = malloc(cap))) {
		close(fd);
		return NULL;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	for (;;) {
		if (n + 1 == cap) {
			char *bigger = cap < RAWHTTP_MAX ? realloc(buf, cap * 2) : NULL;
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
		if ((got = recv(fd, buf + n, cap - 1 - n, 0)) <= 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	close(fd);
	return buf;
}

const char *rawhttp_header(char *buf, size_t len, const char *answer, const char *name)
{
	const char *end = strstr(answer, "\r\n\r\n");
	size_t nl = strlen(name);
	for (const char *p = strstr(answer, "\r\n"); p && (!end || p < end); p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
			const char *v = p + 2 + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", (int)strcspn(v, "\r\n"), v);
			return buf;
		}
	}
	return NULL;
}
