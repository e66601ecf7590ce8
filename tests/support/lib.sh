# Sourced by shell tests: result lines for tests/run.sh, and a real novad on
# a fresh database of the run's cluster.
B=${NOVA_BUILD:?run through tests/run.sh}
T_WORK=$(mktemp -d /tmp/nova-shtest.XXXXXX)
chmod 0755 "$T_WORK"
T_PID=
# Every novad a test starts records its lpu agents here (the machine's
# directory, /run/nova/lpu, would be shared by every test of the run); a
# test of several novads on one machine starts them all with this one.
export NOVA_LPU_RUN_DIR="$T_WORK/state/lpu"
# Engine logs of sidecars started without --log-file go under the test's
# directory (a directory per node), not the machine's $TMPDIR.
export NOVA_SIDECAR_ENGINE_LOG_DIR="$T_WORK/engine-logs"

t_pass() { echo "PASS: $1"; }
t_fail() { echo "FAIL: $1: $2"; }

# t_expect_exit CODE NAME CMD...: run CMD, compare its exit status.
t_expect_exit() {
	want=$1; name=$2; shift 2
	"$@" >"$T_WORK/out" 2>"$T_WORK/err"; got=$?
	if [ "$got" -eq "$want" ]; then t_pass "$name"
	else t_fail "$name" "exit $got, want $want: $(head -c 300 "$T_WORK/err")"; fi
}

# t_expect_out PATTERN NAME: the last command's stdout+stderr matched.
t_expect_out() {
	if grep -q -- "$1" "$T_WORK/out" "$T_WORK/err"; then t_pass "$2"
	else t_fail "$2" "no \"$1\" in: $(head -c 300 "$T_WORK/out" "$T_WORK/err")"; fi
}

# t_cmocka PROGRAM [ARGS...]: run a cmocka program (a tests/*/driver_* that
# needs this script's setup) and turn each of its tests into a PASS/FAIL
# line; a crash or a run with no test counted is a FAIL too.
t_cmocka() {
	local log rc ran name
	log="$T_WORK/cmocka.$$.log"
	"$@" >"$log" 2>&1; rc=$?
	cat "$log"
	ran=0
	for name in $(sed -n 's/^\[ RUN      \] //p' "$log"); do
		ran=$((ran + 1))
		if grep -qx "\[       OK \] $name" "$log"; then t_pass "$name"
		else t_fail "$name" "see the output above"; fi
	done
	[ "$ran" -gt 0 ] || t_fail "${1##*/}" "ran no test (exit $rc)"
	if [ "$rc" -ne 0 ] && ! grep -q '^\[  FAILED  \]' "$log"; then
		t_fail "${1##*/}" "exit $rc without a failed test (a crash?)"
	fi
}

# nova_start: a novad on a fresh database; called again (after nova_stop or
# a kill), it restarts on the same database and state directory.
T_DB=
nova_start() {
	if [ -z "$T_DB" ]; then
		T_DB=t_sh_$$_$(date +%s%N | tail -c 6)
		psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $T_DB" >/dev/null || return 1
	fi
	export NOVA_STATE_DIR="$T_WORK/state"
	mkdir -p "$NOVA_STATE_DIR"
	rm -f "$NOVA_STATE_DIR/novad.url"
	NOVA_LISTEN=${T_LISTEN:-127.0.0.1:0} NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" \
		NOVA_ENABLE_FAKE_PROVIDER=1 "$B/novad" "$@" >>"$T_WORK/novad.log" 2>&1 &
	T_PID=$!
	i=0
	while [ ! -s "$NOVA_STATE_DIR/novad.url" ]; do
		kill -0 "$T_PID" 2>/dev/null || { cat "$T_WORK/novad.log" >&2; return 1; }
		i=$((i + 1)); [ $i -gt 200 ] && return 1
		sleep 0.1
	done
	NOVA_URL=$(cat "$NOVA_STATE_DIR/novad.url")
}

# t_sql QUERY: one value from the test database.
t_sql() {
	psql -h "$NOVA_TEST_PGHOST" -U nova -d "$T_DB" -tAc "$1"
}

# t_wait_sql QUERY WANT [SECONDS]: poll (10 s by default) until QUERY answers WANT.
t_wait_sql() {
	i=0
	while [ $i -lt $((${3:-10} * 10)) ]; do
		[ "$(t_sql "$1")" = "$2" ] && return 0
		i=$((i + 1)); sleep 0.1
	done
	return 1
}

# t_wait_cmd SECONDS CMD...: poll until CMD exits 0 (its output is kept in
# $T_WORK/out and err, as t_expect_exit does); 1 when it never did.
t_wait_cmd() {
	n=$(($1 * 10)); shift
	i=0
	while [ $i -lt $n ]; do
		"$@" >"$T_WORK/out" 2>"$T_WORK/err" && return 0
		i=$((i + 1)); sleep 0.1
	done
	return 1
}

# t_wait_routed SECONDS MODEL [N]: poll until `novactl -o json routes --model
# MODEL` lists at least one endpoint (exactly N when given); its output is
# kept in $T_WORK/out and err as t_wait_cmd does. A model whose deployment
# runs has a route from the start, with no endpoint until a replica is
# ready (inventory/routes.h), so the route alone says nothing.
# t_demo_on_racks ALLOCATION REPLICAS [SECONDS]: an lpu pool "racks" over
# the racks of ALLOCATION with mock agents (a nova-sidecar running
# nova-mock-engine per node), the model "demo" registered and deployed as
# "demo" on REPLICAS replicas; 0 once the deployment runs (30 s by default).
t_demo_on_racks() {
	cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
	"$B/novactl" pool create racks --provider lpu --config \
		"{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"$1\",\"mock_agents\":true}" \
		>/dev/null &&
		"$B/novactl" model register -f "$T_WORK/model.yaml" >/dev/null &&
		"$B/novactl" deploy demo --pool racks --replicas "$2" --name demo >/dev/null &&
		t_wait_sql "SELECT state FROM deployments" running "${3:-30}"
}

t_wait_routed() {
	tw_n=$(($1 * 10)); tw_i=0
	while [ $tw_i -lt $tw_n ]; do
		if "$B/novactl" -o json routes --model "$2" >"$T_WORK/out" 2>"$T_WORK/err"; then
			tw_c=$(grep -c '"url"' "$T_WORK/out")
			if [ -n "${3:-}" ]; then [ "$tw_c" -eq "$3" ] && return 0
			else [ "$tw_c" -gt 0 ] && return 0; fi
		fi
		tw_i=$((tw_i + 1)); sleep 0.1
	done
	return 1
}

# t_fake_deploy: through novad (after nova_start), mistral-7b-lora
# (etc/models/lora_static.yaml) deployed as "web" on a fake pool "p" whose
# provider keeps its nodes' tokens in $NOVA_STATE_DIR/fake/provider.json
# (state_file is a name under novad's state directory); once its one
# replica is placed (10 s at most, else 1), T_NODE and T_TOKEN are its
# node's id and token, for a heartbeat or a sidecar of one's own.
T_NODE=; T_TOKEN=
t_fake_deploy() {
	"$B/novactl" model register -f etc/models/lora_static.yaml >/dev/null
	"$B/novactl" pool create p --provider fake --config '{"state_file":"provider.json"}' >/dev/null
	"$B/novactl" deploy mistral-7b-lora --pool p --name web >/dev/null
	t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 || return 1
	T_NODE=$(t_sql "SELECT id FROM nodes")
	T_TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$NOVA_STATE_DIR/fake/provider.json")
}

# t_deb_tool PACKAGE FILE: FILE, a path inside Debian's PACKAGE (say
# usr/bin/promtool), from the installed package, or else fetched once with
# apt-get download and unpacked with dpkg -x under the build directory (a
# fresh machine may have no package lists: updated once when root). Prints
# the path; 1 with a message when there is none.
t_deb_tool() {
	if dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" && [ -x "/$2" ]; then
		echo "/$2"; return 0
	fi
	d="$B/deb/$1"
	if [ ! -x "$d/$2" ]; then
		rm -rf "$d.tmp"; mkdir -p "$d.tmp"
		if ! (cd "$d.tmp" && { apt-get download "$1" >download.log 2>&1 ||
		      { [ "$(id -u)" -eq 0 ] && apt-get update -qq >>download.log 2>&1 &&
		        apt-get download "$1" >>download.log 2>&1; }; } &&
		      dpkg -x "$1"_*.deb root); then
			echo "$1 is neither installed nor downloadable" \
				"(apt-get download $1: $(tail -1 "$d.tmp/download.log" 2>/dev/null))" >&2
			return 1
		fi
		rm -rf "$d"; mv "$d.tmp/root" "$d"; rm -rf "$d.tmp"
	fi
	echo "$d/$2"
}

nova_stop() {
	[ -n "$T_PID" ] || return 0
	kill -TERM "$T_PID" 2>/dev/null
	wait "$T_PID" 2>/dev/null
	T_PID=
}

# T_KEEP=DIR keeps a copy of the work directory (novad's log, the agents'
# logs, the state) there, for a failure that needs looking into.
t_cleanup() {
	nova_stop
	# The lpu agents this novad started (detached: they outlive it by
	# design) would otherwise run on into the next test, which counts
	# the agents it sees.
	[ -n "${NOVA_URL:-}" ] && pkill -f "nova-sidecar --gateway $NOVA_URL " 2>/dev/null
	if [ -n "${T_KEEP:-}" ]; then cp -r "$T_WORK" "$T_KEEP" 2>/dev/null; fi
	rm -rf "$T_WORK"
}
trap t_cleanup EXIT
