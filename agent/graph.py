"""The tool graph: calls by id with dependencies, speculation for safe calls, a commit gate for the rest.

A call may start only when every call it references is done and its gate is open. The gate of a
safe call opens at once when speculation is on; every other gate opens only through `commit()`,
which the worker calls at the commit point. There is no other way to start an unsafe call.

Calls also keep the order of writes, since tools share state that `$N` references do not show (a
`cd` before an `ls`): a state-changing call waits for every earlier call, and a read-only call waits
for every earlier state-changing call. Reads run in parallel with each other.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from agent.events import CallState
from agent.protocol import ToolCall
from agent.tools import ToolBox, ToolError, references, resolve

TERMINAL = (CallState.DONE, CallState.FAILED, CallState.CANCELLED)
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass(eq=False)
class Call:
    id: int
    version: int  # unique per graph: tells a revised call from its predecessor
    name: str
    arguments: dict[str, Any]
    safe: bool
    speculative: bool  # issued before the final update
    deps: frozenset[int]
    after: frozenset[int] = frozenset()  # earlier calls it must not overtake (ordering, not data)
    state: CallState = CallState.PENDING
    released: bool = False
    started: bool = False
    result: Any = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ToolGraph:
    def __init__(
        self,
        toolbox: ToolBox,
        *,
        speculate_safe: bool,
        spawn: Spawn,
        on_event: Callable[[Call, str], None],
        on_complete: Callable[[Call], None],
    ) -> None:
        self.toolbox = toolbox
        self.speculate_safe = speculate_safe
        self._spawn = spawn
        self._on_event = on_event
        self._on_complete = on_complete
        self.calls: dict[int, Call] = {}
        self._versions = itertools.count(1)

    @property
    def max_id(self) -> int:
        return max(self.calls, default=0)

    def live_ids(self) -> set[int]:
        return {i for i, c in self.calls.items() if c.state != CallState.CANCELLED}

    def outstanding(self) -> list[Call]:
        """Calls whose result is still to come."""
        return [c for c in self.calls.values() if c.state not in TERMINAL]

    def issue(self, action: ToolCall, *, speculative: bool, commit: bool = False) -> tuple[Call, list[Call]]:
        """Add a call, or revise the call with the same id. Returns it and the calls cancelled by it.

        `commit` marks the call as the commit point itself (a new id after the final update).
        """
        cancelled: list[Call] = []
        old = self.calls.get(action.id)
        if old is not None and old.state != CallState.CANCELLED:
            cancelled = self._cancel(old)
        tool = self.toolbox.get(action.name)
        assert tool is not None, "the worker checks calls before issuing them"
        earlier = [c for c in self.calls.values() if c.id < action.id and c.state != CallState.CANCELLED]
        after = frozenset(c.id for c in earlier if not (tool.safe and c.safe))
        call = Call(
            id=action.id,
            version=next(self._versions),
            name=action.name,
            arguments=action.arguments,
            safe=tool.safe,
            speculative=speculative,
            deps=frozenset(references(action.arguments)),
            after=after,
        )
        self.calls[call.id] = call
        self._on_event(call, "revised" if old is not None else "issued")
        if commit:
            self.commit()
        else:
            self._advance(call)
        return call, [c for c in cancelled if c is not old]

    def remove(self, call_id: int) -> list[Call]:
        """Withdraw a call; every call that depends on it goes too."""
        call = self.calls.get(call_id)
        if call is None or call.state == CallState.CANCELLED:
            return []
        return self._cancel(call)

    def commit(self) -> None:
        """The commit point: open every gate."""
        for call in list(self.calls.values()):
            if call.state in (CallState.PENDING, CallState.HELD) and not call.released:
                call.released = True
                self._on_event(call, "committed")
                self._advance(call)

    def shutdown(self) -> list[Call]:
        """End of turn: drop what was never committed and lookups nobody will read; committed calls
        that change state run to completion."""
        needed: set[int] = set()  # what committed state-changing calls still wait for
        todo = [c for c in self.calls.values() if c.released and not c.safe and c.state not in TERMINAL]
        while todo:
            for dep in todo.pop().deps - needed:
                needed.add(dep)
                if dep in self.calls:
                    todo.append(self.calls[dep])
        dropped: list[Call] = []
        for call in list(self.calls.values()):
            if call.state in TERMINAL or call.id in needed:
                continue
            if not call.released or call.safe:
                dropped += self._cancel(call)
        return dropped

    def cancel_all(self) -> None:
        for call in list(self.calls.values()):
            if call.state not in TERMINAL:
                self._cancel(call)

    def _cancel(self, call: Call) -> list[Call]:
        cancelled = [call]
        if call.task is not None and not call.task.done():
            call.task.cancel()
        call.state = CallState.CANCELLED
        self._on_event(call, "cancelled")
        for other in list(self.calls.values()):
            if call.id in other.deps and other.state != CallState.CANCELLED and other is not call:
                cancelled += self._cancel(other)
        if self.calls.get(call.id) is call:  # withdrawn, not revised: later calls need not wait for it
            self._advance_dependents(call)
        return cancelled

    def _advance(self, call: Call) -> None:
        if call.state not in (CallState.PENDING, CallState.HELD):
            return
        deps = [self.calls.get(d) for d in call.deps]
        broken = [d for d in deps if d is None or d.state in (CallState.FAILED, CallState.CANCELLED)]
        if broken:
            call.state = CallState.FAILED
            call.result = {"error": f"call {call.id} needs the result of a call that failed or was removed"}
            self._on_event(call, "failed")
            self._on_complete(call)
            self._advance_dependents(call)
            return
        waits = any(d is None or d.state != CallState.DONE for d in deps) or any(
            a in self.calls and self.calls[a].state not in TERMINAL for a in call.after)
        if waits:
            call.state = CallState.PENDING
            return
        if not (call.released or (call.safe and self.speculate_safe)):
            if call.state != CallState.HELD:
                call.state = CallState.HELD
                self._on_event(call, "held")
            return
        call.state = CallState.RUNNING
        call.started = True
        self._on_event(call, "started")
        call.task = self._spawn(self._run(call))

    async def _run(self, call: Call) -> None:
        try:
            args = resolve(call.arguments, {i: c.result for i, c in self.calls.items()})
            result = await self.toolbox.execute(call.name, args)
        except ToolError as e:
            self._finish(call, CallState.FAILED, {"error": str(e)})
        except Exception as e:  # a tool's own bug must not take the session down
            self._finish(call, CallState.FAILED, {"error": f"{call.name} failed: {type(e).__name__}"})
        else:
            self._finish(call, CallState.DONE, result)

    def _finish(self, call: Call, state: CallState, result: Any) -> None:
        if call.state == CallState.CANCELLED or self.calls.get(call.id) is not call:
            return  # revised or removed meanwhile: the result is dropped
        call.state, call.result = state, result
        self._on_event(call, "completed" if state == CallState.DONE else "failed")
        self._on_complete(call)
        self._advance_dependents(call)

    def _advance_dependents(self, call: Call) -> None:
        for other in list(self.calls.values()):
            if call.id in other.deps or call.id in other.after:
                self._advance(other)
