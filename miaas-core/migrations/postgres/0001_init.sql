-- Nodes and deployments. Times are Unix epoch seconds; JSON is stored as TEXT so
-- both backends map rows the same way.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    ip            TEXT NOT NULL,
    capabilities  TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    token_hash    TEXT NOT NULL UNIQUE,
    registered_at DOUBLE PRECISION NOT NULL,
    last_seen     DOUBLE PRECISION NOT NULL,
    metrics       TEXT,
    schedulable   BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE deployments (
    deployment_id    TEXT PRIMARY KEY NOT NULL,
    template_id      TEXT NOT NULL,
    rendered_compose TEXT NOT NULL,
    env              TEXT NOT NULL DEFAULT '{}',
    action           TEXT NOT NULL,
    status           TEXT NOT NULL,
    message          TEXT NOT NULL,
    node_id          TEXT REFERENCES nodes(id) ON DELETE SET NULL,
    previous_node_id TEXT REFERENCES nodes(id) ON DELETE SET NULL,
    requirements     TEXT NOT NULL DEFAULT '{}',
    gpu_ids          TEXT NOT NULL DEFAULT '[]',
    placement        TEXT,
    revision         BIGINT NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL
);

CREATE INDEX deployments_by_created ON deployments (created_at, deployment_id);
CREATE INDEX deployments_by_node ON deployments (node_id);
CREATE INDEX deployments_by_status ON deployments (status);
CREATE INDEX deployments_by_previous_node ON deployments (previous_node_id);
