"""The demo personal-assistant catalog.

Lookups are safe (read-only) and may run on partial input; sending, scheduling and timers change
state and run only after the commit point. All state lives in a per-session `DemoState`, so a test
or the chat console can see exactly which side effects happened.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from agent.tools import Catalog, ToolContext, ToolError, tool

CONTACTS = {
    "john": {"name": "John Smith", "phone": "+1 415 555 0134", "email": "john.smith@example.com"},
    "mary": {"name": "Mary Jones", "phone": "+1 212 555 0178", "email": "mary.jones@example.com"},
    "alice": {"name": "Alice Chen", "phone": "+44 20 7946 0321", "email": "alice.chen@example.com"},
    "bob": {"name": "Bob Martin", "phone": "+33 1 70 36 45 12", "email": "bob.martin@example.com"},
    "priya": {"name": "Priya Patel", "phone": "+91 22 5555 0199", "email": "priya.patel@example.com"},
}

WEATHER = {
    "paris": (14, "light rain"),
    "london": (11, "overcast"),
    "new york": (18, "sunny"),
    "tokyo": (21, "clear"),
    "berlin": (9, "windy"),
    "san francisco": (16, "fog"),
}


@dataclass
class DemoState:
    calendar: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 1, "title": "Team standup", "date": "2026-12-01", "time": "09:30"},
            {"id": 2, "title": "Dentist", "date": "2026-12-02", "time": "14:00"},
        ]
    )
    sent: list[dict[str, Any]] = field(default_factory=list)
    contacts: dict[str, dict[str, str]] = field(default_factory=lambda: dict(CONTACTS))  # by lower-case first name
    weather: dict[str, tuple[int, str]] = field(default_factory=lambda: dict(WEATHER))  # by lower-case city
    timers: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))


class ContactQuery(BaseModel):
    name: str = Field(description="first name or full name of the contact")


class WeatherQuery(BaseModel):
    city: str = Field(description="city name, e.g. Paris")


class CalendarQuery(BaseModel):
    date: str = Field(description="day to list, YYYY-MM-DD")


class MessageArgs(BaseModel):
    to: str = Field(description="phone number or email address of the recipient")
    text: str = Field(description="the message")


class EventArgs(BaseModel):
    title: str
    date: str = Field(description="YYYY-MM-DD")
    time: str = Field(description="HH:MM, 24-hour clock")


class TimerArgs(BaseModel):
    minutes: int = Field(ge=1, le=24 * 60)
    label: str = Field(default="timer")


def _state(ctx: ToolContext) -> DemoState:
    state: DemoState = ctx.state
    return state


@tool(safe=True)
async def lookup_contact(args: ContactQuery, ctx: ToolContext) -> dict[str, str]:
    """Find a contact's full name, phone number and email address."""
    key = args.name.strip().lower()
    for first, contact in _state(ctx).contacts.items():
        if key in (first, contact["name"].lower()):
            return contact
    raise ToolError(f"no contact named {args.name!r}")


@tool(safe=True)
async def get_weather(args: WeatherQuery, ctx: ToolContext) -> dict[str, Any]:
    """Current weather in a city: temperature in Celsius and conditions."""
    found = _state(ctx).weather.get(args.city.strip().lower())
    if found is None:
        raise ToolError(f"no weather data for {args.city!r}")
    return {"city": args.city.strip().title(), "temperature_c": found[0], "conditions": found[1]}


@tool(safe=True)
async def read_calendar(args: CalendarQuery, ctx: ToolContext) -> list[dict[str, Any]]:
    """List the calendar events on a day."""
    return [e for e in _state(ctx).calendar if e["date"] == args.date]


@tool(safe=False)
async def send_message(args: MessageArgs, ctx: ToolContext) -> dict[str, Any]:
    """Send a text message to a phone number or email address."""
    message = {"id": next(_state(ctx).ids), "to": args.to, "text": args.text}
    _state(ctx).sent.append(message)
    return {"sent": True, "id": message["id"]}


@tool(safe=False)
async def create_event(args: EventArgs, ctx: ToolContext) -> dict[str, Any]:
    """Add an event to the calendar."""
    event = {"id": next(_state(ctx).ids), **args.model_dump()}
    _state(ctx).calendar.append(event)
    return {"created": True, "id": event["id"]}


@tool(safe=False)
async def set_timer(args: TimerArgs, ctx: ToolContext) -> dict[str, Any]:
    """Start a countdown timer."""
    timer = {"id": next(_state(ctx).ids), **args.model_dump()}
    _state(ctx).timers.append(timer)
    return {"started": True, "id": timer["id"], "minutes": args.minutes}


def _example() -> str:
    from agent.protocol import Answer, FinalUpdate, PartialUpdate, Pause, Think, ToolCall, ToolResult, format_element

    return "".join(format_element(e) for e in (
        PartialUpdate("what's the weather"),
        Think("weather, but no city yet"),
        Pause(),
        PartialUpdate("in Rome and text"),
        Think("look up Rome now"),
        ToolCall(1, "get_weather", {"city": "Rome"}),
        PartialUpdate("Anna that I'm late"),
        Think("find Anna, then text her"),
        ToolCall(2, "lookup_contact", {"name": "Anna"}),
        ToolCall(3, "send_message", {"to": "$2.phone", "text": "I'm late"}),
        ToolResult(1, {"city": "Rome", "temperature_c": 20, "conditions": "sunny"}),
        FinalUpdate("what's the weather in Rome and text Anna that I'm late"),
        Think("wait for the message to go out"),
        Pause(),
        ToolResult(2, {"name": "Anna Rossi", "phone": "+39 06 5550 1234"}),
        ToolResult(3, {"sent": True, "id": 7}),
        Think("all done"),
        Answer("It is 20 degrees and sunny in Rome, and I told Anna you are late."),
    ))


CATALOG = Catalog(
    name="demo",
    tools=(lookup_contact, get_weather, read_calendar, send_message, create_event, set_timer),
    new_state=DemoState,
    example=_example(),
)
