"""A specvoice app on loopback with the scripted LLM, and helpers to read Realtime events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from agent.llm import OpenAICompatibleLLM
from configs.settings import Settings
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, ScriptedLLM, serve_loopback
from server.app import create_app
from server.session import SpeechModels


def settings(**server: Any) -> Settings:
    return Settings(agent={"tool_latency_s": (0.0, 0.0)}, speech={"preload": False}, server=server)


@contextlib.asynccontextmanager
async def running(policy: Callable[[Recorded], Reply], config: Settings | None = None,
                  speech: SpeechModels | None = None) -> AsyncIterator[tuple[str, ScriptedLLM]]:
    """Yields the server's `/v1` base URL and the scripted LLM behind it."""
    fake = ScriptedLLM(policy)
    llm = OpenAICompatibleLLM("http://fake/v1", "scripted", transport=ASGIStreamTransport(fake))
    config = config or settings()
    app = create_app(config, llm=llm, speech=speech or SpeechModels(config))
    async with serve_loopback(app, lifespan="on") as url:
        yield url, fake
    await llm.aclose()


async def until(conn: Any, kind: str, seen: list[Any] | None = None, limit: int = 500) -> Any:
    """Read events until one of type `kind`; every event read is appended to `seen`."""
    for _ in range(limit):
        event = await conn.recv()
        if seen is not None:
            seen.append(event)
        if event.type == kind:
            return event
        if event.type == "error" and kind != "error":
            raise AssertionError(f"error event: {event.error}")
    raise AssertionError(f"no {kind} in {limit} events")
