"""The clock-based trajectory generator: real worker, graph and formatter on the virtual clock."""

import hashlib
import itertools
import json
import random
import re

import pytest

from agent.clock import run_virtual
from agent.protocol import ActionParser, Answer, Parsed, ParseError, Pause, Remove, Think, ToolCall
from training import episodes, values
from training import generate as generate_module
from training.bfcl_episodes import CITY_PAIRS, COMPANIES, bfcl_episode
from training.episodes import CLOSERS, HELDOUT_ONLY, KINDS, OPENERS, POOLS, Builder, Episode, draw_value, episode
from training.evaluate import episode_set
from training.generate import LOOKAHEAD_WORDS, draw, generate, run_episode
from training.probe import decisions, late_fixes, step


@pytest.fixture(scope="module")
def train():
    samples, rejected = generate("train", 160, seed=11)
    assert not rejected, rejected
    return samples


BFCL_KINDS = {"bfcl_math", "bfcl_stock", "bfcl_order", "bfcl_watch", "bfcl_message", "bfcl_distance", "bfcl_doors",
              "bfcl_climate"}
INJECTED = re.compile(r'(<(partial_query_update|final_query_update|error)>[^<]*</\2>|<tool_result id="\d+">[^<]*'
                      r'</tool_result>|<tool_cancelled id="\d+"/>)\n')

# What a later turn sees of an earlier one: what was heard, calls with their results, what was said.
RECAP = re.compile(r'(<final_query_update>[^<]*</final_query_update>\n(<tool_call>[^\n]*</tool_call>\n'
                   r'(<tool_result id="\d+">[^<]*</tool_result>\n)?)*<answer>[^<]*</answer>\n)*')


def text_of(sample):
    return "".join(text for text, _ in sample.spans)


def episodes_of(samples):
    return sum(s.meta["turn"] == 0 for s in samples)


def test_every_trajectory_replays_cleanly_through_the_tool_graph(train):
    heldout, rejected = generate("heldout", 80, seed=11)
    assert episodes_of(train) == 160 and episodes_of(heldout) == 80 and not rejected
    kinds = {k for s in train for k in s.kind.split("+")}
    assert {k for k in kinds if not k.startswith("bfcl_")} == set(KINDS) - set(HELDOUT_ONLY)
    # A quarter of the episodes are BFCL's, of eight kinds in both splits.
    rng = random.Random(0)
    for split in ("train", "heldout"):
        assert {k for _ in range(300) for k in draw(split, rng).kind.split("+") if k.startswith("bfcl_")} == BFCL_KINDS
    rng = random.Random(0)
    assert all(any(k in episode("heldout", rng).kind for _ in range(200)) for k in HELDOUT_ONLY)


def test_the_heldout_set_runs_are_compared_on_does_not_move():
    """Training-only changes (wordings, kinds, mix) must leave the 40 held-out episodes of runs 7-10 as
    they were; a deliberate change of the held-out set updates this digest and restarts the comparison."""
    text = "\n".join(e.kind + " | " + " / ".join(" ".join(t.words) for t in e.turns) for e in episode_set(40))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "e2bf5193c3d582c0"


def test_a_trajectory_whose_side_effects_differ_from_the_plan_is_rejected():
    rng = random.Random(5)
    ep = episode("train", rng)
    while not any(ep.expected.values()):
        ep = episode("train", rng)
    key = next(k for k, v in ep.expected.items() if v)
    ep.expected[key] = [{**ep.expected[key][0], "tampered": True}]
    sample, why = run_virtual(run_episode(ep, rng, "bad"))
    assert sample is None and "side effects" in (why or "")


def test_bfcl_episodes_run_on_bfcls_backends_and_are_checked_by_their_state():
    """A BFCL episode's world is BFCL's own backend; a trajectory whose backend state differs from the
    gold calls' replay is rejected."""
    def order_episode():
        rng = random.Random(3)
        while "bfcl_order" not in (ep := bfcl_episode("train", rng)).kind:
            pass
        return ep

    ep = order_episode()
    assert type(ep.state["TradingBot"]).__module__.startswith("bfcl_eval.")
    assert ep.catalog.tools and all(t.description and "Tool description" not in t.description for t in ep.catalog.tools)
    ok, why = run_virtual(run_episode(ep, random.Random(1), "ok"))
    assert ok is not None, why
    assert any('"name": "place_order"' in text_of(s) for s in ok)
    assert all(text_of(s).rstrip().endswith("</answer>") for s in ok)
    ep = order_episode()
    ep.expected["TradingBot"]["order_counter"] += 1  # as if one more order had been placed
    sample, why = run_virtual(run_episode(ep, random.Random(1), "bad"))
    assert sample is None and "side effects" in (why or "")


def test_the_training_text_is_what_the_worker_sent_the_model(train):
    """Each request's assistant prefix is a prefix of the sample; model spans are think + action
    elements and nothing else; every other span is injected blocks (and interruption markers), after
    the recap of earlier turns that opens a later turn's sample."""
    for sample in train:
        text = text_of(sample)
        assert sample.requests and all(text.startswith(r) for r in sample.requests)
        recap = sample.spans[0][0][:sample.meta["history_chars"]]
        assert not sample.spans[0][1] and RECAP.fullmatch(recap), recap
        assert (recap == "") == (sample.meta["turn"] == 0)
        spans = [(sample.spans[0][0][len(recap):], False), *sample.spans[1:]]
        for i, (span, own) in enumerate(spans):
            if own:
                cut = i + 1 < len(spans) and spans[i + 1][0].lstrip().startswith("</think_interrupted>")
                parser = ActionParser()
                events = parser.feed(span + ("</think>" if cut else "") + "\n") + parser.finish()
                assert not [e for e in events if isinstance(e, ParseError)], span
                assert all(isinstance(e.element, Think | ToolCall | Remove | Pause | Answer)
                           for e in events if isinstance(e, Parsed))
            else:  # injected blocks, markers, and repeated pause steps and refused calls kept as context
                rest = re.sub(r"<think>[^<]*</think>\n<tool_call>[^\n]*</tool_call>\n", "", span)  # refused
                rest = re.sub(r"<think>[^<]*</think_interrupted>", "", rest)  # a wrong step cut short
                rest = INJECTED.sub("", rest.replace("</think_interrupted>", ""))
                # (pauses, and a wrong step whose action new input cut off after its think)
                assert re.sub(r"<think>[^<]*</think>\n(<pause/>)?", "", rest).strip() == "", span
        assert text.rstrip().endswith("</answer>")


def test_trajectories_teach_corrections_pauses_interruptions_and_the_commit_point(train):
    texts = [text_of(s) for s in train]
    # (Revisions are rare in this mix since the lookahead: the guess test below checks them.)
    assert sum("REMOVE" in t for t in texts) >= 3
    assert sum("</think_interrupted>" in t for t in texts) >= 10
    assert sum("<pause/>" in t for t in texts) >= 0.6 * len(texts)
    for t in texts:  # state-changing calls and their results only ever follow the final update of their turn
        for turn in re.split(r"<answer>.*?</answer>", t, flags=re.S):
            final = turn.find("<final_query_update>")
            for m in re.finditer(r'\{"(sent|created|started|sent_status)": true|"name": "(send_message|create_event|'
                                 r'set_timer|place_order|add_to_watchlist|lockDoors|adjustClimateControl)"', turn):
                assert 0 <= final < m.start()


def of_kind(kind, count, seed=11):
    """The samples of `count` one-turn training episodes of one kind."""
    samples = []
    for i in range(count):
        rng = random.Random(f"{kind}:{seed}:{i}")
        b = Builder("train", rng)
        ep = Episode(kind, "train", b.state, [KINDS[kind][0](b)], b.expected)
        made, why = run_virtual(run_episode(ep, random.Random(rng.randrange(1 << 62)), f"{kind}-{i}"))
        assert made is not None, why
        samples += made
    return samples


def test_a_guess_is_made_only_on_a_value_a_word_followed_and_not_once_the_words_that_settle_it_are_heard():
    """"text Oscar, no, Wil, ..." gets Wil looked up, not Oscar first and then revised: a lookup waits for
    a word after its value, which is the marker here. "the number of Ana please, no, Ben" heard a word
    at a time gets Ana looked up at "please" and then revised (the point of the bridge); heard with the
    marker in the same update, it does not. A text's correction is never bridged (run 25)."""
    guessed = direct = 0
    for sample in of_kind("correction", 20) + of_kind("weather_correction", 30) + of_kind("contact_correction", 30):
        text = text_of(sample)
        assert sample.kind != "correction" or "fix call" not in text, text
        guess = re.search(r"<think>(?:partial|final): (?:find|look up|weather in) ([\w ]+)</think>", text)
        if guess is None or "fix call" not in text:
            direct += 1
            assert "fix call" not in text, text
            continue
        guessed += 1
        # the guess and its fix both went out as call 1 (a refused slip is no revision)
        issued = re.findall(r'<tool_call>\{"id": 1, "name": "(\w+)", "arguments": \{"\w+": "([^"]+)"\}\}</tool_call>\n'
                            r'(?!<error>)', text)
        assert len(issued) == 2 and issued[0][0] == issued[1][0] and issued[0][1] == guess.group(1), text
        heard = " ".join(re.findall(r"<(?:partial|final)_query_update>([^<]*)</", text[:guess.start()]))
        after = heard.split(guess.group(1), 1)[1].split()
        assert len(after) == LOOKAHEAD_WORDS and after[0].strip(",") in ("today", "please"), text
    assert guessed and direct


def test_a_date_is_read_and_thought_in_digits_and_its_calls_wait_for_the_words_as_said():
    """The worker writes "the twenty fifth of April" as "the 25th of April"; the think repeats the day as
    read next to the date the tool takes ("the 25th of April: 2026-04-25"), and the teacher still counts
    the words as said: a calendar read on partial words waits for a word after the day."""
    days = soon = 0
    for sample in of_kind("calendar", 12) + of_kind("event", 12) + of_kind("calendar_then_weather", 60):
        text = text_of(sample)[sample.meta["history_chars"]:]
        assert not re.search(r"(?i)\b(?:first|second|third|[a-z]+th) of [A-Z]", text), text
        for m in re.finditer(r"<think>(?:partial|final): [^<:]*?(\d+)(?:st|nd|rd|th)(?: of)? ?(\w*)[^<:]*: "
                             r"2026-(\d\d)-(\d\d)", text):
            days += 1
            assert int(m.group(1)) == int(m.group(4)), m.group(0)
        for m in re.finditer(r"<think>partial: [^<]*</think>\n<tool_call>[^\n]*read_calendar", text):
            heard = " ".join(re.findall(r"<partial_query_update>([^<]*)</", text[:m.start()]))
            *_, day, rest = re.split(r"(\d+)(?:st|nd|rd|th)(?: of [A-Z]\w+)?,?", heard)
            assert len(rest.split()) >= LOOKAHEAD_WORDS, heard  # a word came after the day
            # and not two after "twenty fifth", said as two words and read as one
            soon += int(day) > 20 and len(rest.split()) == LOOKAHEAD_WORDS
    assert days >= 60 and soon, (days, soon)


def test_a_late_turns_waits_where_a_call_was_due_are_not_trained(monkeypatch):
    """A turn whose calls all wait for the final update teaches catching up after it; its "listening"
    steps once the call could have gone out are context, or they teach holding back calls."""
    monkeypatch.setattr(generate_module, "LATE_SHARE", 1.0)
    held = 0
    for sample in of_kind("message", 16):
        text = text_of(sample)
        name = re.search(r'"lookup_contact", "arguments": \{"name": "([^"]+)"', text).group(1)
        assert text.find("<tool_call>") > text.find("<final_query_update>")  # late: nothing before the final
        ends = list(itertools.accumulate(len(span) for span, _ in sample.spans))
        for m in re.finditer(r"<think>partial: listening</think>", text):
            heard = " ".join(re.findall(r"<partial_query_update>([^<]*)</", text[:m.start()]))
            if re.search(rf"\b{name}\S*\s+\S", heard):  # the name and a word after it: the lookup was due
                held += 1
                assert not sample.spans[next(i for i, end in enumerate(ends) if end > m.start())][1], text
    assert held >= 8, held


def test_a_call_on_partial_words_waits_for_a_word_after_its_values(train):
    """"weather in Fort" is a city still being said: a lookup on partial words is made once a word
    follows each value it carries that was said as such (a date is said otherwise)."""
    calls = 0
    for sample in train:
        text = text_of(sample)
        for m in re.finditer(r"<think>partial: [^<]*</think>\n<tool_call>(\{[^\n]*\})</tool_call>", text):
            heard = " ".join(re.findall(r"<partial_query_update>([^<]*)</",
                                        text[sample.meta["history_chars"]:m.start()]))
            for value in json.loads(m.group(1))["arguments"].values():
                if isinstance(value, str) and re.search(rf"\b{re.escape(value)}\b", heard):
                    calls += 1
                    # the words after the value's own ("Liam's" or "Oscar," is still the value's word)
                    after = re.sub(r"^\S*", "", heard[heard.rindex(value) + len(value):]).split()
                    assert len(after) >= LOOKAHEAD_WORDS, (value, heard)
    assert calls > 50


def test_chains_continue_after_a_result_whatever_the_first_tool(train):
    """A timer or an event, then a text, or the calendar, then the weather: the step after the first
    result is the chain's next call, so that "X and Y" is learnt from more than the weather's chain
    (the calendar's with a text is held out)."""
    chains = {"timer_then_message": ["set_timer", "lookup_contact", "send_message"],
              "event_then_message": ["create_event", "lookup_contact", "send_message"],
              "calendar_then_weather": ["read_calendar", "get_weather"]}
    seen = set()
    for sample in train:
        if sample.kind not in chains:
            continue
        seen.add(sample.kind)
        turn = text_of(sample)[sample.meta["history_chars"]:]
        names = re.findall(r'<tool_call>\{"id": \d+, "name": "(\w+)"[^\n]*</tool_call>\n(?!<error>)', turn)
        assert names == chains[sample.kind], turn
    assert seen == set(chains)
    assert not set(chains) & {k for e in episode_set(80) for k in e.kind.split("+")}


def test_every_think_names_the_update_it_answers_and_waits_open_unlike_any_think_after_the_final(train):
    thinks = [t for s in train for text, own in s.spans if own for t in re.findall(r"<think>([^<]*)<", text)]
    assert thinks and all(t.startswith(("partial: ", "final: ")) for t in thinks)
    text = "".join(text for s in train for text, own in s.spans if own)
    waits = set(re.findall(r"<think>partial: (\w+)[^<]*</think>\n<pause/>", text))
    after_final = set(re.findall(r"<think>final: (\w+)", text))
    assert waits and after_final and not waits & after_final


def test_a_step_that_carries_no_value_has_one_think(train):
    """Synonyms would split the probability of the decision's first token, and a greedy decoder takes
    the largest single token."""
    text = "".join(text for s in train for text, own in s.spans if own)
    pauses = set(re.findall(r"<think>([^<]*)</think>\n<pause/>", text))
    answers = set(re.findall(r"<think>([^<]*)</think>\n<answer>", text))
    assert pauses == {"partial: listening", "final: results pending"}
    assert answers == {"final: all results are in"}


def test_repeated_pauses_are_mostly_context_not_targets():
    from training.generate import KEEP_REPEATED_PAUSE, _thin_pauses

    pause, call = "<think>wait</think>\n<pause/>", '<think>go</think>\n<tool_call>{"id": 1}</tool_call>'
    update = "\n<partial_query_update>w</partial_query_update>\n"
    spans = [(pause, True), (update, False)] * 400 + [(call, True), (update, False), (pause, True)]
    thinned = _thin_pauses(spans, random.Random(0))
    kept = [own for text, own in thinned if text == pause]
    assert kept[0] and kept[-1]  # the first pause of a run, and the first after an action, stay targets
    assert abs(sum(kept[1:400]) / 399 - KEEP_REPEATED_PAUSE) < 0.07
    assert [t for t, own in thinned if own and t != pause] == [call]
    assert "".join(t for t, _ in thinned) == "".join(t for t, _ in spans)


def test_heldout_names_places_and_wording_never_occur_in_training(train):
    train_text = " ".join(text_of(s) for s in train)
    for pool in ("first_names", "cities", "messages"):
        held = getattr(POOLS["heldout"], pool)
        assert not set(held) & set(getattr(POOLS["train"], pool))
        assert not [h for h in held if re.search(rf"\b{re.escape(h)}\b", train_text)]
    held_bfcl = [*COMPANIES["heldout"], *(c for pair in CITY_PAIRS["heldout"] for c in pair)]
    assert not set(held_bfcl) & {*COMPANIES["train"], *(c for pair in CITY_PAIRS["train"] for c in pair)}
    assert not [h for h in held_bfcl if re.search(rf"\b{re.escape(h)}\b", train_text)]


def test_a_refused_call_is_masked_and_followed_by_the_right_one(train):
    """Some turns get one call wrong after the final update (a made-up tool name, or the chain's second
    call first): the model is not trained on the slip, only on what it does after the error."""
    refused = 0
    for sample in train:
        for i, (text, own) in enumerate(sample.spans):
            if "<error>" not in text:
                continue
            refused += 1
            assert not own and "</tool_call>\n<error>" in text  # the slip went into the injected span
            following = "".join(t for t, o in sample.spans[i + 1:] if o)  # (a think may be cut off first)
            call = re.search(r"<tool_call>(.*?)</tool_call>", following)
            assert sample.spans[i + 1][1] and call, following
            slip = re.findall(r"<tool_call>(.*?)</tool_call>\n<error>", text)[-1]
            assert call.group(1) != slip
    assert refused >= 8


def test_a_made_up_tool_named_after_the_users_word_is_followed_by_another_think(train):
    """Some refused names are a word the user said, the think written with it ("split 398 and 97",
    `split`): what is trained after the error is a think that names a real tool, not the same again."""
    spoken = 0
    for sample in train:
        text = text_of(sample)
        said = text[text.rfind("<final_query_update>"):].split("</final_query_update>")[0]
        for m in re.finditer(r"<think>final: ([^<]*)</think>\n<tool_call>(\{[^\n]*)</tool_call>\n<error>unknown tool "
                             r"'(\w+)'", text):
            if m.group(3) in said.split() and m.group(1).startswith(m.group(3) + " "):
                spoken += 1
                step = re.compile(r"<think>final: ([^<]*)</think>\n<tool_call>(\{[^\n]*)</tool_call>")
                after = step.search(text, m.end())
                assert after and after.group(1) != m.group(1), text[m.start():]
                assert json.loads(after.group(2))["name"] != m.group(3)
    assert spoken >= 3, spoken


def test_a_lookup_that_fails_ends_in_an_answer_that_says_so_and_nothing_that_needed_it(monkeypatch):
    """A contact or city the world lacks: the tool's error comes back, the text that needed the lookup
    is not sent, and the answer says what failed (every lookup that may fail does, here)."""
    monkeypatch.setattr(episodes, "MISSING_SHARE", 1.0)
    samples, rejected = generate("train", 24, seed=3)
    assert not rejected, rejected  # they replay through the graph, with no side effect
    failed = 0
    for sample in samples:
        text = text_of(sample)[sample.meta["history_chars"]:]
        errors = re.findall(r'<tool_result id="(\d+)">\{"error": "no (?:contact named|weather data for) ', text)
        if not errors:
            continue
        failed += 1
        answer = re.findall(r"<answer>([^<]*)</answer>", text)[-1]
        assert answer.startswith("Sorry, I could not"), text
        # nothing is made on it once it failed (a send written before the error came is failed by the graph)
        assert not re.search(rf'"\${errors[0]}\.', text[text.find(f'<tool_result id="{errors[0]}">'):]), text
    assert failed >= 8, failed


def test_a_chain_call_made_too_soon_is_refused_as_the_model_writes_it(train):
    """The slip that skips the call a chain needs carries that call's own think and the first free id
    ("send the message to Ana", call 1 to `$1.phone`), as the model writes it; what is trained after
    the error is the call it needs, under the same id."""
    skipped = 0
    for sample in train:
        text = text_of(sample)
        for m in re.finditer(r"<think>final: ([^<]*)</think>\n<tool_call>(\{[^\n]*)</tool_call>\n<error>call (\d+) "
                             r"references \$(\d+), which is not an earlier call</error>\n", text):
            skipped += 1
            slip = json.loads(m.group(2))
            assert slip["id"] == int(m.group(3)) == int(m.group(4)), m.group(0)
            assert not m.group(1).startswith(("find", "zipcode", "symbol", "user id")), m.group(0)  # its own think
            after = re.compile(r'<tool_call>\{"id": (\d+), "name": "(\w+)"').search(text, m.end())
            assert after and int(after.group(1)) == slip["id"] and after.group(2) != slip["name"], text[m.start():]
    assert skipped >= 3, skipped


def test_a_call_after_the_final_update_names_the_calls_the_request_still_needs(train):
    """Its think lists the calls still to come ("symbol of Google, then its price"), and each of them
    is then made under that name: after a result, the next step is read off the model's own plan."""
    step = re.compile(r'<think>final: ([^<]*)</think>\n<tool_call>\{"id": (\d+)[^\n]*</tool_call>\n(?!<error>)')
    planned = 0
    for sample in train:
        text = text_of(sample)[sample.meta["history_chars"]:]
        if re.search(r'<tool_result id="\d+">\{"error', text):
            continue  # a failed lookup: what was planned on it is not made
        before = text.find("<final_query_update>")
        issued = {int(i) for i in re.findall(r'<tool_call>\{"id": (\d+)', text[:before])}
        steps = [(m.group(1).split(" done; ")[-1].split(", then "), int(m.group(2)))
                 for m in step.finditer(text, before)]
        new = []
        for parts, call in steps:
            if call not in issued:
                issued.add(call)
                new.append(parts)
        for i, parts in enumerate(new):
            assert parts[1:] == [re.sub(r"^(then|now) ", "", later[0]) for later in new[i + 1:]], text
            planned += len(parts) > 1
    assert planned >= 20, planned


def test_a_call_after_a_result_first_names_the_call_that_result_closed(train):
    """"zipcode of A done; zipcode of B, then distance between them": the item before "done" is the
    call made just before, its result in since, so that the next call is the item after it in the plan."""
    call = re.compile(r'<think>(?:partial|final): ([^<]*)</think>\n<tool_call>(\{"id": (\d+)[^\n]*|REMOVE \d+)'
                      r'</tool_call>\n(?!<error>)')
    named = 0
    for sample in train:
        text = text_of(sample)[sample.meta["history_chars"]:]
        last: tuple[int, str, int] | None = None  # the call made before: id, the item it was made for, where
        for m in call.finditer(text):
            done, _, think = m.group(1).rpartition(" done; ")
            if done:
                named += 1
                assert last is not None and done == last[1], text[: m.end()]
                assert f'<tool_result id="{last[0]}">' in text[last[2]:m.start()], text[: m.end()]
            item = re.sub(r"^(then|now) ", "", think.split(", then ")[0])
            last = (int(m.group(3)), item, m.end()) if m.group(3) else None
    assert named >= 20, named


def test_a_call_with_another_tools_argument_names_is_refused_and_then_made_with_its_own(train):
    """The slip that writes another tool's argument names ("percentage" with "a" and "b") is refused
    with the names it takes, masked from the loss; the same call follows with those names and values."""
    slips = 0
    for sample in train:
        at = 0
        for text, own in sample.spans:
            for m in re.finditer(r'<tool_call>(\{[^\n]*)</tool_call>\n<error>(\w+) has no argument \'\w+\'; it takes: '
                                 r'([\w, ]+)</error>\n', text):
                slips += 1
                assert not own, text  # the wrong call is context
                wrong = json.loads(m.group(1))
                rest = text_of(sample)[at + m.end():]
                right = json.loads(re.search(r"<tool_call>(\{[^\n]*)</tool_call>", rest).group(1))
                assert (right["id"], right["name"]) == (wrong["id"], wrong["name"]) == (wrong["id"], m.group(2))
                assert set(right["arguments"]) <= set(m.group(3).split(", ")), (wrong, right)
                assert not set(wrong["arguments"]) & set(right["arguments"])
                assert list(right["arguments"].values()) == list(wrong["arguments"].values())
            at += len(text)
    assert slips >= 5, slips


# The words that mark each held-out phrasing ("could you check the forecast for ..."): training says the
# same requests in other words only.
HELDOUT_WORDING = ("forecast", "how warm", "warmer", "am I free", "do you have", "know that", "a note", "looking today",
                   "look at", "^book", "give me", "make together", "away from", "product", "ways", "out of",
                   "shares for me", "I'd like to", "keep an eye", "on chat", "kilometers", "I want the car")


def test_heldout_phrasings_never_occur_in_training(train):
    def requests(samples):
        return [m.group(1) for x in samples for m in re.finditer(r"<final_query_update>([^<]*)</final", text_of(x))]

    def saying(word, said):
        return [r for r in said if re.search(rf"\b{word}\b", r)]

    rng = random.Random(0)
    heldout = [" ".join(t.words) for _ in range(300) for t in draw("heldout", rng).turns]
    assert [w for w in HELDOUT_WORDING if not saying(w, heldout)] == []  # each marks a phrasing really drawn
    assert [(w, saying(w, requests(train))) for w in HELDOUT_WORDING if saying(w, requests(train))] == []


def test_training_requests_vary_how_they_open_and_close(train):
    finals = [m.group(1) for x in train for m in re.finditer(r"<final_query_update>([^<]*)</final", text_of(x))]
    opened = [f for f in finals if any(f.startswith(o + " ") for o in OPENERS)]
    closed = [f for f in finals if f.endswith(CLOSERS)]
    assert len(opened) > 0.12 * len(finals) and len(closed) > 0.08 * len(finals)
    # A message body is free text to the end of the request: no courtesy runs into it.
    for x in (x for x in train if x.kind == "message"):
        text = text_of(x)[x.meta["history_chars"]:]
        said = re.findall(r"<final_query_update>([^<]*)</final", text)[0]
        sent = re.findall(r'"name": "send_message", "arguments": \{[^}]*"text": "([^"]*)"', text)
        assert (sent and said.endswith(sent[-1])) or "I did not send the message" in text


def test_names_places_and_messages_are_rarely_repeated_and_never_cross_the_split(train):
    """Values come mostly from open-ended spaces, so the model must copy them, not memorise them."""
    rng = random.Random(5)
    train_text = " ".join(text_of(s) for s in train)
    for pool in ("first_names", "cities", "messages", "labels"):
        drawn = [draw_value(pool, "train", rng) for _ in range(400)]
        generated = [v for v in drawn if v not in getattr(POOLS["train"], pool)]
        assert len(generated) > 200 and (pool == "labels" or len(set(generated)) > 0.8 * len(generated)), pool
        held = {draw_value(pool, "heldout", rng) for _ in range(100)} - set(getattr(POOLS["heldout"], pool))
        assert len(held) > 30 and not held & set(drawn)
        # (A label may be a bare word that a message also says; a short name may be the start of a
        # longer one in a think that was cut off.)
        if pool != "labels":
            assert not [h for h in held if len(h) > 3 and re.search(rf"\b{re.escape(h)}\b", train_text)], pool


def test_a_value_that_cannot_be_drawn_for_a_split_is_an_error_not_a_hang():
    """A fixed first word that belongs to the other split ("Pros ...") can never give a value of this one."""
    held = next(v for v in (draw_value("first_names", "heldout", random.Random(i)) for i in range(100))
                if v not in POOLS["heldout"].first_names)
    with pytest.raises(LookupError):
        values.draw(lambda rng: f"{held} {values.name(rng)}", "train", random.Random(0))


def test_the_probe_finds_each_step_after_new_input_and_reads_its_action_in_full(train):
    phases = set()
    for sample in train[:40]:
        found = decisions(sample.spans, sample.meta["history_chars"])
        assert found, sample.spans
        for at, finished in found:
            assert not sample.spans[at][1] and sample.spans[at + 1][1]
            phases.add(finished)
        assert found[-1][1]  # the answer comes after the final update
    assert phases == {True, False}
    call = '<think>final: find Ana</think>\n<tool_call>{"id": 1, "name": "lookup_contact"}</tool_call>\n'
    assert step(call) == '<tool_call>{"id": 1, "name": "lookup_contact"}</tool_call>'
    assert step("<think>partial: more to come</think>\n<pause/>\n") == "pause/"


def test_the_probe_picks_the_samples_that_fix_a_call_after_the_final_update(train):
    steps = {s.id: late_fixes(json.loads(s.to_json())) for s in train}
    picked = [s for s in train if steps[s.id]]
    fixing = {"correction", "weather_correction", "contact_correction", "changed_mind"}
    assert picked and {s.kind for s in picked} <= fixing
    for s in picked:
        before = "".join(text for text, _ in s.spans[: min(steps[s.id]) + 1])[s.meta["history_chars"]:]
        assert "<final_query_update>" in before
        for at in steps[s.id]:
            assert re.search(r": (fix|remove) call 1(, then [^<]*)?</think>", s.spans[at + 1][0]), s.spans[at + 1][0]
    assert len(picked) < sum(s.kind in fixing for s in train)  # some are made while the user talks
