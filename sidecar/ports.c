#include "sidecar/sidecar_int.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool sidecar_ports_default(unsigned *lo_out, unsigned *hi_out, const char *ephemeral)
{
	unsigned start = 32768, end = 60999;
	if (ephemeral && (sscanf(ephemeral, "%u %u", &start, &end) != 2 || start < 1 ||
			  start > end || end > 65535))
		start = 32768, end = 60999;
	/* Below the ephemeral range first: Linux's default leaves 20000-32767,
	 * clear of most well-known services. Else above it, else from 1024. */
	if (start > SIDECAR_PORTS_LOW && start - SIDECAR_PORTS_LOW >= SIDECAR_PORTS_MIN_SPAN) {
		*lo_out = SIDECAR_PORTS_LOW, *hi_out = start - 1;
		return true;
	}
	if (65535 - end >= SIDECAR_PORTS_MIN_SPAN) {
		*lo_out = end + 1, *hi_out = 65535;
		return true;
	}
	if (start > 1024 && start - 1024 >= SIDECAR_PORTS_MIN_SPAN) {
		*lo_out = 1024, *hi_out = start - 1;
		return true;
	}
	/* Nothing outside it is wide enough: overlap it, and count on the bind
	 * test and the quick retry on another port (sidecar.c). */
	*lo_out = SIDECAR_PORTS_LOW, *hi_out = 32767;
	return false;
}

int sidecar_ports_parse(unsigned *lo_out, unsigned *hi_out, const char *s, struct nova_err *err)
{
	unsigned long lo, hi;
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		goto bad;
	lo = strtoul(s, &end, 10);
	if (errno || *end != '-' || !isdigit((unsigned char)end[1]))
		goto bad;
	s = end + 1;
	hi = strtoul(s, &end, 10);
	if (errno || *end || lo < 1024 || lo > hi || hi > 65535)
		goto bad;
	*lo_out = (unsigned)lo, *hi_out = (unsigned)hi;
	return 0;
bad:
	return nova_err_set(err, NOVA_EINVAL, "--engine-ports",
			    "--engine-ports must be LO-HI with 1024 <= LO <= HI <= 65535");
}

static bool port_bind_ok(int family, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int zero = 0, fd;
	bool ok;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons((uint16_t)port);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		a->sin_port = htons((uint16_t)port);
		len = sizeof(*a);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) /* no IPv6 on this host: nothing can hold a v6 port */
		return family == AF_INET6 && errno == EAFNOSUPPORT;
	/* Dual stack, so that a v4 listener on the port counts as well. */
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0 ||
	     (family == AF_INET6 && errno == EADDRNOTAVAIL);
	close(fd);
	return ok;
}

bool sidecar_port_free(unsigned port)
{
	/* Wildcard addresses: an engine may listen on any of them, and a bind
	 * to the wildcard fails when any address holds the port. */
	return port > 0 && port <= 65535 && port_bind_ok(AF_INET, port) &&
	       port_bind_ok(AF_INET6, port);
}

bool sidecar_port_listened(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct pollfd p = {.events = POLLOUT};
	int e = 0;
	socklen_t len = sizeof(e);
	bool up;
	/* Non-blocking: a listener with a full backlog must not stall the
	 * sidecar's loop for the kernel's SYN retries. */
	if ((p.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return false;
	if (connect(p.fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		up = true;
	else
		up = errno == EINPROGRESS && poll(&p, 1, 200) == 1 &&
		     getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0;
	close(p.fd);
	return up;
}

unsigned sidecar_port_pick(unsigned lo, unsigned hi, const unsigned *taken, size_t n_taken,
			   uint32_t rnd)
{
	if (lo == 0 || lo > hi || hi > 65535)
		return 0;
	unsigned span = hi - lo + 1;
	for (unsigned i = 0; i < span; i++) {
		unsigned port = lo + (unsigned)((rnd + (uint64_t)i) % span);
		bool ours = false;
		for (size_t j = 0; j < n_taken && !ours; j++)
			ours = taken[j] == port;
		if (!ours && sidecar_port_free(port))
			return port;
	}
	return 0;
}
