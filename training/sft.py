"""The SFT recipe: LoRA on the model's own spans of generated trajectories.

Runs inside the embedded model's environment (torch, transformers, peft), not the server's; it imports
nothing from the project. Input: samples as JSON lines (`training.generate`), the model folder and the
chat template vLLM serves with. Tokenisation follows serving exactly: the head (system prompt and the
opening of the assistant message, rendered by the same chat template) is tokenised as vLLM would
tokenise it, then each span separately, so every prompt the worker sends is a token prefix of its
training sequence (block boundaries are `>` + newline + `<`, which the tokenizer never merges; `check`
verifies it). Loss is on the model's spans only (thinks, actions, answers), never on injected blocks.

    python training/sft.py train --samples S.jsonl --model DIR --template T.jinja --out ADAPTER
    python training/sft.py merge --model DIR --adapter ADAPTER --out MERGED
    python training/sft.py check --samples S.jsonl --model DIR --template T.jinja
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

IGNORE = -100


def load_tokenizer(model: Path, template: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = template.read_text()
    return tok


def render(tok: Any, system: str, prefix: str) -> str:
    """The prompt text vLLM builds for one request: system message, then the open assistant message."""
    messages = [{"role": "system", "content": system}, {"role": "assistant", "content": prefix}]
    text: str = tok.apply_chat_template(messages, tokenize=False, continue_final_message=True,
                                        add_generation_prompt=False)
    return text


def head(tok: Any, system: str) -> str:
    marker = "\x00SPANS\x00"
    text = render(tok, system, marker)
    return text[: text.index(marker)]


class Example(NamedTuple):
    head: str  # the rendered system prompt and assistant opening: shared, so computed once per batch
    ids: list[int]  # after the head
    labels: list[int]
    weights: list[float]  # per label; 0 where IGNORE


def encode(tok: Any, sample: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Token ids and labels (IGNORE outside the model's spans)."""
    first = head(tok, sample["system"])
    example = spans(tok, first, sample, 1.0, 0)
    ids = tok(first, add_special_tokens=False)["input_ids"]
    return ids + example.ids, [IGNORE] * len(ids) + example.labels


def has_finished(injected: str, before: bool) -> bool:
    """Whether the user has finished after this injected text: its last update says so, or, with no
    update in it (a result, an error), as before."""
    final, partial = injected.rfind("<final_query_update>"), injected.rfind("<partial_query_update>")
    return final > partial if final >= 0 or partial >= 0 else before


def spans(tok: Any, first: str, sample: dict[str, Any], weight: float, opening: int,
          partial_weight: float = 1.0) -> Example:
    """The sequence after the head. The first `opening` tokens of each span the model writes once the
    user has finished (after the final update, or after a tool result) weigh `weight`: there it
    decides to call, wait or answer, a few tokens among many easy ones (see docs/training.md). Those
    of a span written while the user still talks weigh `partial_weight`: there it decides whether the
    value a lookup needs has been said yet."""
    ids: list[int] = []
    labels: list[int] = []
    weights: list[float] = []
    finished = False
    for text, own in sample["spans"]:
        piece = tok(text, add_special_tokens=False)["input_ids"]
        ids += piece
        if not own:
            labels += [IGNORE] * len(piece)
            weights += [0.0] * len(piece)
            finished = has_finished(text, finished)
            continue
        labels += piece
        heavy = weight if finished else partial_weight
        weights += [heavy if i < opening else 1.0 for i in range(len(piece))]
    return Example(first, ids, labels, weights)


def check(args: argparse.Namespace) -> int:
    """Every recorded request's prompt tokens are a prefix of its sample's training tokens."""
    tok = load_tokenizer(Path(args.model), Path(args.template))
    bad = total = 0
    for line in Path(args.samples).read_text().splitlines():
        sample = json.loads(line)
        ids, _ = encode(tok, sample)
        for prefix in sample.get("requests", []):
            total += 1
            prompt = tok(render(tok, sample["system"], prefix), add_special_tokens=False)["input_ids"]
            if ids[: len(prompt)] != prompt:
                bad += 1
                if bad <= 3:
                    at = next(i for i, (a, b) in enumerate(zip(ids, prompt, strict=False)) if a != b)
                    print(f"{sample['id']}: differs at token {at}: {tok.decode(prompt[at - 5:at + 5])!r} vs "
                          f"{tok.decode(ids[at - 5:at + 5])!r}", file=sys.stderr)
    print(json.dumps({"requests": total, "not_a_prefix": bad}))
    return 1 if bad or not total else 0


def train(args: argparse.Namespace) -> int:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DynamicCache

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tok = load_tokenizer(Path(args.model), Path(args.template))
    data: list[Example] = []
    heads: dict[str, list[int]] = {}
    for line in Path(args.samples).read_text().splitlines():
        if line.strip():
            sample = json.loads(line)
            first = head(tok, sample["system"])
            example = spans(tok, first, sample, args.decision_weight, args.decision_tokens, args.partial_weight)
            if first not in heads:
                heads[first] = tok(first, add_special_tokens=False)["input_ids"]
            if len(heads[first]) + len(example.ids) <= args.max_tokens:
                data.append(example)
    # On this CPU fp32 is 2.5x faster than bf16 (198 against 77-82 tokens/s, with or without autocast):
    # it has no fast bf16 matmul. A GPU gets bf16 autocast.
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    bf16 = args.device == "cuda"
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, lora).to(args.device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    batches_per_epoch = sum(math.ceil(sum(1 for e in data if e.head == h) / args.batch) for h in heads)
    total = max(1, min(args.max_steps or 10**9, batches_per_epoch * args.epochs))
    warmup = max(1, total // 20)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    started, step, tokens = time.monotonic(), 0, 0
    log: list[dict[str, float]] = []
    for _epoch in range(args.epochs):
        order = list(range(len(data)))
        rng.shuffle(order)
        # A batch shares one head (system prompt), computed once; sequences of similar length waste less
        # on padding; the batches' order is shuffled.
        batches: list[list[int]] = []
        for h in heads:
            same_head = [j for j in order if data[j].head == h]
            for i in range(0, len(same_head), args.batch * 8):
                chunk = sorted(same_head[i:i + args.batch * 8], key=lambda j: len(data[j].ids))
                batches += [chunk[k:k + args.batch] for k in range(0, len(chunk), args.batch)]
        rng.shuffle(batches)
        for batch in batches:
            if step >= total:
                break
            lr = args.lr * min(1.0, (step + 1) / warmup) * (0.5 * (1 + math.cos(math.pi * step / total)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            # The head's keys and values, under the current weights but without gradient: 40 % of the
            # tokens are the head (1.35x faster measured); the adapter still learns from every span.
            head_ids = torch.tensor([heads[data[batch[0]].head]], device=args.device)
            with torch.no_grad(), torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
                cached = model(input_ids=head_ids, use_cache=True).past_key_values
            kv = [(layer.keys, layer.values) for layer in cached.layers]
            # Micro-batches bound the memory (the logits of a 49k vocabulary are large); the loss is the
            # weighted mean over the whole batch's trained tokens.
            weight_sum = sum(sum(data[j].weights) for j in batch)
            loss_sum = 0.0
            for m in range(0, len(batch), args.micro):
                part = batch[m:m + args.micro]
                n, width = len(part), max(len(data[j].ids) for j in part)
                ids = torch.full((n, width), pad, dtype=torch.long)
                labels = torch.full((n, width), IGNORE, dtype=torch.long)
                weights = torch.zeros((n, width))
                mask = torch.zeros((n, head_ids.shape[1] + width), dtype=torch.long)
                mask[:, : head_ids.shape[1]] = 1
                for row, j in enumerate(part):
                    e = data[j]
                    ids[row, : len(e.ids)], labels[row, : len(e.ids)] = torch.tensor(e.ids), torch.tensor(e.labels)
                    weights[row, : len(e.ids)] = torch.tensor(e.weights)
                    mask[row, head_ids.shape[1]: head_ids.shape[1] + len(e.ids)] = 1
                cache = DynamicCache([(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous())
                                      for k, v in kv], config=model.config)
                # Position t predicts token t + 1; the head's last token predicts the first one, which is
                # always injected (a query update), so nothing is lost by starting at the second. Only the
                # positions that predict a trained token (in any row) go through the 49k-wide output layer.
                targets, target_weights = labels[:, 1:], weights[:, 1:]
                keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
                with torch.autocast(args.device, dtype=torch.bfloat16, enabled=bf16):
                    logits = model(input_ids=ids.to(args.device), attention_mask=mask.to(args.device),
                                   past_key_values=cache, use_cache=False, logits_to_keep=keep.to(args.device)).logits
                losses = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.shape[-1]), targets[:, keep].reshape(-1).to(args.device),
                    ignore_index=IGNORE, reduction="none")
                loss = (losses * target_weights[:, keep].reshape(-1).to(args.device)).sum() / max(weight_sum, 1.0)
                loss.backward()
                loss_sum += float(loss.detach())
                tokens += int(mask.sum())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            elapsed = time.monotonic() - started
            log.append({"step": step, "loss": round(loss_sum, 4), "lr": lr, "elapsed_s": round(elapsed, 1)})
            bar = "#" * int(30 * step / total)
            print(f"\r[{bar:30s}] step {step}/{total} loss {loss_sum:.3f} {tokens / elapsed:.0f} tok/s "
                  f"{elapsed / step * (total - step) / 60:.1f} min left", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    out = Path(args.out)
    model = model.to("cpu", torch.bfloat16)  # half the size on disk; merged into a bf16 model anyway
    model.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps({
        "samples": len(data), "epochs": args.epochs, "steps": step, "batch": args.batch, "lr": args.lr,
        "rank": args.rank, "decision_weight": args.decision_weight, "decision_tokens": args.decision_tokens,
        "partial_weight": args.partial_weight,
        "tokens": tokens, "wall_s": round(time.monotonic() - started, 1), "log": log}, indent=1))
    print(json.dumps({"adapter": str(out), "steps": step, "wall_s": round(time.monotonic() - started, 1)}))
    return 0


def merge(args: argparse.Namespace) -> int:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(base, args.adapter).merge_and_unload()
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    for name in Path(args.model).iterdir():  # tokenizer and template files travel with the weights
        if name.is_file() and not (tmp / name.name).exists():
            shutil.copy2(name, tmp / name.name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(json.dumps({"merged": str(out)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "check"):
        p = sub.add_parser(name)
        p.add_argument("--samples", required=True)
        p.add_argument("--model", required=True)
        p.add_argument("--template", required=True)
    t = sub.choices["train"]
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--micro", type=int, default=2, help="sequences per forward pass (memory)")
    t.add_argument("--rank", type=int, default=12)
    t.add_argument("--max-steps", type=int, default=0)
    t.add_argument("--max-tokens", type=int, default=2048)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--decision-weight", type=float, default=5.0,
                   help="loss weight of the opening tokens the model writes once the user has finished")
    t.add_argument("--decision-tokens", type=int, default=24, help="how many opening tokens weigh more")
    t.add_argument("--partial-weight", type=float, default=3.0,
                   help="loss weight of the opening tokens the model writes while the user still talks")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    m = sub.add_parser("merge")
    m.add_argument("--model", required=True)
    m.add_argument("--adapter", required=True)
    m.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return {"train": train, "check": check, "merge": merge}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
