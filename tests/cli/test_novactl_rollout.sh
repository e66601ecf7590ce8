#!/bin/sh
# novactl and rollouts (issue 18) against a real novad and PostgreSQL.
# First what needs no deployment: help and completion name update, promote
# and rollback; flags novactl refuses exit 2 naming the flag, with no
# request sent. Then, on an lpu pool whose mock agents run the engines (so
# replicas become ready): a canary of version 2 (its knobs as novad took
# them, the rollout block of get and describe, each replica's version), a
# second update refused while it runs (exit 4), promote and the rollout to
# the end; rollback undoing it, a second rollback reversing that one, a
# third refused; refusals of novad naming their field; the rollout events.
set -u
. tests/support/lib.sh
unset NOVA_SERVER NOVA_TOKEN NOVA_CONTEXT
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
export NOVA_HEARTBEAT_INTERVAL_MS=500
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"

# t_lacks PATTERN NAME: the last command's stdout+stderr did not match.
t_lacks() {
	if grep -q -- "$1" "$T_WORK/out" "$T_WORK/err"; then t_fail "$2" "\"$1\" in: $(grep -- "$1" "$T_WORK/out" "$T_WORK/err" | head -3)"
	else t_pass "$2"; fi
}
# t_json NAME PYTHON: PYTHON (an assertion over d, the last output as JSON) holds.
t_json() {
	if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$T_WORK/out" 2>"$T_WORK/py"; then
		t_pass "$1"
	else t_fail "$1" "$(tail -1 "$T_WORK/py")"; fi
}
# What novad was asked: every request that changes something, refused ones
# too, is audited.
requests() { t_sql "SELECT count(*) FROM audit_events"; }
# rollout_is NAME SECONDS PATTERN: until `deployment get demo` has a line
# matching PATTERN (SECONDS at most, polled every half second; at once
# when it shows no rollout at all); its last output is kept in out and err.
rollout_is() {
	ri_i=0
	while "$C" deployment get demo >"$T_WORK/out" 2>"$T_WORK/err" &&
		! grep -q -- "$3" "$T_WORK/out" && grep -q "^rollout:" "$T_WORK/out" &&
		[ $ri_i -lt $(($2 * 2)) ]; do
		ri_i=$((ri_i + 1)); sleep 0.5
	done
	if grep -q -- "$3" "$T_WORK/out"; then t_pass "$1"
	else t_fail "$1" "no \"$3\" in: $(grep -A5 '^rollout:' "$T_WORK/out")"; fi
}

# --- help and completion -----------------------------------------------------------
t_expect_exit 0 "novactl --help" "$C" --help
t_expect_out "deployment list|get|scale|autoscale|update|promote|rollback|" "help names the rollout verbs"
t_expect_exit 0 "deployment --help" "$C" deployment --help
t_expect_out "^  novactl deployment update NAME|ID --model NAME:VERSION \[--max-surge N\]" \
	"deployment --help has update's usage"
t_expect_out "^  novactl deployment promote NAME|ID$" "deployment --help has promote's usage"
t_expect_out "^  novactl deployment rollback NAME|ID$" "deployment --help has rollback's usage"
t_expect_out "\-\-canary PCT" "deployment --help explains a canary"
t_expect_exit 0 "deployment update --help" "$C" deployment update --help
t_expect_out "^usage: novactl deployment update NAME|ID --model NAME:VERSION" "update --help"
complete_has() { # complete_has NAME WANT WORDS...
	cn=$1; cw=$2; shift 2
	if "$C" __complete "$@" >"$T_WORK/out" 2>"$T_WORK/err" && grep -qx -- "$cw" "$T_WORK/out"; then t_pass "$cn"
	else t_fail "$cn" "no $cw in: $(tr '\n' ' ' <"$T_WORK/out")"; fi
}
complete_has "completion offers deployment update" update deployment ""
complete_has "completion offers deployment promote" promote deployment ""
complete_has "completion offers deployment rollback" rollback deployment ""
complete_has "completion offers update --canary" --canary deployment update ""
complete_has "completion offers update --no-auto-rollback" --no-auto-rollback deployment update ""
complete_has "completion offers update --max-ttft-ratio" --max-ttft-ratio deployment update ""

# --- flags novactl refuses: exit 2, the flag named, no request -----------------------
t_expect_exit 0 "pool p" "$C" pool create p --provider fake
before=$(requests)
t_expect_exit 2 "update without --model exits 2" "$C" deployment update demo
t_expect_out "novactl: --model is required" "the error names --model"
t_expect_out "^usage: novactl deployment update NAME|ID" "the usage follows"
t_expect_exit 2 "update without a name exits 2" "$C" deployment update --model demo:2
t_expect_out "novactl: NAME or ID is required" "the error asks for the name"
t_expect_exit 2 "a canary of 0% exits 2" "$C" deployment update demo --model demo:2 --canary 0
t_expect_out "novactl: --canary must be a percentage from 1 to 99, not \"0\"" "the error names --canary"
t_expect_exit 2 "a canary of 100% exits 2" "$C" deployment update demo --model demo:2 --canary 100
t_expect_exit 2 "a surge that is no number exits 2" "$C" deployment update demo --model demo:2 --max-surge one
t_expect_out "novactl: --max-surge must be a non-negative integer, not \"one\"" "the error names --max-surge"
t_expect_exit 2 "a ratio that is no number exits 2" "$C" deployment update demo --model demo:2 --max-ttft-ratio x2
t_expect_out "novactl: --max-ttft-ratio must be a number, not \"x2\"" "the error names --max-ttft-ratio"
t_expect_exit 2 "no surge and no unavailable exits 2" "$C" deployment update demo --model demo:2 \
	--max-surge 0 --max-unavailable 0
t_expect_out "novactl: --max-surge and --max-unavailable are both 0" "the error names both flags"
t_expect_exit 2 "an unknown flag exits 2" "$C" deployment update demo --model demo:2 --surge 1
t_expect_out "novactl: unknown flag --surge" "the error names the unknown flag"
t_expect_exit 2 "promote takes no flag" "$C" deployment promote demo --canary 10
t_expect_exit 2 "rollback takes one name" "$C" deployment rollback demo other
[ "$(requests)" = "$before" ] && t_pass "a command novactl refuses sends no request" ||
	t_fail "a command novactl refuses sends no request" "$before -> $(requests) audited requests"
t_expect_exit 2 "refused before reaching for the server" "$C" --server http://127.0.0.1:1 \
	deployment update demo --model demo:2 --canary 150
t_lacks "cannot reach novad" "novactl did not try the server"

# --- rollouts of a deployment ------------------------------------------------------
# Two replicas of version 1 on three lpu nodes (c1r1's two and c1r2's
# one): room for one more, a canary's or a surge's.
cat >"$T_WORK/demo1.yaml" <<EOM
name: demo
version: "1"
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
sed 's/^version: "1"/version: "2"/' "$T_WORK/demo1.yaml" >"$T_WORK/demo2.yaml"
t_expect_exit 0 "pool racks" "$C" pool create racks --provider lpu --config \
	"{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}"
t_expect_exit 0 "model demo:1" "$C" model register -f "$T_WORK/demo1.yaml"
t_expect_exit 0 "model demo:2" "$C" model register -f "$T_WORK/demo2.yaml"
t_expect_exit 0 "deploy demo:1" "$C" deploy demo:1 --pool racks --replicas 2 --name demo --wait --timeout 60
t_expect_exit 0 "get before any rollout" "$C" deployment get demo
t_lacks "^rollout:" "no rollout block before the first rollout"
t_expect_out "^replica 0: ready version 1 http" "each replica shows its version"

# --- a canary: the knobs as novad took them ------------------------------------------
t_expect_exit 0 "update --canary 50" "$C" deployment update demo --model demo:2 --canary 50 \
	--drain-timeout 5 --max-ttft-ratio 3 --min-requests 5 --max-error-rate-increase 0.2
t_expect_out "^rollout:   1 -> 2 canary 50% (max surge 1, max unavailable 0)$" \
	"update prints the rollout: versions, state, share and knobs"
t_expect_out "^  auto rollback: on (error rate +0.2, TTFT p95 x3, judged after 5 requests)$" \
	"update prints the automatic rollback's thresholds"
t_expect_exit 0 "get -o json" "$C" deployment get demo -o json
t_json "the flags given went in the rollout object, the others are novad's defaults" \
	'r = d["rollout"]; assert r["state"] == "canary" and r["from_version"] == "1" and r["to_version"] == "2", r; assert r["canary_percent"] == 50 and r["drain_timeout_s"] == 5 and r["max_surge"] == 1 and r["max_unavailable"] == 0, r; g = r["auto_rollback"]; assert g["enabled"] is True and g["max_ttft_ratio"] == 3 and g["min_requests"] == 5 and abs(g["max_error_rate_increase"] - 0.2) < 1e-9, g'
rollout_is "the canary replica becomes ready" 60 "^  progress: version 2 ready 1/1; version 1 2$"
t_expect_out "^replica [0-9]*: ready version 2 http" "get shows the canary replica's version"
t_expect_out "^replica [0-9]*: ready version 1 http" "get shows the previous version's replicas"
t_expect_exit 0 "describe deployment demo" "$C" describe deployment demo
t_expect_out "^Rollout:      1 -> 2 canary 50% (max surge 1, max unavailable 0)$" "describe shows the rollout"
t_expect_out "^  REPLICA  *VERSION  *STATE  *NODES  *ENDPOINT  *REASON$" "describe's replicas have a VERSION column"
t_expect_out "^  [0-9]*  *2  *ready  " "describe shows the canary replica at version 2"
t_expect_exit 0 "deployment list" "$C" deployment list
t_expect_out "^demo  *demo:2  *racks  .*  canary 1 -> 2" "list's REASON says the canary runs"

# --- novad's refusals: the field, the exit status -------------------------------------
t_expect_exit 4 "a second update while one runs exits 4" "$C" deployment update demo --model demo:1
t_expect_out "(field: model)" "the conflict names model"
t_expect_exit 3 "an unknown deployment exits 3" "$C" deployment promote nope

# --- promote: the canary rolls on to the end ------------------------------------------
t_expect_exit 0 "promote" "$C" deployment promote demo
t_expect_out "^rollout:   1 -> 2 \(rolling\|complete\) " "promote prints the rollout going on"
rollout_is "the promoted rollout completes" 120 "^rollout:   1 -> 2 complete "
t_expect_out "^  progress: version 2 ready 2/2" "every replica of the count is at version 2"
t_expect_out "^  finished: " "a finished rollout says when"
t_lacks "version 1 http" "no replica of version 1 is left"
t_expect_exit 4 "promote without a canary exits 4" "$C" deployment promote demo

# --- rollback: undo the last one, reverse that, then nothing left ---------------------
t_expect_exit 0 "rollback after it completed" "$C" deployment rollback demo
t_expect_out "^rollout:   2 -> 1 rolling " "rollback starts a rollout back to version 1"
t_expect_exit 0 "rollback while that one runs" "$C" deployment rollback demo
t_expect_out "^rollout:   2 -> 1 rolling_back " "a second rollback reverses the active one"
t_expect_exit 4 "a third rollback exits 4" "$C" deployment rollback demo
rollout_is "the reversed rollout ends rolled back" 120 "^rollout:   2 -> 1 rolled_back "
t_expect_out "^replica [0-9]*: ready version 2 http" "the deployment runs version 2 again"

# --- novad's checks of what novactl passes on ------------------------------------------
t_expect_exit 2 "an unknown version exits 2" "$C" deployment update demo --model demo:9
t_expect_out "(field: model)" "novad names model"
t_expect_exit 2 "--max-surge 0 alone exits 2" "$C" deployment update demo --model demo:1 --max-surge 0
t_expect_out "(field: rollout.max_surge)" "novad names rollout.max_surge"
t_expect_exit 0 "update without automatic rollback" "$C" -o json deployment update demo --model demo:1 \
	--no-auto-rollback --max-surge 2 --max-unavailable 1
t_json "--no-auto-rollback and both bounds reach novad" \
	'r = d["rollout"]; assert r["auto_rollback"]["enabled"] is False and r["max_surge"] == 2 and r["max_unavailable"] == 1 and r["canary_percent"] is None and r["state"] == "rolling", r'

t_expect_exit 0 "events --deployment demo" "$C" events --deployment demo
t_expect_out "rollout  " "events shows the rollout's steps by kind"
exit 0
