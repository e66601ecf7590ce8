/* The ssh provider: a fleet of hosts reached over SSH (libssh2, see
 * ssh_session.h for the transport).
 *
 * Pool config (JSON; every error names its field, "hosts[1].port"):
 *   hosts             non-empty array of
 *                       address    IP address or DNS name (required)
 *                       port       1..65535, default 22
 *                       user       required
 *                       key        absolute path of an ed25519/ECDSA private
 *                                  key under a directory novad.yaml's
 *                                  provider_files allows (core/files.h);
 *                                  absent: ssh-agent (SSH_AUTH_SOCK)
 *                       labels     object of strings, copied to the node
 *                       accelerator_type  overrides the discovered type
 *                       proxy_jump {address, port, user, key}: reach the
 *                                  host through this one (ssh -J, one hop,
 *                                  a direct-tcpip channel: the jump host's
 *                                  sshd must allow TCP forwarding); its host
 *                                  key is checked in the same known_hosts
 *                     no two hosts with the same address and port
 *   known_hosts       absolute path under an allowed directory, or
 *   known_hosts_inline its lines; exactly one. Inline lines, and with
 *                     accept-new the named file's lines, go to a file of
 *                     the pool's own under novad's state directory
 *                     (<state>/ssh/<pool id>/known_hosts, core/files.h
 *                     files_state_dir), where accept-new records the keys
 *                     it learns: a named file is only ever read. That
 *                     directory goes when the pool is deleted (forget).
 *   host_key_policy   "strict" (default) or "accept-new"
 *   install_dir       absolute path on the hosts, default /opt/nova
 *   mock_agents       true: sidecars run nova-mock-engine (installed from
 *                     beside the agent) instead of the models' engines
 * The nova-sidecar installed is not the pool's to name ("agent" is refused,
 * saying so): it is the one beside novad, or the context's ssh_sidecar
 * (adapter.h struct adapter_context; test drivers point it at the build).
 *   connect_timeout_ms, command_timeout_ms   100..3600000, defaults 10000
 *                     and 30000
 *
 * Discovery connects to every host (several at a time, one session per
 * thread) and runs one shell command that reports CPUs, memory, OS, host
 * name and, when nvidia-smi is on the PATH, its GPUs. Each host is one
 * static node, handle "address:port"; a host that cannot be reached, or
 * whose answer cannot be read, is still listed, unreachable, with the
 * reason.
 *
 * Provisioning a node (handle "address:port") installs nova-sidecar under
 * install_dir/bin (uploaded atomically, only when its sha256 differs), puts
 * the node token in install_dir/nodes/<node id>/token (0600, by SFTP: it is
 * on no command line), and starts the sidecar detached (setsid, stdio on
 * files) so it outlives the session, advertising the host's address for its
 * engines' endpoints (the gateway URL must be reachable from the hosts).
 * Hosts need a POSIX sh, coreutils (sha256sum) and setsid (util-linux). The node directory is the marker: a
 * retry finds the running sidecar by its pid file and command line and keeps
 * it (or replaces it when the token was rotated), never starting a twin;
 * node_status says gone when the sidecar died on a reachable host (the
 * reconciler then provisions it again) and when the marker is missing;
 * list_nodes reads the markers on every reachable host (an unreachable one
 * is logged and skipped); deprovisioning stops the sidecar and removes the
 * node directory, and answers NOVA_EAGAIN while the host is unreachable.
 * Every call takes its sessions from a per-process pool (ssh_pool.h):
 * one caller per session, at most 4 per host and 64 in all, closed after a
 * minute idle, a broken or peer-closed one dropped and replaced. The pool
 * is shared by every instance, not kept by one, on purpose: see
 * ssh_pool.h. An instance keeps its parsed config and the pool's own
 * known_hosts file; it lives as long as the pool's config (adapter.h).
 * Not yet: slices of a host's GPUs. */
#ifndef NOVA_ADAPTERS_SSH_SSH_H
#define NOVA_ADAPTERS_SSH_SSH_H

#include <stddef.h>

#include "adapters/adapter.h"
#include "core/err.h"

extern const struct adapter_ops ssh_adapter_ops;


#define SSH_MAX_GPUS 64

struct ssh_gpu {
	char name[ADAPTER_NAME_MAX];      /* as nvidia-smi says: "NVIDIA A100-SXM4-80GB" */
	unsigned long long memory_mib;
};

/* What the discovery command found on one host. */
struct ssh_host_facts {
	unsigned cpus;
	unsigned long long memory_mib;
	char hostname[128];
	char os[128];
	struct ssh_gpu gpus[SSH_MAX_GPUS];
	size_t n_gpus;
	/* nvidia-smi is present but failed: its first line of output. */
	char gpu_error[200];
};

/* The shell command discovery runs. */
extern const char ssh_discovery_command[];

/* Parse the discovery command's output. NOVA_EFAILED naming the line that
 * cannot be read (a host that is not Linux, or an nvidia-smi whose CSV
 * changed). */
int ssh_discovery_parse(struct ssh_host_facts *out, const char *text, struct nova_err *err);

/* Nova's accelerator type for a GPU: the model without vendor words or
 * board suffixes, then the memory in GiB rounded ("NVIDIA A100-SXM4-80GB",
 * 81920 MiB -> "A100-80G"; "NVIDIA H100 80GB HBM3" -> "H100-80G"; "NVIDIA
 * GeForce RTX 4090", 24564 MiB -> "RTX4090-24G"). Hosts whose GPUs need
 * another name set accelerator_type in their config. */
void ssh_gpu_type(char *out, size_t len, const char *name, unsigned long long memory_mib);

#endif
