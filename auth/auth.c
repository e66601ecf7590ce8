#include "auth/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"

struct auth {
	struct db_pool *db;
	char admin_hash[SECRET_HEX_SHA256_LEN];
};

int auth_create(struct auth **out, struct db_pool *db, const char *admin_token,
		struct nova_err *err)
{
	struct auth *a;
	*out = NULL;
	if (!admin_token || strlen(admin_token) < 16)
		return nova_err_set(err, NOVA_EINVAL, "admin_token",
				    "admin token must be at least 16 characters");
	a = calloc(1, sizeof(*a));
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	a->db = db;
	secret_sha256_hex(a->admin_hash, admin_token, strlen(admin_token));
	*out = a;
	return 0;
}

void auth_destroy(struct auth *a)
{
	free(a);
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
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT id, key_hash FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL",
		     1, params, err);
	if (rc == 0 && PQntuples(res) == 1 && secret_matches_hash(key, PQgetvalue(res, 0, 1))) {
		out->kind = AUTH_APIKEY;
		snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
		params[0] = out->id;
		/* Best effort: last use is informational, never a reason to refuse. */
		struct nova_err ignored;
		db_exec(NULL, c,
			"UPDATE api_keys SET last_used_at = now() WHERE id = $1 "
			"AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
			1, params, &ignored);
	} else if (rc == 0) {
		rc = nova_err_set(err, NOVA_EUNAUTH, "", "invalid or revoked api key");
	}
	PQclear(res);
	db_conn_release(a->db, c);
	return rc;
}

int auth_authenticate(struct auth_principal *out, struct auth *a, const char *authorization,
		      const char *x_api_key, struct nova_err *err)
{
	const char *token = NULL;
	memset(out, 0, sizeof(*out));
	if (authorization) {
		if (strncasecmp(authorization, "Bearer ", 7) != 0)
			return nova_err_set(err, NOVA_EUNAUTH, "",
					    "authorization header must be \"Bearer <token>\"");
		token = authorization + 7;
		while (*token == ' ')
			token++;
	} else if (x_api_key) {
		token = x_api_key;
	}
	if (!token || !*token) {
		nova_err_set(err, NOVA_EUNAUTH, "", "authentication required");
		nova_err_set_hint(err, "send \"Authorization: Bearer <admin token or api key>\"");
		return NOVA_EUNAUTH;
	}
	if (strncmp(token, AUTH_APIKEY_PREFIX, strlen(AUTH_APIKEY_PREFIX)) == 0)
		return auth_apikey_check(out, a, token, err);
	if (secret_matches_hash(token, a->admin_hash)) {
		out->kind = AUTH_ADMIN;
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
}

#define AUTH_APIKEY_COLS \
	"id, name, prefix, " DB_TS("created_at") ", " DB_TS("last_used_at") ", " DB_TS("revoked_at")

int auth_apikey_create(struct auth_apikey *out, char *key_out, size_t key_len, struct auth *a,
		       const char *name, struct nova_err *err)
{
	char key[128], prefix[17], hash[SECRET_HEX_SHA256_LEN];
	const char *params[3];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (!name || !*name || strlen(name) > 64)
		return nova_err_set(err, NOVA_EINVAL, "name", "name must be 1 to 64 characters");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return nova_err_set(err, NOVA_EINVAL, "name",
					    "name must not contain control characters");
	if ((rc = secret_token_generate(key, sizeof(key), AUTH_APIKEY_PREFIX, err)))
		return rc;
	memcpy(prefix, key, 16);
	prefix[16] = '\0';
	secret_sha256_hex(hash, key, strlen(key));
	params[0] = name;
	params[1] = prefix;
	params[2] = hash;
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "INSERT INTO api_keys (name, prefix, key_hash) VALUES ($1, $2, $3) "
			 "RETURNING " AUTH_APIKEY_COLS, 3, params, err);
	if (rc == 0) {
		auth_apikey_from_row(out, res, 0);
		snprintf(key_out, key_len, "%s", key);
	}
	PQclear(res);
	db_conn_release(a->db, c);
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

int auth_apikey_revoke(struct auth *a, const char *id, struct nova_err *err)
{
	const char *params[1] = {id};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (!ids_is_uuid(id))
		return nova_err_set(err, NOVA_ENOTFOUND, "id", "no api key with id %s", id);
	if ((rc = db_conn_acquire(&c, a->db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 "
			 "RETURNING id", 1, params, err);
	if (rc == NOVA_ENOTFOUND)
		nova_err_set(err, NOVA_ENOTFOUND, "id", "no api key with id %s", id);
	PQclear(res);
	db_conn_release(a->db, c);
	return rc;
}
