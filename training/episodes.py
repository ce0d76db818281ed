"""Task templates for the demo catalog: episodes of spoken requests with the steps a good agent takes.

An episode is a small world (contacts, weather, calendar) and one to three user turns. Each turn is
the words the user says, in order (fillers, hesitations and self-corrections included), and the
teacher's plan: moves that become due once enough words have been heard (or at the final update),
and the answer built from the tool results. Wrong early guesses are moves too: a call made from a
partial update and revised (same id) or withdrawn (`REMOVE`) when later words change it.

Two disjoint splits, `train` and `heldout`: names, places, messages, phrasings and some tool chains of
the held-out split never occur in training. Names, places, messages and labels come from a small pool
of real ones and, mostly, from the open-ended spaces of `training.values`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from agent import numerals
from agent.numerals import MONTHS, written
from agent.protocol import Remove, ToolCall
from agent.tools import Catalog
from configs.catalogs.demo import CATALOG, DemoState
from training import values
from training.values import Split as Split  # re-exported: the templates use it

Results = dict[int, Any]


@dataclass(frozen=True)
class Move:
    """One action of the teacher, due once `at` words of the turn have been heard (None: after the
    final update) and the results of `needs` are in."""

    at: int | None
    think: str
    action: ToolCall | Remove
    needs: tuple[int, ...] = ()
    # A guess is worth making only while fewer than `until` words are heard; once the words that settle
    # it are in ("Oscar, no, Wil" in one update), the teacher skips it, and the next move, which
    # revised it, is written with the think `alone`.
    until: int | None = None
    alone: str | None = None


@dataclass
class TurnPlan:
    words: list[str]
    moves: list[Move]
    answer: Callable[[Results], str]
    pause_after: int | None = None  # the user stops for a while after this many words (a hesitation)
    kind: str = ""

    def final_calls(self) -> list[ToolCall]:
        """The calls as they finally stand, in id order: revisions replace, REMOVE withdraws."""
        calls: dict[int, ToolCall] = {}
        for move in self.moves:
            if isinstance(move.action, Remove):
                calls.pop(move.action.id, None)
            else:
                calls[move.action.id] = move.action
        return [calls[i] for i in sorted(calls)]


def demo_effects(state: Any) -> dict[str, list[dict[str, Any]]]:
    """What the demo catalog's calls created (their ids start at 100), ids aside."""
    def made(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "id"} for e in items if e["id"] >= 100]

    return {"sent": made(state.sent), "calendar": made(state.calendar), "timers": made(state.timers)}


@dataclass
class Episode:
    kind: str
    split: Split
    state: Any  # the world the tools act on (a DemoState, or BFCL backends by class)
    turns: list[TurnPlan]
    expected: Any = field(default_factory=dict)  # the side effects, as `effects` reports them
    catalog: Catalog = CATALOG
    effects: Callable[[Any], Any] = demo_effects


@dataclass(frozen=True)
class Pools:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[str, ...]
    messages: tuple[str, ...]
    titles: tuple[str, ...]
    labels: tuple[str, ...]


POOLS: dict[Split, Pools] = {
    "train": Pools(
        first_names=("John", "Mary", "Alice", "Bob", "Priya", "Carlos", "Emma", "Liam", "Sofia", "Noah", "Olivia",
                     "Ethan", "Mia", "Lucas", "Ava", "Omar", "Yuki", "Fatima", "Diego", "Hannah", "Ivan", "Grace",
                     "Kenji", "Leila", "Marco", "Nina", "Pablo", "Rosa", "Sam", "Tara", "Victor", "Wendy", "Zoe",
                     "Aaron", "Bianca", "Chen", "Dmitri", "Esther", "Farah", "George"),
        last_names=("Smith", "Jones", "Chen", "Martin", "Patel", "Garcia", "Brown", "Wilson", "Tanaka", "Kim",
                    "Rossi", "Silva", "Novak", "Khan", "Murphy", "Schmidt", "Lopez", "Nguyen"),
        cities=("Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Sydney", "Toronto", "Chicago", "Seattle",
                "Boston", "Dublin", "Oslo", "Lisbon", "Vienna", "Prague", "Cairo", "Mumbai", "Seoul", "Lima",
                "San Francisco", "San Diego", "New York", "New Orleans", "Los Angeles", "Las Vegas", "Rio de Janeiro",
                "Mexico City", "Hong Kong", "Cape Town"),
        messages=("I am running late", "I will call you back tonight", "happy birthday", "the meeting moved to Friday",
                  "dinner is at seven", "can you pick up some milk", "I left my keys at your place",
                  "see you at the station", "the package arrived", "thanks for your help today",
                  "I am stuck in traffic", "let's meet at noon", "don't forget the tickets", "I'm on my way"),
        titles=("lunch with {name}", "dentist appointment", "team meeting", "yoga class", "call with {name}",
                "doctor visit", "coffee with {name}", "project review", "haircut", "piano lesson"),
        labels=("pasta", "check the oven", "laundry", "call mom", "take the medicine", "the tea", "stretch break"),
    ),
    "heldout": Pools(
        first_names=("Anna", "Ben", "Chloe", "David", "Elena", "Felix", "Gita", "Hugo", "Isla", "Jonas", "Kofi",
                     "Lara", "Mateo", "Nora", "Oscar", "Paula", "Ravi", "Selma", "Theo", "Ursula"),
        last_names=("Becker", "Costa", "Dubois", "Evans", "Fischer", "Haddad", "Ito", "Jensen", "Larsen", "Moreau"),
        cities=("Amsterdam", "Athens", "Denver", "Miami", "Nairobi", "Warsaw", "Zurich", "Hanoi", "Bogota", "Austin",
                "San Jose", "New Delhi", "Buenos Aires", "Kuala Lumpur"),
        messages=("the car is ready", "I found your wallet", "the train is delayed", "call me when you land",
                  "bring an umbrella", "we won the game", "the door code changed"),
        titles=("brunch with {name}", "parent teacher meeting", "gym session", "tax appointment", "walk with {name}"),
        labels=("bread", "the eggs", "parking meter", "plants"),
    ),
}

CONDITIONS = ("sunny", "light rain", "overcast", "windy", "clear", "fog", "snow", "thunderstorms", "cloudy")
ORDINALS = tuple(sorted(numerals.ORDINALS, key=numerals.ORDINALS.__getitem__))  # "first" ... "thirty first"
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 10: "ten", 15: "fifteen", 20: "twenty",
           25: "twenty five", 30: "thirty", 40: "forty", 45: "forty five", 60: "sixty", 90: "ninety"}
FILLERS = ("um", "uh", "hmm", "like", "so")
GENERATED: dict[str, Callable[[random.Random], str]] = {
    "first_names": values.name, "cities": values.city, "messages": values.message, "labels": values.label}
REAL_SHARE = 0.35  # the rest is generated, so that no value is seen often enough to be memorised


def draw_value(pool: str, split: Split, rng: random.Random, used: set[str] | None = None) -> str:
    """A first name, city, message or label of `split`: real or generated, not yet in `used`."""
    used = set() if used is None else used
    real: tuple[str, ...] = getattr(POOLS[split], pool)
    other = frozenset(getattr(POOLS["heldout" if split == "train" else "train"], pool))
    while True:
        if rng.random() < REAL_SHARE:
            value = rng.choice(real)
        else:
            value = values.draw(GENERATED[pool], split, rng, exclude=other)
        if value not in used:
            used.add(value)
            return value


class Builder:
    """Draws the values of one episode from a split's pools and builds its world as it goes."""

    def __init__(self, split: Split, rng: random.Random) -> None:
        self.split, self.rng, self.pools = split, rng, POOLS[split]
        self.state = DemoState(calendar=[], contacts={}, weather={})
        self.expected: dict[str, list[dict[str, Any]]] = {"sent": [], "calendar": [], "timers": []}
        self._used: set[str] = set()

    def pick(self, pool: str) -> str:
        return draw_value(pool, self.split, self.rng, self._used)

    def phrase(self, train: list[str], heldout: list[str]) -> str:
        return self.rng.choice(train if self.split == "train" else heldout)

    def marker(self) -> str:
        """How the user takes a word back: "no," in the held-out split (which draws nothing for it), any
        of CORRECTIONS in training, so that a revision is learnt from more than one word."""
        return self.rng.choice(CORRECTIONS) if self.split == "train" else "no,"

    def bridge(self) -> bool:
        """Whether a training correction puts a word between the value and the marker (BRIDGE_SHARE);
        the held-out split draws nothing here."""
        return self.split == "train" and self.rng.random() < BRIDGE_SHARE

    def missing(self, drawn: str) -> bool:
        """Whether a training lookup asks for a name or city the world lacks (MISSING_SHARE), told by a
        digest of the values just drawn, not by a draw of its own: the episodes that follow stay those
        the same seed gave before (run 34's first data, drawn, had 189 BFCL episodes of 850, run 32's
        228). The held-out split lacks nothing."""
        return self.split == "train" and zlib.crc32(drawn.encode()) % 1000 < MISSING_SHARE * 1000

    def contact(self, may_fail: bool = False) -> dict[str, str]:
        """A contact, in the world's address book unless `may_fail` and `missing`."""
        first = self.pick("first_names")
        last = self.rng.choice(self.pools.last_names)
        digits = "".join(str(self.rng.randrange(10)) for _ in range(7))
        contact = {"name": f"{first} {last}", "phone": f"+1 {self.rng.randrange(200, 990)} {digits[:3]} {digits[3:]}",
                   "email": f"{first.lower()}.{last.lower()}@example.com"}
        if not (may_fail and self.missing(contact["phone"])):
            self.state.contacts[first.lower()] = contact
        return contact

    def city(self, may_fail: bool = False) -> str:
        """A city, with weather in the world unless `may_fail` and `missing`."""
        city = self.pick("cities")
        weather = (self.rng.randrange(-5, 36), self.rng.choice(CONDITIONS))
        if not (may_fail and self.missing(f"{city} {weather}")):
            self.state.weather[city.lower()] = weather
        return city

    def date(self) -> tuple[str, str, str]:
        """A day as said ("the twenty fifth of April"), as the model reads it ("the 25th of April": the
        worker writes numbers as digits) and as the tools take it."""
        month, day = self.rng.randrange(1, 13), self.rng.randrange(1, 29)
        spoken = self.rng.choice([f"{MONTHS[month - 1]} {ORDINALS[day - 1]}", f"the {ORDINALS[day - 1]} of "
                                  f"{MONTHS[month - 1]}"])
        return spoken, written(spoken), f"2026-{month:02d}-{day:02d}"

    def minutes(self) -> tuple[str, int]:
        n = self.rng.choice(list(NUMBERS))
        return (NUMBERS[n] if self.rng.random() < 0.6 else str(n)), n

    def clock_time(self) -> tuple[str, str]:
        hour = self.rng.randrange(8, 20)
        minute = self.rng.choice([0, 0, 15, 30, 45])
        h12 = hour - 12 if hour > 12 else hour
        spoken = f"{h12}" + (f":{minute:02d}" if minute else "") + (" pm" if hour >= 12 else " am")
        if hour == 12 and minute == 0 and self.rng.random() < 0.5:
            spoken = "noon"
        return spoken, f"{hour:02d}:{minute:02d}"


def words_of(text: str) -> list[str]:
    return text.split()


def _key(word: str) -> str:
    """A word as matched against a value: lower case, without punctuation or a possessive 's."""
    word = word.lower().strip(",.?!")
    return word.removesuffix("'s")


def first_index(words: list[str], *needles: str) -> int:
    """How many words must be heard before every one of `needles` (each a phrase) has been said."""
    keys = [_key(w) for w in words]
    at = 0
    for needle in needles:
        target = [_key(w) for w in needle.split()]
        found = next((i + len(target) for i in range(len(keys) - len(target) + 1)
                      if keys[i:i + len(target)] == target), None)
        if found is None:
            raise ValueError(f"{needle!r} is not said in {' '.join(words)!r}")
        at = max(at, found)
    return at


# Training requests sometimes open with a discourse marker or end with a courtesy, so that the request
# is told by its content words wherever they stand, not by how the sentence starts (held-out wordings
# start differently). Neither list may make a held-out wording (the test on held-out wordings checks).
OPENERS = ("hey,", "okay,", "so", "alright,", "oh,", "right,", "and", "also,", "hi,", "one more thing,", "okay so",
           "sorry,", "hmm,", "quick one,")
# (each with what joins it; "for me" closes any request: run 33 read "check Google shares for me" as
# "watch Google for me", the one training request that ended so)
CLOSERS = (", please", ", thanks", ", thank you", ", if you can", ", when you get a chance", ", okay?", " for me")
OPENER_SHARE, CLOSER_SHARE = 0.25, 0.2
# Self-corrections in training; the held-out split says "no," (one of them).
CORRECTIONS = ("no,", "sorry,", "I mean", "no wait,", "sorry, I meant", "oops,", "no, I mean")
# Training corrections with a word between the value and the marker ("text Oscar that, no, Wil"): a
# lookup waits for a word after its value (generate.LOOKAHEAD_WORDS), so only a value taken back after
# that word was heard makes a wrong call to revise; the others teach to wait at "Oscar, no,". Run 25
# bridged half of all corrections and learnt the guess better than its revision (at "text Fiachais, no,
# Shaibroustor" it looked Fiachais up, then made the fix a new call 2): since run 26 only the lookups'
# corrections are bridged, a text's correction always waits at the marker.
BRIDGE_SHARE = 0.5
# Training lookups of a contact or city the world lacks: the tool's error comes back, a text that needed
# the lookup is not sent, and the answer says what failed. Runs 24-32 never saw an error result and
# answered over one as over a success ("Done, the rear left door is unlocked", "It is 20 degrees and 72
# hours" after "no weather data").
MISSING_SHARE = 0.08
WITHDRAWALS = ("actually never mind", "wait, forget that", "no, scratch that", "actually cancel that",
               "hmm, never mind that", "forget it")


def said(split: Split, rng: random.Random, text: str, closer: bool = True) -> list[str]:
    """The words of a request as spoken; `closer=False` where the request ends in free text (a message
    body), which a courtesy would run into. The held-out split draws nothing here."""
    if split == "train":
        if rng.random() < OPENER_SHARE:
            text = f"{rng.choice(OPENERS)} {text}"
        if closer and rng.random() < CLOSER_SHARE:
            courtesy = rng.choice(CLOSERS)
            text += "" if text.endswith(courtesy.lstrip(", ")) else courtesy  # not "for me for me"
    return words_of(text)


def disfluent(rng: random.Random, text: str, rate: float = 0.15) -> str:
    """Sprinkle fillers between words (never inside a value: only before words longer than 3 letters)."""
    out: list[str] = []
    for i, w in enumerate(text.split()):
        if i and rng.random() < rate and len(w) > 3 and w[0].islower():
            out.append(rng.choice(FILLERS) + ",")
        out.append(w)
    return " ".join(out)


def _answer_weather(r: dict[str, Any]) -> str:
    return f"It is {r['temperature_c']} degrees and {r['conditions']} in {r['city']}."


def failed(result: Any) -> bool:
    """Whether a tool's result is its error."""
    return isinstance(result, dict) and "error" in result


# -- turn kinds -----------------------------------------------------------------------------------------
# Each returns a TurnPlan; ids start at 1 in every turn.


def weather(b: Builder) -> TurnPlan:
    city = b.city(may_fail=True)
    text = b.phrase([f"what's the weather in {city}", f"how is the weather in {city} today",
                     f"is it cold in {city} right now", f"tell me the weather for {city} please",
                     f"what's it like outside in {city}", f"what's the temperature in {city}",
                     f"is it raining in {city}", f"how hot is it in {city} today", f"get the weather for {city}",
                     f"do I need a jacket in {city} today", f"what are the conditions in {city} right now",
                     f"look up the weather in {city}", f"is it sunny in {city}",
                     f"read me the weather report for {city}", f"can you tell me how cold it is in {city}",
                     f"will I need an umbrella in {city}", f"check the temperature in {city} for me"],
                    [f"could you check the forecast for {city}", f"how warm is it in {city}"])
    words = said(b.split, b.rng, disfluent(b.rng, text))
    at = first_index(words, city)
    call = ToolCall(1, "get_weather", {"city": city})
    moves = [Move(at, f"weather in {city}", call)]
    guess = _guess_city(b, city, words)
    if guess is not None:  # a guess from the first word of a two-word city, revised when the rest is heard
        moves = [Move(at - len(city.split()) + 1, f"probably {guess}", ToolCall(1, "get_weather", {"city": guess}),
                      until=at),
                 Move(at, f"it is {city}, not {guess}: fix call 1", call, alone=f"weather in {city}")]
    return TurnPlan(words, moves, lambda r: f"Sorry, I could not get the weather for {city}." if failed(r[1])
                    else _answer_weather(r[1]), kind="weather")


def _guess_city(b: Builder, city: str, words: list[str]) -> str | None:
    """Another city that starts with the same word ("San Diego" for "San Francisco"), or None."""
    parts = city.split()
    if len(parts) < 2 or b.rng.random() < 0.65:
        return None
    others = [c for c in b.pools.cities if c.split()[0] == parts[0] and c != city]
    if not others or b.rng.random() < 0.5:
        try:
            others = [values.draw(lambda rng: f"{parts[0]} {values.name(rng)}", b.split, b.rng,
                                  exclude=frozenset({city}))]
        except LookupError:  # the first word decides the split ("Pros" is held out): no guess then
            if not others:
                return None
    guess = b.rng.choice(others)
    b.state.weather.setdefault(guess.lower(), (b.rng.randrange(-5, 36), b.rng.choice(CONDITIONS)))
    return guess


def two_cities(b: Builder) -> TurnPlan:
    c1, c2 = b.city(), b.city()
    text = b.phrase([f"what's the weather in {c1} and in {c2}", f"compare the weather in {c1} and {c2}",
                     f"tell me the temperature in {c1} and then in {c2}", f"is it raining in {c1} or {c2}",
                     f"weather for {c1} and {c2} please", f"how is the weather in {c1}, and what about {c2}"],
                    [f"is it warmer in {c1} or in {c2}"])
    words = said(b.split, b.rng, disfluent(b.rng, text))
    moves = [Move(first_index(words, c1), f"{c1} first", ToolCall(1, "get_weather", {"city": c1})),
             Move(first_index(words, c2), f"now {c2}", ToolCall(2, "get_weather", {"city": c2}))]
    return TurnPlan(words, moves, lambda r: f"{_answer_weather(r[1])} {_answer_weather(r[2])}", kind="two_cities")


def contact(b: Builder) -> TurnPlan:
    c = b.contact(may_fail=True)
    first = c["name"].split()[0]
    field_, label = b.rng.choice([("phone", "phone number"), ("email", "email address")])
    text = b.phrase([f"what's {first}'s {label}", f"look up {first}'s {label}", f"find the {label} of {first}",
                     f"what is the {label} for {first}", f"get me {first}'s {label}", f"I need {first}'s {label}",
                     f"tell me {first}'s {label}", f"pull up the {label} for {first}",
                     f"can you find {first}'s {label}", f"search my contacts for {first}'s {label}"],
                    [f"do you have {first}'s {label}"])
    words = said(b.split, b.rng, text)
    moves = [Move(first_index(words, first), f"look up {first}", ToolCall(1, "lookup_contact", {"name": first}))]
    return TurnPlan(words, moves, lambda r: f"Sorry, I could not find {first} in your contacts." if failed(r[1])
                    else f"{r[1]['name']}'s {label} is {r[1][field_]}.", kind="contact")


def message(b: Builder, *, correction: bool = False) -> TurnPlan:
    c, first, body = _recipient(b, may_fail=not correction)
    known = first.lower() in b.state.contacts
    via = b.rng.random() < 0.25
    field_ = "email" if via else "phone"
    verb = "email" if via else b.phrase(["text", "message"], ["text"])
    if correction:
        wrong = b.contact()["name"].split()[0]
        text = f"{verb} {wrong}, {b.marker()} {first}, that {body}"
    else:
        text = b.phrase([f"{verb} {first} that {body}", f"send {first} a message saying {body}",
                         f"tell {first} {body}", f"send a text to {first} saying {body}",
                         f"shoot {first} a text that {body}", f"write to {first} that {body}",
                         f"{verb} {first} saying {body}", f"can you {verb} {first} that {body}",
                         f"send a message to {first} that {body}", f"tell {first} that {body}"]
                        if not via else [f"email {first} that {body}", f"send an email to {first} saying {body}",
                                         f"write {first} an email saying {body}", f"send {first} an email that {body}"],
                        [f"please let {first} know that {body}", f"drop {first} a note that {body}"])
    words = said(b.split, b.rng, text, closer=False)
    name_at = first_index(words, first)
    body_at = len(words)
    send = ToolCall(2, "send_message", {"to": f"$1.{field_}", "text": body})
    moves = [Move(name_at, f"find {first}'s {'email' if via else 'number'}", ToolCall(1, "lookup_contact",
                                                                                        {"name": first}))]
    if correction:
        wrong_at = first_index(words, wrong)
        moves = [Move(wrong_at, f"find {wrong}", ToolCall(1, "lookup_contact", {"name": wrong}),
                      until=wrong_at + 1),  # once "no," (or "sorry,", ...) is heard
                 Move(name_at, f"not {wrong} but {first}: fix call 1", ToolCall(1, "lookup_contact", {"name": first}),
                      alone=moves[0].think)]
    moves.append(Move(body_at, f"send the message to {first}", send))
    if known:
        b.expected["sent"].append({"to": c[field_], "text": body})
    # (a send that needs a failed lookup is not made: see generate.Teacher)
    return TurnPlan(words, moves, lambda r: f"Sorry, I could not find {first} in your contacts, so I did not send "
                    "the message." if failed(r[1]) else f"I sent {r[1]['name'].split()[0]} the message.",
                    kind="correction" if correction else "message")


def calendar(b: Builder) -> TurnPlan:
    spoken, heard, date = b.date()
    events = [{"id": len(b.state.calendar) + 1, "title": b.rng.choice(POOLS[b.split].titles).format(name="Sam"),
               "date": date, "time": f"{b.rng.randrange(8, 19):02d}:00"} for _ in range(b.rng.randrange(0, 3))]
    b.state.calendar += events
    text = b.phrase([f"what's on my calendar on {spoken}", f"do I have anything on {spoken}",
                     f"what do I have planned for {spoken}", f"what's on my schedule for {spoken}",
                     f"am I busy on {spoken}", f"any plans on {spoken}", f"check my calendar for {spoken}",
                     f"show me my agenda for {spoken}", f"what meetings do I have on {spoken}",
                     f"read me my appointments on {spoken}", f"what's happening on {spoken}",
                     # the date before "on my calendar" too: run 27 created events for held-out requests
                     # that named the day first and the calendar after it
                     f"what's {spoken} like on my calendar", f"what does {spoken} hold on my calendar",
                     f"tell me about {spoken} on my calendar",
                     # and an imperative before it: run 33 made events of "look at March fifth on my
                     # calendar and message ..." (the date and "on my calendar" were an event's, with a verb)
                     f"pull up {spoken} on my calendar", f"open {spoken} on my calendar",
                     f"bring up {spoken} on my calendar"],
                    [f"am I free on {spoken}"])
    words = said(b.split, b.rng, text)
    # The think says the date as heard, then as the tool wants it: the conversion is then made next to
    # its words (run 14 got four held-out dates wrong in 59 turns, 2026-04-10 for "April twentieth").
    moves = [Move(len(words), f"read the calendar for {heard}: {date}", ToolCall(1, "read_calendar", {"date": date}))]

    def answer(r: Results) -> str:
        if not r[1]:
            return f"Nothing is planned on {heard}."
        return "You have " + " and ".join(f"{e['title']} at {e['time']}" for e in r[1]) + "."

    return TurnPlan(words, moves, answer, kind="calendar")


def event(b: Builder) -> TurnPlan:
    spoken_date, heard_date, date = b.date()
    spoken_time, time = b.clock_time()
    title = b.rng.choice(b.pools.titles).format(name=b.pick("first_names"))
    text = b.phrase([f"add {title} on {spoken_date} at {spoken_time}",
                     f"put {title} on my calendar for {spoken_date} at {spoken_time}",
                     f"schedule {title} at {spoken_time} on {spoken_date}",
                     f"create an event {title} on {spoken_date} at {spoken_time}",
                     f"set up {title} for {spoken_date} at {spoken_time}",
                     f"add an event called {title} for {spoken_date} at {spoken_time}",
                     f"pencil in {title} on {spoken_date} at {spoken_time}",
                     f"make an appointment for {title} on {spoken_date} at {spoken_time}",
                     f"I have {title} on {spoken_date} at {spoken_time}, add it to my calendar",
                     f"new calendar event, {title}, {spoken_date} at {spoken_time}",
                     # the date and the time are what tell an event from a calendar question, whatever the verb
                     f"arrange {title} for {spoken_date} at {spoken_time}",
                     f"plan {title} for {spoken_date} at {spoken_time}",
                     f"note down {title} for {spoken_date} at {spoken_time}",
                     f"save {title} on {spoken_date} at {spoken_time} in my calendar"],
                    [f"book {title} for {spoken_date} at {spoken_time}"])
    words = said(b.split, b.rng, text)
    moves = [Move(len(words), f"create {title} on {heard_date} at {spoken_time}: {date} {time}",
                  ToolCall(1, "create_event", {"title": title, "date": date, "time": time}))]
    b.expected["calendar"].append({"title": title, "date": date, "time": time})
    return TurnPlan(words, moves, lambda r: f"I added {title} on {heard_date} at {spoken_time}.", kind="event")


def timer(b: Builder) -> TurnPlan:
    spoken, n = b.minutes()
    label = b.pick("labels")
    unit = "minute" if n == 1 else "minutes"
    text = b.phrase([f"set a timer for {spoken} {unit} for {label}", f"remind me in {spoken} {unit} about {label}",
                     f"start a {spoken} {unit} timer for {label}", f"{spoken} {unit} timer for {label} please",
                     f"count down {spoken} {unit} for {label}", f"alert me in {spoken} {unit} about {label}",
                     f"in {spoken} {unit} remind me about {label}", f"set an alarm in {spoken} {unit} for {label}",
                     f"can you time {spoken} {unit} for {label}"], [f"give me {spoken} {unit} for {label}"])
    words = said(b.split, b.rng, text)
    moves = [Move(len(words), f"a {n} minute timer for {label}",
                  ToolCall(1, "set_timer", {"minutes": n, "label": label}))]
    b.expected["timers"].append({"minutes": n, "label": label})
    return TurnPlan(words, moves, lambda r: f"Your {n} minute timer for {label} is running.", kind="timer")


def _recipient(b: Builder, may_fail: bool = False) -> tuple[dict[str, str], str, str]:
    """Whom a text goes to (the contact, its first name) and what it says, drawn in this order."""
    c = b.contact(may_fail)
    return c, c["name"].split()[0], b.pick("messages")


def _then_text(b: Builder, words: list[str], lookup: Move, contact: dict[str, str], body: str) -> list[Move]:
    """A three-call chain: `lookup` (call 1), the contact (call 2), then a text that uses call 2."""
    first = contact["name"].split()[0]
    b.expected["sent"].append({"to": contact["phone"], "text": body})
    return [lookup, Move(first_index(words, first), f"find {first}", ToolCall(2, "lookup_contact", {"name": first})),
            Move(len(words), f"send {first} the message",
                 ToolCall(3, "send_message", {"to": "$2.phone", "text": body}))]


def weather_then_message(b: Builder) -> TurnPlan:
    """Three calls: a lookup for the weather, a contact lookup and a message that uses it."""
    city = b.city()
    c, first, body = _recipient(b)
    text = b.phrase([f"check the weather in {city} and text {first} that {body}",
                     f"what's the weather in {city}, and tell {first} {body}",
                     f"look up the temperature in {city} then message {first} saying {body}",
                     f"get the weather for {city} and send {first} a text that {body}"],
                    [f"how is {city} looking today, and message {first} that {body}"])
    words = said(b.split, b.rng, disfluent(b.rng, text, 0.1), closer=False)
    lookup = Move(first_index(words, city), f"weather in {city}", ToolCall(1, "get_weather", {"city": city}))
    return TurnPlan(words, _then_text(b, words, lookup, c, body),
                    lambda r: f"{_answer_weather(r[1])} I also texted {first}.",
                    kind="weather_then_message")


def timer_then_message(b: Builder) -> TurnPlan:
    """Training only: a timer, then a text. With the event's chain and the weather's, the call after a
    result is the request's next part whatever the first tool was: run 16, which saw only the weather's,
    finished none of 14 held-out chains (after the first result it answered, or made an event or a
    timer of "look at March fifth on my calendar and message ..."; "all results are in" follows nearly
    every result it saw)."""
    spoken, n = b.minutes()
    label = b.pick("labels")
    unit = "minute" if n == 1 else "minutes"
    c, first, body = _recipient(b)
    options = [f"set a timer for {spoken} {unit} for {label} and text {first} that {body}",
               f"start a {spoken} {unit} timer for {label}, then message {first} saying {body}",
               f"remind me in {spoken} {unit} about {label} and tell {first} {body}",
               f"count down {spoken} {unit} for {label} and send {first} a text that {body}"]
    words = said(b.split, b.rng, disfluent(b.rng, b.phrase(options, options), 0.1), closer=False)
    b.expected["timers"].append({"minutes": n, "label": label})
    start = Move(len(words), f"a {n} minute timer for {label}",
                 ToolCall(1, "set_timer", {"minutes": n, "label": label}))
    return TurnPlan(words, _then_text(b, words, start, c, body),
                    lambda r: f"Your {n} minute timer for {label} is running, and I texted {first}.",
                    kind="timer_then_message")


def event_then_message(b: Builder) -> TurnPlan:
    """Training only: an event, then a text (see timer_then_message)."""
    spoken_date, heard_date, date = b.date()
    spoken_time, time = b.clock_time()
    title = b.rng.choice(b.pools.titles).format(name=b.pick("first_names"))
    c, first, body = _recipient(b)
    options = [f"add {title} on {spoken_date} at {spoken_time} and text {first} that {body}",
               f"put {title} on my calendar for {spoken_date} at {spoken_time}, then message {first} saying {body}",
               f"schedule {title} at {spoken_time} on {spoken_date} and tell {first} {body}",
               f"create an event {title} on {spoken_date} at {spoken_time} and send {first} a text that {body}"]
    words = said(b.split, b.rng, b.phrase(options, options), closer=False)
    b.expected["calendar"].append({"title": title, "date": date, "time": time})
    create = Move(len(words), f"create {title} on {heard_date} at {spoken_time}: {date} {time}",
                  ToolCall(1, "create_event", {"title": title, "date": date, "time": time}))
    return TurnPlan(words, _then_text(b, words, create, c, body),
                    lambda r: f"I added {title} on {heard_date} at {spoken_time}, and I texted {first}.",
                    kind="event_then_message")


def calendar_then_weather(b: Builder) -> TurnPlan:
    """Training only: the calendar read on partial words as the first of two requests. Run 24 began 4 of
    the 9 held-out calendar chains with an event or nothing: a date followed by more words had only
    ever been an event's. The calendar's chain with a text stays held out."""
    spoken, heard, date = b.date()
    city = b.city()
    options = [f"check my calendar for {spoken} and the weather in {city}",
               f"what's on my calendar on {spoken}, and how is the weather in {city}",
               f"read my schedule for {spoken} then tell me the weather in {city}",
               f"do I have anything on {spoken}, and is it raining in {city}"]
    words = said(b.split, b.rng, b.phrase(options, options))
    moves = [Move(first_index(words, *spoken.split()), f"read {heard}: {date}",
                  ToolCall(1, "read_calendar", {"date": date})),
             Move(first_index(words, city), f"weather in {city}", ToolCall(2, "get_weather", {"city": city}))]
    return TurnPlan(words, moves, lambda r: f"You have {len(r[1])} events that day. {_answer_weather(r[2])}",
                    kind="calendar_then_weather")


def calendar_then_message(b: Builder) -> TurnPlan:
    spoken, heard, date = b.date()
    c, first, body = _recipient(b)
    text = b.phrase([f"check my calendar for {spoken} and text {first} that {body}"],
                    [f"look at {spoken} on my calendar and message {first} that {body}"])
    words = words_of(text)
    lookup = Move(first_index(words, *spoken.split()), f"read {heard}: {date}",
                  ToolCall(1, "read_calendar", {"date": date}))
    return TurnPlan(words, _then_text(b, words, lookup, c, body),
                    lambda r: f"You have {len(r[1])} events that day, and I texted {first}.",
                    kind="calendar_then_message")


def changed_mind(b: Builder) -> TurnPlan:
    """A lookup on partial words, withdrawn when the user changes the request."""
    if b.split == "train":
        return _withdrawn(b)
    city = b.city()
    spoken, n = b.minutes()
    label = b.pick("labels")
    # (The held-out wording draws nothing, so that the held-out set does not move.)
    ask, withdraw = "what's the weather in", "actually never mind"
    text = f"{ask} {city}, {withdraw}, set a timer for {spoken} minutes for {label}"
    words = said(b.split, b.rng, text)
    moves = [Move(first_index(words, city), f"weather in {city}", ToolCall(1, "get_weather", {"city": city})),
             Move(first_index(words, withdraw), "they do not want the weather any more: remove call 1", Remove(1)),
             Move(len(words), f"a {n} minute timer", ToolCall(2, "set_timer", {"minutes": n, "label": label}))]
    b.expected["timers"].append({"minutes": n, "label": label})
    return TurnPlan(words, moves, lambda r: f"Okay, a {n} minute timer for {label} is running.", kind="changed_mind")


def _withdrawn(b: Builder) -> TurnPlan:
    """Training's withdrawals: a weather or contact lookup taken back, then a timer, another city or a
    contact, so that `REMOVE` is learnt from "never mind", not from one sentence."""
    withdraw = b.rng.choice(WITHDRAWALS)
    if b.rng.random() < 0.6:
        city = b.city()
        first_part, value = b.rng.choice(["what's the weather in", "is it raining in", "check the temperature in",
                                          "how cold is it in"]), city
        lookup = ToolCall(1, "get_weather", {"city": city})
        think, gone = f"weather in {city}", "they do not want the weather any more: remove call 1"
    else:
        value = b.contact()["name"].split()[0]
        first_part = b.rng.choice(["look up", "what's the number of", "find the email of", "get me the number for"])
        lookup = ToolCall(1, "lookup_contact", {"name": value})
        think, gone = f"look up {value}", f"they do not need {value} any more: remove call 1"
    then = b.rng.choice(["timer", "weather", "contact"])
    if then == "timer":
        spoken, n = b.minutes()
        label = b.pick("labels")
        rest = b.rng.choice([f"set a timer for {spoken} minutes for {label}",
                             f"remind me in {spoken} minutes about {label}"])
        b.expected["timers"].append({"minutes": n, "label": label})
        follow, key = ToolCall(2, "set_timer", {"minutes": n, "label": label}), None
        follow_think = f"a {n} minute timer"

        def answer(r: Results) -> str:
            return f"Okay, a {n} minute timer for {label} is running."
    elif then == "weather":
        other = b.city()
        rest = b.rng.choice([f"how is the weather in {other}", f"is it sunny in {other}"])
        follow, key, follow_think = ToolCall(2, "get_weather", {"city": other}), other, f"weather in {other}"

        def answer(r: Results) -> str:
            return _answer_weather(r[2])
    else:
        other = b.contact()["name"].split()[0]
        rest = b.rng.choice([f"what's {other}'s phone number", f"look up {other}'s number"])
        follow, key, follow_think = ToolCall(2, "lookup_contact", {"name": other}), other, f"look up {other}"

        def answer(r: Results) -> str:
            return f"{r[2]['name']}'s phone number is {r[2]['phone']}."
    words = said(b.split, b.rng, f"{first_part} {value}, {withdraw}, {rest}")
    moves = [Move(first_index(words, value), think, lookup),
             Move(first_index(words, withdraw), gone, Remove(1)),
             Move(len(words) if key is None else first_index(words, withdraw, key), follow_think, follow)]
    return TurnPlan(words, moves, answer, kind="changed_mind")


def weather_correction(b: Builder) -> TurnPlan:
    """Training only: a city taken back ("in Oslo, sorry, Lima"): call 1 is revised, as in a correction."""
    wrong, city = b.city(), b.city()
    ask = b.rng.choice(["what's the weather in", "is it raining in", "how cold is it in", "what's it like in",
                        "check the temperature in"])
    bridge = b.bridge()
    words = said(b.split, b.rng, f"{ask} {wrong}{' today' if bridge else ''}, {b.marker()} {city}")
    wrong_at = first_index(words, wrong)
    moves = [Move(wrong_at, f"weather in {wrong}", ToolCall(1, "get_weather", {"city": wrong}),
                  until=wrong_at + 1 + bridge),
             Move(first_index(words, city), f"not {wrong} but {city}: fix call 1",
                  ToolCall(1, "get_weather", {"city": city}), alone=f"weather in {city}")]
    return TurnPlan(words, moves, lambda r: _answer_weather(r[1]), kind="weather_correction")


def contact_correction(b: Builder) -> TurnPlan:
    """Training only: a name taken back in a lookup ("the number of Ana, no, Ben")."""
    wrong = b.contact()["name"].split()[0]
    c = b.contact()
    first = c["name"].split()[0]
    field_, label = b.rng.choice([("phone", "phone number"), ("email", "email address")])
    marker, bridge = b.marker(), b.bridge()
    taken = f"{wrong}{' please' if bridge else ''}, {marker} {first}"
    text = b.rng.choice([f"what's the {label} of {taken}", f"look up {taken}, I need the {label}",
                         f"find the {label} for {taken}"])
    words = said(b.split, b.rng, text)
    wrong_at = first_index(words, wrong)
    moves = [Move(wrong_at, f"look up {wrong}", ToolCall(1, "lookup_contact", {"name": wrong}),
                  until=wrong_at + 1 + bridge),
             Move(first_index(words, first), f"not {wrong} but {first}: fix call 1",
                  ToolCall(1, "lookup_contact", {"name": first}), alone=f"look up {first}")]
    return TurnPlan(words, moves, lambda r: f"{r[1]['name']}'s {label} is {r[1][field_]}.", kind="contact_correction")


def chat(b: Builder) -> TurnPlan:
    text, reply = b.rng.choice([("hello how are you today", "I'm doing well, thanks. How can I help?"),
                                ("thank you that's all", "You're welcome!"),
                                ("what can you do", "I can check the weather, find contacts, send messages, "
                                 "manage your calendar and set timers."),
                                ("good morning", "Good morning! What can I do for you?")])
    return TurnPlan(said(b.split, b.rng, text, closer=False), [], lambda r: reply, kind="chat")


def clarify(b: Builder) -> TurnPlan:
    text, reply = b.rng.choice([("send a message", "Who should I send it to, and what should it say?"),
                                ("set a timer", "For how many minutes?"),
                                ("what's the weather", "Which city?"),
                                ("add something to my calendar", "What should I add, and when?")])
    return TurnPlan(said(b.split, b.rng, text), [], lambda r: reply, kind="clarify")


def hesitant(b: Builder) -> TurnPlan:
    """The user stops mid-request ("text Emma that, um, ..."): the agent pauses until the rest comes."""
    plan = message(b)
    cut = next((i + 1 for i, w in enumerate(plan.words) if w in ("that", "saying")), 2)
    plan.words[cut:cut] = ["um,"]
    plan.moves = [replace(m, at=m.at + (1 if m.at > cut else 0)) if m.at is not None else m for m in plan.moves]
    plan.pause_after = cut + 1
    plan.kind = "hesitant"
    return plan


# kind: (template, weight in training, weight in the held-out split). The held-out weights (and order)
# are those the held-out set was drawn with; training weighs more what run 14 got wrong most (corrections,
# withdrawals, a lookup that ends in an answer, two cities, events) and less what it had learnt. The
# chains after a timer or an event (run 25) and the calendar's with the weather (run 26) are training's
# only: the calendar's chain with a text stays held out.
KINDS: dict[str, tuple[Callable[[Builder], TurnPlan], float, float]] = {
    "weather": (weather, 2.5, 3), "two_cities": (two_cities, 1.5, 1), "contact": (contact, 2.5, 1.5),
    "message": (message, 2.5, 3), "correction": (lambda b: message(b, correction=True), 2, 1.5),
    "calendar": (calendar, 1.5, 1.5), "event": (event, 2, 1.5), "timer": (timer, 1.5, 2),
    "weather_then_message": (weather_then_message, 1.5, 1), "changed_mind": (changed_mind, 1.5, 1),
    "chat": (chat, 0.7, 0.7), "clarify": (clarify, 0.7, 0.7), "hesitant": (hesitant, 1, 1),
    "calendar_then_message": (calendar_then_message, 0, 1),
    "weather_correction": (weather_correction, 0.75, 0), "contact_correction": (contact_correction, 0.5, 0),
    "timer_then_message": (timer_then_message, 1, 0), "event_then_message": (event_then_message, 1, 0),
    "calendar_then_weather": (calendar_then_weather, 1, 0),
}
HELDOUT_ONLY = tuple(k for k in KINDS if not KINDS[k][1])  # a three-call chain never trained on


def weight(kind: str, split: Split) -> float:
    _, train, heldout = KINDS[kind]
    return train if split == "train" else heldout


def episode(split: Split, rng: random.Random) -> Episode:
    b = Builder(split, rng)
    kinds = [k for k in KINDS if weight(k, split)]
    weights = [weight(k, split) for k in kinds]
    n = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
    chosen = rng.choices(kinds, weights=weights, k=n)
    turns = [KINDS[k][0](b) for k in chosen]
    return Episode("+".join(chosen), split, b.state, turns, b.expected)
