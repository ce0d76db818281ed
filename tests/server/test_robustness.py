"""Bad input, many sessions, and clients that leave: the server answers with `error` events and keeps going."""

import asyncio
import base64
import json

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.llm import OpenAICompatibleLLM
from agent.protocol import Answer
from agent.tools import load_catalog
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, ScriptedLLM
from server.metrics import Metrics
from server.protocol import CLIENT_EVENTS
from server.session import RealtimeSession, Services, SpeechModels
from tests.server.realtime_support import running
from tests.server.realtime_support import settings as make_settings
from tests.support import step

SESSION_TASKS = ("RealtimeSession.", "Response.", "Turn.", "StreamingASR.", "TTSStream.", "ToolGraph.")


def session_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "").startswith(SESSION_TASKS)]


def quick(rec: Recorded) -> Reply:
    return Reply(step("answer", Answer("Sure, done.")))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["session", "audio", "item", "item_id", "content_index", "audio_end_ms", "response", "response_id",
          "delta", "text", "event_id", "previous_item_id"]
typed_events = st.builds(
    lambda kind, fields: json.dumps({**fields, "type": kind}),
    st.sampled_from([*CLIENT_EVENTS, "response.audio.delta", "nonsense", ""]),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
plausible = st.sampled_from([
    json.dumps({"type": "response.create"}), json.dumps({"type": "response.cancel"}),
    json.dumps({"type": "input_audio_buffer.commit"}), json.dumps({"type": "input_audio_buffer.clear"}),
    json.dumps({"type": "x.input_text.delta", "delta": "what is the weather"}),
    json.dumps({"type": "x.input_text.commit"}),
    json.dumps({"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0, "audio_end_ms": 5}),
    json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                             "content": [{"type": "input_text", "text": "hi"}]}}),
    json.dumps({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c",
                                                             "output": "{}"}}),
    json.dumps({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"],
                                                      "audio": {"input": {"turn_detection": None}}}}),
    json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(480)).decode()}),
])
raw_frames = st.one_of(
    st.text(max_size=40), st.binary(max_size=40), json_values.map(json.dumps), typed_events, plausible,
    st.just("{" * 50), st.just("x" * 5000),
)


def services_with_fake() -> Services:
    config = make_settings(max_message_bytes=4000)
    llm = OpenAICompatibleLLM("http://fake/v1", "scripted", transport=ASGIStreamTransport(ScriptedLLM(quick)))
    return Services(config, llm, load_catalog(config.agent.catalog), SpeechModels(config), Metrics())


async def serve(frames: list[str | bytes]) -> list[dict]:
    """One session fed `frames`, then a probe; returns what it sent. Text output keeps the TTS out."""
    sent: list[dict] = []

    async def send(text: str) -> None:
        sent.append(json.loads(text))

    services = services_with_fake()
    session = RealtimeSession(services, send)

    async def messages():
        yield json.dumps({"type": "session.update", "session": {"output_modalities": ["text"],
                                                                "audio": {"input": {"turn_detection": None}}}})
        for frame in frames:
            yield frame
            await asyncio.sleep(0)
        yield json.dumps({"type": "session.update", "event_id": "probe", "session": {"instructions": "probe"}})

    await session.run(messages())
    await services.llm.aclose()  # type: ignore[attr-defined]
    assert not session_tasks(), session_tasks()
    return sent


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_frames, min_size=1, max_size=25))
def test_malformed_and_out_of_order_events_only_get_error_events(frames):
    sent = asyncio.run(serve(frames))
    assert sent[0]["type"] == "session.created"
    assert sent[-1]["type"] == "session.updated" and sent[-1]["session"]["instructions"] == "probe"
    for event in sent:
        if event["type"] == "error":
            assert event["error"]["code"] not in ("server_error", None), event  # our fault, never the client's
            assert event["error"]["message"]


def test_every_kind_of_bad_input_is_named():
    bad = {
        "not json": "invalid_json", "[1, 2]": "invalid_event", '{"type": 5}': "invalid_event",
        '{"type": "nope"}': "unknown_event", '{"type": "input_audio_buffer.append"}': "invalid_event",
        '{"type": "input_audio_buffer.append", "audio": "@@@"}': "invalid_audio",
        '{"type": "input_audio_buffer.append", "audio": "AA=="}': "invalid_audio",  # one byte: odd
        '{"type": "conversation.item.retrieve", "item_id": "missing"}': "item_not_found",
        '{"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}}':
            "unsupported_audio_format",
        "x" * 5000: "message_too_large",
        '{"type": "response.cancel"}': "response_cancel_not_active",
        '{"type": "x.input_text.commit"}': "empty_text",
        '{"type": "input_audio_buffer.commit"}': "input_audio_buffer_commit_empty",
        json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_audio", "audio": "@@"}]}}): "invalid_audio",
        json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                 "content": []}}): "invalid_item",
    }
    for frame, code in bad.items():
        sent = asyncio.run(serve([frame]))
        errors = [e["error"] for e in sent if e["type"] == "error"]
        assert [e["code"] for e in errors] == [code], (frame, errors)


def test_a_bad_user_item_starts_no_turn():
    async def main():
        async def send(text: str) -> None:
            pass

        session = RealtimeSession(services_with_fake(), send)
        await session.handle(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "@@"}]}}))
        assert not session.busy and not session_tasks()
        await session.services.llm.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_eight_concurrent_sessions_complete_and_a_leaving_client_leaves_nothing_running():
    def policy(rec: Recorded) -> Reply:
        if "story" in rec.prefix.rsplit("<final_query_update>", 1)[-1]:
            return Reply(step("a long one", Answer("Once upon a time " * 50)), chunk_s=0.05)
        return Reply(step("answer", Answer("Sure, done.")), chunk_s=0.01)

    async def one_session(ws_url: str, n: int) -> str:
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"output_modalities": ["text"]}}))
            for i in range(3):
                await ws.send(json.dumps({"type": "x.input_text.delta", "delta": f"session {n} turn {i}"}))
                await ws.send(json.dumps({"type": "x.input_text.commit"}))
                while (event := json.loads(await ws.recv()))["type"] != "response.done":
                    assert event["type"] != "error", event
                assert event["response"]["status"] == "completed"
            return event["response"]["output"][0]["content"][0]["text"]

    async def main():
        async with running(policy) as (url, fake):
            ws_url = url.replace("http", "ws") + "/realtime"
            answers = await asyncio.gather(*(one_session(ws_url, n) for n in range(8)))
            assert answers == ["Sure, done."] * 8
            async with websockets.connect(ws_url) as ws:  # leaves mid-answer
                await ws.send(json.dumps({"type": "session.update", "session": {"output_modalities": ["text"]}}))
                await ws.send(json.dumps({"type": "x.input_text.commit", "text": "tell me a story"}))
                while json.loads(await ws.recv())["type"] != "response.output_text.delta":
                    pass
            async with asyncio.timeout(10):  # the server cancels the session's tasks; wait for them to end
                await fake.requests[-1].done.wait()
                while tasks := session_tasks():
                    await asyncio.wait(tasks)
            assert fake.requests[-1].aborted  # the LLM stream was closed, not left running

    asyncio.run(main())


@pytest.mark.parametrize("keys,header,subprotocols,ok", [
    ([], None, None, True),  # no keys: loopback only, and the tests are on loopback
    (["s3cret"], "Bearer s3cret", None, True),
    (["s3cret"], None, ["realtime", "openai-insecure-api-key.s3cret"], True),
    (["s3cret"], "Bearer wrong", None, False),
    (["s3cret"], None, None, False),
])
def test_api_keys_by_header_or_browser_subprotocol(keys, header, subprotocols, ok):
    async def main():
        async with running(quick, make_settings(api_keys=keys)) as (url, _):
            ws_url = url.replace("http", "ws") + "/realtime"
            headers = {"Authorization": header} if header else None
            try:
                async with websockets.connect(ws_url, additional_headers=headers, subprotocols=subprotocols) as ws:
                    first = json.loads(await ws.recv())
                    assert first["type"] == "session.created"
                    if subprotocols:
                        assert ws.subprotocol == "realtime"
                    return True
            except websockets.InvalidStatus as e:
                assert e.response.status_code == 403
                return False

    assert asyncio.run(main()) is ok


def test_session_limit_idle_timeout_health_metrics_and_turns():
    import httpx

    async def main():
        async with running(quick, make_settings(max_sessions=1, idle_timeout_s=0.5)) as (url, _):
            ws_url = url.replace("http", "ws") + "/realtime"
            async with websockets.connect(ws_url) as first:
                await first.recv()
                async with websockets.connect(ws_url) as second:
                    refused = json.loads(await second.recv())
                    assert refused["error"]["code"] == "too_many_sessions"
                await first.send(json.dumps({"type": "session.update", "session": {"output_modalities": ["text"]}}))
                await first.send(json.dumps({"type": "x.input_text.commit", "text": "hi there"}))
                seen = []
                while (event := json.loads(await first.recv()))["type"] != "error":
                    seen.append(event["type"])  # the answer, then nothing for 0.5 s
                assert "response.done" in seen, seen
                assert event["error"]["code"] == "idle_timeout"
            base = url.removesuffix("/v1")
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{base}/healthz")).json()["status"] == "ok"
                metrics = (await http.get(f"{base}/metrics")).text
                assert 'specvoice_turns_total{status="completed"} 1.0' in metrics
                assert "specvoice_response_latency_seconds_bucket" in metrics
                assert 'specvoice_sessions_rejected_total{reason="full"} 1.0' in metrics
                turns = (await http.get(f"{base}/v1/turns")).json()["turns"]
                assert turns[-1]["status"] == "completed" and turns[-1]["derived"]["response_latency"] is not None

    asyncio.run(main())
