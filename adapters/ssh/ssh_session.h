/* One SSH connection to one host, over libssh2: the ssh adapter's transport.
 *
 * Everything runs on a non-blocking socket and waits with poll() against a
 * deadline, so no call blocks longer than the timeout it was given (name
 * resolution excepted: getaddrinfo has no deadline; give addresses, or names
 * the resolver answers at once). A session belongs to one thread at a time;
 * the only global state is libssh2_init(), done once.
 *
 * Host keys are checked against an OpenSSH known_hosts file before any
 * credential is offered. Entries are looked up as "[host]:port" and then as
 * a plain "host" (libssh2's rule, so files written by ssh(1) for port 22
 * work). Policy SSH_HOST_KEY_STRICT refuses an unknown key and a changed one;
 * SSH_HOST_KEY_ACCEPT_NEW appends an unknown key as "[host]:port type key"
 * (under an exclusive flock, re-checked under the lock, so concurrent
 * sessions never record two keys) and still refuses a changed one. Lines
 * libssh2 cannot parse (key types it does not know, @cert-authority) are
 * skipped rather than failing the whole file. The host key algorithms offered
 * are ed25519 then ECDSA: libssh2 1.10 verifies RSA host keys only with
 * SHA-1 signatures, which current sshd no longer offers.
 *
 * Client keys: an ed25519 or ECDSA private key file (unencrypted: put an
 * encrypted key in ssh-agent), or ssh-agent (SSH_AUTH_SOCK) when key_path is
 * NULL. Key files and known_hosts are read through core/files.h's reader,
 * within its deadline, and the key goes to libssh2 from memory: a session
 * never blocks in a file system that does not answer (NOVA_EAGAIN). An RSA key is refused with the reason: libssh2 1.10 signs with
 * ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse. The key's contents are
 * never logged or put in an error.
 *
 * Errors (every message starts with "host ADDR:PORT: "):
 *   NOVA_EAGAIN   connect refused or timed out, connection lost, a command or
 *                 transfer past its deadline, a key or known_hosts file that
 *                 did not answer in time: worth retrying;
 *   NOVA_EFAILED  host key unknown (strict) or changed, authentication
 *                 refused, RSA key, a command killed by a signal, a remote
 *                 file error: retrying the same call will not help;
 *   NOVA_EINVAL   a key file that cannot be read or parsed;
 *   NOVA_EINTERNAL out of memory, libssh2 failures that are bugs.
 * After an EAGAIN from exec or upload the session may be unusable
 * (ssh_session_usable() says): close it and open a new one. */
#ifndef NOVA_ADAPTERS_SSH_SSH_SESSION_H
#define NOVA_ADAPTERS_SSH_SSH_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

enum ssh_host_key_policy {
	SSH_HOST_KEY_STRICT = 0,
	SSH_HOST_KEY_ACCEPT_NEW,
};

struct ssh_target {
	const char *address;          /* IP address or host name */
	unsigned port;                /* 0 means 22 */
	const char *user;
	const char *key_path;         /* private key file; NULL: ssh-agent */
	const char *known_hosts;      /* path of the known_hosts file */
	enum ssh_host_key_policy policy;
	unsigned connect_timeout_ms;  /* TCP connect + handshake + auth; 0: 10 s */
	/* Reach the host through this one (ssh -J): its address, port, user
	 * and key; its host key is checked in the same known_hosts with the
	 * same policy (both fields of *jump are ignored), one hop only. NULL:
	 * direct. The tunnel is a direct-tcpip channel, so the jump host's
	 * sshd must allow TCP forwarding; one that cannot reach the host is
	 * NOVA_EAGAIN. The connect timeout covers both hosts. */
	const struct ssh_target *jump;
};

struct ssh_session;

/* Connect, check the host key, authenticate. *out is NULL on failure. */
int ssh_session_open(struct ssh_session **out, const struct ssh_target *t,
		     struct nova_err *err);
/* Disconnects politely when the peer still listens (bounded by 1 s). NULL ok. */
void ssh_session_close(struct ssh_session *s);
/* False once a deadline or a lost connection left it mid-protocol. */
bool ssh_session_usable(const struct ssh_session *s);
/* Usable, and its connection not closed by the peer as far as the socket
 * tells without waiting (a pooled session checked before reuse; a peer
 * that vanished without a word is found by the next call, within about the
 * connect timeout: sent data may stay unacknowledged no longer than that,
 * TCP_USER_TIMEOUT, whatever the call's own timeout).
 * Marks the session broken when it is not. */
bool ssh_session_alive(struct ssh_session *s);
/* "addr:port", for messages. */
const char *ssh_session_label(const struct ssh_session *s);

struct ssh_exec_result {
	int exit_status;      /* valid when the call returned 0 */
	char exit_signal[32]; /* "KILL" when killed by a signal, else "" */
	char *out;            /* stdout, NUL-terminated, owned */
	size_t out_len;
	char *err;            /* stderr, NUL-terminated, owned */
	size_t err_len;
	bool truncated;       /* output beyond max_output was dropped */
};

/* Run command (through the user's login shell, as sshd does) and collect
 * stdout and stderr, both read in one loop so neither stream's window can
 * stall the other, keeping at most max_output bytes of each (0: 1 MiB; the
 * rest is read and dropped). The exit status is read only after the channel
 * closed. Returns 0 when the command exited, whatever its status (the caller
 * judges res->exit_status); NOVA_EFAILED when it was killed by a signal
 * (res->exit_signal names it); NOVA_EAGAIN past timeout_ms (the remote
 * command may still be running: wrap it in timeout(1) when that matters).
 * res is filled as far as it got, and must be finished in every case. */
int ssh_session_exec(struct ssh_exec_result *res, struct ssh_session *s, const char *command,
		     unsigned timeout_ms, size_t max_output, struct nova_err *err);
void ssh_exec_result_finish(struct ssh_exec_result *res);

/* Write data to remote_path atomically: SFTP to "<remote_path>.nova-tmp-XXXX"
 * in the same directory (created exclusively with mode), fsync, close, check
 * its SHA-256 with sha256sum on the host, then rename(2) it over remote_path
 * (mv -f: SFTP v3 rename, all OpenSSH speaks, refuses an existing target).
 * A reader sees the old file or the whole new one, never a part. On failure
 * the temporary file is removed when the connection still allows it. */
int ssh_session_upload(struct ssh_session *s, const char *remote_path, const void *data,
		       size_t len, unsigned mode, unsigned timeout_ms, struct nova_err *err);
/* The same with a local file's contents. */
int ssh_session_upload_file(struct ssh_session *s, const char *remote_path,
			    const char *local_path, unsigned mode, unsigned timeout_ms,
			    struct nova_err *err);

/* Whether a private key file is one this client can authenticate with: 0
 * for an unencrypted ed25519 or ECDSA key (or a PKCS#8 key, which libssh2
 * judges at use), NOVA_EINVAL (field "key") naming the file and the reason
 * otherwise: unreadable, not a key, encrypted, RSA (the SHA-1 reason), DSA.
 * Reads the file; never puts its contents anywhere. */
int ssh_key_check(const char *path, struct nova_err *err);

/* s as one single-quoted shell word ('it'\''s'). NOVA_EINVAL if it does not
 * fit in out. */
int ssh_shell_quote(char *out, size_t len, const char *s, struct nova_err *err);

#endif
