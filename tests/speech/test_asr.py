import asyncio
import itertools

import numpy as np
import pytest

from agent.events import TranscriptUpdate
from speech.asr import LocalAgreement, StreamingASR, WhisperDecoder
from speech.audio import float_to_pcm16, paced, pcm16_to_float, resample
from speech.vad import SpeechStarted, SpeechStopped


def test_local_agreement_commits_only_agreed_words_and_never_shrinks():
    la = LocalAgreement()
    assert la.update("text me") == ""
    assert la.update("text me John's") == "text me"
    assert la.update("Text me, John's number") == "text me John's"
    assert la.update("tax") == "text me John's"


@pytest.fixture(scope="module")
def decoder():
    return WhisperDecoder()


@pytest.fixture(scope="module")
def tts():
    from speech.tts import TTS

    return TTS(deterministic=True)


def feed(decoder, pcm24k: bytes, expect_final: bool = True) -> list:
    """Play the audio into the ASR at real time, as a microphone would, and collect its events."""

    async def main():
        asr = StreamingASR(decoder)
        events = []
        got_final = asyncio.Event()

        async def consume():
            async for e in asr.events():
                events.append(e)
                if isinstance(e, TranscriptUpdate) and e.final:
                    got_final.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(asr.run())
            tg.create_task(consume())
            async for piece in paced(pcm24k, 24_000, 40):
                asr.push(piece)
            if expect_final:
                await asyncio.wait_for(got_final.wait(), timeout=10)
            asr.close()
        return events

    return asyncio.run(main())


@pytest.mark.model
def test_partials_before_the_endpoint_and_a_final_that_matches_offline(decoder, tts):
    text = "Text me John's number and tell me the weather in Paris."
    speech = tts.synthesize(text)
    silence = bytes(24_000 * 2)
    events = feed(decoder, silence + speech + silence + silence)
    kinds = [type(e).__name__ + ("F" if isinstance(e, TranscriptUpdate) and e.final else "") for e in events]
    assert kinds[0] == "SpeechStarted" and "SpeechStopped" in kinds and kinds[-1] == "TranscriptUpdateF"
    partials = [e.text for e in events if isinstance(e, TranscriptUpdate) and not e.final]
    assert partials, "partials should arrive while the user speaks"
    final = events[-1].text
    segments, _ = decoder.model.transcribe(pcm16_to_float(resample(speech, 24_000, 16_000)), beam_size=1)
    offline = " ".join(s.text.strip() for s in segments)
    assert final.lower().strip(" .") == offline.lower().strip(" .")
    for before, after in itertools.pairwise(partials):
        assert after.startswith(before)  # partials only grow


@pytest.mark.model
def test_silence_and_noise_produce_no_transcripts(decoder):
    rng = np.random.default_rng(1)
    noise = float_to_pcm16((0.05 * rng.standard_normal(3 * 24_000)).astype(np.float32))
    events = feed(decoder, bytes(3 * 24_000 * 2) + noise, expect_final=False)
    assert not [e for e in events if isinstance(e, TranscriptUpdate | SpeechStarted | SpeechStopped)]


@pytest.mark.model
def test_the_multilingual_base_model_is_reassembled_once_and_decodes(tmp_path, tts):
    from speech.asr import model_dir

    path = model_dir("base", cache=tmp_path)
    assert (path / "model.bin").stat().st_size > 100_000_000
    assert model_dir("base", cache=tmp_path) == path  # the second call reuses the joined file
    speech = pcm16_to_float(resample(tts.synthesize("What is the weather in Paris today?"), 24_000, 16_000))
    hyp = WhisperDecoder(path).decode(speech)
    assert hyp.text == "What is the weather in Paris today?" and hyp.no_speech_prob < 0.5
