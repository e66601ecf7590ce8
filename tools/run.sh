#!/bin/sh
# `make run`: starts novad with its defaults (a private PostgreSQL under the
# state directory, a generated admin token) and shows how to use it. Ctrl-C
# stops novad, which stops its database.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) bdir=$BUILD ;; *) bdir=$top/$BUILD ;; esac
NOVAD="$bdir/novad"
NOVACTL="$bdir/novactl"
ROUTER="$bdir/nova-router"
ROUTER_LISTEN=${NOVA_ROUTER_LISTEN:-127.0.0.1:8430}
CONFIG=${NOVA_CONFIG:-$top/etc/novad.yaml}

state=${NOVA_STATE_DIR:-}
default_state=
if [ -z "$state" ]; then
	default_state=1
	if [ "$(id -u)" -eq 0 ]; then state=/var/lib/nova
	else state=${XDG_STATE_HOME:-$HOME/.local/state}/nova; fi
fi
export NOVA_STATE_DIR="$state"

rm -f "$state/novad.url"
mkdir -p "$state"
log="$state/novad.log"
echo "make run: starting novad (log: $log)"
# Its own session: a Ctrl-C reaches this script, which stops the demo first.
setsid "$NOVAD" -c "$CONFIG" >>"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM

i=0
while [ ! -s "$state/novad.url" ]; do
	if ! kill -0 $pid 2>/dev/null; then
		echo "make run: novad exited:" >&2
		tail -n 5 "$log" >&2
		exit 1
	fi
	i=$((i + 1))
	if [ $i -gt 600 ]; then echo "make run: novad did not come up in 60 s" >&2; kill $pid; exit 1; fi
	sleep 0.1
done
url=$(cat "$state/novad.url")

# The demo: an lpu pool on the local racks of etc/datacenter.yaml with mock
# agents (nova-sidecar running nova-mock-engine), and a model deployed on it.
"$NOVACTL" pool get demo >/dev/null 2>&1 ||
	"$NOVACTL" pool create demo --provider lpu \
		--config "{\"topology\":\"$top/etc/datacenter.yaml\",\"allocation\":\"c1r1\",\"mock_agents\":true}" >/dev/null
"$NOVACTL" model get demo >/dev/null 2>&1 ||
	"$NOVACTL" model register -f "$top/etc/models/lpu_demo.yaml" >/dev/null
"$NOVACTL" deployment get demo >/dev/null 2>&1 ||
	"$NOVACTL" deploy demo --pool demo --name demo >/dev/null
"$NOVACTL" deployment start demo >/dev/null 2>&1

# Ctrl-C stops what this started: the deployment, the agents (a forced pool
# delete deprovisions them), then novad and its database.
stop_all() {
	trap '' INT TERM
	echo
	echo "make run: stopping the demo"
	"$NOVACTL" deployment stop demo >/dev/null 2>&1
	i=0
	while [ $i -lt 100 ] && ! "$NOVACTL" deployment get demo 2>/dev/null | grep -q "^state:     stopped"; do
		i=$((i + 1)); sleep 0.1
	done
	"$NOVACTL" deployment delete demo >/dev/null 2>&1
	"$NOVACTL" pool delete demo --force >/dev/null 2>&1
	[ -n "${rpid:-}" ] && kill -TERM $rpid 2>/dev/null && wait $rpid
	kill -TERM $pid 2>/dev/null
	wait $pid
	exit 0
}
trap stop_all INT TERM

endpoint=
i=0
while [ -z "$endpoint" ] && [ $i -lt 300 ]; do
	endpoint=$("$NOVACTL" -o json routes --model demo 2>/dev/null | sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' | head -1)
	i=$((i + 1)); sleep 0.1
done

# nova-router in front: a key with the router scope for it (by its
# environment, never its command line), one with the inference scope for
# the curl below, kept in a 0600 header file that curl reads (-H @file), so
# it is on no command line either.
router_key=$("$NOVACTL" apikey create make-run-router --scope router 2>/dev/null)
auth="$state/router-auth-header"
(umask 077; printf 'Authorization: Bearer %s\n' \
	"$("$NOVACTL" apikey create make-run-client --scope inference 2>/dev/null)" >"$auth")
rlog="$state/nova-router.log"
rm -f "$state/nova-router.port"
NOVA_TOKEN=$router_key setsid "$ROUTER" --gateway "$url" --listen "$ROUTER_LISTEN" \
	>"$state/nova-router.port" 2>>"$rlog" &
rpid=$!
router_url=
i=0
while [ $i -lt 100 ]; do
	if ! kill -0 $rpid 2>/dev/null; then
		echo "make run: nova-router exited:" >&2; tail -n 5 "$rlog" >&2; rpid=; break
	fi
	[ -s "$state/nova-router.port" ] &&
		router_url="http://${ROUTER_LISTEN%:*}:$(head -1 "$state/nova-router.port")" &&
		curl -sf -o /dev/null -H @"$auth" "$router_url/v1/models" && break
	i=$((i + 1)); sleep 0.1
done

cat <<EOT

  Nova is running.
    gateway:      $url   (OpenAPI: $url/openapi.json, readable at $url/docs)
    dashboard:    $url/ui   (sign in with the admin token below)
    state:        $state  (database, admin token)
    log:          $log
    admin token:  $state/admin_token  (novactl finds it by itself)

  The routing table:
EOT
"$NOVACTL" routes | sed 's/^/    /'
cat <<EOT

  nova-router, one stable OpenAI-compatible URL for every model (log: $rlog;
  $auth holds an inference key as a header line):
    curl -s $router_url/v1/chat/completions \\
      -H @$auth -H 'Content-Type: application/json' \\
      -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}],"max_tokens":8}'
    (add "stream":true for tokens as they come; GET /v1/models lists the models)

  Or the replica's own endpoint, directly:
    curl -s $endpoint/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}],"max_tokens":8}'

$(if [ -z "$default_state" ]; then
	printf '  From a new shell, first (novactl finds novad and its admin token there):\n'
	printf '    export NOVA_STATE_DIR=%s\n\n' "$state"
fi)
  Try:
    $NOVACTL deployment get demo
    $NOVACTL deployment scale demo --replicas 2
    $NOVACTL node list
    $NOVACTL routes --watch
    $NOVACTL apikey create my-ci --scope write --scope read

  Ctrl-C stops the demo, novad and its database.

EOT
wait $pid
