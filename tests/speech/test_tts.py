import asyncio

import pytest

from agent.clock import LoopClock
from agent.ledger import TTS_FIRST_AUDIO, TurnLedger
from speech.audio import WIRE_RATE
from speech.tts import TTS, TextSegmenter


def test_segmenter_cuts_sentences_and_long_clauses_only():
    seg = TextSegmenter(min_clause_chars=24)
    assert seg.push("It is sunny") == []
    assert seg.push(" in Paris. And, well") == ["It is sunny in Paris."]
    assert seg.push(", it will stay warm for the rest of the week, they say") == [
        "And, well, it will stay warm for the rest of the week,"
    ]
    assert seg.flush() == ["they say"]
    assert seg.flush() == []
    first = TextSegmenter(min_clause_chars=24, first_clause_chars=12)  # the first clause starts the audio
    assert first.push("I'm doing well, thanks, and you") == ["I'm doing well,"]
    assert first.push(", my friend? Fine") == ["thanks, and you, my friend?"]


@pytest.fixture(scope="module")
def tts():
    return TTS(deterministic=True, chunk_ms=40)


async def deltas(parts, gate=None):
    for p in parts:
        if gate is not None and p == "<gate>":
            await gate.wait()
            continue
        yield p


@pytest.mark.model
def test_first_audio_comes_before_the_text_is_complete_and_chunks_are_small(tts):
    async def main():
        gate = asyncio.Event()
        ledger = TurnLedger("t", LoopClock())
        stream = tts.stream(deltas(["It is fourteen", " degrees. ", "<gate>", "Light rain all day."], gate), ledger)
        chunks = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(stream.run())
            async for chunk in stream:
                chunks.append(chunk)
                gate.set()  # the rest of the answer arrives only once audio has come out
        return chunks, ledger

    chunks, ledger = asyncio.run(main())
    assert chunks[0].text == "It is fourteen degrees."
    assert [c.text for c in chunks if c.text] == ["It is fourteen degrees.", "Light rain all day."]
    segments: list[list[int]] = []
    for c in chunks:
        if c.text:
            segments.append([])
        segments[-1].append(len(c.pcm))
    for sizes in segments:  # 40 ms chunks; only a segment's last one may be shorter
        assert set(sizes[:-1]) == {WIRE_RATE * 40 // 1000 * 2} and 0 < sizes[-1] <= sizes[0]
    assert ledger.first(TTS_FIRST_AUDIO) is not None


@pytest.mark.model
def test_deterministic_synthesis_is_byte_identical(tts):
    assert tts.synthesize("Your timer is set for ten minutes.") == tts.synthesize("Your timer is set for ten minutes.")


@pytest.mark.model
def test_cancel_stops_output_within_one_chunk_and_drops_queued_text(tts):
    async def main():
        stream = tts.stream(deltas(["One sentence here. ", "Another one follows. ", "And a third one. "]), None)
        got = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(stream.run())
            async for chunk in stream:
                got.append(chunk)
                if len(got) == 3:
                    stream.cancel()
        return got

    got = asyncio.run(main())
    assert len(got) == 3  # nothing after the cancel
    assert all(c.text in ("", "One sentence here.") for c in got)
