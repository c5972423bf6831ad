-- Templates stored through the API, every version kept (a deployment records the
-- version it was rendered from); removing a template marks all its versions, so a
-- template made again under the same id continues the numbering.
CREATE TABLE templates (
    id         TEXT NOT NULL,
    version    BIGINT NOT NULL,
    spec       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    removed_at DOUBLE PRECISION,
    PRIMARY KEY (id, version)
);

-- A deployment rendered by the server from a template: its parameters (secrets
-- shown as ***; their values are in env) and the template's version.
ALTER TABLE deployments ADD COLUMN params TEXT;
ALTER TABLE deployments ADD COLUMN template_version BIGINT;
