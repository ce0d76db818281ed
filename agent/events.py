"""Typed events that cross the agent's boundary.

Inputs (`TranscriptUpdate`) come from ASR, the text path or a simulated user; outputs (`AgentEvent`)
go to the gateway, the chat CLI and the benchmark. Every output carries its turn's id so that a
consumer can drop anything from a turn it has already cancelled.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class TranscriptUpdate:
    """What the user has said so far in this turn: the whole text, not a delta."""

    text: str
    final: bool = False


class CallState(enum.StrEnum):
    PENDING = "pending"  # waiting for the results it references
    HELD = "held"  # unsafe (or async mode) and waiting for the commit point
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    """A tool call changed state. `speculative` means it was issued before the final update.

    `event` is what happened: issued, revised, held, committed, started, completed, failed, cancelled.
    """

    turn_id: str
    event: str
    call_id: int
    name: str
    arguments: dict[str, Any]
    state: CallState
    speculative: bool
    result: Any = None
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Text appended to the trace: by the model (`model`), injected (`inject`) or thrown away."""

    turn_id: str
    text: str
    source: Literal["model", "inject", "discarded"]
    type: Literal["trace"] = "trace"


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """Answer text that may be spoken now (never before the final update)."""

    turn_id: str
    text: str
    type: Literal["answer_delta"] = "answer_delta"


class TurnStatus(enum.StrEnum):
    COMPLETED = "completed"
    FALLBACK = "fallback"  # the model broke the protocol too often; a plain answer was given
    FAILED = "failed"  # no answer could be produced (LLM unreachable, ...)
    CANCELLED = "cancelled"  # barge-in or the caller gave up


@dataclass(frozen=True, slots=True)
class TurnDone:
    turn_id: str
    status: TurnStatus
    answer: str
    ledger: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    type: Literal["turn_done"] = "turn_done"


AgentEvent = ToolCallEvent | TraceEvent | AnswerDelta | TurnDone
