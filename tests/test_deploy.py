"""The Dockerfile and docker-compose.yml, checked statically (no Docker engine runs here)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from configs.settings import PRESETS, Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_offline_and_healthy():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)", text, re.M)
    assert {"build", "runtime", "cpu"} <= set(stages)
    runtime = text[text.index("AS runtime"):]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert "HF_HUB_OFFLINE=1" in runtime and "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "EXPOSE 8000" in runtime and 'CMD ["specvoice", "serve"]' in runtime
    assert "silero-vad==6.2.3" in text  # the models come from packages, baked into the venv
    assert ".venv" in (ROOT / ".dockerignore").read_text()


def test_compose_has_a_gpu_vllm_and_specvoice_pointed_at_it():
    services = compose()["services"]
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert "--model=Qwen/Qwen2.5-3B-Instruct" in vllm["command"] and "--enable-prefix-caching" in vllm["command"]
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    app = services["specvoice"]
    assert app["build"]["target"] == "runtime" and app["ports"] == ["8000:8000"]
    assert app["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert app["environment"]["SPECVOICE_LLM__BASE_URL"] == "http://vllm:8000/v1"
    cpu = services["specvoice-cpu"]
    assert cpu["profiles"] == ["cpu"] and cpu["build"]["target"] == "cpu" and "SPECVOICE_LLM__BASE_URL" not in cpu[
        "environment"]
    for name in ("specvoice", "specvoice-cpu"):
        env = services[name]["environment"]
        assert env["HF_HUB_OFFLINE"] == "1" and env["SPECVOICE_SERVER__HOST"] == "0.0.0.0"
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
        assert (PRESETS / f"{env['SPECVOICE_CONFIG']}.toml").is_file()


@pytest.mark.parametrize("service", ["specvoice", "specvoice-cpu"])
def test_each_service_environment_yields_valid_settings(service, monkeypatch):
    env = compose()["services"][service]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, re.sub(r"\$\{SPECVOICE_API_KEY[^}]*\}", "k-123", str(value)))
    settings = Settings.load()
    assert settings.server.api_keys == ["k-123"]  # exposed on 0.0.0.0, so keys are required
    assert settings.server.host == "0.0.0.0" and settings.server.port == 8000
    if service == "specvoice":
        assert settings.llm.base_url == "http://vllm:8000/v1" and settings.llm.model == "Qwen/Qwen2.5-3B-Instruct"
    else:
        assert settings.llm.base_url is None  # the embedded vLLM
