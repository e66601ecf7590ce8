/* Identifiers: UUIDs (libuuid) for every Nova object. */
#ifndef NOVA_CORE_IDS_H
#define NOVA_CORE_IDS_H

#include <stdbool.h>

#define IDS_UUID_LEN 37 /* 36 characters + NUL */

/* A new random (version 4) UUID, lower case. */
void ids_uuid_generate(char out[IDS_UUID_LEN]);
/* True for the canonical 8-4-4-4-12 hexadecimal form. */
bool ids_is_uuid(const char *s);
/* The 16 bytes of a UUID in canonical form (either case); false if it is not
 * one. And back, lower case. For tables that keep many ids (36 -> 16 bytes). */
bool ids_uuid_parse(unsigned char out[16], const char *s);
void ids_uuid_format(char out[IDS_UUID_LEN], const unsigned char in[16]);
/* True for a DNS label: 1 to 63 of [a-z0-9-], not starting or ending with
 * '-'. Pools and deployments are named so (they become Kubernetes names). */
bool ids_is_dns_label(const char *s);

/* This machine's identity, for what only a novad on one machine may do
 * (its lpu agents are that machine's processes): the configured one
 * (novad.yaml machine_id; containers on one host may share
 * /etc/machine-id), else /etc/machine-id, /var/lib/dbus/machine-id, else
 * the host name (read once). At most IDS_MACHINE_LEN - 1 characters. */
#define IDS_MACHINE_LEN 65
void ids_machine_id(char out[IDS_MACHINE_LEN]);
/* Set it (NULL or "": read it from the machine again). Once, before
 * threads start. false when it is not 1 to 64 of [A-Za-z0-9._-]. */
bool ids_machine_id_set(const char *id);

#endif
