#!/usr/bin/env python3
"""Captures the protobuf request bodies that real kubectl (>= 1.32) sends for `kubectl create <generator>`.

It starts a tiny fake API server on 127.0.0.1, runs each command below against it with the kubectl
binary given as the first argument (default: kubectl.1.33 beside the `kubectl` on PATH), and writes
each POST body to crates/skiff-api/src/protobuf/testdata/<case>.pb. It then runs the same commands
with kubectl 1.31, which still sends JSON, and writes that body (nulls removed, sorted, pretty) to
<case>.json: the object the decoder must produce from the protobuf body.

    python3 tools/protoschema/capture.py [/path/to/kubectl.1.33 [/path/to/kubectl.1.31]]

`secret_tls` uses a fresh self-signed pair each run, so the two bodies always agree with each other
but change between runs.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "skiff-api", "src", "protobuf", "testdata")

# (case name, kubectl arguments after `create`)
CASES = [
    ("namespace", ["namespace", "team-a"]),
    ("deployment", ["deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=80"]),
    ("deployment_zero", ["deployment", "idle", "--image=busybox", "--replicas=0", "--", "sleep", "3600"]),
    ("configmap", ["configmap", "cm2", "--from-literal=a=1", "--from-literal=empty=", "--from-file=app.properties"]),
    ("configmap_binary", ["configmap", "bin", "--from-file=blob.bin"]),
    ("secret_generic", ["secret", "generic", "s1", "--from-literal=password=s3cr3t"]),
    ("secret_tls", ["secret", "tls", "tls1", "--cert=tls.crt", "--key=tls.key"]),
    ("secret_docker", ["secret", "docker-registry", "reg", "--docker-server=r.example", "--docker-username=u",
                       "--docker-password=p"]),
    ("service_clusterip", ["service", "clusterip", "svc1", "--tcp=8080:80"]),
    ("service_headless", ["service", "clusterip", "hl", "--clusterip=None"]),
    ("service_nodeport", ["service", "nodeport", "np1", "--tcp=8080:http", "--node-port=30080"]),
    ("service_externalname", ["service", "externalname", "ext", "--external-name=example.com"]),
    ("job", ["job", "j1", "--image=busybox", "--", "echo", "hi"]),
    ("cronjob", ["cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--restart=OnFailure", "--",
                 "date"]),
    ("serviceaccount", ["serviceaccount", "sa1"]),
    ("quota", ["quota", "q1", "--hard=cpu=1,memory=1Gi,pods=10", "--scopes=BestEffort"]),
    ("priorityclass", ["priorityclass", "pc0", "--value=0", "--description=zero", "--preemption-policy=Never"]),
    ("pdb", ["poddisruptionbudget", "pdb1", "--selector=app=web", "--min-available=0"]),
    ("role", ["role", "r1", "--verb=get,list", "--resource=pods,deployments.apps"]),
    ("ingress", ["ingress", "ing1", "--class=nginx", "--rule=foo.example/bar*=svc1:8080"]),
    ("deployment_multi", ["deployment", "multi", "--image=nginx", "--image=redis:7", "--namespace=team-a"]),
    ("service_loadbalancer", ["service", "loadbalancer", "lb", "--tcp=443:8443"]),
    ("secret_typed", ["secret", "generic", "typed", "--type=example.com/custom", "--from-literal=k=v"]),
    ("clusterrole", ["clusterrole", "cr1", "--verb=get", "--non-resource-url=/healthz"]),
    ("rolebinding", ["rolebinding", "rb1", "--role=r1", "--user=alice", "--serviceaccount=default:sa1"]),
    ("clusterrolebinding", ["clusterrolebinding", "crb1", "--clusterrole=cr1", "--group=devs"]),
    ("token", ["token", "sa1", "--duration=10m", "--audience=api"]),
]

FILES = {
    "app.properties": b"hello=1\n",
    "blob.bin": bytes([0, 1, 2, 254, 255]),
}

captured = []

# Just enough legacy discovery for `create role --resource=...` to resolve its resources.
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"]}]},
    "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
         "verbs": ["get", "list"]}]},
}


def envelope_type(body):
    """Best-effort apiVersion/kind from the k8s\\0 envelope, for a plausible JSON reply."""
    try:
        i = 4 + 2  # tag 0x0a + one-byte length of TypeMeta
        end = i + body[5]
        vals = []
        while i < end:
            n = body[i + 1]
            vals.append(body[i + 2:i + 2 + n].decode())
            i += 2 + n
        return vals[0], vals[1]
    except Exception:  # noqa: BLE001 - only a reply cosmetic
        return "v1", "Status"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, obj, code=200):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/version"):
            return self.reply({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        path = self.path.split("?")[0]
        if path in DISCOVERY:
            return self.reply(DISCOVERY[path])
        self.reply({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"}, 404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        captured.append((self.headers.get("Content-Type"), body))
        api_version, kind = envelope_type(body)
        self.reply({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "default"}}, 201)


def drop_nulls(value):
    """JSON bodies carry `creationTimestamp: null`; protobuf has no null, so the decoder omits it."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def main():
    bindir = os.path.dirname(os.path.realpath(shutil.which("kubectl")))
    kubectl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(bindir, "kubectl.1.33")
    kubectl_json = sys.argv[2] if len(sys.argv) > 2 else os.path.join(bindir, "kubectl.1.31")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % server.server_address[1]
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in FILES.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        # A throwaway self-signed pair, so `create secret tls` accepts it.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=test", "-keyout", os.path.join(tmp, "tls.key"),
                        "-out", os.path.join(tmp, "tls.crt")], check=True, capture_output=True)
        for case, args in CASES:
            bodies = {}
            for binary, content_type in ((kubectl, "application/vnd.kubernetes.protobuf"),
                                         (kubectl_json, "application/json")):
                captured.clear()
                cmd = [binary, "--server=" + url, "--kubeconfig=/dev/null", "create"] + args
                res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=60)
                posts = [b for ct, b in captured if ct == content_type]
                if not posts:
                    print("%-22s NO %s BODY (exit %d): %s" % (case, content_type, res.returncode, res.stderr.strip()))
                    break
                bodies[content_type] = posts[-1]
            if len(bodies) < 2:
                continue
            with open(os.path.join(OUT, case + ".pb"), "wb") as f:
                f.write(bodies["application/vnd.kubernetes.protobuf"])
            expected = drop_nulls(json.loads(bodies["application/json"]))
            with open(os.path.join(OUT, case + ".json"), "w") as f:
                f.write(json.dumps(expected, indent=2, sort_keys=True) + "\n")
            print("%-22s %d bytes" % (case, len(bodies["application/vnd.kubernetes.protobuf"])))
    server.shutdown()


if __name__ == "__main__":
    main()
