"""One Realtime session per WebSocket: speech -> agent -> speech, in one task group.

The receive loop validates each client event and applies it at once (`handle`); anything slow runs as
a task of the session: the ASR stream and the loop that hears it, one driver per agent turn, and one
speaker per response. One sender drains the outgoing queue. A bad event gets an `error` event naming
it; nothing else changes. When the client goes, every task of the session is cancelled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from agent.events import AnswerDelta, ToolCallEvent, TraceEvent, TranscriptUpdate, TurnDone, TurnStatus
from agent.ledger import FIRST_AUDIO, SPEECH_END, SPEECH_START
from agent.llm import LLM
from agent.tools import Catalog, ToolBox, ToolContext, client_tool
from agent.worker import AgentSession, Turn
from configs.settings import Settings
from server.metrics import Metrics
from server.protocol import (
    BETA_NAMES,
    AudioAppend,
    ItemCreate,
    ItemRef,
    ItemTruncate,
    ProtocolError,
    ResponseCancel,
    SessionConfig,
    SessionUpdate,
    TextCommit,
    TextDelta,
    decode_audio,
    error_event,
    new_id,
    parse_client_event,
)
from speech.asr import ASRSettings, StreamingASR, WhisperDecoder, model_dir
from speech.audio import ASR_RATE, WIRE_RATE, pcm16_to_float, resample
from speech.tts import TTS, AudioChunk
from speech.vad import SpeechStarted, SpeechStopped

log = logging.getLogger("specvoice.session")


class SpeechModels:
    """The ASR decoder and the TTS voice, loaded once per process (in a thread) and shared."""

    def __init__(self, settings: Settings, decoder: WhisperDecoder | None = None, tts: TTS | None = None) -> None:
        self.settings = settings.speech
        self.decoder, self.tts = decoder, tts
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self.decoder is not None and self.tts is not None

    async def load(self) -> tuple[WhisperDecoder, TTS]:
        async with self._lock:
            if self.decoder is None:
                path = await asyncio.to_thread(model_dir, self.settings.asr_model)
                self.decoder = await asyncio.to_thread(WhisperDecoder, path, self.settings.asr_threads)
            if self.tts is None:
                self.tts = await asyncio.to_thread(lambda: TTS(chunk_ms=self.settings.tts_chunk_ms))
        assert self.decoder is not None and self.tts is not None
        return self.decoder, self.tts


@dataclass
class Services:
    """What the sessions of one app share."""

    settings: Settings
    llm: LLM
    catalog: Catalog
    speech: SpeechModels
    metrics: Metrics
    sessions: int = 0


@dataclass
class Outgoing:
    event: dict[str, Any]
    response_id: str | None = None  # audio of a response: dropped if the response is cancelled first
    on_sent: Callable[[], None] | None = None


@dataclass
class TurnState:
    turn: Turn
    credits: int  # responses the turn may open: 1 with server VAD's create_response, +1 per response.create
    granted: asyncio.Event = field(default_factory=asyncio.Event)
    response: Response | None = None
    done: bool = False


class Response:
    """One Realtime response: an assistant message (text or audio + transcript) and function calls."""

    def __init__(self, session: RealtimeSession, state: TurnState) -> None:
        self.s = session
        self.state = state
        self.id = new_id("resp")
        self.audio = "audio" in session.config.output_modalities
        self.output: list[dict[str, Any]] = []
        self.status = "in_progress"
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._tts_text: asyncio.Queue[str | None] = asyncio.Queue()
        self._speaker: asyncio.Task[None] | None = None
        self.audio_ms = 0.0

    def _wire(self) -> dict[str, Any]:
        return {"id": self.id, "object": "realtime.response", "status": self.status, "output": self.output,
                "output_modalities": ["audio"] if self.audio else ["text"],
                "status_details": None if self.status != "cancelled" else {"type": "cancelled",
                                                                           "reason": "turn_detected"}}

    def start(self) -> None:
        self.s.emit({"type": "response.created", "response": self._wire()})

    def _open_message(self) -> dict[str, Any]:
        if self._message is None:
            item: dict[str, Any] = {"id": new_id("item"), "object": "realtime.item", "type": "message",
                                    "role": "assistant", "status": "in_progress", "content": []}
            self._message = item
            self.output.append(item)
            self.s.add_item(item)
            self.s.emit({"type": "response.output_item.added", "response_id": self.id,
                         "output_index": len(self.output) - 1, "item": item})
            part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
            self.s.emit({"type": "response.content_part.added", "response_id": self.id, "item_id": item["id"],
                         "output_index": len(self.output) - 1, "content_index": 0, "part": part})
            if self.audio:
                self._speaker = self.s.spawn(self._speak(item["id"], len(self.output) - 1))
        return self._message

    def add_text(self, text: str) -> None:
        item = self._open_message()
        self._text.append(text)
        kind = "response.output_audio_transcript.delta" if self.audio else "response.output_text.delta"
        self.s.emit({"type": kind, "response_id": self.id, "item_id": item["id"],
                     "output_index": self.output.index(item), "content_index": 0, "delta": text})
        if self.audio:
            self._tts_text.put_nowait(text)

    async def _text_stream(self) -> AsyncIterator[str]:
        while (text := await self._tts_text.get()) is not None:
            yield text

    async def _speak(self, item_id: str, output_index: int) -> None:
        """TTS of the answer text as it streams, sent at real time plus a small lead."""
        _, tts = await self.s.services.speech.load()
        stream = tts.stream(self._text_stream(), self.state.turn.ledger)
        loop = asyncio.get_running_loop()
        lead = self.s.services.settings.server.audio_lead_s
        start: float | None = None
        ledger = self.state.turn.ledger

        def first_sent() -> None:
            if ledger.first(FIRST_AUDIO) is None:
                ledger.mark(FIRST_AUDIO)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(stream.run())
            chunk: AudioChunk
            async for chunk in stream:
                start = loop.time() if start is None else start
                await asyncio.sleep(max(0.0, start + self.audio_ms / 1000 - lead - loop.time()))
                if self.status != "in_progress":
                    stream.cancel()
                    break
                self.s.emit({"type": "response.output_audio.delta", "response_id": self.id, "item_id": item_id,
                             "output_index": output_index, "content_index": 0,
                             "delta": base64.b64encode(chunk.pcm).decode()},
                            response_id=self.id, on_sent=first_sent)
                self.audio_ms += len(chunk.pcm) / 2 / WIRE_RATE * 1000

    def function_call(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self._close_message()
        args = json.dumps(arguments)
        item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call", "status": "completed",
                "call_id": call_id, "name": name, "arguments": args}
        self.output.append(item)
        self.s.add_item(item)
        index = len(self.output) - 1
        common = {"response_id": self.id, "item_id": item["id"], "output_index": index, "call_id": call_id}
        self.s.emit({"type": "response.output_item.added", "response_id": self.id, "output_index": index,
                     "item": {**item, "arguments": "", "status": "in_progress"}})
        self.s.emit({"type": "response.function_call_arguments.delta", **common, "delta": args})
        self.s.emit({"type": "response.function_call_arguments.done", **common, "name": name, "arguments": args})
        self.s.emit({"type": "response.output_item.done", "response_id": self.id, "output_index": index,
                     "item": item})

    def _close_message(self) -> None:
        self._tts_text.put_nowait(None)

    async def finish(self, status: str = "completed") -> None:
        """Let the audio play out, then close the message and the response."""
        self._close_message()
        if self._speaker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaker
        if self.status == "in_progress":
            self.status = status
            self._done_events()

    def cancel(self) -> None:
        if self.status != "in_progress":
            return
        self.status = "cancelled"
        self._close_message()
        if self._speaker is not None:
            self._speaker.cancel()
        self.s.drop_audio(self.id)
        self._done_events()

    def _done_events(self) -> None:
        item = self._message
        if item is not None:
            text = "".join(self._text)
            index = self.output.index(item)
            ids = {"response_id": self.id, "item_id": item["id"], "output_index": index, "content_index": 0}
            # content parts are "audio"/"text" in part events and "output_audio"/"output_text" in items
            if self.audio:
                part = {"type": "audio", "transcript": text}
                self.s.emit({"type": "response.output_audio.done", **ids})
                self.s.emit({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
            else:
                part = {"type": "text", "text": text}
                self.s.emit({"type": "response.output_text.done", **ids, "text": text})
            item["content"] = [{**part, "type": f"output_{part['type']}"}]
            item["status"] = "completed" if self.status == "completed" else "incomplete"
            self.s.emit({"type": "response.content_part.done", **ids, "part": part})
            self.s.emit({"type": "response.output_item.done", "response_id": self.id, "output_index": index,
                         "item": item})
        self.s.emit({"type": "response.done", "response": self._wire()})
        if self.state.response is self:
            self.state.response = None


class RealtimeSession:
    def __init__(self, services: Services, send: Callable[[str], Awaitable[None]], *, beta: bool = False,
                 x_events: bool = False) -> None:
        self.services = services
        self.settings = services.settings
        self._send = send
        self.beta = beta
        self.config = SessionConfig(model=services.settings.llm.model, x_events=x_events)
        self.toolbox = ToolBox(services.catalog, latency_s=self.settings.agent.tool_latency_s,
                               timeout_s=self.settings.agent.tool_timeout_s)
        self.agent = AgentSession(services.llm, self.toolbox, self.settings.agent_config())
        self.items: dict[str, dict[str, Any]] = {}
        self._outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._dropped_responses: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._turn: TurnState | None = None
        self._asr: StreamingASR | None = None
        self._manual_audio = bytearray()
        self._heard_item: str | None = None
        self._heard_partial = ""
        self._typed = ""
        self._typed_turn: TurnState | None = None
        self._calls: dict[str, asyncio.Future[str]] = {}

    @property
    def busy(self) -> bool:
        """A turn is being heard or answered."""
        return self._turn is not None and not self._turn.done

    # -- plumbing -------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("session task failed", exc_info=exc)
            self.error(ProtocolError(f"internal error: {type(exc).__name__}: {exc}", "server_error"), None,
                       "server_error")

    def emit(self, event: dict[str, Any], *, response_id: str | None = None,
             on_sent: Callable[[], None] | None = None) -> None:
        event.setdefault("event_id", new_id("event"))
        if self.beta:
            event["type"] = BETA_NAMES.get(event["type"], event["type"])
        self._outbox.put_nowait(Outgoing(event, response_id, on_sent))

    def x(self, event: dict[str, Any]) -> None:
        if self.config.x_events:
            self.emit(event)

    def error(self, e: ProtocolError, client_event_id: str | None, type_: str = "invalid_request_error") -> None:
        self.services.metrics.errors.labels(e.code).inc()
        self.emit(error_event(e, client_event_id, type_))

    def drop_audio(self, response_id: str) -> None:
        self._dropped_responses.add(response_id)

    def add_item(self, item: dict[str, Any]) -> None:
        self.items[item["id"]] = item

    async def _sender(self) -> None:
        while (out := await self._outbox.get()) is not None:
            if out.response_id is not None and out.response_id in self._dropped_responses:
                continue  # queued audio of a cancelled response: the client must not hear it
            await self._send(json.dumps(out.event))
            if out.on_sent is not None:
                out.on_sent()

    async def run(self, messages: AsyncIterator[str | bytes]) -> None:
        """Serve until the client goes; then cancel everything this session started."""
        sender = asyncio.create_task(self._sender())
        self.emit({"type": "session.created", "session": self.config.to_wire(self.beta)})
        try:
            async for raw in messages:
                await self.handle(raw)
                if sender.done():
                    break
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks))
            if self._asr is not None:
                self._asr.close()
            self._outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender

    # -- client events --------------------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        event_id = None
        try:
            if len(raw) > self.settings.server.max_message_bytes:
                raise ProtocolError(f"the message has {len(raw)} bytes, more than the limit of "
                                    f"{self.settings.server.max_message_bytes}", "message_too_large")
            event = parse_client_event(raw)
            event_id = event.event_id
            await self._apply(event)
        except ProtocolError as e:
            self.error(e, event_id)

    async def _apply(self, event: Any) -> None:
        match event.type:
            case "session.update":
                self._session_update(event)
            case "input_audio_buffer.append":
                await self._append(event)
            case "input_audio_buffer.commit":
                await self._commit()
            case "input_audio_buffer.clear":
                self._manual_audio.clear()
                self.emit({"type": "input_audio_buffer.cleared"})
            case "conversation.item.create":
                await self._item_create(event)
            case "conversation.item.truncate":
                self._truncate(event)
            case "conversation.item.delete":
                self._item(event)
                del self.items[event.item_id]
                self.emit({"type": "conversation.item.deleted", "item_id": event.item_id})
            case "conversation.item.retrieve":
                self.emit({"type": "conversation.item.retrieved", "item": self._item(event)})
            case "response.create":
                self._response_create()
            case "response.cancel":
                self._response_cancel(event)
            case "output_audio_buffer.clear":
                if self._turn is not None and self._turn.response is not None:
                    self._turn.response.cancel()
                self.emit({"type": "output_audio_buffer.cleared"})
            case "x.input_text.delta":
                self._text_delta(event)
            case "x.input_text.commit":
                self._text_commit(event)

    def _session_update(self, event: SessionUpdate) -> None:
        old_td = self.config.turn_detection
        self.config.update(event.session)
        if "tools" in event.session:
            tools = [client_tool(t.name, t.description, t.parameters, self._client_tool_fn(t.name))
                     for t in self.config.tools]
            try:
                self.toolbox.set_client_tools(tools)
            except ValueError as e:
                self.config.tools = []
                self.toolbox.set_client_tools([])
                raise ProtocolError(str(e), "invalid_session", "session.tools") from e
        if self.config.turn_detection != old_td and self._asr is not None:
            self._asr.close()  # the next audio starts a stream with the new VAD settings
            self._asr = None
        self.emit({"type": "session.updated", "session": self.config.to_wire(self.beta)})

    # -- audio in ---------------------------------------------------------------------------------------

    async def _append(self, event: AudioAppend) -> None:
        pcm = decode_audio(event.audio)
        if self.config.turn_detection is None:
            self._manual_audio += pcm
            return
        if self._asr is None:
            decoder, _ = await self.services.speech.load()
            td = self.config.turn_detection
            settings = ASRSettings(partial_interval_ms=self.settings.speech.partial_interval_ms, vad=td.vad())
            self._asr = StreamingASR(decoder, settings, rate=WIRE_RATE)
            self.spawn(self._asr.run())
            self.spawn(self._hear(self._asr))
        self._asr.push(pcm)

    async def _hear(self, asr: StreamingASR) -> None:
        async for e in asr.events():
            if isinstance(e, SpeechStarted):
                self._heard_item, self._heard_partial = new_id("item"), ""
                self.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": e.audio_start_ms,
                           "item_id": self._heard_item})
                td = self.config.turn_detection
                if td is None or td.interrupt_response:
                    self._interrupt()
                state = self._start_turn(auto_response=td is None or td.create_response)
                state.turn.ledger.mark(SPEECH_START, audio_ms=e.audio_start_ms)
            elif isinstance(e, SpeechStopped) and self._heard_item is not None:
                if self._turn is not None:
                    self._turn.turn.ledger.mark(SPEECH_END, audio_ms=e.audio_end_ms)
                self.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": e.audio_end_ms,
                           "item_id": self._heard_item})
                self._user_audio_item(self._heard_item)
            elif isinstance(e, TranscriptUpdate) and self._heard_item is not None and self._turn is not None:
                if e.final:
                    self._transcribed(self._heard_item, e.text, self._turn)
                    self._heard_item = None
                elif e.text.startswith(self._heard_partial):
                    delta, self._heard_partial = e.text[len(self._heard_partial):], e.text
                    self._turn.turn.push(e)
                    self.emit({"type": "conversation.item.input_audio_transcription.delta",
                               "item_id": self._heard_item, "content_index": 0, "delta": delta})

    def _user_audio_item(self, item_id: str) -> None:
        previous = next(reversed(self.items), None)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_audio", "transcript": None}]}
        self.add_item(item)
        self.emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})

    def _transcribed(self, item_id: str, text: str, state: TurnState) -> None:
        item = self.items.get(item_id)
        if item is not None:
            item["content"][0]["transcript"] = text
        self.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                   "content_index": 0, "transcript": text})
        if item is not None:
            self.emit({"type": "conversation.item.done", "item": item})
        if text.strip():
            state.turn.push(TranscriptUpdate(text, final=True))
        else:
            state.turn.cancel()  # it was not speech after all: nothing to answer

    async def _commit(self) -> None:
        if self.config.turn_detection is not None:
            raise ProtocolError("input_audio_buffer.commit: server VAD commits the audio itself (set "
                                "turn_detection to null to commit by hand)", "commit_with_server_vad")
        if len(self._manual_audio) < WIRE_RATE // 10 * 2:
            raise ProtocolError("input_audio_buffer.commit: the buffer holds less than 100 ms of audio",
                                "input_audio_buffer_commit_empty")
        pcm, self._manual_audio = bytes(self._manual_audio), bytearray()
        item_id = new_id("item")
        self._interrupt()
        state = self._start_turn(auto_response=False)
        state.turn.ledger.mark(SPEECH_END)
        self._user_audio_item(item_id)
        self.spawn(self._transcribe(item_id, pcm, state))

    async def _transcribe(self, item_id: str, pcm: bytes, state: TurnState) -> None:
        decoder, _ = await self.services.speech.load()
        samples = pcm16_to_float(resample(pcm, WIRE_RATE, ASR_RATE))
        hyp = await asyncio.to_thread(decoder.transcribe, samples)
        self._transcribed(item_id, hyp.text if hyp.no_speech_prob < ASRSettings.no_speech_threshold else "", state)

    # -- text in --------------------------------------------------------------------------------------

    async def _item_create(self, event: ItemCreate) -> None:
        item = dict(event.item)
        kind = item.get("type", "message")
        item.setdefault("id", new_id("item"))
        item["object"] = "realtime.item"
        if kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise ProtocolError("function_call_output needs a string call_id and a string output",
                                    "invalid_item", "item")
            future = self._calls.get(call_id)
            if future is None:
                raise ProtocolError(f"no function call {call_id!r} is waiting for its output", "unknown_call_id",
                                    "item.call_id")
            if not future.done():
                future.set_result(output)
        elif kind == "message":
            role, content = item.get("role"), item.get("content")
            if role not in ("user", "assistant", "system") or not isinstance(content, list):
                raise ProtocolError("a message item needs role user/assistant/system and a content list",
                                    "invalid_item", "item")
            text = " ".join(str(c.get("text") or c.get("transcript") or "") for c in content if isinstance(c, dict))
            audio = [c.get("audio") for c in content if isinstance(c, dict) and c.get("type") == "input_audio"]
            if role == "user":  # validate first: a bad item must not start (or interrupt) a turn
                pcm = decode_audio(str(audio[0])) if audio and audio[0] else None
                if pcm is None and not text.strip():
                    raise ProtocolError("a user message needs input_text or input_audio content", "invalid_item",
                                        "item.content")
                self._interrupt()
                state = self._start_turn(auto_response=False)
                if pcm is not None:
                    self.spawn(self._transcribe(item["id"], pcm, state))
                else:
                    state.turn.push(TranscriptUpdate(text.strip(), final=True))
        else:
            raise ProtocolError(f"conversation.item.create: item type {kind!r} is not supported (message, "
                                "function_call_output)", "invalid_item", "item.type")
        item["status"] = "completed"
        self._conversation_item(item, event.previous_item_id)

    def _text_delta(self, event: TextDelta) -> None:
        state = self._typed_turn
        if state is None or state.done or state.turn.final:
            self._interrupt()
            state = self._typed_turn = self._start_turn(auto_response=True)
            self._typed = ""
        self._typed += event.delta
        if self._typed.strip():
            state.turn.push(TranscriptUpdate(self._typed.strip()))

    def _text_commit(self, event: TextCommit) -> None:
        state, text = self._typed_turn, (event.text if event.text is not None else self._typed).strip()
        self._typed_turn, self._typed = None, ""
        if state is None and text:
            self._interrupt()
            state = self._start_turn(auto_response=True)
        if state is None or not text:
            if state is not None:
                state.turn.cancel()
            raise ProtocolError("x.input_text.commit: no text was typed since the last commit", "empty_text")
        state.turn.push(TranscriptUpdate(text, final=True))
        self._conversation_item({"id": new_id("item"), "object": "realtime.item", "type": "message", "role": "user",
                                 "status": "completed", "content": [{"type": "input_text", "text": text}]})

    def _conversation_item(self, item: dict[str, Any], previous: str | None = None) -> None:
        """A complete item joins the conversation: added, then done."""
        previous = previous or next(reversed(self.items), None)
        self.add_item(item)
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    def _item(self, event: ItemRef | ItemTruncate) -> dict[str, Any]:
        item = self.items.get(event.item_id)
        if item is None:
            raise ProtocolError(f"no conversation item {event.item_id!r}", "item_not_found", "item_id")
        return item

    def _truncate(self, event: ItemTruncate) -> None:
        item = self._item(event)
        if item.get("role") != "assistant":
            raise ProtocolError("only assistant audio can be truncated", "invalid_item", "item_id")
        if event.audio_end_ms < 0:
            raise ProtocolError("audio_end_ms must not be negative", "invalid_value", "audio_end_ms")
        if self._turn is not None and self._turn.response is not None and item in self._turn.response.output:
            self._turn.response.cancel()
        item["x_audio_end_ms"] = event.audio_end_ms  # what the user actually heard
        self.emit({"type": "conversation.item.truncated", "item_id": event.item_id,
                   "content_index": event.content_index, "audio_end_ms": event.audio_end_ms})

    # -- turns and responses --------------------------------------------------------------------------

    def _start_turn(self, *, auto_response: bool) -> TurnState:
        state = TurnState(self.agent.new_turn(), credits=1 if auto_response else 0)
        self._turn = state
        self.spawn(self._drive(state))
        return state

    def _interrupt(self) -> None:
        """Barge-in: the user speaks (or types) again; the turn in progress and its response stop."""
        state = self._turn
        if state is None or state.done:
            return
        if state.response is not None:
            state.response.cancel()
        state.turn.cancel()
        for future in self._calls.values():
            future.cancel()

    def _response_create(self) -> None:
        state = self._turn
        if state is not None and state.response is not None:
            raise ProtocolError("a response is already in progress", "conversation_already_has_active_response")
        if state is not None and not state.done:
            state.credits += 1
            state.granted.set()
            return
        empty = Response(self, TurnState(self.agent.new_turn(), 0, done=True))  # nothing to answer
        empty.start()
        empty.status = "completed"
        empty._done_events()

    def _response_cancel(self, event: ResponseCancel) -> None:
        state = self._turn
        response = state.response if state is not None else None
        if state is None or response is None or (event.response_id and event.response_id != response.id):
            raise ProtocolError("there is no response in progress to cancel", "response_cancel_not_active")
        response.cancel()
        state.turn.cancel()

    async def _response(self, state: TurnState) -> Response:
        if state.response is None:
            while state.credits == 0:
                state.granted.clear()
                await state.granted.wait()
            state.credits -= 1
            state.response = Response(self, state)
            state.response.start()
        return state.response

    async def _drive(self, state: TurnState) -> None:
        """Run one agent turn and turn its events into Realtime events."""
        turn = state.turn
        done: TurnDone | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(turn.run())
                async for ev in turn.events():
                    if isinstance(ev, ToolCallEvent):
                        self.x({"type": f"x.tool_call.{ev.event}", "turn_id": ev.turn_id, "call_id": ev.call_id,
                                "name": ev.name, "arguments": ev.arguments, "state": str(ev.state),
                                "speculative": ev.speculative, "result": _short(ev.result)})
                    elif isinstance(ev, TraceEvent):
                        self.x({"type": "x.trace", "turn_id": ev.turn_id, "text": ev.text, "source": ev.source})
                    elif isinstance(ev, AnswerDelta):
                        (await self._response(state)).add_text(ev.text)
                    elif isinstance(ev, TurnDone):
                        done = ev
            if done is not None and done.status != TurnStatus.CANCELLED:
                if state.response is None and done.status == TurnStatus.FAILED and state.credits:
                    await self._response(state)
                if state.response is not None:
                    await state.response.finish("completed" if done.status != TurnStatus.FAILED else "failed")
                if done.error:
                    self.error(ProtocolError(f"the turn failed: {done.error}", "turn_failed"), None, "server_error")
        finally:
            state.done = True
            if state.response is not None:
                state.response.cancel()
            status = str(done.status) if done is not None else "cancelled"
            ledger = turn.ledger.to_dict()
            self.services.metrics.record_turn(ledger, status)
            self.x({"type": "x.turn.latency", "turn_id": turn.id, "status": status, "ledger": ledger})

    def _client_tool_fn(self, name: str) -> Callable[[Any, ToolContext], Awaitable[Any]]:
        async def run(args: Any, ctx: ToolContext) -> Any:
            state = self._turn
            if state is None:
                raise RuntimeError("a client tool ran outside a turn")
            response = await self._response(state)
            call_id = new_id("call")
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._calls[call_id] = future
            try:
                response.function_call(call_id, name, args.model_dump(exclude_none=True))
                await response.finish()  # the client runs it, then sends its output and response.create
                output = await future
            finally:
                self._calls.pop(call_id, None)
            try:
                return json.loads(output)
            except json.JSONDecodeError:
                return output

        return run


def _short(value: Any, limit: int = 2000) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "..."

