#!/bin/sh
# Runs every test of the build in $BUILD (default build/) and ends with one
# aggregate line "N passed, N failed".
#
# One PostgreSQL cluster is started for the whole run (tests make a fresh
# database each); its socket directory is exported as NOVA_TEST_PGHOST.
# C tests are cmocka binaries tests/*/test_*; shell tests are tests/*/test_*.sh
# and print "PASS: name" / "FAIL: name" lines (tests/support/lib.sh).
set -u
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
BUILD_ABS=$(cd "$BUILD" && pwd)
export NOVA_BUILD="$BUILD_ABS"
# A machine where Nova is installed has /etc/nova/novad.yaml and
# nova-router.yaml, which novad and nova-router read when not told another
# file: the tests' programs read none unless a test says so.
export NOVA_CONFIG=/dev/null NOVA_ROUTER_CONFIG=/dev/null
unset STATE_DIRECTORY
logdir="$BUILD_ABS/test-logs"
rm -rf "$logdir"; mkdir -p "$logdir"

. tests/support/pg.sh
pg_test_start || { echo "0 passed, 1 failed"; exit 1; }
trap 'pg_test_stop' EXIT INT TERM

passed=0; failed=0; failed_names=""
filter=${TEST_FILTER:-}

for t in $(find "$BUILD_ABS/tests" -type f -name 'test_*' -perm -u+x | sort) $(ls tests/*/test_*.sh 2>/dev/null | sort); do
	name=${t#"$BUILD_ABS"/}
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	log="$logdir/$(echo "$name" | tr / _).log"
	case "$t" in
	# A shell test may ask for longer than 600 s with a line
	# "# run.sh timeout: SECONDS" (a soak, say).
	*.sh) limit=$(sed -n 's/^# run.sh timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -n 1)
	      timeout "${limit:-600}" sh "$t" >"$log" 2>&1; rc=$?
	      p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log") ;;
	*)    timeout 600 "$t" >"$log" 2>&1; rc=$?
	      p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	      f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}') ;;
	esac
	# A crash, a timeout or a non-zero exit with nothing counted failed is
	# still a failure of that file.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if [ "$f" -gt 0 ]; then
		echo "FAIL $name ($p passed, $f failed, exit $rc): see $log"
		sed -n '/FAILED\|FAIL: \|ERROR\|Assert\|runtime error\|Sanitizer/p' "$log" | head -20
		failed_names="$failed_names $name"
	else
		echo "ok   $name ($p passed)"
	fi
	passed=$((passed + p)); failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
