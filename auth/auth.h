/* Authentication: who is calling and what it may do; API key management.
 *
 * Three kinds of credential:
 *   - the admin token (config, environment, or generated into the state
 *     directory), as "Authorization: Bearer <token>" or
 *     "X-Admin-Secret: <token>": every scope;
 *   - API keys "sk-nova-...", as "Authorization: Bearer <key>" or
 *     "X-API-Key: <key>": the scopes given at creation, until revoked or
 *     past their expires_at;
 *   - node tokens (issued per node): only that node's heartbeat (inventory).
 * A request carrying two different credentials (say an API key as
 * X-API-Key and another as Authorization) is refused (NOVA_EINVAL, 400):
 * rejected, letting one win, because a proxy that adds its own header
 * would silently turn the caller into someone else. The same value twice
 * is one credential. Only hashes are kept; every comparison is
 * constant-time.
 *
 * Scopes (the route table in gateway/gateway.c names the one each route
 * needs):
 *   admin      everything the admin token may, API keys included
 *   write      create, change and delete pools, models, deployments;
 *              cordon, uncordon and drain nodes
 *   read       every GET but API keys (and audit), /metrics included
 *   routes     GET /v1/routes and /v1/routes/watch only
 *   router     what nova-router needs: routes and their watch, the hashes
 *              and scopes of API keys (GET /v1/router/keys; later reporting
 *              demand)
 *   inference  requests through nova-router; no novad route needs it
 * Implied: admin -> all; read -> routes; router -> routes. Nothing else:
 * write does not imply read (a deploy script asks for both, and keys from
 * before scopes have both), so each scope grants what its name says and a
 * key's listing is the whole of what it may do. */
#ifndef NOVA_AUTH_AUTH_H
#define NOVA_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "audit/audit.h"
#include "core/db.h"
#include "core/err.h"
#include "core/secret.h"

#define AUTH_APIKEY_PREFIX "sk-nova-"
#define AUTH_ID_LEN 37
#define AUTH_NAME_LEN 65 /* a key's name: 64 characters at most */

/* Scopes as bits, so a key's set is one word in the cache and a check is
 * a mask. The names are the API's and sql/0010's. */
enum auth_scope {
	AUTH_SCOPE_ADMIN = 1u << 0,
	AUTH_SCOPE_WRITE = 1u << 1,
	AUTH_SCOPE_READ = 1u << 2,
	AUTH_SCOPE_ROUTES = 1u << 3,
	AUTH_SCOPE_ROUTER = 1u << 4,
	AUTH_SCOPE_INFERENCE = 1u << 5,
};
#define AUTH_SCOPES_ALL 0x3fu
#define AUTH_SCOPE_COUNT 6

/* "admin", ...; NULL for anything but one AUTH_SCOPE_* bit. */
const char *auth_scope_name(unsigned scope);
/* NOVA_EINVAL for an unknown name. */
int auth_scope_parse(unsigned *out, const char *name);
/* "read, routes" (in the order above); "none" for 0. */
void auth_scopes_format(char *buf, size_t len, unsigned scopes);
/* Whether a credential holding scopes may use a route needing need (one
 * AUTH_SCOPE_* bit), implications included. */
bool auth_scopes_allow(unsigned scopes, unsigned need);

enum auth_kind {
	AUTH_NONE = 0,
	AUTH_ADMIN,
	AUTH_APIKEY,
};

struct auth_principal {
	enum auth_kind kind;
	char id[AUTH_ID_LEN]; /* API key id; "" for admin */
	char name[AUTH_NAME_LEN]; /* API key name; "" for admin */
	unsigned scopes;      /* AUTH_SCOPE_* bits as granted; AUTH_SCOPES_ALL for admin */
};

struct auth;

/* The admin token's own rules (at least 16 characters): NOVA_EINVAL,
 * field admin_token. novad calls it before it starts or touches a
 * database; auth_create checks again. */
int auth_admin_token_check(const char *admin_token, struct nova_err *err);

/* admin_token must pass auth_admin_token_check; only its hash is kept. */
int auth_create(struct auth **out, struct db_pool *db, const char *admin_token,
		struct nova_err *err);
void auth_destroy(struct auth *a);

/* The credential headers of one request; NULL when absent. */
struct auth_headers {
	const char *authorization; /* "Bearer <admin token or api key>" */
	const char *x_api_key;     /* an api key (the admin token is taken too) */
	const char *x_admin_secret; /* the admin token only */
};

/* Identify the caller. Missing, malformed, unknown, revoked or expired ->
 * NOVA_EUNAUTH; two different credentials -> NOVA_EINVAL (field: the
 * second header); a database outage -> NOVA_EUNAVAIL (never treated as
 * "unknown"). A key read once keeps working from memory, with its scopes
 * and expiry, while the database is away. */
int auth_authenticate(struct auth_principal *out, struct auth *a, const struct auth_headers *h,
		      struct nova_err *err);

/* Read <state_dir>/admin_token, or create it (mode 0600, in a directory
 * created 0700) with a fresh token. *generated says which happened. */
int auth_admin_token_load_or_create(char *out, size_t out_len, bool *generated,
				    const char *state_dir, struct nova_err *err);

struct auth_apikey {
	char id[AUTH_ID_LEN];
	char name[AUTH_NAME_LEN];
	char prefix[17];
	char created_at[40];
	char last_used_at[40]; /* "" when never */
	char revoked_at[40];   /* "" when active */
	char expires_at[40];   /* "" when never */
	unsigned scopes;
};

/* What a new key is given. scopes must be non-empty: rejected, a default
 * (all, or write + read), because a key made without thought would then
 * be all-powerful; the caller names what it needs. */
struct auth_apikey_spec {
	const char *name;
	unsigned scopes;
	const char *expires_at; /* RFC 3339, in the future; NULL: never */
};

/* Parse strict RFC 3339 ("2030-01-02T03:04:05Z", fraction and offset
 * allowed) into seconds since the epoch. NOVA_EINVAL naming field. */
int auth_rfc3339_parse(long long *out, const char *s, const char *field, struct nova_err *err);

/* key_out receives the full key, shown once. NOVA_EINVAL naming name,
 * scopes or expires_at. Creating and revoking record the request's audit
 * note (audit/audit.h) in their own transaction; NULL for none. */
int auth_apikey_create(struct auth_apikey *out, char *key_out, size_t key_len, struct auth *a,
		       const struct auth_apikey_spec *spec, struct audit_note *audit,
		       struct nova_err *err);
int auth_apikey_list(struct auth_apikey **out, size_t *n_out, struct auth *a,
		     struct nova_err *err);
/* Idempotent for a known id; NOVA_ENOTFOUND for an unknown one. */
int auth_apikey_revoke(struct auth *a, const char *id, struct audit_note *audit,
		       struct nova_err *err);

/* What nova-router needs to check API keys itself, from memory: every
 * active key (not revoked, not past its expiry) as its SHA-256 (the hex
 * novad stores), its scopes and its expiry, never a secret:
 *   {"keys": [{"hash": "<64 hex>", "scopes": ["inference"],
 *              "expires_at": <unix seconds> | null}, ...]}
 * sorted by hash, so every novad renders one set of keys as one text, with
 * one ETag (W/"<hash of the text>"), the same on every novad.
 * Every active key, not only those with the inference scope: the router
 * then answers a known key without the scope 403, as novad does, instead
 * of 401 (rejected: inference keys alone, which made a read-only key look
 * unknown there). The hashes are of 256-bit random tokens, so they give
 * nothing to guess from.
 * Read from the database at most once per AUTH_ROUTER_KEYS_TTL_MS and
 * shared by every caller meanwhile, so routers may poll every second
 * whatever their number; a revocation through this novad is seen by the
 * next read at once. While the database is away the last text read serves
 * (a revocation then waits for it, as on novad); before any read,
 * NOVA_EUNAVAIL. *text is the caller's. */
#define AUTH_ROUTER_KEYS_TTL_MS 500
#define AUTH_ROUTER_KEYS_ETAG_LEN 40
int auth_router_keys(char **text, char etag[AUTH_ROUTER_KEYS_ETAG_LEN], struct auth *a,
		     struct nova_err *err);

#endif
