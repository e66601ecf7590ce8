#!/usr/bin/env python3
"""The fault suite's traffic driver and database observer (tests/faults/).

Subcommands:
  traffic   GET /v1/routes every ~100 ms with the admin token, and chat
            completions round-robin over the endpoints of the latest table
            read; bounded in time and count; writes a JSON summary.
  monitor   samples node states (only while the database is said to be up)
            and the agents' pids, to a JSON-lines file.
  snapshot  nodes, node events, replicas and placements, deployments, agents
            (pidfiles and live processes) as one JSON document.
  consistent  polls until the system is consistent (deployments as desired,
            replicas ready and routed, live nodes ready, one agent per live
            node) or a deadline passes; prints the seconds it took.
  check     compares before/after snapshots, the monitor log and the traffic
            summary; prints one "PASS<TAB>name" or "FAIL<TAB>name<TAB>why"
            line per assertion (tests/faults/lib.sh turns them into
            t_pass/t_fail lines).

Everything talks to 127.0.0.1 (novad, the mock engines) or to the case's
own PostgreSQL over its unix socket with psql.
"""
import argparse
import glob
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse


# --- the database and the agents ---------------------------------------------

def psql(a, query, timeout=5):
    """One value from the case's database, or None when it does not answer."""
    try:
        out = subprocess.run(
            ["psql", "-h", a.pghost, "-U", "nova", "-d", a.db, "-X", "-tAc", query],
            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()


SNAPSHOT_SQL = """
SELECT json_build_object(
 'now', extract(epoch from clock_timestamp()),
 'nodes', (SELECT coalesce(json_agg(json_build_object('id', id, 'name', name,
     'state', state, 'reason', state_reason, 'handle', handle) ORDER BY name, id), '[]') FROM nodes),
 'events', (SELECT coalesce(json_agg(json_build_object('node', node_id, 'from', from_state,
     'to', to_state, 'reason', reason, 'at', extract(epoch from at)) ORDER BY id), '[]') FROM node_events),
 'deployments', (SELECT coalesce(json_agg(json_build_object('name', d.name, 'model', m.name,
     'state', d.state, 'reason', d.state_reason, 'replicas', d.replicas) ORDER BY d.name), '[]')
     FROM deployments d JOIN models m ON m.id = d.model_id),
 'replicas', (SELECT coalesce(json_agg(json_build_object('id', r.id, 'deployment', d.name,
     'state', r.state, 'endpoint', r.endpoint,
     'nodes', (SELECT coalesce(json_agg(rp.node_id ORDER BY rp.stage, rp.node_id), '[]')
               FROM replica_placements rp WHERE rp.replica_id = r.id)) ORDER BY d.name, r.ordinal), '[]')
     FROM replicas r JOIN deployments d ON d.id = r.deployment_id))
"""

LIVE_NODE_STATES = ("provisioning", "ready", "unhealthy", "draining")


def agent_processes(gateway):
    """Live nova-sidecar processes of this case (their --gateway is the
    case's novad): pid -> node id."""
    found = {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        argv = [x.decode(errors="replace") for x in argv if x]
        if not argv or not argv[0].endswith("nova-sidecar"):
            continue
        if "--gateway" not in argv or "--node-id" not in argv:
            continue
        gw = argv[argv.index("--gateway") + 1] if argv.index("--gateway") + 1 < len(argv) else ""
        if gateway and gw.rstrip("/") != gateway.rstrip("/"):
            continue
        i = argv.index("--node-id")
        if i + 1 < len(argv):
            found[int(os.path.basename(d))] = argv[i + 1]
    # A sidecar starting an engine forks, and until the child execs it
    # wears its parent's command line: not an agent. Only the child of an
    # agent of the same node is left out, so an agent that novad started
    # (its parent novad, or init after the double fork) always counts.
    for pid in list(found):
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if found.get(ppid) == found[pid]:
            del found[pid]
    return found


def pidfile_agents(state_dir):
    """node id -> pid recorded by the lpu adapter (alive or not: alive says)."""
    out = {}
    for p in glob.glob(os.path.join(state_dir, "lpu", "*", "*.pid")):
        node = os.path.basename(p)[:-4]
        try:
            with open(p) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        alive = os.path.exists("/proc/%d" % pid)
        out[node] = {"pid": pid, "alive": alive}
    return out


def take_snapshot(a):
    raw = psql(a, SNAPSHOT_SQL, timeout=10)
    snap = json.loads(raw) if raw else {"error": "database did not answer"}
    snap["taken"] = time.time()
    snap["pidfiles"] = pidfile_agents(a.state_dir)
    procs = agent_processes(a.gateway)
    snap["agents"] = {str(pid): node for pid, node in procs.items()}
    return snap


def cmd_snapshot(a):
    json.dump(take_snapshot(a), sys.stdout, indent=1, sort_keys=True)
    print()


def cmd_monitor(a):
    end = time.time() + a.duration
    n = 0
    with open(a.out, "a") as out:
        while time.time() < end and n < 100000 and not os.path.exists(a.stop_file):
            n += 1
            rec = {"t": time.time(), "agents": {str(p): nd for p, nd in agent_processes(a.gateway).items()}}
            if a.db_down_flag and os.path.exists(a.db_down_flag):
                rec["db"] = "down"
            else:
                raw = psql(a, "SELECT coalesce(json_agg(json_build_object('id', id, 'state', state)), '[]') "
                              "FROM nodes", timeout=3)
                if raw is None:
                    rec["db"] = "no answer"
                else:
                    rec["nodes"] = {x["id"]: x["state"] for x in json.loads(raw)}
            out.write(json.dumps(rec) + "\n")
            out.flush()
            time.sleep(a.period)


# --- novad's routing table ------------------------------------------------------

def http_call(url, method="GET", body=None, headers=None, timeout=3.0):
    """(status, body bytes); raises OSError / http.client errors."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def read_token(state_dir, token_file=""):
    """The routes reader's credential: an API key from token_file when
    given (so a key checked from novad's memory is what is exercised while
    the database is away), else the admin token."""
    with open(token_file or os.path.join(state_dir, "admin_token")) as f:
        return f.read().strip()


def get_routes(a, token=None, timeout=3.0):
    """The table's endpoints of the watched deployments: list of
    (model, url, deployment, node); raises on any failure."""
    token = token or read_token(a.state_dir)
    st, body = http_call(a.url + "/v1/routes", headers={"Authorization": "Bearer " + token},
                         timeout=timeout)
    if st != 200:
        raise RuntimeError("HTTP %d: %s" % (st, body[:200].decode(errors="replace")))
    doc = json.loads(body)
    eps = []
    for r in doc.get("routes", []):
        if r.get("adapter"):
            continue
        for ep in r.get("endpoints", []):
            eps.append((r.get("model"), ep.get("url"), ep.get("deployment"), ep.get("node")))
    return doc, eps


class Traffic:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.table = []          # latest (model, url) of the watched deployments
        self.table_at = 0.0
        self.token = None
        self.models = [m for m in a.models.split(",") if m]
        self.deployments = [d for d in a.deployments.split(",") if d]
        self.s = {
            "routes_reads": 0, "routes_ok": 0, "routes_failed": 0, "routes_timeouts": 0,
            "routes_empty": 0, "routes_missing_model": 0, "routes_short": 0,
            "routes_while_down": 0, "routes_lat_ms": [],
            "routes_errors": [], "routes_bad_tables": [],
            "chat_sent": 0, "chat_ok": 0, "chat_failed": 0, "chat_failed_by_url": {},
            "chat_ok_by_url": {}, "chat_errors": [], "chat_no_table": 0,
            "chat_lat_ms_max": 0.0, "first_endpoints": None, "last_endpoints": None,
        }

    def down(self):
        return bool(self.a.down_flag) and os.path.exists(self.a.down_flag)

    def note(self, key, msg, limit=10):
        lst = self.s[key]
        if len(lst) < limit:
            lst.append(msg)

    def routes_loop(self):
        a = self.a
        while not self.stop.is_set():
            t0 = time.time()
            was_down = self.down()
            try:
                if self.token is None:
                    self.token = read_token(a.state_dir, a.token_file)
                doc, eps = get_routes(a, self.token, timeout=a.routes_timeout)
                err = None
            except Exception as e:  # noqa: BLE001 - every failure counts
                err = e
                if "401" in str(e):
                    self.token = None
            lat = (time.time() - t0) * 1000.0
            now_down = self.down()
            with self.lock:
                s = self.s
                s["routes_reads"] += 1
                if err is not None:
                    if was_down or now_down:
                        s["routes_while_down"] += 1
                    else:
                        s["routes_failed"] += 1
                        if isinstance(err, (TimeoutError,)) or "timed out" in str(err):
                            s["routes_timeouts"] += 1
                        self.note("routes_errors", "%.3f %s: %s (%.0f ms)" % (t0, type(err).__name__, err, lat))
                else:
                    s["routes_ok"] += 1
                    s["routes_lat_ms"].append(round(lat, 2))
                    if a.ready_file and s["routes_ok"] == 1:
                        # The reader's key is known to novad now (checked
                        # against the database once): the fault may start.
                        open(a.ready_file, "w").close()
                    mine = [e for e in eps if not self.deployments or e[2] in self.deployments]
                    models = {e[0] for e in mine}
                    if not doc.get("routes"):
                        s["routes_empty"] += 1
                        self.note("routes_bad_tables", "%.3f empty table" % t0)
                    elif any(m not in models for m in self.models):
                        s["routes_missing_model"] += 1
                        self.note("routes_bad_tables", "%.3f lacks %s: %s" % (
                            t0, [m for m in self.models if m not in models], sorted(models)))
                    if a.expect_endpoints and len(mine) < a.expect_endpoints:
                        s["routes_short"] += 1
                    table = sorted({(e[0], e[1]) for e in mine})
                    if s["first_endpoints"] is None:
                        s["first_endpoints"] = table
                    s["last_endpoints"] = table
                    # The latest table read is what traffic goes to, even
                    # empty; a failed read keeps the one before.
                    self.table = table
                    self.table_at = time.time()
            self.stop.wait(max(0.0, a.routes_period - (time.time() - t0)))

    def chat_loop(self, k):
        a = self.a
        i = k
        period = 1.0 / a.chat_rate
        while not self.stop.is_set():
            t0 = time.time()
            with self.lock:
                table = list(self.table)
            if not table:
                with self.lock:
                    self.s["chat_no_table"] += 1
                self.stop.wait(0.2)
                continue
            model, url = table[i % len(table)]
            i += a.chat_threads
            body = json.dumps({"model": model, "max_tokens": 2,
                               "messages": [{"role": "user", "content": "hello from the fault suite"}]})
            err = None
            try:
                st, out = http_call(url + "/v1/chat/completions", "POST", body,
                                    {"Content-Type": "application/json"}, timeout=a.chat_timeout)
                if st != 200:
                    err = "HTTP %d: %s" % (st, out[:160].decode(errors="replace"))
                else:
                    doc = json.loads(out)
                    if not doc.get("choices"):
                        err = "no choices: %s" % out[:160]
            except Exception as e:  # noqa: BLE001
                err = "%s: %s" % (type(e).__name__, e)
            lat = (time.time() - t0) * 1000.0
            with self.lock:
                s = self.s
                s["chat_sent"] += 1
                if err is None:
                    s["chat_ok"] += 1
                    s["chat_ok_by_url"][url] = s["chat_ok_by_url"].get(url, 0) + 1
                    s["chat_lat_ms_max"] = max(s["chat_lat_ms_max"], round(lat, 2))
                else:
                    s["chat_failed"] += 1
                    s["chat_failed_by_url"][url] = s["chat_failed_by_url"].get(url, 0) + 1
                    self.note("chat_errors", "%.3f %s %s: %s" % (t0, model, url, err), 20)
            self.stop.wait(max(0.0, period - (time.time() - t0)))


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def cmd_traffic(a):
    tr = Traffic(a)
    threads = [threading.Thread(target=tr.routes_loop, daemon=True)]
    threads += [threading.Thread(target=tr.chat_loop, args=(k,), daemon=True) for k in range(a.chat_threads)]
    start = time.time()
    for t in threads:
        t.start()
    while time.time() - start < a.duration and not os.path.exists(a.stop_file):
        with tr.lock:
            if tr.s["routes_reads"] >= a.max_reads or tr.s["chat_sent"] >= a.max_chats:
                break
        time.sleep(0.1)
    tr.stop.set()
    for t in threads:
        t.join(timeout=a.chat_timeout + 2)
    s = tr.s
    lat = s.pop("routes_lat_ms")
    s["routes_lat_ms_p50"] = pct(lat, 50)
    s["routes_lat_ms_p99"] = pct(lat, 99)
    s["routes_lat_ms_max"] = max(lat) if lat else None
    s["seconds"] = round(time.time() - start, 2)
    s["started"] = start
    with open(a.out + ".tmp", "w") as f:
        json.dump(s, f, indent=1, sort_keys=True)
    os.rename(a.out + ".tmp", a.out)


# --- consistency -------------------------------------------------------------

def inconsistency(a, want):
    """None when consistent, else why not. want: deployment name ->
    {"state": running|stopped, "replicas": N}."""
    snap = take_snapshot(a)
    if "error" in snap:
        return "database: " + snap["error"]
    deps = {d["name"]: d for d in snap["deployments"]}
    nodes = {n["id"]: n for n in snap["nodes"]}
    for name, w in want.items():
        d = deps.get(name)
        if not d:
            return "deployment %s missing" % name
        if d["state"] != w["state"]:
            return "deployment %s is %s (%s), want %s" % (name, d["state"], d["reason"], w["state"])
        if d["replicas"] != w["replicas"]:
            return "deployment %s has replicas=%d, want %d" % (name, d["replicas"], w["replicas"])
        ready = [r for r in snap["replicas"] if r["deployment"] == name and r["state"] == "ready"
                 and r["nodes"] and all(nodes.get(n, {}).get("state") == "ready" for n in r["nodes"])]
        nwant = w["replicas"] if w["state"] == "running" else 0
        if len(ready) != nwant:
            return "deployment %s has %d ready replicas on ready nodes, want %d" % (name, len(ready), nwant)
    live = [n for n in snap["nodes"] if n["state"] not in ("terminated", "failed")]
    bad = [n for n in live if n["state"] != "ready"]
    if bad:
        return "nodes not ready: " + ", ".join("%s %s (%s)" % (n["name"], n["state"], n["reason"]) for n in bad)
    per_node = {}
    for pid, node in snap["agents"].items():
        per_node.setdefault(node, []).append(pid)
    for n in live:
        if len(per_node.get(n["id"], [])) != 1:
            return "node %s has %d agents" % (n["name"], len(per_node.get(n["id"], [])))
    try:
        _, eps = get_routes(a, timeout=3)
    except Exception as e:  # noqa: BLE001
        return "routes: %s" % e
    for name, w in want.items():
        nwant = w["replicas"] if w["state"] == "running" else 0
        got = len([e for e in eps if e[2] == name])
        if got != nwant:
            return "deployment %s has %d routed endpoints, want %d" % (name, got, nwant)
    return None


def cmd_consistent(a):
    want = json.loads(a.want)
    start = time.time()
    why = "never checked"
    while True:
        why = inconsistency(a, want)
        if why is None:
            print("%.2f" % (time.time() - start))
            return 0
        if time.time() - start > a.deadline:
            print("after %.1f s: %s" % (time.time() - start, why))
            return 1
        time.sleep(0.25)


# --- assertions --------------------------------------------------------------

def cmd_check(a):
    before = json.load(open(a.before))
    after = json.load(open(a.after))
    tr = json.load(open(a.traffic))
    mon = []
    if a.monitor and os.path.exists(a.monitor):
        with open(a.monitor) as f:
            mon = [json.loads(line) for line in f if line.strip()]
    victims = set(v for v in a.victim.split(",") if v)
    base = set(d for d in a.deployments.split(",") if d)
    lines = []

    def res(ok, name, why=""):
        lines.append("PASS\t%s" % name if ok else "FAIL\t%s\t%s" % (name, why))

    names = {n["id"]: n["name"] for n in before.get("nodes", []) + after.get("nodes", [])}
    res("error" not in before and "error" not in after, "snapshots of the database before and after",
        before.get("error", "") + after.get("error", ""))

    # No node taken out of ready after the fault began (the victims aside).
    out = [e for e in after.get("events", []) if e["from"] == "ready" and e["at"] >= a.fault_start
           and e["node"] not in victims]
    res(not out, "no node taken out of ready after the fault began",
        "; ".join("%s ready->%s at +%.1fs (%s)" % (names.get(e["node"], e["node"]), e["to"],
                                                   e["at"] - a.fault_start, e["reason"]) for e in out[:6]))
    seen = []
    for rec in mon:
        if rec["t"] < a.fault_start:
            continue
        for nid, st in rec.get("nodes", {}).items():
            if st != "ready" and nid not in victims and nid in {n["id"] for n in before.get("nodes", [])}:
                seen.append("%s %s at +%.1fs" % (names.get(nid, nid), st, rec["t"] - a.fault_start))
    res(not seen, "the monitor saw every node ready whenever the database answered", "; ".join(seen[:6]))

    # No replica replaced: the same ids on the same nodes.
    def placements(s):
        return {r["id"]: (r["deployment"], tuple(r["nodes"])) for r in s.get("replicas", [])
                if r["deployment"] in base}
    pb, pa = placements(before), placements(after)
    moved_victim = {rid for rid, (_, nds) in pb.items() if set(nds) & victims}
    diff = ["%s %s on %s -> %s" % (pb[r][0], r[:8], [names.get(n, n) for n in pb[r][1]],
                                   [names.get(n, n) for n in pa[r][1]] if r in pa else "gone")
            for r in pb if r not in moved_victim and pa.get(r) != pb[r]]
    diff += ["new replica %s %s" % (pa[r][0], r[:8]) for r in pa if r not in pb]
    res(len(pb) == 4 and not diff, "no replica replaced (same replica ids on the same nodes)",
        "before %d replicas; %s" % (len(pb), "; ".join(diff[:6])))
    if victims:
        still = [r for r in moved_victim if r in pa and set(pa[r][1]) & victims]
        res(moved_victim and not still and all(r in pa for r in moved_victim),
            "the killed node's replica moved to another node (same replica id)",
            "replicas on it: %s, still there: %s" % (len(moved_victim), len(still)))

    # No provider resource created or removed: the same agents.
    ab = {n: v["pid"] for n, v in before.get("pidfiles", {}).items() if v["alive"] and n not in victims}
    aa = {n: v["pid"] for n, v in after.get("pidfiles", {}).items() if v["alive"] and n not in victims}
    if victims:
        # The failed node's host comes back as a new node row with its own
        # agent: that one is expected; every other agent must be the same.
        handles_v = {n["handle"] for n in before.get("nodes", []) if n["id"] in victims}
        fresh = {n["id"] for n in after.get("nodes", []) if n["handle"] in handles_v and n["id"] not in ab}
        aa = {n: p for n, p in aa.items() if n not in fresh}
    res(len(ab) >= 6 - len(victims) and ab == aa, "no provider resource created or removed (same agent pids)",
        "before %s, after %s" % (sorted(ab.values()), sorted(aa.values())))
    procs_b = sorted(int(p) for p, n in before.get("agents", {}).items() if n not in victims)
    mon_pids = set()
    for rec in mon:
        mon_pids |= {int(p) for p, n in rec.get("agents", {}).items() if n not in victims}
    extra = sorted(mon_pids - set(procs_b))
    if victims:
        extra = [p for p in extra if not any(rec.get("agents", {}).get(str(p)) in fresh for rec in mon)]
    res(not extra, "no other agent process appeared at any time during the case", "new pids %s" % extra)

    # One agent per live node, none for anything else.
    live = {n["id"] for n in after.get("nodes", []) if n["state"] in LIVE_NODE_STATES}
    per_node = {}
    for pid, node in after.get("agents", {}).items():
        per_node.setdefault(node, []).append(int(pid))
    twins = {n: p for n, p in per_node.items() if len(p) > 1}
    res(not twins, "0 twin agents (two live agents for one node id)",
        "; ".join("%s: %s" % (names.get(n, n), p) for n, p in twins.items()))
    orphans = [p for n, ps in per_node.items() if n not in live for p in ps]
    orphans += ["pidfile %s" % names.get(n, n) for n, v in after.get("pidfiles", {}).items()
                if v["alive"] and n not in live]
    res(not orphans, "0 orphan agents (an agent with no live node row)", "%s" % orphans[:6])
    bare = [names.get(n, n) for n in live if n not in per_node]
    res(not bare, "0 live nodes with no agent", "%s" % bare[:6])

    # The routing table, as the driver read it.
    res(tr["routes_ok"] > 0, "the driver read the routing table", "0 reads succeeded")
    res(tr["routes_failed"] == 0, "the routing table was always read (no error, no timeout)",
        "%d of %d reads failed (%d timeouts); first: %s" % (tr["routes_failed"], tr["routes_reads"],
                                                            tr["routes_timeouts"], tr["routes_errors"][:3]))
    res(tr["routes_empty"] == 0, "the routing table was never empty",
        "%d empty reads; %s" % (tr["routes_empty"], tr["routes_bad_tables"][:3]))
    res(tr["routes_missing_model"] == 0, "the routing table always listed both models",
        "%d reads lacked a model; %s" % (tr["routes_missing_model"], tr["routes_bad_tables"][:3]))

    # Chat completions through the routed endpoints.
    victim_urls = set(u for u in a.victim_urls.split(",") if u)
    failed_other = sum(n for u, n in tr["chat_failed_by_url"].items() if u not in victim_urls)
    failed_victim = sum(n for u, n in tr["chat_failed_by_url"].items() if u in victim_urls)
    res(tr["chat_ok"] >= a.min_chats, "chat completions flowed (%d ok, at least %d)" % (tr["chat_ok"], a.min_chats),
        "%d ok of %d sent" % (tr["chat_ok"], tr["chat_sent"]))
    res(failed_other == 0, "0 failed chat completions through the routed endpoints" +
        (" (the killed node's aside)" if victim_urls else ""),
        "%d failed of %d sent; by url %s; first: %s" % (failed_other, tr["chat_sent"], tr["chat_failed_by_url"],
                                                       tr["chat_errors"][:4]))
    if victim_urls:
        print("info: %d completions to the killed node's endpoint failed while it was routed" % failed_victim)
    for line in lines:
        print(line)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["traffic", "monitor", "snapshot", "consistent", "check"])
    ap.add_argument("--url", default="")
    ap.add_argument("--gateway", default="", help="the novad url the agents were given")
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--token-file", default="", help="the routes reader's API key (default: the admin token)")
    ap.add_argument("--pghost", default="")
    ap.add_argument("--db", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--stop-file", default="/nonexistent")
    ap.add_argument("--ready-file", default="", help="traffic: touched after the first routes read")
    ap.add_argument("--down-flag", default="", help="while it exists, novad is down on purpose")
    ap.add_argument("--db-down-flag", default="", help="while it exists, the database is down")
    ap.add_argument("--period", type=float, default=0.5)
    ap.add_argument("--models", default="")
    ap.add_argument("--deployments", default="")
    ap.add_argument("--expect-endpoints", type=int, default=0)
    ap.add_argument("--routes-period", type=float, default=0.1)
    ap.add_argument("--routes-timeout", type=float, default=3.0)
    ap.add_argument("--chat-threads", type=int, default=2)
    ap.add_argument("--chat-rate", type=float, default=4.0, help="per thread, per second")
    ap.add_argument("--chat-timeout", type=float, default=5.0)
    ap.add_argument("--max-reads", type=int, default=20000)
    ap.add_argument("--max-chats", type=int, default=20000)
    ap.add_argument("--want", default="{}")
    ap.add_argument("--deadline", type=float, default=5)
    ap.add_argument("--before", default="")
    ap.add_argument("--after", default="")
    ap.add_argument("--traffic", default="")
    ap.add_argument("--monitor", default="")
    ap.add_argument("--fault-start", type=float, default=0)
    ap.add_argument("--victim", default="")
    ap.add_argument("--victim-urls", default="")
    ap.add_argument("--min-chats", type=int, default=20)
    a = ap.parse_args()
    return {"traffic": cmd_traffic, "monitor": cmd_monitor, "snapshot": cmd_snapshot,
            "consistent": cmd_consistent, "check": cmd_check}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
