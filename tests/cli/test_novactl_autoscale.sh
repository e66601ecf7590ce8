#!/bin/sh
# novactl and autoscaling (issue 17) against a real novad and PostgreSQL:
# deploy --autoscale and what get, describe and list -o wide show of it; a
# bad policy refused by novactl (exit 2, no request sent) and one refused by
# novad (its field, exit 2); a manual scale of an autoscaled deployment
# refused with the hint (exit 4); deployment autoscale NAME off, then a
# scale that works; a new policy that clamps the count; help and completion.
set -u
. tests/support/lib.sh
unset NOVA_SERVER NOVA_TOKEN NOVA_CONTEXT
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
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
replicas_of() { t_sql "SELECT replicas FROM deployments WHERE name = '$1'"; }
# What novad was asked: every request, refused ones too, is audited.
requests() { t_sql "SELECT count(*) FROM audit_events"; }

# --- help and completion ------------------------------------------------------------
t_expect_exit 0 "novactl --help" "$C" --help
t_expect_out "deployment list|get|scale|autoscale|" "help names deployment autoscale"
t_expect_out "\[--autoscale min=N,max=N,target-queue=N" "help names deploy --autoscale"
t_expect_exit 0 "deploy --help" "$C" deploy m --help
t_expect_out "target-queue" "deploy --help explains the policy's keys"
t_expect_exit 0 "deployment autoscale --help" "$C" deployment autoscale --help
t_expect_out "^usage: novactl deployment autoscale NAME|ID min=N,max=N" "deployment autoscale --help"
complete_has() { # complete_has NAME WANT WORDS...
	cn=$1; cw=$2; shift 2
	if "$C" __complete "$@" >"$T_WORK/out" 2>"$T_WORK/err" && grep -qx -- "$cw" "$T_WORK/out"; then t_pass "$cn"
	else t_fail "$cn" "no $cw in: $(tr '\n' ' ' <"$T_WORK/out")"; fi
}
complete_has "completion offers deployment autoscale" autoscale deployment ""
complete_has "completion offers deploy --autoscale" --autoscale deploy m ""
complete_has "completion offers autoscale --replicas" --replicas deployment autoscale ""
complete_has "completion offers autoscale --wait" --wait deployment autoscale ""

t_expect_exit 0 "model register" "$C" model register -f etc/models/lora_static.yaml
t_expect_exit 0 "pool p" "$C" pool create p --provider fake

# --- deploy --autoscale ----------------------------------------------------------------
t_expect_exit 0 "deploy --autoscale" "$C" deploy mistral-7b-lora --pool p --name auto \
	--autoscale min=0,max=8,target-queue=4,idle=10m
t_expect_out "^autoscale: min 0, max 8, target queue depth 4, window 300s, idle 600s$" \
	"deploy prints the policy"
t_expect_out "^autoscaler: no decision yet" "deploy prints the autoscaler's state"
t_expect_out "^replicas:  0 ready of 1$" "an autoscaled deployment starts at one replica"
t_expect_exit 0 "deployment get" "$C" deployment get auto
t_expect_out "^autoscale: min 0, max 8, target queue depth 4, window 300s, idle 600s$" \
	"get shows the policy on one line"
t_expect_exit 0 "deployment get -o json" "$C" deployment get auto -o json
t_json "the policy went as JSON numbers, integers for the bounds" \
	'a = d["autoscale"]; assert a["min_replicas"] == 0 and a["max_replicas"] == 8 and a["target_queue_depth"] == 4 and a["idle_s"] == 600, a; assert isinstance(a["max_replicas"], int)'
t_expect_exit 0 "describe deployment" "$C" describe deployment auto
t_expect_out "^Autoscale: *min 0, max 8, target queue depth 4, window 300s, idle 600s$" \
	"describe shows the policy"
t_expect_out "^Autoscaler: *no decision yet" "describe shows the autoscaler's last decision"
t_expect_exit 0 "deployment list" "$C" deployment list
t_lacks "AUTOSCALE" "the plain list has no AUTOSCALE column"
t_expect_exit 0 "deployment list -o wide" "$C" deployment list -o wide
t_expect_out "^NAME  *MODEL  *POOL  *READY  *STATE  *REASON  *AUTOSCALE  *ID  *CREATED$" \
	"-o wide adds AUTOSCALE before ID and CREATED"
t_expect_out "^auto  .*  0-8  *[0-9a-f-]\{36\}  " "-o wide shows the bounds"
# The API's own names, copied from the docs, work too.
t_expect_exit 0 "deploy --autoscale with the API's names" "$C" deploy mistral-7b-lora --pool p \
	--name docs --autoscale min_replicas=2,max_replicas=3,target_tokens_per_second=50,scale_down_window_s=5m
t_expect_out "^autoscale: min 2, max 3, target tokens/s 50, window 300s$" "the API's names are the same keys"
t_expect_out "^replicas:  0 ready of 2$" "without --replicas an autoscaled deployment starts at min"
t_expect_exit 0 "deploy by hand" "$C" deploy mistral-7b-lora --pool p --name hand --replicas 2
t_expect_out "^autoscale: off$" "a deployment scaled by hand shows autoscale: off"
t_expect_exit 0 "deployment list -o wide" "$C" deployment list -o wide
t_expect_out "^hand  .*  -  *[0-9a-f-]\{36\}  " "-o wide shows - for one scaled by hand"

# --- a bad policy: novactl refuses it, before any request ----------------------------
before=$(requests)
t_expect_exit 2 "a pair without = exits 2" "$C" deploy mistral-7b-lora --pool p --name bad \
	--autoscale min=0,max
t_expect_out "novactl: --autoscale: \"max\" is not key=value" "the error names the pair"
t_expect_exit 2 "an unknown key exits 2" "$C" deploy mistral-7b-lora --pool p --name bad \
	--autoscale max=4,target-qeue=4
t_expect_out "unknown key \"target-qeue\" (the keys: min, max, target-queue," "the error names the key and lists the keys"
t_expect_exit 2 "a value that is no number exits 2" "$C" deploy mistral-7b-lora --pool p --name bad \
	--autoscale max=4,target-queue=lots
t_expect_out "target-queue must be a number, not \"lots\"" "the error names the key and the value"
t_expect_exit 2 "a policy that is not key=value exits 2" "$C" deployment autoscale auto min:0
t_expect_out "novactl: the policy: \"min:0\" is not key=value" "deployment autoscale names the bad pair"
t_expect_exit 2 "deployment autoscale without a policy exits 2" "$C" deployment autoscale auto
t_expect_out "the policy is required" "the error says the policy is required"
[ "$(requests)" = "$before" ] && t_pass "a policy novactl refuses sends no request" ||
	t_fail "a policy novactl refuses sends no request" "$before -> $(requests) audited requests"
t_expect_exit 2 "refused before reaching for the server" "$C" --server http://127.0.0.1:1 \
	deploy mistral-7b-lora --pool p --autoscale max=x
t_lacks "cannot reach novad" "novactl did not try the server"

# --- a policy novad refuses: its message and field -------------------------------------
t_expect_exit 2 "min above max is refused by novad with 2" "$C" deploy mistral-7b-lora --pool p \
	--name bad --autoscale min=3,max=2,target-queue=4
t_expect_out "novactl: autoscale.min_replicas (3) is above autoscale.max_replicas (2) (field: autoscale.min_replicas)" \
	"novad's message and field are printed"
t_expect_exit 2 "a policy without a target is refused by novad" "$C" deploy mistral-7b-lora --pool p \
	--name bad --autoscale max=2
t_expect_out "(field: autoscale)" "the missing target names autoscale"
t_expect_out "hint: for example" "novad's hint is printed"
[ "$(t_sql "SELECT count(*) FROM deployments WHERE name = 'bad'")" = 0 ] &&
	t_pass "no refused deployment was created" || t_fail "no refused deployment was created" "one was"

# --- a manual scale of an autoscaled deployment: refused, with the way out ------------
t_expect_exit 4 "deployment scale of an autoscaled deployment exits 4" "$C" deployment scale auto --replicas 3
t_expect_out "novactl: deployment auto is autoscaled" "the refusal says why"
t_expect_out "(field: replicas)" "the refusal names replicas"
t_expect_out "^hint: .*novactl deployment autoscale auto min=N,max=N" "the hint says how to change the policy"
t_expect_out "^hint: .*novactl deployment autoscale auto off" "the hint says how to turn it off"
[ "$(replicas_of auto)" = 1 ] && t_pass "the refused scale changed nothing" ||
	t_fail "the refused scale changed nothing" "replicas $(replicas_of auto)"

# --- off, then a scale by hand works ------------------------------------------------------
t_expect_exit 0 "deployment autoscale auto off" "$C" deployment autoscale auto off
t_expect_out "^autoscale: off$" "off prints the deployment without a policy"
t_lacks "^autoscaler:" "off: no autoscaler line"
t_expect_out "autoscale: autoscale off: replicas stay at 1" "the event says it is off"
t_expect_exit 0 "deployment scale after off" "$C" deployment scale auto --replicas 5
[ "$(replicas_of auto)" = 5 ] && t_pass "a scale by hand works once off" ||
	t_fail "a scale by hand works once off" "replicas $(replicas_of auto)"

# --- a new policy clamps the count into its bounds ----------------------------------------
t_expect_exit 0 "deployment autoscale auto min=1,max=3,target-queue=2" \
	"$C" deployment autoscale auto min=1,max=3,target-queue=2
t_expect_out "^autoscale: min 1, max 3, target queue depth 2, window 300s$" "the new policy is printed"
t_expect_out "^replicas:  0 ready of 3$" "the count is clamped to max"
t_expect_out "autoscale: autoscale on: min 1, max 3; replicas 5 -> 3 (max_replicas)" \
	"the event says why the count changed"
# Not read back from the database: novad's autoscaler ticks every second
# and may already have scaled it down (a new policy starts its window
# afresh); the PATCH's answer and its event are what novactl shows.
t_expect_exit 0 "a policy and a count at once" "$C" -o json deployment autoscale auto \
	max=4,target-ttft-ms=500,window=90s --replicas 2
t_json "--replicas sets the count with the policy" \
	'assert d["replicas"] == 2, d["replicas"]; a = d["autoscale"]; assert a["target_ttft_p95_ms"] == 500 and a["scale_down_window_s"] == 90 and a["max_replicas"] == 4, a'
t_expect_exit 2 "--replicas outside the bounds is refused by novad" "$C" deployment autoscale auto \
	max=4,target-queue=2 --replicas 9
t_expect_out "(field: replicas)" "the refusal names replicas"
t_expect_exit 2 "a bad --replicas exits 2" "$C" deployment autoscale auto max=4,target-queue=2 --replicas -1
t_expect_exit 3 "an unknown deployment exits 3" "$C" deployment autoscale nope off
t_expect_exit 0 "events --deployment auto" "$C" events --deployment auto
t_expect_out "autoscale  *autoscale on: min 1, max 3" "events shows the autoscale events by kind"
exit 0
