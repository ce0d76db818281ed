"""Before versus after training: the embedded model as the agent on held-out episodes, live.

    python -m training.evaluate --episodes 20 --out runs/train-eval      # untrained and trained, both decodings

Each held-out episode (names, places, wording and a tool chain never trained on) is spoken at 150 words
per minute into the real worker with the real embedded vLLM deciding (`--models teacher`: the generator's
teacher decides instead, on the virtual clock at the reference speed, which must score full marks:
a check of the scoring, not of a model).

The world runs at the model's pace (`--pace model`): the user's words, the endpoint delay and the tools'
latencies are stretched by how much slower a model step is here than at the reference speed
(REFERENCE_*), measured from the model's own steps. So a slow and a fast machine see the same
interleaving of words, steps and results; `--pace wall` speaks at 150 words per minute of the wall
clock, where a slower machine fits fewer steps between updates (run 16 scored 20 points higher on a
machine half as fast). Per turn:
- well-formed: the turn completed by the protocol (no malformed step, unknown tool or bad arguments,
  no fallback to plain chat);
- first call right: the first call as it finally stood (after any revision; a withdrawn one is not the first)
  has the gold tool and arguments;
- sequence exact: the calls that ran, in id order, are exactly the gold calls (a lookup that ran and was then
  withdrawn no longer counts: it changed nothing, and the gold leaves it out too);
- premature unsafe: state-changing calls issued before the final update (attempts; the graph holds
  them) and started before it (must be 0);
- stalled: the turn had not ended after STALL_S (it is cancelled and its trace printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from agent.clock import run_virtual
from agent.embedded import open_llm
from agent.events import ToolCallEvent, TurnStatus
from agent.ledger import FINAL, TOOL
from agent.llm import LLM, Generation, OpenAICompatibleLLM
from agent.tools import ToolBox
from agent.worker import AgentSession, Turn
from configs.settings import Settings
from evals.demo_suite import normalize
from evals.fake_llm import ASGIStreamTransport, ScriptedLLM
from evals.simulated_user import SimulatedUser
from training.episodes import Episode, Split, TurnPlan
from training.generate import BFCL_SHARE, RESULT, Teacher, catalog_for, draw

Pace = Literal["model", "wall"]
STALL_S = 240.0  # a turn takes 10-30 s here, at the reference pace

# The model speed the world is paced to: the embedded model on one of these 2-core CPUs, as measured on
# 2026-12-07 (0.09 s to the first token with the prompt cached, 34 tokens/s), about a second a step, as the
# training clock assumes for most episodes. A step is its first token and STEP_TOKENS more.
REFERENCE_FIRST_TOKEN_S = 0.1
REFERENCE_TOKENS_PER_S = 33.0
STEP_TOKENS = 30


class MeteredLLM:
    """The model, timed: each generation's first-token delay and decode speed, over the last `window`
    generations, and from them how much slower than the reference a step is (`scale`)."""

    def __init__(self, llm: LLM, window: int = 64) -> None:
        self.llm = llm
        self.first_token_s: deque[float] = deque(maxlen=window)
        self.token_s: deque[float] = deque(maxlen=window)

    async def generate(self, gen: Generation, on_text: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()  # its clock: virtual under run_virtual
        started = loop.time()
        seen: list[float] = []

        def timed(text: str) -> None:
            seen.append(loop.time())
            on_text(text)

        try:
            await self.llm.generate(gen, timed)
        finally:  # an interrupted step was timed too, as far as it went
            if seen:
                self.first_token_s.append(seen[0] - started)
            if len(seen) >= 5:  # a stream chunk per token, as vLLM sends them
                self.token_s.append((seen[-1] - seen[0]) / (len(seen) - 1))

    async def complete(self, messages: list[dict[str, str]], max_tokens: int = 128) -> str:
        return await self.llm.complete(messages, max_tokens)

    def speed(self) -> tuple[float, float]:
        """The median first-token delay (s) and decode speed (tokens/s); the reference's until measured."""
        first = statistics.median(self.first_token_s) if self.first_token_s else REFERENCE_FIRST_TOKEN_S
        per_token = statistics.median(self.token_s) if self.token_s else 1.0 / REFERENCE_TOKENS_PER_S
        return first, 1.0 / per_token

    def scale(self) -> float:
        """A step's time here over its time at the reference speed."""
        first, tokens_per_s = self.speed()
        return (first + STEP_TOKENS / tokens_per_s) / (REFERENCE_FIRST_TOKEN_S + STEP_TOKENS / REFERENCE_TOKENS_PER_S)

    async def calibrate(self, steps: int = 6) -> None:
        """Time a few steps before the first episode: a cached system prompt and a new tail each time,
        as the worker's steps are."""
        system = "You are a voice assistant. Think briefly, then act.\n" * 20
        for i in range(steps):
            tail = " ".join(f"word{i}-{j}" for j in range(12))
            await self.generate(Generation(system, f"partial: {tail}\n<think>", max_tokens=STEP_TOKENS),
                                lambda _: None)


@dataclass
class TurnScore:
    episode: int
    kind: str
    well_formed: bool
    first_call_right: bool
    sequence_exact: bool
    unsafe_issued_early: int
    unsafe_started_early: int
    status: str
    calls: list[tuple[str, dict[str, Any]]]
    gold: list[tuple[str, dict[str, Any]]]
    seconds: float
    trace: str
    scale: float = 1.0  # the world's clock stretched by this much (the model's pace)


def gold_calls(plan: TurnPlan) -> list[tuple[str, dict[str, Any]]]:
    """The plan's calls as they finally stand: revisions replace, REMOVE withdraws."""
    return [(c.name, c.arguments) for c in plan.final_calls()]


def _same(a: list[tuple[str, dict[str, Any]]], b: list[tuple[str, dict[str, Any]]]) -> bool:
    def norm(calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Any]]:  # the default label aside
        return [(n, normalize({k: v for k, v in x.items() if (k, v) != ("label", "timer")})) for n, x in calls]

    return norm(a) == norm(b)


async def run_episode(ep: Episode, index: int, llm: LLM, settings: Settings, wpm: float,
                      teacher: Teacher | None = None, scale: float = 1.0) -> list[TurnScore]:
    """Play one episode; `scale` stretches the world's clock (the user, the endpoint, the tools) to the
    model's pace."""
    box = ToolBox(catalog_for(ep), latency_s=(0.5 * scale, 1.0 * scale), seed=index)
    user = SimulatedUser(wpm=wpm / scale, endpoint_delay_s=SimulatedUser.endpoint_delay_s * scale)
    stall_s = STALL_S * max(scale, 1.0)
    session = AgentSession(llm, box, settings.agent_config())
    scores = []
    for plan in ep.turns:
        turn = session.new_turn()
        if teacher is not None:
            teacher.start(turn, plan)
        final_calls: dict[int, tuple[str, dict[str, Any]]] = {}
        ran: dict[int, tuple[str, dict[str, Any]]] = {}

        async def watch(turn: Turn = turn, final_calls: dict[int, tuple[str, dict[str, Any]]] = final_calls,
                        ran: dict[int, tuple[str, dict[str, Any]]] = ran) -> None:
            async for e in turn.events():
                if isinstance(e, ToolCallEvent):
                    if e.event in ("issued", "revised"):
                        final_calls[e.call_id] = (e.name, e.arguments)
                    elif e.event == "cancelled":
                        if final_calls.get(e.call_id) == (e.name, e.arguments):
                            final_calls.pop(e.call_id, None)
                        tool = box.get(e.name)
                        if tool is not None and tool.safe and ran.get(e.call_id) == (e.name, e.arguments):
                            ran.pop(e.call_id)  # a withdrawn (or revised) lookup that ran changed nothing
                    elif e.event == "completed":
                        ran[e.call_id] = (e.name, e.arguments)

        started = time.monotonic()
        # A turn that never ends is a liveness bug to find, not a reason to hang the evaluation: it is
        # cancelled, scored as stalled and its trace kept.
        watchdog = asyncio.get_running_loop().call_later(stall_s, turn.cancel)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(watch())
            speaking = tg.create_task(user.speak(" ".join(plan.words), turn.push))
            done = await turn.run()
            speaking.cancel()
        stalled = time.monotonic() - started >= stall_s and done.status == TurnStatus.CANCELLED
        watchdog.cancel()
        if stalled:
            print(f"\nstalled turn in episode {index} ({plan.kind}):\n{turn.trace}\n{json.dumps(done.ledger)}",
                  file=sys.stderr)
        marks = done.ledger["marks"]
        final_at = next((m["t"] for m in marks if m["kind"] == FINAL), float("inf"))
        unsafe = [m for m in marks if m["kind"] == TOOL and not m["safe"]]
        gold = gold_calls(plan)
        calls = [ran[i] for i in sorted(ran)]
        first = final_calls[min(final_calls)] if final_calls else None
        scores.append(TurnScore(
            index, plan.kind,
            done.status == TurnStatus.COMPLETED and not any(m["kind"] == "protocol_error" for m in marks),
            first is None if not gold else first is not None and _same([first], gold[:1]),
            _same(calls, gold),
            sum(1 for m in unsafe if m["event"] == "issued" and m["t"] < final_at),
            sum(1 for m in unsafe if m["event"] == "started" and m["t"] < final_at),
            "stalled" if stalled else str(done.status), calls, gold, round(time.monotonic() - started, 2), turn.trace,
            round(scale, 3)))
    return scores


async def _teacher_episode(ep: Episode, index: int, settings: Settings, wpm: float, scale: float = 1.0
                           ) -> list[TurnScore]:
    # The reference speed, or `scale` times slower with the world paced to it.
    teacher = Teacher(random.Random(index), REFERENCE_FIRST_TOKEN_S * scale, REFERENCE_TOKENS_PER_S / scale,
                      ep.catalog.tools, slip_share=0.0)
    llm = OpenAICompatibleLLM("http://teacher/v1", "teacher", transport=ASGIStreamTransport(ScriptedLLM(teacher)))
    try:
        return await run_episode(ep, index, llm, settings, wpm, teacher, scale)
    finally:
        await llm.aclose()


def evaluate_teacher(settings: Settings, episodes: list[Episode], wpm: float, scale: float = 1.0
                     ) -> list[TurnScore]:
    """The teacher as the model, on the virtual clock: what a model that had learnt its data exactly
    would score (full marks, or the scoring is wrong)."""
    return [s for i, ep in enumerate(episodes) for s in run_virtual(_teacher_episode(ep, i, settings, wpm, scale))]


# Words an answer that owns a failure uses (a heuristic, read with the traces): runs 24-33 answered "It
# is 20 degrees and 72 hours" after "no weather data", "Done, the door is unlocked" after an error.
_OWNS_FAILURE = re.compile(r"\b(sorry|could not|couldn't|cannot|can't|failed|unable|did not|didn't)\b", re.I)


def owns_failure(trace: str) -> bool | None:
    """Whether a turn's answer says that the last result before it failed; None where it did not fail
    (or there was no result, or no answer)."""
    at = trace.rfind("<answer>")
    results = RESULT.findall(trace[:at]) if at >= 0 else []
    # (read as text: a client's result need not be JSON)
    if not results or not results[-1][1].startswith('{"error"'):
        return None
    return bool(_OWNS_FAILURE.search(trace[at:]))


_CALL = re.compile(r"<tool_call>\s*\{(?:(?!</tool_call>).)*</tool_call>(?!\s*<error>)", re.S)


def called_early(trace: str) -> bool:
    """Whether a call (not a withdrawal, not one the worker refused) went out before the final update:
    the speculation that saves the user's time. What is scored is the calls as they finally stand, which
    a model that waits for the final update gets as right."""
    final = trace.find("<final_query_update>")
    return any(m.start() < final for m in _CALL.finditer(trace)) if final >= 0 else False


def summarize(scores: list[TurnScore]) -> dict[str, Any]:
    episodes: dict[int, list[TurnScore]] = {}
    for s in scores:
        episodes.setdefault(s.episode, []).append(s)
    n = max(len(scores), 1)
    chains = [s for s in scores if len(s.gold) >= 3]
    corrections = [s for s in scores if s.kind in ("correction", "changed_mind")]
    bfcl = [s for s in scores if s.kind.startswith("bfcl_")]
    owned = [o for o in (owns_failure(s.trace) for s in scores) if o is not None]
    calling = [s for s in scores if s.gold]
    return {
        "episodes": len(episodes), "turns": len(scores),
        "well_formed_episodes": sum(all(t.well_formed for t in ts) for ts in episodes.values()) / max(len(episodes), 1),
        "well_formed_turns": sum(s.well_formed for s in scores) / n,
        "first_call_right": sum(s.first_call_right for s in scores) / n,
        "sequence_exact": sum(s.sequence_exact for s in scores) / n,
        "three_call_chains_exact": f"{sum(s.sequence_exact for s in chains)}/{len(chains)}",
        "corrections_exact": f"{sum(s.sequence_exact for s in corrections)}/{len(corrections)}",
        "bfcl_turns_exact": f"{sum(s.sequence_exact for s in bfcl)}/{len(bfcl)}",
        "unsafe_issued_early": sum(s.unsafe_issued_early for s in scores),
        "unsafe_started_early": sum(s.unsafe_started_early for s in scores),
        "stalled_turns": sum(s.status == "stalled" for s in scores),
        "failures_owned": f"{sum(owned)}/{len(owned)}",  # answers after a failed result that say it failed
        # turns that made a call on partial words, of those that need one
        "called_early": f"{sum(called_early(s.trace) for s in calling)}/{len(calling)}",
        "seconds_per_turn": round(sum(s.seconds for s in scores) / n, 1),
        # kind: "well-formed/first call right/exact of turns", where one held-out wording per kind decides
        "by_kind": {k: "/".join(str(sum(getattr(s, f) for s in scores if s.kind == k))
                                for f in ("well_formed", "first_call_right", "sequence_exact"))
                    + f" of {sum(s.kind == k for s in scores)}" for k in sorted({s.kind for s in scores})},
    }


async def evaluate(settings: Settings, episodes: list[Episode], wpm: float, log_path: Path, pace: Pace
                   ) -> tuple[list[TurnScore], dict[str, Any]]:
    scores: list[TurnScore] = []
    async with open_llm(settings, log=lambda m: print(m, file=sys.stderr)) as llm:
        metered = MeteredLLM(llm)
        if pace == "model":
            await metered.calibrate()
        with log_path.open("w") as log:
            for i, ep in enumerate(episodes):
                # One pace per episode, from the model's latest steps: it follows the machine's load.
                scale = metered.scale() if pace == "model" else 1.0
                rows = await run_episode(ep, i, metered, settings, wpm, scale=scale)
                scores += rows
                for row in rows:
                    log.write(json.dumps(asdict(row)) + "\n")
                log.flush()
                print(f"\r[{i + 1}/{len(episodes)}] {ep.kind[:40]:40s} pace x{rows[0].scale:.2f} well-formed "
                      f"{sum(s.well_formed for s in scores)}/{len(scores)} exact "
                      f"{sum(s.sequence_exact for s in scores)}/{len(scores)}", end="", file=sys.stderr, flush=True)
        first, tokens_per_s = metered.speed()
    print(file=sys.stderr)
    scales = [s.scale for s in scores]
    return scores, {"pace": pace, "model_first_token_s": round(first, 3), "model_tokens_per_s": round(tokens_per_s, 1),
                    "pace_scale": f"{min(scales):.2f}-{max(scales):.2f}" if scales else None}


def episode_set(count: int, seed: int = 2026, bfcl_share: float = BFCL_SHARE, split: Split = "heldout"
                ) -> list[Episode]:
    """The held-out episodes runs are compared on (40 at seed 2026 since run 7). The training split, drawn
    afresh, tells how well a model fits what it was trained on, apart from wordings it never saw."""
    rng = random.Random(seed)
    return [draw(split, rng, bfcl_share) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--wpm", type=float, default=150.0)
    parser.add_argument("--pace", choices=("model", "wall"), default="model",
                        help="model: the world stretched to the model's measured speed against the reference; "
                             "wall: the user speaks at --wpm on the wall clock, whatever the machine")
    parser.add_argument("--bfcl-share", type=float, default=BFCL_SHARE, help="episodes on BFCL's tool schemas")
    parser.add_argument("--split", choices=("heldout", "train"), default="heldout",
                        help="train: fresh episodes of the training distribution (a diagnostic, not the score)")
    parser.add_argument("--models", default="untrained,trained", help="untrained, trained, teacher (a check)")
    parser.add_argument("--decoding", default="unconstrained,constrained")
    parser.add_argument("--out", type=Path, default=Path("runs/train-eval"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    episodes = episode_set(args.episodes, args.seed, args.bfcl_share, args.split)
    report: dict[str, Any] = {}
    for model in args.models.split(","):
        for decoding in args.decoding.split(","):
            settings = Settings.load()
            settings.embedded.adapter = model == "trained"
            settings.agent.constrained = decoding == "constrained"
            settings.agent.max_step_tokens = 256  # a well-formed step is far shorter; bounds runaway text
            name = f"{model}-{decoding}"
            started = time.monotonic()
            pacing: dict[str, Any] = {}
            if model == "teacher":
                scores = evaluate_teacher(settings, episodes, args.wpm)
                (args.out / f"{name}.jsonl").write_text("".join(json.dumps(asdict(s)) + "\n" for s in scores))
            else:
                scores, pacing = asyncio.run(evaluate(settings, episodes, args.wpm, args.out / f"{name}.jsonl",
                                                      args.pace))
            report[name] = summarize(scores) | pacing | {"wall_s": round(time.monotonic() - started)}
            print(name, json.dumps(report[name]), flush=True)
    (args.out / "summary.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
