"""Agent runtime benchmarks (numbers, not assertions).

    python -m evals.agent_bench scheduler        # injected update -> next LLM request, zero-latency fake LLM
    python -m evals.agent_bench prefix-cache     # resumed vs fresh first-token time on the embedded vLLM
    python -m evals.agent_bench valid-actions    # valid first steps, constrained vs not, on 20 prompts

The last two start the embedded vLLM unless `--llm-url` names a running OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

from agent.embedded import SERVED_NAME, EmbeddedLLM
from agent.events import TranscriptUpdate
from agent.llm import Generation, OpenAICompatibleLLM
from agent.prompt import action_regex, system_prompt
from agent.protocol import (
    INTERRUPTED,
    SEP,
    ActionParser,
    FinalUpdate,
    Parsed,
    ParseError,
    PartialUpdate,
    Think,
    ToolCall,
    format_element,
)
from agent.tools import ToolBox, load_catalog
from agent.worker import AgentConfig, AgentSession
from configs.settings import Settings
from evals.fake_llm import ASGIStreamTransport, Recorded, Reply, ScriptedLLM, serve_loopback
from evals.stats import percentile

DEMO = load_catalog("configs.catalogs.demo")

# Varied requests for the demo catalog (not tuned to; used to measure the rate of valid actions).
PROMPTS = [
    "what is the weather in Paris",
    "text John that I am running late",
    "set a timer for ten minutes",
    "what's on my calendar on December first",
    "what is Mary's phone number",
    "send Alice a message saying happy birthday",
    "is it raining in London",
    "create an event called lunch with Bob tomorrow at noon",
    "remind me in five minutes to check the oven",
    "what is the temperature in Tokyo right now",
    "email Priya the meeting notes",
    "look up Bob's email address",
    "how is the weather in Berlin and in New York",
    "put a dentist appointment on the calendar for Friday at three",
    "tell Mary I will call her back",
    "start a twenty minute timer for the pasta",
    "do I have anything scheduled on the second of December",
    "what's the forecast for San Francisco",
    "hello, how are you today",
    "message John the address of the restaurant",
]



def step_validity(text: str, box: ToolBox) -> bool:
    """One step is valid if it parses as a think plus one action naming a real tool and its arguments."""
    parser = ActionParser()
    events = parser.feed(text) + parser.finish()
    if any(isinstance(e, ParseError) for e in events):
        return False
    elements = [e.element for e in events if isinstance(e, Parsed)]
    if len(elements) != 2 or not isinstance(elements[0], Think):
        return False
    action = elements[1]
    if isinstance(action, ToolCall):
        found = box.get(action.name)
        return found is not None and set(action.arguments) <= set(found.args.model_fields)
    return True


async def valid_actions(url: str, model: str) -> dict[str, int]:
    llm = OpenAICompatibleLLM(url, model, timeout_s=120)
    system, regex, box = system_prompt(DEMO.tools, DEMO.example), action_regex(DEMO.tools), ToolBox(DEMO)
    counts = {"constrained": 0, "unconstrained": 0}
    for prompt in PROMPTS:
        for kind in counts:
            chunks: list[str] = []
            gen = Generation(system, format_element(FinalUpdate(prompt)), regex if kind == "constrained" else None,
                             max_tokens=1024 if kind == "constrained" else 160)
            await llm.generate(gen, chunks.append)
            counts[kind] += step_validity("".join(chunks), box)
    await llm.aclose()
    return counts


async def scheduler_overhead(updates: int, transport: str) -> list[float]:
    """Push partial updates into a streaming generation; time each until the next request arrives."""
    arrivals: asyncio.Queue[float] = asyncio.Queue()

    def script(rec: Recorded) -> Reply:
        arrivals.put_nowait(time.perf_counter())
        return Reply("<think>" + "still thinking " * 400, chunk_s=0.002)  # a generation that never ends

    fake = ScriptedLLM(script)
    async with contextlib.AsyncExitStack() as stack:
        if transport == "inprocess":
            llm = OpenAICompatibleLLM("http://fake/v1", "fake", transport=ASGIStreamTransport(fake))
        else:
            url = await stack.enter_async_context(serve_loopback(fake))
            llm = OpenAICompatibleLLM(url, "fake")
        stack.push_async_callback(llm.aclose)
        session = AgentSession(llm, ToolBox(DEMO), AgentConfig(history_chars=0))
        samples: list[float] = []
        words: list[str] = []
        turn = session.new_turn()
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(turn.run())
            for i in range(updates + 1):
                words.append(f"word{i}")
                sent = time.perf_counter()
                turn.push(TranscriptUpdate(" ".join(words)))
                arrived = await arrivals.get()
                if i:  # the first request has no generation to interrupt
                    samples.append(arrived - sent)
                await asyncio.sleep(0.01)  # let a few chunks stream before the next word
            turn.cancel()
            await runner
    return samples


async def ttft(llm: OpenAICompatibleLLM, gen: Generation, stop_after: int | None = None
               ) -> tuple[float, str, float]:
    """First-token time of one generation, its text (cut after `stop_after` chunks), and how long
    closing the stream took."""
    first: list[float] = []
    chunks: list[str] = []
    done = asyncio.Event()

    def on_text(text: str) -> None:
        if not first:
            first.append(time.perf_counter())
        chunks.append(text)
        if stop_after is not None and len(chunks) >= stop_after:
            done.set()

    start = time.perf_counter()
    task = asyncio.create_task(llm.generate(gen, on_text))
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    closing = time.perf_counter()
    for t in (task, waiter):
        t.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    return first[0] - start, "".join(chunks), time.perf_counter() - closing


async def prefix_cache(url: str, model: str, rounds: int) -> dict[str, list[float]]:
    llm = OpenAICompatibleLLM(url, model, timeout_s=120)
    system = system_prompt(DEMO.tools, DEMO.example)
    regex = action_regex(DEMO.tools)
    history = "".join(format_element(PartialUpdate(w)) for w in "please check the weather in Paris".split())
    out: dict[str, list[float]] = {"fresh": [], "resumed": [], "interruption": []}
    for _ in range(rounds):
        salt = f"(session {uuid.uuid4().hex})\n"  # a new prefix that no cache holds
        # The generation that gets interrupted: it also fills the prefix cache with the trace.
        _, partial, close_s = await ttft(llm, Generation(salt + system, history, regex), stop_after=6)
        injected = history + partial + INTERRUPTED + SEP + format_element(PartialUpdate("and in Rome"))
        first, _, _ = await ttft(llm, Generation(salt + system, injected, regex), stop_after=1)
        out["interruption"].append(close_s + first)  # stop the stream, then wait for the resumed token
        out["resumed"].append(first)
        # The same trace with a prefix the cache has never seen.
        other = f"(session {uuid.uuid4().hex})\n"
        fresh, _, _ = await ttft(llm, Generation(other + system, injected, regex), stop_after=1)
        out["fresh"].append(fresh)
    await llm.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evals.agent_bench")
    sub = parser.add_subparsers(dest="what", required=True)
    sched = sub.add_parser("scheduler")
    sched.add_argument("--updates", type=int, default=300)
    cache = sub.add_parser("prefix-cache")
    cache.add_argument("--rounds", type=int, default=8)
    cache.add_argument("--llm-url")
    cache.add_argument("--model", default=SERVED_NAME)
    valid = sub.add_parser("valid-actions")
    valid.add_argument("--llm-url")
    valid.add_argument("--model", default=SERVED_NAME)
    args = parser.parse_args()
    if args.what == "scheduler":
        for transport in ("inprocess", "loopback"):
            samples = asyncio.run(scheduler_overhead(args.updates, transport))
            ms = [s * 1000 for s in samples]
            print(f"scheduler overhead ({transport}, {len(ms)} updates): update -> next LLM request "
                  f"p50 {percentile(ms, 50):.2f} ms, p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms")
        return
    with contextlib.ExitStack() as stack:
        url = args.llm_url or stack.enter_context(EmbeddedLLM(Settings().embedded))
        if args.what == "valid-actions":
            counts = asyncio.run(valid_actions(url, args.model))
            for kind, n in counts.items():
                print(f"valid first steps, {kind} decoding: {n}/{len(PROMPTS)}")
            return
        result = asyncio.run(prefix_cache(url, args.model, args.rounds))
    fresh, resumed = statistics.median(result["fresh"]), statistics.median(result["resumed"])
    print(f"first token, fresh trace:   median {fresh * 1000:.0f} ms over {len(result['fresh'])} rounds")
    print(f"first token, resumed trace: median {resumed * 1000:.0f} ms (prefix cache hit)")
    print(f"resume speed-up: {fresh / resumed:.2f}x; an interruption costs about "
          f"{statistics.median(result['interruption']) * 1000:.0f} ms to the next token")


if __name__ == "__main__":
    main()
