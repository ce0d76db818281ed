"""The SFT recipe in the embedded model's environment: serving prompts are token prefixes of the
training sequences, and a two-step run writes an adapter that loads and merges."""

import json
import subprocess

import pytest

from agent.embedded import CHAT_TEMPLATE, SFT, Paths
from configs.settings import Settings
from training.generate import generate

pytestmark = pytest.mark.vllm  # needs the embedded environment (torch, transformers, peft), not a server


@pytest.fixture(scope="module")
def paths():
    found = Paths(Settings().embedded.home)
    if not found.ready():
        pytest.fail("the embedded LLM is not set up: run ./install.sh (or `specvoice llm setup`)")
    return found


def sft(paths, *args):
    return subprocess.run([str(paths.python), str(SFT), *args], capture_output=True, text=True, timeout=900,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, check=False)


def test_every_serving_prompt_is_a_token_prefix_of_its_training_sequence(paths, tmp_path):
    samples, _ = generate("train", 30, seed=4)
    data = tmp_path / "s.jsonl"
    data.write_text("".join(s.to_json(requests=True) + "\n" for s in samples))
    done = sft(paths, "check", "--samples", str(data), "--model", str(paths.model), "--template", str(CHAT_TEMPLATE))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["requests"] > 100 and report["not_a_prefix"] == 0


def test_two_training_steps_write_an_adapter_that_loads_and_merges(paths, tmp_path):
    samples, _ = generate("train", 4, seed=5)
    data = tmp_path / "s.jsonl"
    data.write_text("".join(s.to_json() + "\n" for s in samples))
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    done = sft(paths, "train", "--samples", str(data), "--model", str(paths.model), "--template",
               str(CHAT_TEMPLATE), "--out", str(adapter), "--max-steps", "2", "--batch", "2", "--rank", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.loads((adapter / "training_log.json").read_text())
    assert log["steps"] == 2 and all(row["loss"] > 0 for row in log["log"])
    assert (adapter / "adapter_model.safetensors").stat().st_size < 10_000_000
    done = sft(paths, "merge", "--model", str(paths.model), "--adapter", str(adapter), "--out", str(merged))
    assert done.returncode == 0, done.stderr[-2000:]
    load = subprocess.run(
        [str(paths.python), "-c", "import sys, transformers as t; "
         "m = t.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
         "k = t.AutoTokenizer.from_pretrained(sys.argv[1]); x = k('<think>', return_tensors='pt');"
         " print(m.generate(**x, max_new_tokens=2, do_sample=False).shape[1])", str(merged)],
        capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, check=False)
    assert load.returncode == 0, load.stderr[-2000:]
