-- Who created each API token: its tokens are revoked when that user is removed.
ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
