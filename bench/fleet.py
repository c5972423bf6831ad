"""Fills a migrated MIaaS SQLite database with N nodes and M deployments placed on
them, directly (faster than the API), for the memory and start-up figures."""
import json
import random
import sqlite3
import sys
import time
import uuid

path, nodes, deployments = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
now = time.time()
caps = json.dumps({"os": "linux", "cpu_count": 64, "mem_mb": 256000, "disk_mb": 1000000,
                   "gpus": [], "docker": {"version": "24.0.0", "available": True}})
ids = [str(uuid.uuid4()) for _ in range(nodes)]
db.executemany(
    "INSERT INTO nodes (id, name, ip, capabilities, tags, token_hash, registered_at, last_seen,"
    " metrics, schedulable) VALUES (?, ?, '10.0.0.1', ?, '[\"zone=a\"]', ?, ?, ?, NULL, 1)",
    [(node_id, f"fleet-{i:06d}", caps, uuid.uuid4().hex + uuid.uuid4().hex, now, now)
     for i, node_id in enumerate(ids)])
compose = "services:\n  web:\n    image: nginx:1.27\n"
requirements = json.dumps({"cpus": 0.1, "mem_mb": 64, "disk_mb": 0, "gpus": 0, "tags": []})
rows = []
for i in range(deployments):
    node_id = ids[i % nodes]
    message = f"Deployment 'web' on node {node_id}"
    rows.append((f"fleet-{i:07d}", "web", compose, json.dumps({"MODE": "fleet"}), "apply",
                 "running", message, node_id, None, requirements, "[]", None, 1,
                 now + i * 1e-6, now + i * 1e-6))
db.executemany(
    "INSERT INTO deployments (deployment_id, template_id, rendered_compose, env, action, status,"
    " message, node_id, previous_node_id, requirements, gpu_ids, placement, revision, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
db.commit()
