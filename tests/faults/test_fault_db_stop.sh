#!/bin/sh
# PostgreSQL stopped hard (pg_ctl stop -m immediate: every connection
# dropped, no shutdown checkpoint) for 20 s, then started again on the same
# data directory and socket. novad must reconnect; nothing is failed,
# replaced or deprovisioned; routes stay readable; completions succeed.
. tests/faults/lib.sh
f_setup
f_start_observers 120
F_FAULT_START=$(f_now)
f_pg_stop_hard
sleep 20
f_pg_start_again || t_fail "the database starts again" "$(tail -5 "$F_PG/server.log")"
f_finish
exit 0
