#!/bin/sh
# Issue 14: no server files or programs through the API. With an ordinary
# API key, a pool config may name files on novad's machine only under
# novad.yaml's provider_files (here the default: the state directory and
# the source tree's etc/), resolved before the check and never opened
# otherwise; no answer and no log line quotes a file; the content may be
# given inline instead; the program lpu agents run is novad's lpu_agent
# (NOVA_LPU_AGENT), never the pool's "agent".
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
C="$B/novactl"
SECRET="nova-secret-$$-do-not-echo"
printf 'clusters: %s\n%s: 1\n' "$SECRET" "$SECRET" >"$T_WORK/secret.yaml"
cat >"$T_WORK/agent.sh" <<EOF2
#!/bin/sh
echo "\$@" >>"$T_WORK/agent-ran"
exec "$B/nova-sidecar" "\$@"
EOF2
chmod 0755 "$T_WORK/agent.sh"
stop_agents() {
	for f in "$T_WORK"/state/lpu/*/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
}
trap 'stop_agents; t_cleanup' EXIT
export NOVA_LPU_AGENT="$T_WORK/agent.sh"
nova_start || { t_fail "novad starts" "see log"; exit 0; }
"$C" apikey create files-test --scope write --scope read >"$T_WORK/key" 2>"$T_WORK/err" || { t_fail "api key" "$(cat "$T_WORK/err")"; exit 0; }
KEY=$(head -1 "$T_WORK/key")
case "$KEY" in sk-nova-*) ;; *) t_fail "api key" "$(cat "$T_WORK/key" "$T_WORK/err")"; exit 0 ;; esac
STATE="$NOVA_STATE_DIR"

# post BODY: POST /v1/pools with the API key; status in $code, body in $T_WORK/resp
post() {
	code=$(timeout 15 curl -s -m 10 -o "$T_WORK/resp" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' --data-binary "$1" "$NOVA_URL/v1/pools")
}
# refused NAME FIELD BODY: 400 naming FIELD, saying why, quoting nothing.
refused() {
	post "$3"
	if [ "$code" = 400 ] && grep -q "\"field\": *\"$2\"" "$T_WORK/resp"; then t_pass "$1: 400 naming $2"
	else t_fail "$1: 400 naming $2" "got $code: $(head -c 300 "$T_WORK/resp")"; fi
	quoted "$1"
}
quoted() {
	if grep -q -e "$SECRET" -e "root:" -e "PATH=" "$T_WORK/resp"; then
		t_fail "$1: the answer quotes no file" "$(head -c 300 "$T_WORK/resp")"
	fi
}
lpu() { echo "{\"name\":\"$1\",\"provider\":\"lpu\",\"config\":{\"allocation\":\"c1r1\",\"mock_agents\":true,$2}}"; }

refused "/etc/shadow as topology" config.topology "$(lpu p1 '"topology":"/etc/shadow"')"
grep -q "not under an allowed directory" "$T_WORK/resp" && grep -q "provider_files" "$T_WORK/resp" &&
	t_pass "says why and names the novad.yaml key" || t_fail "says why" "$(cat "$T_WORK/resp")"
refused "/proc/self/environ as topology" config.topology "$(lpu p1 '"topology":"/proc/self/environ"')"
refused "/dev/ptmx as topology (not opened: no hang)" config.topology "$(lpu p1 '"topology":"/dev/ptmx"')"
refused "a secret outside as topology" config.topology "$(lpu p1 "\"topology\":\"$T_WORK/secret.yaml\"")"
refused "../ out of the state directory" config.topology \
	"$(lpu p1 "\"topology\":\"$STATE/../secret.yaml\"")"
ln -s "$T_WORK/secret.yaml" "$STATE/link.yaml"
refused "a symlink out of the state directory" config.topology "$(lpu p1 "\"topology\":\"$STATE/link.yaml\"")"
ln -s /etc/shadow "$STATE/shadow"
refused "a symlink to /etc/shadow" config.topology "$(lpu p1 "\"topology\":\"$STATE/shadow\"")"
refused "a relative path" config.topology "$(lpu p1 '"topology":"etc/datacenter.yaml"')"
refused "a path with a NUL" config.topology "$(lpu p1 "\"topology\":\"$PWD/etc/datacenter.yaml\\u0000x\"")"
mkfifo "$STATE/fifo.yaml"
refused "a FIFO under the state directory (not opened)" config.topology "$(lpu p1 "\"topology\":\"$STATE/fifo.yaml\"")"
# A file under an allowed directory that is not a topology: positioned, unquoted.
cp "$T_WORK/secret.yaml" "$STATE/secret.yaml"
refused "a non-topology under the state directory" config.topology \
	"$(lpu p1 "\"topology\":\"$STATE/secret.yaml\"")"
grep -q "secret.yaml:2:1: unknown key" "$T_WORK/resp" && t_pass "its error says file:line:column" ||
	t_fail "its error says file:line" "$(cat "$T_WORK/resp")"
cp /etc/passwd "$STATE/passwd"
refused "/etc/passwd copied under the state directory" config.topology "$(lpu p1 "\"topology\":\"$STATE/passwd\"")"
refused "agent in the pool config" config.agent "$(lpu p1 "\"topology\":\"$PWD/etc/datacenter.yaml\",\"agent\":\"/bin/sh\"")"
grep -q "novad.yaml" "$T_WORK/resp" && t_pass "agent: says it is set in novad.yaml" ||
	t_fail "agent: says it is set in novad.yaml" "$(cat "$T_WORK/resp")"
refused "both topology forms" config.topology_inline \
	"$(lpu p1 "\"topology\":\"$PWD/etc/datacenter.yaml\",\"topology_inline\":\"clusters: []\"")"
refused "/etc/shadow as kubeconfig" config.kubeconfig \
	'{"name":"k1","provider":"kubernetes","config":{"kubeconfig":"/etc/shadow"}}'
refused "a kubeconfig naming /etc/shadow as its token file" config.kubeconfig_inline \
	'{"name":"k1","provider":"kubernetes","config":{"kubeconfig_inline":"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: \"https://a\"}}]\nusers: [{name: u, user: {tokenFile: /etc/shadow}}]\n"}}'
refused "/etc/shadow as an ssh key" 'config.hosts\[0\].key' \
	"{\"name\":\"s1\",\"provider\":\"ssh\",\"config\":{\"known_hosts_inline\":\"\",\"hosts\":[{\"address\":\"a\",\"user\":\"u\",\"key\":\"/etc/shadow\"}]}}"
refused "/etc/shadow as known_hosts" config.known_hosts \
	"{\"name\":\"s1\",\"provider\":\"ssh\",\"config\":{\"known_hosts\":\"/etc/shadow\",\"hosts\":[{\"address\":\"a\",\"user\":\"u\"}]}}"
refused "agent in an ssh pool config" config.agent \
	"{\"name\":\"s1\",\"provider\":\"ssh\",\"config\":{\"known_hosts_inline\":\"\",\"agent\":\"/bin/sh\",\"hosts\":[{\"address\":\"a\",\"user\":\"u\"}]}}"
shadow1=$(head -1 /etc/shadow 2>/dev/null)
if grep -q -e "$SECRET" -e "root:x:0:0" "$T_WORK/novad.log" ||
	{ [ -n "$shadow1" ] && grep -qF -- "$shadow1" "$T_WORK/novad.log"; }; then
	t_fail "no novad log line quotes a file" "$(grep -e "$SECRET" -e "root:" "$T_WORK/novad.log" | head -3)"
else t_pass "no novad log line quotes a file"; fi

# The same topology copied under an allowed directory works; so does inline.
cp etc/datacenter.yaml "$STATE/dc.yaml"
post "$(lpu racks "\"topology\":\"$STATE/dc.yaml\"")"
[ "$code" = 201 ] && t_pass "a topology under the state directory is accepted" ||
	t_fail "a topology under the state directory is accepted" "$code $(cat "$T_WORK/resp")"
inline=$(python3 -c 'import json,sys; print(json.dumps(open("etc/datacenter.yaml").read()))')
post "{\"name\":\"inline\",\"provider\":\"lpu\",\"config\":{\"allocation\":\"c2r1\",\"topology_inline\":$inline}}"
[ "$code" = 201 ] && t_pass "an inline topology is accepted" ||
	t_fail "an inline topology is accepted" "$code $(cat "$T_WORK/resp")"

# NOVA_LPU_AGENT: the wrapper is what runs for the pool's nodes.
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy on the racks" "$C" deploy demo --pool racks --replicas 1 --name demo
if t_wait_sql "SELECT state FROM deployments" running 30; then t_pass "the replica runs on its agent"
else t_fail "the replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
if grep -q -- "--node-id" "$T_WORK/agent-ran" 2>/dev/null; then t_pass "novad ran NOVA_LPU_AGENT for the node"
else t_fail "novad ran NOVA_LPU_AGENT for the node" "no $T_WORK/agent-ran"; fi
"$C" pool delete racks --force >/dev/null 2>&1
stop_agents
