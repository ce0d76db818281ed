"""The system prompt that teaches the protocol, and the regex that constrains decoding to it.

The regex makes every step `<think>..</think>` plus exactly one action whose tool name is one of the
session's tools and whose arguments follow that tool's schema (keys in order, typed values, `$N`
references allowed for any value), so even a 135M model cannot write an unparseable action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from agent.tools import Tool

THINK_MAX = 200
ANSWER_MAX = 400
STRING_MAX = 120

_CALL_ID = r"[1-9][0-9]{0,2}"
_REF = r'"\$[1-9][0-9]{0,2}(\.[A-Za-z_][A-Za-z0-9_]{0,30})?"'
_STRING = '"[^"\\\\<\\n]{0,' + str(STRING_MAX) + '}"'
_INTEGER = r"-?[0-9]{1,9}"
_NUMBER = r"-?[0-9]{1,9}(\.[0-9]{1,6})?"
_ANSWER = rf"<answer>[^<\s][^<]{{0,{ANSWER_MAX - 1}}}</answer>"  # starts with a word, not blank space

PROTOCOL = """\
You are a voice assistant. You hear the user while they are still speaking and you can use tools.

The conversation is a trace of tagged blocks. You receive:
<partial_query_update>words</partial_query_update>  more words the user has said (they are still speaking)
<final_query_update>text</final_query_update>  the user's complete request
<tool_result id="N">result</tool_result>  the result of your call N
<tool_cancelled id="N"/>  call N was cancelled
<error>message</error>  your last step broke a rule; fix it
</think_interrupted>  new information arrived while you were thinking

Each of your steps is a <think>...</think> block with your short reasoning, then exactly one action:
<tool_call>{"id": 1, "name": ..., "arguments": {...}}</tool_call> calls a tool.
<tool_call>REMOVE 1</tool_call> withdraws call 1 (and the calls that use its result).
<pause/> waits for more words or for tool results.
<answer>...</answer> speaks to the user: one or two short sentences built from the tool results.

Rules:
- Give calls ids 1, 2, 3, ... in order. Repeat an id to change that call. An argument may be "$N" to use
  the result of call N (or "$N.field" for one field of it).
- Start lookups as soon as the partial words tell you enough; fix or remove them if later words change.
- Calls that change something (messages, events, timers) are only carried out after the final update.
- Answer only after the final update, once you have the tool results you need.
"""


# For a model fine-tuned on the protocol (training/): it has learnt the rules, so the prompt only names
# the tools; a shorter prompt also means a faster first token on the CPU.
TRAINED = "You are a voice assistant. You hear the user while they speak and use tools (async protocol).\n"

PromptStyle = Literal["full", "trained"]


def system_prompt(tools: Iterable[Tool], example: str = "", style: PromptStyle = "full") -> str:
    if style == "trained":
        example = ""
    lines = [PROTOCOL if style == "full" else TRAINED, "Tools:"]
    for t in tools:
        schema = t.schema()
        kind = "read-only" if t.safe else "changes state"
        if style == "trained":
            lines.append(f"- {_signature(t.name, schema['parameters'])} ({kind}): {t.description}")
        else:
            lines.append(f"- {t.name} ({kind}): {t.description} Arguments: {json.dumps(schema['parameters'])}")
    if example:
        lines += ["", "Example of one turn:", example.strip()]
    return "\n".join(lines) + "\n"


def _signature(name: str, params: dict[str, Any]) -> str:
    """`name(arg: type "description", ...)`: the tool in a few tokens, for the trained prompt."""
    required = set(params.get("required", []))
    args = []
    for key, prop in params.get("properties", {}).items():
        kind = prop.get("type") or next((o.get("type") for o in prop.get("anyOf", []) if o.get("type") != "null"),
                                        "any")
        text = f"{key}: {kind}" + ("" if key in required else " (optional)")
        if prop.get("description"):
            text += f" ({prop['description']})"
        args.append(text)
    return f"{name}({', '.join(args)})"


def _value_regex(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if "enum" in schema:
        return "(" + "|".join(re.escape(json.dumps(v)) for v in schema["enum"]) + ")"
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if options:
            return _value_regex(options[0], defs)
    kind = schema.get("type")
    if kind == "integer":
        return f"({_INTEGER}|{_REF})"
    if kind == "number":
        return f"({_NUMBER}|{_REF})"
    if kind == "boolean":
        return f"(true|false|{_REF})"
    if kind == "array":
        item = _value_regex(schema.get("items", {"type": "string"}), defs)
        return rf"(\[({item}(, {item}){{0,7}})?\]|{_REF})"
    return _STRING  # strings, and anything richer, travel as a string (a "$N" is a string too)


def arguments_regex(t: Tool) -> str:
    schema = t.args.model_json_schema()
    defs = schema.get("$defs", {})
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    parts: list[str] = []
    for i, (name, prop) in enumerate(props.items()):
        pair = f"{re.escape(json.dumps(name))}: {_value_regex(prop, defs)}"
        if i == 0:
            parts.append(pair)  # the first argument is always written, which keeps commas simple
        elif name in required:
            parts.append(f", {pair}")
        else:
            parts.append(f"(, {pair})?")
    return r"\{" + "".join(parts) + r"\}"


def answer_regex() -> str:
    """A step that can only answer: used once the turn's step budget is spent."""
    return rf"<think>[^<]{{0,{THINK_MAX}}}</think>\n{_ANSWER}\n"


def action_regex(tools: Iterable[Tool], *, pause: bool = True) -> str:
    """One step: a think and one action. `pause=False` after the final update when nothing is pending:
    waiting could only end in an error round, so the step must act or answer."""
    calls = "|".join(
        rf'\{{"id": {_CALL_ID}, "name": {re.escape(json.dumps(t.name))}, "arguments": {arguments_regex(t)}\}}'
        for t in tools
    )
    actions = [rf"<tool_call>({calls}|REMOVE {_CALL_ID})</tool_call>"] if calls else []  # no tools: no calls
    actions += ["<pause/>"] if pause else []
    return rf"<think>[^<]{{0,{THINK_MAX}}}</think>\n({'|'.join([*actions, _ANSWER])})\n"
