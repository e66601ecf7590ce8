/* Internals of inventory/ shared between its files (and its tests): the
 * check of the endpoints nodes report.
 *
 * A node's token could publish any string as its replica's endpoint
 * (file:///etc/shadow, javascript:, an address on another host, a CRLF
 * string) and /v1/routes served it as is: an engine given the node's
 * token, or a stolen token, could point the node's routes anywhere. An
 * endpoint is now taken only when it is "http" or "https" :// host : port,
 * with nothing else (no user information, path, query, fragment, percent
 * sign, space or control character), and its host is the node's own
 * address as its provider recorded it (nodes.endpoint: lpu agents and fake
 * nodes 127.0.0.1, an ssh host's address, a pod's IP). Names and addresses
 * are compared in one canonical form (IPv4 as IPv4-mapped IPv6, names in
 * lower case), so "127.1" or "0x7f.0.0.1" is not 127.0.0.1 (they are
 * refused as hosts that are all digits and dots but no IPv4 address). A
 * loopback node address allows any loopback host (127/8, ::1, localhost).
 * Rejected: checking the host by resolving it (the answer depends on the
 * resolver at the time, and a name that resolves to the node today can be
 * pointed elsewhere tomorrow). */
#ifndef NOVA_INVENTORY_INVENTORY_INT_H
#define NOVA_INVENTORY_INVENTORY_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

enum inv_addr_kind {
	INV_ADDR_NONE = 0,   /* the provider recorded no address: nothing is taken */
	INV_ADDR_LOOPBACK,   /* the node's processes are local: any loopback host */
	INV_ADDR_KEY,        /* this address or name only */
};

/* A node's address in 17 bytes: an IP as IPv6 (IPv4-mapped), a name as the
 * first 16 bytes of the SHA-256 of its lower-case form. */
struct inv_addr {
	uint8_t kind;
	unsigned char key[16];
};

/* The address a provider recorded for a node (nodes.endpoint): a bare host
 * ("10.1.2.3", "gpu1.example", "::1"), optionally with ":port", or a URL
 * whose host is taken. "" or anything unreadable: INV_ADDR_NONE. */
void inv_addr_from_provider(struct inv_addr *out, const char *text);

/* Why an endpoint a node reports is refused, or NULL when it is taken
 * (see above). The reason never quotes the endpoint. */
const char *inv_endpoint_refusal(const char *endpoint, const struct inv_addr *node);

/* A heartbeat's body checked field by field (400 naming the field; see
 * inventory_heartbeat in inventory.h for its shape), before anything of it
 * is taken; the outputs borrow from body. Here, not static, for the fuzz
 * target of the heartbeat body (fuzz/fuzz_heartbeat.c). */
int inv_heartbeat_body_check(long long *seq, json_t **capacity, json_t **replicas,
			     const char **generation, json_t **logs, const json_t *body,
			     struct nova_err *err);

/* Shared load's merge rule, for one row of node_loads another novad wrote
 * (takes the inventory's lock; reports, an array of replica reports, is
 * taken): the node's report becomes this one when its
 * heartbeat sequence is above the one held (taken here or read before),
 * and the node's last sequence rises to it; an older or equal one changes
 * nothing but the record of what the table holds (sum: its checksum).
 * Whether it was taken. Here, not static, for tests/inventory. */
struct inventory;
bool inv_loads_merge(struct inventory *inv, const unsigned char id[16], long long seq,
		     uint64_t sum, json_t *reports);

#endif
