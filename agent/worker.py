"""The worker: one reason-and-act loop per turn over an interruptible LLM stream.

Everything a turn reacts to (user updates, LLM chunks, the end of a generation, tool completions,
a cancel) arrives on one inbox and is handled by one loop, so the turn's state has a single writer.
New input while the model generates closes the stream, keeps what was written (a think cut short
gets `</think_interrupted>`, a half-written action is dropped), appends the injected block and
starts a new generation that continues the same assistant message.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from agent.clock import Clock, LoopClock
from agent.events import (
    AgentEvent,
    AnswerDelta,
    CallState,
    ToolCallEvent,
    TraceEvent,
    TranscriptUpdate,
    TurnDone,
    TurnStatus,
)
from agent.graph import Call, ToolGraph
from agent.ledger import ANSWER_START, FINAL, FIRST_TOKEN, LLM_REQUEST, PARTIAL, TOOL, TURN_END, TurnLedger
from agent.llm import LLM, Generation, LLMError
from agent.numerals import written
from agent.prompt import PromptStyle, action_regex, answer_regex, system_prompt
from agent.protocol import (
    INTERRUPTED,
    SEP,
    ActionParser,
    Answer,
    AnswerText,
    Block,
    ErrorBlock,
    FinalUpdate,
    Parsed,
    ParseError,
    PartialUpdate,
    Pause,
    Remove,
    Think,
    ToolCall,
    ToolCancelled,
    ToolResult,
    format_element,
)
from agent.tools import ToolBox

Mode = Literal["sequential", "async", "speculative"]
MODES: tuple[Mode, ...] = ("sequential", "async", "speculative")


@dataclass(frozen=True)
class AgentConfig:
    mode: Mode = "speculative"
    constrained: bool = True  # send the action regex (vLLM structured outputs)
    max_protocol_errors: int = 3
    max_llm_retries: int = 2
    retry_backoff_s: float = 0.25
    max_step_tokens: int = 1024  # a bound, not a target: covers the longest step the action regex admits
    max_steps_after_final: int = 6  # then the model may only answer (constrained) or falls back
    max_calls: int = 16  # tool calls per turn, revisions included
    # "interrupt": new words cut the running step (kept thinks end with </think_interrupted>);
    # "at_boundary": the running step finishes, then the words heard meanwhile are injected together
    partial_updates: Literal["interrupt", "at_boundary"] = "at_boundary"
    history_chars: int = 6000
    prompt: PromptStyle = "full"  # "trained": the short prompt the fine-tuned model was trained with
    fallback_text: str = "Sorry, I could not work that out. Could you say it again?"
    unavailable_text: str = "Sorry, I cannot think right now. Please try again in a moment."


# -- inbox messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _User:
    update: TranscriptUpdate


@dataclass(frozen=True, slots=True)
class _Chunk:
    gen: int
    text: str


@dataclass(frozen=True, slots=True)
class _GenEnd:
    gen: int
    error: str | None
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class _ToolDone:
    call: Call


@dataclass(frozen=True, slots=True)
class _Retry:
    pass


@dataclass(frozen=True, slots=True)
class _FallbackDone:
    text: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class _Cancel:
    pass


_Input = _User | _Chunk | _GenEnd | _ToolDone | _Retry | _FallbackDone | _Cancel


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


class AgentSession:
    """One conversation: the tools bound to it and the traces of its finished turns."""

    def __init__(self, llm: LLM, toolbox: ToolBox, config: AgentConfig | None = None,
                 clock: Clock | None = None) -> None:
        self.llm = llm
        self.toolbox = toolbox
        self.config = config or AgentConfig()
        self.clock = clock or LoopClock()
        self.history: list[str] = []  # one recap per finished turn (Turn.recap)
        self._ids = itertools.count(1)

    def new_turn(self, turn_id: str | None = None) -> Turn:
        return Turn(self, turn_id or f"turn_{next(self._ids)}")

    def history_text(self) -> str:
        kept: list[str] = []
        size = 0
        for trace in reversed(self.history):  # drop whole old turns, so the prefix stays stable
            size += len(trace)
            if size > self.config.history_chars:
                break
            kept.append(trace)
        return "".join(reversed(kept))


class Turn:
    """One user turn. Feed it with `push()`, run it with `run()`, read `events()`."""

    def __init__(self, session: AgentSession, turn_id: str) -> None:
        self.id = turn_id
        self.session = session
        self.config = session.config
        self.ledger = TurnLedger(turn_id, session.clock)
        tools = list(session.toolbox.tools.values())
        self._system = system_prompt(tools, session.toolbox.catalog.example, self.config.prompt)
        self._regex = action_regex(tools) if self.config.constrained else None
        self._regex_no_pause = action_regex(tools, pause=False) if self.config.constrained else None
        self._steps_after_final = 0
        self._step_counted = False  # the running generation counts against max_steps_after_final
        self._calls_issued = 0
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        # Display events (TraceEvent) are dropped when a consumer falls this far behind.
        self._events: asyncio.Queue[AgentEvent | None] = asyncio.Queue()
        self._max_backlog = 2000
        # This turn's part of the assistant message, split by who wrote it (True: the model), so that
        # training can put its loss on the model's own text.
        self.spans: list[tuple[str, bool]] = []
        self.heard = ""  # the user text the model has been told
        self.final = False
        self.final_text = ""
        self._tg: asyncio.TaskGroup | None = None
        self.graph: ToolGraph | None = None
        self._gen_id = 0
        self._gen_task: asyncio.Task[None] | None = None
        self._parser = ActionParser()
        self._chunk_ends: list[int] = []
        self._step_action: object | None = None
        self._want_gen = False
        self._protocol_errors = 0
        self._llm_failures = 0
        self._helpers: list[asyncio.Task[None]] = []  # retry timers, the fallback request
        self._answer_open = False
        self._pending_partial: str | None = None  # words heard while a step runs (partial_updates=at_boundary)
        self._pending_final: str | None = None  # a final update that waits for the running step to end
        self._answer_parts: list[str] = []
        self._answer_released = False  # answer text now goes out as AnswerDelta
        self._held_for: str | None = None  # the heard text a pre-final answer was based on
        self._held_complete = False
        self._fallback_due = False
        self._last_error: str | None = None
        self._outcome: tuple[TurnStatus, str, str | None] | None = None
        self.answer = ""

    @property
    def trace(self) -> str:
        """This turn's part of the assistant message."""
        return "".join(text for text, _ in self.spans)

    def recap(self) -> str:
        """What later turns see of this one: what was heard, the calls as they finally stood with their
        results, and what was said. Thinks, pauses, partial updates, withdrawn guesses and errors stay
        out: a small model copies the last turn's think and call into the next turn when they are there,
        and the shorter history is a shorter prompt."""
        heard = FinalUpdate(self.final_text) if self.final else PartialUpdate(self.heard)
        parts = [format_element(heard)] if self.final_text or self.heard else []
        for call in sorted(self.graph.calls.values() if self.graph else [], key=lambda c: c.id):
            ran = call.state in (CallState.DONE, CallState.FAILED)
            if ran or (call.released and call.state != CallState.CANCELLED):  # committed, still running
                parts.append(format_element(ToolCall(call.id, call.name, call.arguments)))
            if ran and call.result is not None:
                parts.append(format_element(ToolResult(call.id, call.result)))
        if self.answer:
            parts.append(format_element(Answer(self.answer)))
        return "".join(parts)

    # -- the caller's side --------------------------------------------------------------------------

    def push(self, update: TranscriptUpdate) -> None:
        self._inbox.put_nowait(_User(update))

    def cancel(self) -> None:
        self._inbox.put_nowait(_Cancel())

    async def events(self) -> AsyncIterator[AgentEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def run(self) -> TurnDone:
        status, answer, error = TurnStatus.CANCELLED, "", None
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.graph = ToolGraph(
                    self.session.toolbox,
                    speculate_safe=self.config.mode == "speculative",
                    spawn=tg.create_task,
                    on_event=self._on_tool_event,
                    on_complete=lambda call: self._inbox.put_nowait(_ToolDone(call)),
                )
                try:
                    status, answer, error = await self._loop()
                finally:
                    self._stop_generation(keep="boundary")
                    for helper in self._helpers:
                        helper.cancel()
                    if status == TurnStatus.CANCELLED:
                        self.graph.cancel_all()
                    else:
                        self.graph.shutdown()
        finally:
            self.ledger.mark(TURN_END, status=str(status))
            self.session.history.append(self.recap())
            done = TurnDone(self.id, status, answer, self.ledger.to_dict(), error)
            self._events.put_nowait(done)
            self._events.put_nowait(None)
        return done

    # -- the loop -------------------------------------------------------------------------------------

    async def _loop(self) -> tuple[TurnStatus, str, str | None]:
        while True:
            items = [await self._inbox.get()]
            while not self._inbox.empty():  # handle everything that arrived together, then generate once
                items.append(self._inbox.get_nowait())
            for item in items:
                self._handle(item)
                if self._outcome is not None:
                    return self._outcome
            if self._gen_task is None and self._pending_final is not None:
                self._on_final(self._pending_final)  # the step ended with its action: now it hears the end
                if self._outcome is not None:
                    return self._outcome
            elif self._gen_task is None and self._pending_partial is not None:
                self._inject_partial(self._pending_partial)  # the step ended: now it hears the new words
            if self._should_generate():
                self._start_generation()

    def _handle(self, item: _Input) -> None:
        match item:
            case _User(update):
                self._on_user(update)
            case _Chunk(gen, text) if gen == self._gen_id and self._gen_task is not None:
                self._on_chunk(text)
            case _GenEnd(gen, error, retryable) if gen == self._gen_id and self._gen_task is not None:
                self._on_generation_end(error, retryable)
            case _ToolDone(call):
                self._on_tool_done(call)
            case _Retry():
                self._want_gen = True
            case _FallbackDone(text, error):
                if text:
                    self._emit_answer(text)
                    error = self._last_error or "the model did not follow the protocol"
                    self._outcome = (TurnStatus.FALLBACK, text, error)
                else:
                    self._fail(error or "fallback failed")
            case _Cancel():
                self._outcome = (TurnStatus.CANCELLED, self.answer, None)

    def _should_generate(self) -> bool:
        if not self._want_gen or self._gen_task is not None or self._fallback_due:
            return False
        if self.config.mode == "sequential":
            # The baseline blocks on every committed call; a held revision waits for the model's next
            # commit point instead, so it must not block the model.
            assert self.graph is not None
            return self.final and not any(c.released for c in self.graph.outstanding())
        return True

    # -- user updates ---------------------------------------------------------------------------------

    def _on_user(self, update: TranscriptUpdate) -> None:
        if self.final or self._pending_final is not None:
            return  # words after the final update belong to the next turn
        text = written(update.text.strip())  # the model reads "the 25th of April" however it was said
        self.ledger.mark(FINAL if update.final else PARTIAL, chars=len(text))
        if not update.final:
            if self.config.mode == "sequential" or text == self.heard:
                return
            if self.config.partial_updates == "at_boundary" and self._gen_task is not None:
                self._pending_partial = text  # the running step finishes first; words coalesce meanwhile
                return
            self._inject_partial(text)
            return
        self._pending_partial = None  # the final update has every word
        if self._gen_task is not None and self._parser.state == "tool_call":
            # Cutting a call that is being written would throw it away only to write it again; one still
            # thinking is cut (waiting would cost the rest of its step, then a whole new one). The final
            # counts once the model has seen it.
            self._pending_final = text
            return
        self._on_final(text)

    def _on_final(self, text: str) -> None:
        self._pending_final = None
        self.final, self.final_text = True, text
        if self._fallback_due:
            self._start_fallback()
            return
        if self._held_for is not None and normalize(text) == normalize(self._held_for):
            self._release_held_answer()  # the speculative answer was right: speak it now
            return
        self._inject(FinalUpdate(text))

    def _inject_partial(self, text: str) -> None:
        self._pending_partial = None
        delta = text[len(self.heard):].strip() if text.startswith(self.heard) else text
        if delta:
            self.heard = text
            self._inject(PartialUpdate(delta))

    def _release_held_answer(self) -> None:
        assert self.graph is not None
        self.graph.commit()
        self._answer_released = True
        self.ledger.mark(ANSWER_START, speculative=True)
        for part in self._answer_parts:
            self._emit_answer_part(part)
        if self._held_complete:
            self._outcome = (TurnStatus.COMPLETED, self.answer, None)

    # -- generation -----------------------------------------------------------------------------------

    def _start_generation(self) -> None:
        assert self._tg is not None
        self._want_gen = False
        self._gen_id += 1
        self._parser = ActionParser()
        self._chunk_ends = []
        self._step_action = None
        regex = self._regex
        self._step_counted = self.final
        if self.final:
            self._steps_after_final += 1
            if self._steps_after_final > self.config.max_steps_after_final:
                if regex is None:  # nothing can force an answer: give up on the protocol
                    self._fallback_due = True
                    self._start_fallback()
                    return
                regex = answer_regex()
            elif regex is not None and self.graph is not None and not self.graph.outstanding():
                regex = self._regex_no_pause
        prefix = self.session.history_text() + self.trace
        gen = Generation(self._system, prefix, regex, self.config.max_step_tokens)
        self.ledger.mark(LLM_REQUEST, gen=self._gen_id, prefix_chars=len(prefix))
        self._gen_task = self._tg.create_task(self._generate(self._gen_id, gen))

    async def _generate(self, gen_id: int, gen: Generation) -> None:
        try:
            await self.session.llm.generate(gen, lambda text: self._inbox.put_nowait(_Chunk(gen_id, text)))
        except LLMError as e:
            self._inbox.put_nowait(_GenEnd(gen_id, str(e), e.retryable))
            return
        self._inbox.put_nowait(_GenEnd(gen_id, None))

    def _stop_generation(self, keep: Literal["think", "boundary", "all"]) -> int | None:
        """End the running generation and move what it wrote into the trace.

        `think` keeps a think cut short (closed by the interruption marker), otherwise the text up to
        the last complete element; `all` keeps everything (the generation ended by itself). Returns the
        number of streamed chunks (about one token each) thrown away, or None if nothing was running.
        """
        task, self._gen_task = self._gen_task, None
        if task is None:
            return None
        task.cancel()  # closes the HTTP stream; vLLM aborts the request
        text, parser = self._parser.consumed, self._parser
        if keep == "think" and parser.state == "think":
            kept, cut = text + INTERRUPTED, len(text)
        elif keep == "all":
            kept, cut = text, len(text)
        else:
            kept, cut = text[: parser.boundary], parser.boundary
        kept = kept.rstrip()
        if not kept and self._step_counted:
            # Cut before it wrote anything (a tool result came first): not a step. Counting these, a
            # slow model ran out of steps in a three-call chain, a call and a lost step per result.
            self._steps_after_final -= 1
        if kept:
            own = kept.removesuffix(INTERRUPTED).rstrip()  # a space before the marker goes with the marker,
            self.spans += [(own, True), (kept[len(own):] + SEP, False)]  # as the tokenizer joins them
        if cut < len(text):
            self._emit(TraceEvent(self.id, text[cut:], "discarded"))
        return sum(1 for end in self._chunk_ends if end > cut)

    def _drop_held_answer(self) -> None:
        self.ledger.mark("answer_dropped")
        self._answer_open = False
        self._answer_parts = []
        self._held_for = None
        self._held_complete = False

    def _on_chunk(self, text: str) -> None:
        if not self._chunk_ends:
            self.ledger.mark(FIRST_TOKEN, gen=self._gen_id)
        events = self._parser.feed(text)
        self._chunk_ends.append(len(self._parser.consumed))
        self._emit(TraceEvent(self.id, text, "model"))
        for event in events:
            if self._gen_task is None:
                break  # an action ended this generation
            match event:
                case AnswerText(part):
                    self._on_answer_text(part)
                case Parsed(Think()):
                    pass
                case Parsed(ToolCall() | Remove() | Pause() | Answer() as action):
                    self._step_action = action
                    self._on_action(action)
                case ParseError(message):
                    self._protocol_error(message)

    def _on_generation_end(self, error: str | None, retryable: bool = True) -> None:
        if error is not None:
            self._stop_generation(keep="boundary")
            self._llm_failures += 1
            self.ledger.mark("llm_error", error=error[:200])
            if not retryable and not self._fallback_due:
                self._fallback_due = True  # e.g. the trace outgrew the context: a plain answer may still fit
                self._last_error = error
                if self.final:
                    self._start_fallback()
            elif self._llm_failures > self.config.max_llm_retries:
                self._fail(error)
            else:
                self._later(self.config.retry_backoff_s * 2 ** (self._llm_failures - 1), _Retry())
            return
        for problem in self._parser.finish():
            if isinstance(problem, ParseError):
                self._protocol_error(problem.message)
                return
        self._stop_generation(keep="all")
        if self._step_action is None:
            self._protocol_error("every step must end with one action: <tool_call>, <pause/> or <answer>")
        elif isinstance(self._step_action, ToolCall | Remove):
            self._want_gen = True  # keep going: more calls, a pause or the answer

    # -- actions --------------------------------------------------------------------------------------

    def _on_action(self, action: ToolCall | Remove | Pause | Answer) -> None:
        assert self.graph is not None
        match action:
            case Answer(text):
                if not text.strip():
                    self._protocol_error("the answer is empty")
                    return
                if not self._answer_open:
                    self._start_answer()
                self._stop_generation(keep="boundary")
                if self._answer_released:
                    self._outcome = (TurnStatus.COMPLETED, self.answer, None)
                else:
                    self._held_complete = True
            case Pause():
                self._stop_generation(keep="boundary")
                if self.final:
                    self.graph.commit()
                    if not self.graph.outstanding():
                        self._protocol_error("there is nothing to wait for: answer now", inject_only=True)
            case ToolCall():
                problem = self.session.toolbox.check(action.name, action.arguments, self.graph.live_ids(),
                                                     action.id)
                if problem:
                    self._protocol_error(problem)
                    return
                if self._calls_issued >= self.config.max_calls:
                    self._protocol_error(f"no more than {self.config.max_calls} tool calls in a turn: answer now")
                    return
                self._calls_issued += 1
                new_id = action.id > self.graph.max_id
                _, cascaded = self.graph.issue(action, speculative=not self.final, commit=self.final and new_id)
                if self.config.mode == "sequential":
                    self._stop_generation(keep="boundary")
                    self._want_gen = True  # once the call is done (see _should_generate)
                for call in cascaded:
                    self._inject(ToolCancelled(call.id))
            case Remove(call_id):
                if call_id not in self.graph.live_ids():
                    self._protocol_error(f"there is no call {call_id} to remove")
                    return
                for call in self.graph.remove(call_id):
                    if call.id != call_id:
                        self._inject(ToolCancelled(call.id))

    def _start_answer(self) -> None:
        assert self.graph is not None
        self._answer_open = True
        if self.final:
            self._answer_released = True
            self.graph.commit()
            self.ledger.mark(ANSWER_START, speculative=False)
        else:
            self._held_for = self.heard

    def _on_answer_text(self, part: str) -> None:
        if not self._answer_open:
            self._start_answer()
        self._answer_parts.append(part)
        if self._answer_released:
            self._emit_answer_part(part)

    def _emit_answer_part(self, part: str) -> None:
        self.answer += part
        self._emit(AnswerDelta(self.id, part))

    def _emit_answer(self, text: str) -> None:
        if self.ledger.first(ANSWER_START) is None:
            self.ledger.mark(ANSWER_START, speculative=False)
        self._emit_answer_part(text)

    # -- tools ----------------------------------------------------------------------------------------

    def _on_tool_event(self, call: Call, event: str) -> None:
        self.ledger.mark(TOOL, event=event, call_id=call.id, version=call.version, name=call.name,
                         speculative=call.speculative, safe=call.safe)
        self._emit(ToolCallEvent(self.id, event, call.id, call.name, call.arguments, call.state,
                                 call.speculative, call.result if call.state in (CallState.DONE,
                                                                                 CallState.FAILED) else None))

    def _on_tool_done(self, call: Call) -> None:
        assert self.graph is not None
        if self.graph.calls.get(call.id) is not call or call.state == CallState.CANCELLED:
            return
        self._inject(ToolResult(call.id, call.result))

    # -- injection, errors, fallback -------------------------------------------------------------------

    def _inject(self, block: Block) -> None:
        if self._answer_released:
            return  # the answer is being spoken; the turn ends with it
        if self._answer_open:
            self._drop_held_answer()  # an answer given on partial input, now outdated
        lost = self._stop_generation(keep="think")
        if lost is not None:
            self.ledger.restart(tokens_discarded=lost)
        text = format_element(block)
        self.spans.append((text, False))
        self._emit(TraceEvent(self.id, text, "inject"))
        self._want_gen = True

    def _protocol_error(self, message: str, *, inject_only: bool = False) -> None:
        if not inject_only:
            self._stop_generation(keep="boundary")
        self._protocol_errors += 1
        self.ledger.mark("protocol_error", message=message[:200])
        if self._answer_released:
            # The user is already hearing the answer (cut off, e.g. unclosed at the token limit): no
            # error block can reach the model any more, so the turn ends with what was said.
            self._outcome = (TurnStatus.COMPLETED, self.answer, message)
            return
        if self._protocol_errors > self.config.max_protocol_errors:
            self._fallback_due = True
            if self.final:
                self._start_fallback()
            return
        self._inject(ErrorBlock(message))

    def _start_fallback(self) -> None:
        """The model cannot follow the protocol: ask it for a plain chat answer instead."""
        assert self._tg is not None
        messages = [
            {"role": "system", "content": "You are a helpful voice assistant. Answer in one or two short "
                                          "sentences."},
            {"role": "user", "content": self.final_text},
        ]
        self._helpers.append(self._tg.create_task(self._fallback(messages)))

    async def _fallback(self, messages: list[dict[str, str]]) -> None:
        try:
            text = (await self.session.llm.complete(messages)).strip()
        except LLMError as e:
            self._inbox.put_nowait(_FallbackDone(None, str(e)))
            return
        self._inbox.put_nowait(_FallbackDone(text or self.config.fallback_text, None))

    def _fail(self, error: str) -> None:
        self._emit_answer(self.config.unavailable_text)
        self._outcome = (TurnStatus.FAILED, self.answer, error)

    def _later(self, delay: float, item: _Input) -> None:
        assert self._tg is not None

        async def fire() -> None:
            await asyncio.sleep(delay)
            self._inbox.put_nowait(item)

        self._helpers.append(self._tg.create_task(fire()))

    def _emit(self, event: AgentEvent) -> None:
        if isinstance(event, TraceEvent) and self._events.qsize() > self._max_backlog:
            return
        self._events.put_nowait(event)
