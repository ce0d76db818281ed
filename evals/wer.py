"""Word error rate with the text normalisation ASR comparisons need.

Whisper writes numbers as digits ("ten" becomes "10", "half past three" may become "3:30"), keeps
punctuation and capitals, and abbreviates titles; references are usually plain words. Both sides are
normalised to lower-case words with numbers spelled out before the edit distance is taken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
            "nine": "ninth", "twelve": "twelfth"}
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "ok": "okay"}


def number_words(n: int) -> str:
    """English words for 0 <= n < 10**12: 342 -> 'three hundred forty two'."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


def _ordinal(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell(match: re.Match[str]) -> str:
    token = match.group()
    if ":" in token:  # a time: 3:30 -> three thirty, 3:00 -> three
        hours, minutes = token.split(":")
        return number_words(int(hours)) + ("" if int(minutes) == 0 else " " + number_words(int(minutes)))
    suffix = re.search(r"(st|nd|rd|th)$", token)
    digits = int(token[: suffix.start()] if suffix else token.replace(",", ""))
    if digits >= 10**12:
        return " ".join(_ONES[int(d)] for d in str(digits))
    return _ordinal(digits) if suffix else number_words(digits)


def normalize(text: str) -> list[str]:
    """Lower-case words, numbers spelled out, punctuation dropped (apostrophes inside words kept)."""
    text = text.lower().replace("%", " percent").replace("&", " and ")
    text = re.sub(r"\$(\d[\d,]*)", r"\1 dollars", text)
    text = re.sub(r"\d{1,2}:\d{2}|\d{1,3}(?:,\d{3})+|\d+(?:st|nd|rd|th)\b|\d+", _spell, text)
    text = re.sub(r"[-\u2013\u2014/]", " ", text)
    words = []
    for raw in text.split():
        word = re.sub(r"[^\w']", "", raw).strip("'")
        if word:
            words.append(_ABBREVIATIONS.get(word, word))
    return words


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) after normalisation; sum these over a corpus, then divide."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(words, 1)
