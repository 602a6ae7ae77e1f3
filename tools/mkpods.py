#!/usr/bin/env python3
"""Creates N pods in a running skiff (16 HTTPS clients), for the memory measurement in
BENCHMARKS.md: python3 tools/mkpods.py DATA_DIR PORT N"""
import http.client, json, ssl, sys, threading, time

data, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
token = open(f"{data}/pki/admin.token").read().strip()
ctx = ssl.create_default_context(cafile=f"{data}/pki/ca.crt")
CLIENTS = 16


def worker(i):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
    for k in range(i, n, CLIENTS):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{k}", "labels": {"app": "x"}},
               "spec": {"containers": [{"name": "c", "image": "nginx",
                                        "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]}}
        c.request("POST", "/api/v1/namespaces/default/pods", json.dumps(pod),
                  {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            print("create failed:", r.status)


t0 = time.time()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"created {n} pods in {time.time() - t0:.1f} s")
