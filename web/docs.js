"use strict";
// The page renders /openapi.json as it is served: no external assets, no
// build step. Text from the document goes into the page as text only.
let doc = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

function resolve(schema) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/components/schemas/"))
    return [schema.$ref.slice(21), doc.components.schemas[schema.$ref.slice(21)] || {}];
  return [null, schema || {}];
}

// A schema as indented pseudo-JSON: each property with its type; $refs
// followed to a depth of 4 (and never into one already open on the path).
function describe(schema, depth, seen) {
  const [name, s] = resolve(schema);
  const pad = "  ".repeat(depth);
  if (name && (seen.has(name) || depth > 4)) return name;
  const next = new Set(seen); if (name) next.add(name);
  if (s.allOf) return s.allOf.map(x => describe(x, depth, next)).join(" & ");
  let type = s.type || (s.properties ? "object" : "any");
  if (s.enum) type = s.enum.map(v => JSON.stringify(v)).join(" | ");
  if (s.nullable) type += " | null";
  if (s.format) type += " (" + s.format + ")";
  if (s.type === "array") return "[" + describe(s.items || {}, depth, next) + "]" + (s.nullable ? " | null" : "");
  if (s.properties) {
    const req = new Set(s.required || []);
    const lines = Object.entries(s.properties).map(([k, v]) => {
      const [, vs] = resolve(v);
      const note = vs.description ? "  // " + vs.description : "";
      return pad + "  " + k + (req.has(k) ? "" : "?") + ": " + describe(v, depth + 1, next) + note;
    });
    return (name ? name + " " : "") + "{\n" + lines.join("\n") + "\n" + pad + "}";
  }
  return (name ? name + ": " : "") + type;
}

function schemaBlock(content) {
  if (!content) return null;
  const [ctype, media] = Object.entries(content)[0];
  const parts = [el("div", {}, el("code", {}, ctype))];
  if (media.schema) parts.push(el("pre", {}, describe(media.schema, 0, new Set())));
  if (media.schema && media.schema.example) parts.push(el("pre", {}, media.schema.example));
  return el("div", {}, ...parts);
}

function operation(method, path, op) {
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  const meta = el("p", {}, el("span", { class: "scope" }, op["x-nova-scope"] ? "scope: " + op["x-nova-scope"]
    : (op.security && op.security.length === 0 ? "no credential" : "a node token")),
    "  operationId ", el("code", {}, op.operationId || ""));
  body.append(meta);
  if (op.parameters && op.parameters.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "")));
    for (const p of op.parameters)
      t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, (p.schema && p.schema.type) || ""), el("td", {}, p.description || (p.required ? "required" : ""))));
    body.append(el("h4", {}, "Parameters"), t);
  }
  if (op.requestBody) body.append(el("h4", {}, "Body"), schemaBlock(op.requestBody.content));
  body.append(el("h4", {}, "Responses"));
  for (const [status, r] of Object.entries(op.responses || {})) {
    body.append(el("div", {}, el("span", { class: "status" }, status), " ", r.description || ""));
    if (r.content && !status.startsWith("4") && status !== "default") body.append(schemaBlock(r.content));
  }
  const d = el("details", { class: "op" },
    el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path),
      el("span", { class: "summary" }, op.summary || "")), body);
  d.dataset.search = (method + " " + path + " " + (op.summary || "") + " " + (op.tags || []).join(" ")).toLowerCase();
  return d;
}

function render() {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.title = doc.info.title;
  const intro = document.getElementById("intro");
  intro.textContent = doc.info.description + " ";
  intro.append(el("a", { href: "/openapi.json" }, "openapi.json"));
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths))
    for (const [m, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(m.toUpperCase(), path, op));
    }
  const ops = document.getElementById("ops");
  ops.replaceChildren();
  for (const [tag, list] of byTag) {
    const sec = el("section", {}, el("h2", {}, tag), ...list);
    ops.append(sec);
  }
  // The error shape every route shares.
  const e = doc.components.schemas.Error;
  if (e) ops.append(el("section", {}, el("h2", {}, "errors"), el("pre", {}, describe({ $ref: "#/components/schemas/Error" }, 0, new Set()))));
}

document.getElementById("filter").addEventListener("input", ev => {
  const q = ev.target.value.trim().toLowerCase();
  for (const d of document.querySelectorAll("details.op"))
    d.style.display = !q || d.dataset.search.includes(q) ? "" : "none";
  for (const s of document.querySelectorAll("section"))
    s.style.display = [...s.querySelectorAll("details.op")].some(d => d.style.display !== "none") || !s.querySelector("details.op") ? "" : "none";
});

fetch("/openapi.json").then(r => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
  .then(d => { doc = d; render(); })
  .catch(err => { const p = document.getElementById("intro"); p.textContent = "Cannot read /openapi.json: " + err.message; p.className = "err"; });
