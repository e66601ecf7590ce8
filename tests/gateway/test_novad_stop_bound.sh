#!/bin/sh
# novad stops within its bound whatever a request thread is doing (issue
# 23): a forced pool delete whose provider takes 60 s to deprovision holds
# an HTTP thread; SIGTERM still ends novad within the HTTP drain (10 s),
# libmicrohttpd's 1 s and the rest of the shutdown, instead of waiting for
# the thread (MHD_stop_daemon joins every thread).
set -u
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
"$B/novactl" model register -f etc/models/lora_static.yaml >/dev/null
# A static pool: its node stays after the deployment goes, so the forced
# delete has one to deprovision, on the request's thread.
"$B/novactl" pool create p --provider fake --config \
	"{\"mode\":\"static\",\"nodes\":1,\"faults\":{\"deprovision\":{\"kind\":\"slow\",\"delay_ms\":60000}}}" >/dev/null ||
	{ t_fail "a pool with a slow deprovision" "refused"; exit 0; }
"$B/novactl" deploy mistral-7b-lora --pool p --name web >/dev/null
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 ||
	{ t_fail "replica placed" "$(t_sql "SELECT state FROM replicas")"; exit 0; }
"$B/novactl" deployment stop web >/dev/null
t_wait_sql "SELECT state FROM deployments" stopped 20 ||
	{ t_fail "deployment stopped" "$(t_sql "SELECT state FROM deployments")"; exit 0; }
"$B/novactl" deployment delete web >/dev/null
t_wait_sql "SELECT count(*) FROM deployments" 0 ||
	{ t_fail "deployment deleted" "$(t_sql "SELECT count(*) FROM deployments")"; exit 0; }
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
curl -s -o /dev/null -m 90 -X DELETE -H "Authorization: Bearer $TOKEN" "$NOVA_URL/v1/pools/p?force=true" &
curl_pid=$!
# The delete is in the provider's 60 s now.
sleep 2
kill -0 $curl_pid 2>/dev/null && t_pass "a forced delete is held in the provider" ||
	t_fail "a forced delete is held in the provider" "it returned"
start=$(date +%s)
kill -TERM "$T_PID"
i=0
while kill -0 "$T_PID" 2>/dev/null && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.1; done
took=$(($(date +%s) - start))
if kill -0 "$T_PID" 2>/dev/null; then
	t_fail "SIGTERM stops novad within 20 s while a request thread is held" "still running after ${took}s"
	kill -KILL "$T_PID"
else
	t_pass "SIGTERM stops novad within 20 s while a request thread is held (${took}s)"
fi
wait "$T_PID" 2>/dev/null
rc=$?
T_PID=
[ "$rc" = 0 ] && t_pass "novad exits 0" || t_fail "novad exits 0" "exit $rc"
grep -q "requests still running past the stop deadline" "$T_WORK/novad.log" &&
	t_pass "the request left behind is logged" || t_fail "the request left behind is logged" "$(tail -3 "$T_WORK/novad.log")"
kill $curl_pid 2>/dev/null
exit 0
