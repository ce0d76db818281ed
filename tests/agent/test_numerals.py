"""Spoken numbers written as digits before the model reads them."""

import pytest

from agent.numerals import ORDINALS, written


@pytest.mark.parametrize(("said", "read"), [
    ("am I free on April twentieth", "am I free on April 20th"),
    ("the twenty fifth of April, please", "the 25th of April, please"),
    ("March twenty-first and May the second", "March 21st and May the 2nd"),
    ("the third of December at 5 pm", "the 3rd of December at 5 pm"),
    ("July thirty first", "July 31st"),
    ("set a timer for twenty five minutes", "set a timer for 25 minutes"),
    ("remind me in one minute or two hours", "remind me in 1 minute or 2 hours"),
    ("Twelfth of June", "12th of June"),
])
def test_days_next_to_a_month_and_counts_of_time_become_digits(said, read):
    assert written(said) == read


@pytest.mark.parametrize("said", [
    "one more thing, text Ana",  # no unit after it
    "I may first ask you something",  # "may" the verb: months are capitalised
    "the first of the month",
    "April twenty",  # an unfinished day stays as it is, until its ordinal is heard
    "second of all, the 25th of April",
    "",
])
def test_other_numbers_are_left_as_said(said):
    assert written(said) == said


def test_every_day_of_a_month_has_its_number_and_suffix():
    read = {ORDINALS[w]: written(f"May {w}").removeprefix("May ") for w in ORDINALS}
    assert sorted(read) == list(range(1, 32)) and all(read[n].startswith(str(n)) for n in read)
    assert [read[n] for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 30, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "30th", "31st"]
