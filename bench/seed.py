"""Registers N nodes on the server (with the join token in BENCH_JOIN) and writes their ids
and tokens as a Lua table."""
import os
import json
import sys
import urllib.request

base, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = []
for i in range(count):
    body = json.dumps({
        "name": f"seed-{i:06d}", "ip": "10.0.0.1",
        "capabilities": {"os": "linux", "cpu_count": 64, "mem_mb": 256000, "disk_mb": 1000000,
                         "docker": {"version": "24.0.0", "available": True}},
    }).encode()
    req = urllib.request.Request(f"{base}/api/v1/nodes/register", data=body,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + os.environ["BENCH_JOIN"]})
    with urllib.request.urlopen(req) as answer:
        reg = json.load(answer)
    rows.append('{"%s", "%s"}' % (reg["node_id"], reg["node_token"]))
with open(out, "w") as f:
    f.write("nodes = {\n" + ",\n".join(rows) + "\n}\n")
