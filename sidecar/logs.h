/* Engine logs on the node: each engine's stdout and stderr kept in a
 * size-capped rotating file of its own, and served to novad.
 *
 * Files. One per engine (replica and stage), DIR/<replica>.<stage>.log and
 * its one rotated predecessor .log.1 (core/rotlog.h), each at most half of
 * --engine-log-max-bytes, so a replica keeps between half and all of its
 * last max_bytes of output. The file outlives the engine's restarts (a
 * crashed engine's last words stay, followed by the sidecar's own line
 * saying how it ended) and the sidecar's own restart (a replica assigned
 * again appends); it is removed when the replica is no longer assigned to
 * the node, and files of replicas the node does not run are swept after
 * each new set of assignments, so the directory holds at most one pair
 * per engine running.
 *
 * Serving. novad reaches the sidecar's small HTTP server (its own port from
 * the engine range, on the address it advertises, reported in every
 * heartbeat as logs.url): GET /v1/logs/{replica}?stage=S&tail=N&follow=1,
 * text/plain, the last N complete lines, then (follow) each new line as
 * it is written, until the client goes or the replica is unassigned. While
 * a follow has nothing to send it writes one NUL byte every
 * SIDECAR_LOGS_KEEPALIVE_MS (a keep-alive novad drops; engine output never
 * carries NUL, which is dropped here), so a silent engine is told from a
 * dead node. Lines longer than SIDECAR_LOGS_LINE_MAX are cut and marked.
 *
 * Auth: Bearer keys novad mints, one per novad and node, handed over in
 * heartbeat answers (logs_key) and held here only as SHA-256 digests, the
 * last SIDECAR_LOGS_MAX_KEYS of them (several novads behind one address
 * each hand theirs). The heartbeat tells novad which it holds (logs.keys:
 * the first 16 hex digits of each digest), so novad sends its key only
 * when this sidecar lacks it. A key is never logged, written to disk or
 * put on a command line; the engines (children) cannot read it (the
 * sidecar is not dumpable).
 *
 * Rejected: the sidecar pushing requested chunks to novad when a heartbeat
 * answer asks (no port on the node, and the node token as the only
 * credential), because a follow then lags a heartbeat interval (2 s by
 * default, stretched with the fleet) unless the sidecar opens a streaming
 * upload per follower, which is this design's connection turned around
 * with a buffer and a timeout of its own on novad's side. And authenticating
 * novad with the node token: novad keeps only its hash. */
#ifndef NOVA_SIDECAR_LOGS_H
#define NOVA_SIDECAR_LOGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define SIDECAR_LOGS_DEFAULT_MAX_BYTES (8ull << 20) /* per engine, both files */
#define SIDECAR_LOGS_MIN_MAX_BYTES (16ull << 10)
#define SIDECAR_LOGS_LINE_MAX 8192      /* bytes of a line served; longer ones are cut */
#define SIDECAR_LOGS_TAIL_MAX 10000     /* lines a request may ask for */
#define SIDECAR_LOGS_TAIL_DEFAULT 100
#define SIDECAR_LOGS_TAIL_BYTES (4u << 20) /* read from the end for a tail, at most */
#define SIDECAR_LOGS_MAX_KEYS 8
#define SIDECAR_LOGS_MAX_CONNECTIONS 16 /* the log server's, in all */
#define SIDECAR_LOGS_KEEPALIVE_MS 10000
#define SIDECAR_LOGS_KEY_HEX 64         /* a key: 32 random bytes in hex */
#define SIDECAR_LOGS_KEY_ID_HEX 16

struct sidecar_logs;
struct sidecar_englog;

/* Open (create, 0700) dir for engine logs of max_bytes each. */
int sidecar_logs_create(struct sidecar_logs **out, const char *dir, unsigned long long max_bytes,
			struct nova_err *err);
/* Stops the server first. Accepts NULL. */
void sidecar_logs_destroy(struct sidecar_logs *l);

/* The log of one engine, opened (appending) on first use: a reference the
 * caller releases; NULL when the replica id is not a plain name ([A-Za-z0-9-],
 * at most 64) or the file cannot be opened. Opening one that was retired
 * makes it live again. */
struct sidecar_englog *sidecar_logs_open(struct sidecar_logs *l, const char *replica, long long stage);
struct sidecar_englog *sidecar_englog_ref(struct sidecar_englog *e);
void sidecar_englog_release(struct sidecar_englog *e); /* accepts NULL */
void sidecar_englog_write(struct sidecar_englog *e, const void *buf, size_t len);
/* The engine is no longer assigned: follows of it end, and its files go
 * once nothing holds it. */
void sidecar_logs_retire(struct sidecar_logs *l, const char *replica, long long stage);
/* Remove the files of engines that have no log open (after a new set of
 * assignments: what a previous run left). */
void sidecar_logs_sweep(struct sidecar_logs *l);

/* Serve on listen (HOST:PORT). */
int sidecar_logs_serve(struct sidecar_logs *l, const char *listen, struct nova_err *err);
unsigned sidecar_logs_port(const struct sidecar_logs *l);
/* A key from a heartbeat answer (SIDECAR_LOGS_KEY_HEX hex digits; anything
 * else is ignored): held as its digest, the oldest dropped past
 * SIDECAR_LOGS_MAX_KEYS. */
void sidecar_logs_key_add(struct sidecar_logs *l, const char *key);
/* The ids of the keys held, newest first (a new reference). */
json_t *sidecar_logs_key_ids(struct sidecar_logs *l);
/* SIDECAR_LOGS_KEY_ID_HEX hex digits of SHA-256(key): what a heartbeat
 * shows of a key (novad computes the same). */
void sidecar_logs_key_id(char out[SIDECAR_LOGS_KEY_ID_HEX + 1], const char *key);

/* --- pieces, for the tests ---------------------------------------------------------- */

/* Where the last n complete lines of buf[0..len) start (the part after the
 * last newline is not a line yet and is not counted). */
size_t sidecar_logs_tail_start(const char *buf, size_t len, unsigned n);
/* Lines as they are served: complete lines only, NUL bytes dropped, each
 * cut at SIDECAR_LOGS_LINE_MAX bytes and then marked " [cut]". The part of
 * a line not yet complete waits in the state. */
struct sidecar_logs_lines {
	char line[SIDECAR_LOGS_LINE_MAX];
	size_t len;
	bool cut;
};
struct textbuf;
void sidecar_logs_lines_feed(struct textbuf *out, struct sidecar_logs_lines *st, const char *data,
			     size_t len);

#endif
