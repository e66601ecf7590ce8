/* A per-process pool of SSH connections reused across adapter calls (the
 * ssh adapter's; nothing outside adapters/ssh/ includes this).
 *
 * The pool is process-wide, not kept by an adapter instance, though
 * instances now live as long as their pool's config (adapter.h): its caps
 * are per host, and a host may be in several pools (two pools splitting
 * one machine's GPUs, a config changed into a new instance while the old
 * one finishes its calls); per instance, the per-host cap would multiply
 * by the pools naming it, and a config change would close every warm
 * session of the pool. Sessions are keyed by everything a session was
 * opened and checked with (address, port, user, key file or the agent,
 * known_hosts file, host key policy, jump host), so pools share a session
 * only where one pool's checks would pass it too. adapters_shutdown()
 * drains it (adapter_ops.shutdown) after every instance is destroyed. A session is handed to
 * one caller at a time and given back with ssh_pool_put(); one left
 * unusable by a failure, or closed by the peer while idle, is dropped, never
 * handed out again. Caps: SSH_POOL_PER_HOST sessions (in use or idle) per
 * key and SSH_POOL_TOTAL in all; a caller past a cap waits, up to its
 * connect timeout, for a session to come back (an idle session of another
 * key is closed to make room first), then gets NOVA_EAGAIN. Idle sessions
 * are closed after SSH_POOL_IDLE_MS, looked for on every get and put (no
 * thread of its own).
 *
 * Opening a session one-off (ssh_session_open) instead of pooling was the
 * old way: every status call and reconcile pass paid a TCP connect, a key
 * exchange and an authentication per host, and sshd logged each. */
#ifndef NOVA_ADAPTERS_SSH_SSH_POOL_H
#define NOVA_ADAPTERS_SSH_SSH_POOL_H

#include <stdbool.h>

#include "adapters/ssh/ssh_session.h"
#include "core/err.h"

#define SSH_POOL_PER_HOST 4
#define SSH_POOL_TOTAL 64
#define SSH_POOL_IDLE_MS 60000

/* An idle session for t when one is alive, else a new one (errors as
 * ssh_session_open, plus NOVA_EAGAIN when a cap held past the connect
 * timeout). *reused says which, when not NULL. */
int ssh_pool_get(struct ssh_session **out, bool *reused, const struct ssh_target *t,
		 struct nova_err *err);
/* Give s back: kept idle when usable, else closed. NULL ok. */
void ssh_pool_put(struct ssh_session *s);
/* Close every idle session (novad's exit, tests); sessions in use are
 * closed when they are put back. */
void ssh_pool_drain(void);

struct ssh_pool_stats {
	unsigned long long opened;  /* sessions opened by the pool */
	unsigned long long reused;  /* gets answered with an idle session */
	unsigned long long dropped; /* idle or returned sessions found broken */
	unsigned idle, in_use;
};
void ssh_pool_stats(struct ssh_pool_stats *out);
/* Tests: other caps and idle time (0 keeps a value). */
void ssh_pool_set_limits(unsigned per_host, unsigned total, unsigned idle_ms);

#endif
