#!/bin/sh
# Issue 13: PostgreSQL paused for 40 s (SIGSTOP on the postmaster and every
# backend), longer than the 30 s failure grace, under two routed
# deployments with traffic. Nothing may be failed, replaced or
# deprovisioned; the routing table stays readable and full; completions
# keep succeeding; within one reconcile period of the resume everything is
# consistent.
. tests/faults/lib.sh
f_setup
f_start_observers 150
F_FAULT_START=$(f_now)
f_pg_pause
sleep 40
f_pg_resume
f_consistency_after 5
# The aftermath: the sweep and the reconciler run on the resumed database.
sleep 10
f_consistency_after 1 "still consistent 10 s later"
f_stop_observers
f_check
exit 0
