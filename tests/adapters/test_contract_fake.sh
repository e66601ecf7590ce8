#!/bin/sh
# The adapter contract (tests/adapters/driver_contract.c) against the fake
# provider, in the driver's process: once as an ephemeral pool, once as a
# static one. The witness for twins is the fake's own resource table.
set -u
. tests/support/lib.sh
export NOVA_STATE_DIR="$T_WORK/state"
mkdir -p "$NOVA_STATE_DIR"
cat >"$T_WORK/ephemeral.json" <<EOC
{"config": {"mode": "ephemeral", "nodes": 4, "accelerators_per_node": 2},
 "ephemeral": true,
 "bad": [{"config": {"mode": "elastic"}, "field": "config.mode"},
         {"config": {"nodes": -1}, "field": "config.nodes"}]}
EOC
cat >"$T_WORK/static.json" <<EOC
{"config": {"mode": "static", "nodes": 2, "accelerator_type": "A100-80G"},
 "ephemeral": false,
 "foreign_handle": "fake-node-3",
 "bad": [{"config": {"mode": "static", "accelerators_per_node": 65}, "field": "config.accelerators_per_node"},
         {"config": {"mode": "static", "state_file": "../x"}, "field": "config.state_file"}]}
EOC
t_cmocka "$B/tests/adapters/driver_contract" fake "$T_WORK/ephemeral.json"
t_cmocka "$B/tests/adapters/driver_contract" fake "$T_WORK/static.json"
exit 0
