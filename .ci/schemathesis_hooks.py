"""Schemathesis hooks for the MIaaS API (loaded with SCHEMATHESIS_HOOKS).

- Node log uploads are NDJSON (`application/x-ndjson`): one JSON value per line.
- `GET /api/v1/events` follows the log by default (a stream that never ends,
  tested by the end-to-end suites); here it is asked for one page, so that the
  response can be read whole and checked against the schema.
"""
import json

import schemathesis


def _ndjson(value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@schemathesis.serializer("application/x-ndjson")
class NdjsonSerializer:
    def as_requests(self, context, value):
        return {"data": _ndjson(value)}

    def as_werkzeug(self, context, value):
        return {"data": _ndjson(value)}


@schemathesis.hook
def before_call(context, case):
    if case.method.upper() == "GET" and case.path == "/api/v1/events":
        case.query = dict(case.query or {})
        case.query["follow"] = "false"
