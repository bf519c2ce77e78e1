"""The baselines for the benches: bare FastAPI endpoints that read and parse the same request
and do nothing else (no auth, no validation, no database). bench/ingest.py uses the usage
route, bench/authorize.py the authorize route."""

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


@app.post("/v1/gateway/authorize")
async def authorize(request: Request) -> dict[str, object]:
    """FastAPI parsing a JSON body and returning a dict (its default JSON response)."""
    body = await request.json()
    return {"allowed": True, "hold_id": "hold_" + body["request_id"], "remaining": {"credit_cents": 1}}


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
