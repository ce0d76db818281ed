from evals.wer import edit_distance, normalize, number_words, wer


def test_numbers_are_spelled_out_as_people_say_them():
    assert number_words(0) == "zero"
    assert number_words(342) == "three hundred forty two"
    assert number_words(1_250_000) == "one million two hundred fifty thousand"
    assert normalize("Set a timer for 25 minutes.") == "set a timer for twenty five minutes".split()
    assert normalize("at 3:30 on the 21st, 10% off $1,200") == (
        "at three thirty on the twenty first ten percent off one thousand two hundred dollars".split())
    assert normalize("Mr. Dashwood's well-known cold-hearted 12th") == (
        "mister dashwood's well known cold hearted twelfth".split())


def test_word_error_rate_counts_substitutions_insertions_and_deletions():
    assert edit_distance("a b c d".split(), "a x c".split()) == 2
    assert edit_distance([], ["a"]) == 1
    assert wer("ten of clubs", "10 of clubs.") == 0.0
    assert wer("he was not an ill disposed young man", "He was not an old-sposed young man.") == 2 / 8
