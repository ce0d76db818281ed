"""`specvoice chat` end to end against the scripted LLM served on loopback (real HTTP, real time)."""

import asyncio
import io

from agent.protocol import Answer, Pause, ToolCall
from configs.settings import Settings
from evals.fake_llm import Recorded, Reply, ScriptedLLM, serve_loopback
from server.chat import run_chat
from server.cli import build_parser
from tests.support import step


def policy(rec: Recorded) -> Reply:
    if "<final_query_update>" not in rec.prefix:
        if "<tool_call>" not in rec.prefix and "Paris" in rec.prefix:
            return Reply(step("weather", ToolCall(1, "get_weather", {"city": "Paris"})))
        return Reply(step("listening", Pause()))
    if "<tool_result" not in rec.prefix:
        return Reply(step("wait", Pause()))
    return Reply(step("say it", Answer("It is 14 degrees in Paris.")))


def test_chat_speaks_a_turn_and_shows_trace_tools_and_ledger():
    fake = ScriptedLLM(policy)
    out = io.StringIO()

    async def main():
        async with serve_loopback(fake) as url:
            settings = Settings(llm={"base_url": url, "model": "scripted"},
                                agent={"tool_latency_s": (0.05, 0.05)})
            async with asyncio.timeout(30):
                return await run_chat(settings, ["what is the weather in Paris"], wpm=1200.0,
                                      endpoint_delay_s=0.2, out=out)

    assert asyncio.run(main()) == 0
    text = out.getvalue()
    assert "<partial_query_update>what</partial_query_update>" in text
    assert "call 1 get_weather" in text and "started speculative" in text
    assert "answer (completed): It is 14 degrees in Paris." in text
    assert "ledger turn_1: response" in text and "speculative calls issued 1 / used 1 / wasted 0" in text


def test_cli_parses_chat_options():
    args = build_parser().parse_args(["--config", "gpu-qwen", "chat", "--say", "hi", "--mode", "async"])
    assert args.say == ["hi"] and args.mode == "async" and args.config == "gpu-qwen"
