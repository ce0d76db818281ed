"""Audio utilities: pcm16 <-> float32, streaming resampling (PyAV), chunking, validation.

The wire speaks pcm16 mono at 24 kHz; the ASR and the VAD want 16 kHz; piper speaks 22 050 Hz.
Bad audio is refused with `AudioFormatError`, whose message says what is wrong, so the caller can
report it and keep the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import av
import numpy as np
import numpy.typing as npt

WIRE_RATE = 24_000
ASR_RATE = 16_000
RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)

Samples = npt.NDArray[np.float32]


class AudioFormatError(ValueError):
    """Audio that cannot be used: odd byte count, unsupported rate, NaN or out-of-range samples."""


def check_rate(rate: int) -> int:
    if rate not in RATES:
        raise AudioFormatError(f"unsupported sample rate {rate} Hz; use one of {', '.join(map(str, RATES))}")
    return rate


def pcm16_to_float(data: bytes) -> Samples:
    if len(data) % 2:
        raise AudioFormatError(f"pcm16 audio needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: npt.ArrayLike) -> bytes:
    x = check_samples(samples)
    return (np.clip(x, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()


def check_samples(samples: npt.ArrayLike) -> Samples:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise AudioFormatError(f"mono audio needs a 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioFormatError("audio contains NaN or infinite samples")
    if x.size and float(np.max(np.abs(x))) > 1.0 + 1e-6:
        raise AudioFormatError("float audio must lie in [-1, 1]")
    return x


class Resampler:
    """Streaming pcm16 mono resampler: `push(bytes) -> bytes`, then `flush()` at the end of a stream."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate, self.dst_rate = check_rate(src_rate), check_rate(dst_rate)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=dst_rate)
        self._pts = 0

    def _run(self, frame: av.AudioFrame | None) -> bytes:
        return b"".join(bytes(out.planes[0])[: out.samples * 2] for out in self._resampler.resample(frame))

    def push(self, data: bytes) -> bytes:
        if len(data) % 2:
            raise AudioFormatError(f"pcm16 audio needs an even number of bytes, got {len(data)}")
        if self.src_rate == self.dst_rate or not data:
            return data if self.src_rate == self.dst_rate else b""
        samples = np.frombuffer(data, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.src_rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        return self._run(frame)

    def flush(self) -> bytes:
        return b"" if self.src_rate == self.dst_rate else self._run(None)


def resample(data: bytes, src_rate: int, dst_rate: int) -> bytes:
    r = Resampler(src_rate, dst_rate)
    return r.push(data) + r.flush()


def chunks(data: bytes, rate: int, ms: int) -> Iterator[bytes]:
    """Split pcm16 into pieces of `ms` milliseconds (the last may be shorter)."""
    size = rate * ms // 1000 * 2
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def paced(data: bytes, rate: int, chunk_ms: int = 20, speed: float = 1.0) -> AsyncIterator[bytes]:
    """Yield pcm16 chunks at real time, as a microphone would (and as playback must be sent);
    `speed` > 1 plays faster (tests that only need the transcripts)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, piece in enumerate(chunks(data, rate, chunk_ms)):
        await asyncio.sleep(max(0.0, start + i * chunk_ms / 1000 / speed - loop.time()))
        yield piece
