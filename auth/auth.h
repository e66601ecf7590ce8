/* Authentication: who is calling, and API key management.
 *
 * Three kinds of credential, all as "Authorization: Bearer <token>":
 *   - the admin token (config, environment, or generated into the state
 *     directory): everything, including API key management;
 *   - API keys "sk-nova-..." (also accepted as "X-API-Key"): every route
 *     but API key management;
 *   - node tokens (issued per node): only that node's heartbeat (inventory).
 * Only hashes are kept; every comparison is constant-time. */
#ifndef NOVA_AUTH_AUTH_H
#define NOVA_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"
#include "core/secret.h"

#define AUTH_APIKEY_PREFIX "sk-nova-"
#define AUTH_ID_LEN 37

enum auth_kind {
	AUTH_NONE = 0,
	AUTH_ADMIN,
	AUTH_APIKEY,
};

struct auth_principal {
	enum auth_kind kind;
	char id[AUTH_ID_LEN]; /* API key id; "" for admin */
};

struct auth;

/* admin_token must be non-empty; only its hash is kept. */
int auth_create(struct auth **out, struct db_pool *db, const char *admin_token,
		struct nova_err *err);
void auth_destroy(struct auth *a);

/* Identify the caller from the Authorization (or X-API-Key) header value.
 * Missing, malformed, unknown or revoked -> NOVA_EUNAUTH; a database outage
 * -> NOVA_EUNAVAIL (never treated as "unknown"). */
int auth_authenticate(struct auth_principal *out, struct auth *a, const char *authorization,
		      const char *x_api_key, struct nova_err *err);

/* Read <state_dir>/admin_token, or create it (mode 0600, in a directory
 * created 0700) with a fresh token. *generated says which happened. */
int auth_admin_token_load_or_create(char *out, size_t out_len, bool *generated,
				    const char *state_dir, struct nova_err *err);

struct auth_apikey {
	char id[AUTH_ID_LEN];
	char name[65];
	char prefix[17];
	char created_at[40];
	char last_used_at[40]; /* "" when never */
	char revoked_at[40];   /* "" when active */
};

/* key_out receives the full key, shown once. */
int auth_apikey_create(struct auth_apikey *out, char *key_out, size_t key_len, struct auth *a,
		       const char *name, struct nova_err *err);
int auth_apikey_list(struct auth_apikey **out, size_t *n_out, struct auth *a,
		     struct nova_err *err);
/* Idempotent for a known id; NOVA_ENOTFOUND for an unknown one. */
int auth_apikey_revoke(struct auth *a, const char *id, struct nova_err *err);

#endif
