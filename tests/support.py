"""Shared helpers for the hermetic agent tests: a session on the scripted LLM, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.events import AgentEvent, ToolCallEvent, TranscriptUpdate, TurnDone
from agent.llm import OpenAICompatibleLLM
from agent.protocol import Answer, Pause, Think, ToolCall, format_element
from agent.tools import Catalog, ToolBox, load_catalog
from agent.worker import AgentConfig, AgentSession, Mode
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, Script, ScriptedLLM

DEMO = load_catalog("configs.catalogs.demo")


def step(think: str, action: ToolCall | Pause | Answer | str) -> str:
    """The text of one model step, as the constrained model writes it."""
    tail = action if isinstance(action, str) else format_element(action)
    return format_element(Think(think)) + tail


@dataclass
class Harness:
    fake: ScriptedLLM
    session: AgentSession
    events: list[tuple[float, AgentEvent]] = field(default_factory=list)

    @property
    def requests(self) -> list[Recorded]:
        return self.fake.requests

    def tool_events(self, kind: str | None = None) -> list[tuple[float, ToolCallEvent]]:
        return [(t, e) for t, e in self.events if isinstance(e, ToolCallEvent) and (kind is None or e.event == kind)]

    async def turn(self, timeline: list[tuple[float, TranscriptUpdate]]) -> TurnDone:
        """Push each update at its time (seconds from the start) and run the turn to its end."""
        loop = asyncio.get_running_loop()
        turn = self.session.new_turn()
        t0 = loop.time()

        async def feed() -> None:
            for at, update in timeline:
                await asyncio.sleep(max(0.0, t0 + at - loop.time()))
                turn.push(update)

        async def watch() -> None:
            async for event in turn.events():
                self.events.append((loop.time() - t0, event))

        async with asyncio.TaskGroup() as tg:
            feeder = tg.create_task(feed())
            tg.create_task(watch())
            done = await turn.run()
            feeder.cancel()
        return done


def harness(script: Script | Callable[[Recorded], Reply], *, mode: Mode = "speculative",
            latency: tuple[float, float] = (0.0, 0.0), catalog: Catalog = DEMO, **config: Any) -> Harness:
    fake = ScriptedLLM(script)
    llm = OpenAICompatibleLLM("http://fake/v1", "scripted", transport=ASGIStreamTransport(fake))
    toolbox = ToolBox(catalog, latency_s=latency, seed=0)
    session = AgentSession(llm, toolbox, AgentConfig(mode=mode, **config))
    return Harness(fake, session)


def partial(text: str) -> TranscriptUpdate:
    return TranscriptUpdate(text)


def final(text: str) -> TranscriptUpdate:
    return TranscriptUpdate(text, final=True)
