"use strict";
// Nova's dashboard: novad's own API, read and driven from the browser. No
// framework, no build step, nothing loaded from elsewhere. The credential
// lives in this tab's session storage and goes out as a bearer header
// only (never in a URL). Text from the API reaches the page as text nodes,
// never as markup.

const KEY = "nova.token";
const state = { view: null, timer: null, watch: null, openDeployments: new Set() };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message + (data.error.hint ? " (" + data.error.hint + ")" : "")
      : "HTTP " + res.status;
    if (res.status === 401) signOut("Signed out: " + msg);
    throw new ApiError(res.status, msg);
  }
  return data;
}

// An action an operator takes: confirmed first, its refusal shown as the
// API said it.
async function act(question, method, path, body) {
  if (!window.confirm(question)) return false;
  try {
    await api(method, path, body);
    showError("");
    refresh();
    return true;
  } catch (e) {
    showError("Refused: " + e.message);
    return false;
  }
}

function stateCell(s, reason) {
  return el("td", {}, el("span", { class: "state " + s }, s), reason ? el("div", { class: "muted" }, reason) : null);
}

function ago(ts) {
  if (!ts) return "never";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  return s < 90 ? s + " s ago" : Math.round(s / 60) + " min ago";
}

// --- views -------------------------------------------------------------------------

async function viewDeployments(root) {
  const list = await api("GET", "/v1/deployments");
  const t = el("table", { id: "deployments" }, el("tr", {}, ["Name", "Model", "Pool", "State", "Replicas", ""].map(h => el("th", {}, h))));
  for (const d of list) {
    const row = el("tr", { "data-deployment": d.name },
      el("td", {}, el("a", { href: "#/deployments", onclick: ev => { ev.preventDefault(); toggle(d.name); } }, d.name)),
      el("td", {}, d.model.name + ":" + d.model.version),
      el("td", {}, d.pool.name),
      stateCell(d.state, d.state_reason),
      el("td", { class: "replicas" }, d.ready_replicas + " / " + d.replicas),
      el("td", { class: "actions" },
        el("button", { class: "scale", onclick: () => scale(d) }, "Scale"),
        d.state === "stopped"
          ? el("button", { class: "start", onclick: () => act("Start " + d.name + "?", "POST", "/v1/deployments/" + encodeURIComponent(d.name) + "/start") }, "Start")
          : el("button", { class: "stop", onclick: () => act("Stop " + d.name + "? Its replicas stop serving.", "POST", "/v1/deployments/" + encodeURIComponent(d.name) + "/stop") }, "Stop")));
    t.append(row);
    if (state.openDeployments.has(d.name)) t.append(el("tr", {}, el("td", { colspan: "6" }, await deploymentDetail(d.name))));
  }
  root.replaceChildren(el("h2", {}, "Deployments"), list.length ? t : el("p", { class: "muted" }, "No deployment yet."));
}

function toggle(name) {
  if (state.openDeployments.has(name)) state.openDeployments.delete(name); else state.openDeployments.add(name);
  refresh();
}

async function deploymentDetail(name) {
  const d = await api("GET", "/v1/deployments/" + encodeURIComponent(name));
  const reps = el("table", {}, el("tr", {}, ["#", "State", "Endpoint", "Nodes"].map(h => el("th", {}, h))));
  for (const r of d.replica_list || [])
    reps.append(el("tr", {}, el("td", {}, r.ordinal), stateCell(r.state, r.reason), el("td", {}, r.endpoint ? el("code", {}, r.endpoint) : "—"),
      el("td", {}, (r.placements || []).map(p => p.node + " (" + p.accelerators + ")").join(", "))));
  const evs = el("table", {}, el("tr", {}, ["When", "From", "To", "Reason"].map(h => el("th", {}, h))));
  for (const e of (d.events || []).slice(-10).reverse())
    evs.append(el("tr", {}, el("td", {}, ago(e.at)), el("td", {}, e.from || "—"), el("td", {}, e.to), el("td", {}, e.reason)));
  return el("div", {}, reps, el("div", { class: "muted" }, "Recent events"), evs);
}

async function scale(d) {
  const answer = window.prompt("Replicas for " + d.name + " (now " + d.replicas + "):", String(d.replicas));
  if (answer === null) return;
  const n = Number(answer);
  if (!Number.isInteger(n) || n < 0) { showError("Replicas must be a whole number, 0 or more."); return; }
  await act("Scale " + d.name + " from " + d.replicas + " to " + n + " replicas?", "PATCH",
    "/v1/deployments/" + encodeURIComponent(d.name), { replicas: n });
}

async function viewPools(root) {
  const pools = await api("GET", "/v1/pools");
  const parts = [el("h2", {}, "Pools")];
  if (!pools.length) parts.push(el("p", { class: "muted" }, "No pool yet."));
  for (const p of pools) {
    const nodes = await api("GET", "/v1/nodes?pool=" + encodeURIComponent(p.name));
    const t = el("table", { "data-pool": p.name }, el("tr", {}, ["Node", "State", "Accelerators", "Last heartbeat", "Endpoint", ""].map(h => el("th", {}, h))));
    for (const n of nodes) {
      const acc = n.accelerators || {};
      t.append(el("tr", { "data-node": n.name },
        el("td", {}, n.name, n.cordoned ? el("div", { class: "muted" }, "cordoned") : null),
        stateCell(n.state, n.state_reason),
        el("td", {}, (acc.count || 0) + " × " + (acc.type || "any")),
        el("td", {}, ago(n.last_heartbeat_at)),
        el("td", {}, n.endpoint ? el("code", {}, n.endpoint) : "—"),
        el("td", { class: "actions" },
          n.cordoned
            ? el("button", { onclick: () => act("Uncordon " + n.name + "?", "POST", "/v1/nodes/" + n.id + "/uncordon") }, "Uncordon")
            : el("button", { onclick: () => act("Cordon " + n.name + "? Nothing new is placed on it.", "POST", "/v1/nodes/" + n.id + "/cordon") }, "Cordon"),
          el("button", { onclick: () => act("Drain " + n.name + "? Its replicas move elsewhere.", "POST", "/v1/nodes/" + n.id + "/drain") }, "Drain"))));
    }
    parts.push(el("h2", {}, p.name + " ", el("span", { class: "muted" }, p.provider + ", " + p.state)), nodes.length ? t : el("p", { class: "muted" }, "No node."));
  }
  root.replaceChildren(...parts);
}

async function viewModels(root) {
  const models = await api("GET", "/v1/models");
  const t = el("table", { id: "models" }, el("tr", {}, ["Name", "Version", "Kind", "Stages", "Adapters"].map(h => el("th", {}, h))));
  for (const m of models)
    t.append(el("tr", {}, el("td", {}, m.name), el("td", {}, m.version), el("td", {}, m.kind),
      el("td", {}, (m.stages || []).map(s => s.name + ": " + s.accelerators + " × " + (s.accelerator_type || "any")).join(", ")),
      el("td", {}, (m.adapters || []).join(", "))));
  root.replaceChildren(el("h2", {}, "Models"), models.length ? t : el("p", { class: "muted" }, "No model registered."));
}

// The routing table, live: GET /v1/routes/watch read as a stream (an
// EventSource cannot send the bearer header), the table changed in place
// on every event.
function viewRoutes(root) {
  const status = el("p", { id: "watch-status", class: "muted" }, "connecting…");
  const body = el("tbody", {});
  const t = el("table", { id: "routes" }, el("thead", {}, el("tr", {}, ["Model", "Endpoints", "Load"].map(h => el("th", {}, h)))), body);
  root.replaceChildren(el("h2", {}, "Routes"), status, t);
  const routes = new Map();
  const render = () => {
    body.replaceChildren();
    for (const key of [...routes.keys()].sort()) {
      const r = routes.get(key);
      const eps = r.endpoints || [];
      body.append(el("tr", { "data-route": key },
        el("td", {}, key),
        el("td", { class: "endpoints" }, eps.length ? eps.map(e => el("div", {}, el("code", {}, e.url), " ", el("span", { class: "muted" }, e.node || ""))) : el("span", { class: "muted" }, "none")),
        el("td", {}, eps.map(e => el("div", {}, e.load ? "queue " + (e.load.queue_depth ?? 0) : "—")))));
    }
  };
  // Keys as novad's table has them: "model", or "model/adapter".
  const keyOf = r => r.adapter ? r.model + "/" + r.adapter : r.model;
  const apply = (event, data) => {
    if (event === "snapshot") {
      routes.clear();
      for (const r of data.routes || []) if ((r.endpoints || []).length) routes.set(keyOf(r), r);
    } else if (event === "update") {
      for (const [key, r] of Object.entries(data.changes || {})) {
        if (r && (r.endpoints || []).length) routes.set(key, r); else routes.delete(key);
      }
    } else {
      return;
    }
    status.className = data.stale ? "stale" : "live";
    status.textContent = (data.stale ? "stale, " : "live, ") + "version " + data.version;
    render();
  };
  const ctrl = new AbortController();
  state.watch = ctrl;
  (async () => {
    let backoff = 500;
    while (!ctrl.signal.aborted) {
      try {
        const res = await fetch("/v1/routes/watch", { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) }, signal: ctrl.signal });
        if (!res.ok) {
          const data = await res.json().catch(() => null);
          throw new ApiError(res.status, data && data.error ? data.error.message : "HTTP " + res.status);
        }
        backoff = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trimStart();
            }
            if (data) apply(event, JSON.parse(data));
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
        status.className = "stale";
        status.textContent = "disconnected (" + e.message + "), retrying";
        if (e.status === 401 || e.status === 403) { showError(e.message); return; }
      }
      await new Promise(r => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 8000);
    }
  })();
}

const views = { deployments: viewDeployments, pools: viewPools, models: viewModels, routes: viewRoutes };

async function refresh() {
  const name = state.view;
  if (!name || name === "routes") return;
  try {
    await views[name](document.getElementById("view"));
  } catch (e) {
    if (e instanceof ApiError) showError(e.message); else showError("The page failed: " + e.message);
  }
}

function route() {
  const name = (location.hash.replace(/^#\//, "") || "deployments").split("/")[0];
  state.view = views[name] ? name : "deployments";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === "#/" + state.view);
  if (state.watch) { state.watch.abort(); state.watch = null; }
  clearInterval(state.timer);
  showError("");
  if (state.view === "routes") { viewRoutes(document.getElementById("view")); return; }
  refresh();
  state.timer = setInterval(refresh, 3000);
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  if (state.watch) { state.watch.abort(); state.watch = null; }
  clearInterval(state.timer);
  state.view = null;
  document.getElementById("view").replaceChildren();
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("signin").hidden = false;
  showError(message || "");
}

function signedIn() {
  document.getElementById("signin").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  route();
}

document.getElementById("signin").addEventListener("submit", async ev => {
  ev.preventDefault();
  const token = document.getElementById("token").value.trim();
  sessionStorage.setItem(KEY, token);
  try {
    // A credential that can read deployments can use the dashboard.
    await api("GET", "/v1/deployments");
    document.getElementById("token").value = "";
    showError("");
    signedIn();
  } catch (e) {
    sessionStorage.removeItem(KEY);
    document.getElementById("signin").hidden = false;
    showError("Sign-in refused: " + e.message);
  }
});
document.getElementById("signout").addEventListener("click", () => signOut(""));
window.addEventListener("hashchange", () => { if (sessionStorage.getItem(KEY)) route(); });
if (sessionStorage.getItem(KEY)) signedIn(); else signOut("");
