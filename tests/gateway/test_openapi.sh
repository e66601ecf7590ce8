#!/bin/sh
# /openapi.json as real clients read it, and /docs: swagger-parser (npm)
# validates the document; every operation has a unique operationId; the
# answers of every route, made on a small fleet (a fake pool, a model, a
# deployment, a key, a node), validate with Ajv against the schemas the
# document gives for their status; /docs and its script are served with no
# external asset, under a content security policy.
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
export NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")

# The npm packages, once per build directory.
npmdir="$B/npm-openapi"
if [ ! -d "$npmdir/node_modules/@apidevtools/swagger-parser" ] || [ ! -d "$npmdir/node_modules/ajv-formats" ]; then
	mkdir -p "$npmdir"
	if ! npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error \
		@apidevtools/swagger-parser@10 ajv@8 ajv-formats@3 >"$T_WORK/npm.log" 2>&1; then
		t_fail "npm installs swagger-parser and ajv" "$(tail -5 "$T_WORK/npm.log")"; exit 0
	fi
fi
cp tests/gateway/openapi_check.mjs "$npmdir/"

# The fleet the GETs read: a model, a fake pool, a deployment placed.
t_fake_deploy || { t_fail "a replica placed" "no"; exit 0; }
key_id=$("$B/novactl" apikey create reader --scope read -o json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
model_id=$(t_sql "SELECT id FROM models WHERE name = 'mistral-7b-lora'")
cat >"$T_WORK/calls.json" <<JSON
[
 {"method": "POST", "path": "/v1/models", "body": {"name": "tiny", "version": "1", "kind": "single",
  "engine": {"image": "x", "command": ["serve", "--port", "{port}"]},
  "stages": [{"name": "main", "accelerators": 1}]}},
 {"method": "POST", "path": "/v1/pools", "body": {"name": "q", "provider": "fake", "config": {"nodes": 1}}},
 {"method": "PATCH", "template": "/v1/pools/{pool}", "path": "/v1/pools/q", "body": {"quotas": {"max_nodes": 4}}},
 {"method": "POST", "path": "/v1/deployments", "body": {"model": "tiny", "pool": "q", "name": "d2", "replicas": 1}},
 {"method": "PATCH", "template": "/v1/deployments/{deployment}", "path": "/v1/deployments/d2", "body": {"replicas": 2}},
 {"method": "POST", "template": "/v1/deployments/{deployment}/stop", "path": "/v1/deployments/d2/stop"},
 {"method": "POST", "template": "/v1/deployments/{deployment}/start", "path": "/v1/deployments/d2/start"},
 {"method": "POST", "path": "/v1/models", "body": {"name": "tiny", "version": "2", "kind": "single",
  "engine": {"image": "x:2"}, "stages": [{"name": "main", "accelerators": 1}]}},
 {"method": "PATCH", "template": "/v1/deployments/{deployment}", "path": "/v1/deployments/d2", "body": {"model": "tiny:2", "rollout": {"canary_percent": 50, "max_ttft_ratio": 3}}},
 {"method": "POST", "template": "/v1/deployments/{deployment}/promote", "path": "/v1/deployments/d2/promote"},
 {"method": "POST", "template": "/v1/deployments/{deployment}/rollback", "path": "/v1/deployments/d2/rollback"},
 {"method": "POST", "template": "/v1/nodes/{node}/cordon", "path": "/v1/nodes/$T_NODE/cordon"},
 {"method": "POST", "template": "/v1/nodes/{node}/uncordon", "path": "/v1/nodes/$T_NODE/uncordon"},
 {"method": "POST", "template": "/v1/nodes/{node}/drain", "path": "/v1/nodes/$T_NODE/drain"},
 {"method": "POST", "path": "/v1/router/demand", "body": {"router": "openapi:1:1", "models": {"mistral-7b-lora": {"waiting": 1, "in_flight": 0}}}},
 {"method": "POST", "path": "/v1/apikeys", "body": {"name": "ci", "scopes": ["read", "write"]}},
 {"method": "DELETE", "template": "/v1/apikeys/{id}", "path": "/v1/apikeys/$key_id"},
 {"method": "DELETE", "template": "/v1/deployments/{deployment}", "path": "/v1/deployments/d2"},
 {"method": "DELETE", "template": "/v1/models/{model}", "path": "/v1/models/tiny"},
 {"method": "DELETE", "template": "/v1/pools/{pool}", "path": "/v1/pools/q?force=true"}
]
JSON
NOVA_URL="$NOVA_URL" PARAMS="{\"pool\":\"p\",\"node\":\"$T_NODE\",\"model\":\"$model_id\",\"deployment\":\"web\",\"id\":\"$key_id\",\"replica\":\"0\"}" \
	CALLS="$T_WORK/calls.json" node "$npmdir/openapi_check.mjs" >"$T_WORK/check.out" 2>&1
rc=$?
grep -E '^(PASS|FAIL): ' "$T_WORK/check.out"
# The script ends with its own verdict; anything else (an exception) fails.
grep -q '^PASS: every route.s answer was validated\|^FAIL: every route.s answer was validated' "$T_WORK/check.out" ||
	t_fail "the OpenAPI checks ran to the end (exit $rc)" "$(grep -v '^PASS' "$T_WORK/check.out" | tail -8)"

# /docs: a page and its script, nothing from elsewhere.
curl -s -D "$T_WORK/docs.head" -o "$T_WORK/docs.html" "$NOVA_URL/docs"
grep -q '<script src="/docs.js"></script>' "$T_WORK/docs.html" &&
	grep -qi '^Content-Security-Policy: default-src .none.; script-src .self.' "$T_WORK/docs.head" &&
	grep -qi '^Content-Type: text/html' "$T_WORK/docs.head" &&
	t_pass "/docs is an HTML page with its own script under a content security policy" ||
	t_fail "/docs is served" "$(cat "$T_WORK/docs.head")"
if grep -Eq '(src|href)="(https?:)?//' "$T_WORK/docs.html"; then
	t_fail "/docs loads nothing from elsewhere" "$(grep -Eo '(src|href)="[^"]*"' "$T_WORK/docs.html")"
else
	t_pass "/docs loads nothing from elsewhere"
fi
code=$(curl -s -o "$T_WORK/docs.js" -w '%{http_code} %{content_type}' "$NOVA_URL/docs.js")
case "$code" in "200 text/javascript"*) grep -q 'fetch("/openapi.json")' "$T_WORK/docs.js" &&
	t_pass "/docs.js is served and reads /openapi.json" || t_fail "/docs.js reads /openapi.json" "no fetch" ;;
*) t_fail "/docs.js is served" "$code" ;; esac
node --check "$T_WORK/docs.js" 2>"$T_WORK/err" && t_pass "/docs.js parses" || t_fail "/docs.js parses" "$(cat "$T_WORK/err")"
exit 0
