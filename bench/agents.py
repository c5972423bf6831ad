#!/usr/bin/env python3
"""Measures a control plane holding a fleet of agents (bench/fleet-agents).

Waits until AGENTS nodes are online, samples the server's CPU and RSS at rest for
SETTLE seconds, then deploys RATE deployments a second for SECONDS seconds and
records, for each, the time from its POST to the first listing that shows it
running. Prints one JSON object."""
import json
import sys
import threading
import time
import urllib.request

base, token, pid, agents, rate, seconds, settle = sys.argv[1:8]
pid, agents, rate, seconds, settle = int(pid), int(agents), int(rate), int(seconds), float(settle)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
ticks = 100.0  # CLK_TCK on Linux


def get(path):
    """Every item of a paged list."""
    items, cursor = [], None
    while True:
        url = f"{base}{path}?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            items += json.load(r)
            cursor = r.headers.get("X-Next-Cursor")
        if not cursor:
            return items


def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


deadline = time.time() + 900
while True:
    online = sum(1 for n in get("/api/v1/nodes") if n["status"] == "online")
    if online >= agents:
        break
    if time.time() > deadline:
        sys.exit(f"only {online} of {agents} agents came online")
    time.sleep(1)

c0, t0 = cpu_seconds(), time.time()
time.sleep(settle)
rest_cores = (cpu_seconds() - c0) / (time.time() - t0)
rest_rss = rss_mb()

sent, running, errors = {}, {}, []
done = threading.Event()


def watch():
    while not done.is_set():
        now = time.time()
        for d in get("/api/v1/deployments"):
            if d["status"] == "running" and d["deployment_id"] not in running:
                running[d["deployment_id"]] = now
        time.sleep(0.1)


watcher = threading.Thread(target=watch)
watcher.start()
total = rate * seconds
start = time.time()
c1 = cpu_seconds()


def deploy(i):
    name = f"lat-{i}"
    body = json.dumps({"deployment_id": name, "template_id": "bench",
                       "rendered_compose": "services:\n  app:\n    image: busybox\n",
                       "requirements": {"cpus": 0.5}}).encode()
    sent[name] = time.time()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/v1/deployments", data=body,
                                                      headers=headers, method="POST")).read()
    except Exception as err:  # counted, not fatal
        errors.append(str(err))


threads = []
for i in range(total):
    wait = start + i / rate - time.time()
    if wait > 0:
        time.sleep(wait)
    t = threading.Thread(target=deploy, args=(i,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
load_cores = (cpu_seconds() - c1) / (time.time() - start)
end = time.time() + 60
while len(running) < total - len(errors) and time.time() < end:
    time.sleep(0.2)
done.set()
watcher.join()
latencies = sorted(running[k] - sent[k] for k in running if k in sent)


def pct(p):
    return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000) if latencies else None


print(json.dumps({
    "agents": agents, "rest_cpu_cores": round(rest_cores, 3), "rest_rss_mb": round(rest_rss, 1),
    "deploys": total, "rate": rate, "deploy_cpu_cores": round(load_cores, 3),
    "running": len(latencies), "errors": len(errors),
    "deploy_to_running_p50_ms": pct(0.50), "deploy_to_running_p99_ms": pct(0.99),
}))
