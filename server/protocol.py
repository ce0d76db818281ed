"""The OpenAI Realtime wire protocol: client event validation, session shapes, GA and beta names.

Client events are validated here and turned into `ProtocolError`s that name the problem; the session
answers those with an `error` event and keeps going. The server speaks the GA event names; a client
that connected with `OpenAI-Beta: realtime=v1` gets the beta names (`BETA_NAMES`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from speech.vad import VADSettings

BETA_NAMES = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}{next(_counter):04d}"


class ProtocolError(Exception):
    """A client event the server cannot use. `code` is machine-readable; the message says why."""

    def __init__(self, message: str, code: str = "invalid_request", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def error_event(e: ProtocolError, client_event_id: str | None, type_: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "code": e.code, "message": str(e), "param": e.param,
                                       "event_id": client_event_id}}


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    event_id: str | None = None


class SessionUpdate(_Event):
    session: dict[str, Any]


class AudioAppend(_Event):
    audio: str


class ItemCreate(_Event):
    item: dict[str, Any]
    previous_item_id: str | None = None


class ItemTruncate(_Event):
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class ItemRef(_Event):
    item_id: str


class ResponseCreate(_Event):
    response: dict[str, Any] | None = None


class ResponseCancel(_Event):
    response_id: str | None = None


class TextDelta(_Event):
    delta: str


class TextCommit(_Event):
    text: str | None = None  # the final text, if it differs from the deltas (the user edited it)


CLIENT_EVENTS: dict[str, type[_Event]] = {
    "session.update": SessionUpdate,
    "input_audio_buffer.append": AudioAppend,
    "input_audio_buffer.commit": _Event,
    "input_audio_buffer.clear": _Event,
    "conversation.item.create": ItemCreate,
    "conversation.item.truncate": ItemTruncate,
    "conversation.item.delete": ItemRef,
    "conversation.item.retrieve": ItemRef,
    "response.create": ResponseCreate,
    "response.cancel": ResponseCancel,
    "output_audio_buffer.clear": _Event,
    "x.input_text.delta": TextDelta,
    "x.input_text.commit": TextCommit,
}


def parse_client_event(raw: str | bytes) -> _Event:
    """A validated client event, or a `ProtocolError` naming what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(f"the message is not valid JSON: {e}", "invalid_json") from e
    if not isinstance(data, dict):
        raise ProtocolError("an event must be a JSON object with a string 'type'", "invalid_event")
    event_type = data.get("type")
    if not isinstance(event_type, str):
        raise ProtocolError("an event must be a JSON object with a string 'type'", "invalid_event", "type")
    model = CLIENT_EVENTS.get(event_type)
    if model is None:
        raise ProtocolError(f"unknown event type {event_type!r}", "unknown_event", "type")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ProtocolError(f"{event_type}: {where}: {err['msg']}", "invalid_event", where) from e


def decode_audio(b64: str) -> bytes:
    try:
        pcm = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(f"input_audio_buffer.append: audio is not valid base64: {e}", "invalid_audio",
                            "audio") from e
    if len(pcm) % 2:
        raise ProtocolError(f"input_audio_buffer.append: pcm16 audio needs an even number of bytes, got {len(pcm)}",
                            "invalid_audio", "audio")
    return pcm


@dataclass
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def vad(self) -> VADSettings:
        return VADSettings(self.threshold, self.prefix_padding_ms, self.silence_duration_ms)

    def to_wire(self) -> dict[str, Any]:
        return {"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms, "create_response": self.create_response,
                "interrupt_response": self.interrupt_response}


@dataclass
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class SessionConfig:
    """The session as one shape; `to_wire` writes it back in the client's (GA or beta)."""

    id: str = field(default_factory=lambda: new_id("sess"))
    model: str = "specvoice"
    instructions: str = ""
    output_modalities: list[Literal["text", "audio"]] = field(default_factory=lambda: ["audio"])
    voice: str = "joe"
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription: dict[str, Any] | None = field(default_factory=lambda: {"model": "whisper-tiny.en"})
    tools: list[FunctionTool] = field(default_factory=list)
    tool_choice: str = "auto"
    x_events: bool = False

    def update(self, s: dict[str, Any]) -> None:
        """Apply a `session.update` in either shape; a bad field raises before anything changes."""
        new = SessionConfig(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        if "instructions" in s:
            new.instructions = _typed(s, "instructions", str)
        if "model" in s:
            new.model = _typed(s, "model", str)
        modalities = s.get("output_modalities", s.get("modalities"))
        if modalities is not None:
            if not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"} or not modalities:
                raise ProtocolError("session.output_modalities must be a list of 'text' and/or 'audio'",
                                    "invalid_session", "session.output_modalities")
            new.output_modalities = ["audio"] if "audio" in modalities else ["text"]
        audio = s.get("audio") or {}
        if not isinstance(audio, dict):
            raise ProtocolError("session.audio must be an object", "invalid_session", "session.audio")
        audio_in, audio_out = audio.get("input") or {}, audio.get("output") or {}
        for fmt in (audio_in.get("format"), audio_out.get("format"), s.get("input_audio_format"),
                    s.get("output_audio_format")):
            _check_format(fmt)
        voice = audio_out.get("voice", s.get("voice"))
        if voice is not None:
            new.voice = str(voice)  # one voice ships; any name is accepted and spoken with it
        if "turn_detection" in audio_in or "turn_detection" in s:
            td = audio_in["turn_detection"] if "turn_detection" in audio_in else s["turn_detection"]
            new.turn_detection = _turn_detection(td, self.turn_detection)
        if "transcription" in audio_in or "input_audio_transcription" in s:
            new.transcription = audio_in.get("transcription", s.get("input_audio_transcription"))
        if "tools" in s:
            new.tools = _tools(s["tools"])
        if "tool_choice" in s:
            new.tool_choice = str(s["tool_choice"])
        if "x_events" in s:
            new.x_events = _typed(s, "x_events", bool)
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(new, k))

    def to_wire(self, beta: bool) -> dict[str, Any]:
        td = self.turn_detection.to_wire() if self.turn_detection else None
        tools = [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
                 for t in self.tools]
        if beta:
            return {"id": self.id, "object": "realtime.session", "model": self.model,
                    "modalities": ["text", "audio"] if "audio" in self.output_modalities else ["text"],
                    "instructions": self.instructions, "voice": self.voice, "input_audio_format": "pcm16",
                    "output_audio_format": "pcm16", "input_audio_transcription": self.transcription,
                    "turn_detection": td, "tools": tools, "tool_choice": self.tool_choice,
                    "x_events": self.x_events}
        fmt = {"type": "audio/pcm", "rate": 24_000}
        return {"type": "realtime", "object": "realtime.session", "id": self.id, "model": self.model,
                "output_modalities": self.output_modalities, "instructions": self.instructions,
                "audio": {"input": {"format": fmt, "transcription": self.transcription, "turn_detection": td},
                          "output": {"format": fmt, "voice": self.voice}},
                "tools": tools, "tool_choice": self.tool_choice, "x_events": self.x_events}


def _typed(s: dict[str, Any], key: str, kind: type) -> Any:
    if not isinstance(s[key], kind):
        raise ProtocolError(f"session.{key} must be a {kind.__name__}", "invalid_session", f"session.{key}")
    return s[key]


def _check_format(fmt: Any) -> None:
    if fmt is None or fmt == "pcm16" or (isinstance(fmt, dict) and fmt.get("type") in ("audio/pcm", None)
                                          and fmt.get("rate", 24_000) == 24_000):
        return
    raise ProtocolError(f"unsupported audio format {fmt!r}: only pcm16 mono at 24 kHz (audio/pcm, rate 24000)",
                        "unsupported_audio_format", "session.audio")


def _turn_detection(td: Any, current: TurnDetection | None) -> TurnDetection | None:
    if td is None:
        return None
    # semantic_vad (the default of some clients) is served by the same VAD endpointing; eagerness is ignored
    if not isinstance(td, dict) or td.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
        raise ProtocolError("turn_detection must be null or {type: 'server_vad', ...}", "invalid_session",
                            "session.turn_detection")
    base = current or TurnDetection()
    try:
        out = TurnDetection(
            threshold=float(td.get("threshold", base.threshold)),
            prefix_padding_ms=int(td.get("prefix_padding_ms", base.prefix_padding_ms)),
            silence_duration_ms=int(td.get("silence_duration_ms", base.silence_duration_ms)),
            create_response=bool(td.get("create_response", base.create_response)),
            interrupt_response=bool(td.get("interrupt_response", base.interrupt_response)),
        )
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"turn_detection: {e}", "invalid_session", "session.turn_detection") from e
    if not (0.0 < out.threshold < 1.0 and 0 <= out.prefix_padding_ms <= 2000 and 100 <= out.silence_duration_ms
            <= 5000):
        raise ProtocolError("turn_detection: threshold in (0, 1), prefix_padding_ms in [0, 2000], "
                            "silence_duration_ms in [100, 5000]", "invalid_session", "session.turn_detection")
    return out


def _tools(tools: Any) -> list[FunctionTool]:
    if not isinstance(tools, list):
        raise ProtocolError("session.tools must be a list", "invalid_session", "session.tools")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type", "function") != "function" or not isinstance(t.get("name"), str):
            raise ProtocolError(f"session.tools[{i}] must be {{type: 'function', name, description, parameters}}",
                                "invalid_session", f"session.tools[{i}]")
        params = t.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict) or params.get("type", "object") != "object":
            raise ProtocolError(f"session.tools[{i}].parameters must be a JSON schema object", "invalid_session",
                                f"session.tools[{i}].parameters")
        out.append(FunctionTool(t["name"], str(t.get("description", "")), params))
    return out
