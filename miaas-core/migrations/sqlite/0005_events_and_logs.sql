-- The event log: every change of nodes, deployments and access becomes one event.
-- `event_cursor` hands out cursors under its row lock, so cursors grow in commit
-- order on every replica; `pruned_through` is the last cursor retention removed
-- (a follower asking for events after an older cursor has missed some).
CREATE TABLE event_cursor (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    latest         BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO event_cursor (id, latest, pruned_through) VALUES (1, 0, 0);

CREATE TABLE events (
    id         BIGINT PRIMARY KEY NOT NULL,
    at         REAL NOT NULL,
    kind       TEXT NOT NULL,
    topic      TEXT NOT NULL,
    body       TEXT NOT NULL,
    -- the same transition seen by two replicas (a node going offline) is one event
    dedupe_key TEXT UNIQUE
);
CREATE INDEX events_by_at ON events (at);

-- Log sessions: a viewer asks for a deployment's logs (on any replica), the node's
-- agent learns of it through its long-poll and sends the lines up (to any replica).
CREATE TABLE log_sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    node_id        TEXT NOT NULL,
    deployment_id  TEXT NOT NULL,
    request        TEXT NOT NULL,
    opened_at      REAL NOT NULL,
    viewer_seen_at REAL NOT NULL,
    ended_at       REAL,
    end_reason     TEXT
);
CREATE INDEX log_sessions_by_node ON log_sessions (node_id);

CREATE TABLE log_lines (
    session_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
