"""Prometheus metrics and the recent-turn store, one set per app (tests build many apps)."""

from __future__ import annotations

from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)
STAGES = ("endpoint_to_final", "final_to_first_token", "final_to_answer", "answer_to_first_audio", "turn_duration")


class Metrics:
    def __init__(self, turns_kept: int = 100) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("specvoice_sessions", "open Realtime sessions", registry=r)
        self.sessions_total = Counter("specvoice_sessions_opened", "Realtime sessions opened", registry=r)
        self.rejected = Counter("specvoice_sessions_rejected_total", "connections refused", ["reason"], registry=r)
        self.errors = Counter("specvoice_client_errors_total", "error events sent to clients", ["code"], registry=r)
        self.turns = Counter("specvoice_turns_total", "finished turns", ["status"], registry=r)
        self.response_latency = Histogram("specvoice_response_latency_seconds",
                                          "end of speech to first audio sent (voice), final text to first "
                                          "answer text (text)", buckets=BUCKETS, registry=r)
        self.stage = Histogram("specvoice_stage_seconds", "per-stage latency from the turn ledger", ["stage"],
                               buckets=BUCKETS, registry=r)
        self.speculative = Counter("specvoice_speculative_calls_total", "speculative tool calls",
                                   ["outcome"], registry=r)
        self.tokens_discarded = Counter("specvoice_tokens_discarded_total",
                                        "generated tokens thrown away by interruptions", registry=r)
        self.recent: deque[dict[str, Any]] = deque(maxlen=turns_kept)

    def record_turn(self, ledger: dict[str, Any], status: str) -> None:
        self.recent.append({**ledger, "status": status})
        self.turns.labels(status).inc()
        d = ledger.get("derived", {})
        if d.get("response_latency") is not None:
            self.response_latency.observe(d["response_latency"])
        for stage in STAGES:
            if d.get(stage) is not None:
                self.stage.labels(stage).observe(d[stage])
        for outcome in ("issued", "executed", "used", "wasted"):
            self.speculative.labels(outcome).inc(d.get(f"speculative_{outcome}") or 0)
        self.tokens_discarded.inc(d.get("tokens_discarded") or 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
