#!/bin/sh
# One request id from the client to every log line it caused: an error
# body names it; the handler's own lines and the deployment worker's lines
# for the work it queued carry it (the work item keeps it); the access line
# too; another request's lines do not.
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
export NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
api() { # METHOD PATH REQUEST-ID [BODY]
	curl -s -X "$1" -H "Authorization: Bearer $NOVA_TOKEN" -H "X-Request-Id: $3" \
		${4:+-d "$4"} "$NOVA_URL$2"
}
body=$(api POST /v1/pools req-bad-pool-1 '{"name":"Bad Name","provider":"fake"}')
echo "$body" | grep -q '"request_id": *"req-bad-pool-1"' && t_pass "an error body names the request id" ||
	t_fail "an error body names the request id" "$body"

"$B/novactl" model register -f etc/models/lora_static.yaml >/dev/null
api POST /v1/pools req-pool-2 '{"name":"p","provider":"fake","config":{"nodes":1}}' >/dev/null
api POST /v1/deployments req-deploy-3 '{"model":"mistral-7b-lora","pool":"p","name":"web"}' >"$T_WORK/deploy.json"
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 ||
	t_fail "the replica is placed" "$(cat "$T_WORK/deploy.json")"
sleep 0.5
lines() { grep "\"request_id\":\"$1\"" "$T_WORK/novad.log"; }
lines req-deploy-3 | grep -q '"component":"worker"' &&
	t_pass "the worker's lines for the queued work carry the deploy's request id" ||
	t_fail "the worker's lines carry the deploy's request id" "$(grep worker "$T_WORK/novad.log" | head -3)"
lines req-deploy-3 | grep -q '"msg":"request"' && t_pass "the access line carries it" ||
	t_fail "the access line carries it" "$(lines req-deploy-3)"
lines req-pool-2 | grep -q '"component":"worker"' &&
	t_fail "another request's id is not on the worker's lines" "$(lines req-pool-2)" ||
	t_pass "another request's id is not on the worker's lines"
n=$(grep -c '"request_id":"req-deploy-3".*"request_id"' "$T_WORK/novad.log")
[ "$n" = 0 ] && t_pass "no line names a request id twice" || t_fail "no line names a request id twice" "$n lines"
exit 0
