"""Speech benchmark (numbers, not assertions): streaming ASR lag and TTS speed, alone and together.

    python -m evals.speech_bench [--json out.json]

ASR: piper speaks SENTENCES into the streaming ASR at real time (as a microphone would). For each
word, the partial lag is the time from the moment its audio ended (word timings from an offline
Whisper pass) to the first partial that contains it; the endpoint is the time from the end of speech
to the VAD's speech-stopped; the final latency runs from speech-stopped to the final transcript.
TTS: time to first audio for answers whose text is all there, and the real-time factor (synthesis
time over audio length). "together" repeats both while the other runs: the ASR hears the user while
the TTS speaks answers, paced to a client at real time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agent.events import TranscriptUpdate
from evals.stats import percentile
from evals.wer import word_errors
from speech.asr import ASRSettings, StreamingASR, WhisperDecoder, model_dir
from speech.audio import ASR_RATE, WIRE_RATE, chunks, pcm16_to_float, resample
from speech.tts import TTS, AudioChunk
from speech.vad import SpeechStarted, SpeechStopped

# Varied requests a voice assistant hears (numbers, names, questions, corrections, short and long).
SENTENCES = [
    "What's the weather like in Paris tomorrow morning?",
    "Send a message to Maria saying I'll be ten minutes late.",
    "Set a timer for twenty five minutes.",
    "Could you read me my calendar for Friday afternoon?",
    "Please book a table for four people at seven thirty tonight.",
    "No, wait, send it to John instead.",
    "How long does it take to drive from Boston to New York?",
    "Remind me to call the dentist on Monday at nine.",
    "The quick brown fox jumps over the lazy dog.",
    "Thanks, that's all for now.",
]

# Answers with a short first sentence, the way the agent is told to answer.
ANSWERS = [
    "Sure. I've set a timer for twenty five minutes.",
    "It's fourteen degrees in Paris. Light rain is expected all afternoon, so take an umbrella.",
    "Done. Maria will get your message right away.",
    "You have two meetings on Friday. The first one is at two with the design team.",
    "Okay. Driving from Boston to New York takes about four hours without traffic.",
]

CHUNK_MS = 20
LEAD_S, TRAIL_S = 0.5, 1.5  # silence around each sentence: the endpoint needs 0.5 s of it


@dataclass
class ASRResult:
    word_lag: list[float] = field(default_factory=list)
    endpoint: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    words: int = 0
    words_in_partials: int = 0
    errors: int = 0
    reference_words: int = 0


@dataclass
class TTSResult:
    first_audio: list[float] = field(default_factory=list)
    synth_s: float = 0.0
    audio_s: float = 0.0


class TimedTTS(TTS):
    """Counts synthesis time and audio length for the real-time factor."""

    def __init__(self) -> None:
        super().__init__()
        self.result = TTSResult()

    def synthesize(self, text: str) -> bytes:
        start = time.perf_counter()
        pcm = super().synthesize(text)
        self.result.synth_s += time.perf_counter() - start
        self.result.audio_s += len(pcm) / 2 / WIRE_RATE
        return pcm


@dataclass
class Spoken:
    text: str
    pcm: bytes  # at the wire rate
    word_ends: list[float]  # seconds into pcm


def prepare(decoder: WhisperDecoder, tts: TTS) -> list[Spoken]:
    out = []
    for text in SENTENCES:
        pcm = tts.synthesize(text)
        segments, _ = decoder.model.transcribe(pcm16_to_float(resample(pcm, WIRE_RATE, ASR_RATE)),
                                               beam_size=1, word_timestamps=True)
        ends = [w.end for s in segments for w in (s.words or [])]
        out.append(Spoken(text, pcm, ends))
    return out


async def run_asr(decoder: WhisperDecoder, spoken: list[Spoken], settings: ASRSettings) -> ASRResult:
    """Play every sentence into one stream at real time and time the transcripts."""
    silence_lead, silence_trail = bytes(int(LEAD_S * WIRE_RATE) * 2), bytes(int(TRAIL_S * WIRE_RATE) * 2)
    stream = b"".join(silence_lead + s.pcm + silence_trail for s in spoken)
    starts, offset = [], 0.0  # where each sentence's speech begins in the stream (s)
    for s in spoken:
        starts.append(offset + LEAD_S)
        offset += LEAD_S + len(s.pcm) / 2 / WIRE_RATE + TRAIL_S
    pushed_at: list[float] = []  # wall time when the audio up to (i + 1) chunks had been pushed
    events: list[tuple[float, object]] = []
    asr = StreamingASR(decoder, settings, rate=WIRE_RATE)

    async def consume() -> None:
        async for e in asr.events():
            events.append((time.perf_counter(), e))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(asr.run())
        tg.create_task(consume())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i, piece in enumerate(chunks(stream, WIRE_RATE, CHUNK_MS)):
            await asyncio.sleep(max(0.0, t0 + i * CHUNK_MS / 1000 - loop.time()))
            asr.push(piece)
            pushed_at.append(time.perf_counter())
        await asyncio.sleep(1.0)
        asr.close()

    def wall(audio_s: float) -> float:
        """When the audio up to `audio_s` had reached the ASR."""
        return pushed_at[min(len(pushed_at) - 1, int(audio_s * 1000 / CHUNK_MS))]

    result = ASRResult()
    utterance = -1
    stopped_at = 0.0
    seen = 0  # words of the current utterance already in a partial
    for t, e in events:
        if isinstance(e, SpeechStarted):
            utterance, seen = utterance + 1, 0
        elif isinstance(e, SpeechStopped) and 0 <= utterance < len(spoken):
            s = spoken[utterance]
            stopped_at = t
            result.endpoint.append(t - wall(starts[utterance] + s.word_ends[-1]))
        elif isinstance(e, TranscriptUpdate) and 0 <= utterance < len(spoken):
            s = spoken[utterance]
            if e.final:
                result.final.append(t - stopped_at)
                result.words += len(s.word_ends)
                result.words_in_partials += min(seen, len(s.word_ends))
                errors, words = word_errors(s.text, e.text)
                result.errors += errors
                result.reference_words += words
            else:
                count = min(len(e.text.split()), len(s.word_ends))
                for k in range(seen, count):
                    result.word_lag.append(t - wall(starts[utterance] + s.word_ends[k]))
                seen = max(seen, count)
    return result


async def once(text: str) -> AsyncIterator[str]:
    yield text


async def speak(tts: TimedTTS, text: str, paced: bool) -> None:
    """One answer through the streaming TTS; `paced` drains it at real time, as a client plays it."""
    start = time.perf_counter()
    stream = tts.stream(once(text))
    first = True
    played = 0.0
    async with asyncio.TaskGroup() as tg:
        tg.create_task(stream.run())
        chunk: AudioChunk
        async for chunk in stream:
            if first:
                tts.result.first_audio.append(time.perf_counter() - start)
                first = False
            if paced:
                played += len(chunk.pcm) / 2 / WIRE_RATE
                await asyncio.sleep(max(0.0, start + played - time.perf_counter() - 0.2))  # 0.2 s lead


async def run_tts(tts: TimedTTS, rounds: int, paced: bool, until: asyncio.Event | None = None) -> TTSResult:
    tts.result = TTSResult()
    i = 0
    while (until is None and i < rounds * len(ANSWERS)) or (until is not None and not until.is_set()):
        await speak(tts, ANSWERS[i % len(ANSWERS)], paced)
        i += 1
        if paced:
            await asyncio.sleep(0.3)
    return tts.result


async def together(decoder: WhisperDecoder, tts: TimedTTS, spoken: list[Spoken],
                   settings: ASRSettings) -> tuple[ASRResult, TTSResult]:
    done = asyncio.Event()

    async def asr_then_stop() -> ASRResult:
        try:
            return await run_asr(decoder, spoken, settings)
        finally:
            done.set()

    async with asyncio.TaskGroup() as tg:
        asr_task = tg.create_task(asr_then_stop())
        tts_task = tg.create_task(run_tts(tts, 0, paced=True, until=done))
    return asr_task.result(), tts_task.result()


def report(name: str, asr: ASRResult | None, tts: TTSResult | None) -> dict[str, float]:
    row: dict[str, float] = {}
    if asr is not None:
        row |= {
            "partial_lag_p50_s": percentile(asr.word_lag, 50), "partial_lag_p90_s": percentile(asr.word_lag, 90),
            "words_in_partials": asr.words_in_partials / max(asr.words, 1),
            "endpoint_p50_s": percentile(asr.endpoint, 50),
            "final_p50_s": percentile(asr.final, 50), "final_p90_s": percentile(asr.final, 90),
            "wer": asr.errors / max(asr.reference_words, 1), "utterances": len(asr.final),
        }
    if tts is not None:
        row |= {
            "tts_first_audio_p50_s": percentile(tts.first_audio, 50),
            "tts_first_audio_p90_s": percentile(tts.first_audio, 90),
            "tts_rtf": tts.synth_s / max(tts.audio_s, 1e-9), "answers": len(tts.first_audio),
        }
    print(f"\n{name}")
    for key, value in row.items():
        print(f"  {key:24s} {value:.3f}" if isinstance(value, float) else f"  {key:24s} {value}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evals.speech_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny.en", choices=["tiny.en", "base"])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the answers for TTS alone")
    parser.add_argument("--partial-interval-ms", type=int, default=ASRSettings.partial_interval_ms)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    settings = ASRSettings(partial_interval_ms=args.partial_interval_ms)

    decoder = WhisperDecoder(model_dir(args.model))
    tts = TimedTTS()
    spoken = prepare(decoder, tts)
    decoder.decode(pcm16_to_float(resample(spoken[0].pcm, WIRE_RATE, ASR_RATE)))  # warm up
    results = {
        "asr alone": report("ASR alone", asyncio.run(run_asr(decoder, spoken, settings)), None),
        "tts alone": report("TTS alone", None, asyncio.run(run_tts(tts, args.rounds, paced=False))),
        "together": report("ASR and TTS together", *asyncio.run(together(decoder, tts, spoken, settings))),
    }
    print("\ngoals: partial lag p50 <= 0.4 s, final <= 0.3 s after the endpoint, first audio <= 0.2 s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "partial_interval_ms": args.partial_interval_ms, "results": results,
                       "sentences": SENTENCES, "answers": ANSWERS}, f, indent=2)


if __name__ == "__main__":
    main()
