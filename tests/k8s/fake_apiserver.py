#!/usr/bin/env python3
"""A faithful fake Kubernetes API server for Nova's tests.

No kube-apiserver exists on the test machines, so the kubernetes adapter and
the real kubectl are both pointed at this: one process, Python's standard
library only, TLS on 127.0.0.1 with an ephemeral port (written to
--port-file once listening).

Faithful where a client can tell: discovery documents, Status error objects
(401, 403 Forbidden, 404 NotFound, 409 AlreadyExists and Conflict, 410
Expired inside a watch, 422 Invalid), one global resourceVersion, lists with
metadata.resourceVersion, label and field selectors, watch streams of
newline-delimited events (chunked) resuming from a resourceVersion out of a
bounded event history, merge and strategic merge patches, server-side
printing (meta.k8s.io/v1 Table) when the client asks for it, bearer tokens and
client certificates. Not modelled: graceful deletion (a pod is removed at
once), admission beyond a pod-count quota, consistent pagination (limit and
continue page a list, but later pages show the current state rather than a
snapshot), server-side apply (415), subresources other than status and
pods/log (no exec, attach, port-forward, eviction, binding), API groups other
than the core one (/apis advertises none; /apis/apps/v1 answers an empty list),
the OpenAPI schema (/openapi/v2 is an empty document; /openapi/v3 is 404,
after which kubectl falls back).

Strict where Nova could get it wrong: a pod's labels, nodeSelector and
tolerations are validated as the real server does (a wrong JSON type is a
400 from the decoder; a bad label key or value, an unknown toleration
operator or effect, tolerationSeconds without NoExecute is a 422 Invalid
with one cause per error). core/v1 Events are served (create, list with
field selectors such as involvedObject.name, watch, kubectl's table) and
validated a little more strictly than a real server: besides the real
rule that involvedObject.namespace matches the event's namespace, the
fake requires involvedObject.kind (a kind it serves), apiVersion v1 and
name, a reason, a message and a type of Normal or Warning, because an
event missing them is one `kubectl describe` never shows well.

Test switches (authenticated like the API, except healthz):
  GET  /_fake/healthz                      readiness
  POST /_fake/pods/{ns}/{name}/status      {"phase","reason","message",
                                            "containerWaitingReason", "log"}
                                           ("log" is appended to what pods/log shows)
  POST /_fake/quota                        {"pods": N} (null or -1 clears)
  POST /_fake/compact                      forget the event history, so any
                                           earlier resourceVersion is Expired
  POST /_fake/fail                         {"code": 503, "count": N,
                                            "match": "substring of method+path"}
  GET  /_fake/requests                     counts of requests by "VERB resource"
"""

import argparse
import base64
import collections
import copy
import datetime
import json
import os
import random
import re
import select
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVER_VERSION = {
    "major": "1", "minor": "28", "gitVersion": "v1.28.0-nova-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.21.0", "compiler": "gc", "platform": "linux/amd64",
}

# resource -> (kind, namespaced, shortNames)
RESOURCES = {
    "pods": ("Pod", True, ["po"]),
    "services": ("Service", True, ["svc"]),
    "secrets": ("Secret", True, []),
    "events": ("Event", True, ["ev"]),
    "nodes": ("Node", False, ["no"]),
    "namespaces": ("Namespace", False, ["ns"]),
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch",
         "update", "watch"]

# Field selectors the real server accepts per resource (events accept any).
FIELDS = {
    "pods": {"metadata.name", "metadata.namespace", "status.phase",
             "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"},
    "services": {"metadata.name", "metadata.namespace"},
    "secrets": {"metadata.name", "metadata.namespace", "type"},
    "nodes": {"metadata.name", "spec.unschedulable"},
    "namespaces": {"metadata.name", "status.phase"},
}

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
             "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
             "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character "
            "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return time.time()


def human_age(ts):
    """Go's duration.HumanDuration, as kubectl's AGE column shows it."""
    s = max(0, int(time.time() - parse_rfc3339(ts)))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = m // 60
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    return "%dd" % (h // 24)


def status_obj(code, reason, message, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {},
          "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)


def not_found(resource, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                    {"name": name, "kind": resource})


def invalid(kind, name, field, value, detail, why="FieldValueInvalid"):
    if why == "FieldValueRequired":
        msg = "%s: Required value: %s" % (field, detail)
    else:
        msg = '%s: Invalid value: "%s": %s' % (field, value, detail)
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (kind, name, msg),
                    {"name": name, "kind": kind,
                     "causes": [{"reason": why, "message": msg.split(": ", 1)[1],
                                 "field": field}]})


def field_error(field, why, value=None, detail=""):
    """One cause, worded as the real server's field.Error."""
    if why == "FieldValueRequired":
        body = "Required value" + (": " + detail if detail else "")
    elif why == "FieldValueNotSupported":
        body = "Unsupported value: %s: supported values: %s" % (
            json.dumps(value), ", ".join(json.dumps(v) for v in detail))
    else:
        body = "Invalid value: %s: %s" % (json.dumps(value), detail)
    return {"reason": why, "message": body, "field": field}


def invalid_all(kind, name, causes):
    """422 Invalid with every cause, as the real server answers a create
    that fails validation in several places."""
    parts = ["%s: %s" % (c["field"], c["message"]) for c in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (kind, name, text),
                    {"name": name, "kind": kind, "causes": causes})


LABEL_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                 "must start and end with an alphanumeric character, with an optional DNS "
                 "subdomain prefix and '/' (e.g. 'example.com/MyName'); the name part must be "
                 "no more than 63 characters")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric "
                   "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                   "character (at most 63 characters)")


def is_qualified_name(k):
    parts = k.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2 and not (parts[0] and len(parts[0]) <= 253
                                and DNS1123_SUBDOMAIN.match(parts[0])):
        return False
    return 0 < len(parts[-1]) <= 63 and bool(LABEL_PART.match(parts[-1]))


def is_label_value(v):
    return v == "" or (len(v) <= 63 and bool(LABEL_PART.match(v)))


def label_causes(labels, field):
    """ValidateLabels: keys qualified names, values label values; the
    cause names the map, as the real server's does."""
    causes = []
    for k, v in (labels or {}).items():
        if not is_qualified_name(k):
            causes.append(field_error(field, "FieldValueInvalid", k, MSG_QUALIFIED))
        if not isinstance(v, str) or not is_label_value(v):
            causes.append(field_error(field, "FieldValueInvalid", v, MSG_LABEL_VALUE))
    return causes


def toleration_causes(tols):
    """core/v1 ValidateTolerations."""
    causes = []
    for i, t in enumerate(tols or []):
        p = "spec.tolerations[%d]" % i
        key, op = t.get("key") or "", t.get("operator") or ""
        val, eff = t.get("value") or "", t.get("effect") or ""
        if key and not is_qualified_name(key):
            causes.append(field_error(p + ".key", "FieldValueInvalid", key, MSG_QUALIFIED))
        if not key and op != "Exists":
            causes.append(field_error(p + ".operator", "FieldValueInvalid", op,
                                      "operator must be Exists when `key` is empty, which "
                                      "means \"match all values and all keys\""))
        if t.get("tolerationSeconds") is not None and eff != "NoExecute":
            causes.append(field_error(p + ".effect", "FieldValueInvalid", eff,
                                      "effect must be 'NoExecute' when `tolerationSeconds` is "
                                      "set"))
        if op in ("", "Equal"):
            if not is_label_value(val):
                causes.append(field_error(p + ".value", "FieldValueInvalid", val,
                                          MSG_LABEL_VALUE))
        elif op == "Exists":
            if val:
                causes.append(field_error(p + ".operator", "FieldValueInvalid", op,
                                          "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(field_error(p + ".operator", "FieldValueNotSupported", op,
                                      ["Equal", "Exists"]))
        if eff and eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(field_error(p + ".effect", "FieldValueNotSupported", eff,
                                      ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    return causes


def event_causes(obj, ns):
    """core/v1 Event: the real server's namespace rule, and the fields the
    fake requires besides (see the module's docstring)."""
    causes = []
    ref = obj.get("involvedObject") or {}
    kinds = sorted(k for k, _, _ in RESOURCES.values())
    if not ref:
        causes.append(field_error("involvedObject", "FieldValueRequired"))
    else:
        if not ref.get("kind"):
            causes.append(field_error("involvedObject.kind", "FieldValueRequired"))
        elif ref["kind"] not in kinds:
            causes.append(field_error("involvedObject.kind", "FieldValueNotSupported",
                                      ref["kind"], kinds))
        if not ref.get("apiVersion"):
            causes.append(field_error("involvedObject.apiVersion", "FieldValueRequired"))
        elif ref["apiVersion"] != "v1":
            causes.append(field_error("involvedObject.apiVersion", "FieldValueNotSupported",
                                      ref["apiVersion"], ["v1"]))
        if not ref.get("name"):
            causes.append(field_error("involvedObject.name", "FieldValueRequired"))
    rns = ref.get("namespace") or ""
    if (rns and rns != ns) or (not rns and ns not in ("", "default")):
        causes.append(field_error("involvedObject.namespace", "FieldValueInvalid", rns,
                                  "does not match event.namespace"))
    for f in ("reason", "message"):
        if not obj.get(f):
            causes.append(field_error(f, "FieldValueRequired"))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(field_error("type", "FieldValueNotSupported", obj.get("type") or "",
                                  ["Normal", "Warning"]))
    return causes


def quantity_int(q):
    """The integer value of a Kubernetes quantity as extended resources use
    it (whole numbers; "1k" style suffixes accepted)."""
    if q is None:
        return 0
    if isinstance(q, (int, float)):
        return int(q)
    m = re.match(r"^([0-9.]+)([a-zA-Z]*)$", str(q))
    if not m:
        return 0
    mult = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20,
            "Gi": 2**30, "m": 0.001}.get(m.group(2), 1)
    return int(float(m.group(1)) * mult)


QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                      r"(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?[0-9]+)?$")


def check_types(resource, obj):
    """What the real server's decoder refuses with 400 before any
    validation: a field of the wrong JSON type, a malformed quantity. Only
    the fields this fake reads are checked."""
    kind = RESOURCES[resource][0]

    def bad(path, want, got):
        raise ApiError(400, "BadRequest", '%s in version "v1" cannot be handled as a %s: '
                       'json: cannot unmarshal %s into Go struct field %s of type %s'
                       % (kind, kind, type(got).__name__, path, want))

    def is_(v, t, path, want):
        if v is not None and not isinstance(v, t):
            bad(path, want, v)
        return v if v is not None else t()

    def strmap(v, path):
        for k, x in is_(v, dict, path, "map[string]string").items():
            if not isinstance(x, str):
                bad(path, "string", x)

    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
    md = is_(obj.get("metadata"), dict, "metadata", "v1.ObjectMeta")
    for f in ("name", "namespace", "generateName", "resourceVersion", "uid"):
        is_(md.get(f), str, "ObjectMeta.metadata." + f, "string")
    strmap(md.get("annotations"), "ObjectMeta.metadata.annotations")
    labels = is_(md.get("labels"), dict, "ObjectMeta.metadata.labels", "map[string]string")
    for k, x in labels.items():
        if not isinstance(x, str):
            bad("ObjectMeta.metadata.labels", "string", x)
    spec = is_(obj.get("spec"), dict, "spec", "v1.%sSpec" % kind)
    is_(obj.get("status"), dict, "status", "v1.%sStatus" % kind)
    if resource == "pods":
        strmap(spec.get("nodeSelector"), "PodSpec.spec.nodeSelector")
        for t in is_(spec.get("tolerations"), list, "PodSpec.spec.tolerations",
                     "[]v1.Toleration"):
            if not isinstance(t, dict):
                bad("PodSpec.spec.tolerations", "v1.Toleration", t)
            for f in ("key", "operator", "value", "effect"):
                is_(t.get(f), str, "Toleration.spec.tolerations." + f, "string")
            ts = t.get("tolerationSeconds")
            if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
                bad("Toleration.spec.tolerations.tolerationSeconds", "int64", ts)
        is_(spec.get("volumes"), list, "PodSpec.spec.volumes", "[]v1.Volume")
        is_(spec.get("nodeName"), str, "PodSpec.spec.nodeName", "string")
        for f in ("containers", "initContainers"):
            for c in is_(spec.get(f), list, "PodSpec.spec." + f, "[]v1.Container"):
                if not isinstance(c, dict):
                    bad("PodSpec.spec." + f, "v1.Container", c)
                for g in ("name", "image"):
                    is_(c.get(g), str, "Container.spec.%s.%s" % (f, g), "string")
                res = is_(c.get("resources"), dict, "Container.spec.%s.resources" % f,
                          "v1.ResourceRequirements")
                for part in ("requests", "limits"):
                    for k, q in is_(res.get(part), dict, "ResourceRequirements.spec.%s."
                                    "resources.%s" % (f, part), "v1.ResourceList").items():
                        if isinstance(q, bool) or not isinstance(q, (str, int, float)) or \
                                (isinstance(q, str) and not QUANTITY.match(q)):
                            raise ApiError(400, "BadRequest", '%s in version "v1" cannot be '
                                           'handled as a %s: quantities must match the regular '
                                           'expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?'
                                           '[0-9]*)$\'' % (kind, kind))
    elif resource == "services":
        for pt in is_(spec.get("ports"), list, "ServiceSpec.spec.ports", "[]v1.ServicePort"):
            if not isinstance(pt, dict):
                bad("ServiceSpec.spec.ports", "v1.ServicePort", pt)
        strmap(spec.get("selector"), "ServiceSpec.spec.selector")
    elif resource == "events":
        ref = is_(obj.get("involvedObject"), dict, "Event.involvedObject", "v1.ObjectReference")
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath"):
            is_(ref.get(f), str, "ObjectReference.involvedObject." + f, "string")
        for f in ("reason", "message", "type", "action", "reportingComponent",
                  "reportingInstance"):
            is_(obj.get(f), str, "Event." + f, "string")
        src = is_(obj.get("source"), dict, "Event.source", "v1.EventSource")
        for f in ("component", "host"):
            is_(src.get(f), str, "EventSource.source." + f, "string")
        c = obj.get("count")
        if c is not None and (isinstance(c, bool) or not isinstance(c, int)):
            bad("Event.count", "int32", c)
        for f in ("firstTimestamp", "lastTimestamp"):
            v = obj.get(f)
            if v is None:
                continue
            try:
                datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
            except (TypeError, ValueError):
                raise ApiError(400, "BadRequest", 'Event in version "v1" cannot be handled as '
                               'an Event: parsing time %s as "2006-01-02T15:04:05Z07:00": '
                               'cannot parse' % json.dumps(v))
    elif resource == "secrets":
        strmap(obj.get("data"), "Secret.data")
        strmap(obj.get("stringData"), "Secret.stringData")
        for k, v in (obj.get("data") or {}).items():
            try:
                base64.b64decode(v, validate=True)
            except ValueError:
                raise ApiError(400, "BadRequest", 'Secret in version "v1" cannot be handled as '
                               'a Secret: illegal base64 data at input byte 0')


def canonical_quantity(q):
    """Quantities come back as strings, as the real server serializes them
    (2 -> "2", 0.5 -> "500m")."""
    if isinstance(q, bool) or not isinstance(q, (int, float)):
        return q if isinstance(q, str) else str(q)
    if float(q).is_integer():
        return str(int(q))
    return "%dm" % round(q * 1000)


# ---------------------------------------------------------------- selectors

def split_top(s):
    """Split on commas outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def parse_label_selector(sel):
    reqs = []
    for part in split_top(sel or ""):
        p = part.strip()
        m = re.match(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s*\((.*)\)$", p)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(2), m.group(1), vals))
            continue
        m = re.match(r"^([A-Za-z0-9./_-]+)\s*(==|!=|=)\s*([A-Za-z0-9._-]*)$", p)
        if m:
            op = {"=": "in", "==": "in", "!=": "notin"}[m.group(2)]
            reqs.append((op, m.group(1), {m.group(3)}))
            continue
        m = re.match(r"^!\s*([A-Za-z0-9./_-]+)$", p)
        if m:
            reqs.append(("!exists", m.group(1), None))
            continue
        m = re.match(r"^([A-Za-z0-9./_-]+)$", p)
        if m:
            reqs.append(("exists", m.group(1), None))
            continue
        raise ApiError(400, "BadRequest",
                       "unable to parse requirement: found '%s', expected: identifier" % p)
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for op, key, vals in reqs:
        if op == "in" and labels.get(key) not in vals:
            return False
        if op == "notin" and key in labels and labels[key] in vals:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def dotted(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(resource, sel):
    reqs = []
    for part in split_top(sel or ""):
        m = re.match(r"^\s*([A-Za-z0-9._/-]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'; can't understand '%s'"
                           % (sel, part))
        field = m.group(1)
        if resource != "events" and field not in FIELDS.get(resource, set()):
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % field)
        reqs.append((field, m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    for field, eq, val in reqs:
        if (dotted(obj, field) == val) != eq:
            return False
    return True


# ---------------------------------------------------------------- patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# Merge keys of the lists that strategic merge patch merges item by item
# (the patchMergeKey tags of k8s.io/api); every other list is replaced.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "imagePullSecrets": "name",
    "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "conditions": "type", "hostAliases": "ip", "finalizers": None,
}


def strategic_merge(target, patch):
    """The part of strategic merge patch that kubectl apply produces: maps
    merge, lists with a merge key merge item by item, directives
    ($patch, $setElementOrder, $retainKeys, $deleteFromPrimitiveList)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k == "$retainKeys" or k == "$patch":
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            out[f] = [x for x in out.get(f) or [] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and (k in MERGE_KEYS or k == "ports"):
            key = MERGE_KEYS.get(k)
            if k == "ports":
                key = "containerPort" if any(isinstance(i, dict) and "containerPort" in i
                                             for i in v + (out.get(k) or [])) else "port"
            if key is None:  # a set of primitives (finalizers): union
                cur = list(out.get(k) or [])
                out[k] = cur + [x for x in v if x not in cur]
                continue
            cur = [copy.deepcopy(i) for i in (out.get(k) or [])]
            for item in v:
                if not isinstance(item, dict):
                    continue
                idx = next((i for i, c in enumerate(cur)
                            if isinstance(c, dict) and c.get(key) == item.get(key)), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        cur.pop(idx)
                elif idx is None:
                    cur.append({a: b for a, b in item.items() if not a.startswith("$")})
                else:
                    cur[idx] = strategic_merge(cur[idx], item)
            order = patch.get("$setElementOrder/" + k)
            if order:
                keys = [o.get(key) for o in order if isinstance(o, dict)]
                cur.sort(key=lambda c: keys.index(c.get(key)) if c.get(key) in keys else len(keys))
            out[k] = cur
        else:
            r = strategic_merge(out.get(k), v)
            if r is None:
                out.pop(k, None)
            else:
                out[k] = r
    return out


def json_patch(target, ops):
    """RFC 6902, the operations clients use (add, remove, replace, test)."""
    doc = copy.deepcopy(target)

    def walk(path):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]
    for op in ops if isinstance(ops, list) else []:
        try:
            parent, last = walk(op["path"])
            kind = op.get("op")
            if isinstance(parent, list):
                i = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(i, op["value"])
                elif kind == "remove":
                    parent.pop(i)
                elif kind == "replace":
                    parent[i] = op["value"]
                elif kind == "test" and parent[i] != op["value"]:
                    raise ApiError(422, "Invalid", "the server rejected our request due to an "
                                   "error in our request")
            else:
                if kind in ("add", "replace"):
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
                elif kind == "remove":
                    del parent[last]
                elif kind == "test" and parent.get(last) != op["value"]:
                    raise ApiError(422, "Invalid", "the server rejected our request due to an "
                                   "error in our request")
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(422, "Invalid", "the server rejected our request due to an error "
                           "in our request")
    return doc


# ---------------------------------------------------------------- the store

class Store:
    def __init__(self, nodes, gpu_resource, auto_run, history):
        self.lock = threading.Condition()
        self.rv = 0
        self.objects = {}            # (resource, namespace, name) -> object
        self.history = collections.deque()
        self.history_max = history
        self.history_floor = 0       # events at or below this rv are gone
        self.gpu = gpu_resource
        self.auto_run = auto_run
        self.quota_pods = None
        self.faults = []             # [code, count, match]
        self.counts = collections.Counter()
        self.logs = {}               # (namespace, pod) -> text for pods/log
        with self.lock:
            for ns in ("default", "kube-system"):
                self._ensure_namespace(ns)
            for name, n in nodes:
                self._seed_node(name, n)

    # -- bookkeeping, all under self.lock
    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, resource, etype, obj, prev=None):
        self.history.append((int(obj["metadata"]["resourceVersion"]), resource,
                             obj["metadata"].get("namespace", ""), etype,
                             copy.deepcopy(obj), prev))
        while len(self.history) > self.history_max:
            self.history_floor = self.history.popleft()[0]
        self.lock.notify_all()

    def _ensure_namespace(self, ns):
        if ("namespaces", "", ns) in self.objects:
            return
        self._insert("namespaces", "", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def _seed_node(self, name, gpus):
        res = {"cpu": "32", "memory": "256Gi", "pods": "110",
               "ephemeral-storage": "1Ti", self.gpu: str(gpus)}
        t = now_rfc3339()
        self._insert("nodes", "", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"}},
            "spec": {},
            "status": {
                "capacity": dict(res), "allocatable": dict(res),
                "conditions": [{"type": "Ready", "status": "True",
                                "lastHeartbeatTime": t, "lastTransitionTime": t,
                                "reason": "KubeletReady",
                                "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.28.0", "kubeProxyVersion": "v1.28.0",
                             "containerRuntimeVersion": "containerd://1.7.0",
                             "operatingSystem": "linux", "architecture": "amd64",
                             "osImage": "Nova fake", "kernelVersion": "6.1.0"}}})

    def _insert(self, resource, ns, obj):
        md = obj.setdefault("metadata", {})
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        md["generation"] = 1
        md["resourceVersion"] = self._next_rv()
        if RESOURCES[resource][1]:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        self.objects[(resource, ns, md["name"])] = obj
        self._emit(resource, "ADDED", obj)
        return obj

    def _update(self, resource, ns, obj):
        prev = self.objects.get((resource, ns, obj["metadata"]["name"]))
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[(resource, ns, obj["metadata"]["name"])] = obj
        self._emit(resource, "MODIFIED", obj, copy.deepcopy(prev))
        return obj

    def _delete(self, resource, ns, name):
        obj = self.objects.pop((resource, ns, name))
        if resource == "pods":
            self.logs.pop((ns, name), None)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(resource, "DELETED", obj)
        return obj

    # -- validation and defaults
    def _validate_new(self, resource, ns, obj):
        kind = RESOURCES[resource][0]
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        if obj.get("apiVersion") not in (None, "v1"):
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match "
                           "the expected API version (v1)" % obj.get("apiVersion"))
        if obj.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", "the kind in the data (%s) does not match the "
                           "expected kind (%s)" % (obj.get("kind"), kind))
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        name = md.get("name") or ""
        if not name:
            raise invalid(kind, "", "metadata.name", "", "name or generateName is required",
                          "FieldValueRequired")
        if resource == "services":
            if not DNS1035_LABEL.match(name) or len(name) > 63:
                raise invalid(kind, name, "metadata.name", name, MSG_1035)
        elif resource == "namespaces":
            if not DNS1123_LABEL.match(name) or len(name) > 63:
                raise invalid(kind, name, "metadata.name", name, MSG_LABEL)
        elif not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
            raise invalid(kind, name, "metadata.name", name, MSG_SUBDOMAIN)
        if RESOURCES[resource][1] and md.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        causes = label_causes(md.get("labels"), "metadata.labels")
        if resource == "pods":
            spec = obj.get("spec") or {}
            causes += label_causes(spec.get("nodeSelector"), "spec.nodeSelector")
            causes += toleration_causes(spec.get("tolerations"))
        elif resource == "events":
            causes += event_causes(obj, ns)
        if causes:
            raise invalid_all(kind, name, causes)
        if resource == "pods":
            cs = spec.get("containers")
            if not cs:
                raise invalid(kind, name, "spec.containers", "", "", "FieldValueRequired")
            for i, c in enumerate(cs + (spec.get("initContainers") or [])):
                if not c.get("name"):
                    raise invalid(kind, name, "spec.containers[%d].name" % i, "", "",
                                  "FieldValueRequired")
                if not c.get("image"):
                    raise invalid(kind, name, "spec.containers[%d].image" % i, "", "",
                                  "FieldValueRequired")
        return name

    @staticmethod
    def _pod_spec_defaults(obj):
        """The defaults the real server fills in a pod's spec, on create and
        on every update (so a client's PUT of a bare spec compares equal)."""
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("serviceAccountName", "default")
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if not isinstance(c, dict):
                continue
            img = str(c.get("image", ""))
            c.setdefault("imagePullPolicy", "Always" if img.endswith(":latest") or
                         ":" not in img.rsplit("/", 1)[-1] else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            res = c["resources"]
            # Extended resources: limits imply equal requests.
            for k, v in (res.get("limits") or {}).items():
                res.setdefault("requests", {}).setdefault(k, v)

    def _defaults(self, resource, obj):
        if resource == "pods":
            self._pod_spec_defaults(obj)
            self._canon_pod(obj)
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif resource == "services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec.get("clusterIP") in (None, ""):
                spec["clusterIP"] = "10.96.%d.%d" % (random.randint(0, 255),
                                                     random.randint(1, 254))
                spec["clusterIPs"] = [spec["clusterIP"]]
            for p in spec.get("ports") or []:
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
            obj["status"] = {"loadBalancer": {}}
        elif resource == "secrets":
            self._secret_normalize(obj)
            obj.setdefault("type", "Opaque")
        elif resource == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})[
                "kubernetes.io/metadata.name"] = obj["metadata"]["name"]

    @staticmethod
    def _pod_spec_key(spec):
        """A pod's spec without what an update may change (images, the
        deadline, tolerations): any other difference is refused."""
        spec = copy.deepcopy(spec or {})
        for f in ("activeDeadlineSeconds", "tolerations"):
            spec.pop(f, None)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if isinstance(c, dict):
                c.pop("image", None)
        return spec

    @staticmethod
    def _canon_pod(obj):
        spec = obj.get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                if isinstance(res.get(part), dict):
                    res[part] = {k: canonical_quantity(v) for k, v in res[part].items()}

    @staticmethod
    def _secret_normalize(obj):
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.setdefault("data", {})
            for k, v in sd.items():
                data[k] = base64.b64encode(str(v).encode()).decode()

    # -- API verbs
    def create(self, resource, ns, obj):
        with self.lock:
            kind = RESOURCES[resource][0]
            check_types(resource, obj)
            name = self._validate_new(resource, ns, obj)
            obj["apiVersion"] = "v1"
            obj["kind"] = kind
            key = (resource, ns, name)
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (resource, name),
                               {"name": name, "kind": resource})
            if resource == "pods" and self.quota_pods is not None:
                used = sum(1 for (r, n, _), o in self.objects.items()
                           if r == "pods" and n == ns and not self._terminal(o))
                if used + 1 > self.quota_pods:
                    raise ApiError(403, "Forbidden",
                                   'pods "%s" is forbidden: exceeded quota: compute-resources, '
                                   'requested: pods=1, used: pods=%d, limited: pods=%d'
                                   % (name, used, self.quota_pods),
                                   {"name": name, "kind": "pods"})
            for k in ("uid", "resourceVersion", "creationTimestamp", "generation",
                      "deletionTimestamp"):
                obj["metadata"].pop(k, None)
            if RESOURCES[resource][1]:
                self._ensure_namespace(ns)
            self._defaults(resource, obj)
            if resource == "pods":
                self._qos(obj)
            out = self._insert(resource, ns, obj)
            if resource == "pods" and self.auto_run:
                self._later(0.2, self._auto_schedule, ns, name, obj["metadata"]["uid"])
            return copy.deepcopy(out)

    def get(self, resource, ns, name):
        with self.lock:
            obj = self.objects.get((resource, ns, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def list(self, resource, ns, lsel, fsel):
        with self.lock:
            items = [copy.deepcopy(o) for (r, n, _), o in sorted(self.objects.items())
                     if r == resource and (ns is None or n == ns)
                     and labels_match(lsel, o["metadata"].get("labels"))
                     and fields_match(fsel, o)]
            return items, str(self.rv)

    def _check_rv(self, resource, name, cur, rv):
        if rv not in (None, "") and rv != cur["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict",
                           'Operation cannot be fulfilled on %s "%s": the object has been '
                           'modified; please apply your changes to the latest version and '
                           'try again' % (resource, name), {"name": name, "kind": resource})

    def _replace(self, resource, ns, name, cur, new, subresource=None):
        """The common tail of PUT and PATCH: keep what the client may not
        change, bump generation on a spec change, keep status unless this
        is the status subresource."""
        kind = RESOURCES[resource][0]
        check_types(resource, new)
        if not isinstance(new.get("metadata"), dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        md = new["metadata"]
        if md.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the "
                           "name on the URL (%s)" % (md.get("name"), name))
        if md.get("uid") not in (None, "", cur["metadata"]["uid"]):
            raise ApiError(409, "Conflict",
                           'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                           'UID in precondition: %s, UID in object meta: %s'
                           % (resource, name, md.get("uid"), cur["metadata"]["uid"]),
                           {"name": name, "kind": resource})
        self._check_rv(resource, name, cur, md.get("resourceVersion"))
        new["apiVersion"] = "v1"
        new["kind"] = kind
        md["name"] = name
        for k in ("uid", "creationTimestamp", "generation"):
            md[k] = cur["metadata"][k]
        if RESOURCES[resource][1]:
            md["namespace"] = ns
        if subresource == "status":
            out = copy.deepcopy(cur)
            out["status"] = new.get("status", {})
            new = out
        elif resource in ("pods", "services", "namespaces", "nodes"):
            new["status"] = copy.deepcopy(cur.get("status", {}))
        if resource == "secrets":
            self._secret_normalize(new)
        if resource == "pods" and subresource != "status":
            self._pod_spec_defaults(new)
            self._canon_pod(new)
            if self._pod_spec_key(new.get("spec")) != self._pod_spec_key(cur.get("spec")):
                why = ("pod updates may not change fields other than `spec.containers[*].image`,"
                       "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                       "`spec.tolerations` (only additions to existing tolerations),"
                       "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                       "was previously negative)")
                raise ApiError(422, "Invalid", 'Pod "%s" is invalid: spec: Forbidden: %s'
                               % (name, why),
                               {"name": name, "kind": "Pod", "causes": [{
                                   "reason": "FieldValueForbidden",
                                   "message": "Forbidden: " + why, "field": "spec"}]})
        if new.get("spec") != cur.get("spec"):
            md["generation"] = cur["metadata"]["generation"] + 1
        for k in list(md.keys()):
            if md[k] is None:
                del md[k]
        md["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if new == cur:  # a no-op write changes nothing, not even the version
            return copy.deepcopy(cur)
        return copy.deepcopy(self._update(resource, ns, new))

    def replace(self, resource, ns, name, new, subresource=None):
        with self.lock:
            cur = self.objects.get((resource, ns, name))
            if cur is None:
                raise not_found(resource, name)
            return self._replace(resource, ns, name, cur, new, subresource)

    def patch(self, resource, ns, name, ctype, patch, subresource=None):
        with self.lock:
            cur = self.objects.get((resource, ns, name))
            if cur is None:
                raise not_found(resource, name)
            try:
                if ctype == "application/merge-patch+json":
                    new = merge_patch(copy.deepcopy(cur), patch)
                elif ctype == "application/strategic-merge-patch+json":
                    new = strategic_merge(copy.deepcopy(cur), patch)
                elif ctype == "application/json-patch+json":
                    new = json_patch(cur, patch)
                else:
                    new = None
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as e:
                raise ApiError(400, "BadRequest", "the patch could not be applied: %s" % e)
            if new is None:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted "
                               "media types include: application/json-patch+json, "
                               "application/merge-patch+json, "
                               "application/strategic-merge-patch+json")
            # A patch's resourceVersion is a precondition only when the
            # patch carries one (as the real server does).
            rv = (patch.get("metadata") or {}).get("resourceVersion") \
                if isinstance(patch, dict) else None
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown "
                               "format")
            if not isinstance(new.get("metadata"), dict):
                new["metadata"] = {}
            new["metadata"]["resourceVersion"] = rv
            return self._replace(resource, ns, name, cur, new, subresource)

    def delete(self, resource, ns, name, precond=None):
        with self.lock:
            cur = self.objects.get((resource, ns, name))
            if cur is None:
                raise not_found(resource, name)
            pre = (precond or {}).get("preconditions") or {}
            if pre.get("uid") not in (None, cur["metadata"]["uid"]):
                raise ApiError(409, "Conflict",
                               'Operation cannot be fulfilled on %s "%s": Precondition failed: '
                               'UID in precondition: %s, UID in object meta: %s'
                               % (resource, name, pre.get("uid"), cur["metadata"]["uid"]),
                               {"name": name, "kind": resource})
            self._check_rv(resource, name, cur, pre.get("resourceVersion"))
            if resource == "namespaces":
                if name in ("default", "kube-system"):
                    raise ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this '
                                   'namespace may not be deleted' % name,
                                   {"name": name, "kind": "namespaces"})
                for (r, n, o) in [k for k in self.objects if k[1] == name]:
                    self._delete(r, n, o)
            out = self._delete(resource, ns, name)
            if resource == "pods":
                self._retry_pending()
            return copy.deepcopy(out)

    def delete_collection(self, resource, ns, lsel, fsel):
        with self.lock:
            items, _ = self.list(resource, ns, lsel, fsel)
            for o in items:
                self._delete(resource, o["metadata"].get("namespace", ""), o["metadata"]["name"])
            if resource == "pods":
                self._retry_pending()
            return items, str(self.rv)

    # -- pods: scheduling and the status switch
    @staticmethod
    def _terminal(pod):
        return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")

    def _qos(self, pod):
        cs = pod["spec"].get("containers") or []
        if any(c.get("resources", {}).get("requests") or c.get("resources", {}).get("limits")
               for c in cs):
            pod["status"]["qosClass"] = "Burstable"

    def _pod_gpus(self, pod):
        spec = pod.get("spec", {})
        main = sum(quantity_int((c.get("resources", {}).get("requests") or {}).get(self.gpu))
                   for c in spec.get("containers") or [])
        init = max([quantity_int((c.get("resources", {}).get("requests") or {}).get(self.gpu))
                    for c in spec.get("initContainers") or []] or [0])
        return max(main, init)

    def _pick_node(self, pod):
        nodes = sorted((o for (r, _, _), o in self.objects.items() if r == "nodes"),
                       key=lambda o: o["metadata"]["name"])
        want = self._pod_gpus(pod)
        sel = pod["spec"].get("nodeSelector") or {}
        short_gpu = short_sel = 0
        for n in nodes:
            labels = n["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                short_sel += 1
                continue
            alloc = quantity_int(n["status"]["allocatable"].get(self.gpu))
            used = sum(self._pod_gpus(o) for (r, _, _), o in self.objects.items()
                       if r == "pods" and o is not pod and not self._terminal(o)
                       and o["spec"].get("nodeName") == n["metadata"]["name"])
            if alloc - used >= want:
                return n["metadata"]["name"], None
            short_gpu += 1
        why = []
        if short_gpu:
            why.append("%d Insufficient %s" % (short_gpu, self.gpu))
        if short_sel:
            why.append("%d node(s) didn't match Pod's node affinity/selector" % short_sel)
        msg = "0/%d nodes are available: %s." % (len(nodes), ", ".join(why)) if why else \
            "0/0 nodes are available."
        return None, msg

    def _set_condition(self, pod, ctype, status, reason=None, message=None):
        conds = [c for c in pod["status"].get("conditions") or [] if c["type"] != ctype]
        c = {"type": ctype, "status": status, "lastProbeTime": None,
             "lastTransitionTime": now_rfc3339()}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        conds.append(c)
        pod["status"]["conditions"] = conds

    def _schedule(self, pod):
        """Binds the pod to a node; False (and an Unschedulable condition)
        when none has the GPUs."""
        if pod["spec"].get("nodeName"):
            return True
        node, msg = self._pick_node(pod)
        if node is None:
            self._set_condition(pod, "PodScheduled", "False", "Unschedulable", msg)
            return False
        pod["spec"]["nodeName"] = node
        self._set_condition(pod, "PodScheduled", "True")
        return True

    def _run(self, pod):
        st = pod["status"]
        t = now_rfc3339()
        st["phase"] = "Running"
        st.pop("reason", None)
        st.pop("message", None)
        st["hostIP"] = "127.0.0.1"
        st["podIP"] = "127.0.0.1"
        st["podIPs"] = [{"ip": "127.0.0.1"}]
        st.setdefault("startTime", t)
        for ct in ("Initialized", "Ready", "ContainersReady"):
            self._set_condition(pod, ct, "True")
        st["containerStatuses"] = [{
            "name": c["name"], "image": c["image"], "imageID": "", "ready": True,
            "restartCount": 0, "started": True,
            "containerID": "containerd://" + uuid.uuid4().hex,
            "state": {"running": {"startedAt": t}}} for c in pod["spec"]["containers"]]

    def _auto_schedule(self, ns, name, uid):
        with self.lock:
            pod = self.objects.get(("pods", ns, name))
            if pod is None or pod["metadata"]["uid"] != uid or pod["status"]["phase"] != "Pending":
                return
            pod = copy.deepcopy(pod)
            if self._schedule(pod):
                self._run(pod)
            self._update("pods", ns, pod)

    @staticmethod
    def _later(delay, fn, *args):
        t = threading.Timer(delay, fn, args)
        t.daemon = True
        t.start()

    def _retry_pending(self):
        if not self.auto_run:
            return
        for (r, ns, name), pod in list(self.objects.items()):
            if r == "pods" and pod["status"].get("phase") == "Pending" \
                    and not pod["spec"].get("nodeName") and any(
                        c.get("reason") == "Unschedulable"
                        for c in pod["status"].get("conditions") or []):
                self._later(0.05, self._auto_schedule, ns, name, pod["metadata"]["uid"])

    def pod_status(self, ns, name, want):
        if not isinstance(want, dict) or not all(
                isinstance(v, str) for v in want.values()):
            raise ApiError(400, "BadRequest", "the switch takes an object of strings")
        with self.lock:
            cur = self.objects.get(("pods", ns, name))
            if cur is None:
                raise not_found("pods", name)
            pod = copy.deepcopy(cur)
            st = pod["status"]
            phase = want.get("phase") or st.get("phase", "Pending")
            if phase not in ("Pending", "Running", "Succeeded", "Failed"):
                raise ApiError(422, "Invalid", "phase must be Pending, Running, Succeeded "
                               "or Failed")
            if phase == "Running":
                if not pod["spec"].get("nodeName"):
                    node, _ = self._pick_node(pod)
                    nodes = sorted(k[2] for k in self.objects if k[0] == "nodes")
                    pod["spec"]["nodeName"] = node or (nodes[0] if nodes else "node-0")
                    self._set_condition(pod, "PodScheduled", "True")
                self._run(pod)
            elif phase in ("Failed", "Succeeded"):
                t = now_rfc3339()
                st["phase"] = phase
                for ct in ("Ready", "ContainersReady"):
                    self._set_condition(pod, ct, "False", "PodFailed" if phase == "Failed"
                                        else "PodCompleted")
                code = 1 if phase == "Failed" else 0
                st["containerStatuses"] = [{
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                    "restartCount": 0, "started": False,
                    "state": {"terminated": {
                        "exitCode": code, "reason": want.get("reason") or
                        ("Error" if code else "Completed"),
                        "message": want.get("message", ""),
                        "startedAt": st.get("startTime", t), "finishedAt": t}}}
                    for c in pod["spec"]["containers"]]
            else:
                st["phase"] = "Pending"
                if want.get("containerWaitingReason"):
                    st["containerStatuses"] = [{
                        "name": c["name"], "image": c["image"], "imageID": "",
                        "ready": False, "restartCount": 0, "started": False,
                        "state": {"waiting": {"reason": want["containerWaitingReason"],
                                              "message": want.get("message", "")}}}
                        for c in pod["spec"]["containers"]]
                    self._set_condition(pod, "Ready", "False", "ContainersNotReady",
                                        "containers with unready status: [%s]" % " ".join(
                                            c["name"] for c in pod["spec"]["containers"]))
            if phase != "Running":
                for k in ("reason", "message"):
                    if want.get(k) and not (k == "message" and want.get("containerWaitingReason")):
                        st[k] = want[k]
                    elif k in want and not want[k]:
                        st.pop(k, None)
            if want.get("log"):
                self.logs[(ns, name)] = self.logs.get((ns, name), "") + want["log"]
            out = self._update("pods", ns, pod)
            if phase in ("Failed", "Succeeded"):
                self._retry_pending()
            return copy.deepcopy(out)

    def pod_log(self, ns, name):
        """What `kubectl logs` shows: the text the switch gave ("log"), or
        the real server's refusal while the container has not started."""
        with self.lock:
            pod = self.objects.get(("pods", ns, name))
            if pod is None:
                raise not_found("pods", name)
            if pod["status"].get("phase") == "Pending":
                c = pod["spec"]["containers"][0]["name"]
                why = "ContainerCreating"
                for cs in pod["status"].get("containerStatuses") or []:
                    why = cs.get("state", {}).get("waiting", {}).get("reason") or why
                raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to '
                               'start: %s' % (c, name, why))
            return self.logs.get((ns, name), "")

    # -- watch
    def watch_events(self, resource, ns, lsel, fsel, since, deadline, alive):
        """Yields (type, object) from resourceVersion `since` on; an
        ERROR event with 410 Expired if `since` is older than the history."""
        if since is None:
            items, rv = self.list(resource, ns, lsel, fsel)
            for o in items:
                yield ("ADDED", o)
            last = int(rv)
        else:
            last = since
        while alive():
            batch = []
            with self.lock:
                if last < self.history_floor:
                    batch.append(("ERROR", status_obj(
                        410, "Expired", "too old resource version: %d (%d)"
                        % (last, self.history_floor + 1))))
                else:
                    for rv, r, n, etype, obj, prev in self.history:
                        if rv <= last or r != resource or (ns is not None and n != ns):
                            continue
                        now = labels_match(lsel, obj["metadata"].get("labels")) \
                            and fields_match(fsel, obj)
                        was = prev is not None and labels_match(
                            lsel, prev["metadata"].get("labels")) and fields_match(fsel, prev)
                        # As the watch cache does: an object that starts
                        # matching the selectors is ADDED, one that stops
                        # matching is DELETED.
                        if etype == "MODIFIED" and now != was:
                            etype = "ADDED" if now else "DELETED"
                        elif not now:
                            continue
                        batch.append((etype, copy.deepcopy(obj)))
                    if self.history:
                        last = max(last, self.history[-1][0])
                if not batch:
                    left = deadline - time.time()
                    if left <= 0:
                        return
                    self.lock.wait(min(left, 1.0))
                    continue
            for ev in batch:
                yield ev
                if ev[0] == "ERROR":
                    return

    def compact(self):
        with self.lock:
            self.history_floor = self.rv
            self.history.clear()
            self.lock.notify_all()


# ---------------------------------------------------------------- printing

def table_columns(resource):
    def col(name, typ="string", fmt="", prio=0, desc=""):
        return {"name": name, "type": typ, "format": fmt,
                "description": desc or name, "priority": prio}
    name = col("Name", fmt="name", desc="Name must be unique within a namespace.")
    age = col("Age", desc="CreationTimestamp is a timestamp representing the server time "
              "when this object was created.")
    if resource == "pods":
        return [name, col("Ready"), col("Status"), col("Restarts", "string"), age,
                col("IP", prio=1), col("Node", prio=1), col("Nominated Node", prio=1),
                col("Readiness Gates", prio=1)]
    if resource == "nodes":
        return [name, col("Status"), col("Roles"), age, col("Version"),
                col("Internal-IP", prio=1), col("External-IP", prio=1)]
    if resource == "services":
        return [name, col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), age,
                col("Selector", prio=1)]
    if resource == "secrets":
        return [name, col("Type"), col("Data", "integer"), age]
    if resource == "namespaces":
        return [name, col("Status"), age]
    if resource == "events":
        return [col("Last Seen"), col("Type"), col("Reason"), col("Object"),
                col("Subobject", prio=1), col("Source", prio=1), col("Message"),
                col("First Seen", prio=1), col("Count", "integer", prio=1),
                col("Name", fmt="name", prio=1)]
    return [name, age]


def table_cells(resource, o):
    md, st, spec = o["metadata"], o.get("status", {}), o.get("spec", {})
    age = human_age(md.get("creationTimestamp"))
    if resource == "pods":
        cs = st.get("containerStatuses") or []
        ready = sum(1 for c in cs if c.get("ready"))
        status = st.get("reason") or st.get("phase", "Pending")
        for c in cs:
            s = c.get("state", {})
            if "waiting" in s and s["waiting"].get("reason"):
                status = s["waiting"]["reason"]
            elif "terminated" in s and s["terminated"].get("reason") and not st.get("reason"):
                status = s["terminated"]["reason"]
        restarts = sum(c.get("restartCount", 0) for c in cs)
        return [md["name"], "%d/%d" % (ready, len(spec.get("containers") or [])), status,
                str(restarts), age, st.get("podIP") or "<none>",
                spec.get("nodeName") or "<none>", "<none>", "<none>"]
    if resource == "nodes":
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in st.get("conditions") or [])
        return [md["name"], "Ready" if ready else "NotReady", "<none>", age,
                st.get("nodeInfo", {}).get("kubeletVersion", ""), "127.0.0.1", "<none>"]
    if resource == "services":
        ports = ",".join("%s/%s" % (p.get("port"), p.get("protocol", "TCP"))
                         for p in spec.get("ports") or []) or "<none>"
        sel = ",".join("%s=%s" % kv for kv in (spec.get("selector") or {}).items()) or "<none>"
        return [md["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "None"),
                "<none>", ports, age, sel]
    if resource == "secrets":
        return [md["name"], o.get("type", "Opaque"), len(o.get("data") or {}), age]
    if resource == "namespaces":
        return [md["name"], st.get("phase", "Active"), age]
    if resource == "events":
        ref, src = o.get("involvedObject") or {}, o.get("source") or {}
        first = o.get("firstTimestamp") or md.get("creationTimestamp")
        return [human_age(o.get("lastTimestamp") or first), o.get("type", ""),
                o.get("reason", ""),
                "%s/%s" % (ref.get("kind", "").lower(), ref.get("name", "")),
                ref.get("fieldPath", ""),
                ", ".join(x for x in (src.get("component") or o.get("reportingComponent", ""),
                                      src.get("host", "")) if x),
                o.get("message", ""), human_age(first), o.get("count", 1), md["name"]]
    return [md["name"], age]


def as_table(resource, objs, rv, include):
    rows = []
    for o in objs:
        row = {"cells": table_cells(resource, o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": table_columns(resource), "rows": rows}


def wants_table(accept):
    return "as=Table" in (accept or "") and "g=meta.k8s.io" in (accept or "")


# ---------------------------------------------------------------- discovery

def api_resource_list():
    res = []
    for r, (kind, namespaced, short) in RESOURCES.items():
        e = {"name": r, "singularName": kind.lower(), "namespaced": namespaced,
             "kind": kind, "verbs": VERBS if r != "namespaces" else
             [v for v in VERBS if v != "deletecollection"]}
        if short:
            e["shortNames"] = short
        if r == "pods":
            e["categories"] = ["all"]
        if r == "services":
            e["categories"] = ["all"]
        res.append(e)
        if r == "pods":
            res.append({"name": "pods/log", "singularName": "", "namespaced": True,
                        "kind": "Pod", "verbs": ["get"]})
        if r in ("pods", "services", "namespaces", "nodes"):
            res.append({"name": r + "/status", "singularName": "", "namespaced": namespaced,
                        "kind": kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": res}


DISCOVERY = {
    "/api": lambda: {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                     "serverAddress": "127.0.0.1"}]},
    # No group is advertised: kubectl takes an advertised group version with
    # no resources for a failed discovery ("received empty response for:
    # apps/v1"). /apis/apps/v1 still answers, for clients that ask directly.
    "/apis": lambda: {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": api_resource_list,
    "/apis/apps": lambda: {"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                           "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                           "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
    "/apis/apps/v1": lambda: {"kind": "APIResourceList", "apiVersion": "v1",
                              "groupVersion": "apps/v1", "resources": []},
    "/version": lambda: SERVER_VERSION,
}


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nova-fake-apiserver"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def log_line(self, code):
        log = self.server.logf
        if log:
            path = self.path.split("?", 1)[0]
            with self.server.log_lock:
                log.write("%s %s %s %d %s\n" % (now_rfc3339(), self.command, path, code,
                                                self.who or "-"))
                log.flush()

    # -- replies
    def send_json(self, code, obj, ctype="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(code)

    def send_status(self, st):
        self.send_json(st["code"], st)

    def read_body(self):
        return self.body

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(n)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def read_json(self, allow_empty=False):
        raw = self.read_body()
        if not raw.strip():
            if allow_empty:
                return None
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown "
                           "format: %s" % e)

    # -- auth
    def authenticate(self):
        self.who = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and self.server.token and \
                auth[len("Bearer "):].strip() == self.server.token:
            self.who = "token"
            return True
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        self.who = "cert:" + v
            self.who = self.who or "cert"
            return True
        return False

    # -- dispatch
    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        self.who = None
        # The body is read first, whatever the answer: an error answered
        # before reading it would leave it in a kept-alive connection,
        # where it would be parsed as the next request.
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self.send_status(status_obj(400, "BadRequest", "unreadable request body"))
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path == "/_fake/healthz":
                return self.send_json(200, {"ok": True})
            if not self.authenticate():
                self.read_body()
                return self.send_status(status_obj(401, "Unauthorized", "Unauthorized"))
            fault = self.server.store.take_fault("%s %s" % (self.command, path)) \
                if hasattr(self.server.store, "take_fault") else None
            if fault:
                self.read_body()
                reason = {500: "InternalError", 503: "ServiceUnavailable",
                          429: "TooManyRequests", 504: "Timeout"}.get(fault, "InternalError")
                return self.send_status(status_obj(fault, reason, "injected fault"))
            if path.startswith("/_fake/"):
                return self.fake(path)
            if self.command == "GET" and path in DISCOVERY:
                return self.send_json(200, DISCOVERY[path]())
            if self.command == "GET" and path == "/openapi/v2":
                # An empty Document: clients parse it and find no models,
                # so they validate nothing client-side and fall back to
                # their compiled-in types for strategic merge.
                self.send_response(200)
                self.send_header("Content-Type",
                                 "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return self.log_line(200)
            if self.command == "GET" and path in ("/healthz", "/livez", "/readyz"):
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return self.log_line(200)
            return self.api(path, q)
        except ApiError as e:
            return self.send_status(e.status)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: say so as the real server would
            import traceback
            traceback.print_exc()
            return self.send_status(status_obj(500, "InternalError",
                                               "Internal error occurred: %s" % e))

    def api(self, path, q):
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v1"] or len(parts) < 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        rest = parts[2:]
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in RESOURCES \
                and RESOURCES[rest[2]][1]:
            ns = rest[1]
            rest = rest[2:]
        resource = rest[0]
        if resource not in RESOURCES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        namespaced = RESOURCES[resource][1]
        if not namespaced and ns is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub is not None and not (
                (sub == "status" and resource not in ("secrets", "events"))
                or (sub == "log" and resource == "pods"))):
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        store = self.server.store
        key_ns = (ns or "") if namespaced else ""
        verb = self.command
        self.server.store.count("%s %s%s" % (verb, resource, "/" + sub if sub else ""))
        if name is None:
            lsel = parse_label_selector(q.get("labelSelector"))
            fsel = parse_field_selector(resource, q.get("fieldSelector"))
            if verb in ("GET", "HEAD"):
                if q.get("watch") in ("1", "true"):
                    return self.watch(resource, ns if namespaced else None, lsel, fsel, q)
                items, rv = store.list(resource, ns if namespaced else None, lsel, fsel)
                items, meta = self.paginate(items, rv, q)
                return self.send_list(resource, items, meta, q)
            if verb == "POST":
                if namespaced and ns is None:
                    raise ApiError(405, "MethodNotAllowed",
                                   "the server does not allow this method on the requested "
                                   "resource")
                obj = store.create(resource, key_ns, self.read_json())
                return self.send_obj(201, resource, obj, q)
            if verb == "DELETE":
                self.read_body()
                items, rv = store.delete_collection(resource, ns if namespaced else None,
                                                    lsel, fsel)
                return self.send_list(resource, items, rv, {})
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        if namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if sub == "log":
            if verb != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this "
                               "method on the requested resource")
            body = store.pod_log(key_ns, name).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return self.log_line(200)
        if verb in ("GET", "HEAD"):
            return self.send_obj(200, resource, store.get(resource, key_ns, name), q)
        if verb == "PUT":
            obj = store.replace(resource, key_ns, name, self.read_json(), sub)
            return self.send_obj(200, resource, obj, q)
        if verb == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                self.read_body()
                raise ApiError(415, "UnsupportedMediaType",
                               "server-side apply is not supported by the fake API server")
            obj = store.patch(resource, key_ns, name, ctype, self.read_json(), sub)
            return self.send_obj(200, resource, obj, q)
        if verb == "DELETE":
            body = self.read_json(allow_empty=True)
            obj = store.delete(resource, key_ns, name, body if isinstance(body, dict) else None)
            return self.send_obj(200, resource, obj, q)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def send_obj(self, code, resource, obj, q):
        if wants_table(self.headers.get("Accept")):
            return self.send_json(code, as_table(resource, [obj], obj["metadata"].get(
                "resourceVersion", ""), q.get("includeObject")))
        return self.send_json(code, obj)

    def paginate(self, items, rv, q):
        """limit and continue, as the real server pages a list. The token
        holds the first page's resourceVersion and the last key served;
        unlike the real server, later pages show the current state after
        that key, not a snapshot (clients cannot rely on either)."""
        meta = {"resourceVersion": rv}
        cont = q.get("continue")
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                start, trv = list(tok["start"]), int(tok["rv"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid: %s" % cont)
            if trv < self.server.store.history_floor:
                raise ApiError(410, "Expired",
                               "The provided continue parameter is too old to display a "
                               "consistent list result. You can start a new list without the "
                               "continue parameter.")
            items = [o for o in items if [o["metadata"].get("namespace", ""),
                                         o["metadata"]["name"]] > start]
            meta["resourceVersion"] = str(trv)
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            limit = 0
        if 0 < limit < len(items):
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            last = items[-1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"rv": meta["resourceVersion"],
                 "start": [last.get("namespace", ""), last["name"]]}).encode()).decode().rstrip("=")
        return items, meta

    def send_list(self, resource, items, meta, q):
        if not isinstance(meta, dict):
            meta = {"resourceVersion": meta}
        if wants_table(self.headers.get("Accept")):
            t = as_table(resource, items, meta["resourceVersion"], q.get("includeObject"))
            t["metadata"] = meta
            return self.send_json(200, t)
        # Real list responses carry no kind/apiVersion on their items.
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return self.send_json(200, {"kind": RESOURCES[resource][0] + "List",
                                    "apiVersion": "v1",
                                    "metadata": meta, "items": items})

    def watch(self, resource, ns, lsel, fsel, q):
        rv = q.get("resourceVersion")
        since = None
        if rv not in (None, "", "0"):
            try:
                since = int(rv)
            except ValueError:
                raise ApiError(400, "BadRequest", 'invalid resource version: "%s"' % rv)
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            timeout = 0
        # The real server bounds a watch at 30-60 minutes when the client
        # asks for nothing; tests never want that long.
        deadline = time.time() + (timeout if timeout > 0 else 1800)
        table = wants_table(self.headers.get("Accept"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.log_line(200)
        gone = [False]

        def alive():
            # A watching client sends nothing: a readable socket means it
            # hung up, and the watch ends now rather than at the next event.
            if not gone[0]:
                try:
                    if select.select([self.connection], [], [], 0)[0]:
                        gone[0] = True
                except (OSError, ValueError):
                    gone[0] = True
            return not gone[0] and not self.server.stopping

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        try:
            for etype, obj in self.server.store.watch_events(resource, ns, lsel, fsel, since,
                                                             deadline, alive):
                if table and etype != "ERROR":
                    obj = as_table(resource, [obj], obj["metadata"]["resourceVersion"],
                                   q.get("includeObject"))
                chunk(json.dumps({"type": etype, "object": obj}).encode() + b"\n")
            chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            gone[0] = True
            self.close_connection = True

    def fake(self, path):
        store = self.server.store
        parts = path.strip("/").split("/")
        if self.command == "POST" and len(parts) == 5 and parts[1] == "pods" \
                and parts[4] == "status":
            body = self.read_json()
            return self.send_json(200, store.pod_status(parts[2], parts[3], body))
        if self.command == "POST" and path == "/_fake/quota":
            body = self.read_json()
            n = body.get("pods") if isinstance(body, dict) else "?"
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
                raise ApiError(400, "BadRequest", 'the quota switch takes {"pods": N or null}')
            store.quota_pods = None if n is None or n < 0 else n
            return self.send_json(200, {"pods": store.quota_pods})
        if self.command == "POST" and path == "/_fake/compact":
            self.read_body()
            store.compact()
            return self.send_json(200, {"resourceVersion": str(store.rv)})
        if self.command == "POST" and path == "/_fake/fail":
            body = self.read_json()
            try:
                store.add_fault(int(body.get("code", 503)), int(body.get("count", 1)),
                                str(body.get("match", "")))
            except (AttributeError, TypeError, ValueError):
                raise ApiError(400, "BadRequest", 'the fail switch takes {"code": N, '
                               '"count": N, "match": "..."}')
            return self.send_json(200, {"ok": True})
        if self.command == "GET" and path == "/_fake/requests":
            return self.send_json(200, dict(store.counts))
        raise ApiError(404, "NotFound", "no such test switch: %s %s" % (self.command, path), {})


def _take_fault(self, what):
    with self.lock:
        for f in self.faults:
            if f[1] > 0 and f[2] in what:
                f[1] -= 1
                return f[0]
    return None


def _add_fault(self, code, count, match):
    with self.lock:
        self.faults.append([code, count, match])


def _count(self, what):
    with self.lock:
        self.counts[what] += 1


Store.take_fault = _take_fault
Store.add_fault = _add_fault
Store.count = _count


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stopping = False

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # slow or broken client never holds up accept().
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if self.logf:
                with self.log_lock:
                    self.logf.write("%s TLS handshake failed: %s\n" % (now_rfc3339(), e))
                    self.logf.flush()
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def parse_nodes(spec):
    out = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, n = part.partition("=")
        if not DNS1123_SUBDOMAIN.match(name):
            sys.exit("fake_apiserver: bad node name in --nodes: %r" % name)
        try:
            out.append((name, int(n or "0")))
        except ValueError:
            sys.exit("fake_apiserver: bad GPU count in --nodes: %r" % part)
    return out


def main():
    ap = argparse.ArgumentParser(description="fake Kubernetes API server for tests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--nodes", default="gpu-1=8,gpu-2=4")
    ap.add_argument("--gpu-resource", default="nvidia.com/gpu")
    ap.add_argument("--auto-run", action="store_true")
    ap.add_argument("--history", type=int, default=1000,
                    help="watch events kept for resuming (older: 410 Expired)")
    ap.add_argument("--log")
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(cafile=a.client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])

    srv = Server(("127.0.0.1", 0), Handler)
    srv.ssl_ctx = ctx
    srv.token = a.token
    srv.logf = open(a.log, "a") if a.log else None
    srv.log_lock = threading.Lock()
    srv.store = Store(parse_nodes(a.nodes), a.gpu_resource, a.auto_run, max(1, a.history))
    port = srv.server_address[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, a.port_file)

    import signal

    def stop(*_):
        srv.stopping = True
        with srv.store.lock:
            srv.store.lock.notify_all()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
