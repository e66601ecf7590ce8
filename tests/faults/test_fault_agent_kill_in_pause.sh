#!/bin/sh
# One agent SIGKILLed while PostgreSQL is paused (20 s, with a short
# failure grace: heartbeats every 1 s, unhealthy after 3 s of silence,
# failed after 8 s). Only that node is failed, and only after the database
# is back and it stayed silent for its own grace: its unhealthy transition
# is at least 3 s after the resume, its failed one at least 8 s after. The
# others stay ready; the brake on mass failure must not hide it. Its
# replica moves (same replica id) to a free node.
#
# The reconciler starts a vanished lpu agent again; to keep the node
# silent (a host that is gone, not a process that restarts), the pool's
# agent (novad's NOVA_LPU_AGENT) is a wrapper that refuses to start for a node id marked in
# $T_WORK/refuse.<id>. The failed node's host is then discovered again as
# a new node with an agent of its own.
export NOVA_HEARTBEAT_INTERVAL_MS=1000 NOVA_NODE_FAILED_AFTER_MS=8000
. tests/faults/lib.sh
UNHEALTHY_S=3 FAILED_S=8
cat >"$T_WORK/agent.sh" <<EOF
#!/bin/sh
prev=; id=
for a in "\$@"; do [ "\$prev" = --node-id ] && id=\$a; prev=\$a; done
[ -e "$T_WORK/refuse.\$id" ] && { echo "refused: the fault suite keeps \$id down" >&2; exit 1; }
exec "$B/nova-sidecar" "\$@"
EOF
chmod 0755 "$T_WORK/agent.sh"
# The agent program is novad's setting, not the pool's.
export NOVA_LPU_AGENT="$T_WORK/agent.sh"
f_setup
# The victim: the node of base-a's first replica.
victim=$(t_sql "SELECT rp.node_id FROM replicas r JOIN deployments d ON d.id = r.deployment_id JOIN replica_placements rp ON rp.replica_id = r.id WHERE d.name = 'base-a' ORDER BY r.ordinal LIMIT 1")
vurl=$(t_sql "SELECT r.endpoint FROM replicas r JOIN replica_placements rp ON rp.replica_id = r.id WHERE rp.node_id = '$victim'")
vpid=$(cat "$F_STATE/lpu/$F_POOL/$victim.pid")
f_log "victim node $victim, agent $vpid, endpoint $vurl"
f_start_observers 120
F_FAULT_START=$(f_now)
f_pg_pause
sleep 3
touch "$T_WORK/refuse.$victim"
kill -KILL "$vpid"
f_log "agent $vpid killed"
sleep 17
f_pg_resume
resume=$F_RESUMED

# The brake must not hide it: failed, within its grace and a reconcile
# period or two of the resume.
if t_wait_sql "SELECT count(*) FROM node_events WHERE node_id = '$victim' AND to_state = 'failed'" 1 $((FAILED_S + 15)); then
	t_pass "the killed agent's node is failed after the resume"
else
	t_fail "the killed agent's node is failed after the resume" "$(t_sql "SELECT state || ': ' || state_reason FROM nodes WHERE id = '$victim'")"
fi
failed_at=$(t_sql "SELECT extract(epoch from at) FROM node_events WHERE node_id = '$victim' AND to_state = 'failed' ORDER BY id LIMIT 1")
unhealthy_at=$(t_sql "SELECT extract(epoch from at) FROM node_events WHERE node_id = '$victim' AND to_state = 'unhealthy' ORDER BY id LIMIT 1")
f_log "resume $resume, unhealthy at ${unhealthy_at:-never}, failed at ${failed_at:-never}"
late() { python3 -c 'import sys; print(1 if float(sys.argv[1]) >= float(sys.argv[2]) + float(sys.argv[3]) - 0.1 else 0)' "$@"; }
if [ -n "$unhealthy_at" ]; then
	[ "$(late "$unhealthy_at" "$resume" "$UNHEALTHY_S")" = 1 ] &&
		t_pass "its unhealthy transition came at least ${UNHEALTHY_S} s after the resume" ||
		t_fail "its unhealthy transition came at least ${UNHEALTHY_S} s after the resume" \
			"$(python3 -c 'import sys; print("%.2f s after" % (float(sys.argv[1]) - float(sys.argv[2])))' "$unhealthy_at" "$resume")"
else
	t_pass "its unhealthy transition came at least ${UNHEALTHY_S} s after the resume (it went straight to failed)"
fi
if [ -n "$failed_at" ]; then
	[ "$(late "$failed_at" "$resume" "$FAILED_S")" = 1 ] &&
		t_pass "its failed transition came at least ${FAILED_S} s (its own grace) after the resume" ||
		t_fail "its failed transition came at least ${FAILED_S} s (its own grace) after the resume" \
			"$(python3 -c 'import sys; print("%.2f s after" % (float(sys.argv[1]) - float(sys.argv[2])))' "$failed_at" "$resume")"
fi
# The fault ends when the node is failed: its replica moves, the host comes
# back as a new node; two reconcile periods for that.
f_consistency_after 10 "full consistency within 10 s of the node's failure"
sleep 5
f_stop_observers
f_check --victim "$victim" --victim-urls "$vurl"
exit 0
