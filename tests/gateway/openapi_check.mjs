// For tests/gateway/test_openapi.sh: /openapi.json as real clients read it.
// 1. @apidevtools/swagger-parser validates the document (OpenAPI 3.0).
// 2. Every operation has a unique operationId.
// 3. Real answers of every route (GET routes with the objects the test made;
//    the calls listed in CALLS, in order) are validated with Ajv against the
//    schema the document gives for their status (or "default").
// Env: NOVA_URL, NOVA_TOKEN, PARAMS (JSON: path parameter -> value), CALLS
// (a JSON file: [{method, path, body}]). Prints "PASS: ..."/"FAIL: ..." lines.
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";

const base = process.env.NOVA_URL, token = process.env.NOVA_TOKEN;
const params = JSON.parse(process.env.PARAMS || "{}");
const calls = process.env.CALLS ? JSON.parse(readFileSync(process.env.CALLS, "utf8")) : [];
let failed = 0;
const pass = m => console.log("PASS: " + m);
const fail = (m, why) => { failed++; console.log("FAIL: " + m + ": " + why); };

const doc = await (await fetch(base + "/openapi.json")).json();
try {
  await SwaggerParser.validate(structuredClone(doc));
  pass("swagger-parser validates /openapi.json as OpenAPI " + doc.openapi);
} catch (e) {
  fail("swagger-parser validates /openapi.json", e.message);
}

const ids = new Map();
let missing = 0;
for (const [path, item] of Object.entries(doc.paths))
  for (const [m, op] of Object.entries(item)) {
    if (!op.operationId) { missing++; continue; }
    if (ids.has(op.operationId)) fail("operationIds are unique", op.operationId + " twice");
    ids.set(op.operationId, m + " " + path);
  }
missing ? fail("every operation has an operationId", missing + " without") :
  pass("every operation has an operationId (" + ids.size + ", unique)");

// Ajv over the document's schemas: nullable is OpenAPI's, understood by Ajv;
// example, x-* and the like are annotations.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "nova", components: doc.components });

function schemaFor(op, status, ctype) {
  const r = op.responses[String(status)] || op.responses.default;
  if (!r) return [null, "no response " + status + " in the document"];
  if (!r.content) return [undefined, null];
  const media = r.content[ctype] || r.content[Object.keys(r.content)[0]];
  return [media.schema, null];
}

function rewrite(schema) {
  // "#/components/..." -> "nova#/components/..." for the registered document.
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"nova#/components/'));
}

const seen = new Set();
async function check(method, path, body) {
  const op = (doc.paths[path.template] || {})[method.toLowerCase()];
  const label = method + " " + path.url;
  if (!op) return fail(label, "not in the document");
  const res = await fetch(base + path.url, {
    method, headers: { Authorization: "Bearer " + token, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const ctype = (res.headers.get("content-type") || "").split(";")[0];
  const text = await res.text();
  const [schema, why] = schemaFor(op, res.status, ctype);
  if (why) return fail(label + " -> " + res.status, why);
  seen.add(method + " " + path.template);
  if (schema === undefined) return pass(label + " -> " + res.status + " (no body in the document)");
  if (ctype !== "application/json") return pass(label + " -> " + res.status + " " + ctype);
  let value;
  try { value = JSON.parse(text); } catch (e) { return fail(label, "not JSON: " + text.slice(0, 200)); }
  const validate = ajv.compile(rewrite(schema));
  if (validate(value)) pass(label + " -> " + res.status + " matches its schema");
  else fail(label + " -> " + res.status + " matches its schema",
    ajv.errorsText(validate.errors).slice(0, 600) + " in " + text.slice(0, 300));
}

function fill(template) {
  let ok = true;
  const url = template.replace(/\{(\w+)\}/g, (_, k) => {
    if (!(k in params)) ok = false;
    return encodeURIComponent(params[k] || "");
  });
  return ok ? { template, url } : null;
}

// Every GET the document lists (streams and pages aside), then the calls.
for (const [template, item] of Object.entries(doc.paths)) {
  if (!item.get) continue;
  const ctype = Object.keys((item.get.responses["200"] || {}).content || {})[0];
  if (template.endsWith("/watch") || template === "/metrics" || template.startsWith("/docs") ||
      template.startsWith("/ui")) continue;
  const p = fill(template);
  if (!p) { fail("GET " + template, "the test has no value for its parameters"); continue; }
  await check("GET", p, null);
  void ctype;
}
for (const c of calls) {
  const template = c.template || c.path;
  await check(c.method, { template, url: c.path }, c.body);
}
// An error answer of each kind the document promises, against Error.
await check("GET", { template: "/v1/pools/{pool}", url: "/v1/pools/no-such-pool" }, null);
await check("POST", { template: "/v1/pools", url: "/v1/pools" }, { name: "Bad Name", provider: "fake" });

const untested = [];
for (const [path, item] of Object.entries(doc.paths))
  for (const m of Object.keys(item))
    if (!seen.has(m.toUpperCase() + " " + path) && !path.endsWith("/watch") && path !== "/metrics" &&
        !path.startsWith("/docs") && !path.startsWith("/ui") && !path.endsWith("/heartbeat"))
      untested.push(m.toUpperCase() + " " + path);
untested.length ? fail("every route's answer was validated", "not called: " + untested.join(", ")) :
  pass("every route's answer was validated against the document");
process.exit(failed ? 1 : 0);
