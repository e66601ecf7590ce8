#!/usr/bin/env python3
"""Check a route watch recorded in two pieces (tests/support/sse_watch.py):
the first from a snapshot on one novad, the second resumed with the first's
last id on another novad. Event by event: ids strictly rise in each piece,
the second goes on after the first's last id without a snapshot, and the
table the two build (snapshot, then each update's changes laid over it)
is the one a novad serves at the end (GET /v1/routes, read from FILE).

    watch_check.py FIRST SECOND ROUTES_JSON

Prints one line per finding; "ok" last when everything holds, exit 1
otherwise."""
import json
import sys


def load(path):
    with open(path) as f:
        return [e for e in (json.loads(line) for line in f if line.strip())
                if e.get("event") != "open"]


def key(route):
    return route["model"] + ("/" + route["adapter"] if route.get("adapter") else "")


def replicas(route):
    return sorted(e["replica"] for e in route.get("endpoints", []))


def main():
    first, second = load(sys.argv[1]), load(sys.argv[2])
    with open(sys.argv[3]) as f:
        final = {key(r): replicas(r) for r in json.load(f)["routes"]}
    bad = []
    if not first or first[0]["event"] != "snapshot":
        bad.append("the first piece does not open with a snapshot")
    table = {}
    last = None
    for piece, events in (("first", first), ("second", second)):
        for i, ev in enumerate(events):
            if ev.get("status"):
                bad.append("%s piece answered %s: %s" % (piece, ev["status"], ev.get("body")))
                continue
            if ev["event"] not in ("snapshot", "update"):
                continue
            n = int(ev["id"])
            if last is not None and n <= last:
                bad.append("%s piece, event %d: id %d after %d" % (piece, i, n, last))
            if ev["data"].get("version") != n:
                bad.append("%s piece, event %d: version %s under id %d" % (piece, i, ev["data"].get("version"), n))
            last = n
            if ev["event"] == "snapshot":
                if piece == "second":
                    bad.append("the resumed piece got a snapshot (event %d)" % i)
                table = {key(r): replicas(r) for r in ev["data"]["routes"]}
            else:
                for k, r in ev["data"]["changes"].items():
                    if r is None:
                        table.pop(k, None)
                    else:
                        table[k] = replicas(r)
        if piece == "first":
            print("first piece: %d events, last id %s" % (len(first), last))
    print("second piece: %d events, last id %s" % (len(second), last))
    if table != final:
        bad.append("the watcher's table %s is not the novad's %s" % (table, final))
    for b in bad:
        print("bad: " + b)
    print("ok" if not bad else "not ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
