"""The agent against the real embedded vLLM (CPU build, packaged SmolLM2-135M-Instruct)."""

import asyncio
import re

import pytest

from agent.events import ToolCallEvent, TraceEvent, TurnStatus
from agent.llm import Generation, OpenAICompatibleLLM
from agent.prompt import action_regex, system_prompt
from agent.protocol import FinalUpdate, format_element
from agent.tools import ToolBox
from agent.worker import AgentConfig, AgentSession
from configs.settings import Settings
from evals.agent_bench import PROMPTS, step_validity
from evals.simulated_user import SimulatedUser
from tests.support import DEMO

pytestmark = pytest.mark.vllm


def test_speculative_turn_with_interruptions_and_a_call_on_partial_input(vllm_url, model_name):
    async def main():
        llm = OpenAICompatibleLLM(vllm_url, model_name, timeout_s=60)
        config = AgentConfig(mode="speculative", prompt=Settings().agent_config().prompt)  # as the served model wants
        session = AgentSession(llm, ToolBox(DEMO, latency_s=(0.5, 0.5)), config)
        turn = session.new_turn()
        speculative_start, streaming = asyncio.Event(), asyncio.Event()

        async def watch():
            async for event in turn.events():
                if isinstance(event, TraceEvent) and event.source == "model":
                    streaming.set()
                if isinstance(event, ToolCallEvent) and event.event == "started" and event.speculative:
                    speculative_start.set()
                    streaming.clear()

        async def hesitate():
            # The user pauses mid-request; the agent works on what it has heard until a lookup starts. The
            # user ends the request as the model's next step streams, so the final update cuts that step
            # (a restart) on a machine of any speed: on a fast one every step used to end before it.
            await asyncio.wait_for(speculative_start.wait(), timeout=90)
            await asyncio.wait_for(streaming.wait(), timeout=90)

        async def speak():
            await SimulatedUser(wpm=150, endpoint_delay_s=0.0).speak(
                # (a word after the city: a model trained with the lookahead waits for one)
                "what is the weather in Paris today", turn.push, turn.ledger,
                final_text="what is the weather in Paris today please", hesitate=hesitate)

        async with asyncio.timeout(300):
            async with asyncio.TaskGroup() as tg:
                tg.create_task(watch())
                tg.create_task(speak())
                done = await turn.run()
        await llm.aclose()
        return done

    done = asyncio.run(main())
    assert done.status in (TurnStatus.COMPLETED, TurnStatus.FALLBACK)
    assert done.answer.strip()
    derived = done.ledger["derived"]
    assert derived["restarts"] >= 1  # at least one generation was interrupted and resumed
    assert derived["speculative_executed"] >= 1
    started = [m for m in done.ledger["marks"] if m["kind"] == "tool_call" and m["event"] == "started"]
    final_at = next(m["t"] for m in done.ledger["marks"] if m["kind"] == "final_transcript")
    assert started[0]["t"] < final_at and started[0]["safe"]


def test_constrained_decoding_gives_only_valid_actions(vllm_url, model_name):
    tools = DEMO.tools
    system, regex = system_prompt(tools, DEMO.example, Settings().agent_config().prompt), action_regex(tools)
    box = ToolBox(DEMO)

    async def main():
        llm = OpenAICompatibleLLM(vllm_url, model_name, timeout_s=120)
        results = []
        for prompt in PROMPTS:
            chunks: list[str] = []
            gen = Generation(system, format_element(FinalUpdate(prompt)), regex, max_tokens=1024)
            await llm.generate(gen, chunks.append)
            results.append("".join(chunks))
        await llm.aclose()
        return results

    outputs = asyncio.run(main())
    valid = 0
    for prompt, text in zip(PROMPTS, outputs, strict=True):
        assert re.fullmatch(regex, text), (prompt, text)
        valid += step_validity(text, box)
    print(f"valid actions under constrained decoding: {valid}/{len(PROMPTS)}")
    assert valid == len(PROMPTS)
