#!/bin/sh
# The fault suite's control case: the same set-up, driver and checks as
# every fault case, 15 s with no fault. Every assertion must pass; if one
# fails here, the harness (not the product) is wrong.
. tests/faults/lib.sh
f_setup
f_start_observers 60
F_FAULT_START=$(f_now)
sleep 15
f_consistency_after 5 "full consistency at the end (no fault)"
f_stop_observers
f_check
exit 0
