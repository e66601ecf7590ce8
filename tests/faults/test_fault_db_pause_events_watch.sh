#!/bin/sh
# GET /v1/events/watch while PostgreSQL is paused (SIGSTOP: queries hang
# until novad's deadlines) for 33 s: the open stream stays open, sends keep-alive comments and nothing else, a watch
# opened meanwhile is answered 200 (from the listener's last head); once the
# database is back, the events committed then reach both streams in id
# order, the first one's ids without a gap from its start. Its own cluster
# (tests/faults/lib.sh), no fleet: a pool and rows are enough for events.
# Rejected: a hard stop, which on this cluster (synchronous_commit off)
# may lose the last commits and so give their ids again to other events.
. tests/faults/lib.sh
f_pg_init || { t_fail "the case's PostgreSQL starts" "see above"; exit 0; }
nova_start || { t_fail "novad starts" "$(tail -20 "$T_WORK/novad.log")"; exit 0; }
tok=$(cat "$NOVA_STATE_DIR/admin_token")
t_sql "INSERT INTO pools (name, provider) VALUES ('p', 'fake')" >/dev/null
pool=$(t_sql "SELECT id FROM pools WHERE name = 'p'")
ev() { t_sql "INSERT INTO pool_events (pool_id, kind, message) VALUES ('$pool', 'test', '$1')" >/dev/null; }
ids() { sed -n 's/^id: //p' "$1" | tr '\n' ' '; }
# wait_ids FILE N [SECONDS]: until FILE holds N ids.
wait_ids() {
	wi=0
	while [ "$(sed -n 's/^id: //p' "$1" | wc -l)" -lt "$2" ]; do
		wi=$((wi + 1)); [ $wi -gt $((${3:-10} * 10)) ] && return 1; sleep 0.1
	done
}

h0=$(t_sql "SELECT last_id FROM event_stream_head")
curl -sN -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events/watch" >"$T_WORK/a" 2>/dev/null &
a=$!
wait_file_line() { i=0; until grep -q "$1" "$2" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.1; done; }
wait_file_line "^: after $h0" "$T_WORK/a" || t_fail "the watch opens at the head" "$(cat "$T_WORK/a")"
ev one; ev two
wait_ids "$T_WORK/a" 2 && t_pass "events come before the outage" || t_fail "events before the outage" "$(cat "$T_WORK/a")"

f_pg_pause
sleep 2
# The handler reads the head first (it hangs until the pool's deadline).
code=$(curl -s -o "$T_WORK/b" -w '%{http_code}' -m 8 -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events/watch?kind=pool")
[ "$code" = 200 ] && t_pass "a watch opened while the database is away is answered 200" ||
	t_fail "a watch opened while the database is away" "$code $(cat "$T_WORK/b")"
curl -sN -H "Authorization: Bearer $tok" "$NOVA_URL/v1/events/watch?kind=pool" >"$T_WORK/b" 2>/dev/null &
b=$!
# Keep-alives are sent at the 15 s tick once 15 s passed since the last
# write: within 30 s.
sleep 31
kill -0 $a 2>/dev/null && t_pass "the stream stays open while the database is away" ||
	t_fail "the stream stays open while the database is away" "curl ended: $(tail -3 "$T_WORK/a")"
grep -q '^: keep-alive' "$T_WORK/a" && t_pass "keep-alives while the database is away" ||
	t_fail "keep-alives while the database is away" "$(cat "$T_WORK/a")"
[ "$(sed -n 's/^id: //p' "$T_WORK/a" | wc -l)" -eq 2 ] && ! grep -q '^event: snapshot' "$T_WORK/a" &&
	t_pass "nothing but keep-alives while the database is away" ||
	t_fail "nothing but keep-alives while the database is away" "$(cat "$T_WORK/a")"

f_pg_resume
ev three; ev four; ev five
h1=$(t_sql "SELECT last_id FROM event_stream_head")
want=$(seq $((h0 + 1)) "$h1" | tr '\n' ' ')
if wait_ids "$T_WORK/a" 5 20 && [ "$(ids "$T_WORK/a")" = "$want" ]; then
	t_pass "after the outage the stream goes on: every id in order, none missed or repeated"
else
	t_fail "after the outage every id in order" "got [$(ids "$T_WORK/a")], want [$want]"
fi
# The stream opened during the outage began at the listener's last head:
# it has at least the events committed after the database came back.
if wait_ids "$T_WORK/b" 3 20 && ids "$T_WORK/b" | grep -q "$((h1 - 2)) $((h1 - 1)) $h1 $"; then
	t_pass "a watch opened during the outage gets the events that came after it"
else
	t_fail "a watch opened during the outage" "got [$(ids "$T_WORK/b")], want it to end with $((h1 - 2)) $((h1 - 1)) $h1"
fi
kill $a $b 2>/dev/null
wait $a $b 2>/dev/null
exit 0
