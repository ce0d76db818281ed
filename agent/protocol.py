"""The tagged action protocol: one formatter and one incremental parser.

The model writes `<think>..</think>` and then one action: `<tool_call>{json}</tool_call>`,
`<tool_call>REMOVE n</tool_call>`, `<pause/>` or `<answer>..</answer>`. The worker injects blocks:
`<partial_query_update>`, `<final_query_update>`, `<tool_result id="n">`, `<tool_cancelled id="n"/>`,
`<error>` and the `</think_interrupted>` marker. Every element is followed by a newline so that a
tag never touches the next one: BPE tokenizers merge `><`, which would make a prompt that ends at an
injected block tokenize differently from the same text inside a training trajectory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

INTERRUPTED = "</think_interrupted>"
SEP = "\n"


# -- what the model writes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Think:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: int
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Remove:
    id: int


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Answer:
    text: str


Action = ToolCall | Remove | Pause | Answer
ModelElement = Think | Action


# -- what the worker injects ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartialUpdate:
    text: str


@dataclass(frozen=True, slots=True)
class FinalUpdate:
    text: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    id: int
    content: Any


@dataclass(frozen=True, slots=True)
class ToolCancelled:
    id: int


@dataclass(frozen=True, slots=True)
class ErrorBlock:
    message: str


Block = PartialUpdate | FinalUpdate | ToolResult | ToolCancelled | ErrorBlock


def escape(text: str) -> str:
    """Keep free text from opening a tag."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&amp;", "&")


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def format_element(element: ModelElement | Block) -> str:
    """The exact text of one element in the trace, separator included."""
    match element:
        case Think(text):
            body = f"<think>{escape(text)}</think>"
        case ToolCall(id=call_id, name=name, arguments=args):
            payload = dump_json({"id": call_id, "name": name, "arguments": args})
            body = f"<tool_call>{payload}</tool_call>"
        case Remove(id=call_id):
            body = f"<tool_call>REMOVE {call_id}</tool_call>"
        case Pause():
            body = "<pause/>"
        case Answer(text):
            body = f"<answer>{escape(text)}</answer>"
        case PartialUpdate(text):
            body = f"<partial_query_update>{escape(text)}</partial_query_update>"
        case FinalUpdate(text):
            body = f"<final_query_update>{escape(text)}</final_query_update>"
        case ToolResult(id=call_id, content=content):
            text = content if isinstance(content, str) else dump_json(content)
            body = f'<tool_result id="{call_id}">{escape(text)}</tool_result>'
        case ToolCancelled(id=call_id):
            body = f'<tool_cancelled id="{call_id}"/>'
        case ErrorBlock(message):
            body = f"<error>{escape(message)}</error>"
    return body + SEP


# -- incremental parser ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThinkDelta:
    text: str


@dataclass(frozen=True, slots=True)
class AnswerText:
    """A piece of answer text as it streams (unescaped)."""

    text: str


@dataclass(frozen=True, slots=True)
class Parsed:
    element: ModelElement


@dataclass(frozen=True, slots=True)
class ParseError:
    message: str


ParseEvent = ThinkDelta | AnswerText | Parsed | ParseError

_OPENERS = {"<think>": "think", "<tool_call>": "tool_call", "<answer>": "answer", "<pause/>": "pause"}
_CLOSERS = {"think": "</think>", "tool_call": "</tool_call>", "answer": "</answer>"}
_INJECTED_TAGS = ("<partial_query_update", "<final_query_update", "<tool_result", "<tool_cancelled", "<error")
_REMOVE = re.compile(r"\s*REMOVE\s+(\d+)\s*")
_MAX_TAG = max(len(t) for t in _OPENERS)

State = Literal["between", "think", "tool_call", "answer", "failed"]


def _split_keep_prefix(text: str, closer: str) -> tuple[str, str]:
    """Split off the longest suffix of `text` that could begin `closer`, to wait for more input."""
    for n in range(min(len(closer) - 1, len(text)), 0, -1):
        if closer.startswith(text[-n:]):
            return text[:-n], text[-n:]
    return text, ""


class ActionParser:
    """Recognises the model's elements as the stream arrives; tags may be split anywhere.

    `consumed` is the text accepted so far and `boundary` the length of its prefix that ends with
    a complete element: on an interruption the worker keeps `consumed` (inside a think) or
    `consumed[:boundary]` (inside an action).
    """

    def __init__(self) -> None:
        self.state: State = "between"
        self.consumed = ""
        self.boundary = 0
        self._pending = ""  # fed but not yet decided
        self._body: list[str] = []

    def feed(self, chunk: str) -> list[ParseEvent]:
        if self.state == "failed":
            return []
        self._pending += chunk
        events: list[ParseEvent] = []
        while self._pending:
            if not self._step(events):
                break
        return events

    def finish(self) -> list[ParseEvent]:
        """The stream ended: anything left open is an error."""
        if self.state == "failed":
            return []
        if self.state != "between" or self._pending.strip():
            where = f"inside <{self.state}>" if self.state != "between" else "after the last element"
            self.state = "failed"
            return [ParseError(f"the output ended with an unfinished element {where}")]
        return []

    def _accept(self, n: int) -> str:
        taken, self._pending = self._pending[:n], self._pending[n:]
        self.consumed += taken
        return taken

    def _fail(self, events: list[ParseEvent], message: str) -> bool:
        self.state = "failed"
        events.append(ParseError(message))
        return False

    def _step(self, events: list[ParseEvent]) -> bool:
        """Make progress on the pending text; False when more input is needed."""
        if self.state == "between":
            stripped = self._pending.lstrip()
            if not stripped:
                self._accept(len(self._pending))
                self.boundary = len(self.consumed)
                return False
            self._accept(len(self._pending) - len(stripped))
            self.boundary = len(self.consumed)
            for opener, kind in _OPENERS.items():
                if self._pending.startswith(opener):
                    self._accept(len(opener))
                    if kind == "pause":
                        events.append(Parsed(Pause()))
                        self.boundary = len(self.consumed)
                    else:
                        self.state = kind  # type: ignore[assignment]  # kind is one of the states
                        self._body = []
                    return True
                if opener.startswith(self._pending):
                    return False  # could still become this tag
            head = self._pending[:_MAX_TAG + 8]
            if any(head.startswith(t) for t in _INJECTED_TAGS) or head.startswith(INTERRUPTED):
                return self._fail(events, f"the model must not write injected blocks ({head.split('>')[0]}>)")
            return self._fail(events, f"expected <think>, <tool_call>, <pause/> or <answer>, got {head!r}")

        closer = _CLOSERS[self.state]
        idx = self._pending.find(closer)
        if idx >= 0:
            body = self._accept(idx)
            self._accept(len(closer))
        else:
            body, _ = _split_keep_prefix(self._pending, closer)
            amp = body.rfind("&")
            if amp >= 0 and any(e.startswith(body[amp:]) and e != body[amp:] for e in ("&lt;", "&amp;")):
                body = body[:amp]  # an escape split across chunks: wait for the rest of it
            self._accept(len(body))
        self._body.append(body)
        if self.state == "think" and body:
            events.append(ThinkDelta(unescape(body)))
        elif self.state == "answer" and body:
            events.append(AnswerText(unescape(body)))
        if idx < 0:
            return False
        text = "".join(self._body)
        kind, self.state = self.state, "between"
        if kind == "think":
            events.append(Parsed(Think(unescape(text))))
        elif kind == "answer":
            events.append(Parsed(Answer(unescape(text))))
        else:
            parsed = parse_tool_call(text)
            if isinstance(parsed, str):
                return self._fail(events, parsed)
            events.append(Parsed(parsed))
        self.boundary = len(self.consumed)
        return True


def parse_tool_call(body: str) -> ToolCall | Remove | str:
    """The body of a <tool_call>, or an error message."""
    m = _REMOVE.fullmatch(body)
    if m:
        return Remove(int(m.group(1)))
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        return f"the tool call is not valid JSON ({e.msg} at column {e.colno})"
    if not isinstance(data, dict):
        return "the tool call must be a JSON object with id, name and arguments"
    call_id, name, args = data.get("id"), data.get("name"), data.get("arguments", {})
    if isinstance(call_id, str) and call_id.isdigit():
        call_id = int(call_id)
    if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id < 1:
        return "the tool call needs an integer id of 1 or more"
    if not isinstance(name, str) or not name:
        return "the tool call needs a tool name"
    if not isinstance(args, dict):
        return "the tool call's arguments must be a JSON object"
    return ToolCall(call_id, name, args)
