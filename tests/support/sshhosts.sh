# Sourced by shell tests (after tests/support/lib.sh, or alone): real SSH
# hosts for the ssh adapter's tests.
#
#   ssh_hosts_setup N [GPU_HOSTS]   N hosts; GPU_HOSTS (e.g. "1 3") get a fake
#                                   nvidia-smi on their PATH
#   ssh_host_addr I                 host I's address (1-based)
#   ssh_host_dir I                  host I's directory (host key, sshd_config,
#                                   log, install/, bin/)
#   ssh_host_rekey I                a new host key, sshd restarted
#   ssh_host_stop I / ssh_host_start I
#   ssh_host_tmpfs I SUBDIR SIZE    a small tmpfs (a disk to fill) at host I's
#                                   dir/SUBDIR, seen only by host I's sessions
#   ssh_host_kill_script I FILE     FILE: a script that kill -9s host I's
#                                   session processes (connections drop, the
#                                   listener stays)
#   ssh_hosts_teardown              called on exit by the trap set here
#   ssh_fleet_deploy N REPLICAS CONNECT_MS COMMAND_MS
#                                   through novad (after lib.sh's nova_start):
#                                   pool "fleet" on hosts 1..N with mock
#                                   agents, model "demo", REPLICAS replicas of
#                                   it deployed as "demo"
#   ssh_fleet_remove                stop and delete "demo", delete "fleet"
#
# Each host is a network namespace joined by a veth pair to a bridge in the
# root namespace (10.77.S.1/24 on the bridge, host I at 10.77.S.(I+1)),
# running Debian's real sshd as root in its namespace with its own ed25519
# host key, its own sshd_config (port 22, public keys only, AuthorizedKeysFile
# = SSH_AUTH_KEYS, which the harness writes), and its own hostname
# (unshare --uts). The client key SSH_CLIENT_KEY (ed25519) is authorized on
# every host for user root; SSH_KNOWN_HOSTS lists every host's key as
# "[addr]:22". SSH_UNUSED_ADDR is an address on the bridge's subnet where
# nothing answers. On every host, SSH_INSTALL_DIR (one path) is that host's
# own ssh_host_dir I/install (bind-mounted in its sshd's mount namespace).
#
# S is chosen per run: the bridge "novasshS" is created with `ip link add`,
# which fails when another run holds S, so concurrent runs never share a
# subnet. A run killed with -9 leaves its record in /run/nova-sshhosts/S;
# the next setup removes the namespaces and bridge of any record whose owner
# is dead.
#
# Each sshd is a background job of the shell that sourced this file: a bare
# `wait` in a test waits for them too, so wait for pids.
#
# Functions use `local` (dash and bash have it): callers' variables, such
# as a loop's i, are left alone.
#
# Missing prerequisites (not root, no ip netns, no sshd) make setup fail
# with the reason: tests report that as a failure, never as a skip, so a CI
# machine that cannot run them is noticed.

SSH_RUN=
SSH_N=0
SSH_SUBNET=
SSH_REG=/run/nova-sshhosts
# Where every host sees its own install dir (host I: ssh_host_dir I/install).
SSH_INSTALL_DIR=$SSH_REG/install

ssh_hosts_prereq() {
	local c
	[ "$(id -u)" -eq 0 ] || { echo "ssh hosts need root (ip netns, sshd)"; return 1; }
	for c in ip sshd ssh-keygen unshare nsenter hostname; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] ||
			{ echo "ssh hosts need $c (make deps installs openssh-server, iproute2)"; return 1; }
	done
	return 0
}

# Namespaces and bridge of subnet $1, and its record.
ssh_hosts_remove_subnet() {
	local ns l
	for ns in $(ip netns list 2>/dev/null | sed -n "s/^\(novassh$1h[0-9]*\).*/\1/p"); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	# The host ends of the hosts' links, by name: a namespace outlives its
	# deletion while a socket in it still waits (TIME_WAIT, or data left
	# unacknowledged over a cut link), and so would its link.
	for l in $(ip -o link show 2>/dev/null | sed -n "s/^[0-9]*: \(nvs$1h[0-9]*\)@.*/\1/p"); do
		ip link del "$l" 2>/dev/null
	done
	ip link del "novassh$1" 2>/dev/null
	rm -f "$SSH_REG/$1"
}

ssh_hosts_reap_stale() {
	local rec owner s rundir
	[ -d "$SSH_REG" ] || return 0
	for rec in "$SSH_REG"/*; do
		[ -f "$rec" ] || continue
		owner=$(sed -n 1p "$rec")
		if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
			s=${rec##*/}
			rundir=$(sed -n 2p "$rec")
			ssh_hosts_remove_subnet "$s"
			case "$rundir" in /tmp/nova-sshhosts.*) rm -rf "$rundir" ;; esac
		fi
	done
}

ssh_host_addr() { echo "10.77.$SSH_SUBNET.$(($1 + 1))"; }
ssh_host_dir() { echo "$SSH_RUN/h$1"; }
ssh_host_ns() { echo "novassh${SSH_SUBNET}h$1"; }

ssh_host_start() {
	local d i home
	d=$(ssh_host_dir "$1")
	rm -f "$d/sshd.pid"
	# sshd -D stays in the foreground of the backgrounded unshare, so its
	# pid file appears once it listens.
	ip netns exec "$(ssh_host_ns "$1")" unshare --uts sh -c \
		'hostname "$1" && exec /usr/sbin/sshd -D -f "$2" -E "$3"' sh \
		"nova-host$1" "$d/sshd_config" "$d/sshd.log" </dev/null >/dev/null 2>&1 &
	i=0
	while [ ! -s "$d/sshd.pid" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "sshd of host $1 did not start: $(tail -3 "$d/sshd.log" 2>/dev/null)"
			return 1
		fi
		sleep 0.05
	done
	# Every host has its own install dir at the same path, as real hosts
	# would: a bind mount in its sshd's mount namespace.
	nsenter -t "$(cat "$d/sshd.pid")" -m mount --bind "$d/install" "$SSH_INSTALL_DIR" || {
		echo "host $1: cannot bind its install dir"; return 1; }
	# A host of its own has no operator's shell set-up: bash reads
	# ~/.bashrc for every command sshd runs, and this machine's runs
	# pyenv's init (0.7 s a command: a provision took half a minute, and
	# the reconciler's timing tests missed their marks). Hidden in the
	# host's mount namespace, as the install dir is given.
	home=$(getent passwd "$(id -un)" | cut -d: -f6)
	if [ -n "$home" ] && [ -f "$home/.bashrc" ]; then
		: >"$d/bashrc"
		nsenter -t "$(cat "$d/sshd.pid")" -m mount --bind "$d/bashrc" "$home/.bashrc" || {
			echo "host $1: cannot hide ~/.bashrc"; return 1; }
	fi
	return 0
}

ssh_host_stop() {
	local d i pid
	d=$(ssh_host_dir "$1")
	[ -s "$d/sshd.pid" ] || return 0
	pid=$(cat "$d/sshd.pid")
	kill "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
	kill -9 "$pid" 2>/dev/null
	rm -f "$d/sshd.pid"
}

# A script (written to $2) that kills host $1's sshd session processes,
# for a test program to run at the moment it chooses.
ssh_host_kill_script() {
	cat >"$2" <<-EOF
	#!/bin/sh
	for p in \$(ip netns pids $(ssh_host_ns "$1")); do
		case "\$(tr '\\0' ' ' <"/proc/\$p/cmdline" 2>/dev/null)" in
		*"[listener]"*) ;;
		"sshd: "*) kill -9 "\$p" 2>/dev/null ;;
		esac
	done
	EOF
	chmod 0755 "$2"
}

ssh_host_rekey() {
	local d
	d=$(ssh_host_dir "$1")
	ssh_host_stop "$1"
	rm -f "$d/host_ed25519" "$d/host_ed25519.pub"
	ssh-keygen -q -t ed25519 -N '' -C "nova-host$1" -f "$d/host_ed25519" || return 1
	ssh_host_start "$1"
}

# ssh_host_tmpfs I SUBDIR SIZE: a tmpfs of SIZE (e.g. 1m) at host I's
# SUBDIR, a full disk on demand. It is mounted in the mount namespace of host
# I's sshd (ip netns exec gave it its own, and this machine's mounts do not
# propagate into it), so only sessions on host I see it, and it goes away
# with that sshd.
ssh_host_tmpfs() {
	local p
	p="$(ssh_host_dir "$1")/$2"
	mkdir -p "$p" &&
		nsenter -t "$(cat "$(ssh_host_dir "$1")/sshd.pid")" -m \
			mount -t tmpfs -o "size=$3,mode=0755" nova-ssh-test "$p"
}

# The known_hosts line of host $1's current key.
ssh_host_known_line() {
	echo "[$(ssh_host_addr "$1")]:22 $(cut -d' ' -f1,2 "$(ssh_host_dir "$1")/host_ed25519.pub")"
}

ssh_host_make() {
	local i gpu ns d addr
	i=$1; gpu=$2
	ns=$(ssh_host_ns "$i"); d=$(ssh_host_dir "$i"); addr=$(ssh_host_addr "$i")
	mkdir -p "$d/install" "$d/bin" || return 1
	ip netns add "$ns" || return 1
	ip link add "nvs${SSH_SUBNET}h$i" type veth peer name eth0 netns "$ns" || return 1
	ip link set "nvs${SSH_SUBNET}h$i" master "novassh$SSH_SUBNET" up || return 1
	ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
	ip -n "$ns" link set eth0 up || return 1
	ip -n "$ns" link set lo up || return 1
	ssh-keygen -q -t ed25519 -N '' -C "nova-host$i" -f "$d/host_ed25519" || return 1
	if [ "$gpu" = 1 ]; then
		# Two GPUs, in the CSV nvidia-smi prints for
		# --query-gpu=index,name,memory.total --format=csv,noheader.
		cat >"$d/bin/nvidia-smi" <<-'EOF'
		#!/bin/sh
		echo "0, NVIDIA A100-SXM4-80GB, 81920 MiB"
		echo "1, NVIDIA A100-SXM4-80GB, 81920 MiB"
		EOF
		chmod 0755 "$d/bin/nvidia-smi"
	fi
	# SetEnv applies after sshd's default PATH, so the host's bin/ comes
	# first in every session's PATH (bash -c reads no profile).
	cat >"$d/sshd_config" <<-EOF
	Port 22
	ListenAddress $addr
	HostKey $d/host_ed25519
	PidFile $d/sshd.pid
	AuthorizedKeysFile $SSH_AUTH_KEYS
	PubkeyAuthentication yes
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitRootLogin prohibit-password
	StrictModes no
	UsePAM no
	UseDNS no
	PrintMotd no
	LogLevel VERBOSE
	MaxStartups 100
	SetEnv PATH=$d/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin NOVA_TEST_HOST=$i
	Subsystem sftp internal-sftp
	EOF
	ssh_host_start "$i"
}

ssh_hosts_teardown() {
	local i
	[ -n "$SSH_SUBNET" ] || return 0
	i=1
	while [ $i -le "$SSH_N" ]; do ssh_host_stop "$i"; i=$((i + 1)); done
	ssh_hosts_remove_subnet "$SSH_SUBNET"
	[ -n "$SSH_RUN" ] && rm -rf "$SSH_RUN"
	SSH_SUBNET=; SSH_RUN=; SSH_N=0
}

ssh_hosts_setup() {
	local n gpus s tries i gpu g
	n=$1; gpus=${2:-}
	ssh_hosts_prereq || return 1
	ip netns list >/dev/null 2>&1 || { echo "ip netns is unavailable here"; return 1; }
	mkdir -p /run/sshd "$SSH_REG" "$SSH_INSTALL_DIR" && chmod 0755 /run/sshd || return 1
	ssh_hosts_reap_stale
	s=$(( ($$ % 200) + 20 )); tries=0
	# A subnet whose bridge or host links exist is another run's (or the
	# remains of one).
	while ip -o link show 2>/dev/null | grep -q ": nvs${s}h[0-9]*@" ||
	      ! ip link add "novassh$s" type bridge 2>/dev/null; do
		tries=$((tries + 1))
		[ $tries -gt 200 ] && { echo "no free test subnet (ip link add bridge fails)"; return 1; }
		s=$(( s % 250 + 1 ))
	done
	SSH_SUBNET=$s
	SSH_RUN=$(mktemp -d /tmp/nova-sshhosts.XXXXXX) || return 1
	chmod 0755 "$SSH_RUN"
	printf '%s\n%s\n' "$$" "$SSH_RUN" >"$SSH_REG/$s"
	ip addr add "10.77.$s.1/24" dev "novassh$s" || return 1
	ip link set "novassh$s" up || return 1
	SSH_CLIENT_KEY=$SSH_RUN/client_ed25519
	SSH_AUTH_KEYS=$SSH_RUN/authorized_keys
	SSH_KNOWN_HOSTS=$SSH_RUN/known_hosts
	SSH_UNUSED_ADDR=10.77.$s.250
	ssh-keygen -q -t ed25519 -N '' -C nova-test-client -f "$SSH_CLIENT_KEY" || return 1
	cp "$SSH_CLIENT_KEY.pub" "$SSH_AUTH_KEYS"
	: >"$SSH_KNOWN_HOSTS"
	i=1
	while [ $i -le "$n" ]; do
		gpu=0
		for g in $gpus; do [ "$g" = "$i" ] && gpu=1; done
		SSH_N=$i
		ssh_host_make "$i" "$gpu" || { echo "host $i: setup failed"; return 1; }
		ssh_host_known_line "$i" >>"$SSH_KNOWN_HOSTS"
		i=$((i + 1))
	done
	# The client key and known_hosts a pool config names must lie under a
	# directory novad allows (novad.yaml provider_files).
	NOVA_PROVIDER_FILES=$SSH_RUN
	export SSH_CLIENT_KEY SSH_AUTH_KEYS SSH_KNOWN_HOSTS SSH_UNUSED_ADDR SSH_RUN SSH_SUBNET SSH_INSTALL_DIR \
		NOVA_PROVIDER_FILES
	return 0
}

# ssh_fleet_deploy N REPLICAS CONNECT_MS COMMAND_MS: the ssh pool "fleet"
# on hosts 1..N (novad's own nova-sidecar, from $B, as the agent, mock engines, the given
# connect and command timeouts), the model "demo" (nova-mock-engine on one
# A100-80G) and a deployment "demo" of REPLICAS replicas, through novad's
# CLI. 1, with novad's last log lines, when the pool is refused.
ssh_fleet_deploy() {
	local i cfg
	i=1
	: >"$T_WORK/hosts.yaml"
	while [ $i -le "$1" ]; do
		echo "- {address: \"$(ssh_host_addr $i)\", user: root, key: \"$SSH_CLIENT_KEY\"}" >>"$T_WORK/hosts.yaml"
		i=$((i + 1))
	done
	cfg="{\"known_hosts\":\"$SSH_KNOWN_HOSTS\",\"install_dir\":\"$SSH_INSTALL_DIR\",
 \"mock_agents\":true,\"connect_timeout_ms\":$3,\"command_timeout_ms\":$4}"
	"$B/novactl" pool create fleet --provider ssh --hosts "$T_WORK/hosts.yaml" --config "$cfg" >/dev/null ||
		{ tail -3 "$T_WORK/novad.log"; return 1; }
	cat >"$T_WORK/model.yaml" <<-EOM
	name: demo
	kind: single
	engine: {command: [nova-mock-engine, --port, "{port}"]}
	stages: [{name: main, accelerator_type: A100-80G, accelerators: 1}]
	EOM
	"$B/novactl" model register -f "$T_WORK/model.yaml" >/dev/null
	"$B/novactl" deploy demo --pool fleet --replicas "$2" --name demo >/dev/null
}

# ssh_fleet_remove: the deployment "demo" stopped (up to 15 s) and deleted,
# then the pool "fleet" deleted with --force.
ssh_fleet_remove() {
	"$B/novactl" deployment stop demo >/dev/null
	t_wait_sql "SELECT state FROM deployments" stopped 15 >/dev/null
	"$B/novactl" deployment delete demo >/dev/null
	"$B/novactl" pool delete fleet --force >/dev/null
}

# Teardown on every exit, including a failed assertion, a signal from
# tests/run.sh's timeout, or Ctrl-C; lib.sh's cleanup runs after it.
ssh_hosts_exit() {
	ssh_hosts_teardown
	command -v t_cleanup >/dev/null 2>&1 && t_cleanup
}
trap ssh_hosts_exit EXIT
trap 'exit 1' INT TERM HUP
