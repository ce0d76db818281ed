"""`specvoice chat`: talk to the agent in a terminal and watch the trace, tool calls and ledger live."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

from agent.embedded import open_llm
from agent.events import AgentEvent, AnswerDelta, ToolCallEvent, TraceEvent, TranscriptUpdate, TurnDone
from agent.tools import ToolBox, load_catalog
from agent.worker import AgentSession
from configs.settings import Settings
from evals.simulated_user import SimulatedUser

COLORS = {"model": "\033[2m", "inject": "\033[36m", "discarded": "\033[9;31m", "tool": "\033[33m",
          "answer": "\033[1;32m", "ledger": "\033[35m"}
RESET = "\033[0m"


class Renderer:
    """Streams a turn's events to a terminal: the trace as it grows, tool calls as lines."""

    def __init__(self, out: TextIO = sys.stdout, color: bool | None = None) -> None:
        self.out = out
        self.color = out.isatty() if color is None else color
        self.t0: float | None = None
        self.at_line_start = True

    def _paint(self, kind: str, text: str) -> str:
        return f"{COLORS[kind]}{text}{RESET}" if self.color else text

    def _write(self, kind: str, text: str) -> None:
        self.out.write(self._paint(kind, text))
        self.at_line_start = text.endswith("\n")

    def _line(self, kind: str, text: str) -> None:
        now = asyncio.get_running_loop().time()
        self.t0 = self.t0 if self.t0 is not None else now
        if not self.at_line_start:
            self.out.write("\n")
        self._write(kind, f"[{now - self.t0:6.2f}s] {text}\n")

    def __call__(self, event: AgentEvent) -> None:
        match event:
            case TraceEvent(text=text, source=source):
                self._write(source, text)
            case ToolCallEvent():
                spec = " speculative" if event.speculative else ""
                detail = f" -> {json.dumps(event.result)[:120]}" if event.result is not None else ""
                self._line("tool", f"call {event.call_id} {event.name}{json.dumps(event.arguments)} "
                                   f"{event.event}{spec}{detail}")
            case AnswerDelta():
                pass  # the answer is visible in the trace; the final line repeats it whole
            case TurnDone():
                self._line("answer", f"answer ({event.status}): {event.answer}")
                if event.error:
                    self._line("answer", f"error: {event.error}")
                self._write("ledger", summary(event.ledger) + "\n")
        self.out.flush()


def summary(ledger: dict[str, Any]) -> str:
    d = ledger.get("derived", {})

    def ms(key: str) -> str:
        value = d.get(key)
        return "-" if value is None else f"{value * 1000:.0f} ms"

    return (f"ledger {ledger.get('turn_id')}: response {ms('response_latency')}, final->first token "
            f"{ms('final_to_first_token')}, restarts {d.get('restarts')}, tokens discarded "
            f"{d.get('tokens_discarded')}, speculative calls issued {d.get('speculative_issued')} / used "
            f"{d.get('speculative_used')} / wasted {d.get('speculative_wasted')}")


async def run_chat(settings: Settings, say: list[str], wpm: float, endpoint_delay_s: float,
                   out: TextIO = sys.stdout) -> int:
    """Spoken turns from `say` (simulated at `wpm`), or typed turns from stdin when it is empty."""
    async with open_llm(settings, log=lambda m: print(m, file=sys.stderr)) as llm:
        catalog = load_catalog(settings.agent.catalog)
        toolbox = ToolBox(catalog, latency_s=settings.agent.tool_latency_s, timeout_s=settings.agent.tool_timeout_s)
        session = AgentSession(llm, toolbox, settings.agent_config())
        user = SimulatedUser(wpm=wpm, endpoint_delay_s=endpoint_delay_s)
        out.write(f"mode {settings.agent.mode}, tools: {', '.join(toolbox.tools)}\n")
        if say:
            for text in say:
                await _turn(session, text, user, out)
            return 0
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return 0
            if line.strip():
                await _turn(session, line.strip(), None, out)


async def _turn(session: AgentSession, text: str, user: SimulatedUser | None, out: TextIO) -> None:
    turn = session.new_turn()
    render = Renderer(out)

    async def watch() -> None:
        async for event in turn.events():
            render(event)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(watch())
        if user is None:
            turn.push(TranscriptUpdate(text, final=True))
        else:
            tg.create_task(user.speak(text, turn.push, turn.ledger))
        await turn.run()
