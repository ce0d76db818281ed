"""The clock-based trajectory generator.

Each episode runs through the agent's own worker, tool graph and formatter on the virtual clock: the
user's words arrive at a speaking rate (partial updates per word or per few words, the final update
after an endpoint delay, sometimes a long hesitation), tool calls start and finish with sampled
latencies, and the teacher (the stand-in LLM) takes simulated time per step, so new input interrupts
its steps exactly as it would interrupt a live model. What the worker writes into the trace is the
training text; one code path, so training and serving cannot drift.

State-changing calls are written only after the final update (so the call is itself the commit
point); lookups go out on partial words. An episode is kept only if it replays cleanly: every turn
completed without a protocol error, no state-changing call issued or started before the model had
seen the final update, and the side effects equal the plan's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agent.clock import run_virtual
from agent.events import TranscriptUpdate, TurnStatus
from agent.ledger import FINAL, TOOL
from agent.llm import OpenAICompatibleLLM
from agent.numerals import written
from agent.prompt import PromptStyle
from agent.protocol import Answer, Pause, Remove, Think, ToolCall, format_element
from agent.tools import Catalog, Tool, ToolBox, references
from agent.worker import AgentConfig, AgentSession, Turn
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, ScriptedLLM
from training.bfcl_episodes import bfcl_episode
from training.episodes import Episode, Move, Results, Split, TurnPlan, episode, failed

# A call the worker refused (an error block follows it) did not happen: only the others count.
_ISSUED = re.compile(r"<tool_call>((?:(?!</tool_call>).)*)</tool_call>(?!\s*<error>)", re.S)
_REFUSED = re.compile(r"</tool_call>\s*<error>")
RESULT = re.compile(r'<tool_result id="(\d+)">(.*?)</tool_result>', re.S)  # a result the runtime injected
# One think per kind of step that carries no value: the first token after "partial:" / "final:" is the
# decision, and synonyms would split its probability (a greedy decoder then picks whichever single
# token is largest) and put noise the model cannot learn on the most weighted tokens. No think before
# the final update opens with a word that a think after it opens with: run 6's model, having written
# "partial: the user is still talking" word after word, copied it after "final: the" too.
WAIT, PENDING, DONE = "listening", "results pending", "all results are in"
LATE_SHARE = 0.3  # turns whose calls all wait for the final update, as when the model missed its chance early
# A call made on partial words waits for one word after its last value ("in Fort" + "Dreazil" is a city
# still being said): a value counts once something follows it, or at the final update. Run 16 paced at
# the model's speed made most of its wrong calls on values not yet complete ("March" for "March twenty
# seventh", "Crescent" for "Crescent Hollow") and never fixed them.
LOOKAHEAD_WORDS = 1
SLIP_SHARE = 0.2  # turns with one wrong call after the final update (not trained on), refused, then the right one
ARGUMENT_SLIP_SHARE = 0.5  # of the slips that are no chain's skipped call: another tool's argument names
# Of the made-up tool names, those taken from the user's own words, the think written with that word too
# ("split 398 and 97", `split`), as the model makes them up: runs 29-32 wrote `split`, `remove`, `sell`,
# `product` on held-out wordings and repeated the same think and call after the error until the turn ran
# out, having seen only a slip of the name (`subtracts`) under a right think.
SPOKEN_SLIP_SHARE = 0.5
_PLAIN = frozenset("what with that this from please thanks thank could would about there have your will much "
                   "many when then okay also right alright sorry mean wait like just know they them into".split())


@dataclass
class Sample:
    """One training example: the system prompt and the assistant text, split into spans (True: the
    model wrote it and is trained on it; False: injected by the runtime)."""

    id: str
    kind: str
    split: Split
    system: str
    spans: list[tuple[str, bool]]
    requests: list[str] = field(default_factory=list)  # each LLM request's assistant prefix, for checks
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self, requests: bool = False) -> str:
        row = {"id": self.id, "kind": self.kind, "split": self.split, "system": self.system, "spans": self.spans,
               "meta": self.meta}
        return json.dumps(row | ({"requests": self.requests} if requests else {}))


class Teacher:
    """Decides each step from what the model has seen so far (the turn's trace), following the plan."""

    def __init__(self, rng: random.Random, first_token_s: float, tokens_per_s: float, tools: Sequence[Tool],
                 slip_share: float = SLIP_SHARE) -> None:
        self.rng = rng
        self.slip_share = slip_share
        self.fields = {t.name: tuple(t.args.model_fields) for t in tools}
        self.tools = frozenset(self.fields)
        self.safe = frozenset(t.name for t in tools if t.safe)
        self.first_token_s, self.tokens_per_s = first_token_s, tokens_per_s
        self.turn: Turn | None = None
        self.plan: TurnPlan | None = None
        self.speculate = True
        self.slip = False
        # Where this turn's wrong steps start in its trace: context, not targets.
        self.masked: set[int] = set()
        self.skipped: set[int] = set()  # this turn's guesses (move indexes) left out, already settled
        self.prefixes: dict[str, int] = {}

    def start(self, turn: Turn, plan: TurnPlan) -> None:
        """A new turn. Some turns hold every call back to the final update, so that the model learns to
        catch up on what it did not do early; not those that revise or remove a call, whose early guess
        is the point."""
        self.turn, self.plan, self.masked = turn, plan, set()
        ids = [m.action.id for m in plan.moves]
        revises = len(set(ids)) < len(ids) or any(isinstance(m.action, Remove) for m in plan.moves)
        self.speculate = revises or self.rng.random() >= LATE_SHARE
        self.slip = self.rng.random() < self.slip_share
        self.skipped = set()
        # The worker writes spoken numbers as digits ("twenty fifth" as "25th"): what it has told the
        # model is mapped back to how many of the plan's words were said.
        self.prefixes = {written(" ".join(plan.words[:n])): n for n in range(len(plan.words) + 1)}

    def _said(self, told: str) -> int:
        return self.prefixes.get(told, len(told.split()))

    def __call__(self, rec: Recorded) -> Reply:
        assert self.turn is not None and self.plan is not None
        trace = self.turn.trace
        # Moves that made it into the trace (a cut one is redone), and the guesses skipped.
        done = len(_ISSUED.findall(trace)) + len(self.skipped)
        final = self.turn.final
        # (`heard` holds the partial updates only: the final one may bring words no partial did.)
        heard = self._said(self.turn.final_text if final else self.turn.heard)
        results = self._results(trace)
        while done < len(self.plan.moves) and self._needs_failed(self.plan.moves[done], results):
            self.skipped.add(done)  # a call whose input failed is not made; the answer says so
            done += 1
        if done < len(self.plan.moves):
            move = self.plan.moves[done]
            if move.until is not None and heard >= move.until and done + 1 < len(self.plan.moves):
                # the guess is settled before it was made
                self.skipped.add(done)
                done += 1
                move = self.plan.moves[done]
            if done - 1 in self.skipped:
                move = replace(move, think=move.alone or move.think)
            # A state-changing call is only written once the final update is in (it is the commit
            # point then); lookups go out once a word after their values is heard, withdrawals at once.
            lookahead = LOOKAHEAD_WORDS if isinstance(move.action, ToolCall) else 0
            ready = all(n in results for n in move.needs)
            early = move.at is not None and heard >= move.at + lookahead and not self._changes_state(move.action)
            if early and ready and not final and not self.speculate:
                # A late turn's wait where the call was due is context, not a target: what the turn
                # teaches is the catching up after the final update. Trained, they teach holding calls
                # that could go out: runs 24-33 called early in 14-21 % of the held-out turns that need a
                # call, their teacher in 43 %.
                self.masked.add(len(trace))
            if (final or (early and self.speculate)) and ready:
                wrong = self._wrong(move, trace) if final and self.slip and not _REFUSED.search(trace) else None
                if wrong is not None:  # a mistake stays in the trace, masked from the loss
                    self.masked.add(len(trace))
                    return self._reply(final, *wrong)
                listed = isinstance(move.action, ToolCall)  # (a removal's think lists nothing)
                think = self._with_plan(done, move.think, final, heard) if listed else move.think
                if listed:
                    think = self._after_result(done, trace, results) + think
                return self._reply(final, think, move.action)
        elif final and self._all_results_in(trace):
            return self._reply(final, DONE, Answer(self.plan.answer(results)))
        return self._reply(final, PENDING if final else WAIT, Pause())

    def _wrong(self, move: Move, trace: str) -> tuple[str, ToolCall] | None:
        """A step the worker refuses, as a small model gets one wrong: the chain's next call before the
        one it needs, another tool's argument names, or a tool name that does not exist. The error and
        the right call follow, so the model learns to read the error ("it takes: part, whole") and
        recover instead of repeating itself: run 25 sent `percentage` `a` and `b` twice. The skipped call is
        written as the model writes it, with its own think and the first free id ("send the message to
        Ana", `send_message` as call 1 to `$1.phone`): run 24 did exactly that on held-out wordings whose
        lookup it had not made early, and then could not recover from an error it had seen only after
        "find Ana's number" and call 2."""
        assert self.plan is not None
        action = move.action
        if not isinstance(action, ToolCall):
            return None
        live = self._live(trace)
        later = [m for m in self.plan.moves if isinstance(m.action, ToolCall) and m.action.id > action.id
                 and action.id in references(m.action.arguments) and not references(m.action.arguments) & live.keys()]
        if later:
            skipped = later[0].action
            assert isinstance(skipped, ToolCall)
            return later[0].think, ToolCall(action.id, skipped.name, skipped.arguments)
        if action.arguments and self.rng.random() < ARGUMENT_SLIP_SHARE:
            own = set(self.fields[action.name])
            others = sorted({f for fs in self.fields.values() for f in fs} - own)
            if len(others) >= len(action.arguments):
                wrong = self.rng.sample(others, len(action.arguments))
                return move.think, ToolCall(action.id, action.name, dict(zip(wrong, action.arguments.values(),
                                                                             strict=True)))
        spoken = [w for w in self._spoken(action) if w != move.think.split()[0]]
        if spoken and self.rng.random() < SPOKEN_SLIP_SHARE:
            word = self.rng.choice(spoken[:2])  # mostly the request's verb, its first content word
            return re.sub(r"^\S+", word, move.think), ToolCall(action.id, word, action.arguments)
        names = {action.name.removeprefix("get_"), "get_" + action.name.removeprefix("get_") + "_info",
                 action.name.replace("_", ""), action.name + "s", action.name.split("_")[-1]}
        names -= self.tools
        return (move.think, ToolCall(action.id, self.rng.choice(sorted(names)), action.arguments)) if names else None

    def _spoken(self, action: ToolCall) -> list[str]:
        """The user's content words that no argument holds and no tool is named, in the order said
        (names and places, capitalised, are values however they are used)."""
        assert self.plan is not None
        held = {w.lower() for v in action.arguments.values() for w in re.findall(r"[\w']+", str(v))}
        words = (w.strip(",.?!") for w in self.plan.words)
        return list(dict.fromkeys(w for w in words if len(w) > 3 and w.isalpha() and w.islower()
                                  and w not in _PLAIN and w not in held and w not in self.tools))

    def _with_plan(self, done: int, think: str, final: bool, heard: int) -> str:
        """A call's think, then the calls the request still needs after it, as far as they are heard
        ("symbol of Google, then its price"). After a result the next step is then read off the model's
        own plan: runs 26 and 27 answered "all results are in" after the first result of every stock
        chain, deciding it with the request far back and a single call the common case."""
        assert self.plan is not None
        ids = {m.action.id for m in self.plan.moves[: done + 1]}
        later: list[str] = []
        for m in self.plan.moves[done + 1:]:
            # a guess is not planned ahead; its revision is, as the call it makes
            if (not isinstance(m.action, ToolCall) or m.action.id in ids or m.until is not None
                    or not (final or (m.at is not None and heard >= m.at))):
                continue
            ids.add(m.action.id)
            later.append(_item(m))
        return ", then ".join([think, *later])

    def _after_result(self, done: int, trace: str, results: Results) -> str:
        """A call made after a result first names the call that result closed ("zipcode of Crescent
        Hollow done; zipcode of Autumnville, then distance between them"): the next item is the one
        after it in the model's own plan. Run 29 copied the list as it stood and looked Autumnville up
        twice, the item already done never dropped."""
        assert self.plan is not None
        last_call = max((m.end() for m in _ISSUED.finditer(trace)), default=None)
        if not done or done - 1 in self.skipped or last_call is None:
            return ""
        previous, this = self.plan.moves[done - 1], self.plan.moves[done]
        if (not isinstance(previous.action, ToolCall) or previous.until is not None
                or previous.action.id == this.action.id or previous.action.id not in results
                or not RESULT.search(trace, last_call)):
            return ""
        return _item(previous) + " done; "

    @staticmethod
    def _needs_failed(move: Move, results: Results) -> bool:
        needs = set(move.needs) | (references(move.action.arguments) if isinstance(move.action, ToolCall) else set())
        return any(failed(results.get(i)) for i in needs)

    def _changes_state(self, action: ToolCall | Remove) -> bool:
        return isinstance(action, ToolCall) and action.name not in self.safe

    @staticmethod
    def _results(trace: str) -> Results:
        return {int(i): json.loads(body) for i, body in RESULT.findall(trace)}

    @staticmethod
    def _live(trace: str) -> dict[int, int]:
        """The live calls (issued, not removed), each with where its latest version ends in the trace."""
        last_issue: dict[int, int] = {}
        for m in _ISSUED.finditer(trace):
            body = m.group(1).strip()
            if body.startswith("REMOVE"):
                last_issue.pop(int(body.split()[1]), None)
            else:
                last_issue[json.loads(body)["id"]] = m.end()
        return last_issue

    @classmethod
    def _all_results_in(cls, trace: str) -> bool:
        """Every live call's latest version has its result after it in the trace."""
        return all(any(int(r.group(1)) == i and r.start() > at for r in RESULT.finditer(trace))
                   for i, at in cls._live(trace).items())

    def _reply(self, final: bool, think: str, action: Any) -> Reply:
        # Every think opens with the update it answers ("partial:" or "final:", copied from the last
        # update's tag): the first weighted token then says whether the user has finished, and what
        # follows is conditioned on it, instead of "the ..." serving both states.
        text = format_element(Think(f"{'final' if final else 'partial'}: {think}")) + format_element(action)
        return Reply(text, first_token_s=self.first_token_s, chunk_chars=4, chunk_s=1.0 / self.tokens_per_s)


def _item(move: Move) -> str:
    """A move as an item of the plan, the same words wherever it is listed or named done ("then its
    price" lists as "its price")."""
    return re.sub(r"^(then|now) ", "", move.alone or move.think)


@dataclass(frozen=True)
class Conditions:
    """The clock of one episode, sampled: how fast the user speaks and the model thinks."""

    wpm: float
    words_per_update: int  # a partial update every N words, or
    update_s: float | None  # every so many seconds of speech (a streaming ASR's cadence) when set
    endpoint_s: float
    hesitation_s: float
    first_token_s: float
    tokens_per_s: float
    latency: tuple[float, float]
    partial_updates: Literal["interrupt", "at_boundary"]

    @staticmethod
    def sample(rng: random.Random) -> Conditions:
        # Mostly a slow model: the embedded one on a CPU takes about a second per step, so its updates
        # carry a few words each; per-word updates to a fast model stay in the mix.
        fast = rng.random() < 0.35
        return Conditions(
            wpm=rng.uniform(110, 190), words_per_update=rng.choice([1, 1, 2, 3]),
            update_s=rng.uniform(0.3, 1.0) if rng.random() < 0.6 else None,
            endpoint_s=rng.uniform(0.3, 0.8), hesitation_s=rng.uniform(1.2, 2.5),
            first_token_s=rng.uniform(0.08, 0.3) if fast else rng.uniform(0.3, 1.2),
            tokens_per_s=rng.uniform(50, 120) if fast else rng.uniform(15, 40),
            latency=(rng.uniform(0.1, 0.5), rng.uniform(0.6, 1.5)),
            partial_updates=rng.choice(["at_boundary", "at_boundary", "interrupt"]))


async def _speak(plan: TurnPlan, turn: Turn, c: Conditions) -> None:
    per_word = 60.0 / c.wpm
    since_update = 0.0
    for i in range(len(plan.words)):
        await asyncio.sleep(per_word)
        since_update += per_word
        due = since_update >= c.update_s if c.update_s is not None else (i + 1) % c.words_per_update == 0
        if plan.pause_after is not None and i + 1 == plan.pause_after:
            turn.push(TranscriptUpdate(" ".join(plan.words[: i + 1])))
            await asyncio.sleep(c.hesitation_s)
            since_update = 0.0
        elif due or i + 1 == len(plan.words):
            turn.push(TranscriptUpdate(" ".join(plan.words[: i + 1])))
            since_update = 0.0
    await asyncio.sleep(c.endpoint_s)
    turn.push(TranscriptUpdate(" ".join(plan.words), final=True))


def catalog_for(ep: Episode) -> Catalog:
    """The episode's tools, acting on the episode's world."""
    return Catalog(ep.catalog.name, ep.catalog.tools, new_state=lambda: ep.state, example=ep.catalog.example)


async def run_episode(ep: Episode, rng: random.Random, sample_id: str, style: PromptStyle = "trained"
                      ) -> tuple[list[Sample] | None, str | None]:
    """Run one episode through the worker: a sample per turn (earlier turns appear in it as the worker
    recaps them, not trained on), or None and why the episode was rejected."""
    c = Conditions.sample(rng)
    teacher = Teacher(rng, c.first_token_s, c.tokens_per_s, ep.catalog.tools)
    fake = ScriptedLLM(teacher)
    llm = OpenAICompatibleLLM("http://teacher/v1", "teacher", transport=ASGIStreamTransport(fake))
    box = ToolBox(catalog_for(ep), latency_s=c.latency, seed=rng.randrange(1 << 30))
    config = AgentConfig(mode="speculative", partial_updates=c.partial_updates, prompt=style,
                         max_steps_after_final=12, history_chars=20_000)
    session = AgentSession(llm, box, config)
    turns: list[list[tuple[str, bool]]] = []
    requests: list[list[str]] = []
    try:
        for index, plan in enumerate(ep.turns):
            seen = len(fake.requests)
            history = session.history_text()
            turn = session.new_turn()
            teacher.start(turn, plan)
            async with asyncio.TaskGroup() as tg:
                speaking = tg.create_task(_speak(plan, turn, c))
                done = await turn.run()
                speaking.cancel()
            if done.status != TurnStatus.COMPLETED:
                return None, f"turn {index}: {done.status} {done.error}"
            marks = done.ledger["marks"]
            refused = len(_REFUSED.findall(turn.trace))
            if sum(m["kind"] == "protocol_error" for m in marks) != refused or refused > teacher.slip:
                return None, f"turn {index}: protocol error"
            final_at = next(m["t"] for m in marks if m["kind"] == FINAL)
            early = [m for m in marks if m["kind"] == TOOL and m["event"] in ("issued", "started")
                     and not m["safe"] and m["t"] < final_at]
            if early:
                return None, f"turn {index}: {early[0]['name']} {early[0]['event']} before the final update"
            starts = itertools.accumulate((len(text) for text, _ in turn.spans), initial=0)
            turns.append([(history, False)] + [(text, own and at not in teacher.masked)
                                               for (text, own), at in zip(turn.spans, starts, strict=False)])
            requests.append([r.prefix for r in fake.requests[seen:]])
    finally:
        await llm.aclose()
    effects = ep.effects(ep.state)
    if effects != ep.expected:
        return None, f"side effects {effects} != {ep.expected}"
    system = fake.requests[0].body["messages"][0]["content"]  # the system prompt exactly as the worker sent it
    said = [" ".join(t.words) for t in ep.turns]
    return [Sample(f"{sample_id}-{i}", ep.turns[i].kind, ep.split, system, _merge(_thin_pauses(spans, rng)),
                   requests[i], {"conditions": c.__dict__, "turns": said, "turn": i, "history_chars": len(spans[0][0])})
            for i, spans in enumerate(turns)], None


_PAUSE_STEP = re.compile(r"<think>[^<]*</think>\n<pause/>")
KEEP_REPEATED_PAUSE = 0.25


def _thin_pauses(spans: list[tuple[str, bool]], rng: random.Random) -> list[tuple[str, bool]]:
    """Train on a pause step that follows another pause only now and then: with a partial update per
    word, half the model's steps are such pauses, and the decision after `</think>` would be learnt as
    "pause" far more often than as "act". The text stays in the sequence as context."""
    out: list[tuple[str, bool]] = []
    last_was_pause = False
    for text, own in spans:
        if own:
            pause = bool(_PAUSE_STEP.fullmatch(text))
            if pause and last_was_pause and rng.random() >= KEEP_REPEATED_PAUSE:
                own = False
            last_was_pause = pause
        out.append((text, own))
    return out


def _merge(spans: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for text, own in spans:
        if not text:
            continue
        if out and out[-1][1] == own:
            out[-1] = (out[-1][0] + text, own)
        else:
            out.append((text, own))
    return out


BFCL_SHARE = 0.25  # episodes on BFCL's tool schemas; the rest on the demo catalog


def draw(split: Split, rng: random.Random, bfcl_share: float = BFCL_SHARE) -> Episode:
    return bfcl_episode(split, rng) if rng.random() < bfcl_share else episode(split, rng)


def generate(split: Split, count: int, seed: int, style: PromptStyle = "trained"
             ) -> tuple[list[Sample], dict[str, int]]:
    """The samples of `count` valid episodes of a split (one per turn), and why the rejected episodes
    were rejected."""
    rng = random.Random(f"{split}:{seed}")
    samples: list[Sample] = []
    rejected: dict[str, int] = {}
    attempts = episodes = 0
    while episodes < count and attempts < count * 3:
        attempts += 1
        ep = draw(split, rng)
        # Its own generator: how the teacher plays an episode must not move which episodes come next.
        made, why = run_virtual(run_episode(ep, random.Random(rng.randrange(1 << 62)), f"{split}-{seed}-{attempts}",
                                            style))
        if made is None:
            reason = (why or "?").split(":")[-1].strip()[:60]
            rejected[reason] = rejected.get(reason, 0) + 1
        else:
            samples += made
            episodes += 1
    return samples, rejected
