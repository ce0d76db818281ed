"""`specvoice bench`: the three modes on the same tasks, seeds and tool latencies.

Virtual-clock oracle mode (the default): an oracle stands in for the LLM and drives the real worker,
tool graph and BFCL backends on a virtual clock, so the mechanism's speed-up is deterministic and
cheap. The oracle issues each gold call as soon as the words it needs have been heard (a value that is
never said must come from an earlier result, so it waits for the turn's earlier results), and answers
once every result is in. Its generations take simulated time from their token counts (a first-token
time and a decode rate, from a timing preset), and a generation that new input interrupts has spent
that time for nothing, so speculation is not free by construction.

Per turn: end of the user's speech to the first answer token and to the complete answer; per task:
BFCL's own multi-turn checker; speculative calls issued, used and wasted; tokens thrown away.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.clock import run_virtual
from agent.events import AnswerDelta, ToolCallEvent, TranscriptUpdate, TurnDone
from agent.ledger import FINAL, SPEECH_END
from agent.llm import LLM, OpenAICompatibleLLM
from agent.prompt import PromptStyle
from agent.protocol import Answer, Pause, Think, ToolCall, format_element
from agent.tools import Catalog, ToolBox
from agent.worker import MODES, AgentConfig, AgentSession, Mode, Turn
from configs.settings import Settings
from evals import bfcl, demo_suite
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, ScriptedLLM
from evals.simulated_user import SimulatedUser, Speaker, SpokenUser
from evals.stats import percentile

if TYPE_CHECKING:
    from speech.tts import TTS


@dataclass(frozen=True)
class Timing:
    """How long the simulated model takes: first token after a request, then tokens per second."""

    first_token_s: float
    tokens_per_s: float


TIMINGS = {
    "embedded": Timing(1.1, 20.0),  # SmolLM2-135M, vLLM CPU build, this 2-core machine (docs/benchmarks.md)
    "gpu-3b": Timing(0.15, 80.0),  # a 3B model on one GPU with prefix caching (order of magnitude)
}
CHARS_PER_TOKEN = 4


Executed = list[list[tuple[str, dict[str, Any]]]]  # per turn, the calls that ran: name and arguments


@dataclass(frozen=True)
class Suite:
    load: Callable[[int | None], list[bfcl.Task]]
    catalog: Callable[[bfcl.Task], Catalog]
    score: Callable[[bfcl.Task, Executed, Any, str], Awaitable[dict[str, Any]]]  # task, calls, tool state, run


async def _bfcl_score(task: bfcl.Task, executed: Executed, state: Any, run_name: str) -> dict[str, Any]:
    return bfcl.score(task, executed, run_name)  # BFCL's checker replays the calls on its own backends


SUITES = {
    "bfcl-base": Suite(partial(bfcl.load_tasks, "base"), bfcl.catalog, _bfcl_score),
    "bfcl-miss-param": Suite(partial(bfcl.load_tasks, "miss_param"), bfcl.catalog, _bfcl_score),
    "demo": Suite(demo_suite.load_tasks, demo_suite.catalog, demo_suite.score),
}


@dataclass
class TurnResult:
    task: str
    turn: int
    mode: str
    to_first_token_s: float | None
    to_answer_s: float | None
    calls: int
    speculative_issued: int
    speculative_executed: int
    speculative_used: int
    speculative_wasted: int
    tokens_discarded: int
    status: str
    protocol_errors: int = 0  # steps the model got wrong (malformed action, unknown tool, bad arguments)
    to_first_audio_s: float | None = None  # audio path: end of speech to the answer's first TTS audio
    ceiling_s: float | None = None  # the least any policy that keeps the commit rule could take (see `ceiling`)
    final_to_first_token_s: float | None = None  # from the final update (the paper's text-only measure)


@dataclass
class TaskResult:
    task: str
    mode: str
    valid: bool
    error: str | None
    turns: list[TurnResult] = field(default_factory=list)


_ISSUED = re.compile(r"<tool_call>")
_RESULT = re.compile(r'<tool_result id="(\d+)">')
_WORD = re.compile(r"[\w.'/-]+")


def _literals(value: Any) -> list[str]:
    """The values in a call's arguments that a user would say (strings and numbers)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str | int | float):
        return [str(value).lower()]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _literals(v)]
    if isinstance(value, list):
        return [x for v in value for x in _literals(v)]
    return []


def _step_s(timing: Timing, *elements: Think | ToolCall | Pause | Answer) -> float:
    """The oracle's simulated time for one step that writes `elements`."""
    chars = sum(len(format_element(e)) for e in elements)
    return timing.first_token_s + chars / CHARS_PER_TOKEN / timing.tokens_per_s


def ceiling(gold: list[bfcl.GoldCall], safe: set[str], timing: Timing, endpoint_s: float,
            tool_s: float) -> float:
    """A lower bound on end of speech to first answer token for one turn, for any policy that keeps the
    commit rule: reads before the first write are free (done while the user spoke); from the final
    update on, one step to commit, then the writes one after another and the reads after them in
    parallel runs between writes (each `tool_s`), then the step that starts the answer."""
    answer = timing.first_token_s + len(format_element(Think("answer")) + "<answer>") / CHARS_PER_TOKEN \
        / timing.tokens_per_s
    first_write = next((i for i, c in enumerate(gold) if c.name not in safe), None)
    if first_write is None:
        return endpoint_s + answer
    rounds, reading = 0, False
    for call in gold[first_write:]:
        if call.name not in safe:
            rounds, reading = rounds + 1, False
        elif not reading:
            rounds, reading = rounds + 1, True
    return endpoint_s + _step_s(timing, Think("wait"), Pause()) + rounds * tool_s + answer


class Oracle:
    """The scripted stand-in for the LLM, one turn at a time."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.turn: Turn | None = None
        self.gold: list[bfcl.GoldCall] = []
        self.said_before = ""  # earlier turns' words
        self.utterance = ""  # this turn's words, all of them
        self.heard = ""  # this turn's words so far

    def start(self, turn: Turn, gold: list[bfcl.GoldCall], utterance: str) -> None:
        self.turn, self.gold, self.utterance, self.heard = turn, gold, utterance.lower(), ""

    def end(self) -> None:
        assert self.turn is not None
        # What the conversation holds from now on: the words, and the turn's calls and their results.
        self.said_before += " " + self.utterance + " " + self.turn.trace.lower()

    @staticmethod
    def _said(value: str, text: str) -> bool:
        """Said in `text`: verbatim, or word by word as prefixes ("document" in "documents"); a whole
        float also as an integer ("150.0" in "$150")."""
        if value in text or (value.endswith(".0") and value[:-2].lstrip("-").isdigit() and value[:-2] in text):
            return True
        parts, words = _WORD.findall(value), _WORD.findall(text)
        return bool(parts) and all(any(w.startswith(p) for w in words) for p in parts)

    def _intent_heard(self, call: bfcl.GoldCall) -> bool:
        """What the user wants is clear once a word of the tool's name has been said ("invoice" for
        `retrieve_invoice`), or half of the request has been heard."""
        names = [p.lower() for p in re.findall(r"[A-Z]?[a-z]+", call.name) if len(p) >= 4]
        words = _WORD.findall(self.heard)
        if any(w.startswith(n[:5]) for n in names for w in words):
            return True
        return len(self.heard.split()) * 2 >= len(self.utterance.split())

    def _available(self, call: bfcl.GoldCall, earlier: int, results_in: bool, final: bool) -> bool:
        needs_intent = True  # no value of this turn says what the user wants
        for value in _literals(call.arguments):
            if self._said(value, self.said_before):
                continue  # known from the conversation so far (earlier words, calls and results)
            if self._said(value, self.heard):
                needs_intent = False
                continue
            if self._said(value, self.utterance):
                return False  # the user has not said it yet
            # never said: it comes from an earlier result of this turn, or is inferred from the whole request
            if earlier:
                if not results_in:
                    return False
                needs_intent = False
            elif not final:
                return False
        return final or not needs_intent or self._intent_heard(call)

    def __call__(self, rec: Recorded) -> Reply:
        assert self.turn is not None
        trace = self.turn.trace
        final = "<final_query_update>" in trace
        k = len(_ISSUED.findall(trace))  # attempts so far (a rejected call is skipped, not retried)
        results = {int(i) for i in _RESULT.findall(trace)}
        if k < len(self.gold):
            call = self.gold[k]
            results_in = all(i in results for i in range(1, k + 1))
            if self._available(call, k, results_in, final) or (final and results_in):
                return self._reply(Think(f"{call.name} now"), ToolCall(k + 1, call.name, call.arguments))
            return self._reply(Think("wait"), Pause())
        if final and all(i in results for i in range(1, k + 1)):
            text = "All done." if self.gold else "Which one do you mean?"
            return self._reply(Think("answer"), Answer(text))
        return self._reply(Think("wait"), Pause())

    def _reply(self, think: Think, action: ToolCall | Pause | Answer) -> Reply:
        text = format_element(think) + format_element(action)  # timed as `_step_s` says
        return Reply(text, first_token_s=self.timing.first_token_s, chunk_chars=CHARS_PER_TOKEN,
                     chunk_s=1.0 / self.timing.tokens_per_s)


async def run_task(task: bfcl.Task, mode: Mode, timing: Timing, *, wpm: float = 150.0, endpoint_s: float = 0.5,
                   latency: tuple[float, float] = (0.5, 1.0), seed: int = 0,
                   partial_updates: Literal["interrupt", "at_boundary"] = "at_boundary",
                   model: LLM | None = None, words_per_update: int = 1, speaker: Speaker | None = None,
                   tts: TTS | None = None, suite: Suite = SUITES["bfcl-base"], prompt: PromptStyle = "full"
                   ) -> TaskResult:
    """One task in one mode. With `model` (an LLM client, prompted as `prompt`) the model decides and time
    is real; without, the oracle decides (on the virtual clock unless the audio path runs). `speaker`
    replaces the text path's simulated user (the audio path); `tts` speaks each answer to time its first
    audio."""
    oracle = Oracle(timing)
    own_llm = OpenAICompatibleLLM("http://oracle/v1", "oracle", transport=ASGIStreamTransport(ScriptedLLM(oracle)))
    llm: LLM = model if model is not None else own_llm
    box = ToolBox(suite.catalog(task), latency_s=latency, seed=seed)
    safe = {t.name for t in box.tools.values() if t.safe}
    config = AgentConfig(mode=mode, max_steps_after_final=40, max_calls=40, history_chars=20_000,
                         partial_updates=partial_updates, prompt=prompt)
    session = AgentSession(llm, box, config)
    user: Speaker = speaker or SimulatedUser(wpm=wpm, endpoint_delay_s=endpoint_s, words_per_update=words_per_update)
    loop = asyncio.get_running_loop()
    executed: Executed = []
    turns: list[TurnResult] = []
    for index, (text, gold) in enumerate(zip(task.turns, task.gold, strict=True)):
        turn = session.new_turn()
        oracle.start(turn, gold, text)
        calls: list[tuple[str, dict[str, Any]]] = []
        first_answer: float | None = None
        done_at: float | None = None
        first_audio: float | None = None
        answer: asyncio.Queue[str | None] = asyncio.Queue()

        def push(update: TranscriptUpdate, turn: Turn = turn) -> None:
            oracle.heard = update.text.lower()
            turn.push(update)

        async def watch(turn: Turn = turn, calls: list[tuple[str, dict[str, Any]]] = calls,
                        answer: asyncio.Queue[str | None] = answer) -> None:
            nonlocal first_answer, done_at
            async for event in turn.events():
                if isinstance(event, ToolCallEvent) and event.event in ("completed", "failed"):
                    calls.append((event.name, event.arguments))
                elif isinstance(event, AnswerDelta):
                    first_answer = loop.time() if first_answer is None else first_answer
                    answer.put_nowait(event.text)
                elif isinstance(event, TurnDone):
                    done_at = loop.time()
            answer.put_nowait(None)

        async def listen(tts: TTS, answer: asyncio.Queue[str | None] = answer) -> None:
            nonlocal first_audio

            async def pieces() -> AsyncIterator[str]:
                while (piece := await answer.get()) is not None:
                    yield piece

            stream = tts.stream(pieces())
            async with asyncio.TaskGroup() as speaking:
                speaking.create_task(stream.run())
                async for _ in stream:
                    first_audio = loop.time() if first_audio is None else first_audio

        async with asyncio.TaskGroup() as tg:
            tg.create_task(watch())
            if tts is not None:
                tg.create_task(listen(tts))
            speaking = tg.create_task(user.speak(text, push, turn.ledger))
            done = await turn.run()
            speaking.cancel()
        oracle.end()
        executed.append(calls)
        speech_end, final_at = turn.ledger.first(SPEECH_END), turn.ledger.first(FINAL)
        d = done.ledger["derived"]
        turns.append(TurnResult(
            task.id, index, mode,
            None if first_answer is None or speech_end is None else first_answer - speech_end,
            None if done_at is None or speech_end is None else done_at - speech_end,
            len(calls), d["speculative_issued"], d["speculative_executed"], d["speculative_used"],
            d["speculative_wasted"], d["tokens_discarded"], str(done.status),
            sum(1 for m in done.ledger["marks"] if m["kind"] == "protocol_error"),
            None if first_audio is None or speech_end is None else first_audio - speech_end,
            ceiling(gold, safe, timing, endpoint_s, sum(latency) / 2),
            None if first_answer is None or final_at is None else first_answer - final_at))
    await own_llm.aclose()
    verdict = await suite.score(task, executed, box.state, f"specvoice_{mode}_{uuid.uuid4().hex[:8]}")
    return TaskResult(task.id, mode, bool(verdict.get("valid")), verdict.get("error_message"), turns)


async def spoken_user(endpoint_s: float) -> tuple[SpokenUser, TTS]:
    from speech.asr import ASRSettings, WhisperDecoder, model_dir
    from speech.tts import TTS
    from speech.vad import VADSettings

    decoder = await asyncio.to_thread(lambda: WhisperDecoder(model_dir()))
    user_voice = await asyncio.to_thread(lambda: TTS(deterministic=True))
    agent_voice = await asyncio.to_thread(TTS)
    asr = ASRSettings(vad=VADSettings(silence_duration_ms=round(endpoint_s * 1000)))
    return SpokenUser(decoder, user_voice, asr), agent_voice


def summarize(results: list[TaskResult]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for mode in MODES:
        rows = [r for r in results if r.mode == mode]
        if not rows:
            continue
        turns = [t for r in rows for t in r.turns]
        first = [t.to_first_token_s for t in turns if t.to_first_token_s is not None]
        full = [t.to_answer_s for t in turns if t.to_answer_s is not None]
        audio = [t.to_first_audio_s for t in turns if t.to_first_audio_s is not None]
        bound = [t.ceiling_s for t in turns if t.ceiling_s is not None]
        after_final = [t.final_to_first_token_s for t in turns if t.final_to_first_token_s is not None]
        executed = sum(t.speculative_executed for t in turns) + sum(
            t.calls - t.speculative_used for t in turns)
        out[mode] = {
            "tasks": len(rows), "turns": len(turns), "accuracy": sum(r.valid for r in rows) / len(rows),
            "first_token_mean_s": statistics.fmean(first) if first else float("nan"),
            "first_token_p50_s": percentile(first, 50), "first_token_p90_s": percentile(first, 90),
            "answer_mean_s": statistics.fmean(full) if full else float("nan"),
            "after_final_mean_s": statistics.fmean(after_final) if after_final else float("nan"),
            **({"first_audio_mean_s": statistics.fmean(audio), "first_audio_p50_s": percentile(audio, 50),
                "first_audio_p90_s": percentile(audio, 90)} if audio else {}),
            "speculative_issued": sum(t.speculative_issued for t in turns),
            "speculative_used": sum(t.speculative_used for t in turns),
            "speculative_wasted": sum(t.speculative_wasted for t in turns),
            "wasted_share_of_executed": sum(t.speculative_wasted for t in turns) / max(executed, 1),
            "tokens_discarded": sum(t.tokens_discarded for t in turns),
            "ceiling_first_token_mean_s": statistics.fmean(bound) if bound else float("nan"),
        }
    base = out.get("sequential", {}).get("first_token_mean_s")
    for row in out.values():
        row["speedup_vs_sequential"] = base / row["first_token_mean_s"] if base else float("nan")
        row["ceiling_speedup"] = base / row["ceiling_first_token_mean_s"] if base else float("nan")
        after = out.get("sequential", {}).get("after_final_mean_s")
        row["speedup_after_final"] = after / row["after_final_mean_s"] if after else float("nan")
    return out


def print_table(summary: dict[str, dict[str, float]]) -> None:
    print(f"\n{'mode':12s} {'tasks':>5s} {'acc':>6s} {'first tok mean':>15s} {'p50':>6s} {'p90':>6s} "
          f"{'answer':>7s} {'speedup':>8s} {'from final':>10s} {'spec used/wasted':>17s} {'wasted %':>9s} "
          f"{'1st audio':>9s}")
    for mode, r in summary.items():
        print(f"{mode:12s} {r['tasks']:5.0f} {r['accuracy']:6.1%} {r['first_token_mean_s']:14.2f}s "
              f"{r['first_token_p50_s']:5.2f}s {r['first_token_p90_s']:5.2f}s {r['answer_mean_s']:6.2f}s "
              f"{r['speedup_vs_sequential']:7.2f}x {r['speedup_after_final']:9.2f}x "
              f"{r['speculative_used']:8.0f}/{r['speculative_wasted']:<8.0f} "
              f"{r['wasted_share_of_executed']:8.1%} {r.get('first_audio_mean_s', float('nan')):8.2f}s")
    if summary:
        r = next(iter(summary.values()))
        print(f"ceiling under the commit rule (writes after the final update, one after another): "
              f"{r['ceiling_first_token_mean_s']:.2f}s mean, at most {r['ceiling_speedup']:.2f}x")


def run(suite: str, modes: list[Mode], timing: str, limit: int | None, out: Path, seed: int,
        partial_updates: Literal["interrupt", "at_boundary"] = "at_boundary", policy: str = "oracle",
        settings: Settings | None = None, user: dict[str, float] | None = None, audio: bool = False) -> dict[str, Any]:
    """Run (or resume) a benchmark into `out`: results.jsonl per task and mode, summary.json, plots.
    `policy="model"` uses the configured LLM (real time) instead of the oracle (virtual time); `audio`
    speaks each turn through piper into the real VAD and ASR, and each answer through the TTS (real time)."""
    out.mkdir(parents=True, exist_ok=True)
    done_path = out / "results.jsonl"
    finished: dict[tuple[str, str], TaskResult] = {}
    if done_path.exists():
        for line in done_path.read_text().splitlines():
            row = json.loads(line)
            finished[(row["task"], row["mode"])] = TaskResult(
                row["task"], row["mode"], row["valid"], row["error"], [TurnResult(**t) for t in row["turns"]])
    tasks = SUITES[suite].load(limit)
    todo = [(t, m) for t in tasks for m in modes if (t.id, m) not in finished]
    started = time.monotonic()
    user = {"wpm": 150.0, "endpoint_s": 0.5, "words_per_update": 1, **(user or {})}
    wpm, endpoint_s, per_update = user["wpm"], user["endpoint_s"], int(user["words_per_update"])

    with done_path.open("a") as f:
        def record(i: int, task: bfcl.Task, mode: Mode, result: TaskResult) -> None:
            finished[(task.id, mode)] = result
            f.write(json.dumps(asdict(result)) + "\n")
            f.flush()
            if sys.stderr.isatty() or i % max(1, len(todo) // 10) == 0 or i == len(todo):
                rate = i / max(time.monotonic() - started, 1e-9)
                print(f"\r[{i}/{len(todo)}] {task.id} {mode:11s} {'ok ' if result.valid else 'bad'} "
                      f"{(len(todo) - i) / rate:5.0f} s left", end="" if sys.stderr.isatty() else "\n",
                      file=sys.stderr, flush=True)

        def call(task: bfcl.Task, mode: Mode, **kw: Any) -> Coroutine[Any, Any, TaskResult]:
            return run_task(task, mode, TIMINGS[timing], seed=seed, partial_updates=partial_updates, wpm=wpm,
                            endpoint_s=endpoint_s, words_per_update=per_update, suite=SUITES[suite], **kw)

        if policy == "oracle" and not audio:
            for i, (task, mode) in enumerate(todo, 1):
                record(i, task, mode, run_virtual(call(task, mode)))
        else:
            async def real_time() -> None:
                async with contextlib.AsyncExitStack() as stack:
                    model: LLM | None = None
                    prompt: PromptStyle = "full"
                    if policy == "model":
                        from agent.embedded import open_llm

                        served = settings or Settings.load()
                        prompt = served.agent_config().prompt  # the short one for the fine-tuned model
                        model = await stack.enter_async_context(
                            open_llm(served, log=lambda m: print(m, file=sys.stderr)))
                    speaker, tts = await spoken_user(endpoint_s) if audio else (None, None)
                    for i, (task, mode) in enumerate(todo, 1):
                        record(i, task, mode, await call(task, mode, model=model, prompt=prompt, speaker=speaker,
                                                         tts=tts))

            asyncio.run(real_time())
    print(file=sys.stderr)
    results = [finished[(t.id, m)] for t in tasks for m in modes if (t.id, m) in finished]
    summary = summarize(results)
    meta = {"suite": suite, "policy": policy, "timing": timing if policy == "oracle" else "real",
            "tasks": len(tasks), "seed": seed, "partial_updates": partial_updates, "audio": audio, **user,
            "tool_latency_s": [0.5, 1.0]}
    if policy == "oracle":
        meta["timing_values"] = asdict(TIMINGS[timing])
    (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=2))
    print_table(summary)
    from evals.plots import plot

    for path in plot(results, out, f"{suite}, {policy if policy != 'oracle' else timing}"):
        print(f"plot: {path}")
    print(f"\nresults: {out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="specvoice bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return command(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="bfcl-base", choices=sorted(SUITES))
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: sequential,async,speculative")
    parser.add_argument("--timing", default="embedded", choices=sorted(TIMINGS), help="simulated model speed")
    parser.add_argument("--limit", type=int, help="only the first N tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wpm", type=float, default=150.0, help="the simulated user's speaking rate")
    parser.add_argument("--endpoint-delay", type=float, default=0.5, help="silence before the final update (s)")
    parser.add_argument("--words-per-update", type=int, default=1, help="words per partial update")
    parser.add_argument("--partial-updates", default="at_boundary", choices=["interrupt", "at_boundary"],
                        help="new words cut the running step, or wait for its end")
    parser.add_argument("--policy", default="oracle", choices=["oracle", "model"],
                        help="oracle: scripted, virtual clock; model: the configured LLM (llm.base_url or embedded)")
    parser.add_argument("--audio", action="store_true",
                        help="speak each turn through piper into the real VAD/ASR and time the answer's first audio "
                             "(real time)")
    parser.add_argument("--config", dest="bench_config", help="settings TOML or preset for --policy model")
    parser.add_argument("--out", type=Path, help="run folder (resumes if it exists); default runs/<suite>-<timing>")


def command(args: argparse.Namespace) -> int:
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode {bad[0]!r}", file=sys.stderr)
        return 2
    name = args.timing if args.policy == "oracle" else "model"
    out = args.out or Path("runs") / f"{args.suite}-{name}{'-audio' if args.audio else ''}"
    settings = Settings.load(args.bench_config or getattr(args, "config", None)) if args.policy == "model" else None
    user = {"wpm": args.wpm, "endpoint_s": args.endpoint_delay, "words_per_update": args.words_per_update}
    run(args.suite, modes, args.timing, args.limit, out, args.seed, args.partial_updates, args.policy, settings,
        user, args.audio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
