#!/bin/sh
# nova-mock-engine as a process: it prints its port, crashes when asked
# (exit 3, after N completions), and stops cleanly on SIGTERM.
set -u
. tests/support/lib.sh
E="$B/nova-mock-engine"
"$E" --crash-after 1 --model m --tokens-per-second 1000 --latency-ms 0 >"$T_WORK/port" 2>"$T_WORK/err" &
pid=$!
i=0; while [ ! -s "$T_WORK/port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
port=$(head -1 "$T_WORK/port")
body='{"model":"m","prompt":"x","max_tokens":2}'
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/completions" -d "$body")
[ "$code" = 200 ] && t_pass "first completion served" || t_fail "first completion served" "$code"
curl -s -o /dev/null "http://127.0.0.1:$port/v1/completions" -d "$body"
wait $pid; rc=$?
[ $rc -eq 3 ] && t_pass "crashes after N completions with exit 3" || t_fail "crash-after" "exit $rc"

rm -f "$T_WORK/port"
"$E" >"$T_WORK/port" 2>/dev/null &
pid=$!
i=0; while [ ! -s "$T_WORK/port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops it cleanly" || t_fail "SIGTERM stops it cleanly" "exit $rc"
t_expect_exit 0 "--help" "$E" --help
t_expect_out "--error-percent N" "--help lists --error-percent"
t_expect_exit 2 "--error-percent over 100 exits 2" "$E" --error-percent 101
t_expect_out "error-percent" "--error-percent out of range names the flag"
t_expect_exit 2 "unknown flag exits 2" "$E" --turbo
t_expect_exit 2 "bad value exits 2" "$E" --tokens-per-second zero
t_expect_out "tokens-per-second" "bad value names the flag"
exit 0
