"""What the proxy knows of each endpoint's wire format: the output ceiling a request asks for,
the usage an answer reports, and the events of its stream.

Only these fields are read; the request is forwarded as it came (apart from the model name and,
for chat streams, `stream_options.include_usage`), the answer as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from creditgate.proxy.errors import ANTHROPIC, OPENAI
from creditgate.workflows.proxy_calls import Usage, estimate_output_tokens


@dataclass(frozen=True)
class Endpoint:
    family: str  # "openai" | "anthropic": the upstream provider and the error shape
    path: str  # appended to the upstream's base URL
    kind: str  # "chat" | "responses" | "embeddings" | "messages"


CHAT = Endpoint(OPENAI, "/chat/completions", "chat")
RESPONSES = Endpoint(OPENAI, "/responses", "responses")
EMBEDDINGS = Endpoint(OPENAI, "/embeddings", "embeddings")
MESSAGES = Endpoint(ANTHROPIC, "/v1/messages", "messages")


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def requested_output(endpoint: Endpoint, body: dict[str, Any]) -> int | None:
    """The output ceiling the request sets (None: the model's maximum); embeddings make none."""
    if endpoint.kind == "embeddings":
        return 0
    if endpoint.kind == "chat":
        ceiling = _count(body.get("max_completion_tokens"))
        ceiling = ceiling if ceiling is not None else _count(body.get("max_tokens"))
        choices = _count(body.get("n")) or 1
        return None if ceiling is None else ceiling * choices
    if endpoint.kind == "responses":
        return _count(body.get("max_output_tokens"))
    return _count(body.get("max_tokens"))


def usage_of(endpoint: Endpoint, answer: Any) -> Usage | None:
    """The usage a non-streamed answer reports (None when it has none)."""
    usage = _get(answer, "usage")
    if not isinstance(usage, dict):
        return None
    if endpoint.kind == "messages":
        return _anthropic_usage(usage, None)
    if endpoint.kind == "responses":
        inp, out = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        cached = _count(_get(usage, "input_tokens_details", "cached_tokens")) or 0
    else:
        inp, out = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")) or 0
        cached = _count(_get(usage, "prompt_tokens_details", "cached_tokens")) or 0
    if inp is None or out is None:
        return None
    return Usage(inp, out, cached)


def _anthropic_usage(usage: dict[str, Any], known_input: int | None) -> Usage | None:
    """Anthropic counts cache reads and writes apart from `input_tokens`; all are input."""
    inp = _count(usage.get("input_tokens"))
    out = _count(usage.get("output_tokens"))
    if out is None or (inp is None and known_input is None):
        return None
    read = _count(usage.get("cache_read_input_tokens")) or 0
    written = _count(usage.get("cache_creation_input_tokens")) or 0
    total = (inp or 0) + read + written
    return Usage(max(total, known_input or 0), out, read)


class StreamMeter:
    """Follows one stream's events: the text sent so far and the usage once reported.

    `event(name, data)` returns whether to pass the event on to the client (the chat usage
    chunk is held back when the client did not ask for it)."""

    def __init__(self, endpoint: Endpoint, *, client_wants_usage: bool) -> None:
        self.endpoint = endpoint
        self.client_wants_usage = client_wants_usage
        self.text_bytes = 0
        self.deltas = 0
        self.usage: Usage | None = None  # final usage, as the upstream reported it
        self.input_tokens: int | None = None  # Anthropic reports input first, output at the end
        self.output_so_far = 0  # the latest running output count an upstream reported
        self.cached_tokens = 0

    def _text(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.text_bytes += len(text.encode())
            self.deltas += 1

    def event(self, name: str | None, data: Any) -> bool:
        kind = self.endpoint.kind
        if kind == "chat":
            return self._chat(data)
        if kind == "responses":
            if isinstance(data, dict):
                event_type = data.get("type") or name
                if isinstance(event_type, str) and event_type.endswith(".delta"):
                    self._text(data.get("delta"))
                response = data.get("response")
                if event_type in ("response.completed", "response.incomplete", "response.failed"):
                    self.usage = usage_of(self.endpoint, response) or self.usage
            return True
        if kind == "messages" and isinstance(data, dict):
            self._messages(data)
        return True

    def _chat(self, data: Any) -> bool:
        if not isinstance(data, dict):
            return True
        for choice in data.get("choices") or ():
            delta = _get(choice, "delta")
            if isinstance(delta, dict):
                self._text(delta.get("content"))
                self._text(delta.get("refusal"))
                for call in delta.get("tool_calls") or ():
                    self._text(_get(call, "function", "arguments"))
        if isinstance(data.get("usage"), dict):
            self.usage = usage_of(self.endpoint, data)
            if not data.get("choices"):  # the usage chunk we asked for
                return self.client_wants_usage
        return True

    def _messages(self, data: dict[str, Any]) -> None:
        event_type = data.get("type")
        if event_type == "message_start":
            usage = _get(data, "message", "usage")
            if isinstance(usage, dict):
                start = _anthropic_usage(usage, None)
                if start is not None:
                    self.input_tokens = start.input_tokens
                    self.output_so_far = start.output_tokens
                    self.cached_tokens = start.cached_tokens
        elif event_type == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                self._text(delta.get("text") or delta.get("partial_json") or delta.get("thinking"))
        elif event_type == "message_delta" and isinstance(data.get("usage"), dict):
            final = _anthropic_usage(data["usage"], self.input_tokens)
            if final is not None:
                cached = final.cached_tokens or self.cached_tokens
                self.usage = Usage(final.input_tokens, final.output_tokens, cached)

    def charged_usage(self, input_estimate: int) -> Usage | None:
        """What to charge when the stream ends: the reported usage, else the text sent so far
        (estimated); None when nothing was generated."""
        if self.usage is not None:
            return self.usage
        output = max(self.output_so_far, estimate_output_tokens(self.text_bytes, self.deltas))
        if output == 0:
            return None
        inp = self.input_tokens if self.input_tokens is not None else input_estimate
        return Usage(inp, output, self.cached_tokens, estimated=True)
