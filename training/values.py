"""Open-ended values for the templates: names, places and messages from spaces far larger than any
training set, so that no value repeats often enough to be memorised.

A small model trained on a few dozen names learns "act when one of these words is heard" and then
ignores names it has never seen (docs/training.md, second run). Drawn from these spaces, a name is
almost always new, and copying what the user said is the only way to fit the data. The split is by a
hash of the value, so a held-out value is never drawn for training, whatever the seed.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Literal

Split = Literal["train", "heldout"]

ONSETS = ("b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "pr", "r", "s",
          "sh", "st", "t", "tr", "v", "w", "y", "z")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ou", "ia", "ei")
CODAS = ("", "", "", "", "n", "r", "l", "s", "m", "k", "th", "nd", "x")
CITY_PREFIXES = ("San", "New", "Port", "Lake", "Saint", "El", "Los", "North", "Fort", "Mount")
CITY_SUFFIXES = ("ville", "burg", "ton", "field", "port", "dale", "mouth", "stad", "abad", "pur", "grad", "ford",
                 "heim", "polis", "bridge")

# Message bodies: a frame filled with a thing, place, time or day, sometimes an opener or a sign-off.
THINGS = ("keys", "tickets", "charger", "umbrella", "passport", "laptop", "groceries", "flowers", "cake", "wine",
          "report", "slides", "photos", "car", "bike", "dog", "kids", "package", "jacket", "book", "guitar",
          "coffee", "bread", "medicine", "contract", "invoice", "headphones", "backpack", "map", "lunch", "camera",
          "tent", "receipts", "paint", "chairs", "stroller", "gift", "letters", "plants", "printer")
PLACES = ("the station", "the office", "the gym", "the park", "the library", "the airport", "the cafe",
          "the market", "the school", "the hotel", "the bakery", "the museum", "the bank", "the harbor", "home",
          "the clinic", "the corner shop", "the garage", "the beach", "the bus stop")
TIMES = ("six", "seven", "eight", "nine", "ten", "noon", "five thirty", "half past four", "quarter to three",
         "eleven fifteen", "two o'clock", "midnight")
DAYS = ("tonight", "tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
        "the weekend", "next week")
MESSAGE_FRAMES = ("don't forget the {thing}", "I have the {thing}", "can you bring the {thing} {day}",
                  "I left the {thing} at {place}", "meet me at {place} at {time}", "I'll be at {place} by {time}",
                  "the {thing} is ready", "I'm picking up the {thing} at {time}", "see you at {place} {day}",
                  "call me at {time}", "the {thing} is at {place}", "we need more {thing}",
                  "I'm running late, see you at {time}", "dinner is at {time} {day}", "I found the {thing}",
                  "the meeting moved to {day}", "I'm at {place}", "can we talk {day}", "I'll drop off the {thing} "
                  "{day}", "bring the {thing} to {place}")
OPENERS = ("hey, ", "hi, ", "just so you know, ", "quick note, ", "good news, ")
SIGN_OFFS = (", thanks", ", see you soon", ", love you", ", no rush")
LABELS = ("the {thing}", "pick up the {thing}", "check the {thing}", "{thing}", "leave for {place}",
          "call {name}", "bring the {thing}")


def _hashed(text: str) -> Split:
    return "heldout" if zlib.crc32(text.lower().encode()) % 5 == 0 else "train"


COMMON = {*CITY_PREFIXES, *(w for d in DAYS for w in d.split()), "I", "I'm", "I'll"}  # capitalised, not names


def split_of(value: str) -> Split:
    """Which split may use a generated value: about one in five is held out. A value is held out if
    any generated name in it is ("Pros", "San Pros" and "call Pros" go together); a message or label
    also by its body, without an opener or sign-off."""
    for opener in OPENERS:
        value = value.removeprefix(opener)
    for sign_off in SIGN_OFFS:
        value = value.removesuffix(sign_off)
    words = value.split()
    names = [w for w in words if w.istitle() and w not in COMMON]
    if any(_hashed(w) == "heldout" for w in names):
        return "heldout"
    if len(words) <= 2 and all(w.istitle() for w in words):
        return "train"  # a name or a place: by its names alone
    return _hashed(value)


def _word(rng: random.Random, syllables: int) -> str:
    return ("".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(CODAS)).capitalize()


def name(rng: random.Random) -> str:
    return _word(rng, rng.choice((1, 2, 2, 2, 3)))


def city(rng: random.Random) -> str:
    core = _word(rng, rng.choice((1, 2, 2, 3)))
    roll = rng.random()
    if roll < 0.3:
        return f"{rng.choice(CITY_PREFIXES)} {core}"
    if roll < 0.6:
        return core + rng.choice(CITY_SUFFIXES)
    return core


def message(rng: random.Random) -> str:
    body = rng.choice(MESSAGE_FRAMES).format(thing=rng.choice(THINGS), place=rng.choice(PLACES),
                                             time=rng.choice(TIMES), day=rng.choice(DAYS))
    opener = rng.choice(OPENERS) if rng.random() < 0.2 else ""
    return opener + body + (rng.choice(SIGN_OFFS) if rng.random() < 0.2 else "")


def label(rng: random.Random) -> str:
    return rng.choice(LABELS).format(thing=rng.choice(THINGS), place=rng.choice(PLACES), name=name(rng))


def draw(make: Callable[[random.Random], str], split: Split, rng: random.Random,
         exclude: frozenset[str] = frozenset()) -> str:
    """A generated value of `split`, never one in `exclude` (the other split's fixed pool).

    LookupError where `make` seldom or never gives one (a fixed word that belongs to the other split)."""
    for _ in range(500):
        value = make(rng)
        if split_of(value) == split and value not in exclude:
            return value
    raise LookupError(f"no {split} value from {make}")
