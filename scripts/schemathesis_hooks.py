"""Schemathesis hooks for prefeval's contract run (loaded by scripts/schemathesis.sh).

schemathesis has no serializer for `application/x-ndjson`, the body of POST /v1/evaluate/stream:
a generated list (or one object) becomes one JSON document per line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
