"""A simulated speaker: words at a speaking rate as partial updates, then the final update.

Like a streaming ASR, the last word shows up in a partial as soon as it is spoken; the final update
follows after the endpoint delay (the silence the VAD waits for), which the agent can already use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.events import TranscriptUpdate
from agent.ledger import SPEECH_END, SPEECH_START, TurnLedger


@dataclass(frozen=True)
class SimulatedUser:
    wpm: float = 150.0
    endpoint_delay_s: float = 0.5  # silence before the endpoint fires (VAD silence duration)
    words_per_update: int = 1

    async def speak(self, text: str, push: Callable[[TranscriptUpdate], None],
                    ledger: TurnLedger | None = None, *, final_text: str | None = None,
                    hesitate: Callable[[], Awaitable[object]] | None = None) -> None:
        """Speak `text`; `hesitate`, if given, is awaited before the rest (`final_text`) is said."""
        words = text.split()
        per_word = 60.0 / self.wpm
        if ledger is not None:
            ledger.mark(SPEECH_START)
        for i in range(len(words)):
            await asyncio.sleep(per_word)
            if (i + 1) % self.words_per_update == 0 or i + 1 == len(words):
                push(TranscriptUpdate(" ".join(words[: i + 1])))
        if ledger is not None:
            ledger.mark(SPEECH_END)
        if hesitate is not None:
            await hesitate()
        await asyncio.sleep(self.endpoint_delay_s)
        push(TranscriptUpdate(final_text or " ".join(words), final=True))
