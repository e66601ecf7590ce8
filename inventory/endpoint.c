/* The endpoints nodes report: see inventory/inventory_int.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/secret.h"
#include "inventory/inventory_int.h"

#define EP_HOST_MAX 253

struct ep_host {
	bool is_ip, loopback;
	unsigned char key[16];
};

/* One host (no brackets, no port) into its canonical key. */
static bool ep_host_parse(struct ep_host *out, const char *h, size_t len, bool bracketed)
{
	char buf[EP_HOST_MAX + 1];
	struct in_addr v4;
	bool digits_dots = true;
	memset(out, 0, sizeof(*out));
	if (len == 0 || len > EP_HOST_MAX)
		return false;
	memcpy(buf, h, len);
	buf[len] = '\0';
	if (bracketed || strchr(buf, ':')) {
		if (inet_pton(AF_INET6, buf, out->key) != 1)
			return false;
		static const unsigned char one[16] = {[15] = 1};
		out->is_ip = true;
		out->loopback = memcmp(out->key, one, 16) == 0 ||
				(out->key[10] == 0xff && out->key[11] == 0xff &&
				 !memcmp(out->key, (const unsigned char[10]){0}, 10) && out->key[12] == 127);
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (!isalnum(c) && c != '-' && c != '.')
			return false;
		if (!isdigit(c) && c != '.')
			digits_dots = false;
		buf[i] = (char)tolower(c);
	}
	if (buf[0] == '-' || buf[0] == '.')
		return false;
	if (digits_dots) {
		/* Only a dotted quad: "127.1", "2130706433" and friends name an
		 * address in some parsers and nothing in others. */
		if (inet_pton(AF_INET, buf, &v4) != 1)
			return false;
		out->key[10] = out->key[11] = 0xff;
		memcpy(out->key + 12, &v4, 4);
		out->is_ip = true;
		out->loopback = out->key[12] == 127;
		return true;
	}
	unsigned char sum[32];
	secret_sha256(sum, buf, len);
	memcpy(out->key, sum, 16);
	out->loopback = strcmp(buf, "localhost") == 0;
	return true;
}

/* "host:port", "[v6]:port", and with port_optional "host", "[v6]", or a
 * bare IPv6 address. NULL when fine, else the reason. */
static const char *ep_authority(struct ep_host *host, const char *a, size_t len, bool port_optional)
{
	const char *port = NULL;
	size_t hlen;
	if (memchr(a, '@', len))
		return "the endpoint must not carry user information";
	if (len && a[0] == '[') {
		const char *close = memchr(a, ']', len);
		if (!close)
			return "the endpoint's host is not a valid address or name";
		hlen = (size_t)(close - a - 1);
		if ((size_t)(close - a) + 1 < len) {
			if (close[1] != ':')
				return "the endpoint's host is not a valid address or name";
			port = close + 2;
		}
		if (!ep_host_parse(host, a + 1, hlen, true))
			return "the endpoint's host is not a valid address or name";
	} else {
		const char *colon = memchr(a, ':', len);
		if (colon && port_optional && memchr(colon + 1, ':', len - (size_t)(colon + 1 - a))) {
			/* A bare IPv6 address (a provider's record only). */
			if (!ep_host_parse(host, a, len, true))
				return "the endpoint's host is not a valid address or name";
			return NULL;
		}
		hlen = colon ? (size_t)(colon - a) : len;
		if (colon)
			port = colon + 1;
		if (!ep_host_parse(host, a, hlen, false))
			return "the endpoint's host is not a valid address or name";
	}
	if (!port) {
		return port_optional ? NULL : "the endpoint must name a port (http://host:port)";
	}
	size_t plen = len - (size_t)(port - a);
	unsigned long v = 0;
	if (plen == 0 || plen > 5)
		return "the endpoint's port must be a number from 1 to 65535";
	for (size_t i = 0; i < plen; i++) {
		if (!isdigit((unsigned char)port[i]))
			return "the endpoint's port must be a number from 1 to 65535";
		v = v * 10 + (unsigned long)(port[i] - '0');
	}
	if (v < 1 || v > 65535)
		return "the endpoint's port must be a number from 1 to 65535";
	return NULL;
}

void inv_addr_from_provider(struct inv_addr *out, const char *text)
{
	struct ep_host h;
	const char *a = text ? text : "", *sep = strstr(a, "://");
	size_t len;
	memset(out, 0, sizeof(*out));
	if (sep)
		a = sep + 3;
	len = strcspn(a, "/?#");
	if (len == 0 || ep_authority(&h, a, len, true))
		return;
	out->kind = h.loopback ? INV_ADDR_LOOPBACK : INV_ADDR_KEY;
	memcpy(out->key, h.key, 16);
}

const char *inv_endpoint_refusal(const char *endpoint, const struct inv_addr *node)
{
	struct ep_host h;
	const char *a, *why;
	size_t len;
	for (const char *p = endpoint; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "the endpoint has a space, a control character or a non-ASCII byte";
	if (strchr(endpoint, '%') || strchr(endpoint, '\\'))
		return "the endpoint must not hold '%' or '\\'";
	if (!strncmp(endpoint, "http://", 7))
		a = endpoint + 7;
	else if (!strncmp(endpoint, "https://", 8))
		a = endpoint + 8;
	else
		return "the endpoint must be an http:// or https:// URL";
	len = strcspn(a, "/?#");
	if (a[len] && strcmp(a + len, "/") != 0)
		return "the endpoint must be scheme://host:port, with no path, query or fragment";
	if ((why = ep_authority(&h, a, len, false)))
		return why;
	switch (node->kind) {
	case INV_ADDR_LOOPBACK:
		return h.loopback ? NULL : "the endpoint's host is not the node's address (a loopback one)";
	case INV_ADDR_KEY:
		return memcmp(h.key, node->key, 16) == 0 ? NULL
							  : "the endpoint's host is not the node's address";
	default:
		return "the node's provider recorded no address for it, so no endpoint is taken";
	}
}
