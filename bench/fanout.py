"""Event fan-out: FOLLOWERS clients follow GET /api/v1/events (NDJSON, one
connection each) on the server at BASE (operator API token in BENCH_TOKEN) while
DEPLOYS deployments are created, one at a time. Prints one JSON line: how many
events reached how many followers, the deliveries per second, and the latency from
a deploy's answer to its `deployment.accepted` event at each follower (p50, p99)."""
import asyncio
import json
import os
import sys
import time
import urllib.parse

base, followers, deploys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
url = urllib.parse.urlsplit(base)
token = os.environ["BENCH_TOKEN"]
run = f"fan{int(time.time())}"
answered = {}       # deployment id -> when its POST was answered
latencies = []      # seconds, one per (follower, deployment)
delivered = 0


async def follow(ready, done):
    global delivered
    reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=1 << 20)
    writer.write((f"GET /api/v1/events?topic=deployment HTTP/1.1\r\nHost: {url.netloc}\r\n"
                  f"Authorization: Bearer {token}\r\nAccept: application/x-ndjson\r\n\r\n").encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        sys.exit(f"a follower was refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    ready.release()
    seen = 0
    while seen < deploys:
        size = await reader.readline()          # chunked: size line, data, CRLF
        if not size:
            return
        chunk = await reader.readexactly(int(size.strip(), 16) + 2)
        now = time.monotonic()
        for line in chunk.split(b"\n"):
            if b'"deployment.accepted"' not in line:
                continue
            start = line.find(b'"subject":"') + 11
            subject = line[start:line.find(b'"', start)].decode()
            delivered += 1
            seen += 1
            if subject in answered:
                latencies.append(now - answered[subject])
    done.release()
    writer.close()


async def deploy_all():
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    for i in range(deploys):
        ident = f"{run}-{i:05d}"
        body = json.dumps({"deployment_id": ident, "template_id": "web",
                           "rendered_compose": "services:\n  web:\n    image: nginx\n",
                           "requirements": {"cpus": 0.001, "mem_mb": 1}}).encode()
        writer.write((f"POST /api/v1/deployments HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await writer.drain()
        status = await reader.readline()
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        await reader.readexactly(length)
        answered[ident] = time.monotonic()
        if b" 202 " not in status:
            sys.exit(f"deploy refused: {status!r}")
        await asyncio.sleep(0.005)
    writer.close()


async def main():
    ready, done = asyncio.Semaphore(0), asyncio.Semaphore(0)
    tasks = [asyncio.create_task(follow(ready, done)) for _ in range(followers)]
    for _ in range(followers):
        await ready.acquire()
    start = time.monotonic()
    await deploy_all()
    try:
        for _ in range(followers):
            await asyncio.wait_for(done.acquire(), timeout=60)
    except asyncio.TimeoutError:
        pass
    took = time.monotonic() - start
    for task in tasks:
        task.cancel()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
    print(json.dumps({"followers": followers, "deploys": deploys, "delivered": delivered,
                      "expected": followers * deploys,
                      "deliveries_per_s": round(delivered / took),
                      "p50_ms": round(pick(0.5) * 1000, 2), "p99_ms": round(pick(0.99) * 1000, 2)}))

asyncio.run(main())
