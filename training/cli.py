"""`specvoice train`: generate trajectories, then fine-tune the embedded model on them (LoRA).

The generator runs here; the SFT recipe (`training/sft.py`) runs in the embedded model's environment,
which has torch, transformers and peft (`specvoice llm setup` builds it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from agent.embedded import CHAT_TEMPLATE, SFT, Paths, setup
from configs.settings import SHIPPED_ADAPTER, Settings
from training.generate import generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=850, help="training episodes (1-3 turns) to generate")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=4, help="sequences per optimizer step (4 since run 16)")
    parser.add_argument("--rank", type=int, default=12, help="LoRA rank (12 on all linear layers: ~7 MB in bf16)")
    parser.add_argument("--decision-weight", type=float, default=5.0,
                        help="loss weight of the first tokens the model writes once the user has finished")
    parser.add_argument("--partial-weight", type=float, default=3.0,
                        help="loss weight of the first tokens the model writes while the user still talks")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N optimizer steps (0: all epochs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SHIPPED_ADAPTER,
                        help="where the adapter goes (default: the shipped one)")
    parser.add_argument("--work", type=Path, default=Path("runs/train"), help="folder for the generated data")
    parser.add_argument("--base-model", type=Path, help="another Hugging Face model folder (e.g. a 3B on a GPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])


def command(args: argparse.Namespace) -> int:
    settings = Settings.load(getattr(args, "config", None))
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    samples, rejected = generate("train", args.episodes, args.seed, "trained")
    data = args.work / "train.jsonl"
    data.write_text("".join(s.to_json() + "\n" for s in samples))
    episodes = sum(s.meta["turn"] == 0 for s in samples)
    print(f"generated {episodes} episodes ({len(samples)} turns) in {time.monotonic() - started:.0f} s "
          f"(rejected: {sum(rejected.values())} {rejected or ''}) -> {data}", file=sys.stderr)
    paths: Paths = setup(settings.embedded, log=lambda m: print(m, file=sys.stderr))
    model = args.base_model or paths.model
    cmd = [str(paths.python), str(SFT), "train", "--samples", str(data), "--model", str(model),
           "--template", str(CHAT_TEMPLATE), "--out", str(args.out), "--epochs", str(args.epochs),
           "--lr", str(args.lr), "--batch", str(args.batch), "--rank", str(args.rank),
           "--decision-weight", str(args.decision_weight), "--partial-weight", str(args.partial_weight),
           "--max-steps", str(args.max_steps), "--seed", str(args.seed), "--device", args.device]
    result = subprocess.run(cmd, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, check=False)
    if result.returncode != 0:
        print(f"error: training failed (exit {result.returncode})", file=sys.stderr)
        return result.returncode
    log = json.loads((args.out / "training_log.json").read_text())
    print(f"adapter: {args.out} ({sum(f.stat().st_size for f in args.out.iterdir()) / 1e6:.1f} MB), "
          f"{log['steps']} steps in {log['wall_s'] / 60:.1f} min; `specvoice llm setup` merges it")
    return 0
