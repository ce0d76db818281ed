"""BFCL multi-turn as a benchmark suite: tasks, tools on BFCL's own executable backends, scoring.

`bfcl-eval` ships the tasks (`data/BFCL_v4_multi_turn_*.json`), their gold calls
(`data/possible_answer/`), the tool schemas (`data/multi_turn_func_doc/`), the executable backends
(one class per API, with state) and the multi-turn checker. Calls that reach the backends come from
the agent's validated tool calls and run as method calls; the checker, which `eval()`s call strings,
only ever sees strings this module formats from validated JSON values (never model text).
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from agent.tools import Catalog, Tool, ToolContext, ToolError, model_from_schema

CATEGORIES = ("base", "miss_param")

# Read-only methods (safe to run on partial input), per backend class. Every other method changes
# state (a login, a cd, a post, an order) and waits for the commit point. docs/benchmarks.md has the table.
READ_ONLY: dict[str, frozenset[str]] = {
    "GorillaFileSystem": frozenset({"cat", "diff", "du", "find", "grep", "ls", "pwd", "sort", "tail", "wc"}),
    "MathAPI": frozenset({
        "absolute_value", "add", "divide", "imperial_si_conversion", "logarithm", "max_value", "mean",
        "min_value", "multiply", "percentage", "power", "round_number", "si_unit_conversion", "square_root",
        "standard_deviation", "subtract", "sum_values"}),
    "MessageAPI": frozenset({"get_message_stats", "get_user_id", "list_users", "message_get_login_status",
                             "search_messages", "view_messages_sent"}),
    "TwitterAPI": frozenset({"get_tweet", "get_tweet_comments", "get_user_stats", "get_user_tweets",
                             "list_all_following", "posting_get_login_status", "search_tweets"}),
    "TicketAPI": frozenset({"get_ticket", "get_user_tickets", "ticket_get_login_status"}),
    "TradingBot": frozenset({
        "filter_stocks_by_price", "get_account_info", "get_available_stocks", "get_current_time",
        "get_order_details", "get_order_history", "get_stock_info", "get_symbol_by_name",
        "get_transaction_history", "get_watchlist", "notify_price_change", "trading_get_login_status"}),
    "TravelAPI": frozenset({
        "compute_exchange_rate", "get_all_credit_cards", "get_booking_history", "get_budget_fiscal_year",
        "get_credit_card_balance", "get_flight_cost", "get_nearest_airport_by_city", "list_all_airports",
        "retrieve_invoice", "travel_get_login_status", "verify_traveler_information"}),
    "VehicleControlAPI": frozenset({
        "check_tire_pressure", "displayCarStatus", "display_log", "estimate_distance",
        "estimate_drive_feasibility_by_mileage", "find_nearest_tire_shop", "gallon_to_liter", "get_current_speed",
        "get_outside_temperature_from_google", "get_outside_temperature_from_weather_com",
        "get_zipcode_based_on_city", "liter_to_gallon"}),
}


def _package() -> Path:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bfcl-eval is not installed (pip install --no-deps bfcl-eval mpmath filelock)")
    return Path(spec.submodule_search_locations[0])


@dataclass(frozen=True)
class GoldCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class Task:
    id: str
    category: str
    turns: list[str]
    gold: list[list[GoldCall]]
    gold_strings: list[list[str]]
    entry: dict[str, Any] = field(repr=False)

    @property
    def classes(self) -> list[str]:
        return list(self.entry["involved_classes"])


@cache
def _backend_config() -> tuple[dict[str, str], dict[str, str]]:
    from bfcl_eval.constants.executable_backend_config import (
        CLASS_FILE_PATH_MAPPING,
        MULTI_TURN_FUNC_DOC_FILE_MAPPING,
    )

    return dict(CLASS_FILE_PATH_MAPPING), dict(MULTI_TURN_FUNC_DOC_FILE_MAPPING)


@cache
def _backend_class(name: str) -> type:
    modules, _ = _backend_config()
    return getattr(importlib.import_module(modules[name]), name)  # type: ignore[no-any-return]


@cache
def function_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    _, docs = _backend_config()
    path = _package() / "data" / "multi_turn_func_doc" / docs[class_name]
    return tuple(json.loads(line) for line in path.read_text().splitlines() if line.strip())


def parse_call(text: str, owners: dict[str, str]) -> GoldCall:
    """A gold call string as data, by parsing it (never evaluating it). Positional arguments get their
    names from the backend method's signature."""
    node = ast.parse(text.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain call: {text!r}")
    name = node.func.id
    params = [p for p in inspect.signature(getattr(_backend_class(owners[name]), name)).parameters if p != "self"]
    args = {params[i]: ast.literal_eval(a) for i, a in enumerate(node.args)}
    args |= {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
    return GoldCall(name, args)


def format_call(name: str, arguments: dict[str, Any]) -> str:
    """A call string for BFCL's checker, from a validated name and JSON values only."""
    if not name.isidentifier():
        raise ValueError(f"not a function name: {name!r}")
    for value in arguments.values():
        json.dumps(value)  # JSON values only: their repr is a Python literal
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items() if k.isidentifier())})"


def load_tasks(category: str = "base", limit: int | None = None) -> list[Task]:
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; one of {', '.join(CATEGORIES)}")
    data = _package() / "data"
    name = f"BFCL_v4_multi_turn_{category}.json"
    answers = {json.loads(line)["id"]: json.loads(line)["ground_truth"]
               for line in (data / "possible_answer" / name).read_text().splitlines() if line.strip()}
    tasks = []
    for line in (data / name).read_text().splitlines()[:limit]:
        entry = json.loads(line)
        owners = {doc["name"]: cls for cls in entry["involved_classes"] for doc in function_docs(cls)}
        gold_strings = answers[entry["id"]]
        turns = [" ".join(m["content"] for m in turn if m.get("role") == "user") for turn in entry["question"]]
        gold = [[parse_call(s, owners) for s in turn] for turn in gold_strings]
        tasks.append(Task(entry["id"], category, turns, gold, gold_strings, entry))
    return tasks


def _schema(params: dict[str, Any]) -> dict[str, Any]:
    """BFCL writes `"type": "dict"` (and `float`, `tuple`, `any`) where JSON schema says object/number/array."""
    kinds = {"dict": "object", "float": "number", "tuple": "array", "any": None}
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "type" and value in kinds:
            if kinds[value] is not None:
                out[key] = kinds[value]
        elif isinstance(value, dict):
            out[key] = _schema(value)
        else:
            out[key] = value
    return out


def backend(cls: str, config: dict[str, Any]) -> Any:
    """A fresh backend object of class `cls` in the state `config` describes."""
    obj = _backend_class(cls)()
    if hasattr(obj, "_load_scenario"):
        obj._load_scenario(copy.deepcopy(config), long_context=False)
    return obj


def instances(task: Task) -> dict[str, Any]:
    """Fresh backend objects in the task's initial state (the ToolBox state)."""
    return {cls: backend(cls, task.entry["initial_config"].get(cls, {})) for cls in task.classes}


def tools(cls: str, keep: Callable[[str], bool] = lambda name: True) -> list[Tool]:
    """The class's functions as tools on its backend (`ctx.state[cls]`), those `keep` accepts."""
    out = []
    for doc in function_docs(cls):
        if keep(doc["name"]):
            params = _schema(doc.get("parameters") or {"type": "object", "properties": {}})
            # "This tool belongs to the Math API, which ... Tool description: Add two numbers.": the class
            # preamble repeats on every tool and says nothing the tool's name does not.
            text = doc["description"].split("Tool description: ", 1)[-1][:400]
            out.append(Tool(doc["name"], text, model_from_schema(doc["name"], params),
                            _method(cls, doc["name"]), safe=doc["name"] in READ_ONLY.get(cls, frozenset())))
    return out


def catalog(task: Task) -> Catalog:
    excluded = set(task.entry.get("excluded_function") or [])
    made: list[Tool] = []
    for cls in task.classes:
        def keep(name: str, owner: str = cls) -> bool:
            return name not in excluded and f"{owner}.{name}" not in excluded

        made += tools(cls, keep)
    return Catalog(f"bfcl:{task.id}", tuple(made), new_state=lambda: instances(task))


def _method(cls: str, name: str) -> Any:
    async def call(args: Any, ctx: ToolContext) -> Any:
        try:
            result = getattr(ctx.state[cls], name)(**args.model_dump(exclude_none=True))
        except KeyError as e:  # the backend's own lookup of a value ("lockDoors: 'left'" said nothing)
            raise ToolError(f"{name}: no such value {e}; see the tool's description for the values it takes") from e
        except (TypeError, ValueError, AttributeError) as e:
            raise ToolError(f"{name}: {e}") from e
        if isinstance(result, dict) and "error" in result:
            raise ToolError(str(result["error"]))
        return json.loads(json.dumps(result, default=str))

    return call


def score(task: Task, calls_per_turn: list[list[tuple[str, dict[str, Any]]]], run_name: str) -> dict[str, Any]:
    """BFCL's own multi-turn checker on the calls the agent executed, turn by turn. `run_name` must be
    unique per run: the checker caches backend instances under it."""
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    decoded: list[list[list[str]]] = [[[format_call(name, args) for name, args in turn]] if turn else [[]]
                                      for turn in calls_per_turn]
    result: dict[str, Any] = multi_turn_checker(decoded, task.gold_strings, task.entry, task.category, run_name)
    return result
