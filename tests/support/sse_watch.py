#!/usr/bin/env python3
"""Record a Server-Sent Events stream: one JSON line per event, with the
time it arrived.

    sse_watch.py URL OUT [LAST_EVENT_ID]

The bearer token comes from the environment (NOVA_TOKEN), never the command
line. Each line of OUT: {"t": unix seconds, "id": "..." or null,
"event": "...", "data": parsed JSON (or the text when it is not JSON)}.
A first line {"t", "event": "open"} says the stream was answered 200.
Comments (keep-alives) are not recorded. Runs until the stream ends or the
process is killed; OUT is flushed after every event."""
import http.client
import json
import os
import sys
import time
import urllib.parse


def main():
    url, out = sys.argv[1], sys.argv[2]
    last = sys.argv[3] if len(sys.argv) > 3 else None
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    headers = {"Authorization": "Bearer " + os.environ["NOVA_TOKEN"],
               "Accept": "text/event-stream"}
    if last:
        headers["Last-Event-ID"] = last
    path = u.path + ("?" + u.query if u.query else "")
    conn.request("GET", path, headers=headers)
    res = conn.getresponse()
    with open(out, "a") as f:
        if res.status != 200:
            f.write(json.dumps({"t": time.time(), "status": res.status,
                                "body": res.read().decode(errors="replace")}) + "\n")
            return 1
        # The stream is open: a caller can wait for this line before it
        # makes the change it measures (starting Python takes a second on a
        # loaded machine).
        f.write(json.dumps({"t": time.time(), "event": "open"}) + "\n")
        f.flush()
        ev = {"id": None, "event": "message", "data": []}
        while True:
            line = res.fp.readline()
            if not line:
                return 0
            line = line.decode().rstrip("\r\n")
            if line == "":
                if ev["data"] or ev["event"] != "message":
                    text = "\n".join(ev["data"])
                    try:
                        data = json.loads(text)
                    except ValueError:
                        data = text
                    f.write(json.dumps({"t": time.time(), "id": ev["id"],
                                        "event": ev["event"], "data": data}) + "\n")
                    f.flush()
                ev = {"id": None, "event": "message", "data": []}
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "data":
                ev["data"].append(v)
            elif k in ("id", "event"):
                ev[k] = v


if __name__ == "__main__":
    sys.exit(main())
