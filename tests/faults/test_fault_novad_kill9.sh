#!/bin/sh
# novad killed (-9) at 20 random moments while a loop creates, scales,
# stops and starts three extra deployments, each kill followed by a restart
# on the same database, state directory and address. The operation loop
# retries a command that novactl reported failed (novad gone mid-request)
# until it succeeds, so the last successful command of each deployment is
# its desired state. After a settle time: no twin agents, no orphans, no
# lost desired state; the two base deployments served all along.
. tests/faults/lib.sh
KILLS=${F_KILLS:-20}
f_setup
"$C" model register -f etc/models/lpu/lora_static.yaml >/dev/null &&
	"$C" model register -f etc/models/lpu/lora_dynamic.yaml >/dev/null ||
	{ t_fail "extra models registered" "see log"; exit 0; }
DESIRED="$T_WORK/desired"
mkdir -p "$DESIRED"
OPS_STOP="$T_WORK/ops.stop"
export NOVA_SERVER="$NOVA_URL"

# op NAME CMD...: retry until novactl succeeds (30 s at most); an answer
# that says the change was already made (a retry of a request whose answer
# was lost with novad) counts as success.
op() {
	name=$1; shift
	i=0
	while [ $i -lt 150 ]; do
		timeout 10 "$C" "$@" >"$T_WORK/op.out" 2>&1 && return 0
		case "$(cat "$T_WORK/op.out")" in
		*"already exists"*|*"is already stopping"*|*"is already stopped"*) return 0 ;;
		*"only a stopped deployment starts"*)
			grep -q "is stopping;" "$T_WORK/op.out" || return 0 ;;
		esac
		i=$((i + 1)); sleep 0.2
	done
	echo "op $name $*: gave up: $(cat "$T_WORK/op.out")" >&2
	return 1
}

ops_loop() {
	n=0
	while [ ! -e "$OPS_STOP" ] && [ $n -lt 400 ]; do
		n=$((n + 1))
		d=x$(shuf -i 1-3 -n 1)
		r=$(shuf -i 1-3 -n 1)
		if [ ! -f "$DESIRED/$d" ]; then
			case $d in x3) m=lpu-lora-dynamic ;; *) m=lpu-lora-static ;; esac
			op "$d" deploy "$m" --pool racks --replicas "$r" --name "$d" &&
				echo "running $r" >"$DESIRED/$d"
		else
			read -r st cur <"$DESIRED/$d"
			if [ "$st" = stopped ]; then
				op "$d" deployment start "$d" && echo "running $cur" >"$DESIRED/$d"
			elif [ "$(shuf -i 1-3 -n 1)" = 1 ]; then
				op "$d" deployment stop "$d" && echo "stopped $cur" >"$DESIRED/$d"
			else
				op "$d" deployment scale "$d" --replicas "$r" && echo "running $r" >"$DESIRED/$d"
			fi
		fi
		echo "$(date +%T.%N | cut -c1-12) $n $d -> $(cat "$DESIRED/$d" 2>/dev/null)" >>"$T_WORK/ops.log"
		sleep "0.$(shuf -i 1-9 -n 1)"
	done
}

f_start_observers 240
F_FAULT_START=$(f_now)
ops_loop 2>>"$T_WORK/ops.log" &
OPS=$!
k=0
while [ $k -lt "$KILLS" ]; do
	k=$((k + 1))
	sleep "$(shuf -i 5-30 -n 1 | sed 's/\(.\)$/.\1/')"   # 0.5 to 3.0 s
	touch "$F_DOWN_FLAG"
	f_novad_kill9
	f_novad_restart || { t_fail "novad starts again after kill $k" "$(tail -20 "$T_WORK/novad.log")"; break; }
	rm -f "$F_DOWN_FLAG"
done
f_log "$k kills done"
[ "$k" -eq "$KILLS" ] && t_pass "novad killed -9 and restarted $KILLS times"
touch "$OPS_STOP"
i=0; while kill -0 "$OPS" 2>/dev/null && [ $i -lt 400 ]; do i=$((i + 1)); sleep 0.1; done
kill "$OPS" 2>/dev/null
echo "--- operations"; tail -n 15 "$T_WORK/ops.log"

# The desired state: the base deployments and the last successful command
# of each extra one.
want=$(for f in "$DESIRED"/*; do [ -f "$f" ] && read -r st r <"$f" &&
	printf ',"%s":{"state":"%s","replicas":%s}' "${f##*/}" "$st" "$r"; done)
F_WANT_ALL="{\"base-a\":{\"state\":\"running\",\"replicas\":2},\"base-b\":{\"state\":\"running\",\"replicas\":2}$want}"
echo "desired: $F_WANT_ALL"
if out=$(f_consistent 45 "$F_WANT_ALL"); then
	t_pass "0 lost desired state: every deployment as its last successful command, settled in $out s"
else
	t_fail "0 lost desired state: every deployment as its last successful command (45 s to settle)" "$out"
fi
f_stop_observers
f_check
exit 0
