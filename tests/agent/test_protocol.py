import re

import pytest

from agent.prompt import action_regex
from agent.protocol import (
    INTERRUPTED,
    ActionParser,
    Answer,
    AnswerText,
    ErrorBlock,
    FinalUpdate,
    Parsed,
    ParseError,
    ParseEvent,
    PartialUpdate,
    Pause,
    Remove,
    Think,
    ThinkDelta,
    ToolCall,
    ToolCancelled,
    ToolResult,
    format_element,
    parse_tool_call,
)
from tests.support import DEMO

TRACE = (
    format_element(Think("the user wants John's number <maybe>"))
    + format_element(ToolCall(1, "lookup_contact", {"name": "John"}))
    + format_element(Think("and the weather"))
    + format_element(ToolCall(2, "send_message", {"to": "$1.phone", "text": "hi & bye"}))
    + format_element(Remove(2))
    + format_element(Pause())
    + format_element(Answer("John's number is +1 415 555 0134 & it is sunny."))
)


def merged(events: list[ParseEvent]) -> list[object]:
    """Join consecutive deltas so that different chunkings compare equal."""
    out: list[object] = []
    for e in events:
        if isinstance(e, ThinkDelta | AnswerText) and out and type(out[-1]) is type(e):
            out[-1] = type(e)(out[-1].text + e.text)  # type: ignore[attr-defined]
        else:
            out.append(e)
    return out


def parse_chunks(chunks: list[str]) -> tuple[list[object], ActionParser]:
    parser = ActionParser()
    events: list[ParseEvent] = []
    for c in chunks:
        events += parser.feed(c)
    events += parser.finish()
    return merged(events), parser


def test_round_trip_of_the_formatter():
    events, parser = parse_chunks([TRACE])
    elements = [e.element for e in events if isinstance(e, Parsed)]
    assert elements == [
        Think("the user wants John's number <maybe>"),
        ToolCall(1, "lookup_contact", {"name": "John"}),
        Think("and the weather"),
        ToolCall(2, "send_message", {"to": "$1.phone", "text": "hi & bye"}),
        Remove(2),
        Pause(),
        Answer("John's number is +1 415 555 0134 & it is sunny."),
    ]
    assert parser.consumed == TRACE and parser.boundary == len(TRACE)


def test_every_two_way_split_gives_the_same_events():
    whole, _ = parse_chunks([TRACE])
    for i in range(len(TRACE) + 1):
        assert parse_chunks([TRACE[:i], TRACE[i:]])[0] == whole, i


def test_every_three_way_split_of_the_tags_gives_the_same_events():
    whole, _ = parse_chunks([TRACE])
    cuts = range(0, 120)
    for i in cuts:
        for j in range(i, 120, 3):
            assert parse_chunks([TRACE[:i], TRACE[i:j], TRACE[j:]])[0] == whole, (i, j)


def test_character_by_character():
    whole, _ = parse_chunks([TRACE])
    assert parse_chunks(list(TRACE))[0] == whole


def test_answer_streams_before_it_closes():
    parser = ActionParser()
    assert parser.feed("<answer>It is sun") == [AnswerText("It is sun")]
    assert parser.feed("ny</ans") == [AnswerText("ny")]
    assert parser.feed("wer>") == [Parsed(Answer("It is sunny"))]


def test_boundary_and_state_mid_element():
    parser = ActionParser()
    parser.feed("<think>abc</think>\n<tool_call>{\"id\": 1, ")
    assert parser.state == "tool_call"
    assert parser.consumed[: parser.boundary] == "<think>abc</think>\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello there", "expected <think>"),
        ("<tool_result id=\"1\">x</tool_result>", "must not write injected blocks"),
        ("<tool_call>{\"id\": 1, \"name\": \"x\"</tool_call>", "not valid JSON"),
        ("<tool_call>{\"id\": 0, \"name\": \"x\", \"arguments\": {}}</tool_call>", "integer id"),
        ("<tool_call>[1, 2]</tool_call>", "JSON object"),
        ("<tool_call>{\"id\": 1, \"name\": \"x\", \"arguments\": 3}</tool_call>", "arguments must be"),
        ("<think>never closed", "unfinished element inside <think>"),
    ],
)
def test_errors_are_reported_once(text, message):
    events, parser = parse_chunks([text])
    errors = [e for e in events if isinstance(e, ParseError)]
    assert len(errors) == 1 and message in errors[0].message
    assert parser.state == "failed"
    assert parser.feed("<pause/>") == []


def test_remove_and_id_as_string():
    assert parse_tool_call(" REMOVE 12 ") == Remove(12)
    assert parse_tool_call('{"id": "3", "name": "a", "arguments": {}}') == ToolCall(3, "a", {})


def test_injected_blocks_format():
    assert format_element(PartialUpdate("a<b")) == "<partial_query_update>a&lt;b</partial_query_update>\n"
    assert format_element(FinalUpdate("done")) == "<final_query_update>done</final_query_update>\n"
    assert format_element(ToolResult(3, {"a": 1})) == '<tool_result id="3">{"a": 1}</tool_result>\n'
    assert format_element(ToolCancelled(3)) == '<tool_cancelled id="3"/>\n'
    assert format_element(ErrorBlock("bad")) == "<error>bad</error>\n"
    assert INTERRUPTED == "</think_interrupted>"


def test_action_regex_accepts_valid_steps_and_rejects_others():
    pattern = re.compile(action_regex(DEMO.tools))
    good = [
        format_element(Think("look up john")) + format_element(ToolCall(1, "lookup_contact", {"name": "John"})),
        format_element(Think("")) + format_element(ToolCall(2, "send_message", {"to": "$1.phone", "text": "hi"})),
        format_element(Think("x")) + format_element(ToolCall(3, "set_timer", {"minutes": 5})),
        format_element(Think("x")) + format_element(ToolCall(3, "set_timer", {"minutes": 5, "label": "tea"})),
        format_element(Think("x")) + format_element(Remove(2)),
        format_element(Think("wait")) + format_element(Pause()),
        format_element(Think("done")) + format_element(Answer("Sent.")),
    ]
    for text in good:
        assert pattern.fullmatch(text), text
    bad = [
        format_element(Think("x")) + format_element(ToolCall(1, "delete_everything", {})),
        format_element(Think("x")) + format_element(ToolCall(1, "set_timer", {"minutes": "five"})),
        format_element(Think("x")) + format_element(ToolCall(1, "lookup_contact", {"who": "John"})),
        format_element(Answer("no think")),
        format_element(Think("x")) + format_element(Pause()) + format_element(Pause()),
    ]
    for text in bad:
        assert not pattern.fullmatch(text), text


def test_action_regex_without_tools_admits_only_pause_and_answer():
    pattern = re.compile(action_regex([]))
    assert pattern.fullmatch(format_element(Think("hi")) + format_element(Answer("Hello!")))
    assert pattern.fullmatch(format_element(Think("hm")) + format_element(Pause()))
    assert not pattern.fullmatch(format_element(Think("x")) + "<tool_call></tool_call>\n")
    assert not pattern.fullmatch(format_element(Think("x")) + format_element(Remove(1)))
