"""The BFCL suite and the virtual-clock oracle benchmark: real worker, graph and BFCL backends."""

import pytest

from agent.clock import run_virtual
from evals import bfcl
from evals.bench import TIMINGS, run_task, summarize


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
    policy, a 3B-on-GPU timing, words injected at step boundaries. Measured 1.30x; the issue's goal of
    1.5x is not reached yet (BFCL is mostly writes, which wait for the commit point), so this guards
    what the mechanism delivers today against regressions."""
    results = [run_virtual(run_task(t, mode, TIMINGS["gpu-3b"], partial_updates="at_boundary"))
               for t in bfcl.load_tasks("base") for mode in ("sequential", "speculative")]
    summary = summarize(results)
    seq, spec = summary["sequential"], summary["speculative"]
    print(f"speed-up {spec['speedup_vs_sequential']:.2f}x, accuracy {seq['accuracy']:.1%} / {spec['accuracy']:.1%}")
    assert spec["accuracy"] == seq["accuracy"] >= 0.99
    assert spec["speedup_vs_sequential"] >= 1.25
    assert spec["speculative_wasted"] <= 0.25 * spec["speculative_issued"]


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
