#include "auth/auth.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"

/* API keys seen valid, so a request is not a query, and so callers with a
 * key keep working while the database is away: an entry younger than
 * AUTH_CACHE_TTL_MS is trusted as it is; an older one is read again, and
 * kept (not dropped) when the database does not answer. A revocation
 * through this novad drops the entry at once; through another novad it
 * takes effect here within the TTL (while the database is up). Only
 * positive answers are kept: an unknown key is a query each time, bounded
 * by the database's deadlines. Scopes and expiry are kept with the
 * entry (scopes never change; expiry is checked against the wall clock on
 * every use, so a key expires on time even from memory). Rejected: reading api_keys on every request
 * (as before), which made every route, the routing table's included, wait
 * on the database and fail with it. */
#define AUTH_CACHE_TTL_MS 10000
#define AUTH_CACHE_MAX 1024
/* last_used_at is written at most this often per key. */
#define AUTH_LAST_USED_MS 60000

struct auth_cached_key {
	char prefix[17];
	char id[AUTH_ID_LEN];
	char name[AUTH_NAME_LEN];
	char key_hash[SECRET_HEX_SHA256_LEN];
	unsigned scopes;
	long long expires_s;   /* wall clock, seconds; 0: never */
	long long checked_ms;  /* CLOCK_MONOTONIC of the last read */
	long long used_ms;     /* last_used_at written then (0: not by us) */
};

struct auth {
	struct db_pool *db;
	char admin_hash[SECRET_HEX_SHA256_LEN];
	pthread_mutex_t lock;
	struct auth_cached_key *keys;
	size_t n_keys, keys_cap;
	/* auth_router_keys: the text last read, its ETag and when (monotonic
	 * ms; 0: to be read again), under lock; rk_refresh is held by the one
	 * caller reading the database, so pollers arriving together make one
	 * query, not one each. */
	pthread_mutex_t rk_refresh;
	char *rk_text;
	char rk_etag[AUTH_ROUTER_KEYS_ETAG_LEN];
	long long rk_read_ms;
	unsigned long rk_revoked; /* revocations through this novad, counted */
};

static long long auth_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cached entry for a prefix (caller holds the lock), or NULL. */
static struct auth_cached_key *auth_cache_find(struct auth *a, const char *prefix)
{
	for (size_t i = 0; i < a->n_keys; i++)
		if (!strcmp(a->keys[i].prefix, prefix))
			return &a->keys[i];
	return NULL;
}

static void auth_cache_drop(struct auth *a, const char *prefix, const char *id)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_keys; i++) {
		if ((prefix && !strcmp(a->keys[i].prefix, prefix)) || (id && !strcmp(a->keys[i].id, id))) {
			explicit_bzero(&a->keys[i], sizeof(a->keys[i]));
			a->keys[i] = a->keys[--a->n_keys];
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
}

static void auth_cache_put(struct auth *a, const char *prefix, const char *id, const char *name,
			   const char *hash, unsigned scopes, long long expires_s)
{
	pthread_mutex_lock(&a->lock);
	struct auth_cached_key *k = auth_cache_find(a, prefix);
	if (!k && a->n_keys == a->keys_cap && a->keys_cap < AUTH_CACHE_MAX) {
		size_t nc = a->keys_cap ? a->keys_cap * 2 : 16;
		struct auth_cached_key *nk = realloc(a->keys, nc * sizeof(*nk));
		if (nk) {
			a->keys = nk;
			a->keys_cap = nc;
		}
	}
	if (!k && a->n_keys < a->keys_cap) {
		k = &a->keys[a->n_keys++];
		memset(k, 0, sizeof(*k));
	}
	if (!k && a->n_keys > 0) {
		/* Full: the entry read longest ago gives way. */
		k = &a->keys[0];
		for (size_t i = 1; i < a->n_keys; i++)
			if (a->keys[i].checked_ms < k->checked_ms)
				k = &a->keys[i];
		memset(k, 0, sizeof(*k));
	}
	if (k) {
		snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
		snprintf(k->id, sizeof(k->id), "%s", id);
		snprintf(k->name, sizeof(k->name), "%s", name);
		snprintf(k->key_hash, sizeof(k->key_hash), "%s", hash);
		k->scopes = scopes;
		k->expires_s = expires_s;
		k->checked_ms = auth_mono_ms();
	}
	pthread_mutex_unlock(&a->lock);
}

static const char *const auth_scope_names[AUTH_SCOPE_COUNT] = {
	"admin", "write", "read", "routes", "router", "inference",
};

const char *auth_scope_name(unsigned scope)
{
	for (unsigned i = 0; i < AUTH_SCOPE_COUNT; i++)
		if (scope == 1u << i)
			return auth_scope_names[i];
	return NULL;
}

int auth_scope_parse(unsigned *out, const char *name)
{
	for (unsigned i = 0; i < AUTH_SCOPE_COUNT; i++)
		if (!strcmp(name, auth_scope_names[i])) {
			*out = 1u << i;
			return 0;
		}
	return NOVA_EINVAL;
}

void auth_scopes_format(char *buf, size_t len, unsigned scopes)
{
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	if (!(scopes & AUTH_SCOPES_ALL)) {
		snprintf(buf, len, "none");
		return;
	}
	for (unsigned i = 0; i < AUTH_SCOPE_COUNT; i++) {
		if (!(scopes & (1u << i)) || used >= len)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", auth_scope_names[i]);
		used += n > 0 ? (size_t)n : 0;
	}
}

bool auth_scopes_allow(unsigned scopes, unsigned need)
{
	if (scopes & AUTH_SCOPE_ADMIN)
		return true;
	if (need == AUTH_SCOPE_ROUTES && (scopes & (AUTH_SCOPE_READ | AUTH_SCOPE_ROUTER)))
		return true;
	return (scopes & need) != 0;
}

/* text[] as PostgreSQL prints it ("{write,read}"); the CHECK of sql/0010
 * keeps the names plain, so no quoting to undo. Unknown names give no bit. */
static unsigned auth_scopes_from_pg(const char *s)
{
	unsigned scopes = 0;
	char name[32];
	while (*s) {
		size_t n = strcspn(s, "{},");
		if (n > 0 && n < sizeof(name)) {
			unsigned bit;
			memcpy(name, s, n);
			name[n] = '\0';
			if (auth_scope_parse(&bit, name) == 0)
				scopes |= bit;
		}
		s += n;
		if (*s)
			s++;
	}
	return scopes;
}

static int auth_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Rejected: handing the text to PostgreSQL's timestamptz input, which
 * also takes "tomorrow", "infinity" and local times without an offset. */
int auth_rfc3339_parse(long long *out, const char *s, const char *field, struct nova_err *err)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p;
	struct tm tm = {0};
	if (strlen(s) < 20 || auth_digits(s, 4, &y) || s[4] != '-' || auth_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || auth_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    auth_digits(s + 11, 2, &h) || s[13] != ':' || auth_digits(s + 14, 2, &mi) ||
	    s[16] != ':' || auth_digits(s + 17, 2, &sec))
		goto bad;
	p = s + 19;
	if (*p == '.') {
		const char *f = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == f)
			goto bad;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (auth_digits(p + 1, 2, &oh) || p[3] != ':' || auth_digits(p + 4, 2, &om))
			goto bad;
		p += 6;
	} else {
		goto bad;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) || h > 23 ||
	    mi > 59 || sec > 60 || oh > 23 || om > 59 || y < 1970)
		goto bad;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (long long)timegm(&tm) - sign * (oh * 3600LL + om * 60LL);
	return 0;
bad:
	nova_err_set(err, NOVA_EINVAL, field, "%s must be an RFC 3339 date-time", field);
	nova_err_set_hint(err, "for example 2030-01-31T00:00:00Z");
	return NOVA_EINVAL;
}

int auth_admin_token_check(const char *admin_token, struct nova_err *err)
{
	if (!admin_token || strlen(admin_token) < 16)
		return nova_err_set(err, NOVA_EINVAL, "admin_token",
				    "admin token must be at least 16 characters");
	return 0;
}

int auth_create(struct auth **out, struct db_pool *db, const char *admin_token,
		struct nova_err *err)
{
	struct auth *a;
	int rc;
	*out = NULL;
	if ((rc = auth_admin_token_check(admin_token, err)))
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	a->db = db;
	secret_sha256_hex(a->admin_hash, admin_token, strlen(admin_token));
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->rk_refresh, NULL);
	*out = a;
	return 0;
}

void auth_destroy(struct auth *a)
{
	if (!a)
		return;
	if (a->keys)
		explicit_bzero(a->keys, a->keys_cap * sizeof(*a->keys));
	free(a->keys);
	free(a->rk_text);
	pthread_mutex_destroy(&a->rk_refresh);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Best effort: last use is informational, never a reason to refuse. The
 * cache writes it at most once a minute per key; the statement does too,
 * for novads sharing the database. */
static void auth_last_used_write(struct auth *a, const char *id)
{
	struct nova_err ignored;
	const char *params[1] = {id};
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_keys; i++)
		if (!strcmp(a->keys[i].id, id))
			a->keys[i].used_ms = auth_mono_ms();
	pthread_mutex_unlock(&a->lock);
	db_pool_exec(NULL, a->db,
		     "UPDATE api_keys SET last_used_at = now() WHERE id = $1 "
		     "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
		     1, params, &ignored);
}

/* A key past its expires_at is refused like a revoked one. */
static int auth_key_accept(struct auth_principal *out, const char *id, const char *name,
			   unsigned scopes, long long expires_s, struct nova_err *err)
{
	if (expires_s && (long long)time(NULL) >= expires_s)
		return nova_err_set(err, NOVA_EUNAUTH, "", "api key expired");
	out->kind = AUTH_APIKEY;
	out->scopes = scopes;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->name, sizeof(out->name), "%s", name);
	return 0;
}

static int auth_apikey_check(struct auth_principal *out, struct auth *a, const char *key,
			     struct nova_err *err)
{
	char prefix[17];
	const char *params[2];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (strlen(key) < 16)
		return nova_err_set(err, NOVA_EUNAUTH, "", "invalid credential");
	memcpy(prefix, key, 16);
	prefix[16] = '\0';
	params[0] = prefix;
	/* The cache first: a fresh entry answers; a stale one is the answer
	 * of last resort when the database does not. */
	struct auth_cached_key cached = {0};
	bool have = false, write_used = false;
	long long now = auth_mono_ms();
	pthread_mutex_lock(&a->lock);
	struct auth_cached_key *k = auth_cache_find(a, prefix);
	if (k) {
		cached = *k;
		have = true;
		if (now - k->checked_ms < AUTH_CACHE_TTL_MS && now - k->used_ms >= AUTH_LAST_USED_MS &&
		    secret_matches_hash(key, k->key_hash)) {
			k->used_ms = now; /* whoever writes it first; the others need not */
			write_used = true;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (have && now - cached.checked_ms < AUTH_CACHE_TTL_MS) {
		bool ok = secret_matches_hash(key, cached.key_hash);
		rc = ok ? auth_key_accept(out, cached.id, cached.name, cached.scopes, cached.expires_s, err)
			: nova_err_set(err, NOVA_EUNAUTH, "", "invalid or revoked api key");
		explicit_bzero(&cached, sizeof(cached));
		if (rc == 0 && write_used)
			auth_last_used_write(a, out->id);
		return rc;
	}
	if ((rc = db_conn_acquire(&c, a->db, err)) == 0) {
		rc = db_exec(&res, c,
			     "SELECT id, key_hash, scopes, "
			     "coalesce(floor(extract(epoch FROM expires_at))::bigint, 0), name "
			     "FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
			     1, params, err);
		db_conn_release(a->db, c);
	}
	if (rc == NOVA_EUNAVAIL && have) {
		/* The database is away: the key as last read serves. */
		if (secret_matches_hash(key, cached.key_hash))
			rc = auth_key_accept(out, cached.id, cached.name, cached.scopes, cached.expires_s, err);
		explicit_bzero(&cached, sizeof(cached));
		return rc;
	}
	explicit_bzero(&cached, sizeof(cached));
	if (rc == 0 && PQntuples(res) == 1 && secret_matches_hash(key, PQgetvalue(res, 0, 1))) {
		unsigned scopes = auth_scopes_from_pg(PQgetvalue(res, 0, 2));
		long long expires_s = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		/* An expired key stays cached (as refused), so it is refused from
		 * memory as well while the database is away. */
		auth_cache_put(a, prefix, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 4),
			       PQgetvalue(res, 0, 1), scopes, expires_s);
		if ((rc = auth_key_accept(out, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 4), scopes,
					   expires_s, err)) == 0)
			auth_last_used_write(a, out->id);
	} else if (rc == 0) {
		auth_cache_drop(a, prefix, NULL);
		rc = nova_err_set(err, NOVA_EUNAUTH, "", "invalid or revoked api key");
	}
	PQclear(res);
	return rc;
}

/* Header values that carry a token: "" and NULL do not. */
static const char *auth_token_of(const char *v)
{
	while (v && *v == ' ')
		v++;
	return v && *v ? v : NULL;
}

int auth_authenticate(struct auth_principal *out, struct auth *a, const struct auth_headers *h,
		      struct nova_err *err)
{
	const char *bearer = NULL, *key = auth_token_of(h->x_api_key),
		   *admin = auth_token_of(h->x_admin_secret), *token;
	memset(out, 0, sizeof(*out));
	if (h->authorization) {
		if (strncasecmp(h->authorization, "Bearer ", 7) != 0)
			return nova_err_set(err, NOVA_EUNAUTH, "",
					    "authorization header must be \"Bearer <token>\"");
		bearer = auth_token_of(h->authorization + 7);
	}
	token = bearer ? bearer : key ? key : admin;
	if (!token) {
		nova_err_set(err, NOVA_EUNAUTH, "", "authentication required");
		nova_err_set_hint(err, "send \"Authorization: Bearer <admin token or api key>\"");
		return NOVA_EUNAUTH;
	}
	if ((key && strcmp(key, token)) || (admin && strcmp(admin, token))) {
		nova_err_set(err, NOVA_EINVAL, key && strcmp(key, token) ? "X-API-Key" : "X-Admin-Secret",
			     "the request carries two different credentials");
		nova_err_set_hint(err, "send one of Authorization, X-API-Key or X-Admin-Secret");
		return NOVA_EINVAL;
	}
	/* X-Admin-Secret is the admin token's header: an API key there is not
	 * looked up. */
	if (strncmp(token, AUTH_APIKEY_PREFIX, strlen(AUTH_APIKEY_PREFIX)) == 0 && token != admin)
		return auth_apikey_check(out, a, token, err);
	if (secret_matches_hash(token, a->admin_hash)) {
		out->kind = AUTH_ADMIN;
		out->scopes = AUTH_SCOPES_ALL;
		return 0;
	}
	return nova_err_set(err, NOVA_EUNAUTH, "", "invalid credential");
}

int auth_admin_token_load_or_create(char *out, size_t out_len, bool *generated,
				    const char *state_dir, struct nova_err *err)
{
	char path[1100];
	int fd, rc;
	*generated = false;
	if ((rc = files_mkdir_p(state_dir, 0700, "state_dir", err)))
		return rc;
	snprintf(path, sizeof(path), "%s/admin_token", state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		char tok[128];
		if ((rc = secret_token_generate(tok, sizeof(tok), "nova-admin-", err)) == 0) {
			size_t n = strlen(tok);
			if (write(fd, tok, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
				rc = nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot write %s: %s",
						  path, strerror(errno));
		}
		close(fd);
		if (rc) {
			unlink(path);
			return rc;
		}
		snprintf(out, out_len, "%s", tok);
		*generated = true;
		return 0;
	}
	if (errno != EEXIST)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot create %s: %s", path,
				    strerror(errno));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot read %s: %s", path,
				    strerror(errno));
	ssize_t n = read(fd, out, out_len - 1);
	close(fd);
	if (n <= 0)
		return nova_err_set(err, NOVA_EINVAL, "state_dir", "%s is empty or unreadable", path);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static void auth_apikey_from_row(struct auth_apikey *k, PGresult *res, int row)
{
	snprintf(k->id, sizeof(k->id), "%s", PQgetvalue(res, row, 0));
	snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(res, row, 1));
	snprintf(k->prefix, sizeof(k->prefix), "%s", PQgetvalue(res, row, 2));
	snprintf(k->created_at, sizeof(k->created_at), "%s", PQgetvalue(res, row, 3));
	snprintf(k->last_used_at, sizeof(k->last_used_at), "%s", PQgetvalue(res, row, 4));
	snprintf(k->revoked_at, sizeof(k->revoked_at), "%s", PQgetvalue(res, row, 5));
	snprintf(k->expires_at, sizeof(k->expires_at), "%s", PQgetvalue(res, row, 6));
	k->scopes = auth_scopes_from_pg(PQgetvalue(res, row, 7));
}

#define AUTH_APIKEY_COLS                                                                     \
	"id, name, prefix, " DB_TS("created_at") ", " DB_TS("last_used_at") ", "             \
	DB_TS("revoked_at") ", " DB_TS("expires_at") ", scopes"

/* "{write,read}" for the INSERT. */
static void auth_scopes_to_pg(char *buf, size_t len, unsigned scopes)
{
	size_t used = 0;
	snprintf(buf, len, "{");
	used = strlen(buf);
	for (unsigned i = 0; i < AUTH_SCOPE_COUNT && used < len; i++)
		if (scopes & (1u << i)) {
			int n = snprintf(buf + used, len - used, "%s%s", used > 1 ? "," : "",
					 auth_scope_names[i]);
			used += n > 0 ? (size_t)n : 0;
		}
	if (used < len)
		snprintf(buf + used, len - used, "}");
}

int auth_apikey_create(struct auth_apikey *out, char *key_out, size_t key_len, struct auth *a,
		       const struct auth_apikey_spec *spec, struct audit_note *audit,
		       struct nova_err *err)
{
	char key[128], prefix[17], hash[SECRET_HEX_SHA256_LEN], scopes[96], expires[32] = "";
	const char *name = spec->name, *params[5];
	long long expires_s;
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (!name || !*name || strlen(name) > 64)
		return nova_err_set(err, NOVA_EINVAL, "name", "name must be 1 to 64 characters");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return nova_err_set(err, NOVA_EINVAL, "name",
					    "name must not contain control characters");
	if (!spec->scopes || (spec->scopes & ~AUTH_SCOPES_ALL)) {
		nova_err_set(err, NOVA_EINVAL, "scopes", "scopes is required");
		nova_err_set_hint(err, "name at least one of admin, write, read, routes, router, "
				       "inference");
		return NOVA_EINVAL;
	}
	if (spec->expires_at) {
		if ((rc = auth_rfc3339_parse(&expires_s, spec->expires_at, "expires_at", err)))
			return rc;
		if (expires_s <= (long long)time(NULL))
			return nova_err_set(err, NOVA_EINVAL, "expires_at",
					    "expires_at is in the past");
		/* Stored as UTC to the second: PostgreSQL then reads what we
		 * checked, whatever spelling RFC 3339 allowed. */
		time_t t = (time_t)expires_s;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	auth_scopes_to_pg(scopes, sizeof(scopes), spec->scopes);
	if ((rc = secret_token_generate(key, sizeof(key), AUTH_APIKEY_PREFIX, err)))
		return rc;
	memcpy(prefix, key, 16);
	prefix[16] = '\0';
	secret_sha256_hex(hash, key, strlen(key));
	params[0] = name;
	params[1] = prefix;
	params[2] = hash;
	params[3] = scopes;
	params[4] = expires[0] ? expires : NULL;
	if ((rc = db_conn_acquire(&c, a->db, err))) {
		explicit_bzero(key, sizeof(key));
		return rc;
	}
	if ((rc = db_tx_begin(c, err)) == 0)
		rc = db_exec_one(&res, c,
				 "INSERT INTO api_keys (name, prefix, key_hash, scopes, expires_at) "
				 "VALUES ($1, $2, $3, $4::text[], $5::timestamptz) "
				 "RETURNING " AUTH_APIKEY_COLS, 5, params, err);
	if (rc == 0) {
		auth_apikey_from_row(out, res, 0);
		if ((rc = audit_record_tx(c, audit, out->id, err)) == 0)
			rc = db_tx_commit(c, err);
	}
	/* The key leaves only once it exists. */
	if (rc == 0)
		snprintf(key_out, key_len, "%s", key);
	explicit_bzero(key, sizeof(key));
	PQclear(res);
	db_conn_release(a->db, c); /* rolls back what did not commit */
	return rc;
}

int auth_apikey_list(struct auth_apikey **out, size_t *n_out, struct auth *a,
		     struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT " AUTH_APIKEY_COLS " FROM api_keys ORDER BY created_at, id", 0,
		     NULL, err);
	if (rc == 0 && PQntuples(res) > 0) {
		*out = calloc((size_t)PQntuples(res), sizeof(**out));
		if (!*out)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		for (int i = 0; *out && i < PQntuples(res); i++)
			auth_apikey_from_row(&(*out)[i], res, i);
		if (*out)
			*n_out = (size_t)PQntuples(res);
	}
	PQclear(res);
	db_conn_release(a->db, c);
	return rc;
}

int auth_apikey_revoke(struct auth *a, const char *id, struct audit_note *audit,
		       struct nova_err *err)
{
	const char *params[1] = {id};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (!ids_is_uuid(id))
		return nova_err_set(err, NOVA_ENOTFOUND, "id", "no api key with id %s", id);
	auth_cache_drop(a, NULL, id);
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0)
		rc = db_exec_one(&res, c,
				 "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
				 "WHERE id = $1 RETURNING id", 1, params, err);
	if (rc == NOVA_ENOTFOUND)
		nova_err_set(err, NOVA_ENOTFOUND, "id", "no api key with id %s", id);
	if (rc == 0 && (rc = audit_record_tx(c, audit, id, err)) == 0)
		rc = db_tx_commit(c, err);
	PQclear(res);
	db_conn_release(a->db, c); /* rolls back what did not commit */
	/* Routers' next poll reads the keys again; a read under way now may
	 * have missed the commit, and is not taken as current (below). */
	pthread_mutex_lock(&a->lock);
	a->rk_read_ms = 0;
	a->rk_revoked++;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* The keys as routers get them, from the database (auth.h). */
static int auth_router_keys_read(char **text, struct auth *a, struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*text = NULL;
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	rc = db_exec(&res, c,
		     "SELECT key_hash, scopes, "
		     "coalesce(floor(extract(epoch FROM expires_at))::bigint, 0) "
		     "FROM api_keys WHERE revoked_at IS NULL "
		     "AND (expires_at IS NULL OR expires_at > now()) ORDER BY key_hash",
		     0, NULL, err);
	db_conn_release(a->db, c);
	if (rc)
		return rc;
	json_t *list = json_array();
	for (int i = 0; list && i < PQntuples(res); i++) {
		unsigned scopes = auth_scopes_from_pg(PQgetvalue(res, i, 1));
		long long exp = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		json_t *names = json_array();
		for (unsigned b = 0; names && b < AUTH_SCOPE_COUNT; b++)
			if (scopes & (1u << b))
				json_array_append_new(names, json_string(auth_scope_names[b]));
		json_array_append_new(list, json_pack("{s:s, s:o, s:o}", "hash", PQgetvalue(res, i, 0),
						      "scopes", names ? names : json_array(),
						      "expires_at",
						      exp ? json_integer(exp) : json_null()));
	}
	PQclear(res);
	json_t *body = list ? json_pack("{s:o}", "keys", list) : NULL;
	*text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(body);
	return *text ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

int auth_router_keys(char **text, char etag[AUTH_ROUTER_KEYS_ETAG_LEN], struct auth *a,
		     struct nova_err *err)
{
	char *fresh = NULL;
	int rc = 0;
	*text = NULL;
	pthread_mutex_lock(&a->rk_refresh);
	pthread_mutex_lock(&a->lock);
	bool current = a->rk_text && a->rk_read_ms && auth_mono_ms() - a->rk_read_ms < AUTH_ROUTER_KEYS_TTL_MS;
	pthread_mutex_unlock(&a->lock);
	if (!current) {
		long long started = auth_mono_ms();
		pthread_mutex_lock(&a->lock);
		unsigned long revoked = a->rk_revoked;
		pthread_mutex_unlock(&a->lock);
		rc = auth_router_keys_read(&fresh, a, err);
		pthread_mutex_lock(&a->lock);
		if (rc == 0) {
			char hash[SECRET_HEX_SHA256_LEN];
			secret_sha256_hex(hash, fresh, strlen(fresh));
			free(a->rk_text);
			a->rk_text = fresh;
			snprintf(a->rk_etag, sizeof(a->rk_etag), "W/\"%.32s\"", hash);
			/* A revocation while we read may not be in this text: it
			 * stays due for another read. */
			a->rk_read_ms = a->rk_revoked == revoked ? started : 0;
		}
		pthread_mutex_unlock(&a->lock);
	}
	pthread_mutex_lock(&a->lock);
	if (a->rk_text) {
		/* Read now, or the last text while the database is away. */
		*text = strdup(a->rk_text);
		snprintf(etag, AUTH_ROUTER_KEYS_ETAG_LEN, "%s", a->rk_etag);
		rc = *text ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_unlock(&a->rk_refresh);
	return rc;
}
