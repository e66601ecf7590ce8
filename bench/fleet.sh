#!/bin/sh
# What the benchmarks of real processes share (bench/autoscale.sh, issue
# 17; bench/rollout.sh, issue 18), sourced by bench/run.sh before them: on
# run.sh's release novad (nova_bench_start: a fresh database of the run's
# cluster), an lpu pool with mock agents (nova-sidecar running
# nova-mock-engine per node), models whose engine has engine.mock settings,
# nova-router in front with keys of its own, and bench/loadgen sending
# streamed chat completions through it, paced. Each benchmark keeps its
# own pool, models, deployments and figures; what is here is the plumbing,
# so a fix to how a router is started or a deployment removed reaches both.
#
# Uses run.sh's W, OUT, B, C, LG, NOVA_URL, NOVA_DB and psql_db.

FL_ROUTER_PID= FL_RPORT= FL_LG_PID=

# fl_api METHOD PATH BODY: novad's answer on stdout, its status in $W/fl.code.
fl_api() {
	curl -s -K "$W/admin.curl" -X "$1" -H 'Content-Type: application/json' -d "$3" \
		-o "$W/fl.answer" -w '%{http_code}' "$NOVA_URL$2" >"$W/fl.code"
	cat "$W/fl.answer"
}
fl_sql() { psql_db "$NOVA_DB" -c "$1"; }
# fl_routed MODEL: the endpoints /v1/routes has for it.
fl_routed() {
	curl -s -K "$W/admin.curl" "$NOVA_URL/v1/routes?model=$1" | awk -F '"url"' '{ n += NF - 1 } END { print n + 0 }'
}
# fl_wait SECONDS COMMAND...: until COMMAND succeeds (polled every 100 ms).
fl_wait() {
	fl_n=$(($1 * 10)); shift
	while [ "$fl_n" -gt 0 ]; do "$@" && return 0; fl_n=$((fl_n - 1)); sleep 0.1; done
	return 1
}
fl_has_routes() { [ "$(fl_routed "$1")" -eq "$2" ]; }
fl_dep_state() { [ "$(fl_sql "SELECT state FROM deployments WHERE name = '$1'")" = "$2" ]; }
fl_now() { date +%s.%N; }
# fl_ms A B: (B - A) in ms, no decimals; empty when either is.
fl_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.0f", (b - a) * 1000 }'; }

# fl_model NAME VERSION ACCELERATORS MOCK: registers a single-stage model
# of ACCELERATORS LPU whose engine is nova-mock-engine with the engine.mock
# settings MOCK ("startup_ms: 1000, latency_ms: 50"); VERSION empty: none
# given (novad's "latest").
fl_model() {
	{
		echo "name: $1"
		[ -n "$2" ] && echo "version: \"$2\""
		cat <<EOM
kind: single
engine:
  command: [nova-mock-engine, --port, "{port}"]
  mock: {$4}
stages: [{name: main, accelerator_type: LPU, accelerators: $3}]
EOM
	} >"$W/fl-model.yaml"
	"$C" model register -f "$W/fl-model.yaml" >/dev/null
}

# fl_undeploy NAME: stopped (retried: a stop can meet a deadlock, as in the
# deploy benchmark) and deleted; what novactl said goes to $OUT/fl-stop.err.
fl_undeploy() {
	fl_j=0
	until "$C" deployment stop "$1" >/dev/null 2>>"$OUT/fl-stop.err"; do
		fl_j=$((fl_j + 1)); [ $fl_j -gt 5 ] && break
		sleep 0.2
	done
	fl_wait 60 fl_dep_state "$1" stopped
	"$C" deployment delete "$1" >/dev/null 2>>"$OUT/fl-stop.err"
}

# fl_chat MODEL TOKENS: the streamed request body, in $W/chat-MODEL.json.
fl_chat() {
	printf '{"model":"%s","messages":[{"role":"user","content":"question {seq}"}],"max_tokens":%s,"stream":true}' \
		"$1" "$2" >"$W/chat-$1.json"
}

# fl_lg LABEL RATE CONNECTIONS SECONDS MODEL [loadgen options]: paced,
# streamed (fl_chat's body; a stream not ending in [DONE] is an error),
# through the router; JSON in $OUT/LABEL.json, one line per request in
# $OUT/LABEL-times.txt.
fl_lg() { fl_lg_run "" "$@"; }
# fl_lg_bg LABEL ...: the same in the background, loadgen's own pid in
# FL_LG_PID. Not `fl_lg ... &`: that pid is a subshell's, and a SIGTERM
# (which ends loadgen's run early, its results written) would end the
# subshell and leave loadgen running.
fl_lg_bg() { fl_lg_run bg "$@"; }
fl_lg_run() {
	fl_bg=$1 fl_l=$2 fl_r=$3 fl_c=$4 fl_d=$5 fl_m=$6; shift 6
	set -- -T "127.0.0.1:$FL_RPORT" -m POST -p /v1/chat/completions -n "$W/fl-app.nodes" \
		-H 'Authorization: Bearer {token}' \
		-c "$fl_c" -d "$fl_d" -r "$fl_r" -B "$W/chat-$fl_m.json" -e '[DONE]' -l "$fl_l" \
		-o "$OUT/$fl_l.json" -x "$OUT/$fl_l-times.txt" "$@"
	if [ -n "$fl_bg" ]; then
		"$LG" "$@" 2>>"$OUT/$fl_l.err" &
		FL_LG_PID=$!
	else
		"$LG" "$@" 2>>"$OUT/$fl_l.err"
	fi
}

# fl_router_start PREFIX: keys PREFIX-router (scope router) and PREFIX-app
# (inference), and nova-router on a free port (FL_RPORT), its log in
# $OUT/PREFIX-router.log; errors in $OUT/PREFIX-setup.err. 1 when it did
# not start. The inference key goes to clients in files, never on a
# command line (as run.sh's admin token): $W/fl-app.nodes for loadgen's
# {token}, $W/fl-app.curl for curl -K.
fl_router_start() {
	fl_rkey=$("$C" apikey create "$1-router" --scope router 2>>"$OUT/$1-setup.err") || return 1
	fl_inf=$("$C" apikey create "$1-app" --scope inference 2>>"$OUT/$1-setup.err") || return 1
	printf 'app %s\n' "$fl_inf" >"$W/fl-app.nodes"
	printf 'header = "Authorization: Bearer %s"\n' "$fl_inf" >"$W/fl-app.curl"
	fl_inf=
	rm -f "$W/$1-router.port"
	NOVA_TOKEN=$fl_rkey "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --log-level warn \
		>"$W/$1-router.port" 2>"$OUT/$1-router.log" &
	FL_ROUTER_PID=$!
	fl_wait 10 test -s "$W/$1-router.port" || return 1
	FL_RPORT=$(head -n 1 "$W/$1-router.port")
}

fl_router_stop() {
	[ -n "$FL_ROUTER_PID" ] || return 0
	kill -TERM "$FL_ROUTER_PID" 2>/dev/null
	wait "$FL_ROUTER_PID" 2>/dev/null
	FL_ROUTER_PID=
}
