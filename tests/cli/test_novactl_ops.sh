#!/bin/sh
# novactl's operator commands against a real novad and PostgreSQL: describe,
# events (and GET /v1/events with its cursor), --wait with its exit codes,
# get --watch, -l selectors, several names in one get, routes --watch
# --model, and completion of the new verbs and flags. Replicas become ready
# from heartbeats sent with curl under the node's token, as a sidecar would.
set -u
. tests/support/lib.sh
unset NOVA_SERVER NOVA_TOKEN NOVA_CONTEXT
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
export NOVA_HEARTBEAT_INTERVAL_MS=1000 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
BG=
trap 'for p in $BG; do kill $p 2>/dev/null; done; t_cleanup' EXIT

# t_lacks PATTERN NAME: the last command's stdout+stderr did not match.
t_lacks() {
	if grep -q -- "$1" "$T_WORK/out" "$T_WORK/err"; then t_fail "$2" "\"$1\" in: $(grep -- "$1" "$T_WORK/out" "$T_WORK/err" | head -3)"
	else t_pass "$2"; fi
}
# wait_file PATTERN FILE [SECONDS]: until FILE has a line matching PATTERN.
wait_file() {
	wf_i=0
	while ! grep -q -- "$1" "$2" 2>/dev/null; do
		wf_i=$((wf_i + 1)); [ $wf_i -gt $((${3:-10} * 10)) ] && return 1; sleep 0.1
	done
}

# --- help and completion name every new verb and flag -----------------------
t_expect_exit 0 "novactl --help" "$C" --help
t_expect_out "describe pool|node|deployment|model NAME" "help names describe"
t_expect_out "events \[--pool P\] \[--deployment D\] \[--node N\] \[--since T\] \[--watch\]" "help names events"
t_expect_out "\[--wait \[--timeout S\]\]" "help names deploy --wait"
t_expect_out "7 --wait timed out" "help documents the timeout's exit status"
t_expect_out "8 --wait saw the deployment fail" "help documents the failure's exit status"
t_expect_out "Lists take -l key=value" "help names the selectors"
complete_has() { # complete_has NAME WANT WORDS...
	cn=$1; cw=$2; shift 2
	if "$C" __complete "$@" >"$T_WORK/out" 2>"$T_WORK/err" && grep -qx -- "$cw" "$T_WORK/out"; then t_pass "$cn"
	else t_fail "$cn" "no $cw in: $(tr '\n' ' ' <"$T_WORK/out")"; fi
}
complete_has "completion offers describe" describe ""
complete_has "completion offers events" events ""
complete_has "completion offers describe's kinds" deployment describe ""
complete_has "completion offers describe --events" --events describe pool ""
complete_has "completion offers events --watch" --watch events ""
complete_has "completion offers events --since" --since events ""
complete_has "completion offers events --node" --node events ""
complete_has "completion offers deploy --wait" --wait deploy m ""
complete_has "completion offers deploy --timeout" --timeout deploy m ""
complete_has "completion offers scale --wait" --wait deployment scale ""
complete_has "completion offers stop --wait" --wait deployment stop ""
complete_has "completion offers start --wait" --wait deployment start ""
complete_has "completion offers get --watch" --watch deployment get ""
complete_has "completion offers pool list --selector" --selector pool list ""
complete_has "completion offers node list --selector" --selector node list ""
complete_has "completion offers deployment list --selector" --selector deployment list ""
t_expect_exit 0 "deployment --help" "$C" deployment --help
t_expect_out "exits 7" "deployment --help says --wait's timeout exits 7"

# --- objects ---------------------------------------------------------------------
t_expect_exit 0 "model register" "$C" model register -f etc/models/lora_static.yaml
sed 's/^name: .*/name: secret-model/' etc/models/single.yaml >"$T_WORK/secret.yaml"
sed -i 's/^  health_path:.*/&\n  env: {HF_TOKEN: hf_s3cr3t_value, LOG_LEVEL: debug}/' "$T_WORK/secret.yaml"
t_expect_exit 0 "model with an engine token registers" "$C" model register -f "$T_WORK/secret.yaml"
t_expect_exit 0 "pool p" "$C" pool create p --provider fake --config '{"state_file":"provider.json"}' \
	--label zone=eu --label tier=gold
t_expect_exit 0 "pool q" "$C" pool create q --provider fake --label zone=us
t_expect_exit 0 "pool r" "$C" pool create r --provider fake

# --- -l selectors (client-side: the API has no label filter) -------------------
t_expect_exit 0 "pool list -l zone=eu" "$C" pool list -l zone=eu
t_expect_out "^p  *fake" "the selector keeps the matching pool"
t_lacks "^q " "the selector drops a pool with another value"
t_lacks "^r " "the selector drops a pool without the label"
t_expect_exit 0 "pool list -l zone=eu,tier=gold" "$C" pool list -l zone=eu,tier=gold
t_expect_out "^p  *fake" "pairs joined by commas all match"
t_expect_exit 0 "pool list --selector zone=us" "$C" pool list --selector zone=us
t_expect_out "^q  *fake" "--selector is -l"
t_lacks "^p " "--selector drops the others"
t_expect_exit 0 "pool list -l zone=eu -l tier=silver" "$C" pool list -l zone=eu -l tier=silver
t_lacks "^p " "every -l must match"
t_expect_exit 0 "pool list -l zone=eu -o json" "$C" pool list -l zone=eu -o json
if python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert [x["name"] for x in p] == ["p"], p' "$T_WORK/out" 2>"$T_WORK/py"; then
	t_pass "-o json is filtered too"
else t_fail "-o json is filtered too" "$(cat "$T_WORK/py")"; fi
t_expect_exit 2 "a selector without = exits 2" "$C" pool list -l zone
t_expect_out "-l must be key=value" "the error names -l"
t_expect_exit 2 "-l without a value exits 2" "$C" pool list -l
t_expect_out "-l needs a value" "the error says -l needs a value"
t_expect_exit 2 "model list has no selector" "$C" model list -l a=b

t_expect_exit 0 "deploy with a node selector" "$C" deploy mistral-7b-lora --pool q --name sel --label gpu=big
t_expect_exit 0 "deployment list -l gpu=big" "$C" deployment list -l gpu=big
t_expect_out "^sel  *mistral-7b-lora:1  *q" "deployment list -l keeps the deployment with the label"
t_expect_exit 0 "deployment list -l gpu=small" "$C" deployment list -l gpu=small --no-headers
[ ! -s "$T_WORK/out" ] && t_pass "deployment list -l drops the others" || t_fail "deployment list -l drops the others" "$(cat "$T_WORK/out")"
t_expect_exit 0 "deployment stop sel" "$C" deployment stop sel --wait --timeout 30
t_expect_exit 0 "node list -l nosuch=label" "$C" node list -l nosuch=label --no-headers
[ ! -s "$T_WORK/out" ] && t_pass "node list -l drops unlabelled nodes" || t_fail "node list -l drops unlabelled nodes" "$(cat "$T_WORK/out")"

# --- several names in one get ---------------------------------------------------
t_expect_exit 0 "pool get p q r" "$C" pool get p q r
order=$(sed -n 's/^name: *//p' "$T_WORK/out" | tr '\n' ' ')
[ "$order" = "p q r " ] && t_pass "get prints each name, in order" || t_fail "get prints each name, in order" "$order"
t_expect_exit 3 "pool get with a missing name exits 3" "$C" pool get p nope q
order=$(sed -n 's/^name: *//p' "$T_WORK/out" | tr '\n' ' ')
[ "$order" = "p q " ] && t_pass "the others still print around a missing one" || t_fail "the others still print" "$order"
t_expect_out "nope" "the missing one is named"
t_expect_exit 0 "pool get p q -o json" "$C" pool get p q -o json
if python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert [x["name"] for x in p] == ["p","q"], p' "$T_WORK/out" 2>"$T_WORK/py"; then
	t_pass "several names in -o json are one array"
else t_fail "several names in -o json are one array" "$(cat "$T_WORK/py")"; fi
t_expect_exit 0 "model get two names" "$C" model get mistral-7b-lora secret-model -o name
t_expect_out "^model/mistral-7b-lora$" "-o name names the first"
t_expect_out "^model/secret-model$" "-o name names the second"
t_expect_exit 2 "pool get without a name exits 2" "$C" pool get

# --- deploy --wait: a timeout exits 7 ------------------------------------------------
t_expect_exit 7 "deploy --wait without ready replicas times out with 7" \
	"$C" deploy mistral-7b-lora --pool p --name web --wait --timeout 3
t_expect_out "timed out after 3 s waiting for deployment web" "the timeout says what it waited for"
t_expect_out "^waiting for web: 0/1 ready, " "not on a terminal, progress comes as plain lines"
if grep '^waiting for' "$T_WORK/err" | uniq -d | grep -q .; then
	t_fail "a progress line only when something changed" "$(grep '^waiting' "$T_WORK/err")"
else t_pass "a progress line only when something changed"; fi
# On a terminal the progress is one line, rewritten in place.
script -qec "\"$C\" deployment scale web --replicas 1 --wait --timeout 2" /dev/null >"$T_WORK/tty" 2>&1; rc=$?
if [ "$rc" -eq 7 ] && grep -q "$(printf '\r')$(printf '\033')\[Kwaiting for web: 0/1 ready" "$T_WORK/tty"; then
	t_pass "on a terminal the progress line is rewritten in place (\\r)"
else t_fail "on a terminal the progress line is rewritten in place" "exit $rc: $(od -c "$T_WORK/tty" | head -5)"; fi
t_expect_exit 2 "--timeout without --wait exits 2" "$C" deployment scale web --replicas 1 --timeout 5
t_expect_out "--timeout needs --wait" "the error names --timeout"
t_expect_exit 2 "a bad --timeout exits 2" "$C" deployment start web --wait --timeout soon
t_expect_out "--timeout must be 1 to 86400 seconds" "the error names --timeout's range"

WEB_REPLICAS="FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'web'"
t_wait_sql "SELECT count(*) $WEB_REPLICAS AND r.state = 'placed'" 1 ||
	t_fail "the replica is placed" "$(t_sql "SELECT r.state $WEB_REPLICAS")"
node=$(t_sql "SELECT n.id FROM nodes n JOIN pools p ON p.id = n.pool_id WHERE p.name = 'p' AND n.state <> 'terminated' LIMIT 1")
node_name=$(t_sql "SELECT name FROM nodes WHERE id = '$node'")
replica=$(t_sql "SELECT r.id $WEB_REPLICAS LIMIT 1")
token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$NOVA_STATE_DIR/fake/provider.json")

# get --watch and routes --watch --model see what the heartbeats change.
"$C" deployment get web --watch >"$T_WORK/dwatch" 2>&1 &
dwatch=$!; BG="$BG $dwatch"
"$C" routes --watch --model sql-expert >"$T_WORK/rwatch" 2>&1 &
rwatch=$!; BG="$BG $rwatch"
wait_file "^state:" "$T_WORK/dwatch" || t_fail "get --watch prints at once" "$(cat "$T_WORK/dwatch")"

# The beater reads its node, token and replica from a file each time, so
# a replica placed later (a start) can be made ready too.
echo "$node $token $replica" >"$T_WORK/beat.who"
beat() {
	read -r b_node b_token b_replica <"$T_WORK/beat.who"
	curl -s -o /dev/null -H "Authorization: Bearer $b_token" "$NOVA_URL/v1/nodes/$b_node/heartbeat" \
		-d "{\"seq\":$1,\"replicas\":[{\"replica_id\":\"$b_replica\",\"state\":\"ready\",\"endpoint\":\"http://127.0.0.1:7001\",\"load\":{\"queue_depth\":0}}]}"
}
( s=1000; while :; do s=$((s + 1)); beat $s; sleep 0.1; done ) &
beater=$!; BG="$BG $beater"

t_expect_exit 0 "scale --wait reaches running" "$C" deployment scale web --replicas 1 --wait --timeout 30
t_expect_out "^deployment web running: 1 of 1 replicas ready" "--wait says where it got"
t_expect_exit 0 "deployment get web" "$C" deployment get web
t_expect_out "^state:     running" "the deployment runs"

wait_file "^state:     running" "$T_WORK/dwatch" 10
n=$(grep -c "^state:" "$T_WORK/dwatch")
[ "$n" -ge 2 ] && t_pass "get --watch re-prints the deployment when it changes" ||
	t_fail "get --watch re-prints on change" "$(cat "$T_WORK/dwatch")"
kill -INT $dwatch; wait $dwatch; rc=$?
[ "$rc" -eq 0 ] && t_pass "get --watch exits 0 on SIGINT" || t_fail "get --watch exits 0 on SIGINT" "exit $rc"

wait_file "http://127.0.0.1:7001" "$T_WORK/rwatch" 10 ||
	wait_file "sql-expert -> 1 endpoint" "$T_WORK/rwatch" 5
if grep -q "sql-expert" "$T_WORK/rwatch" && ! grep -q "support-tone" "$T_WORK/rwatch" &&
   ! grep -q "drop --model" "$T_WORK/rwatch"; then
	t_pass "routes --watch --model shows that model's routes only"
else t_fail "routes --watch --model shows that model's routes only" "$(cat "$T_WORK/rwatch")"; fi
kill $rwatch 2>/dev/null; wait $rwatch 2>/dev/null

# --- events ------------------------------------------------------------------------
t_expect_exit 0 "events" "$C" events
t_expect_out "^AT  *SOURCE  *OBJECT  *POOL  *EVENT  *REASON" "events has a header row"
t_expect_out "deployment  *web  *p  *(new) -> pending  *created" "events show the deployment's creation"
t_expect_out "node  *$node_name  *p  *provisioning -> ready" "events show the node's transition"
first=$(grep -n "(new) -> pending" "$T_WORK/out" | head -1 | cut -d: -f1)
last=$(grep -n "deploying -> running" "$T_WORK/out" | tail -1 | cut -d: -f1)
[ -n "$first" ] && [ -n "$last" ] && [ "$first" -lt "$last" ] && t_pass "events are newest last" ||
	t_fail "events are newest last" "$(cat "$T_WORK/out")"
t_expect_exit 0 "events --deployment web" "$C" events --deployment web
t_lacks "^[0-9TZ:-]*  *node " "--deployment shows no node events"
t_expect_out "deployment  *web" "--deployment shows the deployment's"
t_expect_exit 0 "events --node" "$C" events --node "$node_name"
t_lacks "  deployment  " "--node shows no deployment events"
t_expect_out "node  *$node_name" "--node shows the node's"
t_expect_exit 0 "events --pool q" "$C" events --pool q
t_lacks "web" "--pool shows nothing of another pool"
t_expect_exit 0 "events -o name" "$C" events --deployment web -o name
t_expect_out "^event/deployment-[0-9][0-9]*$" "events -o name prints event/SOURCE-SEQ"
t_expect_exit 3 "events --deployment nope exits 3" "$C" events --deployment nope
t_expect_exit 3 "events --pool nope exits 3" "$C" events --pool nope
t_expect_exit 2 "events --since yesterday exits 2" "$C" events --since yesterday
t_expect_out "since" "the error names since"
t_expect_exit 2 "events --frobnicate exits 2" "$C" events --frobnicate
t_expect_out "unknown flag --frobnicate" "the error names the flag"
t_expect_exit 0 "events --since -o json" "$C" events --since 2000-01-01T00:00:00Z --limit 3 -o json
if python3 - "$T_WORK/out" <<'EOF' 2>"$T_WORK/py"
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a["events"]) == 3 and a["more"] is True, a
assert [e["at"] for e in a["events"]] == sorted(e["at"] for e in a["events"]), a
assert all(set(e) >= {"source", "seq", "object", "kind", "reason", "at"} for e in a["events"]), a
print(a["cursor"])
EOF
then t_pass "--since pages oldest first, with a cursor and more"; cursor=$(cat "$T_WORK/py")
else t_fail "--since pages oldest first" "$(cat "$T_WORK/py")"; cursor=; fi
"$C" events --since 2000-01-01T00:00:00Z --limit 1000 -o json >"$T_WORK/all"
tok=$(cat "$NOVA_STATE_DIR/admin_token")
curl -s -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events?since=2000-01-01T00:00:00Z&limit=3" >"$T_WORK/p1"
c1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cursor"])' "$T_WORK/p1")
curl -s -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events?after=$c1&limit=1000" >"$T_WORK/p2"
# (Events go on being recorded meanwhile: the pages hold at least all.)
if python3 - "$T_WORK/p1" "$T_WORK/p2" "$T_WORK/all" <<'EOF' 2>"$T_WORK/py"
import json, sys
p1 = json.load(open(sys.argv[1])); p2 = json.load(open(sys.argv[2]))
before = {(e["source"], e["seq"]) for e in json.load(open(sys.argv[3]))["events"]}
seen = [(e["source"], e["seq"]) for e in p1["events"] + p2["events"]]
assert len(seen) == len(set(seen)), "an event twice"
assert before <= set(seen), sorted(before - set(seen))
assert p2["more"] is False
EOF
then t_pass "the cursor's next page holds the rest, none twice"
else t_fail "the cursor's next page holds the rest" "$(cat "$T_WORK/py")"; fi
code=$(curl -s -o "$T_WORK/bad" -w '%{http_code}' -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events?after=1;DROP")
[ "$code" = 400 ] && grep -q '"field": *"after"' "$T_WORK/bad" && t_pass "a bad cursor is 400 naming after" ||
	t_fail "a bad cursor is 400 naming after" "$code $(cat "$T_WORK/bad")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$NOVA_URL/v1/events")
[ "$code" = 401 ] && t_pass "events need a credential" || t_fail "events need a credential" "$code"

# events --watch: polls with the cursor, prints each new event once.
"$C" events --deployment web --watch -o json >"$T_WORK/ewatch" 2>"$T_WORK/ewatch.err" &
ewatch=$!; BG="$BG $ewatch"
wait_file '"to":"running"' "$T_WORK/ewatch" 10 || t_fail "events --watch starts with the latest" "$(cat "$T_WORK/ewatch")"
t_expect_exit 0 "stop --wait reaches stopped" "$C" deployment stop web --wait --timeout 30
t_expect_out "^deployment web stopped" "stop --wait says it stopped"
if wait_file '"to":"stopped"' "$T_WORK/ewatch" 10; then t_pass "events --watch prints new events as they come"
else t_fail "events --watch prints new events" "$(cat "$T_WORK/ewatch" "$T_WORK/ewatch.err")"; fi
dups=$(sed -n 's/.*"seq":\([0-9]*\).*/\1/p' "$T_WORK/ewatch" | sort | uniq -d)
[ -z "$dups" ] && t_pass "events --watch prints each event once" || t_fail "events --watch prints each once" "$dups"
kill -INT $ewatch; wait $ewatch; rc=$?
[ "$rc" -eq 0 ] && t_pass "events --watch exits 0 on SIGINT" || t_fail "events --watch exits 0 on SIGINT" "exit $rc"
timeout 15 sh -c "\"$C\" events --watch | head -n 2 >/dev/null"; rc=$?
[ "$rc" -eq 0 ] && t_pass "events --watch ends when its reader leaves (SIGPIPE)" ||
	t_fail "events --watch ends when its reader leaves" "exit $rc"

# --- describe ----------------------------------------------------------------------
t_expect_exit 0 "describe pool p" "$C" describe pool p --events 1000
t_expect_out "^Name:  *p$" "describe pool: Name"
t_expect_out "^Labels:  *tier=gold" "describe pool: labels"
t_expect_out "^  *zone=eu" "describe pool: each label a line"
t_expect_out "^Quotas:  *max nodes unlimited, max accelerators unlimited, accelerator types any" "describe pool: quotas"
t_expect_out "^Config:  *(secrets masked)" "describe pool: config"
t_expect_out "^  state_file: provider.json" "describe pool: the config's keys"
t_expect_out "^Nodes:" "describe pool: nodes section"
t_expect_out "^  $node_name  *ready" "describe pool: its node"
t_expect_out "^  web  *mistral-7b-lora:1  *p  *0/1  *stopped" "describe pool: its deployment"
t_expect_out "^Events:" "describe pool: events section"
t_expect_out "node/$node_name  *provisioning -> ready" "describe pool: its nodes' events"
t_expect_exit 0 "describe deployment web" "$C" describe deployment web
t_expect_out "^State:  *stopped (all replicas stopped)" "describe deployment: state and reason"
t_expect_out "^Replicas:  *1 wanted, 0 ready" "describe deployment: replicas"
t_expect_out "deployment/web  *stopping -> stopped" "describe deployment: the last transitions"
t_expect_exit 0 "describe node" "$C" describe node "$node_name" --events 1000
t_expect_out "^Pool:  *p$" "describe node: its pool"
t_expect_out "node/$node_name  *provisioning -> ready  *provisioned" "describe node: its transitions with reasons"
t_expect_exit 0 "describe model secret-model" "$C" describe model secret-model
t_expect_out 'HF_TOKEN: "\*\*\*\*\*\*\*\*"' "describe masks a token in the engine's env"
t_expect_out "LOG_LEVEL: debug" "describe shows what is not a secret"
t_lacks "hf_s3cr3t_value" "describe never prints the secret"
t_expect_exit 0 "describe model mistral-7b-lora" "$C" describe model mistral-7b-lora
t_expect_out "^  web  *mistral-7b-lora:1  *p" "describe model: its deployments"
t_expect_exit 3 "describe pool nope exits 3" "$C" describe pool nope
t_expect_exit 2 "describe widget exits 2" "$C" describe widget x
t_expect_out "cannot describe \"widget\"" "describe names the bad kind"
t_expect_exit 2 "describe pool without a name exits 2" "$C" describe pool
t_expect_out "NAME is required" "describe asks for the name"
t_expect_exit 2 "describe -o json exits 2" "$C" describe pool p -o json
t_expect_out "novactl pool get p -o json" "describe -o json points at get"

# --- start --wait: back to running once its new replica reports ready ---------------
"$C" deployment start web --wait --timeout 60 >"$T_WORK/start.out" 2>&1 &
startp=$!; BG="$BG $startp"
if t_wait_sql "SELECT count(*) $WEB_REPLICAS AND r.state = 'placed'" 1 30; then
	r_node=$(t_sql "SELECT p.node_id FROM replica_placements p JOIN replicas r ON r.id = p.replica_id JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'web' AND r.state = 'placed' LIMIT 1")
	r_id=$(t_sql "SELECT r.id $WEB_REPLICAS AND r.state = 'placed' LIMIT 1")
	# The fake provider's state file holds each node's token.
	r_token=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
def find(o):
    if isinstance(o, dict):
        if sys.argv[2] in json.dumps(o) and isinstance(o.get("token"), str): return o["token"]
        for v in o.values():
            t = find(v)
            if t: return t
    if isinstance(o, list):
        for v in o:
            t = find(v)
            if t: return t
print(find(d) or "")' "$NOVA_STATE_DIR/fake/provider.json" "$r_node")
	echo "$r_node $r_token $r_id" >"$T_WORK/beat.who"
fi
wait $startp; rc=$?
[ "$rc" -eq 0 ] && grep -q "^deployment web running: 1 of 1 replicas ready" "$T_WORK/start.out" &&
	t_pass "start --wait waits for running and says so" ||
	t_fail "start --wait waits for running" "exit $rc: $(tail -5 "$T_WORK/start.out")"

# --- a deployment that fails: --wait exits 8 with the reason ----------------------
t_expect_exit 0 "pool bad" "$C" pool create bad --provider fake \
	--config '{"faults":{"provision":{"kind":"permanent","times":1000}}}'
t_expect_exit 8 "deploy --wait on a failing pool exits 8" \
	"$C" deploy mistral-7b-lora --pool bad --name doomed --wait --timeout 60
t_expect_out "deployment doomed failed: " "the failure's reason is printed"
