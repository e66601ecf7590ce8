#!/bin/sh
# Engine ports of nova-sidecar with real processes: three engines of one
# sidecar get three different ports, outside the kernel's ephemeral range;
# a port another process listens on is skipped; an engine whose port is
# taken between the sidecar's check and its own bind is started again at
# once on another port, not counted as a restart.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
E="$B/nova-mock-engine"
SC_PID=; HOLDER=
trap 'kill -9 $SC_PID $HOLDER 2>/dev/null; [ -s "$T_WORK/thief.pid" ] && kill -9 "$(cat "$T_WORK/thief.pid")" 2>/dev/null; t_cleanup' EXIT

# pool NAME: a fake pool of one node with room for three replicas.
pool() {
	"$C" pool create "$1" --provider fake \
		--config "{\"state_file\":\"$1.json\",\"nodes\":1,\"accelerators_per_node\":3}" >/dev/null
}
# sidecar POOL ARGS...: the sidecar of the pool's node, once it is placed on.
sidecar() {
	p=$1; shift
	node=$(t_sql "SELECT n.id FROM nodes n JOIN pools p ON p.id = n.pool_id WHERE p.name = '$p'")
	token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$NOVA_STATE_DIR/fake/$p.json")
	"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$node" --token "$token" "$@" \
		>>"$T_WORK/sidecar-$p.log" 2>&1 &
	SC_PID=$!
}
stop_sidecar() { kill -TERM $SC_PID 2>/dev/null; wait $SC_PID 2>/dev/null; SC_PID=; }
# ports POOL: the ports of the pool's replicas' endpoints, one a line.
ports() {
	t_sql "SELECT r.endpoint FROM replicas r JOIN deployments d ON d.id = r.deployment_id
	       JOIN pools p ON p.id = d.pool_id WHERE p.name = '$1' AND r.state = 'ready'" |
		sed -n 's/.*:\([0-9]*\)$/\1/p' | sort -n
}
# free_pair: a port P with P and P + 1 free, in 22000-26999.
free_pair() {
	p=$((22000 + ($$ % 2500) * 2))
	while ss -Htan "( sport = :$p or sport = :$((p + 1)) )" | grep -q .; do p=$((p + 2)); done
	echo $p
}

"$C" model register -f etc/models/lora_static.yaml >/dev/null

# Three engines on one node, default range.
pool a
"$C" deploy mistral-7b-lora --pool a --name a --replicas 3 --placement binpack >/dev/null
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 3 20 || { t_fail "placed" "no"; exit 0; }
sidecar a --mock-engine "$E"
t_wait_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id
	    WHERE d.name = 'a' AND r.state = 'ready'" 3 30 ||
	t_fail "three replicas ready" "$(t_sql "SELECT state || ' ' || state_reason FROM replicas")"
ports a >"$T_WORK/ports"
n=$(sort -u "$T_WORK/ports" | wc -l)
[ "$n" -eq 3 ] && t_pass "three engines of one sidecar get three different ports" ||
	t_fail "distinct ports" "$(tr '\n' ' ' <"$T_WORK/ports")"
# Not `read <file`: a sysctl file read a byte at a time ends after one.
range=$(cat /proc/sys/net/ipv4/ip_local_port_range)
start=${range%%[!0-9]*}; end=${range##*[!0-9]}
bad=$(awk -v s="$start" -v e="$end" '$1 >= s && $1 <= e' "$T_WORK/ports")
[ -s "$T_WORK/ports" ] && [ -z "$bad" ] &&
	t_pass "engine ports lie outside the ephemeral range $start-$end" ||
	t_fail "ports outside $start-$end" "$(tr '\n' ' ' <"$T_WORK/ports")"
grep -q '"engine ports"' "$T_WORK/sidecar-a.log" && t_pass "the sidecar logs its engine port range" ||
	t_fail "range logged" "$(head -c 300 "$T_WORK/sidecar-a.log")"
stop_sidecar

# A port another process listens on is skipped: of a two-port range, the
# engine gets the free one.
r=$(free_pair)
"$E" --port "$r" >/dev/null 2>&1 &
HOLDER=$!
i=0; while ! curl -sf "http://127.0.0.1:$r/health" >/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
pool b
"$C" deploy mistral-7b-lora --pool b --name b >/dev/null
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 20 || { t_fail "placed b" "no"; exit 0; }
sidecar b --mock-engine "$E" --engine-ports "$r-$((r + 1))"
t_wait_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id
	    WHERE d.name = 'b' AND r.state = 'ready'" 1 20
got=$(ports b)
[ "$got" = $((r + 1)) ] && t_pass "a port another process listens on is skipped" ||
	t_fail "held port skipped" "range $r-$((r + 1)), holder on $r, engine on '$got'"
stop_sidecar
kill $HOLDER; wait $HOLDER 2>/dev/null; HOLDER=

# The engine's first start loses its port: the script below starts another
# listener on it, then exits as an engine that could not bind would.
cat >"$T_WORK/engine.sh" <<EOF
#!/bin/sh
if [ ! -e "$T_WORK/thief.pid" ]; then
	"$E" --port "\$1" --model thief >/dev/null 2>&1 </dev/null &
	echo \$! >"$T_WORK/thief.pid"
	i=0; while ! curl -sf "http://127.0.0.1:\$1/health" >/dev/null && [ \$i -lt 50 ]; do i=\$((i + 1)); sleep 0.1; done
	echo "\$1" >"$T_WORK/thief.port"
	exit 1
fi
exec "$E" --port "\$1" --model "\$2"
EOF
cat >"$T_WORK/thief.yaml" <<EOF
name: port-loser
version: "1"
kind: single
engine:
  command: [sh, $T_WORK/engine.sh, "{port}", "{model}"]
  health_path: /health
stages:
  - name: main
    accelerators: 1
EOF
"$C" model register -f "$T_WORK/thief.yaml" >/dev/null || t_fail "register port-loser" "$(cat "$T_WORK/thief.yaml")"
r=$(free_pair)
pool c
"$C" deploy port-loser --pool c --name c >/dev/null
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 20 || { t_fail "placed c" "no"; exit 0; }
sidecar c --engine-ports "$r-$((r + 1))"
i=0; got=
while [ $i -lt 150 ]; do
	got=$(ports c)
	[ -n "$got" ] && [ -s "$T_WORK/thief.port" ] && [ "$got" != "$(cat "$T_WORK/thief.port")" ] && break
	i=$((i + 1)); sleep 0.1
done
thief=$(cat "$T_WORK/thief.port" 2>/dev/null)
[ -n "$thief" ] && [ -n "$got" ] && [ "$got" != "$thief" ] &&
	t_pass "an engine that lost its port is ready on another one" ||
	t_fail "ready on another port" "taken $thief, endpoint '$got'"
grep -q "port $thief was taken by another process" "$T_WORK/sidecar-c.log" &&
	! grep -q "model server died" "$T_WORK/sidecar-c.log" &&
	t_pass "it is started again at once, not counted as a restart" ||
	t_fail "quick restart on another port" "$(grep -i 'port\|died' "$T_WORK/sidecar-c.log" | head -5)"
stop_sidecar
t_expect_exit 2 "a bad --engine-ports exits 2" "$B/nova-sidecar" --gateway http://x --node-id y --token z \
	--engine-ports 100-200
t_expect_out "engine-ports" "and names the flag"
exit 0
