#!/usr/bin/env python3
"""A stand-in for novad's routes nova-router uses, for tests and the
router benchmark that need the table under their control:

  GET /v1/routes/watch   SSE: what the STATE file's "watch" list says, one
                         event per entry, each {"id", "event", "data"} (a
                         string data is sent as it is, for malformed
                         events); with a Last-Event-ID, "watch_resume"'s
                         list instead when there is one. The stream then
                         stays open with keep-alives until STATE says
                         "end_watch". The Last-Event-ID of each connection
                         ("-" for none) is appended to STATE's
                         directory/lastids.
  GET /v1/routes         STATE's "routes" (the table a poll sees)
  GET /v1/router/keys    STATE's "keys"
  POST /v1/router/demand 204; the body appended to STATE's directory/demand

STATE is a JSON file read again on every request, so a test changes what
the fake says by rewriting it. Any bearer token is taken. It prints its
port on stdout.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = sys.argv[1]


def state():
    with open(STATE) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        s = state()
        if self.path == "/v1/router/keys":
            if isinstance(s.get("keys"), str):  # a malformed answer
                body = s["keys"].encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_json(s.get("keys", {"keys": []}))
        elif self.path == "/v1/routes":
            self.send_json(s.get("routes", {"version": 0, "routes": []}))
        elif self.path == "/v1/routes/watch":
            last = self.headers.get("Last-Event-ID")
            with open(os.path.join(os.path.dirname(STATE), "lastids"), "a") as f:
                f.write((last or "-") + "\n")
            events = s.get("watch_resume") if last and "watch_resume" in s else s.get("watch", [])
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(text):
                data = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            try:
                for ev in events:
                    data = ev["data"] if isinstance(ev["data"], str) else json.dumps(ev["data"])
                    chunk("id: %d\nevent: %s\ndata: %s\n\n" % (ev["id"], ev["event"], data))
                while True:
                    time.sleep(0.2)
                    chunk(": keep-alive\n\n")
                    if state().get("end_watch"):
                        self.wfile.write(b"0\r\n\r\n")
                        return
            except (BrokenPipeError, ConnectionResetError):
                return
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        # The routers' demand reports: taken (204), each body appended as a
        # line to STATE's directory/demand.
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/v1/router/demand":
            with open(os.path.join(os.path.dirname(STATE), "demand"), "ab") as f:
                f.write(body + b"\n")
            self.send_response(204)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
