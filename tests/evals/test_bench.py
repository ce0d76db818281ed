"""The BFCL suite and the virtual-clock oracle benchmark: real worker, graph and BFCL backends."""

import asyncio
import random

import pytest

from agent.clock import run_virtual
from agent.llm import OpenAICompatibleLLM
from agent.prompt import system_prompt
from agent.protocol import Answer
from agent.tools import ToolContext, ToolError
from configs.catalogs.demo import DemoState
from evals import bfcl, demo_suite
from evals.bench import SUITES, TIMINGS, ceiling, run_task, summarize
from evals.fake_llm import ASGIStreamTransport, Reply, ScriptedLLM
from tests.support import step


def test_bfcl_gold_calls_parse_validate_and_score_valid():
    tasks = bfcl.load_tasks("base", limit=5)
    assert [t.id for t in tasks] == [f"multi_turn_base_{i}" for i in range(5)]
    task = tasks[0]
    assert task.gold[0][0] == bfcl.GoldCall("cd", {"folder": "document"})
    assert bfcl.score(task, [[(g.name, g.arguments) for g in turn] for turn in task.gold], "test_gold")["valid"]
    assert not bfcl.score(task, [[] for _ in task.gold], "test_empty")["valid"]


def test_calls_reach_the_checker_only_as_formatted_literals():
    call = bfcl.format_call("mv", {"source": "a'b.pdf", "destination": "t"})
    assert call == "mv(source=\"a'b.pdf\", destination='t')"
    with pytest.raises(ValueError):
        bfcl.format_call("__import__('os').system", {})
    with pytest.raises(TypeError):
        bfcl.format_call("mv", {"source": object()})


def test_a_bfcl_value_its_backend_lacks_is_a_clear_tool_error():
    tools = {t.name: t for t in bfcl.tools("VehicleControlAPI")}
    state = {"VehicleControlAPI": bfcl.backend("VehicleControlAPI", {})}
    lock = tools["lockDoors"]
    with pytest.raises(ToolError, match=r"lockDoors: no such value 'left'; see the tool's description"):
        asyncio.run(lock.fn(lock.args(unlock=True, door=["left"]), ToolContext(state, random.Random(0))))


def test_every_bfcl_method_is_labelled_and_reads_are_not_writes():
    for cls, reads in bfcl.READ_ONLY.items():
        names = {doc["name"] for doc in bfcl.function_docs(cls)}
        assert reads <= names, reads - names
    assert "cd" not in bfcl.READ_ONLY["GorillaFileSystem"] and "ls" in bfcl.READ_ONLY["GorillaFileSystem"]


def test_the_three_modes_reach_the_same_accuracy_and_speculation_is_not_slower():
    tasks = bfcl.load_tasks("base", limit=4)
    results = [run_virtual(run_task(t, mode, TIMINGS["gpu-3b"])) for t in tasks
               for mode in ("sequential", "async", "speculative")]
    summary = summarize(results)
    assert {row["accuracy"] for row in summary.values()} == {1.0}
    assert summary["speculative"]["first_token_mean_s"] <= summary["sequential"]["first_token_mean_s"]
    again = run_virtual(run_task(tasks[0], "speculative", TIMINGS["gpu-3b"]))
    assert again == next(r for r in results if r.task == tasks[0].id and r.mode == "speculative")  # deterministic


def test_speculative_beats_sequential_on_bfcl_base_at_equal_accuracy():
    """The mechanism's speed-up, deterministic on the virtual clock: all 200 BFCL base tasks, the oracle
    policy, a 3B-on-GPU timing, words injected at step boundaries. Measured 1.48x; the issue's 1.5x is
    just missed: BFCL is mostly writes, which wait for the commit point, and even a policy that loses no
    time at all before it (`ceiling`) would reach 1.82x (docs/benchmarks.md). This guards what the
    mechanism delivers against regressions."""
    results = [run_virtual(run_task(t, mode, TIMINGS["gpu-3b"]))
               for t in bfcl.load_tasks("base") for mode in ("sequential", "speculative")]
    summary = summarize(results)
    seq, spec = summary["sequential"], summary["speculative"]
    print(f"speed-up {spec['speedup_vs_sequential']:.2f}x, accuracy {seq['accuracy']:.1%} / {spec['accuracy']:.1%}")
    assert spec["accuracy"] == seq["accuracy"] >= 0.99
    assert spec["speedup_vs_sequential"] >= 1.45
    assert spec["wasted_share_of_executed"] <= 0.25
    assert spec["ceiling_first_token_mean_s"] < spec["first_token_mean_s"]


def test_the_oracle_issues_a_call_only_once_its_values_are_heard():
    from evals.bench import Oracle

    oracle = Oracle(TIMINGS["gpu-3b"])
    oracle.utterance = "go into the documents folder and turn the engine on"
    cd = bfcl.GoldCall("cd", {"folder": "document"})
    start = bfcl.GoldCall("startEngine", {"ignitionMode": "START"})
    oracle.heard = "go into the"
    assert not oracle._available(cd, earlier=0, results_in=True, final=False)  # not said yet
    oracle.heard = "go into the documents"
    assert oracle._available(cd, earlier=0, results_in=True, final=False)  # "document" as a prefix of a word
    oracle.heard = oracle.utterance
    assert not oracle._available(start, earlier=0, results_in=True, final=False)  # never said: needs the whole
    assert oracle._available(start, earlier=0, results_in=True, final=True)  # request, or earlier results
    assert not oracle._available(start, earlier=1, results_in=False, final=True)


def test_demo_suite_scores_side_effects_and_lookups():
    task = demo_suite.load_tasks()[1]  # text John that I am running late
    state = DemoState()
    state.sent.append({"id": 100, "to": "+1 415 555 0134", "text": "I am running late."})
    calls = [[("lookup_contact", {"name": "John"}), ("send_message", {"to": "$1.phone", "text": "I am running late."})]]
    assert run_virtual(demo_suite.score(task, calls, state, "t"))["valid"]  # punctuation and ids aside
    assert not run_virtual(demo_suite.score(task, [[]], DemoState(), "t"))["valid"]
    state.sent[0]["to"] = "+1 212 555 0178"  # Mary's number
    assert not run_virtual(demo_suite.score(task, calls, state, "t"))["valid"]
    weather = demo_suite.load_tasks()[0]
    assert not run_virtual(demo_suite.score(weather, [[]], DemoState(), "t"))["valid"]  # the lookup never ran


def test_the_demo_suite_runs_in_all_modes_with_full_accuracy():
    suite = SUITES["demo"]
    results = [run_virtual(run_task(t, mode, TIMINGS["gpu-3b"], suite=suite)) for t in suite.load(None)
               for mode in ("sequential", "async", "speculative")]
    summary = summarize(results)
    assert {row["accuracy"] for row in summary.values()} == {1.0}, [r.error for r in results if not r.valid]
    assert summary["speculative"]["first_token_mean_s"] < summary["sequential"]["first_token_mean_s"]


def test_the_ceiling_counts_rounds_of_writes_after_the_final_update():
    timing = TIMINGS["gpu-3b"]
    read, write = bfcl.GoldCall("ls", {}), bfcl.GoldCall("cd", {"folder": "a"})
    only_reads = ceiling([read, read], {"ls"}, timing, 0.5, 0.75)
    one_write = ceiling([read, write], {"ls"}, timing, 0.5, 0.75)
    two_rounds = ceiling([write, read, read], {"ls"}, timing, 0.5, 0.75)  # reads after a write run together
    assert only_reads < one_write < two_rounds
    assert two_rounds - one_write == pytest.approx(0.75)


@pytest.mark.model
def test_the_audio_path_hears_the_user_through_vad_and_asr_and_times_the_first_audio():
    from evals.bench import spoken_user

    suite = SUITES["demo"]
    task = suite.load(1)[0]  # what's the weather in Paris right now?

    async def main():
        speaker, tts = await spoken_user(0.5)
        return await run_task(task, "speculative", TIMINGS["gpu-3b"], suite=suite, speaker=speaker, tts=tts), speaker

    result, speaker = asyncio.run(main())
    assert result.valid, result.error
    assert "weather in" in speaker.heard[0].lower()  # tiny.en may hear "Paris" as "pairs"
    turn = result.turns[0]
    assert turn.to_first_audio_s > turn.to_first_token_s > 0.5  # the VAD waits 0.5 s of silence first


def test_the_oracle_knows_the_conversation_and_waits_for_the_intent():
    from evals.bench import Oracle

    oracle = Oracle(TIMINGS["gpu-3b"])
    oracle.said_before = 'booked: <tool_result id="1">{"booking_id": "abc123"}</tool_result>'
    oracle.utterance = "now that it is booked could you fetch the invoice for me please"
    invoice = bfcl.GoldCall("retrieve_invoice", {"booking_id": "abc123"})
    oracle.heard = "now that it is"
    assert not oracle._available(invoice, earlier=0, results_in=True, final=False)  # what does the user want?
    oracle.heard = "now that it is booked could you fetch the invoice"
    assert oracle._available(invoice, earlier=0, results_in=True, final=False)  # "invoice": the tool's name
    oracle.utterance = oracle.heard = "buy 50 shares at $150 each"
    order = bfcl.GoldCall("place_order", {"amount": 50, "price": 150.0})
    assert oracle._available(order, earlier=0, results_in=True, final=False)  # 150.0 is said as "$150"


def test_a_model_under_benchmark_gets_the_prompt_it_was_trained_with():
    fake = ScriptedLLM(lambda rec: Reply(step("answer", Answer("Done."))))
    model = OpenAICompatibleLLM("http://fake/v1", "scripted", transport=ASGIStreamTransport(fake))
    suite = SUITES["demo"]
    task = suite.load(1)[0]
    run_virtual(run_task(task, "sequential", TIMINGS["gpu-3b"], suite=suite, model=model, prompt="trained"))
    tools = list(suite.catalog(task).tools)
    trained = system_prompt(tools, suite.catalog(task).example, "trained")
    assert fake.requests and all(r.body["messages"][0]["content"] == trained for r in fake.requests)
