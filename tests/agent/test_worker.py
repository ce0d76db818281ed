"""The worker on the scripted LLM and virtual time: interruption, injection, speculation, errors."""

import asyncio
import itertools
import json

import pytest
from pydantic import BaseModel

from agent.clock import run_virtual
from agent.events import AnswerDelta, CallState, TurnDone, TurnStatus
from agent.ledger import FINAL, TOOL
from agent.llm import OpenAICompatibleLLM
from agent.protocol import INTERRUPTED, Answer, Pause, Remove, ToolCall
from agent.tools import Catalog, ToolBox, ToolContext, tool
from agent.worker import AgentConfig, AgentSession, Turn
from evals.fake_llm import Recorded, Reply
from tests.support import DEMO, Harness, final, harness, partial, step


def last_block(rec: Recorded) -> str:
    """The tag of the last element in the prefix: what the model reacts to."""
    body = rec.prefix.rstrip()
    return body[body.rfind("<") :]


def test_partial_update_interrupts_and_resumes_with_marker():
    def policy(rec: Recorded) -> Reply:
        if len(h.requests) == 1:
            return Reply(step("the user is greeting me and may ask something", Pause()), chunk_s=0.1)
        if "<final_query_update>" in rec.prefix:
            return Reply(step("greet", Answer("Hello!")))
        return Reply(step("wait for more", Pause()))

    h = harness(policy, partial_updates="interrupt")
    done = run_virtual(h.turn([(0, partial("hello")), (0.55, partial("hello there")), (1.0, final("hello there"))]))
    assert done.status == TurnStatus.COMPLETED and done.answer == "Hello!"
    first, second = h.requests[0], h.requests[1]
    assert first.aborted and not first.finished
    assert second.prefix.startswith("<partial_query_update>hello</partial_query_update>\n<think>the user")
    assert second.prefix.endswith(INTERRUPTED + "\n<partial_query_update>there</partial_query_update>\n")
    assert second.body["continue_final_message"] is True and second.body["add_generation_prompt"] is False
    assert second.body["messages"][-1]["role"] == "assistant"
    assert "structured_outputs" in second.body
    derived = done.ledger["derived"]
    assert derived["restarts"] == 1 and derived["tokens_discarded"] == 0  # the think was kept


def test_tool_result_is_injected_mid_generation():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("weather in paris", ToolCall(1, "get_weather", {"city": "Paris"})))
        if "<final_query_update>" in rec.prefix and "<tool_result" in rec.prefix:
            return Reply(step("have it", Answer("Fourteen degrees and light rain.")))
        if last_block(rec).startswith("</tool_call>"):
            return Reply(step("while that runs I will think about it at length " * 3, Pause()), chunk_s=0.05)
        return Reply(step("wait", Pause()))

    h = harness(policy, latency=(0.4, 0.4))
    timeline = [(0, partial("what is the weather in Paris")), (2.0, final("what is the weather in Paris"))]
    done = run_virtual(h.turn(timeline))
    assert done.status == TurnStatus.COMPLETED
    interrupted = [r for r in h.requests if r.aborted]
    assert interrupted, "the long think should have been interrupted by the tool result"
    after = h.requests[h.requests.index(interrupted[0]) + 1]
    assert INTERRUPTED + '\n<tool_result id="1">{"city": "Paris", "temperature_c": 14' in after.prefix
    started = h.tool_events("started")[0]
    assert started[0] < 2.0 and started[1].speculative  # ran on partial input
    assert done.ledger["derived"]["speculative_used"] == 1
    assert done.ledger["derived"]["speculative_wasted"] == 0


def john_no_mary(rec: Recorded) -> Reply:
    """Looks up John on partial words, revises call 1 to Mary when the user corrects, then answers."""
    if "<tool_call>" not in rec.prefix:
        return Reply(step("text john", ToolCall(1, "lookup_contact", {"name": "John"})))
    if "no, Mary" in rec.prefix and '"Mary"' not in rec.prefix:
        return Reply(step("mary, not john", ToolCall(1, "lookup_contact", {"name": "Mary"})))
    if "<final_query_update>" in rec.prefix and "<tool_result" in rec.prefix:
        return Reply(step("got it", Answer("Mary's number is +1 212 555 0178.")))
    return Reply(step("wait", Pause()))


def test_revising_an_id_cancels_the_running_call_and_drops_its_result():
    h = harness(john_no_mary, latency=(1.0, 1.0))
    timeline = [(0, partial("what is John's")), (0.5, partial("what is John's no, Mary's number")),
                (0.9, final("what is John's no, Mary's number"))]
    done = run_virtual(h.turn(timeline))
    assert done.status == TurnStatus.COMPLETED
    events = [(e.event, e.arguments["name"]) for _, e in h.tool_events() if e.call_id == 1]
    assert ("started", "John") in events and ("cancelled", "John") in events
    assert ("revised", "Mary") in events and ("completed", "Mary") in events
    assert all("John Smith" not in r.prefix for r in h.requests)  # the stale result never reached the model
    assert done.ledger["derived"]["speculative_wasted"] == 1


def test_remove_cascades_to_dependents():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("find john", ToolCall(1, "lookup_contact", {"name": "John"})))
        if '"id": 2' not in rec.prefix:
            return Reply(step("text him", ToolCall(2, "send_message", {"to": "$1.phone", "text": "hi"})))
        if "REMOVE" not in rec.prefix and "never mind" in rec.prefix:
            return Reply(step("withdraw", Remove(1)))
        if "<final_query_update>" in rec.prefix:
            return Reply(step("ok", Answer("Okay, I will not.")))
        return Reply(step("wait", Pause()))

    h = harness(policy, latency=(2.0, 2.0))
    timeline = [(0, partial("text John hi")), (0.5, partial("text John hi never mind")),
                (1.0, final("text John hi never mind"))]
    done = run_virtual(h.turn(timeline))
    assert done.status == TurnStatus.COMPLETED
    cancelled = sorted(e.call_id for _, e in h.tool_events("cancelled"))
    assert cancelled == [1, 2]
    assert any('<tool_cancelled id="2"/>' in r.prefix for r in h.requests)
    assert h.session.toolbox.state.sent == []
    assert not h.tool_events("started") or all(e.call_id == 1 for _, e in h.tool_events("started"))


def test_unsafe_call_is_held_until_the_commit_point():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("send it", ToolCall(1, "send_message", {"to": "+1 415 555 0134", "text": "late"})))
        if "<final_query_update>" in rec.prefix and "<tool_result" not in rec.prefix:
            return Reply(step("commit", Pause()))
        if "<tool_result" in rec.prefix:
            return Reply(step("done", Answer("Sent.")))
        return Reply(step("wait", Pause()))

    h = harness(policy, latency=(0.3, 0.3))
    timeline = [(0, partial("text John I am running late")), (1.0, final("text John I am running late"))]
    done = run_virtual(h.turn(timeline))
    assert done.status == TurnStatus.COMPLETED and done.answer == "Sent."
    (held_at, held), = h.tool_events("held")
    (started_at, _), = h.tool_events("started")
    assert held.speculative and held_at < 1.0
    assert started_at >= 1.0
    assert len(h.session.toolbox.state.sent) == 1


def test_async_mode_holds_even_safe_calls_until_commit():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("weather", ToolCall(1, "get_weather", {"city": "Paris"})))
        if "<tool_result" in rec.prefix:
            return Reply(step("done", Answer("Rainy.")))
        return Reply(step("wait", Pause()))

    h = harness(policy, mode="async", latency=(0.3, 0.3))
    done = run_virtual(h.turn([(0, partial("weather in Paris")), (1.0, final("weather in Paris"))]))
    assert done.status == TurnStatus.COMPLETED
    (started_at, _), = h.tool_events("started")
    assert started_at >= 1.0


def test_sequential_never_overlaps_anything():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("weather first", ToolCall(1, "get_weather", {"city": "Paris"})), chunk_s=0.01)
        if '"id": 2' not in rec.prefix:
            return Reply(step("then john", ToolCall(2, "lookup_contact", {"name": "John"})), chunk_s=0.01)
        return Reply(step("both", Answer("Rainy, and John is +1 415 555 0134.")), chunk_s=0.01)

    h = harness(policy, mode="sequential", latency=(0.5, 0.5))
    text = "weather in Paris and John's number"
    done = run_virtual(h.turn([(0, partial("weather in")), (0.4, partial(text)), (1.0, final(text))]))
    assert done.status == TurnStatus.COMPLETED
    assert all(r.started >= 1.0 for r in h.requests)  # nothing before the final transcript
    assert "<partial_query_update>" not in h.requests[-1].prefix
    tools = {}
    for t, e in h.tool_events():
        tools.setdefault(e.call_id, {})[e.event] = t
    spans = [(v["started"], v["completed"]) for v in tools.values()]
    spans += [(r.started, r.ended) for r in h.requests]
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # every span starts after the previous one ended
    assert done.ledger["derived"]["restarts"] == 0  # nothing was ever interrupted


def test_protocol_errors_get_an_error_block_then_a_fallback_answer():
    def policy(rec: Recorded) -> Reply:
        if not rec.body.get("stream"):
            return Reply("I am not sure, sorry.")
        return Reply("Sure! The weather is nice.")  # not the protocol at all

    h = harness(policy, max_protocol_errors=3)
    done = run_virtual(h.turn([(0, partial("weather")), (0.5, final("weather please"))]))
    assert done.status == TurnStatus.FALLBACK and done.answer == "I am not sure, sorry."
    streamed = [r for r in h.requests if r.body.get("stream")]
    assert streamed[-1].prefix.count("<error>") == 3
    assert h.requests[-1].body["messages"][-1] == {"role": "user", "content": "weather please"}
    # the session stays usable
    h.fake.script = lambda rec: Reply(step("hi", Answer("Hi.")))
    again = run_virtual(h.turn([(0, final("hello"))]))
    assert again.status == TurnStatus.COMPLETED


def test_an_answer_cut_off_while_spoken_ends_the_turn():
    """Found live: an unclosed <answer> after the final left the turn waiting for ever."""
    h = harness(lambda rec: Reply("<think>answer now</think>\n<answer>It is forty"))
    done = run_virtual(h.turn([(0, final("how warm is it"))]))
    assert done.status == TurnStatus.COMPLETED and done.answer == "It is forty"
    assert done.error is not None and "unfinished" in done.error
    assert any(m["kind"] == "protocol_error" for m in done.ledger["marks"])


def test_unknown_tool_and_bad_arguments_are_answered_with_errors():
    def policy(rec: Recorded) -> Reply:
        n = rec.prefix.count("<error>")
        if n == 0:
            return Reply(step("try", ToolCall(1, "launch_rocket", {"to": "mars"})))
        if n == 1:
            return Reply(step("timer", ToolCall(1, "set_timer", {"minutes": "five"})))
        if "<tool_call>" not in rec.prefix.split("</error>")[-1]:
            return Reply(step("timer", ToolCall(1, "set_timer", {"minutes": 5})))
        if "<tool_result" in rec.prefix:
            return Reply(step("ok", Answer("Timer set.")))
        return Reply(step("wait", Pause()))

    h = harness(policy)
    done = run_virtual(h.turn([(0, final("set a timer for five minutes"))]))
    assert done.status == TurnStatus.COMPLETED
    prefix = h.requests[-1].prefix
    assert "unknown tool 'launch_rocket'" in prefix and "minutes: Input should be a valid integer" in prefix
    assert h.session.toolbox.state.timers[0]["minutes"] == 5


class Nothing(BaseModel):
    pass


@tool(safe=True, timeout_s=1.0)
async def slow(args: Nothing, ctx: ToolContext) -> str:
    """Never returns in time."""
    await asyncio.sleep(100)
    return "late"


@tool(safe=True)
async def broken(args: Nothing, ctx: ToolContext) -> str:
    """Raises."""
    raise RuntimeError("bug")


def test_tools_that_raise_or_time_out_report_errors():
    catalog = Catalog("bad", (slow, broken))

    def policy(rec: Recorded) -> Reply:
        if '"id": 1' not in rec.prefix:
            return Reply(step("a", ToolCall(1, "slow", {})))
        if '"id": 2' not in rec.prefix:
            return Reply(step("b", ToolCall(2, "broken", {})))
        if rec.prefix.count("<tool_result") == 2:
            return Reply(step("done", Answer("Both failed.")))
        return Reply(step("wait", Pause()))

    h = harness(policy, catalog=catalog)
    done = run_virtual(h.turn([(0, final("go"))]))
    assert done.status == TurnStatus.COMPLETED
    prefix = h.requests[-1].prefix
    assert '<tool_result id="1">{"error": "slow timed out after 1 s"}' in prefix
    assert '<tool_result id="2">{"error": "broken failed: RuntimeError"}' in prefix
    assert [e.state for _, e in h.tool_events("failed")] == [CallState.FAILED, CallState.FAILED]


def test_llm_errors_are_retried_then_the_turn_fails_and_the_session_survives():
    h = harness([Reply(status=500, text="boom")] * 3, max_llm_retries=2)
    done = run_virtual(h.turn([(0, final("hello"))]))
    assert done.status == TurnStatus.FAILED and "500" in (done.error or "")
    assert done.answer == AgentConfig().unavailable_text
    assert len(h.requests) == 3
    h.fake.script = [Reply(step("x", "<answer>Hel"), drop_after_chunks=3), Reply(step("hi", Answer("Hi.")))]
    again = run_virtual(h.turn([(0, final("hello"))]))
    assert again.status == TurnStatus.COMPLETED and again.answer == "Hi."


def test_unreachable_llm_server_fails_fast_without_hanging():
    async def main():
        llm = OpenAICompatibleLLM("http://127.0.0.1:9/v1", "none", timeout_s=2.0)
        session = AgentSession(llm, ToolBox(DEMO), AgentConfig(max_llm_retries=1, retry_backoff_s=0.01))
        turn = session.new_turn()
        turn.push(final("hello"))
        async with asyncio.timeout(20):
            done = await turn.run()
        await llm.aclose()
        return done

    done = asyncio.run(main())
    assert done.status == TurnStatus.FAILED and "ConnectError" in (done.error or "")


def test_answer_on_partial_input_is_released_when_the_final_matches():
    def policy(rec: Recorded) -> Reply:
        return Reply(step("simple", Answer("It is noon.")))

    h = harness(policy)
    done = run_virtual(h.turn([(0, partial("what time is it")), (1.0, final("What time is it?"))]))
    assert done.status == TurnStatus.COMPLETED and done.answer == "It is noon."
    assert len(h.requests) == 1  # nothing was generated after the final update
    deltas = [t for t, e in h.events if isinstance(e, AnswerDelta)]
    assert min(deltas) >= 1.0  # held until the final update
    assert done.ledger["derived"]["final_to_answer"] == 0.0


def test_answer_on_partial_input_is_dropped_when_the_user_says_more():
    def policy(rec: Recorded) -> Reply:
        if "five" in rec.prefix:
            return Reply(step("timer", Answer("Five minutes it is.")))
        return Reply(step("guess", Answer("How long?")))

    h = harness(policy)
    timeline = [(0, partial("set a timer")), (0.5, partial("set a timer for five")),
                (1.0, final("set a timer for five"))]
    done = run_virtual(h.turn(timeline))
    assert done.answer == "Five minutes it is."
    assert "".join(e.text for _, e in h.events if isinstance(e, AnswerDelta)) == "Five minutes it is."
    assert any(m["kind"] == "answer_dropped" for m in done.ledger["marks"])


def test_pause_after_final_with_nothing_to_wait_for_is_an_error():
    def policy(rec: Recorded) -> Reply:
        if "<error>" in rec.prefix:
            return Reply(step("fine", Answer("Okay.")))
        return Reply(step("wait", Pause()))

    h = harness(policy)
    done = run_virtual(h.turn([(0, final("hi"))]))
    assert done.status == TurnStatus.COMPLETED
    assert "nothing to wait for" in h.requests[-1].prefix


async def cancelled_while_speaking(h: Harness, heard: str) -> tuple[Turn, TurnDone]:
    """A turn that hears `heard` and is cancelled (barge-in) a second later."""
    turn = h.session.new_turn()
    turn.push(partial(heard))
    runner = asyncio.create_task(turn.run())
    await asyncio.sleep(1.0)
    turn.cancel()
    return turn, await runner


def test_cancel_stops_generation_and_speculative_calls():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("look", ToolCall(1, "get_weather", {"city": "Paris"})))
        return Reply(step("thinking for a long long time " * 5, Pause()), chunk_s=0.2)

    h = harness(policy, latency=(5.0, 5.0))
    _, done = run_virtual(cancelled_while_speaking(h, "weather in Paris"))
    assert done.status == TurnStatus.CANCELLED
    assert h.requests[-1].aborted
    ledger_tools = [m for m in done.ledger["marks"] if m["kind"] == TOOL]
    assert ledger_tools[-1]["event"] == "cancelled"


def test_history_carries_previous_turns():
    h = harness(lambda rec: Reply(step("ok", Answer("Noted."))))
    run_virtual(h.turn([(0, final("my name is Ada"))]))
    run_virtual(h.turn([(0, final("what is my name"))]))
    prefix = h.requests[-1].prefix
    assert prefix.index("my name is Ada") < prefix.index("what is my name")
    assert json.loads(json.dumps(h.requests[-1].body))["messages"][0]["role"] == "system"


def test_later_turns_see_a_recap_of_earlier_ones():
    """What was heard, the calls as they finally stood with their results, and the answer; not the
    thinks, pauses, partial updates or the withdrawn guess, which a small model copies into the next turn."""
    def policy(rec: Recorded) -> Reply:
        return Reply(step("done", Answer("You're welcome."))) if "thanks" in rec.prefix else john_no_mary(rec)

    h = harness(policy, latency=(1.0, 1.0))
    said = "what is John's no, Mary's number"
    run_virtual(h.turn([(0, partial("what is John's")), (0.5, partial(said)), (0.9, final(said))]))
    assert "<think>" in h.requests[-1].prefix
    run_virtual(h.turn([(0, final("thanks"))]))
    mary = json.dumps(h.session.toolbox.state.contacts["mary"])
    assert h.requests[-1].prefix == (
        f"<final_query_update>{said}</final_query_update>\n"
        '<tool_call>{"id": 1, "name": "lookup_contact", "arguments": {"name": "Mary"}}</tool_call>\n'
        f'<tool_result id="1">{mary}</tool_result>\n'
        "<answer>Mary's number is +1 212 555 0178.</answer>\n"
        "<final_query_update>thanks</final_query_update>\n")


def test_a_cancelled_turn_is_recapped_with_what_was_heard_and_ran():
    def policy(rec: Recorded) -> Reply:
        if "<tool_call>" not in rec.prefix:
            return Reply(step("weather in paris", ToolCall(1, "get_weather", {"city": "Paris"})))
        return Reply(step("wait", Pause()))

    h = harness(policy, latency=(0.2, 0.2))
    turn, _ = run_virtual(cancelled_while_speaking(h, "weather in Paris and"))
    recap = turn.recap()
    assert recap.startswith("<partial_query_update>weather in Paris and</partial_query_update>\n<tool_call>")
    assert '<tool_result id="1">{"city": "Paris"' in recap and "<answer>" not in recap


def test_final_transcript_marks_the_ledger():
    h = harness(lambda rec: Reply(step("ok", Answer("Yes."))))
    done = run_virtual(h.turn([(0, partial("is it")), (0.7, final("is it on"))]))
    kinds = [m["kind"] for m in done.ledger["marks"]]
    assert kinds.index(FINAL) < kinds.index("answer_start") < kinds.index("turn_end")


def test_turn_end_keeps_committed_calls_and_drops_unread_lookups():
    def policy(rec: Recorded) -> Reply:
        if '"id": 1' not in rec.prefix:
            return Reply(step("find john", ToolCall(1, "lookup_contact", {"name": "John"})))
        if '"id": 2' not in rec.prefix:
            return Reply(step("text him", ToolCall(2, "send_message", {"to": "$1.phone", "text": "hi"})))
        if '"id": 3' not in rec.prefix:
            return Reply(step("weather too", ToolCall(3, "get_weather", {"city": "Paris"})))
        return Reply(step("done", Answer("Texting John now.")))

    h = harness(policy, latency=(1.0, 1.0))
    done = run_virtual(h.turn([(0, final("text John hi"))]))
    assert done.status == TurnStatus.COMPLETED
    last = {e.call_id: e.event for _, e in h.tool_events()}
    assert last == {1: "completed", 2: "completed", 3: "cancelled"}
    assert h.session.toolbox.state.sent[0]["to"] == "+1 415 555 0134"


def test_step_budget_forces_an_answer_only_step():
    def answer_only(rec: Recorded) -> bool:
        return "<tool_call>" not in rec.body["structured_outputs"]["regex"]

    def policy(rec: Recorded) -> Reply:
        if answer_only(rec):
            return Reply(step("enough", Answer("Here is what I found.")))
        n = rec.prefix.count("<tool_call>") + 1
        return Reply(step("more", ToolCall(n, "get_weather", {"city": "Paris"})))

    h = harness(policy, max_steps_after_final=3)
    done = run_virtual(h.turn([(0, final("weather"))]))
    assert done.status == TurnStatus.COMPLETED and done.answer == "Here is what I found."
    forced = [answer_only(r) for r in h.requests]
    assert True in forced and forced.index(True) >= 3 and all(forced[forced.index(True):])


def test_a_step_cut_before_it_wrote_anything_does_not_count_against_the_step_budget():
    # A slow model: each step after a call is cut by that call's result before its first token.
    def policy(rec: Recorded) -> Reply:
        n = rec.prefix.count("<tool_call>")
        if n < 3:
            return Reply(step("next", ToolCall(n + 1, "get_weather", {"city": "Paris"})), first_token_s=0.5)
        if rec.prefix.count("<tool_result") < 3:
            return Reply(step("waiting", Pause()), first_token_s=0.5)
        return Reply(step("done", Answer("Fourteen degrees, three times.")), first_token_s=0.5)

    h = harness(policy, latency=(0.1, 0.1), constrained=False, max_steps_after_final=4)
    done = run_virtual(h.turn([(0, final("weather in Paris three times"))]))
    assert done.status == TurnStatus.COMPLETED and done.answer == "Fourteen degrees, three times."
    cut = [r for r in h.requests if r.aborted]
    assert len(cut) >= 2 and len(h.requests) > 4  # more requests than the budget, yet no fallback


def test_after_the_final_update_with_nothing_pending_the_model_cannot_pause():
    def policy(rec: Recorded) -> Reply:
        if "<tool_result" in rec.prefix:
            return Reply(step("have it", Answer("Fourteen degrees.")))
        if "<final_query_update>" in rec.prefix and "<tool_call>" not in rec.prefix:
            return Reply(step("look", ToolCall(1, "get_weather", {"city": "Paris"})))
        return Reply(step("waiting", Pause()))

    h = harness(policy, latency=(0.5, 0.5))
    done = run_virtual(h.turn([(0, partial("weather in")), (1.0, final("weather in Paris"))]))
    assert done.answer == "Fourteen degrees."
    regexes = [r.body["structured_outputs"]["regex"] for r in h.requests]
    assert "<pause/>" in regexes[0]  # a partial: waiting for more words is fine
    first_after_final = next(i for i, r in enumerate(h.requests) if "<final_query_update>" in r.prefix)
    assert "<pause/>" not in regexes[first_after_final] and "<tool_call>" in regexes[first_after_final]
    assert "<pause/>" in regexes[first_after_final + 1]  # the call is running: waiting for it is fine


def test_rejected_request_goes_straight_to_the_plain_fallback():
    def policy(rec: Recorded) -> Reply:
        if rec.body.get("stream"):
            return Reply(status=400, text="maximum context length exceeded")
        return Reply("A short answer.")

    h = harness(policy)
    done = run_virtual(h.turn([(0, final("hello"))]))
    assert done.status == TurnStatus.FALLBACK and done.answer == "A short answer."
    assert "400" in (done.error or "")
    assert sum(1 for r in h.requests if r.body.get("stream")) == 1  # no retry of a request that cannot work


def test_a_stalled_llm_server_times_out_and_the_turn_ends():
    h = harness([Reply(step("x", Answer("late")), first_token_s=1000)] * 3, max_llm_retries=2)
    done = run_virtual(h.turn([(0, final("hello"))]))
    assert done.status == TurnStatus.FAILED and "sent nothing for 30 s" in (done.error or "")
    assert all(r.aborted for r in h.requests)


def test_partial_updates_send_new_words_and_rewrites_in_full():
    h = harness(lambda rec: Reply(step("wait", Pause())) if "<final" not in rec.prefix
                else Reply(step("ok", Answer("Okay."))))
    timeline = [(0, partial("call")), (1, partial("call John")), (2, partial("text Joan")), (3, final("text Joan"))]
    run_virtual(h.turn(timeline))
    prefix = h.requests[-1].prefix
    blocks = [b for b in prefix.split("\n") if b.startswith("<partial_query_update>")]
    assert blocks == ["<partial_query_update>call</partial_query_update>",
                      "<partial_query_update>John</partial_query_update>",
                      "<partial_query_update>text Joan</partial_query_update>"]


def test_the_model_reads_spoken_dates_and_counts_as_digits():
    """"the twenty fifth of April" reaches the model as "the 25th of April" (as faster-whisper writes
    it), partial and final; a partial that stops inside the number is restated once it is complete."""
    h = harness(lambda rec: Reply(step("wait", Pause())) if "<final" not in rec.prefix
                else Reply(step("ok", Answer("Okay."))))
    timeline = [(0, partial("am I free on the twenty")), (1, partial("am I free on the twenty fifth of April")),
                (2, final("am I free on the twenty fifth of April, ten minutes"))]
    run_virtual(h.turn(timeline))
    blocks = [b for b in h.requests[-1].prefix.split("\n") if "query_update>" in b]
    assert blocks == ["<partial_query_update>am I free on the twenty</partial_query_update>",
                      "<partial_query_update>am I free on the 25th of April</partial_query_update>",
                      "<final_query_update>am I free on the 25th of April, 10 minutes</final_query_update>"]


def test_openai_backend_sends_the_trace_as_a_user_message_without_constraints():
    h = harness(lambda rec: Reply(step("ok", Answer("Hi."))))
    h.session.llm.backend = "openai"  # type: ignore[attr-defined]
    done = run_virtual(h.turn([(0, final("hello"))]))
    assert done.status == TurnStatus.COMPLETED
    body = h.requests[0].body
    assert "continue_final_message" not in body and "structured_outputs" not in body
    assert body["messages"][-1]["role"] == "user" and "<final_query_update>hello" in body["messages"][-1]["content"]


def test_at_boundary_words_wait_for_the_running_step_and_arrive_together():
    def policy(rec: Recorded) -> Reply:
        if "<final_query_update>" in rec.prefix:
            return Reply(step("done", Answer("Hi!")))
        return Reply(step("the user is still talking " * 3, Pause()), first_token_s=0.5, chunk_s=0.05)

    h = harness(policy, partial_updates="at_boundary")
    timeline = [(0, partial("hello")), (0.4, partial("hello there")), (0.8, partial("hello there my")),
                (1.2, partial("hello there my friend")), (6.0, final("hello there my friend"))]
    done = run_virtual(h.turn(timeline))
    assert done.answer == "Hi!" and done.ledger["derived"]["restarts"] == 0
    assert INTERRUPTED not in h.requests[1].prefix  # the first step was not cut
    assert h.requests[1].prefix.endswith("<pause/>\n<partial_query_update>there my friend</partial_query_update>\n")


def test_a_final_update_lets_a_call_being_written_finish_and_cuts_a_think():
    """Cutting a step that is writing a call would throw the call away; the final waits for the step's
    end, and the write still waits for the model's next action. A step still thinking is cut at once."""
    send = ToolCall(1, "send_message", {"to": "+1 555", "text": "late"})

    def policy(rec: Recorded) -> Reply:
        if "<final_query_update>" not in rec.prefix:
            return Reply(step("text", send), first_token_s=0.2, chunk_s=0.05)
        if "<tool_result" in rec.prefix:
            return Reply(step("sent", Answer("Sent.")))
        return Reply(step("wait", Pause()), first_token_s=0.3)

    h = harness(policy, partial_updates="at_boundary")
    done = run_virtual(h.turn([(0, partial("text +1 555 late")), (0.7, final("text +1 555 late"))]))
    assert done.answer == "Sent." and done.ledger["derived"]["restarts"] == 0
    assert not h.requests[0].aborted
    assert h.requests[1].prefix.endswith("</tool_call>\n<final_query_update>text +1 555 late</final_query_update>\n")
    started = done.ledger["t0"] + next(m["t"] for m in done.ledger["marks"]
                                       if m["kind"] == TOOL and m["event"] == "started")
    assert started > h.requests[1].started + 0.29  # committed by the step that saw the final
    assert len(h.session.toolbox.state.sent) == 1

    def slow(rec: Recorded) -> Reply:
        if "<final_query_update>" in rec.prefix:
            return Reply(step("greet", Answer("Hi!")))
        return Reply(step("the user is still talking", Pause()), first_token_s=1.0, chunk_s=0.1)

    h = harness(slow, partial_updates="at_boundary")
    done = run_virtual(h.turn([(0, partial("hello")), (0.5, final("hello"))]))
    assert done.answer == "Hi!" and h.requests[0].aborted and h.requests[1].started == pytest.approx(0.5)
