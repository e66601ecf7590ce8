#!/bin/sh
# The dashboard (GET /ui) in real headless Chromium: Debian's chromium
# (installed here when missing, as root) driven by playwright-core (npm):
# a wrong key refused, sign in, the demo deployment, its replicas, the
# pools' nodes, the routing table live (a SIGKILLed sidecar's route leaves
# the page without a reload), a scale from the page, a refusal shown.
# Screenshots go to build/ui-screenshots/.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
CHROMIUM=$(command -v chromium || true)
if [ -z "$CHROMIUM" ] && [ "$(id -u)" -eq 0 ]; then
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ||
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }; } \
		>"$T_WORK/apt.log" 2>&1
	CHROMIUM=$(command -v chromium || true)
fi
[ -n "$CHROMIUM" ] || { t_fail "chromium is available" "not installed: $(tail -3 "$T_WORK/apt.log" 2>/dev/null)"; exit 0; }
npmdir="$B/npm-ui"
if [ ! -d "$npmdir/node_modules/playwright-core" ]; then
	mkdir -p "$npmdir"
	npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error playwright-core@1 >"$T_WORK/npm.log" 2>&1 ||
		{ t_fail "npm installs playwright-core" "$(tail -5 "$T_WORK/npm.log")"; exit 0; }
fi
cp tests/gateway/ui_check.mjs "$npmdir/"

nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
export NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
t_fake_deploy || { t_fail "a replica placed" "no"; exit 0; }
printf '%s' "$T_TOKEN" >"$T_WORK/node.token"
"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token-file "$T_WORK/node.token" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
trap 'kill -9 $SC_PID 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
t_wait_sql "SELECT state FROM deployments" running 30 ||
	{ t_fail "the demo deployment runs" "$(t_sql "SELECT state || ' ' || state_reason FROM deployments")"; exit 0; }
shots="$B/ui-screenshots"
rm -rf "$shots"; mkdir -p "$shots"
NOVA_URL="$NOVA_URL" SIDECAR_PID=$SC_PID SHOTS="$shots" CHROMIUM="$CHROMIUM" \
	timeout 180 node "$npmdir/ui_check.mjs" >"$T_WORK/ui.out" 2>&1
grep -E '^(PASS|FAIL): ' "$T_WORK/ui.out"
grep -qE '^(PASS|FAIL): ' "$T_WORK/ui.out" || t_fail "the browser checks ran" "$(tail -5 "$T_WORK/ui.out")"
n=$(ls "$shots"/*.png 2>/dev/null | wc -l)
[ "$n" -ge 5 ] && t_pass "screenshots saved under build/ui-screenshots ($n)" || t_fail "screenshots saved" "$n"
exit 0
