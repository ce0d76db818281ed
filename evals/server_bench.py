"""End-to-end voice latency through the full server (numbers, not assertions).

    python -m evals.server_bench [--turns 20] [--url ws://host:port/v1/realtime] [--json out.json]

Without `--url` the server runs in-process with the configured settings (the embedded vLLM by
default). Each turn, piper speaks a short request that needs no tool; the client streams it at real
time over the Realtime WebSocket, as a microphone would, and keeps sending silence. Measured on the
client: end of speech (the last speech sample sent) to the first answer audio received. The server's
ledger (`x.turn.latency`) splits it: VAD endpoint (end of speech to speech-stopped, measured on the
client), final transcript after speech-stopped, final transcript to answer start (LLM), answer start
to first audio sent (TTS and the first sentence's tokens). After the first audio the client cancels the
response (it has what it measures) and the next turn starts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import websockets

from configs.settings import Settings
from evals.stats import percentile
from speech.audio import WIRE_RATE, chunks
from speech.tts import TTS

REQUESTS = [
    "Hello there, how are you today?",
    "Can you tell me a fun fact?",
    "What can you help me with?",
    "Thank you very much.",
    "Good morning!",
    "Tell me something nice.",
    "What is your name?",
    "How do I make a cup of tea?",
    "What is two plus two?",
    "Say something funny.",
]
CHUNK_MS = 20


@contextlib.asynccontextmanager
async def server(url: str | None, settings: Settings) -> AsyncIterator[str]:
    if url:
        yield url
        return
    from evals.fake_llm import serve_loopback
    from server.app import create_app

    async with serve_loopback(create_app(settings), lifespan="on") as base:
        yield base.replace("http", "ws") + "/realtime"


async def run(url: str | None, turns: int, settings: Settings) -> list[dict[str, Any]]:
    tts = TTS(deterministic=True)
    spoken = [tts.synthesize(text) for text in REQUESTS]
    silence = bytes(WIRE_RATE * 2 * CHUNK_MS // 1000)
    results: list[dict[str, Any]] = []
    async with server(url, settings) as ws_url, websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"x_events": True}}))
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

        async def receive() -> None:
            async for raw in ws:
                await events.put((time.perf_counter(), json.loads(raw)))

        async def stream(audio: bytes, seconds: float | None = None) -> None:
            """Send audio (then silence) at real time, like a microphone."""
            t0 = loop.time()
            pieces = list(chunks(audio, WIRE_RATE, CHUNK_MS))
            n = len(pieces) if seconds is None else int(seconds * 1000 / CHUNK_MS)
            for i in range(n):
                await asyncio.sleep(max(0.0, t0 + i * CHUNK_MS / 1000 - loop.time()))
                piece = pieces[i] if i < len(pieces) else silence
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(piece).decode()}))

        receiver = asyncio.create_task(receive())
        try:
            await stream(b"", seconds=1.0)  # let the session settle
            for i in range(turns):
                text = REQUESTS[i % len(REQUESTS)]
                await stream(spoken[i % len(spoken)])
                speech_end = time.perf_counter()
                mic = asyncio.create_task(stream(b"", seconds=60.0))  # silence while the answer comes
                row: dict[str, Any] = {"request": text, "tools": 0}
                try:
                    while True:
                        t, e = await asyncio.wait_for(events.get(), timeout=120)
                        kind = e["type"]
                        if kind == "input_audio_buffer.speech_stopped":
                            row["vad_endpoint_s"] = t - speech_end
                        elif kind == "conversation.item.input_audio_transcription.completed":
                            row["heard"] = e["transcript"]
                        elif kind.startswith("x.tool_call.") and kind.endswith("started"):
                            row["tools"] += 1
                        elif kind == "response.output_audio.delta" and "first_audio_s" not in row:
                            row["first_audio_s"] = t - speech_end
                            await ws.send(json.dumps({"type": "response.cancel"}))
                        elif kind == "x.turn.latency":
                            d = e["ledger"]["derived"]
                            row |= {"final_s": d.get("endpoint_to_final"), "llm_s": d.get("final_to_answer"),
                                    "first_token_s": d.get("final_to_first_token"),
                                    "tts_s": d.get("answer_to_first_audio"), "status": e["status"]}
                            break
                        elif kind == "error":
                            row["error"] = e["error"]["message"]
                finally:
                    mic.cancel()
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            receiver.cancel()
    return results


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, subset in (("all turns", rows), ("turns without tools", [r for r in rows if r["tools"] == 0])):
        summary: dict[str, Any] = {"turns": len(subset)}
        for key in ("first_audio_s", "vad_endpoint_s", "final_s", "llm_s", "first_token_s", "tts_s"):
            values = [r[key] for r in subset if r.get(key) is not None]
            summary[key] = {"p50": percentile(values, 50), "p90": percentile(values, 90), "n": len(values)}
        out[name] = summary
        print(f"\n{name}: {len(subset)}")
        for key, v in summary.items():
            if isinstance(v, dict):
                print(f"  {key:16s} p50 {v['p50']:.3f} s   p90 {v['p90']:.3f} s   (n={v['n']})")
    print("\ngoal: end of speech -> first audio p50 <= 0.8 s for a turn without tools")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evals.server_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--url", help="a running server's ws://.../v1/realtime (default: start one in-process)")
    parser.add_argument("--config", help="a settings TOML file or preset")
    parser.add_argument("--json", help="also write the rows and the summary to this file")
    args = parser.parse_args()
    rows = asyncio.run(run(args.url, args.turns, Settings.load(args.config)))
    summary = report(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
