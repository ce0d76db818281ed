"""A catalog without tools: plain conversation (and the latency of a turn that needs no tool)."""

from __future__ import annotations

from agent.tools import Catalog


def _example() -> str:
    from agent.protocol import Answer, FinalUpdate, PartialUpdate, Pause, Think, format_element

    return "".join(format_element(e) for e in (
        PartialUpdate("hi, how are"),
        Think("a greeting"),
        Pause(),
        FinalUpdate("hi, how are you doing"),
        Think("greet back briefly"),
        Answer("I'm doing well, thanks. What can I do for you?"),
    ))


CATALOG = Catalog(name="chat", tools=(), example=_example())
