#!/bin/sh
# make check-layers (tools/check_layers.sh): the tree as it is passes, and a
# copy of it with one breach of each kind fails, naming the file, the line
# and what was breached.
set -u
. tests/support/lib.sh
trap t_cleanup EXIT
out="$T_WORK/out"
if sh tools/check_layers.sh . >"$out" 2>&1; then
	t_pass "the tree keeps its layers and table owners ($(tail -1 "$out"))"
else
	t_fail "the tree keeps its layers and table owners" "$(cat "$out")"
fi
# A copy to break, one breach at a time.
fresh() {
	rm -rf "$T_WORK/tree" && mkdir -p "$T_WORK/tree" &&
		cp -r docs sql adapters audit auth cli core deployments gateway inventory models \
			pools router sidecar "$T_WORK/tree/"
}
breach() { # name, expected text in the report
	if sh tools/check_layers.sh "$T_WORK/tree" >"$out" 2>&1; then
		t_fail "$1" "check-layers passed"
	elif grep -qF -- "$2" "$out"; then
		t_pass "$1"
	else
		t_fail "$1" "$(cat "$out")"
	fi
}
fresh
printf '%s\n' 'static const char *const x = "UPDATE nodes SET cordoned = true";' >>"$T_WORK/tree/inventory/demand.c"
breach "a module writing a table it does not own is refused" \
	"inventory/demand.c:$(wc -l <"$T_WORK/tree/inventory/demand.c"): inventory writes table nodes, which pools owns"
fresh
printf '%s\n' 'static const char *const y = "DELETE FROM work_items WHERE true";' >>"$T_WORK/tree/pools/pool.c"
breach "a delete counts as a write" "pools writes table work_items, which deployments owns"
fresh
sed -i '1i #include "deployments/deployment.h"' "$T_WORK/tree/pools/pool.c"
breach "an include pointing up the layers is refused" \
	"pools/pool.c:1: pools (layer 2) includes deployments/deployment.h (deployments, layer 3)"
fresh
sed -i '1i #include "models/model.h"' "$T_WORK/tree/pools/pool.h"
breach "an include within the same layer is refused" "includes models/model.h (models, layer 2)"
fresh
sed -i '1i #include "adapters/ssh/ssh.h"' "$T_WORK/tree/gateway/gateway.c"
breach "a provider's header outside adapters/ is refused" "a provider's header"
fresh
sed -i '1i #include "inventory/inventory.h"' "$T_WORK/tree/router/router.c" 2>/dev/null ||
	sed -i '1i #include "inventory/inventory.h"' "$(ls "$T_WORK"/tree/router/*.c | head -1)"
breach "a program including a module other than core is refused" "is a program of its own"
fresh
printf '%s\n' 'CREATE TABLE stray (id int);' >"$T_WORK/tree/sql/9999_stray.sql"
breach "a table with no owner in the ownership table is refused" "table stray: no owner"
fresh
mkdir -p "$T_WORK/tree/newmod" && printf 'int x;\n' >"$T_WORK/tree/newmod/a.c"
breach "a module in no layer is refused" "newmod/: a module in no layer"
