"""Simulated users: the text path (words at a speaking rate as partial updates, then the final update)
and the audio path (piper speaks the turn into the real VAD and streaming ASR at real time).

Like a streaming ASR, the text path shows the last word in a partial as soon as it is spoken; the final
update follows after the endpoint delay (the silence the VAD waits for), which the agent can already use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from agent.events import TranscriptUpdate
from agent.ledger import SPEECH_END, SPEECH_START, TurnLedger

if TYPE_CHECKING:
    from speech.asr import ASRSettings, WhisperDecoder
    from speech.tts import TTS

Push = Callable[[TranscriptUpdate], None]


class Speaker(Protocol):
    async def speak(self, text: str, push: Push, ledger: TurnLedger | None = None) -> None: ...


@dataclass(frozen=True)
class SimulatedUser:
    wpm: float = 150.0
    endpoint_delay_s: float = 0.5  # silence before the endpoint fires (VAD silence duration)
    words_per_update: int = 1

    async def speak(self, text: str, push: Push, ledger: TurnLedger | None = None, *,
                    final_text: str | None = None, hesitate: Callable[[], Awaitable[object]] | None = None) -> None:
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


def voiced_ms(pcm16: bytes, rate: int, threshold: float = 0.02) -> int:
    """Where the last 10 ms frame louder than `threshold` (of full scale) ends: the end of speech."""
    samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float32) / 32768.0
    frame = rate // 100
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    loud = np.flatnonzero(np.abs(frames).max(axis=1) > threshold)
    return int(loud[-1] + 1) * 10 if loud.size else 0


@dataclass
class SpokenUser:
    """The audio path: piper says the turn, and what the agent gets is what the real VAD and streaming
    ASR make of it, at real time. End of speech is the end of the last voiced frame, as a listener hears
    it; the final update comes when the VAD's silence has passed and the ASR has decoded the utterance."""

    decoder: WhisperDecoder
    tts: TTS
    asr: ASRSettings | None = None
    chunk_ms: int = 20
    max_wait_s: float = 10.0  # silence sent after speech while waiting for the final
    heard: list[str] = field(default_factory=list)  # the final transcript of each turn

    async def speak(self, text: str, push: Push, ledger: TurnLedger | None = None) -> None:
        from speech.asr import StreamingASR
        from speech.audio import WIRE_RATE, paced

        audio = await asyncio.to_thread(self.tts.synthesize, text)
        speech_ms = voiced_ms(audio, WIRE_RATE)
        audio += bytes(WIRE_RATE * 2 * int(self.max_wait_s * 1000) // 1000)
        asr = StreamingASR(self.decoder, self.asr, rate=WIRE_RATE)
        speaking = True
        done: list[str] = []  # utterances the VAD closed while the user was still speaking
        finished = asyncio.Event()

        async def listen() -> None:
            async for event in asr.events():
                if not isinstance(event, TranscriptUpdate) or (not event.text and not event.final):
                    continue
                if event.final and speaking:  # a pause inside the turn: keep going
                    done.append(event.text)
                    push(TranscriptUpdate(" ".join(t for t in done if t)))
                    continue
                heard = " ".join(t for t in [*done, event.text] if t)
                push(TranscriptUpdate(heard, final=event.final))
                if event.final:
                    self.heard.append(heard)
                    finished.set()
                    return

        async def microphone() -> None:
            nonlocal speaking
            sent_ms = 0
            if ledger is not None:
                ledger.mark(SPEECH_START)
            async for piece in paced(audio, WIRE_RATE, self.chunk_ms):
                asr.push(piece)
                sent_ms += self.chunk_ms
                if speaking and sent_ms >= speech_ms:
                    speaking = False
                    if ledger is not None:
                        ledger.mark(SPEECH_END)
                if finished.is_set():
                    break

        async with asyncio.TaskGroup() as tg:
            tg.create_task(asr.run())
            listener = tg.create_task(listen())
            await microphone()
            if not finished.is_set():  # no endpoint within max_wait_s: end the turn with what was heard
                push(TranscriptUpdate(" ".join(done), final=True))
                self.heard.append(" ".join(done))
            asr.close()
            listener.cancel()
