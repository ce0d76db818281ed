"""The per-turn latency ledger: every stage stamps it from one clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.clock import Clock

MAX_MARKS = 2000  # a turn that produces more marks than this is runaway; keep the first ones


@dataclass(frozen=True, slots=True)
class Mark:
    t: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


# The kinds the stages write. Derived metrics below read the first mark of a kind.
SPEECH_START = "speech_start"
SPEECH_END = "speech_end"
PARTIAL = "partial_transcript"
FINAL = "final_transcript"
LLM_REQUEST = "llm_request"
FIRST_TOKEN = "first_token"
RESTART = "generation_restart"
TOOL = "tool_call"
ANSWER_START = "answer_start"
TTS_FIRST_AUDIO = "tts_first_audio"  # the TTS produced its first chunk
FIRST_AUDIO = "first_audio"  # the gateway sent the first audio byte
TURN_END = "turn_end"


class TurnLedger:
    def __init__(self, turn_id: str, clock: Clock) -> None:
        self.turn_id = turn_id
        self.clock = clock
        self.marks: list[Mark] = []
        self._first: dict[str, float] = {}
        self.tokens_discarded = 0
        self.restarts = 0
        self.dropped_marks = 0

    def mark(self, kind: str, **data: Any) -> float:
        t = self.clock.now()
        self._first.setdefault(kind, t)
        if len(self.marks) < MAX_MARKS:
            self.marks.append(Mark(t, kind, data))
        else:
            self.dropped_marks += 1
        return t

    def first(self, kind: str) -> float | None:
        return self._first.get(kind)

    def restart(self, tokens_discarded: int) -> None:
        self.restarts += 1
        self.tokens_discarded += tokens_discarded
        self.mark(RESTART, tokens_discarded=tokens_discarded)

    def _since(self, end: str, start: str) -> float | None:
        """From the first `start` to the first `end` at or after it."""
        a = self._first.get(start)
        if a is None:
            return None
        b = self._first.get(end)
        if b is None or b < a:
            b = next((m.t for m in self.marks if m.kind == end and m.t >= a), None)
        return None if b is None else b - a

    def tool_stats(self) -> dict[str, int]:
        """Speculative calls issued, executed, used and wasted (executed but thrown away)."""
        issued = executed = used = wasted = 0
        calls: dict[tuple[int, int], dict[str, Any]] = {}  # (id, version) -> its events
        for m in self.marks:
            if m.kind == TOOL:
                info = calls.setdefault((m.data["call_id"], m.data["version"]), {})
                info.update(m.data, **{m.data["event"]: m.t})
        for info in calls.values():
            if not info.get("speculative"):
                continue
            issued += 1
            if "started" in info:
                executed += 1
                if "cancelled" in info:
                    wasted += 1
                elif "completed" in info or "failed" in info:
                    used += 1
        return {"speculative_issued": issued, "speculative_executed": executed,
                "speculative_used": used, "speculative_wasted": wasted}

    def derived(self) -> dict[str, float | int | None]:
        voice = self._since(FIRST_AUDIO, SPEECH_END)
        text = self._since(ANSWER_START, FINAL)
        return {
            "response_latency": voice if voice is not None else text,
            "endpoint_to_final": self._since(FINAL, SPEECH_END),
            "final_to_answer": text,
            "final_to_first_token": self._since(FIRST_TOKEN, FINAL),
            "answer_to_first_audio": self._since(FIRST_AUDIO, ANSWER_START),
            "turn_duration": self.marks[-1].t - self.marks[0].t if self.marks else None,
            "restarts": self.restarts,
            "tokens_discarded": self.tokens_discarded,
            **self.tool_stats(),
        }

    def to_dict(self) -> dict[str, Any]:
        t0 = self.marks[0].t if self.marks else 0.0
        return {
            "turn_id": self.turn_id,
            "t0": t0,
            "marks": [{"t": round(m.t - t0, 6), "kind": m.kind, **m.data} for m in self.marks],
            "derived": self.derived(),
            "dropped_marks": self.dropped_marks,
        }
