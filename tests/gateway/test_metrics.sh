#!/bin/sh
# /metrics as Prometheus reads it: Debian's promtool (package prometheus,
# unpacked privately when not installed) checks novad's page, with the
# database up and with it gone; no credential is 401.
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
if ! PROMTOOL=$(t_deb_tool prometheus usr/bin/promtool); then
	t_fail "promtool is available" "see above"; exit 0
fi
metrics() { curl -s -H "Authorization: Bearer $TOKEN" "$NOVA_URL/metrics"; }
metrics >"$T_WORK/m1"
if "$PROMTOOL" check metrics <"$T_WORK/m1" >"$T_WORK/out" 2>&1; then
	t_pass "promtool check metrics accepts /metrics"
else
	t_fail "promtool check metrics accepts /metrics" "$(cat "$T_WORK/out")"
fi
grep -q '^nova_database_up 1$' "$T_WORK/m1" && t_pass "nova_database_up is 1" ||
	t_fail "nova_database_up is 1" "$(grep database_up "$T_WORK/m1")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$NOVA_URL/metrics")
[ "$code" = 401 ] && t_pass "/metrics without a credential is 401" || t_fail "/metrics without a credential" "$code"
# The database gone (this test's own database dropped under novad): the
# page still answers, from memory, and says so.
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc \
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$T_DB'" >/dev/null
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "ALTER DATABASE $T_DB ALLOW_CONNECTIONS false" >/dev/null
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc \
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$T_DB'" >/dev/null
i=0
while [ $i -lt 50 ]; do
	metrics >"$T_WORK/m2"
	grep -q '^nova_database_up 0$' "$T_WORK/m2" && break
	i=$((i + 1)); sleep 0.2
done
if grep -q '^nova_database_up 0$' "$T_WORK/m2" && "$PROMTOOL" check metrics <"$T_WORK/m2" >"$T_WORK/out" 2>&1; then
	t_pass "without the database /metrics answers, nova_database_up 0, and promtool accepts it"
else
	t_fail "without the database /metrics answers with nova_database_up 0" "$(head -c 400 "$T_WORK/m2") $(cat "$T_WORK/out")"
fi
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "ALTER DATABASE $T_DB ALLOW_CONNECTIONS true" >/dev/null
exit 0
