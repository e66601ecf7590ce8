#!/bin/sh
# novactl as kubectl users expect it: named contexts in
# ~/.config/nova/config.yaml (set, use, list, delete, --context,
# NOVA_CONTEXT; tokens never printed, the file 0600), output formats against
# a real novad (-o yaml parsed by PyYAML, -o name, -o wide, --no-headers),
# and shell completion sourced into a real bash completing commands, verbs
# and flags.
set -u
. tests/support/lib.sh
unset NOVA_SERVER NOVA_TOKEN NOVA_CONTEXT
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
CFG="$HOME/.config/nova/config.yaml"
ADMIN=$(cat "$NOVA_STATE_DIR/admin_token")

# --- contexts ------------------------------------------------------------------
umask 022
printf '%s\n' "$ADMIN" >"$T_WORK/admin.tok"
t_expect_exit 0 "set-context creates a context from --server and --token-file" \
	"$C" config set-context local --server "$NOVA_URL" --token-file "$T_WORK/admin.tok"
[ "$(stat -c %a "$CFG")" = 600 ] && [ "$(stat -c %a "$(dirname "$CFG")")" = 700 ] &&
	t_pass "the config file is 0600 in a 0700 directory" ||
	t_fail "config file mode" "$(ls -la "$(dirname "$CFG")")"
t_expect_exit 0 "a second context" "$C" config set-context elsewhere --server http://127.0.0.1:1
t_expect_exit 3 "no current context yet: exit 3" "$C" config current-context
t_expect_exit 0 "use-context" "$C" config use-context local
t_expect_exit 0 "current-context" "$C" config current-context
t_expect_out "^local$" "current-context prints its name"
t_expect_exit 0 "get-contexts" "$C" config get-contexts
t_expect_out "^CURRENT  *NAME  *SERVER  *TOKEN" "get-contexts has a header row"
t_expect_out "^\*  *local  *$NOVA_URL  *set" "the current context is starred, its token only said to be set"
grep -q "$ADMIN" "$T_WORK/out" && t_fail "get-contexts never prints a token" "it did" ||
	t_pass "get-contexts never prints a token"
t_expect_exit 0 "get-contexts -o json" "$C" config get-contexts -o json
grep -q "$ADMIN" "$T_WORK/out" && t_fail "-o json never prints a token" "it did" ||
	t_pass "get-contexts -o json never prints a token"
# The current context's server and token are used: the pool list works
# with no other source of credentials (the state directory is hidden).
t_expect_exit 0 "a command through the current context" \
	env NOVA_STATE_DIR="$T_WORK/none" "$C" pool list
t_expect_exit 6 "--context picks another (unreachable) context" \
	env NOVA_STATE_DIR="$T_WORK/none" "$C" --context elsewhere pool list
t_expect_out "cannot reach novad at http://127.0.0.1:1" "--context's server is the one tried"
t_expect_exit 6 "NOVA_CONTEXT picks it too" \
	env NOVA_STATE_DIR="$T_WORK/none" NOVA_CONTEXT=elsewhere "$C" pool list
t_expect_exit 0 "--context beats NOVA_CONTEXT" \
	env NOVA_STATE_DIR="$T_WORK/none" NOVA_CONTEXT=elsewhere "$C" --context local pool list
t_expect_exit 3 "an unknown --context exits 3" "$C" --context nowhere pool list
t_expect_out 'no context "nowhere"' "and names the context"
t_expect_exit 2 "set-context refuses a server that is not http(s)" \
	"$C" config set-context bad --server ftp://x
t_expect_exit 2 "set-context refuses a bad name" "$C" config set-context 'a b'
t_expect_exit 0 "delete-context" "$C" config delete-context elsewhere
t_expect_exit 3 "a deleted context is gone" "$C" config use-context elsewhere
# The choice is kept in the file.
grep -q '^current-context: local$' "$CFG" && t_pass "the file keeps current-context" ||
	t_fail "current-context in the file" "$(sed "s/$ADMIN/***/" "$CFG")"

# --- output formats ---------------------------------------------------------------
"$C" pool create gpu-a --provider fake --config '{"nodes":1}' --max-nodes 3 >/dev/null
"$C" pool create gpu-b --provider fake --config '{"nodes":1}' --max-nodes 2 >/dev/null
t_expect_exit 0 "pool list -o yaml" "$C" pool list -o yaml
if python3 -c 'import yaml' 2>/dev/null; then
	python3 - "$T_WORK/out" <<'EOPY' && t_pass "-o yaml is YAML that reads back as the API's list" ||
import json, subprocess, sys, yaml
docs = yaml.safe_load(open(sys.argv[1]))
assert [p["name"] for p in docs] == ["gpu-a", "gpu-b"], docs
assert docs[0]["quotas"]["max_nodes"] == 3, docs[0]
EOPY
		t_fail "-o yaml" "$(head -20 "$T_WORK/out")"
else
	t_fail "-o yaml is checked" "python3-yaml is missing (tools/deps.sh installs it)"
fi
t_expect_exit 0 "pool get -o yaml" "$C" pool get gpu-a -o yaml
t_expect_out "^name: gpu-a$" "a single object as a YAML mapping"
t_expect_exit 0 "pool list -o name" "$C" pool list -o name
[ "$(cat "$T_WORK/out")" = "$(printf 'pool/gpu-a\npool/gpu-b')" ] && t_pass "-o name prints KIND/NAME a line" ||
	t_fail "-o name" "$(cat "$T_WORK/out")"
t_expect_exit 0 "pool list -o wide" "$C" pool list -o wide
t_expect_out "^NAME  *PROVIDER .* ID  *CREATED$" "-o wide adds ID and CREATED"
t_expect_out "^gpu-a .* [0-9a-f]\{8\}-[0-9a-f-]* *20[0-9][0-9]-" "with each pool's id and creation time"
t_expect_exit 0 "pool list --no-headers" "$C" pool list --no-headers
[ "$(wc -l <"$T_WORK/out")" -eq 2 ] && ! grep -q "^NAME" "$T_WORK/out" &&
	t_pass "--no-headers prints the rows only" || t_fail "--no-headers" "$(cat "$T_WORK/out")"
t_expect_exit 2 "an unknown -o is refused" "$C" pool list -o xml
t_expect_out "table, wide, json, yaml or name" "naming the choices"

# --- completion -----------------------------------------------------------------------
t_expect_exit 0 "completion bash" "$C" completion bash
t_expect_exit 2 "completion for an unknown shell" "$C" completion fish
# complete WORDS...: what bash offers after the words typed (the last one
# being completed), with the script sourced as a user would.
complete_words() {
	PATH="$B:$PATH" bash --norc --noprofile -c '
		source <(novactl completion bash) || exit 9
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_novactl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
got=$(complete_words novactl dep | sort | tr '\n' ' ')
[ "$got" = "deploy deployment " ] && t_pass "bash completes 'novactl dep' to deploy, deployment" ||
	t_fail "command completion" "$got"
got=$(complete_words novactl pool cr | tr '\n' ' ')
[ "$got" = "create " ] && t_pass "bash completes a group's verb" || t_fail "verb completion" "$got"
got=$(complete_words novactl pool create gpu-c --max | sort | tr '\n' ' ')
[ "$got" = "--max-accelerators --max-nodes " ] && t_pass "bash completes a verb's flags" ||
	t_fail "flag completion" "$got"
got=$(complete_words novactl -o y | tr '\n' ' ')
[ "$got" = "yaml " ] && t_pass "bash completes -o's values" || t_fail "-o completion" "$got"
got=$(complete_words novactl config use | tr '\n' ' ')
[ "$got" = "use-context " ] && t_pass "bash completes config's verbs" || t_fail "config completion" "$got"
if command -v zsh >/dev/null 2>&1; then
	"$C" completion zsh >"$T_WORK/_novactl"
	zsh -n "$T_WORK/_novactl" && t_pass "the zsh script parses" || t_fail "zsh script" "zsh -n failed"
else
	"$C" completion zsh | grep -q '^#compdef novactl' && t_pass "completion zsh prints a compdef script" ||
		t_fail "completion zsh" "no #compdef line"
fi
