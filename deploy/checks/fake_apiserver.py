#!/usr/bin/env python3
"""A stand-in Kubernetes API server for `kubectl apply --dry-run=client` in deploy/validate.sh.

kubectl's client-side dry run still asks a server which kinds exist (discovery) and whether
each object exists (a GET); this answers both for the kinds deploy/kubernetes uses, and 404 to
every object GET, so kubectl itself builds, maps and prints every object as it would on a
cluster with none of them. It listens on 127.0.0.1 only, records every request, and refuses
writes (a client dry run sends none; a write means the dry run was not one).

  fake_apiserver.py PORT_FILE LOG_FILE     (writes the port it listens on to PORT_FILE)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
# group -> (version, [(plural, kind, namespaced)])
RESOURCES = {
    "": ("v1", [("namespaces", "Namespace", False), ("configmaps", "ConfigMap", True),
                ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True),
                ("secrets", "Secret", True)]),
    "apps": ("v1", [("deployments", "Deployment", True)]),
    "policy": ("v1", [("poddisruptionbudgets", "PodDisruptionBudget", True)]),
    "autoscaling": ("v2", [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)]),
    "networking.k8s.io": ("v1", [("networkpolicies", "NetworkPolicy", True)]),
}


def resource_list(group, version, items):
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [{"name": p, "singularName": k.lower(), "namespaced": ns, "kind": k,
                           "verbs": VERBS} for p, k, ns in items]}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(sys.argv[2], "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"],
                                   "serverAddressByClientCIDRs": []})
        if path == "/api/v1":
            return self.send(200, resource_list("", "v1", RESOURCES[""][1]))
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                       "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                      for g, (v, _) in RESOURCES.items() if g]
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for g, (v, items) in RESOURCES.items():
            if g and path == f"/apis/{g}/{v}":
                return self.send(200, resource_list(g, v, items))
        if path == "/version":
            return self.send(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0"})
        self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": f"{path} not found"})

    def refuse(self):
        self.send(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "MethodNotAllowed", "code": 405,
                        "message": "fake_apiserver: writes are refused (dry run only)"})

    do_POST = do_PUT = do_PATCH = do_DELETE = refuse


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
