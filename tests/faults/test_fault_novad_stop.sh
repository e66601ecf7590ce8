#!/bin/sh
# novad stopped (SIGTERM) for 60 s, twice its 30 s failure grace, then
# started again on the same database, state directory and address. The
# agents and engines live on; completions continue against the last table
# the driver read; routes reads while novad is down are not failures (the
# driver counts them apart). After the restart nothing may be judged by
# the silence novad did not observe: no node failed, no replica replaced,
# no agent started or stopped.
. tests/faults/lib.sh
f_setup
f_start_observers 150
F_FAULT_START=$(f_now)
touch "$F_DOWN_FLAG"
nova_stop
f_log "novad stopped"
sleep 60
if f_novad_restart; then f_log "novad started again"; else t_fail "novad starts again" "$(tail -20 "$T_WORK/novad.log")"; fi
rm -f "$F_DOWN_FLAG"
f_finish
exit 0
