# Sourced by bench/run.sh (BENCH_ONLY=multinovad): heartbeats of one fleet
# through nginx to one, two and three novads on one database, balanced
# round robin or by a consistent hash of the URI (which holds the node id,
# so each node's heartbeats land on one novad). Paced at the fleet's real
# rate (MN_NODES every heartbeat interval). Beside the heartbeats answered:
# the heartbeat rows the database wrote per second (node_heartbeats tuples
# updated, from pg_stat_user_tables) and the CPU the database's processes
# used (from /proc), so what balancing costs the database is measured, not
# guessed. Each novad flushes the heartbeats it took: under round robin
# every novad takes some of every node's, so each flush writes every node's
# row on each novad.
#
#   MN_NODES (BENCH_MN_NODES, default 10000)   nodes of the fleet
#   uses run.sh's SECS, WARM, HB_INTERVAL_MS, HB_CONNS, W, OUT, B, LG, row,
#   psql_db, nginx_bench_bin, jnum, ratio.

MN_NODES=${BENCH_MN_NODES:-10000}
MN_PIDS=
MN_NGINX_PID=

mn_stop() {
	for p in $MN_PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $MN_PIDS; do wait "$p" 2>/dev/null; done
	MN_PIDS=
	[ -n "$MN_NGINX_PID" ] && kill -QUIT "$MN_NGINX_PID" 2>/dev/null
	i=0; while [ -n "$MN_NGINX_PID" ] && kill -0 "$MN_NGINX_PID" 2>/dev/null && [ $i -lt 50 ]; do
		i=$((i + 1)); sleep 0.1; done
	MN_NGINX_PID=
}

# CPU seconds (user + system) the database's processes used so far: the
# postmaster and its children.
mn_db_cpu() {
	pm=$(head -n 1 "$PG_TEST_DIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	tck=$(getconf CLK_TCK)
	for p in $pm $(pgrep -P "$pm"); do
		# Fields after the command (which may hold spaces): utime is the
		# 14th field of the line, stime the 15th.
		sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }'
	done | awk -v t="$tck" '{ s += $1 } END { printf "%.3f\n", s / t }'
}

# mn_novad_cpu K: CPU seconds the first K novads (those behind nginx) used
# so far.
mn_novad_cpu() {
	tck=$(getconf CLK_TCK)
	for p in $(echo $MN_PIDS | tr ' ' '\n' | head -n "$1"); do
		sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }'
	done | awk -v t="$tck" '{ s += $1 } END { printf "%.3f\n", s / t }'
}

mn_rows_written() {
	psql_db "$MN_DB" -c "SELECT coalesce(n_tup_upd, 0) FROM pg_stat_user_tables WHERE relname = 'node_heartbeats'"
}

# mn_nginx K MODE: nginx on MN_PORT in front of the first K novads.
mn_nginx() {
	k=$1 mode=$2
	[ -n "$MN_NGINX_PID" ] && { kill -QUIT "$MN_NGINX_PID" 2>/dev/null; sleep 0.5; MN_NGINX_PID=; }
	servers=
	n=0
	for port in $MN_PORTS; do
		n=$((n + 1)); [ $n -gt "$k" ] && break
		servers="$servers server 127.0.0.1:$port max_fails=0;"
	done
	balance=
	[ "$mode" = hash ] && balance="hash \$uri consistent;"
	nginx_proxy_start "$W/mn-nginx" "127.0.0.1:$MN_PORT" "$balance $servers keepalive 256;" ||
		{ cat "$W/mn-nginx/start.err" >>"$OUT/multinovad-nginx.err"; return 1; }
	MN_NGINX_PID=$NGINX_PROXY_PID
}

bench_multi_novad() {
	echo "bench: heartbeats of $MN_NODES nodes through nginx to 1, 2 and 3 novads"
	MN_DB=bench_mn
	psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $MN_DB" >/dev/null || return 1
	set -- $(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	MN_PORTS="$1 $2 $3" MN_PORT=$4
	# One admin token for the three, given in their environment (never on
	# a command line).
	token=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
	for port in $MN_PORTS; do
		st="$W/mn-state-$port"
		mkdir -p "$st"
		NOVA_STATE_DIR="$st" NOVA_LPU_RUN_DIR="$st/lpu" NOVA_LISTEN="127.0.0.1:$port" \
			NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$MN_DB user=nova" NOVA_LOG_LEVEL=warn \
			NOVA_ADMIN_TOKEN="$token" "$B/novad" >>"$OUT/novad-mn-$port.log" 2>&1 &
		MN_PIDS="$MN_PIDS $!"
		i=0; while [ ! -s "$st/novad.url" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
		[ -s "$st/novad.url" ] || { mn_stop; return 1; }
	done
	psql_db "$MN_DB" -v nodes="$MN_NODES" -F ' ' -f bench/fixture_heartbeats.sql -o "$W/mn.nodes" \
		>/dev/null || { mn_stop; return 1; }
	sleep 6 # every novad reads the fleet within 5 s
	rate=$((MN_NODES * 1000 / HB_INTERVAL_MS))
	body='{"seq":{seq},"assignment_generation":"none","capacity":{"accelerator_type":"A100-80G","accelerators":8}}'
	for k in 1 2 3; do
		for mode in rr hash; do
			[ "$k" = 1 ] && [ "$mode" = hash ] && continue
			mn_nginx "$k" "$mode" || { mn_stop; return 1; }
			sleep 1
			rows0=$(mn_rows_written) cpu0=$(mn_db_cpu) ncpu0=$(mn_novad_cpu "$k") t0=$(date +%s.%N)
			"$LG" -T "127.0.0.1:$MN_PORT" -c "$HB_CONNS" -d "$SECS" -w "$WARM" -n "$W/mn.nodes" \
				-m POST -p '/v1/nodes/{id}/heartbeat' -H 'Authorization: Bearer {token}' \
				-b "$body" -r "$rate" -l "mn-$k-$mode" -o "$OUT/multinovad-$k-$mode.json" \
				2>>"$OUT/multinovad.err"
			sleep 2 # the last flush, and the statistics it leaves
			rows1=$(mn_rows_written) cpu1=$(mn_db_cpu) ncpu1=$(mn_novad_cpu "$k") t1=$(date +%s.%N)
			el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
			wrote=$(awk -v a="$rows0" -v b="$rows1" -v e="$el" 'BEGIN { printf "%.0f", (b - a) / e }')
			cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v e="$el" 'BEGIN { printf "%.3f", (b - a) / e }')
			ncpu=$(awk -v a="$ncpu0" -v b="$ncpu1" -v e="$el" 'BEGIN { printf "%.3f", (b - a) / e }')
			hbs=$(jnum "$OUT/multinovad-$k-$mode.json" rps)
			p99=$(jnum "$OUT/multinovad-$k-$mode.json" p99_ms)
			errs=$(jnum "$OUT/multinovad-$k-$mode.json" errors)
			per=$(awk -v h="$hbs" -v c="$ncpu" 'BEGIN { if (h != "" && c > 0) printf "%.0f", h / c }')
			eval "MN_ROWS_${k}_$mode=$wrote MN_CPU_${k}_$mode=$cpu MN_PER_${k}_$mode=$per"
			label="$k novad$([ "$k" -gt 1 ] && echo s), $([ "$mode" = rr ] && echo "round robin" || echo "hash \$uri consistent")"
			row multinovad "$label: heartbeats answered" "$hbs" "/s" "$rate" "$(ratio "$hbs" "$rate")" \
				"= the fleet's rate" "$([ "${errs:-1}" = 0 ] && echo "pass" || echo "miss (${errs:-?} errors)")"
			row multinovad "$label: p99" "$p99" "ms" "" "" "" ""
			row multinovad "$label: heartbeat rows written" "$wrote" "/s" "" "" "" ""
			row multinovad "$label: database CPU" "$cpu" "cores" "" "" "" ""
			row multinovad "$label: novads' CPU" "$ncpu" "cores" "" "" "" ""
			row multinovad "$label: heartbeats per novad core" "$per" "/s" "" "" "" ""
		done
	done
	# What hashing changes for the database at three novads, against round
	# robin (a comparison, not a target: docs/PERFORMANCE.md says what it
	# found and why).
	row multinovad "3 novads: rows written, hash / round robin" \
		"$(ratio "$MN_ROWS_3_hash" "$MN_ROWS_3_rr")" "" "" "" "" ""
	row multinovad "3 novads: database CPU, hash / round robin" \
		"$(ratio "$MN_CPU_3_hash" "$MN_CPU_3_rr")" "" "" "" "" ""
	# Three novads against one, round robin: what a heartbeat costs in
	# novad CPU (per core) and in the database's (rows, CPU).
	row multinovad "3 novads / 1: heartbeats per novad core" \
		"$(ratio "$MN_PER_3_rr" "$MN_PER_1_rr")" "" "" "" "" ""
	row multinovad "3 novads / 1: heartbeat rows written" \
		"$(ratio "$MN_ROWS_3_rr" "$MN_ROWS_1_rr")" "" "" "" "" ""
	row multinovad "3 novads / 1: database CPU" \
		"$(ratio "$MN_CPU_3_rr" "$MN_CPU_1_rr")" "" "" "" "" ""
	mn_stop
	rm -f "$W/mn.nodes"
	return 0
}
