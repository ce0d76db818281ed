"""One clock for every timestamp, and a virtual-time event loop for tests and simulations.

The agent reads time only through `Clock.now()` and waits only through asyncio (sleep, timeouts),
both of which follow the running loop's clock. Under `VirtualTimeLoop` that clock jumps straight
to the next timer whenever nothing is ready, so scripted delays cost no wall time and every
timestamp in a ledger is exact and repeatable.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...


class LoopClock:
    """Seconds on the running event loop's clock (monotonic, or virtual under VirtualTimeLoop)."""

    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()


class _VirtualSelector(selectors.BaseSelector):
    """Polls real I/O without blocking and turns a wait for a timer into a jump of virtual time."""

    def __init__(self, inner: selectors.BaseSelector, deadlock_after_s: float) -> None:
        self._inner = inner
        self._deadlock_after_s = deadlock_after_s
        self.advance = 0.0  # set by the loop: how far the last wait moved time

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # Nothing scheduled: only another thread can wake us (its self-pipe write).
            ready = self._inner.select(self._deadlock_after_s)
            if not ready:
                raise RuntimeError("virtual-time loop deadlocked: nothing is scheduled and no I/O is pending")
            return ready
        self.advance += timeout
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` only moves when every task is waiting on a timer."""

    def __init__(self, start: float = 0.0, deadlock_after_s: float = 30.0) -> None:
        self._vselector = _VirtualSelector(selectors.DefaultSelector(), deadlock_after_s)
        self._start = start
        super().__init__(self._vselector)

    def time(self) -> float:
        return self._start + self._vselector.advance


async def _settle(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def run_virtual(coro: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run `coro` to completion on a fresh virtual-time loop; fails if any task is left behind."""
    loop = VirtualTimeLoop(start)
    try:
        result = loop.run_until_complete(coro)
        # asyncio finalizes abandoned async generators (httpx's, on an error path) in tasks of its own
        gc_finalizers = [t for t in asyncio.all_tasks(loop) if "async_generator_" in repr(t.get_coro())]
        loop.run_until_complete(_settle(gc_finalizers))
        leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if leftover:
            for task in leftover:
                task.cancel()
            loop.run_until_complete(_settle(leftover))
            raise RuntimeError(f"{len(leftover)} task(s) outlived the run: {leftover}")
        loop.run_until_complete(loop.shutdown_asyncgens())
        return result
    finally:
        loop.close()
