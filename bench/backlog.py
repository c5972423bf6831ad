"""Creates a backlog of deployments on the server at BASE (the operator API token in
BENCH_TOKEN): COUNT of them, a quarter asking for more than any node has (they stay
pending), over 8 keep-alive connections."""
import http.client
import json
import os
import sys
import threading
import urllib.parse

base, count = sys.argv[1], int(sys.argv[2])
url = urllib.parse.urlsplit(base)
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["BENCH_TOKEN"]}
failures = []


def create(worker, workers):
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    for i in range(worker, count, workers):
        body = json.dumps({
            "deployment_id": f"backlog-{i:06d}", "template_id": "web",
            "rendered_compose": "services:\n  web:\n    image: nginx\n",
            "requirements": {"cpus": 1000 if i % 4 == 0 else 0.001, "mem_mb": 1},
        })
        connection.request("POST", "/api/v1/deployments", body, headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status >= 300:
            failures.append(answer.status)


threads = [threading.Thread(target=create, args=(w, 8)) for w in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
if failures:
    sys.exit(f"{len(failures)} deployments refused, e.g. {failures[0]}")
