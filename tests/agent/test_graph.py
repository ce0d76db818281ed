"""The tool graph: the ordering of writes on virtual time, and references into earlier results."""

import asyncio

import pytest
from pydantic import ValidationError

from agent.clock import run_virtual
from agent.graph import ToolGraph
from agent.prompt import system_prompt
from agent.protocol import ToolCall
from agent.tools import ToolBox, ToolError, client_tool, resolve
from tests.support import DEMO


async def run_graph(steps) -> list[tuple[float, int, str]]:
    """`steps`: (time, action) where action is a ToolCall, "commit" or ("remove", id)."""
    loop = asyncio.get_running_loop()
    events: list[tuple[float, int, str]] = []
    async with asyncio.TaskGroup() as tg:
        graph = ToolGraph(ToolBox(DEMO, latency_s=(0.5, 0.5), seed=0), speculate_safe=True, spawn=tg.create_task,
                          on_event=lambda c, e: events.append((round(loop.time(), 3), c.id, e)),
                          on_complete=lambda c: None)
        t0 = loop.time()
        for at, action in steps:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            if action == "commit":
                graph.commit()
            elif isinstance(action, tuple):
                graph.remove(action[1])
            else:
                graph.issue(action, speculative=True)
    return [(round(t - t0, 3), i, e) for t, i, e in events]


def started(events, call_id):
    return next(t for t, i, e in events if i == call_id and e == "started")


def test_a_read_after_a_held_write_waits_for_the_write():
    events = run_virtual(run_graph([
        (0, ToolCall(1, "get_weather", {"city": "Paris"})),
        (0, ToolCall(2, "send_message", {"to": "+1", "text": "hi"})),
        (0, ToolCall(3, "read_calendar", {"day": "2026-12-01"})),
        (1.0, "commit"),
    ]))
    assert started(events, 1) == 0.0  # a read before any write: speculated at once
    assert started(events, 2) == 1.0  # the write waits for the commit (and for the read before it)
    assert started(events, 3) == 1.5  # the read after the write sees its effect


def test_writes_keep_their_order_and_a_removed_write_releases_the_calls_behind_it():
    events = run_virtual(run_graph([
        (0, ToolCall(1, "set_timer", {"minutes": 5})),
        (0, ToolCall(2, "set_timer", {"minutes": 10})),
        (0, ToolCall(3, "get_weather", {"city": "Rome"})),
        (0.2, ("remove", 1)),
        (0.4, "commit"),
    ]))
    assert (0.2, 1, "cancelled") in events
    assert started(events, 2) == 0.4 and started(events, 3) == 0.9


def test_a_reference_to_a_field_the_result_lacks_names_the_fields_it_has():
    found = {1: {"name": "Ana Ito", "phone": "+1 555", "email": "ana@example.com"}}
    assert resolve({"to": "$1.phone", "text": "hi"}, found) == {"to": "+1 555", "text": "hi"}
    with pytest.raises(ToolError, match=r"^\$1\.phone_number does not exist in the result of call 1; "
                                        r"it has: name, phone, email$"):
        resolve({"to": "$1.phone_number"}, found)
    many = {1: {f"field{i}": i for i in range(20)}}
    with pytest.raises(ToolError, match=r"; it has: field0, field1, .*, field11, \.\.\.$"):
        resolve("$1.other", many)


def test_a_tool_declared_by_json_schema_shows_its_argument_descriptions_in_the_prompt():
    """A client's (or BFCL's) tool: the model reads what each argument is and which values it takes."""
    schema = {"type": "object", "required": ["cityA"], "properties": {
        "cityA": {"type": "string", "description": "The zipcode of the first city."},
        "unit": {"type": "string", "enum": ["km", "miles"], "description": "Distance unit."}}}
    tool = client_tool("estimate_distance", "Estimates the distance.", schema, lambda args, ctx: None)
    prompt = system_prompt([tool], style="trained")
    signature = ("estimate_distance(cityA: string (The zipcode of the first city.), "
                 "unit: string (optional) (Distance unit.))")
    assert signature in prompt
    with pytest.raises(ValidationError):
        tool.args(cityA="1", unit="leagues")
