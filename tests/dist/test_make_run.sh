#!/bin/sh
# `make run`'s script (tools/run.sh) with a state directory of the user's
# choosing (NOVA_STATE_DIR) and an address (NOVA_LISTEN): the demo comes
# up, and what it prints works from a new shell that has none of the
# variables, once it runs the export line the script printed for it.
set -u
. tests/support/lib.sh
RUNPID=
trap '[ -n "$RUNPID" ] && kill -TERM $RUNPID 2>/dev/null && wait $RUNPID; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
T_DB=t_sh_$$_run
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $T_DB" >/dev/null ||
	{ t_fail "a database for the demo" "createdb failed"; exit 0; }
state="$T_WORK/my state"
mkdir -p "$T_WORK/home"
(
	unset NOVA_CONFIG NOVA_TOKEN NOVA_SERVER
	export HOME="$T_WORK/home" NOVA_STATE_DIR="$state" NOVA_LISTEN=127.0.0.1:0 \
		NOVA_ROUTER_LISTEN=127.0.0.1:0 BUILD="$B" \
		NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova"
	exec sh tools/run.sh
) >"$T_WORK/run.out" 2>&1 &
RUNPID=$!
i=0; until grep -q "Ctrl-C stops the demo" "$T_WORK/run.out" || [ $i -gt 900 ] || ! kill -0 $RUNPID 2>/dev/null; do
	i=$((i + 1)); sleep 0.1; done
if grep -q "Ctrl-C stops the demo" "$T_WORK/run.out"; then t_pass "make run's script brings the demo up"
else t_fail "the demo comes up" "$(tail -5 "$T_WORK/run.out")"; exit 0; fi
url=$(cat "$state/novad.url" 2>/dev/null)
[ -n "$url" ] && grep -q "gateway: *$url" "$T_WORK/run.out" &&
	t_pass "it prints the gateway novad listens on (NOVA_LISTEN)" ||
	t_fail "gateway address" "$url; $(head -5 "$T_WORK/run.out")"
line=$(sed -n 's/^ *\(export NOVA_STATE_DIR=.*\)$/\1/p' "$T_WORK/run.out")
[ "$line" = "export NOVA_STATE_DIR=$state" ] && t_pass "it says what to export in a new shell" ||
	t_fail "the export line" "got '$line'"
# A new shell: none of the variables, another home. Without the export,
# novactl looks in the default place and finds no novad there.
fresh() { env -i PATH="$PATH" HOME="$T_WORK/fresh" sh -c "$1" >"$T_WORK/out" 2>&1; }
mkdir -p "$T_WORK/fresh"
if [ -e /var/lib/nova/novad.url ] || [ -e "$T_WORK/fresh/.local/state/nova/novad.url" ]; then
	echo "SKIP: a novad in the default state directory: the check without the export"
else
	fresh "'$B/novactl' deployment get demo" && t_fail "without the export the command fails" "it worked" ||
		t_pass "without the export, a new shell does not find this novad"
fi
cmd=$(sed -n 's/^ *\(.*novactl deployment get demo\)$/\1/p' "$T_WORK/run.out" | head -1)
if fresh "export NOVA_STATE_DIR='$state'; $cmd" && grep -q "demo" "$T_WORK/out"; then
	t_pass "after it, the printed novactl command works from a new shell"
else t_fail "the printed command" "$cmd: $(cat "$T_WORK/out")"; fi
# A background job ignores SIGINT (so would its traps): TERM, which the
# script traps with INT, stands for the Ctrl-C.
kill -TERM $RUNPID; wait $RUNPID; RUNPID=
grep -q "make run: stopping the demo" "$T_WORK/run.out" && t_pass "stopping it stops the demo" ||
	t_fail "stop" "$(tail -3 "$T_WORK/run.out")"
