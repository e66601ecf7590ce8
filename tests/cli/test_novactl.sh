#!/bin/sh
# novactl end to end against a real novad and PostgreSQL: every command,
# exit codes, output formats, credentials from each source.
set -u
. tests/support/lib.sh
unset NOVA_SERVER NOVA_TOKEN
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"

# novactl finds the server (novad.url) and the admin token novad generated
# in its state directory by itself: neither NOVA_SERVER nor NOVA_TOKEN is set.
if [ "$(stat -c %a "$NOVA_STATE_DIR/admin_token" 2>/dev/null)" = 600 ]; then
	t_pass "novad wrote its admin token with mode 0600"
else
	t_fail "novad wrote its admin token with mode 0600" "$(ls -l "$NOVA_STATE_DIR" 2>&1)"
fi
t_expect_exit 0 "version reaches the server" "$C" version
t_expect_out "^novactl [0-9]" "version prints the client's version"
t_expect_out "novad   0" "version prints the server's version"
t_expect_exit 0 "version -o json" "$C" version -o json
t_expect_out '"server_version": "[0-9]' "version -o json has the server's version"
t_expect_exit 6 "version with the server down exits 6" "$C" --server http://127.0.0.1:1 version
t_expect_out "^novactl [0-9]" "version prints the client's version when the server is down"
t_expect_out "cannot reach novad at http://127.0.0.1:1" "version says the server is unreachable"

t_expect_exit 0 "pool create with the local admin token" \
	"$C" pool create gpu-a --provider fake --config '{"nodes":2}' --max-nodes 3 \
	--accelerator-types A100-80G,H100 --label zone=eu-1 --label "note=x'); DROP TABLE pools; --"
t_expect_out "gpu-a" "create prints the pool"
t_expect_exit 0 "pool list" "$C" pool list
t_expect_out "^NAME  *PROVIDER  *STATE  *NODES  *MAX-NODES  *CREATED" "list has a header row"
t_expect_out "^gpu-a  *fake  *active  *0  *3 " "list shows the pool"
t_expect_exit 0 "pool list -o json" "$C" pool list -o json
t_expect_out '"name": "gpu-a"' "json output is the API's"
t_expect_out '^  {' "json output is indented by two spaces"
if command -v python3 >/dev/null 2>&1; then
	if python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert [x["name"] for x in p] == ["gpu-a"], p; assert p[0]["quotas"]["max_nodes"] == 3' "$T_WORK/out" 2>"$T_WORK/py"; then
		t_pass "pool list -o json parses as the API's array"
	else
		t_fail "pool list -o json parses as the API's array" "$(cat "$T_WORK/py")"
	fi
fi
id=$(sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p' "$T_WORK/out" | head -1)
t_expect_exit 0 "pool get by id" "$C" -o json pool get "$id"
t_expect_out "\"note\": \"x'); DROP TABLE pools; --\"" "label with SQL metacharacters stored verbatim"
t_expect_exit 0 "pool get by name" "$C" pool get gpu-a
t_expect_out "accelerator types: \[\"A100-80G\",\"H100\"\]" "get shows quotas"

t_expect_exit 4 "duplicate pool name exits 4" "$C" pool create gpu-a --provider fake
t_expect_out "already exists" "duplicate names the problem"
t_expect_exit 3 "unknown pool exits 3" "$C" pool get nope
t_expect_out "novactl: " "unknown pool says what is wrong"
t_expect_exit 3 "a pool reference cannot climb out of /v1/pools" "$C" pool get ../apikeys
t_expect_exit 2 "SQL metacharacters in a pool name are refused" \
	"$C" pool create "x'; DROP TABLE pools; --" --provider fake
t_expect_out "pool name must be 1 to 63 lower-case letters, digits or '-'" "refused name says what names may be"
t_expect_out "field: name" "refused name names the field"
t_expect_exit 2 "a 64-character pool name is refused" \
	"$C" pool create "$(printf 'a%.0s' $(seq 64))" --provider fake
t_expect_exit 0 "pools survive the metacharacters" "$C" pool get gpu-a
t_expect_exit 2 "bad pool name exits 2" "$C" pool create "Bad Name" --provider fake
t_expect_out "field: name" "bad name names the field"
t_expect_exit 2 "provider refusing the config exits 2" \
	"$C" pool create p2 --provider fake --config '{"fail_validate":"allocation"}'
t_expect_out "field: config.allocation" "config error names config.FIELD"
t_expect_exit 2 "unknown provider exits 2" "$C" pool create p2 --provider nosuch
t_expect_out "hint: registered providers: lpu, kubernetes, ssh, fake" "unknown provider hints the known ones"
printf 'mode: static\nnodes: 2\n' >"$T_WORK/cfg.yaml"
t_expect_exit 0 "pool create --config-file YAML" "$C" pool create p3 --provider fake --config-file "$T_WORK/cfg.yaml"
printf 'mode: [static\n' >"$T_WORK/bad.yaml"
t_expect_exit 2 "bad config file exits 2" "$C" pool create p4 --provider fake --config-file "$T_WORK/bad.yaml"
t_expect_out "bad.yaml:" "bad config file error names the file"

t_expect_exit 0 "pool update quotas" "$C" pool update gpu-a --max-nodes none --max-accelerators 16
t_expect_out "max nodes:         unlimited" "update lifts max nodes"
t_expect_out "max accelerators:  16" "update sets max accelerators"
t_expect_exit 0 "pool update accelerator types" "$C" pool update gpu-a --accelerator-types A100-80G,H100,FAKE-GPU
t_expect_out 'accelerator types: \["A100-80G","H100","FAKE-GPU"\]' "update sets accelerator types"
t_expect_exit 0 "pool update back to a limit by id" "$C" pool update "$id" --max-nodes 8
t_expect_out "max nodes:         8" "update by id sets max nodes"
t_expect_exit 2 "pool update with nothing exits 2" "$C" pool update gpu-a
t_expect_exit 2 "pool update bad number exits 2" "$C" pool update gpu-a --max-nodes lots
# Warm nodes: refused naming the field where they cannot be (a static
# pool's nodes exist anyway; above max nodes); 0 is always fine.
t_expect_exit 2 "warm nodes on a static pool exit 2" "$C" pool update p3 --warm-nodes 1
t_expect_out "field: warm_nodes" "warm nodes on a static pool name the field"
t_expect_exit 2 "warm nodes above max nodes exit 2" "$C" pool update gpu-a --warm-nodes 9
t_expect_out "field: warm_nodes" "warm nodes above max nodes name the field"
t_expect_exit 2 "pool create --warm-nodes above --max-nodes exits 2" \
	"$C" pool create warm-x --provider fake --max-nodes 1 --warm-nodes 2
t_expect_out "warm_nodes 2 is above quotas.max_nodes 1" "says which limit"
t_expect_exit 2 "a negative --warm-nodes exits 2" "$C" pool update gpu-a --warm-nodes -1
t_expect_exit 0 "pool update --warm-nodes 0" "$C" pool update gpu-a --warm-nodes 0
t_expect_out "warm nodes:        0" "get shows warm nodes"

t_expect_exit 2 "apikey create without --scope exits 2" "$C" apikey create ci
t_expect_out "scope is required" "apikey create without --scope says so"
t_expect_exit 2 "apikey create with an unknown scope exits 2" "$C" apikey create ci --scope read --scope all
t_expect_out "scopes\[1\]" "an unknown scope is named by its place"
t_expect_exit 2 "apikey create with a past expiry exits 2" \
	"$C" apikey create ci --scope read --expires 2001-01-01T00:00:00Z
t_expect_out "expires_at" "a past expiry is named"
t_expect_exit 0 "apikey create" "$C" apikey create ci --scope read --scope write
key=$(cat "$T_WORK/out")
case "$key" in sk-nova-*) t_pass "apikey create prints only the key" ;;
*) t_fail "apikey create prints only the key" "$key" ;; esac
t_expect_exit 0 "api key lists pools" env NOVA_TOKEN="$key" "$C" pool list
t_expect_exit 5 "api key cannot list api keys (403)" env NOVA_TOKEN="$key" "$C" apikey list
t_expect_out "needs the admin scope; this key has write, read" "403 says why"
t_expect_exit 0 "apikey create a routes-only key expiring" \
	"$C" apikey create router --scope routes --expires 2099-01-01T00:00:00Z
rkey=$(cat "$T_WORK/out")
t_expect_exit 0 "a routes key reads the routing table" env NOVA_TOKEN="$rkey" "$C" routes
t_expect_exit 5 "a routes key cannot list pools (403)" env NOVA_TOKEN="$rkey" "$C" pool list
t_expect_out "needs the read scope; this key has routes" "403 names the scope needed"
t_expect_exit 0 "apikey list" "$C" apikey list
t_expect_out "^ID  *NAME  *PREFIX  *SCOPES" "apikey list table"
t_expect_out " write,read " "apikey list shows scopes"
t_expect_out "2099-01-01T00:00:00Z" "apikey list shows the expiry"
if grep -q -- "$key" "$T_WORK/out"; then t_fail "apikey list never shows the key" "found"
else t_pass "apikey list never shows the key"; fi
kid=$("$C" -o json apikey list | sed -n 's/.*"id": "\([0-9a-f-]*\)".*/\1/p' | head -1)
t_expect_exit 0 "apikey revoke" "$C" apikey revoke "$kid"
t_expect_exit 5 "revoked key is refused (401)" env NOVA_TOKEN="$key" "$C" pool list
t_expect_exit 3 "revoke unknown id exits 3" "$C" apikey revoke 00000000-0000-0000-0000-000000000000

# The audit trail: who changed what, newest first, filtered.
t_expect_exit 0 "audit" "$C" audit
t_expect_out "^ID  *AT  *WHO  *REQUEST  *OBJECT  *STATUS  *ERROR  *REQUEST-ID" "audit table header"
t_expect_out " admin  *POST /v1/pools  *gpu-a  *201 " "audit shows the pool's creation by the admin"
t_expect_out " admin  *DELETE /v1/apikeys/{id}  *$kid  *204 " "audit shows the revoke"
t_expect_exit 0 "audit --object gpu-a --kind pool" "$C" audit --object gpu-a --kind pool
if [ "$(grep -c ' /v1/pools.* gpu-a ' "$T_WORK/out")" -ge 2 ] &&
	[ "$(grep -c ' /v1/' "$T_WORK/out")" = "$(grep -c ' /v1/pools.* gpu-a ' "$T_WORK/out")" ]; then
	t_pass "audit filters by object and kind"
else t_fail "audit filters by object and kind" "$(cat "$T_WORK/out")"; fi
t_expect_exit 0 "audit --limit 1 says there is more" "$C" audit --limit 1
t_expect_out "older events: novactl audit --before [0-9]" "audit --limit 1 points at the next page"
t_expect_exit 0 "audit -o json" "$C" -o json audit --key admin --limit 2
t_expect_out '"next_before": [0-9]' "audit -o json is the API's answer"
t_expect_exit 2 "audit with a bad --since exits 2" "$C" audit --since yesterday
t_expect_out "since must be an RFC 3339 date-time" "audit names the bad filter"
t_expect_exit 2 "audit with an unknown flag exits 2" "$C" audit --who me
t_expect_exit 5 "a write key cannot read the audit trail (403)" env NOVA_TOKEN="$rkey" "$C" audit
if grep -q -- "$key\|$rkey" "$("$C" -o json audit --limit 1000 >"$T_WORK/audit.json"; echo "$T_WORK/audit.json")"; then
	t_fail "the audit trail never holds a key" "found"
else t_pass "the audit trail never holds a key"; fi

t_expect_exit 5 "wrong token exits 5" "$C" --token nope-sekrit-42 pool list
if grep -q "sekrit" "$T_WORK/out" "$T_WORK/err"; then t_fail "the token is never printed" "found in output"
else t_pass "the token is never printed"; fi
t_expect_exit 6 "server down exits 6" "$C" --server http://127.0.0.1:1 pool list
t_expect_out "cannot reach novad" "server down says so"
t_expect_exit 6 "global flags after the command words" "$C" pool list --server http://127.0.0.1:1
t_expect_exit 2 "unknown flag exits 2" "$C" pool list --bogus
t_expect_out "novactl: unknown flag --bogus" "unknown flag is named"
t_expect_out "^usage: novactl pool list" "unknown flag shows the usage"
t_expect_exit 2 "a group without a command exits 2" "$C" pool
t_expect_out "novactl: pool needs a command" "a group without a command says so"
t_expect_exit 2 "no command exits 2" "$C"
t_expect_exit 2 "unknown command exits 2" "$C" frobnicate
t_expect_exit 2 "missing argument exits 2" "$C" pool get
t_expect_exit 2 "bad -o exits 2" "$C" -o xml pool list
t_expect_exit 0 "--help on a subcommand" "$C" pool create --help
t_expect_out "usage: novactl pool create NAME" "subcommand help shows usage"
t_expect_exit 0 "--help at the top" "$C" --help

# The config file supplies server and token when no flag or env does.
mkdir -p "$HOME/.config/nova"
printf 'server: %s\ntoken: %s\n' "$NOVA_URL" "nope-token" >"$HOME/.config/nova/config.yaml"
t_expect_exit 5 "config file token is used" env NOVA_STATE_DIR=/nonexistent "$C" pool list
t_expect_exit 0 "env token beats the config file" env NOVA_STATE_DIR=/nonexistent \
	NOVA_TOKEN="$(cat "$NOVA_STATE_DIR/admin_token")" "$C" pool list
printf 'sever: x\n' >"$HOME/.config/nova/config.yaml"
t_expect_exit 2 "config file with an unknown key exits 2" "$C" pool list
t_expect_out "config.yaml:1:1: unknown key" "config file error is positioned"
rm "$HOME/.config/nova/config.yaml"

for f in single spec_decode vision lora_static lora_dynamic; do
	t_expect_exit 0 "model register etc/models/$f.yaml" "$C" model register -f "etc/models/$f.yaml"
done
t_expect_exit 0 "model list" "$C" model list
t_expect_out "^llava-next-13b  *1  *vision  *2 " "model list shows kind and stages"
t_expect_exit 0 "model get NAME:VERSION" "$C" model get llama-3-70b-spec:1
t_expect_out "stage:    target: 4 x A100-80G" "model get shows the stages"
t_expect_exit 4 "registering a model twice exits 4" "$C" model register -f etc/models/single.yaml
printf 'name: broken\nkind: vision\nengine: {image: x}\nstages: [{name: encoder, accelerators: 1}]\n' >"$T_WORK/m.yaml"
t_expect_exit 2 "a vision model with one stage exits 2" "$C" model register -f "$T_WORK/m.yaml"
t_expect_out "field: stages" "model error names the field"
t_expect_exit 2 "model register without -f exits 2" "$C" model register
t_expect_exit 0 "deploy a model" "$C" deploy mistral-7b-lora --pool gpu-a --replicas 2 --label zone=eu-1
t_expect_out "state:     pending (created)" "deploy prints the pending deployment"
t_expect_exit 4 "deleting a pool with a deployment exits 4" "$C" pool delete gpu-a
t_expect_out "hint: delete its deployments first" "pool delete with a deployment hints"
t_expect_exit 0 "deployment list" "$C" deployment list
t_expect_out "^mistral-7b-lora-gpu-a  *mistral-7b-lora:1  *gpu-a  *0/2 " "deployment list row"
# novad's worker places the replicas on nodes it provisions.
i=0
while [ $i -lt 100 ]; do
	"$C" deployment get mistral-7b-lora-gpu-a >"$T_WORK/out" 2>&1
	grep -q "^replica 1: placed" "$T_WORK/out" && grep -q "^state:     deploying" "$T_WORK/out" && break
	i=$((i + 1)); sleep 0.1
done
t_expect_out "^replica 0: placed" "the worker places the first replica"
t_expect_out "^replica 1: placed" "the worker places the second replica"
t_expect_out "state:     deploying (0 of 2 replicas ready)" "deployment waits for its replicas to report ready"
t_expect_exit 0 "node list" "$C" node list --pool gpu-a
t_expect_out "^n-[0-9a-f-]*  *gpu-a  *ready  *false  *1 x FAKE-GPU" "node list shows the provisioned nodes"
node=$(sed -n 's/^\(n-[0-9a-f-]*\) .*/\1/p' "$T_WORK/out" | head -1)
t_expect_exit 0 "node get" "$C" node get "$node"
t_expect_out "^replica:        mistral-7b-lora-gpu-a #" "node get shows its replica"
t_expect_out "provisioning -> ready: provisioned" "node get shows its history"
t_expect_exit 0 "node cordon" "$C" node cordon "$node"
t_expect_out "cordoned:       true" "cordon shows"
t_expect_exit 0 "node uncordon" "$C" node uncordon "$node"
t_expect_exit 3 "node get unknown exits 3" "$C" node get nope
t_expect_exit 0 "deployment scale" "$C" deployment scale mistral-7b-lora-gpu-a --replicas 3
t_expect_out "replicas:  0 ready of 3" "scale shows the new count"
t_expect_exit 2 "deploy without --pool exits 2" "$C" deploy mistral-7b-lora
t_expect_exit 3 "deploy an unknown model exits 3" "$C" deploy nope --pool gpu-a
t_expect_exit 2 "deploy what can never fit exits 2" "$C" deploy llama-3-70b-spec --pool p3
t_expect_out "can never fit" "never-fit says why"
t_expect_exit 4 "deleting a running deployment exits 4" "$C" deployment delete mistral-7b-lora-gpu-a
wait_state() { # wait_state NAME STATE: the worker gets there within 10 s
	i=0
	while [ $i -lt 100 ]; do
		"$C" deployment get "$1" >"$T_WORK/out" 2>&1
		grep -q "^state:     $2 " "$T_WORK/out" && return 0
		i=$((i + 1)); sleep 0.1
	done
	return 1
}
t_expect_exit 0 "deployment stop" "$C" deployment stop mistral-7b-lora-gpu-a
t_expect_out "state:     stopping" "stop asks the worker to stop the replicas"
wait_state mistral-7b-lora-gpu-a stopped
t_expect_out "state:     stopped (all replicas stopped)" "the worker stops every replica"
t_expect_exit 0 "deployment start" "$C" deployment start mistral-7b-lora-gpu-a
t_expect_exit 0 "deployment stop again" "$C" deployment stop mistral-7b-lora-gpu-a
wait_state mistral-7b-lora-gpu-a stopped
t_expect_exit 0 "deployment delete" "$C" deployment delete mistral-7b-lora-gpu-a
t_expect_exit 3 "deleted deployment is gone" "$C" deployment get mistral-7b-lora-gpu-a
t_expect_exit 0 "model delete" "$C" model delete qwen2-7b-multi-lora
t_expect_exit 3 "deleted model is gone" "$C" model get qwen2-7b-multi-lora

t_expect_exit 0 "pool delete" "$C" pool delete p3
t_expect_out "pool p3 deleted" "delete confirms"
t_expect_exit 3 "deleted pool is gone" "$C" pool get p3
# gpu-a keeps its idle nodes for a grace period after its deployment went.
t_expect_exit 4 "deleting a pool with nodes exits 4" "$C" pool delete gpu-a
t_expect_out "novactl: pool gpu-a has [0-9]* node" "pool delete with nodes says so"
t_expect_out "hint: drain its nodes first" "pool delete with nodes hints at --force"
t_expect_exit 0 "pool delete --force" "$C" pool delete gpu-a --force
t_expect_out "pool gpu-a deleted" "forced delete confirms"
t_expect_exit 3 "force-deleted pool is gone by name" "$C" pool get gpu-a
t_expect_exit 3 "force-deleted pool is gone by id" "$C" pool get "$id"
t_expect_exit 0 "pool list after the deletes" "$C" pool list
if grep -q "gpu-a\|^p3 " "$T_WORK/out"; then t_fail "deleted pools leave the list" "$(cat "$T_WORK/out")"
else t_pass "deleted pools leave the list"; fi
exit 0
