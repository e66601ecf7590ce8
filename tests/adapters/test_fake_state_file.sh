#!/bin/sh
# The fake provider's state_file is a file name kept under novad's state
# directory (<state>/fake/), never a path (issue 23): with the fake
# enabled, a path let a pool config overwrite any file novad can write.
set -u
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "see log"; exit 0; }
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
printf 'precious\n' >"$T_WORK/victim"

post() {
	code=$(curl -s -m 10 -o "$T_WORK/resp" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' --data-binary "$1" "$NOVA_URL/v1/pools")
}
refused() {
	post "{\"name\":\"p\",\"provider\":\"fake\",\"config\":{\"mode\":\"static\",\"nodes\":1,\"state_file\":$2}}"
	if [ "$code" = 400 ] && grep -q '"field": *"config.state_file"' "$T_WORK/resp"; then
		t_pass "$1: 400 naming config.state_file"
	else
		t_fail "$1: 400 naming config.state_file" "got $code: $(head -c 300 "$T_WORK/resp")"
	fi
}
refused "an absolute path" "\"$T_WORK/victim\""
refused "../ out of fake/" '"../victim"'
refused "a path with a directory" '"sub/x.json"'
refused "a hidden name" '".x"'
refused "an empty name" '""'
refused "not a string" '7'
[ "$(cat "$T_WORK/victim")" = precious ] && t_pass "the named file is untouched" ||
	t_fail "the named file is untouched" "$(head -c 100 "$T_WORK/victim")"
[ "$(t_sql "SELECT count(*) FROM pools")" = 0 ] && t_pass "no pool was made" ||
	t_fail "no pool was made" "$(t_sql "SELECT name FROM pools")"

# A name works: the file is <state>/fake/<name>, holding the node's token.
t_fake_deploy || { t_fail "a pool with state_file provider.json deploys" "no replica placed"; exit 0; }
f="$NOVA_STATE_DIR/fake/provider.json"
if [ -f "$f" ] && grep -q "\"node_id\":\"$T_NODE\"" "$f" && [ -n "$T_TOKEN" ]; then
	t_pass "the state file is kept under the state directory's fake/"
else
	t_fail "the state file is kept under the state directory's fake/" "$(ls -la "$NOVA_STATE_DIR/fake" 2>&1)"
fi
[ "$(stat -c %a "$NOVA_STATE_DIR/fake")" = 700 ] && t_pass "fake/ is 0700" ||
	t_fail "fake/ is 0700" "$(stat -c %a "$NOVA_STATE_DIR/fake")"
exit 0
