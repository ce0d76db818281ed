"""The demo catalog as a small suite: spoken personal-assistant requests with their gold calls.

A task passes when the agent's side effects equal the gold calls' (messages sent, events created,
timers set; compared after normalising case and punctuation, ids aside) and every gold lookup of a turn
ran. `$N` in a gold call is the result of the turn's N-th call, as the agent would write it.
"""

from __future__ import annotations

import re
from typing import Any

from agent.tools import Catalog, ToolBox, resolve
from configs.catalogs.demo import CATALOG, DemoState
from evals.bfcl import GoldCall, Task


def _call(tool: str, /, **arguments: Any) -> GoldCall:
    return GoldCall(tool, arguments)


def _contact(name: str) -> GoldCall:
    return _call("lookup_contact", name=name)


def _weather(city: str) -> GoldCall:
    return _call("get_weather", city=city)


# (turns, gold calls per turn). Written for this suite; no prompt was tuned to them.
TASKS: list[tuple[list[str], list[list[GoldCall]]]] = [
    (["What's the weather in Paris right now?"], [[_weather("Paris")]]),
    (["Text John that I am running late."],
     [[_contact("John"), _call("send_message", to="$1.phone", text="I am running late")]]),
    (["Set a timer for ten minutes for the pasta."], [[_call("set_timer", minutes=10, label="pasta")]]),
    (["What do I have on December first?", "Add lunch with Bob at noon that day."],
     [[_call("read_calendar", date="2026-12-01")],
      [_call("create_event", title="lunch with Bob", date="2026-12-01", time="12:00")]]),
    (["How is the weather in Berlin and in Tokyo?"], [[_weather("Berlin"), _weather("Tokyo")]]),
    (["Look up Mary's email address.", "Send her an email saying I will call you back tonight."],
     [[_contact("Mary")], [_call("send_message", to="mary.jones@example.com", text="I will call you back tonight")]]),
    (["Is it raining in London at the moment?"], [[_weather("London")]]),
    (["Tell Alice happy birthday and check the weather in New York."],
     [[_contact("Alice"), _weather("New York"), _call("send_message", to="$1.phone", text="happy birthday")]]),
    (["Remind me in five minutes to check the oven."], [[_call("set_timer", minutes=5, label="check the oven")]]),
    (["What's the weather like in San Francisco?", "And in Paris?"],
     [[_weather("San Francisco")], [_weather("Paris")]]),
    (["Put a dentist appointment on my calendar for December third at three in the afternoon."],
     [[_call("create_event", title="dentist appointment", date="2026-12-03", time="15:00")]]),
    (["Hello, how are you today?"], [[]]),
    (["Email Priya that the meeting moved to Friday."],
     [[_contact("Priya"), _call("send_message", to="$1.email", text="the meeting moved to Friday")]]),
    (["Check my calendar for December second and text Bob that I am busy that day."],
     [[_call("read_calendar", date="2026-12-02"), _contact("Bob"),
       _call("send_message", to="$2.phone", text="I am busy that day")]]),
]


def load_tasks(limit: int | None = None) -> list[Task]:
    return [Task(f"demo_{i}", "demo", turns, gold, [], {}) for i, (turns, gold) in enumerate(TASKS[:limit])]


def catalog(task: Task) -> Catalog:
    return CATALOG


async def _gold_state(task: Task) -> DemoState:
    box = ToolBox(CATALOG)
    for turn in task.gold:
        results: dict[int, Any] = {}
        for i, call in enumerate(turn, 1):
            results[i] = await box.execute(call.name, resolve(call.arguments, results))
    state: DemoState = box.state
    return state


def normalize(value: Any) -> Any:
    """Values as compared: lower case, punctuation and `id` keys aside."""
    if isinstance(value, str):
        return " ".join(re.sub(r"[^\w@+.: ]|(?<!\w)\.|\.(?!\w)", " ", value.lower()).split())
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def _effects(state: DemoState) -> dict[str, Any]:
    effects: dict[str, Any] = normalize({"sent": state.sent, "calendar": state.calendar, "timers": state.timers})
    return effects


async def score(task: Task, calls_per_turn: list[list[tuple[str, dict[str, Any]]]], state: Any,
                run_name: str) -> dict[str, Any]:
    """Side effects equal the gold's, and every gold lookup ran in its turn."""
    expected, got = _effects(await _gold_state(task)), _effects(state)
    if got != expected:
        return {"valid": False, "error_message": f"side effects differ: {got} != {expected}"}
    safe = {t.name for t in CATALOG.tools if t.safe}
    for index, (gold, done) in enumerate(zip(task.gold, calls_per_turn, strict=True)):
        ran = [(name, normalize(args)) for name, args in done]
        missing = [c for c in gold if c.name in safe and (c.name, normalize(c.arguments)) not in ran]
        if missing:
            return {"valid": False, "error_message": f"turn {index}: {missing[0]} did not run"}
    return {"valid": True, "error_message": None}
