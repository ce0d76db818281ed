import numpy as np
import pytest

from speech.audio import (
    AudioFormatError,
    Resampler,
    check_rate,
    chunks,
    float_to_pcm16,
    pcm16_to_float,
    resample,
)


def tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(x))


def test_pcm16_round_trip():
    x = tone(440, 24_000, 0.1)
    y = pcm16_to_float(float_to_pcm16(x))
    assert np.max(np.abs(x - y)) < 1 / 32768 + 1e-6


@pytest.mark.parametrize(("src", "dst"), [(24_000, 16_000), (22_050, 24_000), (16_000, 24_000)])
def test_streaming_resample_keeps_pitch_and_length(src, dst):
    x = float_to_pcm16(tone(440, src, 1.0))
    r = Resampler(src, dst)
    out = b"".join(r.push(piece) for piece in chunks(x, src, 20)) + r.flush()
    y = pcm16_to_float(out)
    assert abs(len(y) - dst) <= dst * 0.01
    assert abs(dominant(y, dst) - 440) < 3
    assert resample(x, src, dst) == out  # chunking does not change the result


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pcm16_to_float(b"\x00\x01\x02"), "even number of bytes"),
        (lambda: Resampler(24_000, 16_000).push(b"\x00"), "even number of bytes"),
        (lambda: check_rate(12_345), "unsupported sample rate"),
        (lambda: float_to_pcm16(np.array([0.1, np.nan])), "NaN"),
        (lambda: float_to_pcm16(np.array([0.1, 3.0])), r"\[-1, 1\]"),
        (lambda: float_to_pcm16(np.zeros((2, 2))), "1-D"),
    ],
)
def test_bad_audio_gets_a_clear_error(call, message):
    with pytest.raises(AudioFormatError, match=message):
        call()


def test_a_resampler_stays_usable_after_bad_input():
    r = Resampler(24_000, 16_000)
    with pytest.raises(AudioFormatError):
        r.push(b"\x00\x00\x00")
    good = float_to_pcm16(tone(440, 24_000, 0.2))
    assert len(r.push(good) + r.flush()) > 0
