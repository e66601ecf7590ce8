#!/bin/sh
# PostgreSQL restarted cleanly (pg_ctl restart -m fast): every connection
# of novad's pool is closed under it. novad must reconnect with no visible
# effect: nothing failed, replaced or deprovisioned, routes readable,
# completions succeed, consistent within one reconcile period.
. tests/faults/lib.sh
f_setup
f_start_observers 90
F_FAULT_START=$(f_now)
f_pg_restart || t_fail "the database restarts" "$(tail -5 "$F_PG/server.log")"
f_finish
exit 0
