-- One version for the fleet. Every committed write of nodes, deployments, users,
-- API tokens or cluster secrets adds one to `version`, and the nodes and deployments
-- it wrote carry it, so that a replica reads only what changed since the version
-- it knows. `nodes_removed_at` and `access_changed_at` are the versions of the last
-- node removal and the last change of access (users, tokens, secrets).
CREATE TABLE cluster_version (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    version           BIGINT NOT NULL,
    nodes_removed_at  BIGINT NOT NULL,
    access_changed_at BIGINT NOT NULL
);
INSERT INTO cluster_version (id, version, nodes_removed_at, access_changed_at) VALUES (1, 1, 1, 1);

ALTER TABLE nodes ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE deployments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX nodes_by_version ON nodes (version);
CREATE INDEX deployments_by_version ON deployments (version);
