"""Spoken numbers in the user's words written as digits, as a speech recogniser writes them.

faster-whisper writes "the 25th of April" and "10 minutes"; typed text, another recogniser or a
test may spell them out. The model sees one form whatever the source, and the form it can copy into
an argument: a small model that must turn "twenty fifth" into the 25 of `2026-04-25` gets the day
wrong (run 33: 4 of 6 held-out calendar dates). Only numbers whose meaning the neighbouring word fixes
are rewritten: a day next to a month, a count before a unit of time ("one more thing" stays).
"""

from __future__ import annotations

import re

_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_UNIT_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
_TEEN_ORDINALS = ("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
                  "seventeenth", "eighteenth", "nineteenth")

CARDINALS = {w: i + 1 for i, w in enumerate(_UNITS)} | {w: i + 10 for i, w in enumerate(_TEENS)}
CARDINALS |= {w: 10 * (i + 2) for i, w in enumerate(_TENS)}
CARDINALS |= {f"{t} {u}": 10 * (i + 2) + j + 1 for i, t in enumerate(_TENS) for j, u in enumerate(_UNITS)}
ORDINALS = {w: i + 1 for i, w in enumerate(_UNIT_ORDINALS)} | {w: i + 10 for i, w in enumerate(_TEEN_ORDINALS)}
ORDINALS |= {"twentieth": 20, "thirtieth": 30}
ORDINALS |= {f"{t} {u}": t_value + j + 1 for t, t_value in (("twenty", 20), ("thirty", 30))
             for j, u in enumerate(_UNIT_ORDINALS) if t_value + j + 1 <= 31}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def _alternatives(words: dict[str, int]) -> str:
    # longest first, so that "twenty first" is not read as "twenty"; "twenty-first" counts as well
    return "|".join(w.replace(" ", "[ -]") for w in sorted(words, key=len, reverse=True))


_MONTH = "|".join(MONTHS)  # capitalised, as a recogniser writes them: "I may first ask" is no date
_ORDINAL = f"(?i:{_alternatives(ORDINALS)})"
_DAY_AFTER = re.compile(rf"\b(?P<month>{_MONTH}),?( the)? (?P<day>{_ORDINAL})\b")
_DAY_BEFORE = re.compile(rf"\b(?P<day>{_ORDINAL}) of (?P<month>{_MONTH})\b")
_COUNT = re.compile(rf"\b(?P<n>{_alternatives(CARDINALS)})(?P<unit> (?:minute|hour|second)s?)\b", re.I)


def _key(words: str) -> str:
    return re.sub(r"[ -]+", " ", words.lower())


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def written(text: str) -> str:
    """`text` with its spelled-out days and counts of time as digits ("April twenty fifth" → "April
    25th", "the third of May" → "the 3rd of May", "ten minutes" → "10 minutes"); the rest unchanged."""
    text = _DAY_AFTER.sub(lambda m: m.group(0)[: m.start("day") - m.start()] + _nth(ORDINALS[_key(m["day"])]), text)
    text = _DAY_BEFORE.sub(lambda m: f"{_nth(ORDINALS[_key(m['day'])])} of {m['month']}", text)
    return _COUNT.sub(lambda m: f"{CARDINALS[_key(m['n'])]}{m['unit']}", text)
