"""The held-out evaluation's scoring, checked with the one model whose answers are known: the teacher."""

import pytest

from agent.clock import run_virtual
from agent.llm import OpenAICompatibleLLM
from configs.settings import Settings
from evals.fake_llm import ASGIStreamTransport, Reply, ScriptedLLM
from training.evaluate import (
    REFERENCE_FIRST_TOKEN_S,
    REFERENCE_TOKENS_PER_S,
    STEP_TOKENS,
    MeteredLLM,
    called_early,
    episode_set,
    evaluate_teacher,
    owns_failure,
    summarize,
)


def test_the_teacher_as_the_model_scores_full_marks_on_the_held_out_set():
    # Every kind, chains, withdrawals and corrections included, at the embedded model's speed: a turn
    # the teacher loses is a scoring (or worker) fault, not something a model could learn.
    episodes = episode_set(40)
    scores = evaluate_teacher(Settings(), episodes, wpm=150.0)
    report = summarize(scores)
    assert {s.kind for s in scores} >= {"changed_mind", "correction", "calendar_then_message", "bfcl_math"}
    lost = [(s.kind, s.calls, s.gold) for s in scores
            if not (s.well_formed and s.first_call_right and s.sequence_exact)]
    assert not lost
    assert report["unsafe_issued_early"] == report["unsafe_started_early"] == 0
    early, needing = map(int, report["called_early"].split("/"))
    # (about half: the rest end with their last value, or hold a send to the final update)
    assert needing == sum(bool(s.gold) for s in scores) and 0.3 * needing < early < 0.7 * needing


def test_the_meter_measures_the_models_first_token_delay_and_decode_speed():
    # A slow model: a second and a half to the first token, then 12 chunks (tokens) a second.
    script = [Reply("x" * 40, first_token_s=1.5, chunk_s=1 / 12, chunk_chars=1) for _ in range(6)]
    llm = OpenAICompatibleLLM("http://scripted/v1", "scripted", transport=ASGIStreamTransport(ScriptedLLM(script)))
    metered = MeteredLLM(llm)

    async def go() -> None:
        await metered.calibrate()
        await llm.aclose()

    run_virtual(go())
    first, tokens_per_s = metered.speed()
    assert first == pytest.approx(1.5, abs=0.01)
    assert tokens_per_s == pytest.approx(12, rel=0.01)
    step = REFERENCE_FIRST_TOKEN_S + STEP_TOKENS / REFERENCE_TOKENS_PER_S
    assert metered.scale() == pytest.approx((1.5 + STEP_TOKENS / 12) / step, rel=0.01)


def test_a_slower_model_with_the_world_paced_to_it_sees_the_same_turns():
    # What pacing is for: the same interleaving of words, steps and results on a slow machine as on a
    # fast one, so the score does not depend on the machine.
    fast = evaluate_teacher(Settings(), episode_set(8), wpm=150.0)
    slow = evaluate_teacher(Settings(), episode_set(8), wpm=150.0, scale=2.5)  # fresh worlds: a run changes its own
    assert [s.trace for s in slow] == [s.trace for s in fast]
    assert {s.scale for s in slow} == {2.5}


def test_an_answer_after_a_failed_result_is_scored_by_whether_it_says_so():
    failed = ('<tool_call>{"id": 1, "name": "get_weather", "arguments": {"city": "Atlantis"}}</tool_call>\n'
              '<tool_result id="1">{"error": "no weather data for \'Atlantis\'"}</tool_result>\n'
              "<think>final: all results are in</think>\n")
    assert owns_failure(failed + "<answer>Sorry, I could not get the weather for Atlantis.</answer>\n") is True
    assert owns_failure(failed + "<answer>It is 20 degrees and sunny in Atlantis.</answer>\n") is False
    fine = failed.replace('{"error": "no weather data for \'Atlantis\'"}', '{"city": "Atlantis"}')
    assert owns_failure(fine + "<answer>It is 20 degrees.</answer>\n") is None
    assert owns_failure(failed) is None  # no answer yet


def test_a_call_counts_as_early_if_it_went_out_before_the_final_update_and_was_not_refused():
    call = '<tool_call>{"id": 1, "name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
    final = "<final_query_update>weather in Oslo today</final_query_update>\n"
    partial = "<partial_query_update>weather in Oslo today</partial_query_update>\n"
    assert called_early(partial + "<think>partial: weather in Oslo</think>\n" + call + final)
    assert not called_early(partial + final + "<think>final: weather in Oslo</think>\n" + call)
    assert not called_early(partial + call + "<error>unknown tool</error>\n" + final)
    assert not called_early(partial + '<tool_call>REMOVE 1</tool_call>\n' + final)
    assert not called_early(partial + call)  # the user never finished
