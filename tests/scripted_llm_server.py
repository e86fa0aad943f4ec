"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for LLM-agent tests.

It serves ``POST /v1/chat/completions`` by popping the next queued reply: an assistant
message with tool calls, plain text, an HTTP error, or a tool call whose ``arguments`` is not
valid JSON. When the queue is empty it answers with ``default`` (or an HTTP 500 saying the
script ran out). A ``responder`` (a function of the request body) replaces the queue for
clients that make side requests (agent CLIs). ``"stream": true`` requests get the same reply
as server-sent chunks. Every request (body and headers) is recorded so tests
can check what the client really sent. Usage numbers are fixed per reply, so token and cost
roll-ups are exact.

    with ScriptedLLMServer([tool_call("echo hi"), tool_call(SUBMIT)]) as server:
        litellm.completion(model="openai/scripted", api_base=server.base_url, ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: mini-swe-agent's "I am done" command (its output's first line ends the run).
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


@dataclass
class Reply:
    """One scripted answer: ``status`` 200 with ``message`` (an assistant message), or an error."""

    message: dict[str, Any] | None = None
    status: int = 200
    error_body: dict[str, Any] | None = None
    finish_reason: str = "stop"
    prompt_tokens: int = 100
    completion_tokens: int = 20
    cached_tokens: int = 40


@dataclass
class RecordedRequest:
    """A request as the server received it."""

    path: str
    #: As received; lookups ignore case, as HTTP header names do (clients send either).
    headers: Message
    body: dict[str, Any]
    raw: bytes = field(repr=False, default=b"")


def tool_call(command: str, *, content: str = "", call_id: str | None = None,
              reasoning: str | None = None, name: str = "bash") -> Reply:
    """An assistant reply calling the ``bash`` tool with ``{"command": command}``."""
    return tool_calls([(name, json.dumps({"command": command}))], content=content,
                      call_ids=[call_id] if call_id else None, reasoning=reasoning)


def tool_calls(calls: list[tuple[str, str]], *, content: str = "", call_ids: list[str] | None = None,
               reasoning: str | None = None) -> Reply:
    """An assistant reply with several ``(function name, raw arguments string)`` tool calls."""
    ids = call_ids or [None] * len(calls)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content or None,
        "tool_calls": [
            {"id": cid or "", "type": "function", "function": {"name": name, "arguments": args}}
            for (name, args), cid in zip(calls, ids, strict=True)
        ],
    }
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return Reply(message=message, finish_reason="tool_calls")


def malformed_tool_call(raw_arguments: str = '{"command": "ls', *, content: str = "") -> Reply:
    """A tool call whose ``arguments`` is not valid JSON (a truncated model output)."""
    return tool_calls([("bash", raw_arguments)], content=content)


def text(content: str) -> Reply:
    """A plain-text assistant reply (used by mini-swe-agent's text-based mode)."""
    return Reply(message={"role": "assistant", "content": content})


def http_error(status: int = 500, message: str = "scripted server error") -> Reply:
    """An HTTP error answer with an OpenAI-style error body."""
    return Reply(status=status, error_body={"error": {"message": message, "type": "server_error",
                                                      "code": str(status)}})


class ScriptedLLMServer:
    """Serves queued :class:`Reply` objects in order from a background thread."""

    def __init__(self, replies: list[Reply] | None = None, *, default: Reply | None = None,
                 model: str = "scripted", responder: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.responder = responder
        self.replies: list[Reply] = list(replies or [])
        self.default = default
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._n = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded ``/chat/completions`` requests, in arrival order."""
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def push(self, *replies: Reply) -> None:
        """Queue more replies."""
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.pop(0)
        return self.default or http_error(500, "scripted server: no reply left in the script")

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The (status, JSON body) answering one chat-completions request."""
        reply = self.responder(body) if self.responder else self.next_reply()
        if reply.status != 200:
            return reply.status, reply.error_body or {"error": {"message": "error"}}
        with self._lock:
            self._n += 1
            n = self._n
        message = json.loads(json.dumps(reply.message))
        for i, call in enumerate(message.get("tool_calls") or [], start=1):
            call["id"] = call["id"] or f"call_{n:03d}_{i}"
        return 200, {
            "id": f"chatcmpl-scripted-{n:04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"not found: {self.path}"}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, self.headers, body, raw))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"unsupported path {self.path}"}})
                    return
                status, obj = server.answer(body)
                if body.get("stream") and status == 200:
                    self._stream(obj)
                else:
                    self._send(status, obj)

            def _stream(self, obj: dict[str, Any]) -> None:
                """The reply as chat-completion chunks: the message, the finish reason, the usage."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                choice = obj["choices"][0]
                delta = {k: v for k, v in choice["message"].items() if v is not None}
                for i, call in enumerate(delta.get("tool_calls") or []):
                    call["index"] = i
                head = {k: obj[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
                for chunk in ({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                              {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
                              {"choices": [], "usage": obj["usage"]}):
                    self.wfile.write(b"data: " + json.dumps(head | chunk).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler

    def start(self) -> ScriptedLLMServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
