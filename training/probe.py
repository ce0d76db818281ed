"""Does a model fit its own training data where it matters: the step right after the final update?

    ~/.cache/specvoice/vllm-env/bin/python training/probe.py --samples runs/train/run3/train.jsonl \
        --model ~/.cache/specvoice/models/smollm2-135m-instruct-specvoice

Runs in the embedded model's environment (torch, transformers). For each sample, the prompt is the
trace up to the first final update that the model answers; the model continues greedily, as vLLM
would, and its action (call, pause or answer) is compared with the one it was trained to write.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script in the model's environment
from training.sft import load_tokenizer, render  # the same rendering as training and serving

TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "chatml_tools.jinja"
ACTION = re.compile(r"<(tool_call|pause/|answer)>?")


def action(text: str) -> str:
    found = ACTION.search(text.split("</think>", 1)[-1])
    return found.group(1) if found else "none"


def main() -> int:
    import torch
    from transformers import AutoModelForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    tok = load_tokenizer(args.model, TEMPLATE)
    model: Any = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    same = total = 0
    for line in args.samples.read_text().splitlines():
        row = json.loads(line)
        spans: list[tuple[str, bool]] = row["spans"]
        recap = row["meta"].get("history_chars", 0)  # earlier turns, whose final updates it answered already
        at = next((i for i, (text, own) in enumerate(spans[:-1])
                   if not own and "<final_query_update>" in text[recap if i == 0 else 0:] and spans[i + 1][1]), None)
        if at is None:
            continue
        ids = tok(render(tok, row["system"], "".join(t for t, _ in spans[: at + 1])), add_special_tokens=False,
                  return_tensors="pt")["input_ids"]
        got = tok.decode(model.generate(ids, max_new_tokens=48, do_sample=False)[0, ids.shape[1]:])
        want = spans[at + 1][0]
        total += 1
        same += action(got) == action(want)
        print(f"{row['kind'][:24]:24s} want {want[:60]!r}\n{'':24s} got  {got[:60]!r}")
        if total >= args.count:
            break
    print(json.dumps({"samples": total, "same_action": same}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
