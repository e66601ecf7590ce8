# Sourced by shell tests (after tests/support/lib.sh and bench/nginx.sh):
# several novads on one database behind nginx, as an operator runs them.
#
#   novads_ports HOST            four free ports on HOST: MN_PA MN_PB MN_PC MN_PN
#   novads_nginx HOST            nginx on HOST:MN_PN, round robin over the
#                                three, keep-alive, the next upstream on a
#                                refused connection; MN_LB its URL
#   novads_start_a HOST          novad A (lib.sh's nova_start) on HOST:MN_PA,
#                                advertising MN_LB; MN_TOKEN, MN_DBURL
#   novads_start NAME HOST PORT  another novad (B, C) on the same database,
#                                its own state directory, the same lpu run
#                                directory (one machine); NAME_PID
#   novads_restart_a HOST        novad A again on its port and state
#   novads_kill_each HOST MODEL  kill -9 A, B and C in turn, each started
#                                again, while MODEL's route is polled through
#                                nginx: PASS/FAIL that no node left ready and
#                                that the route never disappeared
#   novads_stop                  every novad, the poller and nginx (the tests' trap)

novads_ports() {
	set -- $(python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(4)]
[s.bind((sys.argv[1], 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1")
	MN_PA=$1 MN_PB=$2 MN_PC=$3 MN_PN=$4
}

novads_nginx() {
	NGINX_PROXY_WORKERS=1 nginx_proxy_start "$T_WORK/nginx" "$1:$MN_PN" \
		"server $1:$MN_PA max_fails=0; server $1:$MN_PB max_fails=0; server $1:$MN_PC max_fails=0; keepalive 16;" \
		"proxy_buffering off; proxy_read_timeout 60s; proxy_connect_timeout 1s;
		proxy_next_upstream error timeout http_502 http_503 non_idempotent;" || return 1
	MN_LB="http://$1:$MN_PN"
}

novads_start_a() {
	export NOVA_ADVERTISE_URL="$MN_LB"
	T_LISTEN="$1:$MN_PA" nova_start || return 1
	A_PID=$T_PID
	MN_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
	MN_DBURL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova"
}

novads_start() {
	mkdir -p "$T_WORK/state-$1"
	rm -f "$T_WORK/state-$1/novad.url"
	NOVA_STATE_DIR="$T_WORK/state-$1" NOVA_LISTEN="$2:$3" NOVA_ADMIN_TOKEN="$MN_TOKEN" \
		NOVA_DATABASE_URL="$MN_DBURL" "$B/novad" >>"$T_WORK/novad-$1.log" 2>&1 &
	eval "${1}_PID=\$!"
	i=0; while [ ! -s "$T_WORK/state-$1/novad.url" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
	[ -s "$T_WORK/state-$1/novad.url" ]
}

novads_restart_a() {
	NOVA_LISTEN="$1:$MN_PA" NOVA_DATABASE_URL="$MN_DBURL" NOVA_ENABLE_FAKE_PROVIDER=1 \
		"$B/novad" >>"$T_WORK/novad.log" 2>&1 &
	A_PID=$!
	T_PID=$A_PID # the cleanup's nova_stop stops this one (the first A is dead)
	i=0; while ! curl -sf "http://$1:$MN_PA/healthz" >/dev/null && [ $i -lt 100 ]; do
		i=$((i + 1)); sleep 0.1; done
}

novads_kill_each() {
	(
		while :; do
			n=$(curl -s -m 2 -H "Authorization: Bearer $MN_TOKEN" "$MN_LB/v1/routes?model=$2" |
				grep -o '"url"' | wc -l)
			[ "$n" -eq 0 ] && echo "gap $(date +%T.%N)" >>"$T_WORK/gaps"
			sleep 0.1
		done
	) &
	MN_POLL_PID=$!
	before=$(t_sql "SELECT count(*) FROM node_events WHERE to_state <> 'ready'")
	for who in A B C; do
		case $who in
		A) kill -9 "$A_PID"; wait "$A_PID" 2>/dev/null; sleep 4; novads_restart_a "$1" ;;
		B) kill -9 "$B_PID"; wait "$B_PID" 2>/dev/null; sleep 4; novads_start B "$1" "$MN_PB" ;;
		C) kill -9 "$C_PID"; wait "$C_PID" 2>/dev/null; sleep 4; novads_start C "$1" "$MN_PC" ;;
		esac
		sleep 2
	done
	sleep 4
	kill "$MN_POLL_PID" 2>/dev/null; wait "$MN_POLL_PID" 2>/dev/null; MN_POLL_PID=
	after=$(t_sql "SELECT count(*) FROM node_events WHERE to_state <> 'ready'")
	[ "$before" = "$after" ] && t_pass "no node left ready while each novad was killed in turn" ||
		t_fail "no node left ready" "$(t_sql "SELECT string_agg(from_state || '->' || to_state || ' ' || reason, '; ') FROM node_events WHERE to_state <> 'ready'")"
	[ ! -s "$T_WORK/gaps" ] && t_pass "the route never disappeared" ||
		t_fail "the route never disappeared" "$(wc -l <"$T_WORK/gaps") gaps, first $(head -1 "$T_WORK/gaps")"
}

novads_stop() {
	kill -9 ${B_PID:-} ${C_PID:-} ${MN_POLL_PID:-} 2>/dev/null
	kill "$(cat "$T_WORK/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null
}
