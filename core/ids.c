#include "core/ids.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "core/hex.h"

void ids_uuid_generate(char out[IDS_UUID_LEN])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool ids_is_uuid(const char *s)
{
	unsigned char u[16];
	return ids_uuid_parse(u, s);
}

/* Written out (with core/hex) rather than libuuid's uuid_parse and
 * uuid_unparse, which go through strtoul and sprintf byte by byte: on the
 * heartbeat path they cost more than the table lookup. */
static const size_t ids_groups[5] = {4, 2, 2, 2, 6}; /* bytes between dashes */

bool ids_uuid_parse(unsigned char out[16], const char *s)
{
	size_t o = 0;
	if (!s)
		return false;
	for (size_t g = 0; g < 5; g++) {
		if (g > 0 && *s++ != '-')
			return false;
		if (!hex_decode(out + o, s, ids_groups[g]))
			return false;
		s += 2 * ids_groups[g];
		o += ids_groups[g];
	}
	return *s == '\0';
}

void ids_uuid_format(char out[IDS_UUID_LEN], const unsigned char in[16])
{
	size_t i = 0;
	for (size_t g = 0; g < 5; g++) {
		if (g > 0)
			*out++ = '-';
		hex_encode(out, in + i, ids_groups[g]);
		out += 2 * ids_groups[g];
		i += ids_groups[g];
	}
}

bool ids_is_dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static char ids_machine[IDS_MACHINE_LEN];

static bool ids_machine_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n >= IDS_MACHINE_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

bool ids_machine_id_set(const char *id)
{
	if (id && *id && !ids_machine_ok(id))
		return false;
	snprintf(ids_machine, sizeof(ids_machine), "%s", id ? id : "");
	return true;
}

/* The machine's own id, read once: callers ask on every worker poll and
 * reconciler pass. */
static char ids_machine_read[IDS_MACHINE_LEN];
static pthread_once_t ids_machine_once = PTHREAD_ONCE_INIT;

static void ids_machine_read_once(void)
{
	static const char *const files[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = fopen(files[i], "r");
		char line[IDS_MACHINE_LEN + 2] = "";
		if (!f)
			continue;
		bool got = fgets(line, sizeof(line), f) != NULL;
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		if (got && ids_machine_ok(line)) {
			/* ids_machine_ok bounds it; the precision says so to the compiler. */
			snprintf(ids_machine_read, sizeof(ids_machine_read), "%.*s",
				 (int)sizeof(ids_machine_read) - 1, line);
			return;
		}
	}
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0 || !ids_machine_ok(host))
		snprintf(host, sizeof(host), "localhost");
	snprintf(ids_machine_read, sizeof(ids_machine_read), "%.64s", host);
}

void ids_machine_id(char out[IDS_MACHINE_LEN])
{
	if (ids_machine[0]) {
		memcpy(out, ids_machine, IDS_MACHINE_LEN);
		return;
	}
	pthread_once(&ids_machine_once, ids_machine_read_once);
	memcpy(out, ids_machine_read, IDS_MACHINE_LEN);
}
