#!/usr/bin/env python3
"""A kubelet stand-in for the tests: runs the main container of each Running
pod Nova created, as a local process.

It does what a kubelet does with the pod spec, and no more: the container's
command and args, its env with valueFrom (secretKeyRef read from the API
server, fieldRef status.podIP), $(VAR) references in args expanded from that
env. The one change is the sidecar binary: /nova/bin/nova-sidecar (copied in
by the init container in a real cluster) is the build's nova-sidecar, run
with --mock-engine so the model server is nova-mock-engine. A pod that is
deleted, or goes Failed, has its process stopped; a process that exits on
its own marks its pod Failed through the fake API server's test switch, as
a kubelet would report it.
"""
import argparse
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--cacert", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--sidecar", required=True)
    ap.add_argument("--mock-engine", required=True)
    ap.add_argument("--log-dir", required=True)
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.cacert)

    def api(method, path, body=None):
        req = urllib.request.Request(a.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", "Bearer " + a.token)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None

    procs = {}  # pod name -> Popen

    def stop(name):
        p = procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def env_of(pod, container):
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            vf = e.get("valueFrom", {})
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                st, sec = api("GET", "/api/v1/namespaces/%s/secrets/%s" % (a.namespace, ref["name"]))
                if st != 200:
                    return None
                env[e["name"]] = base64.b64decode(sec["data"][ref["key"]]).decode()
            elif vf.get("fieldRef", {}).get("fieldPath") == "status.podIP":
                env[e["name"]] = pod["status"].get("podIP", "127.0.0.1")
        return env

    def expand(s, env):
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), s)

    def start(pod):
        name = pod["metadata"]["name"]
        c = pod["spec"]["containers"][0]
        env = env_of(pod, c)
        if env is None:
            return
        cmd = [expand(x, env) for x in c.get("command", []) + c.get("args", [])]
        if not cmd or cmd[0] != "/nova/bin/nova-sidecar":
            return
        cmd = [a.sidecar] + cmd[1:] + ["--mock-engine", a.mock_engine]
        full_env = dict(os.environ)
        full_env.update(env)
        log = open(os.path.join(a.log_dir, name + ".log"), "ab")
        procs[name] = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL)
        log.close()

    running = True

    def on_term(signum, frame):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    while running:
        st, lst = api("GET", "/api/v1/namespaces/%s/pods?labelSelector=app.kubernetes.io/managed-by%%3Dnova"
                      % a.namespace)
        if st == 200:
            seen = set()
            for pod in lst.get("items", []):
                name = pod["metadata"]["name"]
                phase = pod.get("status", {}).get("phase")
                seen.add(name)
                if phase == "Running" and name not in procs and "deletionTimestamp" not in pod["metadata"]:
                    start(pod)
                elif phase in ("Failed", "Succeeded") and name in procs:
                    stop(name)
                p = procs.get(name)
                if p is not None and p.poll() is not None:
                    procs.pop(name)
                    api("POST", "/_fake/pods/%s/%s/status" % (a.namespace, name),
                        {"phase": "Failed", "reason": "Error",
                         "message": "container model exited with code %d" % p.returncode})
            for name in list(procs):
                if name not in seen:
                    stop(name)
        time.sleep(0.2)
    for name in list(procs):
        stop(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
