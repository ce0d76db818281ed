"""Contract tests: the official `openai` SDK's realtime client against the app, on the scripted LLM."""

import asyncio
import base64

import pytest
from openai import AsyncOpenAI

from agent.protocol import Answer, ToolCall
from evals.fake_llm import Recorded, Reply
from tests.server.realtime_support import running, until
from tests.support import step


def answer(text: str):
    return lambda rec: Reply(step("answer it", Answer(text)))


def test_session_created_updated_and_a_text_turn():
    async def main():
        async with running(answer("It is fourteen degrees in Paris.")) as (url, fake):
            client = AsyncOpenAI(api_key="k", base_url=url)
            async with client.realtime.connect(model="specvoice") as conn:
                created = await until(conn, "session.created")
                assert created.session.audio.output.format.rate == 24_000
                await conn.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                                   "instructions": "Be brief."})
                updated = await until(conn, "session.updated")
                assert updated.session.output_modalities == ["text"]
                await conn.conversation.item.create(item={
                    "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]})
                await until(conn, "conversation.item.added")
                await conn.response.create()
                seen = []
                done = await until(conn, "response.done", seen)
                deltas = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
                assert deltas == "It is fourteen degrees in Paris."
                assert done.response.status == "completed"
                assert done.response.output[0].content[0].text == deltas
                kinds = [e.type for e in seen]
                assert kinds.index("response.created") < kinds.index("response.output_item.added") < kinds.index(
                    "response.content_part.added") < kinds.index("response.output_text.done")
            await client.close()
            assert "What is the weather in Paris?" in fake.requests[0].prefix

    asyncio.run(main())


def stock_policy(rec: Recorded) -> Reply:
    """Call the client's stock tool, wait for its result, answer with it."""
    if "<tool_call>" not in rec.prefix:
        return Reply(step("look it up", ToolCall(1, "get_stock_price", {"symbol": "ACME"})))
    if "<tool_result" in rec.prefix:
        return Reply(step("have it", Answer("ACME trades at 42 dollars.")))
    return Reply(step("wait", "<pause/>\n"))


def test_client_tool_round_trip_surfaces_only_at_the_commit_point():
    async def main():
        async with running(stock_policy) as (url, _):
            client = AsyncOpenAI(api_key="k", base_url=url)
            async with client.realtime.connect(model="specvoice") as conn:
                await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "tools": [{
                    "type": "function", "name": "get_stock_price", "description": "The price of a stock.",
                    "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}},
                                   "required": ["symbol"]}}]})
                await until(conn, "session.updated")
                await conn.conversation.item.create(item={
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "ACME price?"}]})
                await conn.response.create()
                seen = []
                call = await until(conn, "response.function_call_arguments.done", seen)
                assert call.name == "get_stock_price" and call.arguments == '{"symbol": "ACME"}'
                first = await until(conn, "response.done", seen)
                assert first.response.output[-1].type == "function_call"
                await conn.conversation.item.create(item={
                    "type": "function_call_output", "call_id": call.call_id, "output": '{"price": 42}'})
                await conn.response.create()
                seen = []
                second = await until(conn, "response.done", seen)
                text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
                assert text == "ACME trades at 42 dollars." and second.response.status == "completed"
            await client.close()

    asyncio.run(main())


def test_response_cancel_and_error_events_keep_the_session():
    async def main():
        def slow_story(rec: Recorded) -> Reply:
            if "story" in rec.prefix.rsplit("<final_query_update>", 1)[-1]:
                return Reply(step("answer it", Answer("A long answer " * 40)), chunk_s=0.05)
            return Reply(step("answer it", Answer("Hello.")))

        async with running(slow_story) as (url, _):
            client = AsyncOpenAI(api_key="k", base_url=url)
            async with client.realtime.connect(model="specvoice") as conn:
                await until(conn, "session.created")
                await conn.send({"type": "no.such.event"})
                err = await until(conn, "error")
                assert err.error.code == "unknown_event" and "no.such.event" in err.error.message
                await conn.send({"type": "input_audio_buffer.append", "audio": "%%%not base64"})
                err = await until(conn, "error")
                assert err.error.code == "invalid_audio"
                await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
                await until(conn, "session.updated")
                await conn.conversation.item.create(item={
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a story"}]})
                await conn.response.create()
                await until(conn, "response.output_text.delta")
                await conn.response.cancel()
                done = await until(conn, "response.done")
                assert done.response.status == "cancelled"
                await conn.response.cancel()
                err = await until(conn, "error")
                assert err.error.code == "response_cancel_not_active"
                # the session still answers
                await conn.conversation.item.create(item={
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]})
                await conn.response.create()
                assert (await until(conn, "response.done")).response.status == "completed"
            await client.close()

    asyncio.run(main())


def spoken(text: str) -> bytes:
    from speech.tts import TTS

    return TTS(deterministic=True).synthesize(text)


async def play(conn, pcm: bytes, speed: float = 2.0) -> None:
    from speech.audio import paced

    async for piece in paced(pcm, 24_000, 40, speed):
        await conn.input_audio_buffer.append(audio=base64.b64encode(piece).decode())


@pytest.mark.model
def test_a_spoken_turn_end_to_end_and_barge_in():
    from speech.audio import WIRE_RATE

    question = spoken("What is the weather in Paris today?")
    interruption = spoken("Stop, never mind.")
    silence = bytes(WIRE_RATE * 2)

    async def main():
        async with running(answer("It is fourteen degrees in Paris, with light rain all afternoon. "
                                  "Take an umbrella if you go out.")) as (url, _):
            client = AsyncOpenAI(api_key="k", base_url=url)
            async with client.realtime.connect(model="specvoice") as conn:
                await until(conn, "session.created")
                seen = []
                speaking = asyncio.create_task(play(conn, silence[: WIRE_RATE] + question + silence))
                await until(conn, "response.output_audio.delta", seen)
                await speaking
                kinds = [e.type for e in seen]
                for kind in ("input_audio_buffer.speech_started", "conversation.item.input_audio_transcription.delta",
                             "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
                             "conversation.item.input_audio_transcription.completed", "response.created",
                             "response.output_audio_transcript.delta"):
                    assert kind in kinds, kind
                assert kinds.index("input_audio_buffer.speech_started") < kinds.index(
                    "input_audio_buffer.speech_stopped") < kinds.index("response.created")
                completed = next(e for e in seen if e.type == "conversation.item.input_audio_transcription.completed")
                assert completed.transcript.strip(" .?").lower() == "what is the weather in paris today"
                # barge in while the answer plays
                seen = []
                await play(conn, interruption + silence)
                done = await until(conn, "response.done", seen)
                assert done.response.status == "cancelled"
                assert "input_audio_buffer.speech_started" in [e.type for e in seen]
                # the interruption is a turn of its own, answered in full
                seen = []
                done = await until(conn, "response.done", seen)
                assert done.response.status == "completed"
                audio = b"".join(base64.b64decode(e.delta) for e in seen if e.type == "response.output_audio.delta")
                assert len(audio) / 2 / WIRE_RATE > 2.0  # the whole answer was spoken
            await client.close()

    asyncio.run(main())


def test_openai_agents_realtime_runs_its_own_function_tool():
    from agents import function_tool
    from agents.realtime import RealtimeAgent, RealtimeRunner

    calls = []

    @function_tool
    def get_stock_price(symbol: str) -> str:
        """The price of a stock."""
        calls.append(symbol)
        return '{"price": 42}'

    async def main():
        async with running(stock_policy) as (url, _):
            agent = RealtimeAgent(name="assistant", instructions="Answer briefly.", tools=[get_stock_price])
            runner = RealtimeRunner(agent, config={"model_settings": {"output_modalities": ["text"]},
                                                   "tracing_disabled": True})
            session = await runner.run(model_config={"url": url.replace("http", "ws") + "/realtime",
                                                     "api_key": "k"})
            async with session:
                await session.send_message("What does ACME trade at?")
                kinds = []
                async with asyncio.timeout(20):
                    async for event in session:
                        kinds.append(event.type)
                        if event.type == "error":
                            raise AssertionError(event)
                        if event.type == "agent_end" and "tool_end" in kinds:
                            break
            assert calls == ["ACME"]
            texts = [str(item) for item in session._history]
            assert any("ACME trades at 42 dollars." in t for t in texts), texts

    asyncio.run(main())


@pytest.mark.model
def test_manual_commit_without_server_vad_and_beta_event_names():
    question = spoken("What is the weather in Paris today?")

    async def main():
        async with running(answer("Fourteen degrees.")) as (url, _):
            client = AsyncOpenAI(api_key="k", base_url=url)
            async with client.realtime.connect(model="specvoice",
                                               extra_headers={"OpenAI-Beta": "realtime=v1"}) as conn:
                await until(conn, "session.created")
                await conn.send({"type": "session.update", "session": {"modalities": ["text"],
                                                                       "turn_detection": None}})
                updated = await until(conn, "session.updated")
                assert updated.session.turn_detection is None and updated.session.modalities == ["text"]
                for i in range(0, len(question), 9600):
                    await conn.input_audio_buffer.append(audio=base64.b64encode(question[i : i + 9600]).decode())
                await conn.input_audio_buffer.commit()
                seen = []
                completed = await until(conn, "conversation.item.input_audio_transcription.completed", seen)
                assert "input_audio_buffer.committed" in [e.type for e in seen]
                assert "speech_started" not in " ".join(e.type for e in seen)  # no VAD: the client decides
                assert completed.transcript.strip(" .?").lower() == "what is the weather in paris today"
                await conn.response.create()
                seen = []
                await until(conn, "response.done", seen)
                text = "".join(e.delta for e in seen if e.type == "response.text.delta")  # the beta name
                assert text == "Fourteen degrees."
            await client.close()

    asyncio.run(main())
