"""Does a model fit its own training data where it matters: the step right after the final update?

    ~/.cache/specvoice/vllm-env/bin/python training/probe.py --samples runs/train/run3/train.jsonl \
        --model ~/.cache/specvoice/models/smollm2-135m-instruct-specvoice

Runs in the embedded model's environment (torch, transformers). For each sample, the prompt is the
trace up to the first final update that the model answers; the model continues greedily, as vLLM
would, and its action (call, pause or answer) is compared with the one it was trained to write.

With `--every-step`, every step the model was trained to write after new input (an update, a result,
an error) is probed, and the action is compared in full (the call's tool and arguments too),
counted separately before and after the final update, and the fixes (a revision or a `REMOVE`) written
after it on their own. `--late-fixes` keeps only the samples that hold such a fix: the corrections and
withdrawals the live model misses. On teacher-written samples of the held-out split this
says how often the model decides right when every earlier step was right, which the closed-loop
evaluation (training/evaluate.py) cannot separate from errors that compound.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script in the model's environment
from training.sft import has_finished, load_tokenizer, render  # the same rendering as training and serving

TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "chatml_tools.jinja"
ACTION = re.compile(r"<(tool_call|pause/|answer)>?")


def action(text: str) -> str:
    found = ACTION.search(text.split("</think>", 1)[-1])
    return found.group(1) if found else "none"


def step(text: str) -> str:
    """The action a step writes, in full: the tag, and a call's or removal's line."""
    rest = text.split("</think>", 1)[-1].strip()
    return rest.split("\n", 1)[0] if rest.startswith(("<tool_call>", "REMOVE")) else action(text)


def think(text: str) -> str:
    """The step's think, as written (cut to its first 80 characters)."""
    found = re.search(r"<think>(.*?)</think", text, re.S)
    return found.group(1)[:80] if found else ""


def fixes(before: str, want: str) -> bool:
    """Whether the step revises or removes a call the turn made before it (`before`: the turn's text)."""
    line = step(want)
    before = re.sub(r"<tool_call>[^\n]*</tool_call>\s*<error>", "", before)  # a refused call made nothing
    found = re.match(r'<tool_call>\{"id": (\d+),', line)
    return "REMOVE" in line or (found is not None and f'<tool_call>{{"id": {found.group(1)},' in before)


def late_fixes(row: dict[str, Any]) -> set[int]:
    """The steps of a sample (a row of train.jsonl) that fix a call after the final update, by the index
    of the input span before them."""
    spans, recap = row["spans"], row["meta"].get("history_chars", 0)
    text = "".join(t for t, _ in spans)
    ends = list(itertools.accumulate(len(t) for t, _ in spans))
    return {at for at, finished in decisions(spans, recap)
            if finished and fixes(text[recap:ends[at]], spans[at + 1][0])}


def decisions(spans: list[tuple[str, bool]], recap: int) -> list[tuple[int, bool]]:
    """The steps after new input that the model is trained to write: (index of the input span, whether
    the user had finished)."""
    found, finished = [], False
    for i, (text, own) in enumerate(spans[:-1]):
        if own:
            continue
        text = text[recap if i == 0 else 0:]
        finished = has_finished(text, finished)
        if spans[i + 1][1] and text.strip():
            found.append((i, finished))
    return found


def main() -> int:
    import torch
    from transformers import AutoModelForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--every-step", action="store_true", help="probe every step after new input")
    parser.add_argument("--late-fixes", action="store_true",
                        help="only samples with a revision or REMOVE after the final update (with --every-step)")
    args = parser.parse_args()
    tok = load_tokenizer(args.model, TEMPLATE)
    model: Any = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    same = total = 0
    if args.every_step:
        return every_step(args, tok, model)
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


def every_step(args: argparse.Namespace, tok: Any, model: Any) -> int:
    counts = {phase: [0, 0, 0] for phase in ("partial", "final", "late_fix")}  # steps, same action, in full
    by_kind: dict[str, list[int]] = {}
    rows = [json.loads(line) for line in args.samples.read_text().splitlines()]
    # Each row's late-fix steps are found once, and only for the rows read.
    picked = ((row, late) for row in rows if (late := late_fixes(row)) or not args.late_fixes)
    for row, late in itertools.islice(picked, args.count):
        spans: list[tuple[str, bool]] = row["spans"]
        for at, finished in decisions(spans, row["meta"].get("history_chars", 0)):
            ids = tok(render(tok, row["system"], "".join(t for t, _ in spans[: at + 1])), add_special_tokens=False,
                      return_tensors="pt")["input_ids"]
            got = tok.decode(model.generate(ids, max_new_tokens=96, do_sample=False)[0, ids.shape[1]:])
            want = spans[at + 1][0]
            if action(want) == "none":  # a think cut by new input: its decision was never written
                continue
            full = step(got) == step(want)
            k = by_kind.setdefault(row["kind"], [0, 0])
            phases = ["final" if finished else "partial"] + (["late_fix"] if at in late else [])
            for c in (counts[p] for p in phases):
                c[0], c[1], c[2] = c[0] + 1, c[1] + (action(got) == action(want)), c[2] + full
            k[0], k[1] = k[0] + 1, k[1] + full
            if not full:
                print(f"{row['kind'][:16]:16s} want {think(want)!r} {step(want)[:100]!r}\n"
                      f"{'':16s} got  {think(got)!r} {step(got)[:100]!r}")
    print(json.dumps({"samples": len(rows),
                      **{f"{p}_steps": f"{n} (action {a}, in full {f})" for p, (n, a, f) in counts.items()},
                      "in_full_by_kind": {k: f"{f}/{n}" for k, (n, f) in sorted(by_kind.items())}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
