import asyncio
import itertools
import wave
from pathlib import Path

import numpy as np
import pytest

from agent.events import TranscriptUpdate
from evals.speech_bench import SENTENCES
from evals.wer import normalize, word_errors
from speech.asr import LocalAgreement, StreamingASR, WhisperDecoder, cut_loop
from speech.audio import AudioFormatError, float_to_pcm16, paced, pcm16_to_float, resample
from speech.vad import SpeechStarted, SpeechStopped

TESTDATA = Path("/usr/share/pocketsphinx/test/data")  # Debian package pocketsphinx-testdata


def test_local_agreement_commits_only_agreed_words_and_never_shrinks():
    la = LocalAgreement()
    assert la.update("text me") == ""
    assert la.update("text me John's") == "text me"
    assert la.update("Text me, John's number") == "text me John's"
    assert la.update("tax") == "text me John's"


def test_repetition_loops_are_cut_and_ordinary_speech_is_kept():
    assert cut_loop("How long does it take? How long does it", 1.2) == ("How long does it take?", True)
    assert cut_loop("10 of clubs 10 of clubs 10 of clubs 10", 1.9) == ("10 of clubs", True)
    assert cut_loop("5 5 5 5 5 5", 3.0) == ("5", True)
    assert cut_loop("He was not an old-s-y-y-y-y-y-y-y", 3.0) == ("He was not an", True)
    assert cut_loop("a b c d e f g h i j k l m n o p q r s t", 2.0) == ("", True)  # 10 words a second
    for speech in ("five five", "Set a timer for 25 minutes.", "very very very good", "No, no, no, to Mary.",
                   "a well-to-do man"):
        assert cut_loop(speech, 2.0) == (speech, False)


@pytest.fixture(scope="module")
def decoder():
    return WhisperDecoder()


@pytest.fixture(scope="module")
def tts():
    from speech.tts import TTS

    return TTS(deterministic=True)


def feed(decoder, pcm: bytes, expect_finals: int = 1, rate: int = 24_000, speed: float = 1.0,
         between=None) -> list:
    """Play the audio into the ASR as a microphone would (`speed` times real time) and collect its
    events until `expect_finals` final transcripts came. `between(asr, i)` runs after each piece."""

    async def main():
        asr = StreamingASR(decoder, rate=rate)
        events = []
        finals = 0
        enough = asyncio.Event()

        async def consume():
            nonlocal finals
            async for e in asr.events():
                events.append(e)
                if isinstance(e, TranscriptUpdate) and e.final:
                    finals += 1
                    if finals == expect_finals:
                        enough.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(asr.run())
            tg.create_task(consume())
            i = 0
            async for piece in paced(pcm, rate, 40, speed):
                asr.push(piece)
                if between is not None:
                    between(asr, i)
                i += 1
            if expect_finals:
                await asyncio.wait_for(enough.wait(), timeout=10)
            asr.close()
        return events

    return asyncio.run(main())


def utterances(events: list) -> list[tuple[list[str], str]]:
    """(partials heard before the endpoint, final) for each utterance, in order."""
    out: list[tuple[list[str], str]] = []
    partials: list[str] = []
    stopped = False
    for e in events:
        if isinstance(e, SpeechStarted):
            partials, stopped = [], False
        elif isinstance(e, SpeechStopped):
            stopped = True
        elif isinstance(e, TranscriptUpdate) and e.final:
            out.append((partials, e.text))
        elif isinstance(e, TranscriptUpdate) and not stopped:
            partials.append(e.text)
    return out


def offline(decoder, pcm24k: bytes) -> str:
    segments, _ = decoder.model.transcribe(pcm16_to_float(resample(pcm24k, 24_000, 16_000)), beam_size=1)
    return " ".join(s.text.strip() for s in segments)


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
    assert final.lower().strip(" .") == offline(decoder, speech).lower().strip(" .")
    for before, after in itertools.pairwise(partials):
        assert after.startswith(before)  # partials only grow


@pytest.mark.model
def test_silence_and_noise_produce_no_transcripts(decoder):
    rng = np.random.default_rng(1)
    noise = float_to_pcm16((0.05 * rng.standard_normal(3 * 24_000)).astype(np.float32))
    events = feed(decoder, bytes(3 * 24_000 * 2) + noise, expect_finals=0)
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


@pytest.mark.model
def test_round_trip_piper_to_streaming_asr(decoder, tts):
    speech = [tts.synthesize(s) for s in SENTENCES]
    pause = bytes(24_000 * 2)
    stream = b"".join(pause[: len(pause) // 2] + s + pause + pause for s in speech)
    # twice real time: the transcripts do not depend on the pace, and decoding keeps up with it
    heard = utterances(feed(decoder, stream, expect_finals=len(SENTENCES), speed=2.0))
    assert len(heard) == len(SENTENCES)
    errors = words = 0
    for sentence, audio, (partials, final) in zip(SENTENCES, speech, heard, strict=True):
        assert partials, f"no partial before the endpoint of {sentence!r}"
        assert all(after.startswith(before) for before, after in itertools.pairwise(partials))
        assert normalize(final) == normalize(offline(decoder, audio))
        e, n = word_errors(sentence, final)
        errors, words = errors + e, words + n
    print(f"round-trip WER {errors}/{words} = {errors / words:.1%}")
    assert errors / words <= 0.05


def human_speech() -> list[tuple[Path, str]]:
    """The LibriVox and cards recordings of pocketsphinx-testdata with their reference text."""
    if not TESTDATA.is_dir():
        pytest.fail(f"{TESTDATA} is missing: apt-get install pocketsphinx-testdata (.ci/run does)")
    out = []
    for folder, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (TESTDATA / folder / listing).read_text().splitlines():
            text, name = line.rsplit("(", 1)
            out.append((TESTDATA / folder / f"{name.strip(' )')}.wav", text.replace("<s>", "").replace("</s>", "")))
    return out


@pytest.mark.model
def test_real_human_speech_word_error_rate(decoder):
    # Whisper tiny.en's published WER is 5.6 % on LibriSpeech test-clean and 14.6 % on test-other; this
    # set is small (92 words: one error is 1.1 points), has 64 kb/s MP3-era audio, a reference with a
    # disfluency ("a more a amiable") and card names tiny.en mishears ("clubs" -> "close"). 15 % admits
    # tiny.en's known error rate and fails a broken pipeline: loops, lost or cut words.
    errors = words = 0
    for path, reference in human_speech():
        with wave.open(str(path)) as w:
            assert w.getframerate() == 16_000 and w.getnchannels() == 1
            pcm = w.readframes(w.getnframes())
        silence = bytes(16_000 * 2)
        heard = utterances(feed(decoder, silence[:16_000] + pcm + silence, rate=16_000, speed=2.0))
        hypothesis = " ".join(final for _, final in heard)
        e, n = word_errors(reference, hypothesis)
        print(f"{path.stem}: {e}/{n} {hypothesis!r}")
        assert len(normalize(hypothesis)) <= 2 * n, "the decoder looped"
        errors, words = errors + e, words + n
    print(f"human speech WER {errors}/{words} = {errors / words:.1%}")
    assert errors / words <= 0.15


@pytest.mark.model
def test_bad_audio_gets_a_clear_error_and_the_stream_goes_on(decoder, tts):
    text = "Set a timer for twenty five minutes."
    pcm = bytes(24_000) + tts.synthesize(text) + bytes(24_000 * 2)
    refused = []

    def between(asr, i):
        if i in (10, 30):
            with pytest.raises(AudioFormatError, match="even number of bytes") as error:
                asr.push(b"\x01\x02\x03")
            refused.append(str(error.value))

    heard = utterances(feed(decoder, pcm, speed=2.0, between=between))
    assert len(refused) == 2
    assert [normalize(final) for _, final in heard] == [normalize(text)]
