"""Task templates on the tool schemas of BFCL's multi-turn suite, on its executable backends.

BFCL ships only the tasks it scores, so these templates never use them: the requests, phrasings and
worlds are written here, and only the tools (names, schemas, descriptions) and the backends that run
them are BFCL's. Each episode serves one backend class (math, trading, messaging, the car) with that
class's tools, as the benchmark serves them. The side effects an episode must leave are found by
replaying its gold calls on a fresh copy of the world, and compared as BFCL's state checker compares
backends: every public attribute.

The split: held-out episodes use companies, a city pair, names and phrasings never used in training.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from agent.protocol import ToolCall
from agent.tools import Catalog, resolve
from evals import bfcl
from training.episodes import Episode, Move, Results, Split, TurnPlan, draw_value, first_index, said

# Names the backends know (their lookups are fixed tables), split in two.
COMPANIES: dict[Split, tuple[str, ...]] = {
    "train": ("Apple", "Tesla", "Microsoft", "Zeta Corp", "Alpha Tech", "Neptune Systems", "Synex Solutions"),
    "heldout": ("Nvidia", "Google", "Omega Industries"),
}
CITY_PAIRS: dict[Split, tuple[tuple[str, str], ...]] = {  # pairs estimate_distance knows
    "train": (("Rivermist", "Stonebrook"), ("Maplecrest", "Silverpine"), ("Shadowridge", "Sunset Valley"),
              ("Oakendale", "Willowbend"), ("San Francisco", "Rivermist"), ("Silverpine", "Oakendale")),
    "heldout": (("Crescent Hollow", "Autumnville"),),
}
DOORS = ("driver", "passenger", "rear_left", "rear_right")


class World:
    """What a turn template draws from: the backend's starting configuration, the split, the rng."""

    def __init__(self, config: dict[str, Any], split: Split, rng: random.Random) -> None:
        self.config, self.split, self.rng = config, split, rng

    def phrase(self, train: list[str], heldout: list[str]) -> str:
        return self.rng.choice(train if self.split == "train" else heldout)

    def words(self, train: list[str], heldout: list[str], closer: bool = True) -> list[str]:
        return said(self.split, self.rng, self.phrase(train, heldout), closer)


def _replay(calls: list[ToolCall], backend: Any) -> None:
    """Run a turn's gold calls on `backend` in id order, `$n.field` arguments resolved as the tool graph
    resolves them. A gold call the backend refuses is a template bug, not a trajectory to reject."""
    results: Results = {}
    for call in calls:
        results[call.id] = getattr(backend, call.name)(**resolve(call.arguments, results))
        if isinstance(results[call.id], dict) and "error" in results[call.id]:
            raise ValueError(f"gold call {call.name} failed: {results[call.id]['error']}")


# -- turn kinds (ids start at 1 in every turn) -----------------------------------------------------------


def arithmetic(w: World) -> TurnPlan:
    x, y = w.rng.randrange(2, 500), w.rng.randrange(2, 100)
    name, texts, args, sign = w.rng.choice([
        # Several wordings per operation, so that the operation is told by its words, not by one template.
        ("add", ([f"what is {x} plus {y}", f"add {x} and {y}", f"{x} plus {y}", f"what's the sum of {x} and {y}",
                  f"increase {x} by {y}", f"add {y} to {x}",
                  f"calculate {x} plus {y}", f"what's the total of {x} and {y}", f"sum {x} and {y}",
                  f"what do I get if I add {x} and {y}"],
                 [f"what do {x} and {y} make together"]), {"a": x, "b": y}, "plus"),
        ("subtract", ([f"what is {x} minus {y}", f"subtract {y} from {x}", f"{x} minus {y}",
                       f"what's the difference between {x} and {y}", f"decrease {x} by {y}", f"deduct {y} from {x}",
                       f"what is {y} less than {x}", f"calculate {x} minus {y}", f"reduce {x} by {y}",
                       f"remove {y} from {x}, what's left", f"{x} less {y}"],
                      [f"take {y} away from {x}"]), {"a": x, "b": y}, "minus"),
        ("multiply", ([f"what is {x} times {y}", f"multiply {x} by {y}", f"{x} times {y}",
                       f"what is {x} multiplied by {y}", f"{y} lots of {x}", f"calculate {x} times {y}",
                       f"{x} multiplied by {y}", f"what do I get if I multiply {x} by {y}", f"{y} groups of {x}"],
                      [f"what's the product of {x} and {y}"]), {"a": x, "b": y}, "times"),
        ("divide", ([f"what is {x} divided by {y}", f"divide {x} by {y}", f"{x} divided by {y}",
                     f"what's {x} over {y}", f"share {x} equally among {y}", f"calculate {x} divided by {y}",
                     f"how many times does {y} go into {x}", f"{x} shared between {y}",
                     f"what do I get if I divide {x} by {y}"],
                    [f"how much is {x} split {y} ways"]), {"a": x, "b": y}, "divided by"),
        ("percentage", ([f"what percent of {y} is {x}", f"what percentage is {x} of {y}", f"{x} of {y} in percent",
                         f"express {x} of {y} as a percentage", f"how many percent of {y} is {x}",
                         f"{x} is what percent of {y}", f"calculate {x} as a percentage of {y}",
                         f"what share of {y} is {x} in percent", f"{x} as a percent of {y}"],
                        [f"{x} out of {y} is how many percent"]), {"part": x, "whole": y}, "as a percentage of"),
    ])
    words = w.words(*texts)
    moves = [Move(first_index(words, str(x), str(y)), f"{name} {x} and {y}", ToolCall(1, name, args))]
    return TurnPlan(words, moves, lambda r: f"{x} {sign} {y} is {r[1]['result']}.", kind="bfcl_math")


def stock_price(w: World) -> TurnPlan:
    company = w.rng.choice(COMPANIES[w.split])
    words = w.words([f"how is {company} stock doing", f"what's the price of {company} stock today",
                     f"get me a quote for {company}",
                     f"what's {company} trading at", f"show me the {company} stock price",
                     f"look up {company} stock", f"how much is {company} stock worth",
                     f"how are {company} shares doing", f"what are {company} shares at"],
                    [f"check {company} shares for me"])
    at = first_index(words, company)
    moves = [Move(at, f"symbol of {company}", ToolCall(1, "get_symbol_by_name", {"name": company})),
             Move(at, "then its price", ToolCall(2, "get_stock_info", {"symbol": "$1.symbol"}))]
    return TurnPlan(words, moves, lambda r: f"{company} ({r[1]['symbol']}) is at {r[2]['price']} dollars, "
                    f"{r[2]['percent_change']} percent today.", kind="bfcl_stock")


def buy(w: World) -> TurnPlan:
    company = w.rng.choice(COMPANIES[w.split])
    amount, price = w.rng.choice([5, 10, 20, 25, 50, 100]), w.rng.randrange(20, 400)
    verb = w.rng.choice(["buy", "sell"])
    words = w.words([f"{verb} {amount} shares of {company} at {price} dollars",
                     f"place an order to {verb} {amount} {company} shares at {price} dollars each",
                     f"I want to {verb} {amount} shares of {company} at {price} dollars",
                     f"put in an order to {verb} {amount} shares of {company} at {price} dollars"],
                    [f"I'd like to {verb} {amount} {company} shares for {price} dollars a share"])
    order = ToolCall(2, "place_order", {"order_type": verb.capitalize(), "symbol": "$1.symbol", "price": price,
                                        "amount": amount})
    moves = [Move(first_index(words, company), f"symbol of {company}",
                  ToolCall(1, "get_symbol_by_name", {"name": company})),
             Move(len(words), f"{verb} {amount} at {price}: place the order", order)]
    return TurnPlan(words, moves, lambda r: f"Your order to {verb} {amount} {company} shares at {price} dollars "
                    f"is placed, order {r[2]['order_id']}.", kind="bfcl_order")


def watch(w: World) -> TurnPlan:
    company = w.rng.choice(COMPANIES[w.split])
    words = w.words([f"add {company} to my watchlist", f"put {company} on my watch list",
                     f"watch {company} for me", f"track {company} on my watchlist",
                     f"start watching {company}", f"follow {company} on my watchlist"],
                    [f"I want to keep an eye on {company}, watchlist it"])
    moves = [Move(first_index(words, company), f"symbol of {company}",
                  ToolCall(1, "get_symbol_by_name", {"name": company})),
             Move(len(words), "add it to the watchlist", ToolCall(2, "add_to_watchlist", {"stock": "$1.symbol"}))]
    return TurnPlan(words, moves, lambda r: f"{company} is on your watchlist.", kind="bfcl_watch")


def chat_message(w: World) -> TurnPlan:
    users: dict[str, str] = w.config["user_map"]
    name = w.rng.choice([n for n in users if users[n] != w.config["current_user"]])
    body = draw_value("messages", w.split, w.rng)
    words = w.words([f"send {name} a message saying {body}", f"message {name} that {body}",
                     f"text {name} that {body}", f"tell {name} that {body}",
                     f"write to {name} saying {body}", f"send a chat to {name} that {body}"],
                    [f"ping {name} on chat that {body}"], closer=False)
    moves = [Move(first_index(words, name), f"user id of {name}", ToolCall(1, "get_user_id", {"user": name})),
             Move(len(words), f"send the message to {name}",
                  ToolCall(2, "send_message", {"receiver_id": "$1.user_id", "message": body}))]
    return TurnPlan(words, moves, lambda r: f"I sent {name} the message.", kind="bfcl_message")


def distance(w: World) -> TurnPlan:
    a, b = w.rng.choice(CITY_PAIRS[w.split])
    words = w.words([f"how far is {a} from {b}", f"what's the distance between {a} and {b}",
                     f"how far apart are {a} and {b}", f"what's the distance from {a} to {b}",
                     f"how long is the drive from {a} to {b}"],
                    [f"how many kilometers from {a} to {b}"])
    moves = [Move(first_index(words, a), f"zipcode of {a}", ToolCall(1, "get_zipcode_based_on_city", {"city": a})),
             Move(first_index(words, b), f"zipcode of {b}", ToolCall(2, "get_zipcode_based_on_city", {"city": b})),
             Move(first_index(words, b), "distance between them",
                  ToolCall(3, "estimate_distance", {"cityA": "$1.zipcode", "cityB": "$2.zipcode"}))]
    return TurnPlan(words, moves, lambda r: f"{a} is {r[3]['distance']} km from {b}.", kind="bfcl_distance")


def doors(w: World) -> TurnPlan:
    unlock = w.rng.random() < 0.5
    verb = "unlock" if unlock else "lock"
    which = list(DOORS) if w.rng.random() < 0.5 else [w.rng.choice(DOORS)]
    spoken = "all the doors" if len(which) == 4 else f"the {which[0].replace('_', ' ')} door"
    words = w.words([f"{verb} {spoken}", f"please {verb} {spoken}", f"{verb} {spoken} for me",
                     f"I need you to {verb} {spoken}", f"go ahead and {verb} {spoken}"],
                    [f"can you {verb} {spoken} now"])
    moves = [Move(len(words), f"{verb} {spoken}", ToolCall(1, "lockDoors", {"unlock": unlock, "door": which}))]
    return TurnPlan(words, moves, lambda r: f"Done, {spoken} {'are' if len(which) == 4 else 'is'} {verb}ed.",
                    kind="bfcl_doors")


def climate(w: World) -> TurnPlan:
    fahrenheit = w.rng.random() < 0.3
    t = w.rng.randrange(64, 78) if fahrenheit else w.rng.randrange(17, 27)
    unit = "fahrenheit" if fahrenheit else "celsius"
    words = w.words([f"set the temperature to {t} degrees {unit}", f"make it {t} degrees {unit} in here",
                     f"change the temperature to {t} degrees {unit}",
                     f"adjust the climate to {t} degrees {unit}", f"set the AC to {t} degrees {unit}"],
                    [f"I want the car at {t} degrees {unit}"])
    args: dict[str, Any] = {"temperature": t, "unit": unit}
    moves = [Move(len(words), f"climate to {t} {unit}", ToolCall(1, "adjustClimateControl", args))]
    return TurnPlan(words, moves, lambda r: f"The temperature is set to {t} degrees {unit}.", kind="bfcl_climate")


def _trading(split: Split, rng: random.Random) -> dict[str, Any]:
    return {"authenticated": True, "account_info": {"account_id": rng.randrange(10000, 99999), "balance": 1e6,
                                                    "binding_card": 1974202140965533}}


def _messaging(split: Split, rng: random.Random) -> dict[str, Any]:
    used: set[str] = set()
    names = [draw_value("first_names", split, rng, used) for _ in range(5)]
    ids = {n: f"USR{i + 1:03d}" for i, n in enumerate(names)}
    return {"user_map": ids, "user_count": len(ids), "current_user": ids[names[0]], "inbox": [], "message_count": 0,
            "random_seed": rng.randrange(1 << 20)}


# class: (starting configuration, turn kinds)
CLASSES: dict[str, tuple[Callable[[Split, random.Random], dict[str, Any]], tuple[Callable[[World], TurnPlan], ...]]] = {
    "MathAPI": (lambda split, rng: {}, (arithmetic,)),
    "TradingBot": (_trading, (stock_price, buy, watch)),
    "MessageAPI": (_messaging, (chat_message,)),
    "VehicleControlAPI": (lambda split, rng: {}, (distance, doors, climate)),
}


def snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """The backends' public attributes, as BFCL's state checker compares them."""
    return {cls: json.loads(json.dumps({k: v for k, v in vars(obj).items() if not k.startswith("_")},
                                       default=lambda v: sorted(v) if isinstance(v, set) else str(v)))
            for cls, obj in state.items()}


def bfcl_episode(split: Split, rng: random.Random) -> Episode:
    cls = rng.choice(list(CLASSES))
    make_config, kinds = CLASSES[cls]
    world = World(make_config(split, rng), split, rng)
    turns = [rng.choice(kinds)(world) for _ in range(rng.choices([1, 2], weights=[3, 1])[0])]
    catalog = Catalog(f"bfcl-{cls}", tuple(bfcl.tools(cls)), new_state=lambda: {cls: bfcl.backend(cls, world.config)})
    # The side effects to expect: the gold calls (as they finally stand) replayed on a fresh world.
    gold = catalog.new_state()
    for plan in turns:
        _replay(plan.final_calls(), gold[cls])
    return Episode("+".join(t.kind for t in turns), split, catalog.new_state(), turns, snapshot(gold), catalog,
                   snapshot)
