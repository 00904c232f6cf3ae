#!/usr/bin/env python3
"""Register service instances through /v1/catalog/register and report the agent's RSS per
instance. bench/instances.sh starts the agent and runs this; see there.

usage: instances.py ADDR PID [INSTANCES] [PER_NODE]
"""
import http.client
import json
import sys
import threading
import time

addr, pid = sys.argv[1], int(sys.argv[2])
instances = int(sys.argv[3]) if len(sys.argv) > 3 else 30000
per_node = int(sys.argv[4]) if len(sys.argv) > 4 else 3
host, port = addr.split(":")


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def body(i):
    n = i // per_node
    return json.dumps({
        "Node": f"node-{n}",
        "Address": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
        "NodeMeta": {"rack": f"r{n % 20}"},
        "Service": {
            "ID": f"web-{i}",
            "Service": f"web-{i % 1000}",
            "Port": 8000 + i % per_node,
            "Tags": ["v1", "primary"],
            "Meta": {"version": "1.2.3"},
        },
        "Check": {
            "CheckID": f"service:web-{i}",
            "Name": "http",
            "Status": "passing",
            "ServiceID": f"web-{i}",
            "Output": "HTTP GET http://localhost/health: 200 OK",
        },
    }).encode()


def worker(lo, hi):
    c = http.client.HTTPConnection(host, int(port))
    for i in range(lo, hi):
        c.request("PUT", "/v1/catalog/register", body(i))
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"register {i}: {r.status}")


rss0 = rss_kib()
t0 = time.time()
threads = []
step = (instances + 7) // 8
for lo in range(0, instances, step):
    t = threading.Thread(target=worker, args=(lo, min(lo + step, instances)))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
took = time.time() - t0
time.sleep(2)
rss1 = rss_kib()
print(f"{instances} instances ({instances // per_node} nodes, {instances} checks) registered "
      f"in {took:.1f}s")
print(f"agent RSS {rss0 / 1024:.1f} MiB -> {rss1 / 1024:.1f} MiB: "
      f"{(rss1 - rss0) * 1024 / instances:.0f} bytes per instance")
