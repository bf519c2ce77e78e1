"""The baseline for bench/ingest.py: a bare FastAPI endpoint that reads and parses the same
usage batch and does nothing else (no auth, no validation, no database)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/v1/gateway/usage")
async def usage(request: Request) -> Response:
    events = orjson.loads(await request.body())["events"]
    body = orjson.dumps({"accepted": len(events), "duplicates": 0, "rejected": []})
    return Response(body, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
