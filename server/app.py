"""The FastAPI app: `/v1/realtime` (WebSocket), `/healthz`, `/metrics`, `/v1/turns` and the browser client."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from agent.embedded import open_llm
from agent.llm import LLM
from agent.tools import load_catalog
from configs.settings import Settings
from server.metrics import Metrics
from server.protocol import ProtocolError, error_event
from server.session import RealtimeSession, Services, SpeechModels

STATIC = Path(__file__).parent / "static"
KEY_SUBPROTOCOL = "openai-insecure-api-key."
log = logging.getLogger("specvoice.app")


def _loopback(host: str | None) -> bool:
    if host in (None, "localhost"):  # None: a Unix socket, which only local processes reach
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _offered_key(headers: Any, subprotocols: list[str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    for p in subprotocols:
        if p.startswith(KEY_SUBPROTOCOL):
            return p[len(KEY_SUBPROTOCOL):]
    return None


def authorized(settings: Settings, headers: Any, subprotocols: list[str], host: str | None) -> bool:
    """A configured key must match; with no keys configured only loopback clients get in."""
    keys = settings.server.api_keys
    if not keys:
        return _loopback(host)
    offered = _offered_key(headers, subprotocols)
    return offered is not None and any(hmac.compare_digest(offered, k) for k in keys)


def create_app(settings: Settings | None = None, *, llm: LLM | None = None,
               speech: SpeechModels | None = None) -> FastAPI:
    """The app. `llm`/`speech` may be given (tests); otherwise the lifespan opens the configured LLM
    (starting the embedded vLLM when no `llm.base_url` is set) and loads the speech models."""
    settings = settings or Settings.load()
    metrics = Metrics(settings.server.turns_kept)
    state: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            the_llm = llm if llm is not None else await stack.enter_async_context(open_llm(settings, log=log.info))
            models = speech if speech is not None else SpeechModels(settings)
            if settings.speech.preload and speech is None:
                await models.load()
            state["services"] = Services(settings, the_llm, load_catalog(settings.agent.catalog), models, metrics)
            host, port = settings.server.host, settings.server.port
            log.info("specvoice is ready: open http://%s:%d/ (Realtime: ws://%s:%d/v1/realtime)", host, port, host,
                     port)
            yield

    app = FastAPI(title="specvoice", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        services = state.get("services")
        return {"status": "ok" if services else "starting", "sessions": services.sessions if services else 0,
                "speech_loaded": bool(services and services.speech.loaded)}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/turns")
    async def turns(request: Request, limit: int = 20) -> JSONResponse:
        host = request.client.host if request.client else None
        if not authorized(settings, request.headers, [], host):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"turns": list(metrics.recent)[-max(1, min(limit, 1000)):]})

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        services = state["services"]
        offered = list(ws.scope.get("subprotocols", []))
        host = ws.client.host if ws.client else None
        if not authorized(settings, ws.headers, offered, host):
            metrics.rejected.labels("unauthorized").inc()
            await ws.close(code=1008, reason="missing or invalid API key")
            return
        await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
        if services.sessions >= settings.server.max_sessions:
            metrics.rejected.labels("full").inc()
            await ws.send_json(error_event(ProtocolError(
                f"the server is at its limit of {settings.server.max_sessions} sessions", "too_many_sessions"),
                None, "server_error"))
            await ws.close(code=1013, reason="too many sessions")
            return
        beta = "realtime=v1" in ws.headers.get("openai-beta", "")
        x_events = ws.query_params.get("x_events") in ("1", "true")
        session = RealtimeSession(services, ws.send_text, beta=beta, x_events=x_events)
        idle = settings.server.idle_timeout_s

        async def messages() -> AsyncIterator[str | bytes]:
            while True:
                receive = asyncio.ensure_future(ws.receive())
                while True:  # idle means: nothing from the client and nothing being answered
                    done, _ = await asyncio.wait([receive], timeout=idle)
                    if done or not session.busy:
                        break
                if not done:
                    receive.cancel()
                    session.error(ProtocolError(f"no event for {idle:g} s: closing the session", "idle_timeout"),
                                  None)
                    return
                message = receive.result()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("text") if message.get("text") is not None else message.get("bytes")
                if data is not None:
                    yield data

        services.sessions += 1
        metrics.sessions.inc()
        metrics.sessions_total.inc()
        try:
            await session.run(messages())
        except (WebSocketDisconnect, RuntimeError) as e:  # the client went away mid-send
            log.debug("session ended: %s", e)
        finally:
            services.sessions -= 1
            metrics.sessions.dec()
            with contextlib.suppress(Exception):
                await ws.close()

    return app
