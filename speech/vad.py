"""Voice activity detection: Silero v6 (ONNX, onnxruntime), frame by frame at 16 kHz.

The model file comes from the `silero-vad` package, installed without its torch dependencies; the
package itself is never imported (it imports torch), only its data file is read.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from speech.audio import ASR_RATE, Samples, check_samples

FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
FRAME_MS = FRAME * 1000 // ASR_RATE


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("silero-vad is not installed (pip install --no-deps silero-vad)")
    return Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.onnx"


@dataclass(frozen=True)
class VADSettings:
    """The Realtime `server_vad` fields."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 64  # shorter blips (a click, a cough) do not start a turn


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int  # where speech began (the ASR buffer keeps prefix_padding_ms before it)
    type: str = "speech_started"


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int  # where speech ended (the silence that followed was silence_duration_ms long)
    type: str = "speech_stopped"


VADEvent = SpeechStarted | SpeechStopped


class SileroVAD:
    """Speech probability per 512-sample frame, with the model's recurrent state carried across calls."""

    def __init__(self, path: Path | None = None) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # 0.2 ms a frame; a second thread only competes with ASR
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path or silero_model_path()), options,
                                             providers=["CPUExecutionProvider"])
        self._sr = np.array(ASR_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, frame: Samples) -> float:
        if frame.shape != (FRAME,):
            raise ValueError(f"a VAD frame is {FRAME} samples at 16 kHz, got {frame.shape}")
        x = np.concatenate([self._context, frame])[None, :]
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = frame[-CONTEXT:]
        return float(out[0][0])


class VADSegmenter:
    """Turns 16 kHz audio into speech-started / speech-stopped events with audio offsets in ms."""

    def __init__(self, vad: SileroVAD, settings: VADSettings | None = None) -> None:
        self.vad = vad
        self.settings = settings or VADSettings()
        self._buffer = np.zeros(0, dtype=np.float32)
        self._frames = 0  # frames seen so far
        self.speaking = False
        self._run_start: int | None = None  # first frame of the current run of speech frames
        self._silence = 0  # consecutive non-speech frames while speaking
        self._last_speech = 0

    @property
    def offset_ms(self) -> int:
        return self._frames * FRAME_MS

    def push(self, samples: Samples) -> list[VADEvent]:
        self._buffer = np.concatenate([self._buffer, check_samples(samples)])
        events: list[VADEvent] = []
        s = self.settings
        while self._buffer.size >= FRAME:
            frame, self._buffer = self._buffer[:FRAME], self._buffer[FRAME:]
            p = self.vad(frame)
            index = self._frames
            self._frames += 1
            if not self.speaking:
                if p >= s.threshold:
                    self._run_start = index if self._run_start is None else self._run_start
                    if (index - self._run_start + 1) * FRAME_MS >= s.min_speech_ms:
                        self.speaking, self._silence, self._last_speech = True, 0, index
                        events.append(SpeechStarted(self._run_start * FRAME_MS))
                else:
                    self._run_start = None
            elif p >= s.threshold - 0.15:  # hysteresis: a dip below the threshold is not yet silence
                self._silence, self._last_speech = 0, index
            else:
                self._silence += 1
                if self._silence * FRAME_MS >= s.silence_duration_ms:
                    self.speaking, self._run_start = False, None
                    events.append(SpeechStopped((self._last_speech + 1) * FRAME_MS))
        return events
