#!/bin/sh
# `make run`: starts novad with its defaults (a private PostgreSQL under the
# state directory, a generated admin token) and shows how to use it. Ctrl-C
# stops novad, which stops its database.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
NOVAD="$top/$BUILD/novad"
NOVACTL="$top/$BUILD/novactl"
CONFIG=${NOVA_CONFIG:-$top/etc/novad.yaml}

state=${NOVA_STATE_DIR:-}
if [ -z "$state" ]; then
	if [ "$(id -u)" -eq 0 ]; then state=/var/lib/nova
	else state=${XDG_STATE_HOME:-$HOME/.local/state}/nova; fi
fi
export NOVA_STATE_DIR="$state"
# The demo pool uses the fake provider; real providers need real machines.
export NOVA_ENABLE_FAKE_PROVIDER=${NOVA_ENABLE_FAKE_PROVIDER:-1}

rm -f "$state/novad.url"
mkdir -p "$state"
log="$state/novad.log"
echo "make run: starting novad (log: $log)"
"$NOVAD" -c "$CONFIG" >>"$log" 2>&1 &
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

# A demo pool, created once.
"$NOVACTL" pool get demo >/dev/null 2>&1 ||
	"$NOVACTL" pool create demo --provider fake --config '{"mode":"static","nodes":2,"accelerator_type":"A100-80G","accelerators_per_node":2}' \
		--max-nodes 4 >/dev/null

cat <<EOT

  Nova is running.
    gateway:      $url   (OpenAPI: $url/openapi.json)
    state:        $state  (database, admin token)
    log:          $log
    admin token:  $state/admin_token  (novactl finds it by itself)

  Try:
    $NOVACTL pool list
    $NOVACTL model register -f $top/etc/models/single.yaml
    $NOVACTL deploy llama-3-8b-instruct --pool demo --replicas 2
    $NOVACTL deployment get llama-3-8b-instruct-demo
    $NOVACTL node list
    $NOVACTL routes --watch
    $NOVACTL apikey create my-ci
    curl -s $url/healthz

  Ctrl-C stops novad and its database.

EOT
"$NOVACTL" pool list
wait $pid
