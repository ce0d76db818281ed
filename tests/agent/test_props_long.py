"""Random interleavings of user updates, model actions and tool completions keep the invariants."""

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.clock import run_virtual
from agent.ledger import FINAL, TOOL
from agent.protocol import Answer, Pause, Remove, ToolCall
from agent.worker import MODES
from evals.fake_llm import Recorded, Reply
from tests.support import final, harness, partial, step

ARGS = {
    "lookup_contact": {"name": "John"},
    "get_weather": {"city": "Paris"},
    "read_calendar": {"date": "2026-12-01"},
    "send_message": {"to": "$1.phone", "text": "hello"},
    "create_event": {"title": "Lunch", "date": "2026-12-03", "time": "12:00"},
    "set_timer": {"minutes": 3},
}

actions = st.one_of(
    st.builds(lambda i, n: ToolCall(i, n, ARGS[n]), st.integers(1, 4), st.sampled_from(sorted(ARGS))),
    st.builds(Remove, st.integers(1, 4)),
    st.just(Pause()),
    st.just(Answer("Done.")),
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    words=st.integers(1, 6),
    gaps=st.lists(st.floats(0.0, 0.6), min_size=6, max_size=6),
    steps=st.lists(st.tuples(actions, st.floats(0.0, 0.05)), max_size=10),
    latency=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.5)),
)
def test_invariants_hold_under_random_interleavings(mode, words, gaps, steps, latency):
    script = list(steps)

    def policy(rec: Recorded) -> Reply:
        if script:
            action, chunk_s = script.pop(0)
            return Reply(step("step", action), chunk_s=chunk_s)
        if "<final_query_update>" in rec.prefix:
            return Reply(step("end", Answer("Done.")))
        return Reply(step("wait", Pause()))

    lo, hi = sorted(latency)
    h = harness(policy, mode=mode, latency=(lo, hi))
    text = " ".join(["text", "John", "and", "check", "the", "weather"][:words])
    timeline, t = [], 0.0
    for i in range(1, words + 1):
        t += gaps[i - 1]
        timeline.append((t, partial(" ".join(text.split()[:i]))))
    timeline.append((t + 0.5, final(text)))

    async def bounded():
        async with asyncio.timeout(1000):  # virtual seconds: a hang fails instead of blocking
            return await h.turn(timeline)

    done = run_virtual(bounded())  # also fails if any task outlives the turn
    marks = done.ledger["marks"]
    final_at = next(m["t"] for m in marks if m["kind"] == FINAL)
    calls: dict[tuple[int, int], dict[str, float]] = {}
    for m in marks:
        if m["kind"] == TOOL:
            calls.setdefault((m["call_id"], m["version"]), {"safe": m["safe"]})[m["event"]] = m["t"]
    for key, ev in calls.items():
        if "started" in ev:
            assert any(k in ev for k in ("completed", "failed", "cancelled")), key
            if not ev["safe"] or mode != "speculative":
                assert "committed" in ev and final_at <= ev["committed"] <= ev["started"], key
    state = h.session.toolbox.state
    effects = len(state.sent) + len(state.timers) + len(state.calendar) - 2
    completed_unsafe = sum(1 for ev in calls.values() if not ev["safe"] and "completed" in ev)
    assert effects >= completed_unsafe
