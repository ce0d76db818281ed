"""A scripted OpenAI-compatible streaming server, and an in-process httpx transport for it.

Hermetic tests and the scheduler benchmark use these instead of vLLM. The server streams scripted
chunks with scripted delays (asyncio time, so a virtual-time loop makes them free), and records every
request with whether the client went away before the end (an abort, as vLLM would see it).
The transport runs any ASGI app in-process and streams its body as it is produced; closing the
response tells the app that the client disconnected, as a real socket would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Reply:
    """One scripted response. `text` is split into chunks of `chunk_chars` unless given as a list."""

    text: str | list[str] = ""
    first_token_s: float = 0.0
    chunk_s: float = 0.0
    chunk_chars: int = 4
    status: int = 200
    drop_after_chunks: int | None = None  # close the stream abruptly after this many chunks

    def chunks(self) -> list[str]:
        if isinstance(self.text, list):
            return self.text
        n = self.chunk_chars
        return [self.text[i : i + n] for i in range(0, len(self.text), n)]


@dataclass
class Recorded:
    body: dict[str, Any]
    started: float
    ended: float | None = None
    chunks_sent: int = 0
    aborted: bool = False
    finished: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # the response is over

    @property
    def prefix(self) -> str:
        """The assistant text the request asked to continue."""
        messages = self.body.get("messages", [])
        return str(messages[-1]["content"]) if messages else ""


Script = Callable[[Recorded], Reply] | list[Reply]


@dataclass
class ScriptedLLM:
    """ASGI app: `/v1/chat/completions` (streaming and not), `/health`, `/v1/models`."""

    script: Script = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    model: str = "scripted"

    def _next(self, rec: Recorded) -> Reply:
        if callable(self.script):
            return self.script(rec)
        if not self.script:
            return Reply(status=500, text="script exhausted")
        return self.script.pop(0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/health", "/v1/health"):
            await _json(send, 200, {"status": "ok"})
            return
        if path.endswith("/models"):
            await _json(send, 200, {"data": [{"id": self.model, "object": "model"}]})
            return
        if not path.endswith("/chat/completions"):
            await _json(send, 404, {"error": "not found"})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        loop = asyncio.get_running_loop()
        rec = Recorded(json.loads(raw or b"{}"), loop.time())
        self.requests.append(rec)
        try:
            await self._respond(rec, receive, send)
        finally:
            rec.ended = loop.time()
            rec.done.set()

    async def _respond(self, rec: Recorded, receive: Receive, send: Send) -> None:
        reply = self._next(rec)
        if reply.status != 200:
            await _json(send, reply.status, {"error": {"message": str(reply.text)}})
            rec.finished = True
            return
        if not rec.body.get("stream"):
            await asyncio.sleep(reply.first_token_s)
            text = "".join(reply.chunks())
            await _json(send, 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                 "finish_reason": "stop"}]})
            rec.finished = True
            return
        await self._stream(rec, reply, receive, send)

    async def _stream(self, rec: Recorded, reply: Reply, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for i, chunk in enumerate(reply.chunks()):
                delay = reply.first_token_s if i == 0 else reply.chunk_s
                try:  # wait for the chunk's time, or notice the client leaving during it
                    await asyncio.wait_for(gone.wait(), delay)
                except TimeoutError:
                    pass
                if gone.is_set():
                    rec.aborted = True
                    return
                if reply.drop_after_chunks is not None and i >= reply.drop_after_chunks:
                    await send({"type": "http.response.body", "body": b"data: {not json\n\n", "more_body": False})
                    return
                data = {"choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": None}]}
                await send({"type": "http.response.body", "body": _sse(data), "more_body": True})
                rec.chunks_sent += 1
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            rec.finished = True
        finally:
            watcher.cancel()
            if gone.is_set() and not rec.finished:
                rec.aborted = True


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


async def _json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[bytes | None], closed: asyncio.Event,
                 task: asyncio.Task[None]) -> None:
        self._queue, self._closed, self._task = queue, closed, task

    async def __aiter__(self) -> Any:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._closed.set()
        if not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
            except TimeoutError:
                self._task.cancel()


class ASGIStreamTransport(httpx.AsyncBaseTransport):
    """httpx transport that runs an ASGI app in-process, streaming the response body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        closed = asyncio.Event()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        sent_request = False

        async def receive() -> Message:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await closed.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if not started.done():
                    started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body" and not closed.is_set():
                if message.get("body"):
                    queue.put_nowait(message["body"])
                if not message.get("more_body"):
                    queue.put_nowait(None)

        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": request.url.scheme, "path": request.url.path, "raw_path": request.url.raw_path,
            "query_string": request.url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 1), "server": (request.url.host, request.url.port or 80),
        }

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                if not started.done():
                    started.set_exception(httpx.RemoteProtocolError("the app sent no response"))
                queue.put_nowait(None)

        task = asyncio.create_task(run())
        try:
            status, headers = await started
        except BaseException:  # cancelled before the response began: the client is gone
            closed.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        return httpx.Response(status, headers=headers, stream=_BodyStream(queue, closed, task),
                              request=request)


@contextlib.asynccontextmanager
async def serve_loopback(app: Any, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Serve an ASGI app (any that uvicorn takes) on a free loopback port; yields its `/v1` base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110  # uvicorn only exposes a flag
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task
        sock.close()
